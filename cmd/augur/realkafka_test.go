package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/augur-ops/augur/internal/testca"
)

// TestRealKafkaSecure runs the TLS, SASL and ACL checks against Apache
// Kafka (the jars of .ci/kafka, KRaft) rather than kfake: one broker with a
// SASL_SSL listener (a PEM keystore signed by a CA made here,
// SCRAM-SHA-512, user "augur" created when the storage is formatted) and
// Kafka's StandardAuthorizer. The ACL checks run second, on the
// topics `augur run` created (samples written an hour back would be late
// behind theirs). `make test-kafka` runs it
// (AUGUR_KAFKA_SECURE_TESTS=1); a plain `go test` skips it.
func TestRealKafkaSecure(t *testing.T) {
	if os.Getenv("AUGUR_KAFKA_SECURE_TESTS") != "1" {
		t.Skip("starts an Apache Kafka broker: `make test-kafka` runs it (AUGUR_KAFKA_SECURE_TESTS=1)")
	}
	ca := testca.New(t, "ca")
	broker := startSecureKafka(t, ca)
	t.Run("run over SASL_SSL", func(t *testing.T) { runOverSASLTLS(t, broker, ca) })
	t.Run("roles with their ACLs", func(t *testing.T) {
		admin, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}),
			kgo.SASL(scram.Auth{User: "augur", Pass: "s3cret"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		grantRoleACLs(t, admin)
		rolesWithTheirACLs(t, broker, admin, fmt.Sprintf("  tls: {enabled: true, ca_file: %s}", ca.File))
	})
}

// startSecureKafka starts the broker of TestRealKafkaSecure and returns
// its SASL_SSL address. Its PLAINTEXT listener (inter-broker and the
// controller, whose principal is ANONYMOUS) is a superuser, as is "augur".
func startSecureKafka(t *testing.T, ca testca.CA) string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatalf("java missing: .ci/kafka/start.sh installs it under CI")
	}
	dir := t.TempDir()
	keystore := filepath.Join(dir, "broker.pem")
	key, err := os.ReadFile(ca.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(ca.ServerCertFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keystore, string(key)+string(cert))
	// PLAINTEXT, CONTROLLER (start.sh's KAFKA_PORT+1) and SASL_SSL.
	port := freePortRun(t, 3)
	sslPort := port + 2
	props := filepath.Join(dir, "sasl_ssl.properties")
	writeFile(t, props, fmt.Sprintf(`listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d,SASL_SSL://127.0.0.1:%[3]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,SASL_SSL://127.0.0.1:%[3]d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=%[4]s
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:augur
allow.everyone.if.no.acl.found=false
`, port, port+1, sslPort, keystore))
	_, file, _, _ := runtime.Caller(0)
	ci := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "kafka")
	env := append(os.Environ(), fmt.Sprintf("KAFKA_PORT=%d", port), "KAFKA_RUN_DIR="+filepath.Join(dir, "kafka"),
		"KAFKA_EXTRA_PROPERTIES="+props, "KAFKA_SCRAM_USER=augur", "KAFKA_SCRAM_PASSWORD=s3cret")
	start := exec.Command("bash", filepath.Join(ci, "start.sh"))
	start.Env = env
	var stderr strings.Builder
	start.Stderr = &stderr
	t0 := time.Now()
	if out, err := start.Output(); err != nil {
		t.Fatalf("start kafka: %v\n%s%s", err, out, stderr.String())
	}
	t.Logf("Apache Kafka with a SASL_SSL listener and an authorizer started in %v", time.Since(t0).Round(time.Second))
	t.Cleanup(func() {
		stop := exec.Command("bash", filepath.Join(ci, "stop.sh"))
		stop.Env = env
		_ = stop.Run()
	})
	return fmt.Sprintf("127.0.0.1:%d", sslPort)
}
