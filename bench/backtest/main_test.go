package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScoreableLeavesConstantSeriesOut: a constant series, whose MASE is
// 0/0, is left out of the benchmark (its NaN made every mean NaN and every
// held-out choice the grid's first setting); the others stay.
func TestScoreableLeavesConstantSeriesOut(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v func(i int) int) string {
		var b strings.Builder
		b.WriteString("timestamp,value\n")
		for i := range 600 {
			fmt.Fprintf(&b, "%d,%d\n", 1_600_000_000+i*300, v(i))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	varying := write("varying.csv", func(i int) int { return 10 + i%7 })
	got := scoreable([]string{write("constant.csv", func(int) int { return 5 }), varying})
	if len(got) != 1 || got[0] != varying {
		t.Fatalf("scoreable kept %v, want only %s", got, varying)
	}
}
