package ratelimit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// TestRedisBurstAndRetry is the Redis side of the accuracy test. Redis uses
// its own clock, which cannot be frozen, so the policy's interval is long
// (minutes) compared with the test: the burst passes, the next request is
// refused with Retry-After within a few milliseconds of the interval.
func TestRedisBurstAndRetry(t *testing.T) {
	c := testRedis(t)
	prefix := uniquePrefix(t)
	cleanupKeys(t, c, prefix)
	r := NewRedis(c).WithPrefix(prefix)
	ctx := context.Background()
	tests := []Policy{
		{Name: "a", Limit: 10, Period: time.Hour, Burst: 5},
		{Name: "b", Limit: 60, Period: time.Hour},
		{Name: "c", Limit: 1, Period: 10 * time.Minute, Burst: 1},
	}
	for _, p := range tests {
		t.Run(p.String(), func(t *testing.T) {
			iv := p.Period / time.Duration(p.Limit)
			for i := range p.burst() {
				res, err := r.Allow(ctx, "k", p)
				if err != nil || !res.Allowed {
					t.Fatalf("request %d of the burst refused: %+v %v", i, res, err)
				}
				if want := p.burst() - 1 - i; res.Remaining != want {
					t.Errorf("request %d: Remaining = %d, want %d", i, res.Remaining, want)
				}
				if res.RetryAfter != 0 {
					t.Errorf("allowed with RetryAfter %v", res.RetryAfter)
				}
			}
			res, err := r.Allow(ctx, "k", p)
			if err != nil || res.Allowed {
				t.Fatalf("request after burst admitted: %+v %v", res, err)
			}
			if d := iv - res.RetryAfter; d < 0 || d > time.Second {
				t.Errorf("RetryAfter = %v, want just under %v", res.RetryAfter, iv)
			}
			if d := time.Duration(p.burst())*iv - res.ResetAfter; d < 0 || d > time.Second {
				t.Errorf("ResetAfter = %v, want just under %v", res.ResetAfter, time.Duration(p.burst())*iv)
			}
		})
	}
	t.Run("invalid policy", func(t *testing.T) {
		if _, err := r.Allow(ctx, "k", Policy{Name: "x"}); !fault.Is(err, fault.Invalid) {
			t.Errorf("err = %v, want invalid", err)
		}
	})
}

// Environment of the child processes of TestRedisAcrossProcesses.
const (
	childEnv  = "RAMPART_RATELIMIT_CHILD"
	prefixEnv = "RAMPART_RATELIMIT_PREFIX"
	startEnv  = "RAMPART_RATELIMIT_START"
	endEnv    = "RAMPART_RATELIMIT_END"
)

// crossPolicy is the limit both processes share: 40 per second, burst 10.
var crossPolicy = Policy{Name: "cross", Limit: 40, Period: time.Second, Burst: 10}

// TestRedisAcrossProcesses runs the test binary twice more as children.
// Both hammer one key through their own Redis connection between the same
// two wall-clock instants; together they must be admitted Burst + Limit ×
// window, within a small tolerance for requests straddling the edges.
func TestRedisAcrossProcesses(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		crossChild(t)
		return
	}
	c := testRedis(t)
	prefix := uniquePrefix(t)
	cleanupKeys(t, c, prefix)
	const window = 2 * time.Second
	start := time.Now().Add(1500 * time.Millisecond) // time for both to start
	end := start.Add(window)

	outs := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRedisAcrossProcesses$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"=1", prefixEnv+"="+prefix,
				startEnv+"="+strconv.FormatInt(start.UnixNano(), 10), endEnv+"="+strconv.FormatInt(end.UnixNano(), 10))
			out, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(out), err
		})
	}
	wg.Wait()
	total := 0
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("child %d: %v\n%s", i, errs[i], out)
		}
		n, err := admittedFrom(out)
		if err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, out)
		}
		if n == 0 {
			t.Errorf("child %d was admitted nothing: not a shared-budget test", i)
		}
		t.Logf("child %d admitted %d", i, n)
		total += n
	}
	want := crossPolicy.burst() + int(window/(crossPolicy.Period/time.Duration(crossPolicy.Limit)))
	if diff := total - want; diff < -3 || diff > 3 {
		t.Errorf("two processes admitted %d together, want %d ± 3", total, want)
	}
}

func admittedFrom(out string) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ADMITTED="); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("no ADMITTED= line")
}

// crossChild is the body of one child process.
func crossChild(t *testing.T) {
	c := testRedis(t)
	r := NewRedis(c).WithPrefix(os.Getenv(prefixEnv))
	startNs, err1 := strconv.ParseInt(os.Getenv(startEnv), 10, 64)
	endNs, err2 := strconv.ParseInt(os.Getenv(endEnv), 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatal("bad child environment")
	}
	start, end := time.Unix(0, startNs), time.Unix(0, endNs)
	ctx := context.Background()
	_ = c.Ping(ctx) // warm the connection pool before the window
	time.Sleep(time.Until(start))
	var admitted atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(end) {
				res, err := r.Allow(ctx, "shared", crossPolicy)
				if err != nil {
					failed.Store(err)
					return
				}
				if res.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADMITTED=%d\n", admitted.Load())
}

// freePort returns a TCP port nothing listens on (it was free a moment ago).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}
