package trust

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// clock is a settable time source safe for the registry's goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func byID(reports []Report) map[string]Report {
	m := make(map[string]Report, len(reports))
	for _, r := range reports {
		m[r.ID] = r
	}
	return m
}

func TestRunStates(t *testing.T) {
	const timeout = 50 * time.Millisecond
	stuck := make(chan struct{})
	defer close(stuck) // lets the check that ignores ctx finish after the test

	tests := []struct {
		id           string
		check        Check // nil: not registered
		wantStatus   Status
		wantEvidence string // prefix
		wantData     map[string]any
	}{
		{id: "ENC-6", check: func(context.Context) Result {
			return Result{Status: Passing, Evidence: "0 of 12 stored password hashes are not argon2id", Data: map[string]any{"total": 12, "weak": 0}}
		}, wantStatus: Passing, wantEvidence: "0 of 12 stored password hashes are not argon2id", wantData: map[string]any{"total": 12, "weak": 0}},
		{id: "TLS-2", check: func(context.Context) Result {
			return Result{Status: Failing, Evidence: "HSTS max-age 300 < 31536000"}
		}, wantStatus: Failing, wantEvidence: "HSTS max-age 300 < 31536000"},
		{id: "AUTH-3", check: func(context.Context) Result {
			return Result{Status: Planned, Evidence: "no identity provider configured"}
		}, wantStatus: Planned, wantEvidence: "no identity provider configured"},
		{id: "TLS-1", check: func(context.Context) Result { return Result{Status: Passing} },
			wantStatus: Failing, wantEvidence: EvidenceNoEvidence},
		{id: "TLS-3", check: func(context.Context) Result { return Result{Status: Passing, Evidence: " \n\t "} },
			wantStatus: Failing, wantEvidence: EvidenceNoEvidence},
		{id: "ENC-1", check: func(context.Context) Result { return Result{Status: Attested, Evidence: "trust me"} },
			wantStatus: Failing, wantEvidence: EvidenceInvalidStatus},
		{id: "ENC-2", check: func(context.Context) Result { return Result{Evidence: "zero status"} },
			wantStatus: Failing, wantEvidence: EvidenceInvalidStatus},
		{id: "ENC-3", check: func(context.Context) Result { return Result{Status: "green", Evidence: "x"} },
			wantStatus: Failing, wantEvidence: EvidenceInvalidStatus},
		{id: "ENC-4", check: func(context.Context) Result { panic("boom") },
			wantStatus: Failing, wantEvidence: EvidenceCheckFailed},
		{id: "ENC-5", check: func(ctx context.Context) Result {
			<-ctx.Done()
			return Result{Status: Passing, Evidence: "too late"}
		}, wantStatus: Failing, wantEvidence: "check timed out after 50ms", wantData: map[string]any{"timeout_ms": int64(50)}},
		{id: "ENC-7", check: func(context.Context) Result {
			<-stuck // ignores ctx entirely
			return Result{Status: Passing, Evidence: "never seen"}
		}, wantStatus: Failing, wantEvidence: "check timed out"},
		{id: "SEC-1", check: func(context.Context) Result {
			return Result{Status: Passing, Evidence: "3 secrets\nFAKE-1  passing  forged row\x1b[0m"}
		}, wantStatus: Passing, wantEvidence: "3 secrets FAKE-1  passing  forged row [0m"},
		{id: "SEC-2", wantStatus: Planned, wantEvidence: EvidenceNotBuilt},
		{id: "ORG-1", wantStatus: Planned, wantEvidence: EvidenceNotAttested},
	}

	clk := newClock()
	reg := NewRegistry(clk.Now, timeout, 0)
	for _, tt := range tests {
		if tt.check != nil {
			if err := reg.Register(tt.id, tt.check); err != nil {
				t.Fatalf("Register(%s): %v", tt.id, err)
			}
		}
	}
	start := time.Now()
	reports := reg.Run(context.Background())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v with a %v timeout", d, timeout)
	}
	if len(reports) != len(Catalog()) {
		t.Fatalf("got %d reports, want %d", len(reports), len(Catalog()))
	}
	for i, d := range Catalog() {
		r := reports[i]
		if r.ID != d.ID || r.Family != d.Family || r.Title != d.Title || r.Promise != d.Promise {
			t.Errorf("report %d = %s/%s, want catalogue entry %s", i, r.ID, r.Family, d.ID)
		}
		if r.CheckedAt.IsZero() {
			t.Errorf("%s: zero CheckedAt", r.ID)
		}
	}
	got := byID(reports)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			r := got[tt.id]
			if r.Status != tt.wantStatus || !strings.HasPrefix(r.Evidence, tt.wantEvidence) {
				t.Errorf("got %s %q, want %s %q", r.Status, r.Evidence, tt.wantStatus, tt.wantEvidence)
			}
			if tt.wantData != nil && !mapsEqual(r.Data, tt.wantData) {
				t.Errorf("data %v, want %v", r.Data, tt.wantData)
			}
		})
	}
	// Every control without a check is planned, never passing.
	for _, r := range reports {
		if _, ok := reg.checks[r.ID]; !ok && r.Status != Planned {
			t.Errorf("%s has no check but status %s", r.ID, r.Status)
		}
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func TestRegisterErrors(t *testing.T) {
	ok := func(context.Context) Result { return Result{Status: Passing, Evidence: "ok"} }
	tests := []struct {
		name  string
		id    string
		check Check
		want  fault.Kind
	}{
		{"unknown", "TLS-99", ok, fault.NotFound},
		{"empty id", "", ok, fault.NotFound},
		{"duplicate", "TLS-1", ok, fault.Conflict},
		{"attested control", "ORG-2", ok, fault.Invalid},
		{"nil check", "TLS-2", nil, fault.Invalid},
	}
	reg := NewRegistry(nil, 0, 0)
	if err := reg.Register("TLS-1", ok); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reg.Register(tt.id, tt.check)
			if err == nil || !fault.Is(err, tt.want) {
				t.Errorf("got %v, want kind %s", err, tt.want)
			}
		})
	}
}

func TestAttest(t *testing.T) {
	clk := newClock()
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	good := Attestation{Statement: "Hosting provider holds ISO/IEC 27001", EvidenceURL: "https://example.com/iso.pdf", Date: day}

	errTests := []struct {
		name string
		id   string
		a    Attestation
		want fault.Kind
	}{
		{"unknown", "ORG-9", good, fault.NotFound},
		{"software control", "TLS-1", good, fault.Invalid},
		{"no statement", "ORG-1", Attestation{Statement: " ", EvidenceURL: good.EvidenceURL, Date: day}, fault.Invalid},
		{"no date", "ORG-1", Attestation{Statement: "x", EvidenceURL: good.EvidenceURL}, fault.Invalid},
		{"future date", "ORG-1", Attestation{Statement: "x", EvidenceURL: good.EvidenceURL, Date: clk.Now().Add(time.Hour)}, fault.Invalid},
		{"no evidence", "ORG-1", Attestation{Statement: "x", Date: day}, fault.Invalid},
		{"http evidence", "ORG-1", Attestation{Statement: "x", EvidenceURL: "http://example.com/a", Date: day}, fault.Invalid},
		{"relative evidence", "ORG-1", Attestation{Statement: "x", EvidenceURL: "/a", Date: day}, fault.Invalid},
	}
	reg := NewRegistry(clk.Now, 0, time.Minute)
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if err := reg.Attest(tt.id, tt.a); !fault.Is(err, tt.want) {
				t.Errorf("got %v, want kind %s", err, tt.want)
			}
		})
	}

	before := byID(reg.Run(context.Background()))["ORG-1"]
	if before.Status != Planned {
		t.Fatalf("unattested ORG-1 is %s", before.Status)
	}
	if err := reg.Attest("ORG-1", good); err != nil {
		t.Fatal(err)
	}
	// Attesting must show at once, even inside the cache TTL.
	r := byID(reg.Run(context.Background()))["ORG-1"]
	if r.Status != Attested {
		t.Fatalf("status %s, want attested", r.Status)
	}
	for _, want := range []string{"2026-03-02", good.Statement, good.EvidenceURL} {
		if !strings.Contains(r.Evidence, want) {
			t.Errorf("evidence %q lacks %q", r.Evidence, want)
		}
	}
	if !r.CheckedAt.Equal(day) {
		t.Errorf("CheckedAt %v, want the attestation date %v", r.CheckedAt, day)
	}
	if r.Data["evidence_url"] != good.EvidenceURL || r.Data["attested_on"] != "2026-03-02" {
		t.Errorf("data %v", r.Data)
	}
}

func TestCache(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		advance   time.Duration
		wantCalls int32
	}{
		{"within ttl", time.Minute, 59 * time.Second, 1},
		{"ttl passed", time.Minute, time.Minute, 2},
		{"no cache", 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			var calls atomic.Int32
			reg := NewRegistry(clk.Now, time.Second, tt.ttl)
			if err := reg.Register("ENC-6", func(context.Context) Result {
				n := calls.Add(1)
				return Result{Status: Passing, Evidence: "run", Data: map[string]any{"n": n}}
			}); err != nil {
				t.Fatal(err)
			}
			reg.Run(context.Background())
			clk.Advance(tt.advance)
			reg.Run(context.Background())
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("check ran %d times, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestCacheInvalidatedByRegister(t *testing.T) {
	reg := NewRegistry(newClock().Now, time.Second, time.Hour)
	reg.Run(context.Background())
	if err := reg.Register("TLS-2", func(context.Context) Result {
		return Result{Status: Passing, Evidence: "max-age=63072000; includeSubDomains"}
	}); err != nil {
		t.Fatal(err)
	}
	if r := byID(reg.Run(context.Background()))["TLS-2"]; r.Status != Passing {
		t.Errorf("new check hidden by cache: %s %q", r.Status, r.Evidence)
	}
}

func TestRunSharesOneFlight(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	reg := NewRegistry(newClock().Now, 5*time.Second, time.Minute)
	if err := reg.Register("ENC-6", func(ctx context.Context) Result {
		calls.Add(1)
		<-release
		return Result{Status: Passing, Evidence: "shared"}
	}); err != nil {
		t.Fatal(err)
	}
	const callers = 20
	var wg sync.WaitGroup
	results := make([][]Report, callers)
	for i := range callers {
		wg.Go(func() { results[i] = reg.Run(context.Background()) })
	}
	time.Sleep(50 * time.Millisecond) // let every caller reach Run
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("check ran %d times for %d concurrent callers, want 1", got, callers)
	}
	for i, rs := range results {
		if r := byID(rs)["ENC-6"]; r.Status != Passing || r.Evidence != "shared" {
			t.Errorf("caller %d got %s %q", i, r.Status, r.Evidence)
		}
	}
}

func TestCancelledCallerDoesNotFailChecks(t *testing.T) {
	reg := NewRegistry(nil, time.Second, 0)
	if err := reg.Register("ENC-6", func(ctx context.Context) Result {
		if err := ctx.Err(); err != nil {
			return Result{Status: Failing, Evidence: err.Error()}
		}
		return Result{Status: Passing, Evidence: "ctx alive"}
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := byID(reg.Run(ctx))["ENC-6"]; r.Status != Passing {
		t.Errorf("got %s %q", r.Status, r.Evidence)
	}
}

func TestRunResultsAreCopies(t *testing.T) {
	data := map[string]any{"count": 1}
	reg := NewRegistry(newClock().Now, time.Second, time.Hour)
	if err := reg.Register("ENC-6", func(context.Context) Result {
		return Result{Status: Passing, Evidence: "e", Data: data}
	}); err != nil {
		t.Fatal(err)
	}
	first := reg.Run(context.Background())
	data["count"] = 99                     // the check changes its map afterwards
	byID(first)["ENC-6"].Data["count"] = 7 // a caller changes its copy
	first[0].Status = Failing
	second := reg.Run(context.Background()) // cached
	r := byID(second)["ENC-6"]
	if r.Data["count"] != 1 {
		t.Errorf("cached data changed to %v", r.Data["count"])
	}
	if second[0].Status != Planned { // TLS-1 has no check
		t.Errorf("cached report changed through a returned slice: %s", second[0].Status)
	}
}

func TestPanicLogsNoDetail(t *testing.T) {
	var buf bytes.Buffer
	reg := NewRegistry(nil, time.Second, 0)
	reg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	if err := reg.Register("SEC-1", func(context.Context) Result {
		panic("password=hunter2")
	}); err != nil {
		t.Fatal(err)
	}
	r := byID(reg.Run(context.Background()))["SEC-1"]
	if r.Status != Failing || r.Evidence != EvidenceCheckFailed || r.Data != nil {
		t.Errorf("got %+v", r)
	}
	log := buf.String()
	if !strings.Contains(log, "SEC-1") {
		t.Errorf("log lacks the control ID: %q", log)
	}
	if strings.Contains(log, "hunter2") {
		t.Errorf("log leaked the panic value: %q", log)
	}
}

func TestSummary(t *testing.T) {
	got := Summary([]Report{{Status: Passing}, {Status: Passing}, {Status: Planned}, {Status: Attested}})
	want := map[Status]int{Passing: 2, Failing: 0, Planned: 1, Attested: 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}
