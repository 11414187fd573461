package trust

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/fault"
)

// Status is the live state of one control.
type Status string

// The statuses. Passing and Failing come from live checks; Planned means no
// check exists yet (never shown as passing); Attested means the operator
// vouches for an organizational control that software cannot verify.
const (
	Passing  Status = "passing"
	Failing  Status = "failing"
	Planned  Status = "planned"
	Attested Status = "attested"
)

// Evidence strings for states the registry decides itself. They are part of
// what the public page shows, so tests pin them.
const (
	EvidenceNotBuilt      = "not built yet"
	EvidenceNotAttested   = "not attested yet"
	EvidenceCheckFailed   = "check failed"
	EvidenceNoEvidence    = "check returned no evidence"
	EvidenceInvalidStatus = "check returned an invalid status"
)

// DefaultTimeout bounds each check when NewRegistry is given no timeout, so
// a Run can never hang on a stuck dependency.
const DefaultTimeout = 5 * time.Second

// maxEvidence caps evidence length: it is published and must stay a line.
const maxEvidence = 500

// Result is what a check measured.
type Result struct {
	Status Status
	// Evidence is the measured evidence in words, e.g. "0 of 12 stored
	// password hashes are not argon2id". A passing result without it is
	// treated as failing: a constant "ok" proves nothing.
	Evidence string
	// Data holds the measured values, machine-readable. It is published on
	// the trust page, so it must never hold secrets or personal data.
	Data map[string]any
}

// Check measures one control live. It must honour ctx (the registry bounds
// it with a timeout) and return counts or timestamps, never secrets.
type Check func(ctx context.Context) Result

// Attestation is the operator's statement about an organizational control.
type Attestation struct {
	Statement   string    // e.g. "Hosting provider holds ISO/IEC 27001 (certificate 1234)"
	EvidenceURL string    // https link to the evidence (certificate, report)
	Date        time.Time // when the statement was last confirmed
}

// Report is the state of one control at one moment, as shown by `rampart
// controls` and the public trust page.
type Report struct {
	ID        string         `json:"id"`
	Family    string         `json:"family"`
	Title     string         `json:"title"`
	Promise   string         `json:"promise"`
	Status    Status         `json:"status"`
	Evidence  string         `json:"evidence"`
	Data      map[string]any `json:"data,omitempty"`
	CheckedAt time.Time      `json:"checked_at"`
}

// Registry holds the checks and attestations for the catalogue and runs
// them. It is safe for concurrent use. Results are cached for the TTL given
// to NewRegistry, and concurrent callers share one run, so the public trust
// page cannot be used to hammer the database behind the checks.
type Registry struct {
	now     func() time.Time
	timeout time.Duration
	ttl     time.Duration
	defs    []Definition
	index   map[string]int // ID → position in defs

	// Logger, if set, receives one line per panicking check (control ID and
	// the panic value's type only: the value may hold sensitive data).
	// Set it before the first Run.
	Logger *slog.Logger

	mu           sync.Mutex
	checks       map[string]Check
	attestations map[string]Attestation
	cached       []Report
	cachedAt     time.Time
	inflight     *flight
	// gen counts changes to checks and attestations, so a run that started
	// before a change does not put its now-stale result in the cache.
	gen uint64
}

// flight is one run shared by every caller that arrives while it is going.
type flight struct {
	done    chan struct{}
	reports []Report
}

// NewRegistry returns a registry over Catalog(). now defaults to time.Now;
// a timeout <= 0 means DefaultTimeout; cacheTTL <= 0 disables the cache
// (concurrent callers still share a run in progress).
func NewRegistry(now func() time.Time, timeout, cacheTTL time.Duration) *Registry {
	if now == nil {
		now = time.Now
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if cacheTTL < 0 {
		cacheTTL = 0
	}
	defs := Catalog()
	index := make(map[string]int, len(defs))
	for i, d := range defs {
		index[d.ID] = i
	}
	return &Registry{
		now:          now,
		timeout:      timeout,
		ttl:          cacheTTL,
		defs:         defs,
		index:        index,
		checks:       make(map[string]Check),
		attestations: make(map[string]Attestation),
	}
}

// Register attaches the live check for control id. Unknown IDs and second
// registrations are errors so a typo or a double wiring fails at start-up
// instead of leaving a control silently "planned". Attestable controls
// take no check: software must not claim to verify them.
func (r *Registry) Register(id string, check Check) error {
	i, ok := r.index[id]
	if !ok {
		return fault.NotFoundf("control_unknown", "unknown control %q", id)
	}
	if r.defs[i].Attestable {
		return fault.Invalidf("control_attested_only", "control %s is attested by the operator and takes no check", id)
	}
	if check == nil {
		return fault.Invalidf("check_missing", "nil check for control %s", id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.checks[id]; dup {
		return fault.Conflictf("control_already_registered", "control %s already has a check", id)
	}
	r.checks[id] = check
	r.cached, r.gen = nil, r.gen+1 // a new check must show up at once
	return nil
}

// Attest records (or replaces) the operator's attestation for an Attestable
// control. The statement, a date not in the future and an https evidence
// link are required: an attestation is only worth what it points to.
func (r *Registry) Attest(id string, a Attestation) error {
	i, ok := r.index[id]
	if !ok {
		return fault.NotFoundf("control_unknown", "unknown control %q", id)
	}
	if !r.defs[i].Attestable {
		return fault.Invalidf("control_not_attestable", "control %s is checked by software and cannot be attested", id)
	}
	a.Statement = cleanEvidence(a.Statement)
	if a.Statement == "" {
		return fault.Invalidf("attestation_statement_missing", "attestation for %s needs a statement", id)
	}
	if a.Date.IsZero() {
		return fault.Invalidf("attestation_date_missing", "attestation for %s needs a date", id)
	}
	if a.Date.After(r.now()) {
		return fault.Invalidf("attestation_date_future", "attestation for %s is dated in the future", id)
	}
	if err := checkHTTPS(a.EvidenceURL); err != nil {
		return fault.Invalidf("attestation_evidence_invalid", "attestation for %s: evidence link %v", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attestations[id] = a
	r.cached, r.gen = nil, r.gen+1
	return nil
}

// Run returns the state of every control in catalogue order. Registered
// checks run concurrently, each bounded by the registry's timeout; a check
// that panics, times out or returns no evidence is reported as failing.
//
// Within the cache TTL the previous result is returned. Callers arriving
// during a run wait for it and share its result. The shared run is detached
// from the caller's cancellation (one visitor closing the trust page must
// not fail the checks for everyone) but keeps ctx's values; it ends within
// about one timeout, so Run never blocks longer than that.
func (r *Registry) Run(ctx context.Context) []Report {
	r.mu.Lock()
	if age := r.now().Sub(r.cachedAt); r.ttl > 0 && r.cached != nil && age >= 0 && age < r.ttl {
		out := cloneReports(r.cached)
		r.mu.Unlock()
		return out
	}
	if f := r.inflight; f != nil {
		r.mu.Unlock()
		<-f.done
		return cloneReports(f.reports)
	}
	f := &flight{done: make(chan struct{})}
	r.inflight = f
	checks := maps.Clone(r.checks)
	attestations := maps.Clone(r.attestations)
	gen := r.gen
	r.mu.Unlock()

	f.reports = r.runAll(context.WithoutCancel(ctx), checks, attestations)

	r.mu.Lock()
	r.inflight = nil
	if r.ttl > 0 && r.gen == gen {
		r.cached = f.reports
		r.cachedAt = r.now()
	}
	r.mu.Unlock()
	close(f.done)
	return cloneReports(f.reports)
}

func (r *Registry) runAll(ctx context.Context, checks map[string]Check, attestations map[string]Attestation) []Report {
	start := r.now()
	reports := make([]Report, len(r.defs))
	var wg sync.WaitGroup
	for i, d := range r.defs {
		reports[i] = Report{ID: d.ID, Family: d.Family, Title: d.Title, Promise: d.Promise, CheckedAt: start}
		switch {
		case d.Attestable:
			a, ok := attestations[d.ID]
			if !ok {
				reports[i].Status, reports[i].Evidence = Planned, EvidenceNotAttested
				continue
			}
			reports[i].Status = Attested
			reports[i].Evidence = fmt.Sprintf("attested %s: %s (evidence: %s)", a.Date.UTC().Format(time.DateOnly), a.Statement, a.EvidenceURL)
			reports[i].Data = map[string]any{"attested_on": a.Date.UTC().Format(time.DateOnly), "evidence_url": a.EvidenceURL}
			// The date the operator vouched for it is the honest "last
			// checked" time; the run time would suggest a live check.
			reports[i].CheckedAt = a.Date
		case checks[d.ID] != nil:
			wg.Go(func() {
				res := r.runOne(ctx, d.ID, checks[d.ID])
				reports[i].Status, reports[i].Evidence, reports[i].Data = res.Status, res.Evidence, res.Data
				reports[i].CheckedAt = r.now()
			})
		default:
			reports[i].Status, reports[i].Evidence = Planned, EvidenceNotBuilt
		}
	}
	wg.Wait()
	return reports
}

// runOne runs one check with the timeout and turns every way it can go wrong
// into a failing result. A check that ignores ctx keeps its goroutine until
// it returns, but the run does not wait for it.
func (r *Registry) runOne(ctx context.Context, id string, check Check) Result {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ch := make(chan Result, 1) // buffered: a late check must not block forever
	go func() {
		defer func() {
			if v := recover(); v != nil {
				if r.Logger != nil {
					r.Logger.Error("control check panicked", "control", id, "panic_type", fmt.Sprintf("%T", v))
				}
				ch <- Result{Status: Failing, Evidence: EvidenceCheckFailed}
			}
		}()
		ch <- check(ctx)
	}()
	select {
	case res := <-ch:
		return normalize(res)
	case <-ctx.Done():
		return Result{
			Status:   Failing,
			Evidence: fmt.Sprintf("check timed out after %s", r.timeout),
			Data:     map[string]any{"timeout_ms": r.timeout.Milliseconds()},
		}
	}
}

// normalize enforces what a check may claim: only passing, failing or
// planned, always with evidence. Data is copied so the check cannot change
// a published result afterwards.
func normalize(res Result) Result {
	switch res.Status {
	case Passing, Failing, Planned:
	default:
		return Result{Status: Failing, Evidence: EvidenceInvalidStatus}
	}
	res.Evidence = cleanEvidence(res.Evidence)
	if res.Evidence == "" {
		return Result{Status: Failing, Evidence: EvidenceNoEvidence}
	}
	res.Data = maps.Clone(res.Data)
	return res
}

// cleanEvidence makes text safe to publish on one line: control characters
// (newlines, escapes that could forge CLI table rows or terminal output)
// become spaces, and overly long text is cut.
func cleanEvidence(s string) string {
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == utf8.RuneError {
			return ' '
		}
		return c
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxEvidence {
		s = string([]rune(s)[:maxEvidence-1]) + "…"
	}
	return s
}

// cloneReports copies the slice and each Data map so callers can't change
// the cached result. Values inside Data are shared; checks store scalars.
func cloneReports(in []Report) []Report {
	out := make([]Report, len(in))
	for i, rep := range in {
		rep.Data = maps.Clone(rep.Data)
		out[i] = rep
	}
	return out
}

// Summary counts reports by status; every status is present, zero or not.
func Summary(reports []Report) map[Status]int {
	m := make(map[Status]int, 4)
	for _, s := range []Status{Passing, Failing, Planned, Attested} {
		m[s] = 0
	}
	for _, rep := range reports {
		m[rep.Status]++
	}
	return m
}

// checkHTTPS reports why raw is not an absolute https URL with a host.
func checkHTTPS(raw string) error {
	if raw == "" {
		return fmt.Errorf("is missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL")
	}
	if u.Scheme != "https" {
		return fmt.Errorf("must use https")
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("needs a host and no credentials")
	}
	return nil
}
