package e2e

import (
	"os/exec"
	"syscall"
)

// setPdeathsig kills the child when the test process dies without running
// its cleanups (a panic or a timeout), so no Prometheus outlives a run.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
