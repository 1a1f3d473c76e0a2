//go:build unix

package bank

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user+system CPU time. Benchmarks report it
// per operation because the wall time of a shared machine overstates cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
