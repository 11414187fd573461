// Package alert raises real-time security alerts (MON-3) from the committed
// audit stream: brute force against an account or from an address,
// credential stuffing, WAF block spikes, unusual decrypt volume, new admins
// and operators, failed rotations, audit verification failures and
// break-glass access. Alerts go to a signed webhook, email or a chat
// incoming webhook; each is de-duplicated, globally rate limited, and itself
// recorded in the audit trail as "alert.raised".
//
// The engine reads the stream the audit log has already committed (its
// OnCommit tap), so an alert always refers to a durable fact, and it never
// slows the log down: Observe only filters and enqueues, dropping (and
// counting) when the queue is full.
package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// Config holds thresholds; zero values take the defaults in brackets.
type Config struct {
	SigninWindow             time.Duration // [10m] window of the two sign-in rules
	SigninFailuresPerAccount int           // [10] failures against one account
	SigninFailuresPerIP      int           // [30] failures from one address
	WAFWindow                time.Duration // [1m]
	WAFBlocks                int           // [200] blocks in WAFWindow, all sources
	DecryptFactor            float64       // [10] k: alert above k × the workspace's baseline
	DecryptFloor             int           // [100] decrypts per minute below which nothing fires
	DecryptAlpha             float64       // [0.2] EWMA weight of the latest minute
	DedupWindow              time.Duration // [15m] same rule and key → one alert
	MaxPerMinute             int           // [20] alerts delivered per minute, all rules
	QueueSize                int           // [1024] batches of events waiting for the engine
	MaxKeys                  int           // [100000] keys tracked per counting rule
	SendTimeout              time.Duration // [10s] one channel's delivery of one alert
}

func (c *Config) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.SigninWindow, 10*time.Minute)
	defInt(&c.SigninFailuresPerAccount, 10)
	defInt(&c.SigninFailuresPerIP, 30)
	def(&c.WAFWindow, time.Minute)
	defInt(&c.WAFBlocks, 200)
	if c.DecryptFactor <= 1 {
		c.DecryptFactor = 10
	}
	defInt(&c.DecryptFloor, 100)
	if c.DecryptAlpha <= 0 || c.DecryptAlpha >= 1 {
		c.DecryptAlpha = 0.2
	}
	def(&c.DedupWindow, 15*time.Minute)
	defInt(&c.MaxPerMinute, 20)
	defInt(&c.QueueSize, 1024)
	defInt(&c.MaxKeys, 100_000)
	def(&c.SendTimeout, 10*time.Second)
}

// Alert is one raised alert. Its JSON form is the webhook payload's data.
type Alert struct {
	ID       string    `json:"id"`
	Rule     string    `json:"rule"`
	Severity string    `json:"severity"`
	Summary  string    `json:"summary"`
	Key      string    `json:"key"`      // what the rule counted or matched by
	KeyKind  string    `json:"key_kind"` // see the Key constants
	Time     time.Time `json:"time"`
	// Workspace and EventID locate the (last) event that triggered it.
	Workspace string `json:"workspace,omitempty"`
	EventID   int64  `json:"event_id"`
	Count     int    `json:"count,omitempty"` // events counted by the rule
	// Suppressed is how many alerts the rate limit held back since the
	// previous delivered alert.
	Suppressed int `json:"suppressed,omitempty"`
}

// Channel delivers alerts somewhere a human will see them.
type Channel interface {
	Name() string
	Send(ctx context.Context, a Alert) error
}

// Deps are the engine's collaborators.
type Deps struct {
	Channels []Channel
	Recorder audit.Recorder // required: every alert is audited
	Log      *slog.Logger
	Now      func() time.Time
}

// Stats are the engine's counters, for metrics.
type Stats struct {
	Observed         uint64 // relevant events queued
	Dropped          uint64 // relevant events dropped: queue full
	Raised           uint64 // alerts raised (delivered or not)
	Deduplicated     uint64 // alerts folded into an earlier one
	RateLimited      uint64 // alerts held back by the global rate limit
	Untracked        uint64 // events not counted: a rule's key table was full
	DeliveryFailures uint64 // failed channel sends
	AlertsDropped    uint64 // alerts dropped: delivery backlog full
	AuditFailures    uint64 // alert.raised events the audit log refused
}

// Engine evaluates the rules. Observe may be called from any goroutine;
// everything else runs on Run's goroutine, so rule state needs no locks.
type Engine struct {
	cfg      Config
	channels []Channel
	rec      audit.Recorder
	log      *slog.Logger
	now      func() time.Time
	queue    chan []audit.Event

	// Rule state, owned by Run's goroutine.
	signinAccount *slidingCount
	signinIP      *slidingCount
	wafBlocks     *slidingCount
	decrypts      *decryptRate
	dedup         map[string]time.Time // rule+key → end of its dedup window
	sent          []time.Time          // times of the last MaxPerMinute alerts
	suppressed    int

	observed, dropped, raised, deduplicated, rateLimited, untracked atomic.Uint64
	deliveryFailures, alertsDropped, auditFailures                  atomic.Uint64

	mu      sync.Mutex // guards running
	running bool
}

// NewEngine checks deps and applies config defaults.
func NewEngine(cfg Config, d Deps) (*Engine, error) {
	if d.Recorder == nil {
		return nil, fault.New(fault.Internal, "alert_no_recorder", "the alert engine needs an audit recorder")
	}
	cfg.defaults()
	now := d.Now
	if now == nil {
		now = time.Now
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &Engine{
		cfg: cfg, channels: d.Channels, rec: d.Recorder, log: log, now: now,
		queue: make(chan []audit.Event, cfg.QueueSize),
		dedup: map[string]time.Time{},
	}
	e.signinAccount = newSlidingCount(cfg.SigninWindow, cfg.SigninFailuresPerAccount, cfg.MaxKeys, &e.untracked)
	e.signinIP = newSlidingCount(cfg.SigninWindow, cfg.SigninFailuresPerIP, cfg.MaxKeys, &e.untracked)
	e.wafBlocks = newSlidingCount(cfg.WAFWindow, cfg.WAFBlocks, 1, &e.untracked)
	e.decrypts = &decryptRate{factor: cfg.DecryptFactor, floor: cfg.DecryptFloor, alpha: cfg.DecryptAlpha,
		maxKeys: cfg.MaxKeys, ws: map[string]*wsRate{}, full: &e.untracked}
	return e, nil
}

// Observe takes a batch of committed events. It is the audit log's OnCommit
// tap, so it must be cheap and must never block: it keeps only events some
// rule reads, copies them (the caller may reuse its slice) and enqueues
// without waiting; on a full queue the events are dropped and counted.
func (e *Engine) Observe(events []audit.Event) {
	n := 0
	for i := range events {
		if relevant(&events[i]) {
			n++
		}
	}
	if n == 0 {
		return
	}
	keep := make([]audit.Event, 0, n)
	for i := range events {
		if relevant(&events[i]) {
			keep = append(keep, events[i])
		}
	}
	select {
	case e.queue <- keep:
		e.observed.Add(uint64(len(keep)))
	default:
		e.dropped.Add(uint64(len(keep)))
	}
}

// Run evaluates queued events and delivers alerts until ctx ends. Alerts
// already raised are still delivered (each channel bounded by SendTimeout)
// before Run returns ctx's error.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return fault.New(fault.Conflict, "alert_engine_running", "the alert engine is already running")
	}
	e.running = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}()

	out := make(chan Alert, 2*e.cfg.MaxPerMinute)
	var wg sync.WaitGroup
	wg.Go(func() {
		for a := range out {
			e.deliver(context.WithoutCancel(ctx), a)
		}
	})
	defer wg.Wait()
	defer close(out)

	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case evs := <-e.queue:
			for _, ev := range evs {
				for _, a := range e.process(ev) {
					e.enqueue(out, a)
				}
			}
		case <-tick.C:
			if a, ok := e.housekeep(); ok {
				e.enqueue(out, a)
			}
		}
	}
}

func (e *Engine) enqueue(out chan<- Alert, a Alert) {
	select {
	case out <- a:
	default:
		e.alertsDropped.Add(1)
		e.log.Error("alert dropped: delivery backlog full", "rule", a.Rule)
	}
}

// process evaluates one event and returns the alerts that pass
// de-duplication and the rate limit, ready to deliver.
func (e *Engine) process(ev audit.Event) []Alert {
	now := e.now()
	var out []Alert
	for _, a := range e.evaluate(ev, now) {
		if a, ok := e.admit(a, now); ok {
			out = append(out, a)
		}
	}
	return out
}

// admit applies de-duplication (same rule and key within DedupWindow) and
// then the global rate limit, and stamps the alert's id and the count of
// alerts suppressed since the last one that went out.
func (e *Engine) admit(a Alert, now time.Time) (Alert, bool) {
	dk := a.Rule + "\x00" + a.Key
	if until, ok := e.dedup[dk]; ok && now.Before(until) {
		e.deduplicated.Add(1)
		return a, false
	}
	if !e.allow(now) {
		e.suppressed++
		e.rateLimited.Add(1)
		return a, false
	}
	e.dedup[dk] = now.Add(e.cfg.DedupWindow)
	a.Suppressed, e.suppressed = e.suppressed, 0
	a.ID = alertID(a)
	e.raised.Add(1)
	return a, true
}

// allow is a sliding one-minute limit of MaxPerMinute alerts.
func (e *Engine) allow(now time.Time) bool {
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(e.sent) && !e.sent[i].After(cut) {
		i++
	}
	e.sent = e.sent[i:]
	if len(e.sent) >= e.cfg.MaxPerMinute {
		return false
	}
	e.sent = append(e.sent, now)
	return true
}

// housekeep forgets expired state and, when the rate limit held alerts back
// and none has gone out since to report it, raises a summary so the count
// is not lost.
func (e *Engine) housekeep() (Alert, bool) {
	now := e.now()
	e.signinAccount.sweep(now)
	e.signinIP.sweep(now)
	e.wafBlocks.sweep(now)
	e.decrypts.sweep(now)
	for k, until := range e.dedup {
		if !now.Before(until) {
			delete(e.dedup, k)
		}
	}
	if e.suppressed == 0 || !e.allow(now) {
		return Alert{}, false
	}
	a := Alert{Rule: RuleSuppressed, Severity: SeverityMedium, KeyKind: KeyGlobal, Key: "rate_limit", Time: now, EventID: -1,
		Summary: strconv.Itoa(e.suppressed) + " alerts were held back by the rate limit", Suppressed: e.suppressed}
	e.suppressed = 0
	a.ID = alertID(a)
	e.raised.Add(1)
	return a, true
}

// alertID is stable for an alert's rule, key and time: a retried webhook
// carries the same id, and ids never contain '.', which the Standard
// Webhooks signature input forbids.
func alertID(a Alert) string {
	h := sha256.New()
	h.Write([]byte(a.Rule))
	h.Write([]byte{0})
	h.Write([]byte(a.Key))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(a.Time.UnixNano(), 10)))
	return "alert_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// deliver sends a to every channel in parallel, then records the alert and
// each channel's result as an "alert.raised" audit event. Logs name the
// rule and channel only: keys may be addresses or account ids.
func (e *Engine) deliver(ctx context.Context, a Alert) {
	results := make([]string, len(e.channels))
	var wg sync.WaitGroup
	for i, ch := range e.channels {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
			defer cancel()
			if err := ch.Send(sctx, a); err != nil {
				e.deliveryFailures.Add(1)
				fe := fault.As(err)
				results[i] = "failed:" + fe.Code
				e.log.Warn("alert delivery failed", "rule", a.Rule, "channel", ch.Name(), "code", fe.Code, "kind", fe.Kind.String())
				return
			}
			results[i] = "ok"
		})
	}
	wg.Wait()

	outcome := audit.Success
	details := map[string]string{
		"alert_id": a.ID, "rule": a.Rule, "severity": a.Severity, "key_kind": a.KeyKind,
		"event_id": strconv.FormatInt(a.EventID, 10), "count": strconv.Itoa(a.Count),
	}
	// An address goes under "ip" so the audit log stores it as a keyed
	// hash when configured to (HashIPs), like every other address.
	if a.KeyKind == KeyIP {
		details["ip"] = a.Key
	} else {
		details["key"] = a.Key
	}
	if a.Suppressed > 0 {
		details["suppressed"] = strconv.Itoa(a.Suppressed)
	}
	for i, ch := range e.channels {
		details["channel."+ch.Name()] = results[i]
		if results[i] != "ok" {
			outcome = audit.Failure
		}
	}
	ev := audit.Event{ActorType: audit.ActorSystem, ActorID: "alert-engine", Workspace: a.Workspace,
		Action: "alert.raised", Target: "alert:" + a.Rule, Outcome: outcome, Details: details}
	if err := e.rec.Record(ctx, ev); err != nil {
		e.auditFailures.Add(1)
		e.log.Error("alert not audited", "rule", a.Rule, "code", fault.As(err).Code)
	}
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Observed: e.observed.Load(), Dropped: e.dropped.Load(), Raised: e.raised.Load(),
		Deduplicated: e.deduplicated.Load(), RateLimited: e.rateLimited.Load(), Untracked: e.untracked.Load(),
		DeliveryFailures: e.deliveryFailures.Load(), AlertsDropped: e.alertsDropped.Load(), AuditFailures: e.auditFailures.Load(),
	}
}
