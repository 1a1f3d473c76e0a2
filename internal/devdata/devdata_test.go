package devdata

import (
	"os"
	"path/filepath"
	"testing"
)

// From a folder deep in the repository, Dir is ../shared/data next to the
// folder holding go.mod.
func TestDirFromInsideTheRepository(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(wd)) // internal/devdata -> repository
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	t.Chdir(filepath.Join(root, "bench"))
	if got, want := Dir(), filepath.Join(root, "..", "shared", "data"); got != want {
		t.Fatalf("Dir() = %q, want %q", got, want)
	}
}

// Outside any module it falls back to the relative path.
func TestDirOutsideAModule(t *testing.T) {
	t.Chdir(t.TempDir())
	if got, want := Dir(), filepath.Join("..", "shared", "data"); got != want {
		t.Fatalf("Dir() = %q, want %q", got, want)
	}
}
