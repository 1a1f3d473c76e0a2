// Package kafkaconn turns the `kafka:` block of augur's config into the
// franz-go options every client of every role uses: seed brokers, client
// id, TLS (server verification, optional client certificate for mTLS) and
// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM). It also names the
// setting at fault when a first connection fails, so that a wrong password
// or an unknown CA is an error about the config, not a retry loop.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config is the connection part of the `kafka:` block. The zero value is a
// plaintext, unauthenticated connection.
type Config struct {
	// ClientID names augur to the brokers (quotas, logs). Default "augur".
	ClientID string `yaml:"client_id"`
	// TLS encrypts the connections.
	TLS TLS `yaml:"tls"`
	// SASL authenticates them.
	SASL SASL `yaml:"sasl"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	// Enabled turns TLS on. Default false. Setting any file below without
	// it is an error.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs the brokers' certificates are
	// checked against, read again at every new connection. Default: the
	// system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key, for
	// brokers that require mutual TLS. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the brokers' certificates.
	// Default: the host of each broker address.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any broker certificate. Default false;
	// for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASL mechanisms.
const (
	MechanismPlain       = "plain"
	MechanismScramSHA256 = "scram-sha-256"
	MechanismScramSHA512 = "scram-sha-512"
	MechanismAWSMSKIAM   = "aws-msk-iam"
)

// SASL configures authentication. Secrets come from files, never inline,
// and are read again at every new connection, so a rotated secret file is
// picked up without a restart.
type SASL struct {
	// Mechanism is "" (none), "plain", "scram-sha-256", "scram-sha-512" or
	// "aws-msk-iam".
	Mechanism string `yaml:"mechanism"`
	// Username and PasswordFile, for plain and SCRAM. The file's content,
	// trailing newline trimmed, is the password.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// Validate reports every bad field, named by its YAML path under "kafka".
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("kafka.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	t := c.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		bad("tls.enabled", "must be true when other tls settings are set")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls.cert_file", "cert_file and key_file go together")
	}
	s := c.SASL
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.PasswordFile != "" {
			bad("sasl.mechanism", "required when username or password_file is set")
		}
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if s.Username == "" || s.PasswordFile == "" {
			bad("sasl", "mechanism %s needs username and password_file", s.Mechanism)
		}
	case MechanismAWSMSKIAM:
		if s.Username != "" || s.PasswordFile != "" {
			bad("sasl", "mechanism aws-msk-iam takes its credentials from the AWS SDK's default chain, not username and password_file")
		}
		if !t.Enabled {
			bad("tls.enabled", "aws-msk-iam needs TLS (MSK's IAM listener is TLS only)")
		}
	default:
		bad("sasl.mechanism", "must be one of plain, scram-sha-256, scram-sha-512, aws-msk-iam, got %q", s.Mechanism)
	}
	return errors.Join(errs...)
}

// Options returns the kgo options for seeds under c: the seed brokers, the
// client id, and TLS and SASL when configured. creds is the AWS credentials
// provider for aws-msk-iam (the SDK's default chain; nil otherwise); it is
// asked at every new connection, so refreshed credentials are used.
func (c *Config) Options(seeds []string, creds aws.CredentialsProvider) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	id := c.ClientID
	if id == "" {
		id = "augur"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(id)}
	if c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.Dialer(c.TLS.dialer(tc)))
	}
	if m, err := c.Mechanism(creds); err != nil {
		return nil, err
	} else if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (t *TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // G402: off by default, a documented test-only switch
	if t.CAFile != "" {
		pool, err := t.roots()
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		// Loaded now to fail at start-up, and again at every handshake, so
		// a renewed certificate (cert-manager, a rotated Secret) is used by
		// the next connection without a restart.
		load := func() (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.cert_file: %w", err)
			}
			return &cert, nil
		}
		if _, err := load(); err != nil {
			return nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return load() }
	}
	return tc, nil
}

// roots reads the CA file.
func (t *TLS) roots() (*x509.CertPool, error) {
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kafka.tls.ca_file: no PEM certificate in %s", t.CAFile)
	}
	return pool, nil
}

// dialer returns the TLS dial function of every connection: tc, with the
// CA file read again (so a rotated CA bundle is trusted by the next
// connection without a restart) and the server name defaulting to the
// broker's host, verified by crypto/tls as usual.
func (t *TLS) dialer(tc *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		cfg := tc.Clone()
		if t.CAFile != "" {
			pool, err := t.roots()
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = pool
		}
		if cfg.ServerName == "" {
			h, _, err := net.SplitHostPort(host)
			if err != nil {
				h = host
			}
			cfg.ServerName = h
		}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 20 * time.Second}, Config: cfg}
		return d.DialContext(ctx, network, host)
	}
}

// Mechanism returns the SASL mechanism Options configures, nil for none.
// creds is as for Options.
func (c *Config) Mechanism(creds aws.CredentialsProvider) (sasl.Mechanism, error) {
	return c.SASL.mechanism(creds)
}

// mechanism returns the SASL mechanism, nil for none. The password file is
// read once here, to fail at start-up when it is missing, and again at
// every authentication.
func (s *SASL) mechanism(creds aws.CredentialsProvider) (sasl.Mechanism, error) {
	password := func() (string, error) {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	switch s.Mechanism {
	case "":
		return nil, nil
	case MechanismAWSMSKIAM:
		if creds == nil {
			return nil, errors.New("kafka.sasl: aws-msk-iam needs AWS credentials (the SDK's default chain)")
		}
		return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
			c, err := creds.Retrieve(ctx)
			if err != nil {
				return saslaws.Auth{}, fmt.Errorf("kafka.sasl: aws-msk-iam credentials: %w", err)
			}
			return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
		}), nil
	}
	if _, err := password(); err != nil {
		return nil, err
	}
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			p, err := password()
			return plain.Auth{User: s.Username, Pass: p}, err
		}), nil
	case MechanismScramSHA256:
		return scram.Sha256(func(context.Context) (scram.Auth, error) {
			p, err := password()
			return scram.Auth{User: s.Username, Pass: p}, err
		}), nil
	default: // scram-sha-512; Validate rejected the others
		return scram.Sha512(func(context.Context) (scram.Auth, error) {
			p, err := password()
			return scram.Auth{User: s.Username, Pass: p}, err
		}), nil
	}
}

// Check connects cl to the cluster once, within timeout, and explains a
// failure by the setting it points at: TLS verification (kafka.tls.ca_file,
// server_name), a plaintext broker answering a TLS client or the reverse
// (kafka.tls.enabled), SASL (kafka.sasl). Other errors come back wrapped.
func (c *Config) Check(ctx context.Context, cl *kgo.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := cl.Ping(ctx)
	if err == nil {
		return nil
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		header    tls.RecordHeaderError
		opErr     *net.OpError
		firstEOF  *kgo.ErrFirstReadEOF
	)
	// franz-go says which first read failed, and that a TLS alert answered
	// a plaintext request, only in its messages.
	firstRead := ""
	if errors.As(err, &firstEOF) {
		firstRead = firstEOF.Error()
	}
	switch {
	case errors.As(err, &unknownCA) || (errors.As(err, &verify) && errors.As(verify.Err, &unknownCA)):
		return fmt.Errorf("kafka.tls.ca_file: the brokers' certificate is signed by an unknown authority: %w", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("kafka.tls.server_name: the brokers' certificate does not name the host: %w", err)
	case errors.As(err, &header), strings.Contains(firstRead, "is TLS misconfigured"):
		return fmt.Errorf("kafka.tls.enabled: the brokers do not speak TLS on this address: %w", err)
	case strings.Contains(firstRead, "is TLS missing"), strings.Contains(err.Error(), "plaintext connection speaking to a tls endpoint"):
		return fmt.Errorf("kafka.tls.enabled: the brokers require TLS on this address: %w", err)
	case strings.Contains(firstRead, "is SASL missing"):
		return fmt.Errorf("kafka.sasl.mechanism: the brokers require SASL: %w", err)
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState),
		errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("kafka.sasl: authentication as %q (%s) failed: %w", c.SASL.Username, c.SASL.Mechanism, err)
	case c.SASL.Mechanism != "" && errors.Is(err, io.EOF):
		// Some brokers close the connection on a failed authentication
		// instead of answering with an error code.
		return fmt.Errorf("kafka.sasl: the brokers closed the connection while authenticating as %q (%s): a wrong password or unknown user: %w", c.SASL.Username, c.SASL.Mechanism, err)
	case !c.TLS.Enabled && errors.As(err, &opErr):
		return fmt.Errorf("kafka: cannot reach the brokers (kafka.tls.enabled is false: a TLS listener closes plaintext connections): %w", err)
	case c.TLS.Enabled && errors.Is(err, context.DeadlineExceeded):
		// A plaintext listener may not answer a TLS handshake at all: kfake
		// (augur run's embedded broker) reads the ClientHello as a request
		// length and waits for that many bytes.
		return fmt.Errorf("kafka: no broker answered within %v (kafka.tls.enabled is true: a plaintext listener does not answer a TLS handshake): %w", timeout, err)
	}
	return fmt.Errorf("kafka: no broker answered within %v: %w", timeout, err)
}

// ACLHint marks an authorization failure (topic, group, transactional id or
// cluster) as a missing ACL and points to the list of each role's ACLs; any
// other error, nil included, comes back as it is.
func ACLHint(err error) error {
	if IsAuthorization(err) {
		return fmt.Errorf("%w (the principal lacks a Kafka ACL this role needs: see README, Kafka ACLs)", err)
	}
	return err
}

// IsAuthorization reports whether err is a Kafka authorization failure,
// which retrying does not cure.
func IsAuthorization(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}
