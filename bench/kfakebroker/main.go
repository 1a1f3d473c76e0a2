// Command kfakebroker runs franz-go's kfake Kafka-protocol broker in a
// process of its own, so that benchmarks can measure a Kafka client's CPU
// time (augur ingest) without the broker's work in the same process.
//
//	go run ./bench/kfakebroker -port 19092 [-blackhole=false]
//
// With -blackhole (the default) produce requests are parsed, sequence
// checked and acknowledged but their records are not stored, so a long
// flat-out run does not fill memory; nothing can be consumed then.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 19092, "port to listen on, on 127.0.0.1")
	blackhole := flag.Bool("blackhole", true, "acknowledge produced records without storing them")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*port, *blackhole, log); err != nil {
		fmt.Fprintln(os.Stderr, "kfakebroker:", err)
		os.Exit(1)
	}
}

func run(port int, blackhole bool, log *slog.Logger) error {
	// kfake listens on 127.0.0.1 only.
	opts := []kfake.Opt{
		kfake.NumBrokers(1), kfake.Ports(port),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(64 << 20)}),
	}
	if blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	defer c.Close()
	log.Info("kfake broker listening", "addr", c.ListenAddrs()[0], "blackhole", blackhole)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
