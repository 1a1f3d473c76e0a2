package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
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
	creds, err := awsCredentials(ctx, c)
	if err != nil {
		return nil, err
	}
	return c.Options(seeds, creds)
}

// awsCredentials returns the AWS SDK's default credential chain (env,
// shared files, credential_process, web identity, the instance or pod
// role) for aws-msk-iam, nil for the other mechanisms. The SDK caches what
// it resolves and refreshes it when it expires.
func awsCredentials(ctx context.Context, c kafkaconn.Config) (aws.CredentialsProvider, error) {
	if c.SASL.Mechanism != kafkaconn.MechanismAWSMSKIAM {
		return nil, nil
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl: aws-msk-iam: aws config: %w", err)
	}
	return awsCfg.Credentials, nil
}

// kafkaSettings are the connection settings of the kafka: block as flags
// and environment variables, for every role. A flag overrides its
// environment variable, which overrides the config file.
var kafkaSettings = []struct {
	flag, env, field string
	isBool           bool
	set              func(c *kafkaconn.Config, v string, b bool)
}{
	{"kafka-client-id", "AUGUR_KAFKA_CLIENT_ID", "client_id", false, func(c *kafkaconn.Config, v string, _ bool) { c.ClientID = v }},
	{"kafka-tls", "AUGUR_KAFKA_TLS", "tls.enabled", true, func(c *kafkaconn.Config, _ string, b bool) { c.TLS.Enabled = b }},
	{"kafka-tls-ca-file", "AUGUR_KAFKA_TLS_CA_FILE", "tls.ca_file", false, func(c *kafkaconn.Config, v string, _ bool) { c.TLS.CAFile = v }},
	{"kafka-tls-cert-file", "AUGUR_KAFKA_TLS_CERT_FILE", "tls.cert_file", false, func(c *kafkaconn.Config, v string, _ bool) { c.TLS.CertFile = v }},
	{"kafka-tls-key-file", "AUGUR_KAFKA_TLS_KEY_FILE", "tls.key_file", false, func(c *kafkaconn.Config, v string, _ bool) { c.TLS.KeyFile = v }},
	{"kafka-tls-server-name", "AUGUR_KAFKA_TLS_SERVER_NAME", "tls.server_name", false, func(c *kafkaconn.Config, v string, _ bool) { c.TLS.ServerName = v }},
	{"kafka-tls-insecure-skip-verify", "AUGUR_KAFKA_TLS_INSECURE_SKIP_VERIFY", "tls.insecure_skip_verify", true, func(c *kafkaconn.Config, _ string, b bool) { c.TLS.InsecureSkipVerify = b }},
	{"kafka-sasl-mechanism", "AUGUR_KAFKA_SASL_MECHANISM", "sasl.mechanism", false, func(c *kafkaconn.Config, v string, _ bool) { c.SASL.Mechanism = v }},
	{"kafka-sasl-username", "AUGUR_KAFKA_SASL_USERNAME", "sasl.username", false, func(c *kafkaconn.Config, v string, _ bool) { c.SASL.Username = v }},
	{"kafka-sasl-password-file", "AUGUR_KAFKA_SASL_PASSWORD_FILE", "sasl.password_file", false, func(c *kafkaconn.Config, v string, _ bool) { c.SASL.PasswordFile = v }},
}

// kafkaFlags holds the values of kafkaSettings' flags, "" when not given.
type kafkaFlags map[string]*flagValue

// flagValue is a string flag that can also be a boolean one ("-kafka-tls"
// alone means true).
type flagValue struct {
	v      string
	isBool bool
}

func (f *flagValue) String() string     { return f.v }
func (f *flagValue) Set(v string) error { f.v = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// registerKafkaFlags adds the connection flags to fs.
func registerKafkaFlags(fs *flag.FlagSet) kafkaFlags {
	k := kafkaFlags{}
	for _, s := range kafkaSettings {
		v := &flagValue{isBool: s.isBool}
		k[s.flag] = v
		fs.Var(v, s.flag, fmt.Sprintf("kafka.%s of the config file (env %s)", s.field, s.env))
	}
	return k
}

// apply sets c's fields from the flags given, else from the environment
// variables set, and validates the result.
func (k kafkaFlags) apply(c *kafkaconn.Config) error {
	for _, s := range kafkaSettings {
		v, from := "", ""
		if f := k[s.flag]; f != nil && f.v != "" {
			v, from = f.v, "-"+s.flag
		} else if e := os.Getenv(s.env); e != "" {
			v, from = e, s.env
		}
		if from == "" {
			continue
		}
		b := false
		if s.isBool {
			var err error
			if b, err = strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%s (kafka.%s): want true or false, got %q", from, s.field, v)
			}
		}
		s.set(c, v, b)
	}
	return c.Validate()
}

// roleKafka returns the connection settings of a role that runs alone
// (augur stream, augur act): the kafka: block of the config file at path
// (none: plaintext), with the flags and environment over it; and the
// file's brokers when *brokers is empty. It also returns the file, read
// once (the defaults without one), for the role's other settings: the
// replication of the topics it creates (kafka.replication: -1, the
// broker's default, without a file), act's act: block.
func roleKafka(path string, k kafkaFlags, brokers *string) (kafkaconn.Config, fileConfig, error) {
	var c kafkaconn.Config
	fc, err := loadFileConfig(path)
	if err != nil {
		return c, fc, err
	}
	if path != "" {
		if err := fc.checkReplication(); err != nil {
			return c, fc, fmt.Errorf("config %s: %w", path, err)
		}
		if *brokers == "" {
			*brokers = strings.Join(fc.Kafka.Brokers, ",")
		}
		c = fc.Kafka.Config
	}
	if err := k.apply(&c); err != nil {
		if path != "" {
			return c, fc, fmt.Errorf("config %s: %w", path, err)
		}
		return c, fc, err
	}
	return c, fc, nil
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
