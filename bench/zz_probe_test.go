package bench

import (
	"syscall"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestProbeSequential(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROBE_N"))
	a := newApp(t)
	accts := createAccounts(t, a, 8)
	warmUp(t, a.Handler, accts)
	var lat []time.Duration
	for i := range n {
		s := time.Now()
		c, _ := signIn(a.Handler, accts[i%8], workerAddr(i))
		lat = append(lat, time.Since(s))
		if c != 200 { t.Fatal(c) }
	}
	h := hashTime(a.Config.Password, 9)
	t.Logf("seq signin median %v p99 %v, hash %v", median(lat), percentile(lat, 99), h)
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
