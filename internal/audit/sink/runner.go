package sink

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// RunnerConfig tunes a Runner; zero values take the defaults.
type RunnerConfig struct {
	Batch      int           // events per delivery; default 500
	MinBackoff time.Duration // first retry delay; default 1s
	MaxBackoff time.Duration // retry delay cap; default 1m
	Poll       time.Duration // wait when caught up (Notify cuts it short); default 1s
	Head       Head          // newest index for Lag; Lag fails without it
	Now        func() time.Time
	// Sleep waits d or until ctx ends (returning its error); tests inject
	// it to run backoff schedules without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
}

// Stats are a runner's counters, for metrics.
type Stats struct {
	Delivered    uint64    // events accepted by the target (a retried batch counts once)
	Batches      uint64    // successful deliveries
	Failures     uint64    // failed attempts: read, deliver or cursor save
	LastError    time.Time // zero when none
	LastDelivery time.Time // zero when none
	Cursor       int64     // last delivered index as the runner knows it; -1 before any
}

// Runner moves events from a Source to one Target, at least once and in
// order: it reads the cursor, fetches the events after it, delivers them,
// and only then advances the cursor. A failed batch is retried as is, with
// exponential backoff, until it is accepted, so a receiver may see a batch
// twice but never misses one. Run exactly one runner per target: runners on
// several nodes sharing a cursor would each deliver the same events.
type Runner struct {
	target Target
	src    Source
	cur    Cursor
	cfg    RunnerConfig
	log    *slog.Logger
	wake   chan struct{}

	mu    sync.Mutex
	stats Stats
}

// NewRunner returns a runner for t; call Run to start it.
func NewRunner(t Target, src Source, cur Cursor, cfg RunnerConfig) *Runner {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	cfg.Now = orNow(cfg.Now)
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Runner{
		target: t, src: src, cur: cur, cfg: cfg,
		log:   log.With("sink", t.Name()),
		wake:  make(chan struct{}, 1),
		stats: Stats{Cursor: -1},
	}
}

// Notify wakes an idle runner early; the audit log's commit tap calls it so
// events leave within moments of being committed. It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then returns ctx's error. Failures are not
// returned: they are retried, counted in Stats and logged by kind only.
func (r *Runner) Run(ctx context.Context) error {
	var (
		cursor  int64
		loaded  bool
		pending []audit.Event
		fails   int
	)
	fail := func(stage string, err error) {
		fails++
		now := r.cfg.Now()
		r.mu.Lock()
		r.stats.Failures++
		r.stats.LastError = now
		r.mu.Unlock()
		fe := fault.As(err)
		r.log.Warn("audit sink attempt failed", "stage", stage, "code", fe.Code, "kind", fe.Kind.String(), "err", err, "attempt", fails)
		_ = r.cfg.Sleep(ctx, r.backoff(fails))
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !loaded {
			c, err := r.cur.SinkCursor(ctx, r.target.Name())
			if err != nil {
				fail("cursor_read", err)
				continue
			}
			cursor, loaded = c, true
			r.setCursor(c)
		}
		if pending == nil {
			evs, err := r.src.After(ctx, cursor, r.cfg.Batch)
			if err != nil {
				fail("read", err)
				continue
			}
			if len(evs) == 0 {
				r.idle(ctx)
				continue
			}
			if err := checkOrder(evs, cursor); err != nil {
				fail("read", err)
				continue
			}
			pending = evs
		}
		if err := r.target.Deliver(ctx, pending); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fail("deliver", err)
			continue
		}
		fails = 0
		cursor = pending[len(pending)-1].ID
		now := r.cfg.Now()
		r.mu.Lock()
		r.stats.Delivered += uint64(len(pending))
		r.stats.Batches++
		r.stats.LastDelivery = now
		r.stats.Cursor = cursor
		r.mu.Unlock()
		pending = nil
		// A failed save is not retried on its own: the next successful
		// batch saves a later cursor anyway, and until then a restart only
		// re-delivers, which at-least-once allows.
		if err := r.cur.SetSinkCursor(ctx, r.target.Name(), cursor); err != nil && ctx.Err() == nil {
			r.mu.Lock()
			r.stats.Failures++
			r.stats.LastError = now
			r.mu.Unlock()
			r.log.Warn("audit sink cursor not saved", "code", fault.As(err).Code, "err", err)
		}
	}
}

// checkOrder refuses a batch that is not strictly ascending after cursor:
// advancing the cursor past such a batch could skip events for good.
func checkOrder(evs []audit.Event, cursor int64) error {
	prev := cursor
	for _, e := range evs {
		if e.ID <= prev {
			return fault.New(fault.Internal, "sink_source_order", "audit source returned events out of order")
		}
		prev = e.ID
	}
	return nil
}

func (r *Runner) backoff(fails int) time.Duration {
	d := r.cfg.MinBackoff
	for i := 1; i < fails && d < r.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.cfg.MaxBackoff)
}

// idle waits Poll, or less when Notify is called.
func (r *Runner) idle(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.wake:
			cancel()
		case <-wctx.Done():
		}
	}()
	_ = r.cfg.Sleep(wctx, r.cfg.Poll)
}

func (r *Runner) setCursor(c int64) {
	r.mu.Lock()
	r.stats.Cursor = c
	r.mu.Unlock()
}

// Lag is how many committed events the target has not yet received: the
// newest index minus the stored cursor.
func (r *Runner) Lag(ctx context.Context) (int64, error) {
	if r.cfg.Head == nil {
		return 0, fault.New(fault.Internal, "sink_no_head", "runner has no head to measure lag against")
	}
	size, err := r.cfg.Head.AuditSize(ctx)
	if err != nil {
		return 0, err
	}
	c, err := r.cur.SinkCursor(ctx, r.target.Name())
	if err != nil {
		return 0, err
	}
	return max(size-1-c, 0), nil
}

// Stats returns a snapshot of the counters.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
