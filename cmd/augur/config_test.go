package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
}
