package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// headless loads url in headless Chromium with a fresh profile (removed
// best effort: its helpers may outlive it for a moment) for 15 s of page
// time, with the extra arguments (--dump-dom, --screenshot=...), and
// returns its stdout.
func headless(t *testing.T, browser, url string, extra ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "augur-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + dir,
		"--virtual-time-budget=15000"}, extra...)
	cmd := exec.CommandContext(t.Context(), browser, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v: %s", err, stderr.String())
	}
	return string(b)
}

// artifactsDir is where tests save what a person would look at:
// $AUGUR_TEST_ARTIFACTS, default $TMPDIR/augur-test-artifacts.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AUGUR_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "augur-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
