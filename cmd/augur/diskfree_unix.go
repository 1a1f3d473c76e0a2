//go:build unix

package main

import "syscall"

// diskSpace returns the bytes free for unprivileged writes and the size of
// the filesystem holding dir.
func diskSpace(dir string) (free, size uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize) //nolint:gosec,unconvert // block size is positive; its type varies by OS
	return st.Bavail * bs, st.Blocks * bs, true
}
