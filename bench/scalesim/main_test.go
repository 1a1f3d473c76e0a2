package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadTracesLeavesShortOnesOut: a trace no longer than the warm-up is
// left out when the files are read, so every run of the -heldout grid has
// the same traces in the same order (a short trace in the folder made the
// grid's runs one shorter than the file list, and -heldout panicked).
func TestLoadTracesLeavesShortOnesOut(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, hours int) string {
		var b strings.Builder
		b.WriteString("timestamp,value\n")
		for i := range hours * 12 {
			fmt.Fprintf(&b, "%d,%d\n", 1_600_000_000+i*300, 10+i%7)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := []string{write("a_short.csv", 3), write("b_long.csv", 48), write("c_day.csv", 24)}
	traces := loadTraces(files)
	if len(traces) != 1 || traces[0].name != "b_long" {
		names := make([]string, len(traces))
		for i, tr := range traces {
			names[i] = tr.name
		}
		t.Fatalf("traces %v, want [b_long]", names)
	}
	if tr := traces[0]; tr.step.Minutes() != 5 || tr.p90 <= 0 || len(tr.ts) == 0 || len(tr.ts) != len(tr.vs) {
		t.Errorf("b_long read as step %v, p90 %v, %d/%d counter samples", tr.step, tr.p90, len(tr.ts), len(tr.vs))
	}
}
