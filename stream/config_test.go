package stream

import (
	"bytes"
	"crypto/sha256"
	"fmt"
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

// TestLoadKeyRefusesWhatAugurDidNotMake: a decision key is 64 hex digits
// (what augur run generates and `openssl rand -hex 32` prints). A file cut
// short (a partial copy, a Secret pasted by hand) was accepted as long as
// 16 bytes were left, and became another key: every decision then failed
// the actuator's signature check, which named no file. Loading refuses it,
// naming the file and what is wrong; the forms augur makes load to the
// same key bytes as before (a stream and an actuator of different versions
// still agree).
func TestLoadKeyRefusesWhatAugurDidNotMake(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "decision.key")
	key, err := EnsureKey(gen)
	if err != nil {
		t.Fatal(err)
	}
	hexKey := string(key)
	for _, tt := range []struct {
		name, content, want string
	}{
		{"truncated", hexKey[:40], "40 characters, want 64 hex digits"},
		{"truncated to 16", hexKey[:16] + "\n", "16 characters, want 64 hex digits"},
		{"two keys", hexKey + hexKey, "128 characters, want 64 hex digits"},
		{"not hex", "zz" + hexKey[2:], `character 1 ("z") is not a hex digit`},
		{"a passphrase", "correct horse battery staple, a long passphrase of 64 characters", "not a hex digit"},
		{"inner space", hexKey[:32] + " " + hexKey[32:63], "not a hex digit"},
		{"empty", "\n", "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadKey(path)
			if err == nil {
				t.Fatalf("%q loaded as a key of %d bytes", tt.content, len(k))
			}
			if !strings.Contains(err.Error(), "decision key "+path+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one naming %s and saying %q", err, path, tt.want)
			}
			if _, err := EnsureKey(path); err == nil {
				t.Error("EnsureKey accepted it too")
			}
		})
	}
	for _, tt := range []struct{ name, content string }{
		{"generated", hexKey + "\n"},
		{"no newline", hexKey},
		{"CRLF", hexKey + "\r\n"},
		{"upper case", strings.ToUpper(hexKey)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadKey(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSpace(tt.content); string(k) != want {
				t.Errorf("key %q, want the file's %q (the bytes decisions were always signed with)", k, want)
			}
		})
	}
	if fp := proto.KeyFingerprint(key); len(fp) != 8 || fp != fmt.Sprintf("%x", sha256.Sum256(key))[:8] {
		t.Errorf("fingerprint %q, want the first 8 hex digits of the key's SHA-256", fp)
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
