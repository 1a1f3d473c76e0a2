package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/augur-ops/augur/internal/kubetest"
)

// kafkaCluster is a KRaft cluster of combined broker+controller nodes run
// from the jars .ci/kafka/fetch.sh fetched: replication 3,
// min.insync.replicas 2, small heaps.
type kafkaCluster struct {
	lib   string
	dir   string
	nodes []*kafkaNode
}

type kafkaNode struct {
	id          int
	port, cport int
	dir         string
	proc        *proc
}

// startKafka formats and starts n nodes under dir and waits until every
// node serves.
func startKafka(dir, lib string, n int, heap string) (*kafkaCluster, error) {
	c := &kafkaCluster{lib: lib, dir: dir}
	ports, err := kubetest.FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var voters []string
	for i := range n {
		node := &kafkaNode{id: i + 1, port: ports[2*i], cport: ports[2*i+1], dir: filepath.Join(dir, fmt.Sprintf("kafka-%d", i+1))}
		c.nodes = append(c.nodes, node)
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", node.id, node.cport))
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	clusterID := base64.RawURLEncoding.EncodeToString(raw[:]) // what kafka-storage random-uuid prints
	jvm := func(node *kafkaNode) []string {
		return []string{"-Xms64m", "-Xmx" + heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
			"-Dlog4j2.configurationFile=" + filepath.Join(repoRoot(), ".ci", "kafka", "log4j2.properties"),
			"-Dkafka.logs.dir=" + node.dir, "-cp", filepath.Join(lib, "*")}
	}
	for _, node := range c.nodes {
		if err := os.MkdirAll(filepath.Join(node.dir, "data"), 0o755); err != nil {
			return nil, err
		}
		props := filepath.Join(node.dir, "server.properties")
		if err := os.WriteFile(props, []byte(fmt.Sprintf(serverProperties, node.id, strings.Join(voters, ","),
			node.port, node.cport, node.port, filepath.Join(node.dir, "data"))), 0o644); err != nil {
			return nil, err
		}
		format := exec.Command("java", append(jvm(node), "kafka.tools.StorageTool", "format", "--cluster-id="+clusterID, "-c", props)...)
		if out, err := format.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("format kafka node %d: %w\n%s", node.id, err, out)
		}
		node.proc = &proc{name: fmt.Sprintf("kafka-%d", node.id), bin: "java", args: append(jvm(node), "kafka.Kafka", props),
			logPath: filepath.Join(node.dir, "stdout.log")}
		if err := node.proc.start(); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, node := range c.nodes {
		for !answers(node.port) || !logged(filepath.Join(node.dir, "broker.log"), "Kafka Server started") {
			if time.Now().After(deadline) {
				return c, fmt.Errorf("kafka node %d not ready after 2m; see %s", node.id, node.dir)
			}
			if !node.proc.alive() {
				return c, fmt.Errorf("kafka node %d exited during start-up; see %s", node.id, node.dir)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return c, nil
}

// serverProperties: node id, voters, client port, controller port,
// advertised port, data dir.
const serverProperties = `process.roles=broker,controller
node.id=%d
controller.quorum.voters=%s
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d
advertised.listeners=PLAINTEXT://127.0.0.1:%d
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%s
num.network.threads=2
num.io.threads=2
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=100
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
log.cleaner.backoff.ms=1000
log.segment.bytes=67108864
`

// brokers is the seed list.
func (c *kafkaCluster) brokers() string {
	var s []string
	for _, n := range c.nodes {
		s = append(s, "127.0.0.1:"+strconv.Itoa(n.port))
	}
	return strings.Join(s, ",")
}

func (c *kafkaCluster) stop() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() { n.proc.term(20 * time.Second) })
	}
	wg.Wait()
}

func answers(port int) bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func logged(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}
