package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/augur-ops/augur/internal/kafkaconn"
)

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		yaml, want string
	}{
		{"listen: ''\n", "listen: must not be empty"},
		{"kafka:\n  partitions: -1\n", "kafka.partitions: must be > 0"},
		{"kafka:\n  embedded_addr: 0.0.0.0:9092\n", "kafka.embedded_addr: the embedded broker listens on loopback only"},
		{"act:\n  mode: yolo\n", `act.mode: must be off, dry-run or enforce, got "yolo"`},
		{"ingest:\n  max_inflight_requests: -3\n", "ingest.max_inflight_requests: must not be negative"},
		{"ingest:\n  limits:\n    name_validation: ascii\n", "ingest.limits.name_validation"},
		{"lisen: 1\n", "field lisen not found"},
		{"kafka:\n  replication: 0\n", "kafka.replication: must be -1 (the broker's default) or at least 1, got 0"},
		{"ingest:\n  partitions: 16\n", "ingest.partitions: not a setting"},
	} {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		f := commonFlags{config: p}
		_, err := f.load()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q: err %v, want it to contain %q", c.yaml, err, c.want)
		}
	}
	f := commonFlags{}
	if _, err := f.load(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	// augur stream and augur act read the same file through roleKafka.
	p := filepath.Join(dir, "role.yaml")
	if err := os.WriteFile(p, []byte("kafka:\n  brokers: [b:9092]\n  replication: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	brokers := ""
	if _, _, err := roleKafka(p, kafkaFlags{}, &brokers); err == nil || !strings.Contains(err.Error(), "kafka.replication") {
		t.Errorf("roleKafka with kafka.replication 0: %v, want an error naming the field", err)
	}
}

// TestKafkaFlagsAndEnv: every connection setting of the kafka: block has a
// flag and an environment variable; a flag overrides its variable, which
// overrides the file; a bad value names the flag or variable and the field.
func TestKafkaFlagsAndEnv(t *testing.T) {
	for _, s := range kafkaSettings {
		t.Setenv(s.env, "")
	}
	fs := newFlagSet("test", io.Discard)
	k := registerKafkaFlags(fs)
	if err := fs.Parse([]string{"-kafka-tls", "-kafka-sasl-mechanism", "scram-sha-512", "-kafka-sasl-username", "flag-user"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUGUR_KAFKA_SASL_USERNAME", "env-user")
	t.Setenv("AUGUR_KAFKA_SASL_PASSWORD_FILE", "/run/secrets/kafka")
	t.Setenv("AUGUR_KAFKA_CLIENT_ID", "augur-eu")
	c := kafkaconn.Config{ClientID: "file-id", TLS: kafkaconn.TLS{CAFile: "/etc/ca.pem"}}
	if err := k.apply(&c); err != nil {
		t.Fatal(err)
	}
	want := kafkaconn.Config{ClientID: "augur-eu", TLS: kafkaconn.TLS{Enabled: true, CAFile: "/etc/ca.pem"},
		SASL: kafkaconn.SASL{Mechanism: "scram-sha-512", Username: "flag-user", PasswordFile: "/run/secrets/kafka"}}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}

	t.Setenv("AUGUR_KAFKA_TLS", "yes please")
	if err := (kafkaFlags{}).apply(&kafkaconn.Config{}); err == nil || !strings.Contains(err.Error(), "AUGUR_KAFKA_TLS (kafka.tls.enabled)") {
		t.Errorf("bad boolean: %v", err)
	}
	t.Setenv("AUGUR_KAFKA_TLS", "")
	if err := (kafkaFlags{}).apply(&kafkaconn.Config{SASL: kafkaconn.SASL{Mechanism: "gssapi"}}); err == nil || !strings.Contains(err.Error(), "kafka.sasl.mechanism") {
		t.Errorf("bad mechanism: %v", err)
	}
}

// TestRunRefusesADecisionTTLTheActuatorRefuses: a scaling rule whose
// decisions would be valid for longer than act.max_decision_ttl stops
// `augur run` at start, naming both settings (every decision would be
// refused).
func TestRunRefusesADecisionTTLTheActuatorRefuses(t *testing.T) {
	dir := t.TempDir()
	rulesFile, cfgFile := filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "augur.yaml")
	writeFile(t, rulesFile, `rules:
  - name: web
    scaling:
      selector: 'http_requests_total{job="web"}'
      capacity_per_pod: 10
      min_replicas: 1
      max_replicas: 10
      target: {kind: Deployment, namespace: shop, name: web}
      decision_ttl: 2h
`)
	listen := freePort(t)
	writeFile(t, cfgFile, "listen: "+listen+"\ndata_dir: "+filepath.Join(dir, "data")+"\nrules_file: "+rulesFile+"\n")
	code, stderr, ready := failsAtStartup(t, []string{"run", "-config", cfgFile}, listen)
	if code == 0 || ready || !strings.Contains(stderr, `rule "web": scaling.decision_ttl 2h0m0s`) || !strings.Contains(stderr, "act.max_decision_ttl 1h0m0s") {
		t.Fatalf("exit %d, ready %v, stderr %q", code, ready, stderr)
	}
}
