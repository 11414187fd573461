package alert

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type memRecorder struct {
	mu     sync.Mutex
	events []audit.Event
	tap    func([]audit.Event) // like the log's OnCommit
}

func (m *memRecorder) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	e.ID = int64(len(m.events))
	m.events = append(m.events, e)
	tap := m.tap
	m.mu.Unlock()
	if tap != nil {
		tap([]audit.Event{e})
	}
	return nil
}

func (m *memRecorder) all() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Event(nil), m.events...)
}

func newTestEngine(t *testing.T, cfg Config, c *clock) *Engine {
	t.Helper()
	e, err := NewEngine(cfg, Deps{Recorder: &memRecorder{}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRulesFireAtThreshold(t *testing.T) {
	signin := func(target, ip string) audit.Event {
		return audit.Event{Action: "auth.signin", Outcome: audit.Failure, Target: target, IP: ip}
	}
	for _, tc := range []struct {
		name      string
		ev        func(i int) audit.Event
		threshold int    // the event number (1-based) that must fire; 0 = never within 300
		rule      string // expected rule
	}{
		{"failed sign-ins per account", func(i int) audit.Event { return signin("user:1", fmt.Sprintf("192.0.2.%d", i)) }, 10, RuleSigninFailuresAccount},
		{"failed sign-ins per address", func(i int) audit.Event { return signin(fmt.Sprintf("user:%d", i), "192.0.2.7") }, 30, RuleSigninFailuresIP},
		{"unknown-account failures count per address", func(i int) audit.Event { return signin("", "192.0.2.7") }, 30, RuleSigninFailuresIP},
		{"successful sign-ins never", func(i int) audit.Event {
			return audit.Event{Action: "auth.signin", Outcome: audit.Success, Target: "user:1", IP: "192.0.2.7"}
		}, 0, ""},
		{"denied (throttled) sign-ins are not failures", func(i int) audit.Event {
			return audit.Event{Action: "auth.signin", Outcome: audit.Denied, Target: "user:1", IP: "192.0.2.7"}
		}, 0, ""},
		{"credential stuffing", func(i int) audit.Event {
			return audit.Event{Action: "auth.credential_stuffing", Outcome: audit.Denied, Target: "ip:192.0.2.9"}
		}, 1, RuleCredentialStuffing},
		{"waf blocks spiking", func(i int) audit.Event {
			return audit.Event{Action: "waf.block", Outcome: audit.Denied, IP: fmt.Sprintf("198.51.100.%d", i%250)}
		}, 200, RuleWAFSpike},
		{"admin role granted", func(i int) audit.Event {
			return audit.Event{Action: "member.role_change", Outcome: audit.Success, Workspace: "ws1", Target: "user:2", Details: map[string]string{"roles": "editor,admin"}}
		}, 1, RuleNewAdmin},
		{"non-admin role change never", func(i int) audit.Event {
			return audit.Event{Action: "member.role_change", Outcome: audit.Success, Workspace: "ws1", Target: "user:2", Details: map[string]string{"roles": "editor,administrator"}}
		}, 0, ""},
		{"role change adding editor to an admin never", func(i int) audit.Event {
			return audit.Event{Action: "member.role_change", Outcome: audit.Success, Workspace: "ws1", Target: "user:2", Details: map[string]string{"roles": "admin,editor", "added": "editor"}}
		}, 0, ""},
		{"workspace created", func(i int) audit.Event {
			return audit.Event{Action: "workspace.create", Outcome: audit.Success, Target: "workspace:w9"}
		}, 1, RuleNewAdmin},
		{"new operator", func(i int) audit.Event {
			return audit.Event{Action: "operator.add", Outcome: audit.Success, Target: "user:op"}
		}, 1, RuleNewOperator},
		{"failed operator add never", func(i int) audit.Event {
			return audit.Event{Action: "operator.add", Outcome: audit.Failure, Target: "user:op"}
		}, 0, ""},
		{"failed rotation", func(i int) audit.Event {
			return audit.Event{Action: "secret.rotation_failed", Outcome: audit.Failure, Workspace: "ws1", Target: "secret:db"}
		}, 1, RuleRotationFailed},
		{"failed key rotation", func(i int) audit.Event {
			return audit.Event{Action: "vault.rotate", Outcome: audit.Failure, Workspace: "ws1", Target: "kek"}
		}, 1, RuleRotationFailed},
		{"successful key rotation never", func(i int) audit.Event {
			return audit.Event{Action: "vault.rotate", Outcome: audit.Success, Workspace: "ws1", Target: "kek"}
		}, 0, ""},
		{"rate-limit backend fell back", func(i int) audit.Event {
			return audit.Event{Action: "ratelimit.backend_failed", Outcome: audit.Failure}
		}, 1, RuleRateLimitFallback},
		{"audit verification failure", func(i int) audit.Event {
			return audit.Event{Action: "audit.verify_failed", Outcome: audit.Failure}
		}, 1, RuleAuditVerifyFailed},
		{"break-glass", func(i int) audit.Event {
			return audit.Event{Action: "support.break_glass", Outcome: audit.Success, Workspace: "ws1", ActorID: "op1"}
		}, 1, RuleBreakGlass},
		{"alerts never alert", func(i int) audit.Event {
			return audit.Event{Action: "alert.raised", Outcome: audit.Failure, Details: map[string]string{"rule": "break_glass"}}
		}, 0, ""},
		{"unrelated actions never", func(i int) audit.Event {
			return audit.Event{Action: "vault.encrypt", Outcome: audit.Success, Workspace: "ws1"}
		}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			e := newTestEngine(t, Config{}, c)
			limit := tc.threshold
			if limit == 0 {
				limit = 300
			}
			for i := 1; i <= limit; i++ {
				c.Add(100 * time.Millisecond)
				got := e.process(tc.ev(i))
				switch {
				case i < tc.threshold || tc.threshold == 0:
					if len(got) != 0 {
						t.Fatalf("event %d raised %+v", i, got)
					}
				default:
					if len(got) != 1 || got[0].Rule != tc.rule {
						t.Fatalf("event %d raised %+v, want one %s", i, got, tc.rule)
					}
					if got[0].ID == "" || got[0].Time != c.Now() {
						t.Fatalf("alert not stamped: %+v", got[0])
					}
				}
			}
		})
	}
}

// Failures spread wider than the window never add up to an alert.
func TestSigninWindowSlides(t *testing.T) {
	c := newClock()
	e := newTestEngine(t, Config{SigninWindow: 10 * time.Minute, SigninFailuresPerAccount: 3}, c)
	ev := audit.Event{Action: "auth.signin", Outcome: audit.Failure, Target: "user:1"}
	for i := range 10 {
		if got := e.process(ev); len(got) != 0 {
			t.Fatalf("event %d alerted: %+v", i, got)
		}
		c.Add(5*time.Minute + time.Second) // two per window at most
	}
	c.Add(10 * time.Minute)
	for i := range 2 {
		if got := e.process(ev); len(got) != 0 {
			t.Fatalf("event %d after the pause alerted: %+v", i, got)
		}
		c.Add(time.Minute)
	}
	if got := e.process(ev); len(got) != 1 || got[0].Count != 3 || got[0].KeyKind != KeyAccount {
		t.Fatalf("third within the window: %+v", got)
	}
}

func TestDecryptVolume(t *testing.T) {
	dec := func(ws string) audit.Event {
		return audit.Event{Action: "vault.decrypt", Outcome: audit.Success, Workspace: ws}
	}
	// minutes runs per-minute counts, each minute starting on its boundary,
	// and returns the number (1-based) of the event of the last minute
	// that fired, or 0.
	type step struct {
		counts []int
		fireAt int // in the last minute; 0 = never
	}
	for _, tc := range []struct {
		name string
		step
		idle int // minutes of silence before the last minute
	}{
		{"above k x baseline", step{[]int{20, 20, 20, 300}, 201}, 0},
		{"floor when the baseline is low", step{[]int{5, 5, 5, 150}, 100}, 0},
		{"steady busy workspace never", step{[]int{500, 500, 500, 500, 520}, 0}, 0},
		{"cold start needs k x floor", step{[]int{1500}, 1000}, 0},
		{"partial first minute does not set the baseline", step{[]int{2, 300, 300}, 0}, 0},
		{"baseline decays while idle", step{[]int{20, 20, 20, 150}, 100}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			e := newTestEngine(t, Config{}, c)
			fired := 0
			for m, n := range tc.counts {
				last := m == len(tc.counts)-1
				if last && tc.idle > 0 {
					c.Add(time.Duration(tc.idle) * time.Minute)
				}
				start := c.Now()
				for i := 1; i <= n; i++ {
					got := e.process(dec("ws1"))
					// Another workspace's traffic never affects ws1.
					e.process(dec("ws2"))
					if len(got) > 0 && got[0].Rule == RuleDecryptVolume && fired == 0 {
						if !last {
							t.Fatalf("minute %d event %d fired: %+v", m, i, got)
						}
						fired = i
					}
				}
				c.t = start.Add(time.Minute)
			}
			if fired != tc.fireAt {
				t.Fatalf("fired at %d, want %d", fired, tc.fireAt)
			}
		})
	}
}

func TestDedup(t *testing.T) {
	c := newClock()
	e := newTestEngine(t, Config{DedupWindow: 15 * time.Minute}, c)
	op := func(target string) audit.Event {
		return audit.Event{Action: "operator.add", Outcome: audit.Success, Target: target}
	}
	steps := []struct {
		advance time.Duration
		target  string
		want    int
	}{
		{0, "user:a", 1},
		{time.Minute, "user:a", 0},               // same rule and key: folded
		{0, "user:b", 1},                         // another key
		{13 * time.Minute, "user:a", 0},          // still inside the window (14m)
		{time.Minute + time.Second, "user:a", 1}, // window over
	}
	for i, s := range steps {
		c.Add(s.advance)
		if got := e.process(op(s.target)); len(got) != s.want {
			t.Fatalf("step %d: %d alerts, want %d", i, len(got), s.want)
		}
	}
	if st := e.Stats(); st.Deduplicated != 2 || st.Raised != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRateLimit(t *testing.T) {
	c := newClock()
	e := newTestEngine(t, Config{MaxPerMinute: 3}, c)
	op := func(i int) audit.Event {
		return audit.Event{Action: "operator.add", Outcome: audit.Success, Target: fmt.Sprintf("user:%d", i)}
	}
	n := 0
	for i := range 5 {
		n += len(e.process(op(i)))
		c.Add(time.Second)
	}
	if n != 3 {
		t.Fatalf("%d alerts in a minute, want 3", n)
	}
	c.Add(time.Minute)
	got := e.process(op(99))
	if len(got) != 1 || got[0].Suppressed != 2 {
		t.Fatalf("next alert %+v, want Suppressed=2", got)
	}
	// With nothing else to carry the count, housekeeping summarizes it.
	for i := 100; i < 104; i++ {
		e.process(op(i))
	}
	if a, ok := e.housekeep(); ok {
		t.Fatalf("summary raised while still rate limited: %+v", a)
	}
	c.Add(time.Minute)
	a, ok := e.housekeep()
	if !ok || a.Rule != RuleSuppressed || a.Suppressed != 2 {
		t.Fatalf("summary %+v %v", a, ok)
	}
	if _, ok := e.housekeep(); ok {
		t.Fatal("summary raised twice")
	}
	if st := e.Stats(); st.RateLimited != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// Key tables are bounded: an attacker spraying addresses cannot grow them.
func TestMaxKeys(t *testing.T) {
	c := newClock()
	e := newTestEngine(t, Config{MaxKeys: 5}, c)
	for i := range 20 {
		e.process(audit.Event{Action: "auth.signin", Outcome: audit.Failure, IP: fmt.Sprintf("192.0.2.%d", i)})
	}
	if len(e.signinIP.keys) != 5 || e.Stats().Untracked != 15 {
		t.Fatalf("keys %d untracked %d", len(e.signinIP.keys), e.Stats().Untracked)
	}
	c.Add(11 * time.Minute)
	e.housekeep()
	if len(e.signinIP.keys) != 0 {
		t.Fatalf("expired keys kept: %d", len(e.signinIP.keys))
	}
}

func TestObserveNeverBlocks(t *testing.T) {
	c := newClock()
	e := newTestEngine(t, Config{QueueSize: 1}, c)
	relevant := []audit.Event{{Action: "operator.add", Outcome: audit.Success}, {Action: "vault.encrypt"}}
	done := make(chan struct{})
	go func() {
		for range 3 {
			e.Observe(relevant)
		}
		e.Observe([]audit.Event{{Action: "vault.encrypt"}, {Action: "alert.raised"}})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Observe blocked")
	}
	if st := e.Stats(); st.Observed != 1 || st.Dropped != 2 {
		t.Fatalf("stats %+v", st)
	}
	if got := <-e.queue; len(got) != 1 || got[0].Action != "operator.add" {
		t.Fatalf("queued %+v", got)
	}
}
