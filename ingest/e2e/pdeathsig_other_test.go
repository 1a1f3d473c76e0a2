//go:build !linux

package e2e

import "os/exec"

// setPdeathsig is a no-op where the kernel has no parent-death signal; the
// test's cleanup still kills the child.
func setPdeathsig(*exec.Cmd) {}
