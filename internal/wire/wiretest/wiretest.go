// Package wiretest checks checkpoint formats against golden files, so a
// checkpoint written by an earlier version of augur (and still in the
// augur.state topic) keeps restoring after its format moves on.
//
// A package keeps one golden per format version in testdata/checkpoint,
// named v<version>.bin. A golden stands for checkpoints already stored: it is
// written once, when its version is new, and never rewritten. Every golden of
// a package holds the same state: the first one is the checkpoint of a fixed
// test state, and each later one the previous golden restored and encoded
// again in the new format.
package wiretest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// Dir is where a package keeps its golden checkpoints.
const Dir = "testdata/checkpoint"

// Golden is the golden checkpoint of one format version.
type Golden struct {
	Version int
	Data    []byte
}

var goldenName = regexp.MustCompile(`^v([0-9]+)\.bin$`)

// Goldens returns the golden checkpoints in dir, oldest version first. A
// missing dir is no goldens.
func Goldens(tb testing.TB, dir string) []Golden {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	var out []Golden
	for _, e := range ents {
		m := goldenName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			tb.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, Golden{Version: v, Data: data})
	}
	slices.SortFunc(out, func(a, b Golden) int { return a.Version - b.Version })
	return out
}

// Format describes one checkpoint format of a package for Check.
type Format struct {
	// Version is the format's current version.
	Version int
	// Fresh returns the checkpoint of the fixed test state in the current
	// format. It writes the first golden of a package (with -update).
	Fresh func(t *testing.T) []byte
	// Restore restores a golden into a new object, checks what it must
	// hold (facts of the fixed test state, written in the test), and
	// returns the restored state encoded by the current encoder.
	Restore func(t *testing.T, data []byte) []byte
	// Exact says the golden of the current version re-encodes to its own
	// bytes. It is false for a format that embeds other formats (state
	// records holding detector checkpoints): those move on by themselves.
	Exact bool
}

// Check runs f against the goldens in Dir. With update, it first writes the
// golden of the current version if there is none: the newest older golden
// restored and encoded again, or f.Fresh when there is no golden yet. An
// existing golden is never rewritten.
//
// It then checks that the golden of the current version exists, that every
// golden restores, and that every golden restores to the same state (the
// same current encoding) as the newest one: an old checkpoint restores to
// what it held.
func Check(t *testing.T, f Format, update bool) {
	t.Helper()
	gs := Goldens(t, Dir)
	if update && (len(gs) == 0 || gs[len(gs)-1].Version < f.Version) {
		var data []byte
		if len(gs) == 0 {
			data = f.Fresh(t)
		} else {
			data = f.Restore(t, gs[len(gs)-1].Data)
		}
		if t.Failed() {
			t.FailNow()
		}
		if err := os.MkdirAll(Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(Dir, fmt.Sprintf("v%d.bin", f.Version))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(data))
		gs = append(gs, Golden{Version: f.Version, Data: data})
	}
	if len(gs) == 0 || gs[len(gs)-1].Version != f.Version {
		t.Fatalf("no golden checkpoint of version %d in %s (write it with -update)", f.Version, Dir)
	}
	cur := gs[len(gs)-1]
	var want []byte
	t.Run(fmt.Sprintf("v%d", cur.Version), func(t *testing.T) {
		want = f.Restore(t, cur.Data)
		if f.Exact && !bytes.Equal(want, cur.Data) {
			t.Errorf("restored state encodes to %d bytes that differ from the golden's %d: the format changed without a new version", len(want), len(cur.Data))
		}
	})
	for _, g := range gs[:len(gs)-1] {
		t.Run(fmt.Sprintf("v%d", g.Version), func(t *testing.T) {
			if got := f.Restore(t, g.Data); !bytes.Equal(got, want) {
				t.Errorf("restored state differs from that of the version %d golden", cur.Version)
			}
		})
	}
}
