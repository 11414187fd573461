//go:build unix

package tenancy_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used so far.
// Unlike wall time it is not inflated when other processes take the cores
// of a shared machine, so checks per CPU-second is a steadier per-core
// figure than checks per second divided by GOMAXPROCS.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
