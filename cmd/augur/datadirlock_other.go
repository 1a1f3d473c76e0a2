//go:build !unix

package main

// lockDataDir does not lock on this system.
func lockDataDir(string) (release func(), err error) { return func() {}, nil }
