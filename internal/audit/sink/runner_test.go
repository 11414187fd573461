package sink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
)

// memTarget records batches and fails on demand.
type memTarget struct {
	mu      sync.Mutex
	fail    int
	batches [][]int64
}

func (m *memTarget) Name() string { return "mem" }

func (m *memTarget) Deliver(_ context.Context, evs []audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errors.New("receiver down")
	}
	var ids []int64
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	m.batches = append(m.batches, ids)
	return nil
}

func TestRunnerLag(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		size   int
		cursor int64 // -2: none stored
		want   int64
	}{
		{"empty log", 0, -2, 0},
		{"nothing delivered", 10, -2, 10},
		{"partly delivered", 10, 3, 6},
		{"caught up", 10, 9, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newMemLog(tc.size)
			if tc.cursor != -2 {
				_ = log.SetSinkCursor(ctx, "mem", tc.cursor)
			}
			r := NewRunner(&memTarget{}, log, log, RunnerConfig{Head: log})
			got, err := r.Lag(ctx)
			if err != nil || got != tc.want {
				t.Fatalf("Lag = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	if _, err := NewRunner(&memTarget{}, newMemLog(1), newMemLog(1), RunnerConfig{}).Lag(ctx); err == nil {
		t.Fatal("Lag without a Head succeeded")
	}
}

func TestRunnerResumesFromStoredCursor(t *testing.T) {
	log := newMemLog(10)
	_ = log.SetSinkCursor(context.Background(), "mem", 5)
	tgt := &memTarget{}
	sl := &recSleep{poll: 3 * time.Millisecond}
	r := NewRunner(tgt, log, log, RunnerConfig{Batch: 3, Poll: sl.poll, Sleep: sl.sleep, Head: log})
	runUntil(t, r, 9)
	want := [][]int64{{6, 7, 8}, {9}}
	if len(tgt.batches) != 2 || !equalIDs(tgt.batches[0], want[0]) || !equalIDs(tgt.batches[1], want[1]) {
		t.Fatalf("batches %v, want %v", tgt.batches, want)
	}
	if lag, _ := r.Lag(context.Background()); lag != 0 {
		t.Fatalf("lag %d after catching up", lag)
	}
}

// New events committed while the runner idles are picked up, and Notify
// wakes it without waiting out the poll interval.
func TestRunnerFollowsAndNotify(t *testing.T) {
	log := newMemLog(2)
	tgt := &memTarget{}
	r := NewRunner(tgt, log, log, RunnerConfig{Poll: time.Hour}) // real sleep: only Notify can wake it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitCursor(t, r, 1)
	log.add(3)
	r.Notify()
	waitCursor(t, r, 4)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on cancel")
	}
}

func waitCursor(t *testing.T, r *Runner, c int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Cursor < c {
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d, want %d", r.Stats().Cursor, c)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunnerBackoffCapAndReset(t *testing.T) {
	log := newMemLog(4)
	tgt := &memTarget{fail: 8}
	sl := &recSleep{poll: 3 * time.Millisecond}
	r := NewRunner(tgt, log, log, RunnerConfig{Batch: 2, Poll: sl.poll, Sleep: sl.sleep, MinBackoff: time.Second, MaxBackoff: time.Minute})
	runUntil(t, r, 3)
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		want[i] *= time.Second
	}
	if got := sl.got(); !equalDurations(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	// The first batch was retried as is; no event is skipped or reordered.
	if len(tgt.batches) != 2 || !equalIDs(tgt.batches[0], []int64{0, 1}) || !equalIDs(tgt.batches[1], []int64{2, 3}) {
		t.Fatalf("batches %v", tgt.batches)
	}
	if st := r.Stats(); st.Failures != 8 || st.Delivered != 4 || st.Batches != 2 || st.LastDelivery.IsZero() {
		t.Fatalf("stats %+v", st)
	}
}

// A failed cursor save does not lose events: later saves catch up, and a
// restart would only re-deliver.
func TestRunnerCursorSaveFailure(t *testing.T) {
	log := newMemLog(4)
	log.failSet = 1
	tgt := &memTarget{}
	sl := &recSleep{poll: 3 * time.Millisecond}
	r := NewRunner(tgt, log, log, RunnerConfig{Batch: 2, Poll: sl.poll, Sleep: sl.sleep})
	runUntil(t, r, 3)
	if c, _ := log.SinkCursor(context.Background(), "mem"); c != 3 {
		t.Fatalf("stored cursor %d", c)
	}
	if st := r.Stats(); st.Failures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

type badSource struct{}

func (badSource) After(context.Context, int64, int) ([]audit.Event, error) {
	return []audit.Event{{ID: 3}, {ID: 2}}, nil
}

func TestRunnerRefusesOutOfOrderSource(t *testing.T) {
	log := newMemLog(0)
	tgt := &memTarget{}
	sl := &recSleep{poll: 3 * time.Millisecond}
	r := NewRunner(tgt, badSource{}, log, RunnerConfig{Sleep: sl.sleep, Poll: sl.poll})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for r.Stats().Failures < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if len(tgt.batches) != 0 || r.Stats().Cursor != -1 {
		t.Fatalf("delivered an out-of-order batch: %v", tgt.batches)
	}
}
