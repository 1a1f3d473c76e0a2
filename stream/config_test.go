package stream

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/augur-ops/augur/proto"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no brokers", Config{SigningKey: testKey}, "brokers: required"},
		{"short key", Config{Brokers: []string{"b"}, SigningKey: []byte("short")}, "signing key: 5 bytes"},
		{"idle", Config{Brokers: []string{"b"}, SigningKey: testKey, IdleTimeout: 1}, "idle timeout"},
		{"ok", Config{Brokers: []string{"b"}, SigningKey: testKey}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.cfg.StateTopic != "augur.state" || tt.cfg.AllowedLateness == 0 || tt.cfg.Rules == nil {
					t.Errorf("defaults not filled: %+v", tt.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEnsureKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "decision.key")
	k1, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 64 {
		t.Fatalf("generated key of %d bytes, want 64 hex digits", len(k1))
	}
	k2, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second EnsureKey changed the key")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode(), err)
	}
}

// FuzzApplyState feeds arbitrary state records to a shard: a bad record is
// an error, never a panic.
func FuzzApplyState(f *testing.F) {
	cfg := testConfig(f)
	in := genInput(f, cfg.Rules, 1, 60)
	e := mustEnv(f, &cfg)
	sh := newShard(0, e)
	rd := new(proto.BlockReader)
	for _, v := range in[0] {
		if err := rd.Reset(v); err != nil {
			f.Fatal(err)
		}
		sh.processBlock(rd)
	}
	recs, err := sh.appendCheckpoint(nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range recs {
		f.Add(r.key, r.value)
	}
	// The state records of every format version (testdata/checkpoint).
	goldens, _ := filepath.Glob("testdata/checkpoint/*.bin")
	for _, path := range goldens {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, r := range parseRecords(f, b) {
			f.Add(r.key, r.value)
		}
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		sh := newShard(0, e)
		_ = sh.apply(key, value)
		if _, err := sh.snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}
