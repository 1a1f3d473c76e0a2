package kafkaconn

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/internal/testca"
)

// saslTLSBroker starts kfake with a TLS listener and SCRAM-SHA-512 user
// augur / its password.
func saslTLSBroker(t *testing.T, ca testca.CA, password string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "augur", password),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{ca.Server}, MinVersion: tls.VersionTLS12}),
		kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func secret(t *testing.T, s string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(f, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func client(t *testing.T, cfg Config, seed string) (*kgo.Client, error) {
	t.Helper()
	opts, err := cfg.Options([]string{seed}, nil)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(cl.Close)
	return cl, nil
}

// TestSASLOverTLS connects with SCRAM-SHA-512 over TLS to a broker whose
// certificate a test CA signed, produces and consumes; then each wrong
// setting fails its first connection with an error naming that setting.
func TestSASLOverTLS(t *testing.T) {
	ca := testca.New(t, "ca")
	seed := saslTLSBroker(t, ca, "right-password")
	good := Config{TLS: TLS{Enabled: true, CAFile: ca.File},
		SASL: SASL{Mechanism: MechanismScramSHA512, Username: "augur", PasswordFile: secret(t, "right-password")}}

	cl, err := client(t, good, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Check(t.Context(), cl, 10*time.Second); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "t", Value: []byte("over tls")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if fs := cl.PollFetches(ctx); fs.Err() != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "over tls" {
		t.Fatalf("consume: %v, %d records", fs.Err(), fs.NumRecords())
	}

	other := testca.New(t, "other")
	for name, tc := range map[string]struct {
		mut  func(c *Config)
		want string
	}{
		"wrong password": {func(c *Config) { c.SASL.PasswordFile = secret(t, "wrong") }, "kafka.sasl"},
		"unknown CA":     {func(c *Config) { c.TLS.CAFile = other.File }, "kafka.tls.ca_file"},
		"plaintext":      {func(c *Config) { c.TLS = TLS{} }, "kafka.tls.enabled"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			tc.mut(&cfg)
			cl, err := client(t, cfg, seed)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = cfg.Check(t.Context(), cl, 5*time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check: %v, want an error naming %s", err, tc.want)
			}
			t.Logf("%s after %v: %v", name, time.Since(start).Round(time.Millisecond), err)
		})
	}
}

// TestMSKIAM shows aws-msk-iam selects franz-go's AWS_MSK_IAM mechanism,
// signs its first message with the credentials the provider gives, and
// asks the provider again at every authentication, so refreshed
// credentials are used. (No broker here speaks AWS_MSK_IAM: the mechanism
// is driven directly, as the client does on each new connection.)
func TestMSKIAM(t *testing.T) {
	var calls atomic.Int32
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		n := calls.Add(1)
		return aws.Credentials{AccessKeyID: fmt.Sprintf("AKID%d", n), SecretAccessKey: "secret", SessionToken: "token"}, nil
	})
	cfg := Config{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: MechanismAWSMSKIAM}}
	if _, err := cfg.Options([]string{"b-1.augur.abc123.c2.kafka.us-east-1.amazonaws.com:9098"}, creds); err != nil {
		t.Fatal(err)
	}
	m, err := cfg.SASL.mechanism(creds)
	if err != nil || m.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism %v, %v", m, err)
	}
	for i := 1; i <= 2; i++ {
		_, first, err := m.Authenticate(t.Context(), "b-1.augur.abc123.c2.kafka.us-east-1.amazonaws.com:9098")
		if err != nil {
			t.Fatal(err)
		}
		var msg map[string]string
		if err := json.Unmarshal(first, &msg); err != nil {
			t.Fatalf("first message %q: %v", first, err)
		}
		if !strings.HasPrefix(msg["x-amz-credential"], fmt.Sprintf("AKID%d/", i)) || msg["x-amz-security-token"] != "token" || msg["action"] != "kafka-cluster:Connect" {
			t.Fatalf("authentication %d signed with %v", i, msg)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("credentials resolved %d times over two authentications, want 2", n)
	}
	if _, err := cfg.Options([]string{"x:9098"}, nil); err == nil {
		t.Fatal("aws-msk-iam without a credentials provider accepted")
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"tls file without tls": {Config{TLS: TLS{CAFile: "ca.pem"}}, "kafka.tls.enabled"},
		"cert without key":     {Config{TLS: TLS{Enabled: true, CertFile: "c.pem"}}, "kafka.tls.cert_file"},
		"unknown mechanism":    {Config{SASL: SASL{Mechanism: "gssapi"}}, "kafka.sasl.mechanism"},
		"scram without user":   {Config{SASL: SASL{Mechanism: MechanismScramSHA256, PasswordFile: "p"}}, "kafka.sasl"},
		"user without mech":    {Config{SASL: SASL{Username: "u"}}, "kafka.sasl.mechanism"},
		"iam without tls":      {Config{SASL: SASL{Mechanism: MechanismAWSMSKIAM}}, "kafka.tls.enabled"},
		"iam with a password":  {Config{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: MechanismAWSMSKIAM, PasswordFile: "p"}}, "kafka.sasl"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
	if err := (&Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if _, err := (&Config{SASL: SASL{Mechanism: MechanismPlain, Username: "u", PasswordFile: "/nonexistent"}}).Options([]string{"x:1"}, nil); err == nil || !strings.Contains(err.Error(), "kafka.sasl.password_file") {
		t.Errorf("missing password file: %v", err)
	}
}

// TestMutualTLS connects to a broker that requires a client certificate
// signed by its CA: with cert_file and key_file it is accepted, without
// them it is refused. The files are read at every handshake: replaced by a
// certificate of another CA, the next connection is refused, and put
// back, accepted again, without a new client config.
func TestMutualTLS(t *testing.T) {
	ca := testca.New(t, "ca")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{ca.Server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seed := c.ListenAddrs()[0]
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	put := func(from testca.CA) {
		for dst, src := range map[string]string{certFile: from.ServerCertFile, keyFile: from.ServerKeyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(cfg Config) error {
		opts, err := cfg.Options([]string{seed}, nil)
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		return cfg.Check(t.Context(), cl, 10*time.Second)
	}
	put(ca)
	mtls := Config{TLS: TLS{Enabled: true, CAFile: ca.File, CertFile: certFile, KeyFile: keyFile}}
	if err := check(mtls); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	if err := check(Config{TLS: TLS{Enabled: true, CAFile: ca.File}}); err == nil {
		t.Error("without a client certificate: accepted")
	}

	opts, err := mtls.Options([]string{seed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ping := func() error {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	put(testca.New(t, "other"))
	if err := ping(); err == nil {
		t.Error("a client certificate of another CA, put in the files after start: accepted (files not read again)")
	}
	put(ca)
	if err := ping(); err != nil {
		t.Errorf("the right certificate put back: %v", err)
	}
}

// TestCAFileReadAtEveryConnection: the CA file is read again at every new
// connection: a client whose file holds another CA is refused, naming
// kafka.tls.ca_file; once the file holds the broker's CA, the same options
// connect, with no new client config.
func TestCAFileReadAtEveryConnection(t *testing.T) {
	ca, other := testca.New(t, "ca"), testca.New(t, "other")
	seed := saslTLSBroker(t, ca, "s3cret")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	copyFile := func(src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(caFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(other.File)
	cfg := Config{TLS: TLS{Enabled: true, CAFile: caFile}, SASL: SASL{Mechanism: MechanismScramSHA512, Username: "augur", PasswordFile: secret(t, "s3cret")}}
	opts, err := cfg.Options([]string{seed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func() error {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return cfg.Check(t.Context(), cl, 10*time.Second)
	}
	if err := check(); err == nil || !strings.Contains(err.Error(), "kafka.tls.ca_file") {
		t.Fatalf("CA file of another CA: %v, want an error naming kafka.tls.ca_file", err)
	}
	copyFile(ca.File)
	if err := check(); err != nil {
		t.Fatalf("after the CA file was replaced: %v", err)
	}
}

// TestTLSToPlaintextBroker: a TLS client against a plaintext listener that
// does not answer the handshake at all (kfake, augur run's embedded broker,
// reads the ClientHello as the length of a request and waits for it) fails
// with an error naming kafka.tls.enabled, not only a timeout.
func TestTLSToPlaintextBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := Config{TLS: TLS{Enabled: true}}
	cl, err := client(t, cfg, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Check(t.Context(), cl, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "kafka.tls.enabled") {
		t.Fatalf("check: %v, want an error naming kafka.tls.enabled", err)
	}
	t.Log(err)
}
