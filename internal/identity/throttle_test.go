package identity

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// tclock is a settable clock for the throttle's unit tests.
type tclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tclock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *tclock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var throttleCfg = ThrottleConfig{
	AccountFreeFailures: 3,
	AccountLockAfter:    6,
	AccountLockDuration: 15 * time.Minute,
	IPFreeFailures:      10,
	BaseDelay:           time.Second,
	MaxDelay:            10 * time.Second,
	StuffingAccounts:    3,
	StuffingWindow:      10 * time.Minute,
	StuffingBlock:       time.Hour,
}

func newTestThrottle(cfg ThrottleConfig) (*throttle, *tclock) {
	c := &tclock{t: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newThrottle(cfg, c.now), c
}

func TestThrottleBackoff(t *testing.T) {
	for _, tc := range []struct {
		free, failures int
		want           time.Duration
	}{
		{free: 3, failures: 1, want: 0},
		{free: 3, failures: 2, want: 0},
		{free: 3, failures: 3, want: time.Second}, // the free failures are used up
		{free: 3, failures: 4, want: 2 * time.Second},
		{free: 3, failures: 5, want: 4 * time.Second},
		{free: 3, failures: 6, want: 8 * time.Second},
		{free: 3, failures: 7, want: 10 * time.Second}, // capped
		{free: 3, failures: 200, want: 10 * time.Second},
		{free: 0, failures: 1, want: time.Second},
		{free: 0, failures: 2, want: 2 * time.Second},
		{free: 1, failures: 1, want: time.Second},
		{free: 10, failures: 9, want: 0},
		{free: 10, failures: 10, want: time.Second},
	} {
		t.Run(fmt.Sprintf("free %d failures %d", tc.free, tc.failures), func(t *testing.T) {
			th, _ := newTestThrottle(throttleCfg)
			for i := 1; i <= tc.failures; i++ {
				if n := th.fail("k", tc.free); n != i {
					t.Fatalf("fail #%d returned count %d", i, n)
				}
			}
			if got := th.wait("k"); got != tc.want {
				t.Errorf("wait = %v, want %v", got, tc.want)
			}
			if got := th.wait("other"); got != 0 {
				t.Errorf("an unrelated key waits %v", got)
			}
		})
	}
}

func TestThrottleWaitElapses(t *testing.T) {
	th, c := newTestThrottle(throttleCfg)
	for range 5 {
		th.fail("k", 3)
	}
	if got := th.wait("k"); got != 4*time.Second {
		t.Fatalf("wait = %v, want 4s", got)
	}
	c.advance(3 * time.Second)
	if got := th.wait("k"); got != time.Second {
		t.Fatalf("wait after 3s = %v, want 1s", got)
	}
	c.advance(time.Second)
	if got := th.wait("k"); got != 0 {
		t.Fatalf("wait after the delay = %v, want 0", got)
	}
	// The count survives the delay: the next failure waits longer still.
	th.fail("k", 3)
	if got := th.wait("k"); got != 8*time.Second {
		t.Fatalf("wait after a further failure = %v, want 8s", got)
	}
}

func TestThrottleReset(t *testing.T) {
	th, _ := newTestThrottle(throttleCfg)
	for range 6 {
		th.fail("k", 3)
	}
	th.fail("keep", 0)
	th.reset("k")
	if got := th.wait("k"); got != 0 {
		t.Fatalf("wait after reset = %v", got)
	}
	if n := th.fail("k", 3); n != 1 {
		t.Fatalf("count after reset = %d, want 1", n)
	}
	if th.wait("keep") == 0 {
		t.Fatal("reset of one key cleared another")
	}
	th.reset("never-seen") // no panic
}

func TestThrottleBlock(t *testing.T) {
	th, c := newTestThrottle(throttleCfg)
	th.block("k", 15*time.Minute)
	if got := th.wait("k"); got != 15*time.Minute {
		t.Fatalf("wait = %v, want 15m", got)
	}
	th.block("k", time.Minute) // a shorter block does not shorten a longer one
	if got := th.wait("k"); got != 15*time.Minute {
		t.Fatalf("wait after a shorter block = %v, want 15m", got)
	}
	c.advance(15 * time.Minute)
	if got := th.wait("k"); got != 0 {
		t.Fatalf("wait after the block = %v", got)
	}
}

func TestThrottleStuffing(t *testing.T) {
	t.Run("distinct accounts within the window", func(t *testing.T) {
		th, c := newTestThrottle(throttleCfg)
		steps := []struct {
			account string
			want    bool
		}{{"a", false}, {"a", false}, {"b", false}, {"b", false}, {"c", true}, {"d", false}, {"e", false}, {"f", false}}
		for i, s := range steps {
			if got := th.failAccountFrom("ip1", s.account); got != s.want {
				t.Fatalf("step %d (%s): newly blocked = %v, want %v", i, s.account, got, s.want)
			}
		}
		if got := th.stuffingBlocked("ip1"); got != time.Hour {
			t.Fatalf("blocked for %v, want 1h", got)
		}
		if got := th.stuffingBlocked("ip2"); got != 0 {
			t.Fatalf("another source blocked for %v", got)
		}
		c.advance(time.Hour)
		if got := th.stuffingBlocked("ip1"); got != 0 {
			t.Fatalf("still blocked after the block: %v", got)
		}
		// Accounts seen before the block do not carry over.
		if th.failAccountFrom("ip1", "g") {
			t.Fatal("blocked again by a single account")
		}
	})

	t.Run("old failures leave the window", func(t *testing.T) {
		th, c := newTestThrottle(throttleCfg)
		th.failAccountFrom("ip1", "a")
		c.advance(6 * time.Minute)
		th.failAccountFrom("ip1", "b")
		c.advance(5 * time.Minute) // "a" is now 11 minutes old
		if th.failAccountFrom("ip1", "c") {
			t.Fatal("blocked although only two accounts failed within the window")
		}
		if !th.failAccountFrom("ip1", "d") {
			t.Fatal("b, c and d within the window should block")
		}
	})

	t.Run("disabled", func(t *testing.T) {
		cfg := throttleCfg
		cfg.StuffingAccounts = 0
		th, _ := newTestThrottle(cfg)
		for i := range 100 {
			if th.failAccountFrom("ip1", fmt.Sprint(i)) {
				t.Fatal("stuffing detection fired while disabled")
			}
		}
		if th.stuffingBlocked("ip1") != 0 {
			t.Fatal("blocked while disabled")
		}
	})
}

func TestThrottleGC(t *testing.T) {
	th, c := newTestThrottle(throttleCfg)
	// keep = max(MaxDelay+LockDuration, StuffingWindow+StuffingBlock) = 70m.
	for i := range 1100 {
		th.fail(fmt.Sprint("stale-", i), 100) // no delay, just a count
	}
	th.failAccountFrom("stale-source", "x")
	th.block("locked", 3*time.Hour) // long block: must survive however old
	for i := range 3 {
		th.failAccountFrom("blocked-source", fmt.Sprint("acct-", i)) // the third blocks it for 1h
	}
	c.advance(2*time.Hour - time.Minute)
	th.fail("recent", 100)
	th.failAccountFrom("recent-source", "y")
	c.advance(time.Minute)
	th.fail("trigger", 100) // runs the collection

	th.mu.Lock()
	defer th.mu.Unlock()
	for i := range 1100 {
		if _, ok := th.entries[fmt.Sprint("stale-", i)]; ok {
			t.Fatalf("stale entry %d kept", i)
		}
	}
	for _, k := range []string{"locked", "recent", "trigger"} {
		if _, ok := th.entries[k]; !ok {
			t.Errorf("active entry %q dropped", k)
		}
	}
	if _, ok := th.sources["stale-source"]; ok {
		t.Error("stale source kept")
	}
	if _, ok := th.sources["blocked-source"]; ok {
		t.Error("source whose block ended 1h ago and unseen for 2h kept")
	}
	if _, ok := th.sources["recent-source"]; !ok {
		t.Error("recent source dropped")
	}
	if d := th.entries["locked"].next.Sub(c.t); d != time.Hour {
		t.Errorf("surviving block shortened to %v", d)
	}
}

func TestThrottleGCSmallTableUntouched(t *testing.T) {
	th, c := newTestThrottle(throttleCfg)
	for i := range 100 {
		th.fail(fmt.Sprint("k", i), 100)
	}
	c.advance(24 * time.Hour)
	th.fail("trigger", 100)
	th.mu.Lock()
	defer th.mu.Unlock()
	if len(th.entries) != 101 {
		t.Fatalf("entries = %d: a small table should not be swept", len(th.entries))
	}
}

func TestThrottleConcurrent(t *testing.T) {
	th, c := newTestThrottle(throttleCfg)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprint("k", i%7)
				th.fail(k, 3)
				th.wait(k)
				th.failAccountFrom(fmt.Sprint("ip", g), k)
				th.stuffingBlocked(fmt.Sprint("ip", g))
				if i%50 == 0 {
					th.reset(k)
					c.advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
}
