// Package devdata finds the development data the bench tools default to:
// ../shared/data next to the repository (the folder holding go.mod), so a
// tool finds it from any directory inside the repository and no tool names
// a machine's absolute path.
package devdata

import (
	"os"
	"path/filepath"
)

// Dir returns ../shared/data next to the repository that holds the working
// directory, or ../shared/data relative to it when no go.mod is found above.
func Dir() string {
	if wd, err := os.Getwd(); err == nil {
		for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return filepath.Join(d, "..", "shared", "data")
			}
		}
	}
	return filepath.Join("..", "shared", "data")
}
