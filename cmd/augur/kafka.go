package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/internal/kafkaconn"
)

// connOptions returns the kgo options every client of a role connects
// with: the seeds, and for a real cluster the client id, TLS and SASL of
// the `kafka:` block (aws-msk-iam takes the AWS SDK's default credential
// chain). The embedded broker is plaintext on loopback.
func connOptions(ctx context.Context, c kafkaconn.Config, seeds []string, embedded bool) ([]kgo.Opt, error) {
	if embedded {
		return []kgo.Opt{kgo.SeedBrokers(seeds...)}, nil
	}
	var creds aws.CredentialsProvider
	if c.SASL.Mechanism == kafkaconn.MechanismAWSMSKIAM {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: aws-msk-iam: aws config: %w", err)
		}
		creds = awsCfg.Credentials
	}
	return c.Options(seeds, creds)
}

// roleKafka reads the kafka: block of a config file for a role that runs
// alone (augur stream, augur act): its connection settings, and its brokers
// when *brokers is empty. No file: the zero Config (plaintext).
func roleKafka(path string, brokers *string) (kafkaconn.Config, error) {
	if path == "" {
		return kafkaconn.Config{}, nil
	}
	fc, err := loadFileConfig(path)
	if err != nil {
		return kafkaconn.Config{}, err
	}
	if err := fc.Kafka.Validate(); err != nil {
		return kafkaconn.Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if *brokers == "" {
		*brokers = strings.Join(fc.Kafka.Brokers, ",")
	}
	return fc.Kafka.Config, nil
}

// checkKafka connects once with conn and names the setting at fault when
// that fails.
func checkKafka(ctx context.Context, c kafkaconn.Config, conn []kgo.Opt) error {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	return c.Check(ctx, cl, 15*time.Second)
}
