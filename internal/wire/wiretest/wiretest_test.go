package wiretest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(Dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGoldens(t *testing.T) {
	t.Chdir(t.TempDir())
	if gs := Goldens(t, Dir); len(gs) != 0 {
		t.Fatalf("%d goldens without a directory", len(gs))
	}
	write(t, "v10.bin", "ten")
	write(t, "v9.bin", "nine")
	write(t, "v2.bin.orig", "not a golden")
	write(t, "README.md", "not a golden")
	gs := Goldens(t, Dir)
	if len(gs) != 2 || gs[0].Version != 9 || string(gs[0].Data) != "nine" || gs[1].Version != 10 || string(gs[1].Data) != "ten" {
		t.Errorf("goldens %+v, want versions 9 and 10 in order", gs)
	}
}

// TestCheckUpdate writes the first golden from Fresh and a later one from
// the previous golden restored, and never rewrites one.
func TestCheckUpdate(t *testing.T) {
	t.Chdir(t.TempDir())
	// A toy format: version byte, then the state in upper case from
	// version 2 on.
	format := func(v int) Format {
		return Format{
			Version: v,
			Exact:   true,
			Fresh:   func(*testing.T) []byte { return []byte{byte(v), 'a', 'b'} },
			Restore: func(t *testing.T, data []byte) []byte {
				state := bytes.ToLower(data[1:])
				if string(state) != "ab" {
					t.Errorf("restored %q", state)
				}
				if v >= 2 {
					state = bytes.ToUpper(state)
				}
				return append([]byte{byte(v)}, state...)
			},
		}
	}
	Check(t, format(1), true)
	Check(t, format(2), true)
	Check(t, format(2), true)
	gs := Goldens(t, Dir)
	if len(gs) != 2 || string(gs[0].Data) != "\x01ab" || string(gs[1].Data) != "\x02AB" {
		t.Fatalf("goldens %+v", gs)
	}
	write(t, "v1.bin", "\x01ab")
	Check(t, format(2), false)
}
