package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// TestLocalGCRAAccuracy drives the limiter with an injected clock: from a
// rested key exactly Burst requests pass at once, then one per interval, so
// over a closed window of one Period exactly Burst + Limit are admitted;
// Retry-After names the exact wait.
func TestLocalGCRAAccuracy(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
	}{
		{"10 per second burst 5", Policy{Name: "a", Limit: 10, Period: time.Second, Burst: 5}},
		{"100 per minute default burst", Policy{Name: "b", Limit: 100, Period: time.Minute}},
		{"3 per hour burst 1", Policy{Name: "c", Limit: 3, Period: time.Hour, Burst: 1}},
		{"7 per 700ms burst 20", Policy{Name: "d", Limit: 7, Period: 700 * time.Millisecond, Burst: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			l := NewLocal(clk.Now, 1000)
			ctx := context.Background()
			burst := tt.p.burst()
			iv := tt.p.Period / time.Duration(tt.p.Limit)

			// The burst, all at one instant, with Remaining counting down.
			for i := range burst {
				r, err := l.Allow(ctx, "k", tt.p)
				if err != nil || !r.Allowed {
					t.Fatalf("request %d of the burst refused: %+v %v", i, r, err)
				}
				if want := burst - 1 - i; r.Remaining != want {
					t.Errorf("request %d: Remaining = %d, want %d", i, r.Remaining, want)
				}
				if want := time.Duration(i+1) * iv; r.ResetAfter != want {
					t.Errorf("request %d: ResetAfter = %v, want %v", i, r.ResetAfter, want)
				}
				if r.RetryAfter != 0 || r.Limit != tt.p.Limit {
					t.Errorf("request %d: RetryAfter = %v, Limit = %d", i, r.RetryAfter, r.Limit)
				}
			}
			r, err := l.Allow(ctx, "k", tt.p)
			if err != nil || r.Allowed {
				t.Fatalf("request after the burst admitted: %+v %v", r, err)
			}
			if r.RetryAfter != iv || r.Remaining != 0 {
				t.Errorf("denied: RetryAfter = %v (want %v), Remaining = %d", r.RetryAfter, iv, r.Remaining)
			}
			// Just before Retry-After: still refused; at it: admitted.
			clk.Add(iv - 1)
			if r, _ := l.Allow(ctx, "k", tt.p); r.Allowed {
				t.Error("admitted 1ns before Retry-After")
			}
			clk.Add(1)
			if r, _ := l.Allow(ctx, "k", tt.p); !r.Allowed {
				t.Error("refused at Retry-After")
			}

			// Over a fresh key and a closed window of one Period, hammering
			// every iv/4: exactly Burst + Limit admitted.
			admitted := 0
			start := clk.Now()
			for !clk.Now().After(start.Add(tt.p.Period)) {
				for range 3 {
					if r, _ := l.Allow(ctx, "window", tt.p); r.Allowed {
						admitted++
					}
				}
				clk.Add(iv / 4)
			}
			if want := burst + tt.p.Limit; admitted != want {
				t.Errorf("admitted %d in one period, want %d", admitted, want)
			}
		})
	}
}

func TestLocalKeysAndPoliciesIndependent(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(clk.Now, 100)
	ctx := context.Background()
	one := Policy{Name: "one", Limit: 1, Period: time.Minute, Burst: 1}
	other := Policy{Name: "other", Limit: 1, Period: time.Minute, Burst: 1}
	for _, c := range []struct {
		key  string
		p    Policy
		want bool
	}{
		{"a", one, true}, {"a", one, false}, {"b", one, true}, {"a", other, true}, {"a", other, false},
	} {
		if r, _ := l.Allow(ctx, c.key, c.p); r.Allowed != c.want {
			t.Errorf("%s/%s: allowed = %v, want %v", c.key, c.p.Name, r.Allowed, c.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p  Policy
		ok bool
	}{
		{Policy{Limit: 1, Period: time.Second}, true},
		{Policy{Limit: 1e9, Period: time.Nanosecond, Burst: 1e9}, true},
		{Policy{Limit: 0, Period: time.Second}, false},
		{Policy{Limit: -1, Period: time.Second}, false},
		{Policy{Limit: 1, Period: 0}, false},
		{Policy{Limit: 1, Period: -time.Second}, false},
		{Policy{Limit: 1, Period: 400 * 24 * time.Hour}, false},
		{Policy{Limit: 1, Period: time.Second, Burst: -1}, false},
		{Policy{Limit: 1, Period: 366 * 24 * time.Hour, Burst: 1e9}, false}, // burst × interval overflows
	}
	l := NewLocal(nil, 10)
	for _, tt := range tests {
		err := tt.p.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%+v: Validate = %v, want ok=%v", tt.p, err, tt.ok)
		}
		if _, err := l.Allow(context.Background(), "k", tt.p); (err == nil) != tt.ok {
			t.Errorf("%+v: Allow err = %v", tt.p, err)
		} else if err != nil && !fault.Is(err, fault.Invalid) {
			t.Errorf("%+v: kind %v, want invalid", tt.p, fault.KindOf(err))
		}
	}
}

// TestLocalBoundedMemory sprays keys: the map never grows past maxKeys;
// rested keys make room without counting as evictions, live ones are
// evicted (and counted) only when they must be.
func TestLocalBoundedMemory(t *testing.T) {
	for _, maxKeys := range []int{1, 10, 64, 1000, 5000} {
		t.Run(fmt.Sprint(maxKeys), func(t *testing.T) {
			clk := newFakeClock()
			l := NewLocal(clk.Now, maxKeys)
			p := Policy{Name: "p", Limit: 1, Period: time.Hour}
			for i := range 20000 {
				if r, err := l.Allow(context.Background(), fmt.Sprint("live-", i), p); err != nil || !r.Allowed {
					t.Fatalf("fresh key refused: %+v %v", r, err)
				}
			}
			st := l.Stats()
			if st.Keys > maxKeys || st.Keys == 0 {
				t.Errorf("Keys = %d, want 1..%d", st.Keys, maxKeys)
			}
			if st.Evictions == 0 {
				t.Error("no evictions counted though live keys overflowed")
			}
			// Once everything has rested, new keys take the place of rested
			// ones without further evictions (few enough new keys that no
			// shard fills with live ones).
			clk.Add(2 * time.Hour)
			before := l.Stats().Evictions
			for i := range max(1, maxKeys/8) {
				_, _ = l.Allow(context.Background(), fmt.Sprint("new-", i), p)
			}
			if got := l.Stats(); got.Evictions != before || got.Keys > maxKeys {
				t.Errorf("after rest: %+v, evictions before %d", got, before)
			}
		})
	}
}

// TestLocalConcurrentExact hammers one key from many goroutines at a frozen
// instant: exactly Burst are admitted, whatever the interleaving (run with
// -race).
func TestLocalConcurrentExact(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(clk.Now, 1000)
	p := Policy{Name: "c", Limit: 5, Period: time.Minute, Burst: 137}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if r, _ := l.Allow(context.Background(), "shared", p); r.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 137 {
		t.Errorf("admitted %d, want 137", admitted.Load())
	}
}
