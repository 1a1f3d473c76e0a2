package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (the kernel scales to it
// whatever its internal HZ).
const clockTicks = 100

// ProcCPUSeconds returns the CPU time (user + system, all threads, reaped
// children excluded) process pid has used, from /proc/<pid>/stat, with a
// resolution of 10 ms.
func ProcCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields", len(f)+2)
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stm, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc stat: utime %q stime %q", f[11], f[12])
	}
	return float64(ut+stm) / clockTicks, nil
}

func readCPU(pids []int) ([]float64, error) {
	out := make([]float64, len(pids))
	for i, p := range pids {
		s, err := ProcCPUSeconds(p)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func selfCPU() (float64, error) { return ProcCPUSeconds(os.Getpid()) }
