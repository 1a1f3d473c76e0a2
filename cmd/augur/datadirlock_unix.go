//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive lock on <dir>/augur.lock for as long as
// the process runs the embedded broker: two brokers writing one data dir
// would corrupt each other's log. It returns the release of the lock.
func lockDataDir(dir string) (release func(), err error) {
	dir = filepath.Clean(dir) // "" is the working directory
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	path := filepath.Join(dir, "augur.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data_dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil { //nolint:gosec // a descriptor fits an int
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is in use by another augur run (%s is locked): stop it, or give this one its own data_dir", dir, path)
		}
		return nil, fmt.Errorf("data_dir lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
