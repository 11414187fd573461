package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/privacy/ingest"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/trust"
)

type ingestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ingestClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *ingestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newIngestApp(t *testing.T, cfg config.Config, clk *ingestClock) *app.App {
	t.Helper()
	a, err := app.New(context.Background(), cfg, app.Options{Log: testLog(t), Now: clk.Now})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func ingestReport(t *testing.T, a *app.App) trust.Report {
	t.Helper()
	for _, r := range a.Trust.Run(context.Background()) {
		if r.ID == "APP-9" {
			return r
		}
	}
	t.Fatal("no APP-9 report")
	return trust.Report{}
}

// TestIngestWiring: the APP-9 live check passes through the real handler
// and leaves nothing behind; the retention sweep deletes expired events
// only; with ingestion off the check fails. On both engines.
func TestIngestWiring(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine)
			}
			clk := &ingestClock{t: time.Now().Truncate(time.Second)}
			a := newIngestApp(t, testConfig(t, db), clk)
			ctx := context.Background()

			r := ingestReport(t, a)
			if r.Status != trust.Passing || !strings.Contains(r.Evidence, "plain HTTP refused (403)") {
				t.Fatalf("APP-9: %s: %s", r.Status, r.Evidence)
			}
			if ws, err := a.Store.AllWorkspaces(ctx); err != nil || len(ws) != 0 {
				t.Fatalf("the probe left %d workspaces behind (%v)", len(ws), err)
			}

			// Retention: events under the 30-day class expire before the
			// 12-month default.
			u, _, err := a.Identity.ProvisionUser(ctx, "owner@example.com")
			if err != nil {
				t.Fatal(err)
			}
			w, err := a.Tenancy.CreateWorkspace(ctx, tenancy.Principal{UserID: u.ID}, "Shop")
			if err != nil {
				t.Fatal(err)
			}
			evs, err := ingest.Decode([]byte(`{"events":[{"name":"a"},{"name":"b"}]}`), a.Ingest.Limits(), clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Ingest.Accept(ctx, w.ID, ingest.Source{Class: "30d"}, evs[:1]); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Ingest.Accept(ctx, w.ID, ingest.Source{}, evs[1:]); err != nil {
				t.Fatal(err)
			}
			if n, err := a.Ingest.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("early sweep deleted %d (%v)", n, err)
			}
			clk.Advance(31 * 24 * time.Hour)
			if n, err := a.Ingest.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep after 31 days deleted %d (%v)", n, err)
			}
			page, err := a.Ingest.Events(ctx, ingest.Actor{Type: audit.ActorSystem, ID: "test"}, w.ID, "", 10)
			if err != nil || len(page.Events) != 1 || page.Events[0].Event.Name != "b" || page.Events[0].Class != "12mo" {
				t.Fatalf("after the sweep: %+v, %v", page.Events, err)
			}
			clk.Advance(335 * 24 * time.Hour)
			if n, err := a.Ingest.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep after a year deleted %d (%v)", n, err)
			}
			if s := a.Ingest.Stats(); s.Swept != 2 || s.Accepted < 3 || s.Dropped < 1 || s.Scrubbed < 3 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestIngestDisabledCheckFails(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.Ingest.Enabled = false
	a := newIngestApp(t, cfg, &ingestClock{t: time.Now()})
	if r := ingestReport(t, a); r.Status != trust.Failing || !strings.Contains(r.Evidence, "disabled") {
		t.Fatalf("APP-9 with ingestion off: %s: %s", r.Status, r.Evidence)
	}
}

func TestIngestConfigChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.IngestConfig)
		want   string
	}{
		{"bad class", func(c *config.IngestConfig) { c.RetentionClasses = []string{"12mo"} }, "ingest.retention_classes"},
		{"short class", func(c *config.IngestConfig) { c.RetentionClasses = []string{"x=1m"} }, "ingest.retention_classes"},
		{"unknown default", func(c *config.IngestConfig) { c.DefaultRetention = "forever" }, "ingest.default_retention"},
		{"bad pattern", func(c *config.IngestConfig) { c.EventNamePattern = "[" }, "ingest.event_name_pattern"},
		{"body over the cap", func(c *config.IngestConfig) { c.MaxBatchBytes = 2 << 20 }, "ingest.max_batch_bytes"},
		{"zero rate", func(c *config.IngestConfig) { c.RatePerSecond = 0 }, "ingest.rate_per_second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			tc.mutate(&cfg.Ingest)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want a problem with %s", err, tc.want)
			}
		})
	}
}
