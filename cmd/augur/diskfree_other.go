//go:build !unix

package main

// diskSpace is not measured on this system.
func diskSpace(string) (free, size uint64, ok bool) { return 0, 0, false }
