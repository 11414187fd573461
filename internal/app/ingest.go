package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
	"github.com/rampartsec/rampart/internal/privacy/ingest"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/web"
)

// ingestParts is event ingestion's share of the App (APP-9).
type ingestParts struct {
	// Ingest is the service; nil when ingestion is disabled.
	Ingest       *ingest.Service
	ingestLimit  *ratelimit.Local
	ingestPolicy ratelimit.Policy
}

// ingestSealer is the sealer events go through: the per-workspace key
// hierarchy when wired, else a keyring with a key derived for this purpose.
func (a *App) ingestSealer() (vault.Sealer, error) {
	if a.Sealer != nil {
		return a.Sealer, nil
	}
	kr := vault.NewKeyring(a.rand)
	if err := kr.Add(1, a.root.Derive("rampart/ingest-events/v1", 32)); err != nil {
		return nil, err
	}
	if err := kr.SetPrimary(1); err != nil {
		return nil, err
	}
	return vault.KeyringSealer{Keyring: kr}, nil
}

func (a *App) buildIngest(ctx context.Context) error {
	ic := a.Config.Ingest
	if !ic.Enabled {
		return nil
	}
	for _, p := range []tenancy.Permission{
		{Name: ingest.PermIngest, Description: "Send events to the ingestion API"},
		{Name: ingest.PermManage, Description: "Manage publishable keys and opt-outs; read ingested events"},
	} {
		if err := a.Tenancy.RegisterPermission(ctx, p); err != nil {
			return fmt.Errorf("register permission %s: %w", p.Name, err)
		}
	}
	classes, err := ic.Classes()
	if err != nil {
		return fmt.Errorf("retention classes: %w", err)
	}
	pattern, err := ic.NamePattern()
	if err != nil {
		return fmt.Errorf("event name pattern: %w", err)
	}
	lim := ingest.DefaultLimits()
	lim.MaxEvents, lim.MaxEventBytes, lim.NamePattern = ic.MaxBatchEvents, ic.MaxEventBytes, pattern
	lim.MaxProperties, lim.MaxDepth, lim.MaxKeyLen, lim.MaxStringLen = ic.MaxProperties, ic.MaxPropertyDepth, ic.MaxPropertyKeyLen, ic.MaxStringLen
	sealer, err := a.ingestSealer()
	if err != nil {
		return err
	}
	svc, err := ingest.New(ingest.Config{Limits: lim, Classes: classes, DefaultClass: ic.DefaultRetention,
		OptOutKey: a.root.Derive("rampart/ingest-opt-outs/v1", 32)},
		ingest.Deps{Store: a.Store, Sealer: sealer, Audit: a.Audit, Log: a.Log, Now: a.now, Rand: a.rand})
	if err != nil {
		return err
	}
	a.ingestPolicy = ratelimit.Policy{Name: "ingest", Limit: ic.RatePerSecond, Period: time.Second, Burst: ic.Burst}
	if err := a.ingestPolicy.Validate(); err != nil {
		return err
	}
	a.ingestLimit = ratelimit.NewLocal(a.now, 100_000)
	a.Ingest = svc
	a.jobs = append(a.jobs, a.runIngestSweep)
	a.Metrics.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_ingest_events_accepted_total", Help: "Ingested events stored."},
			func() float64 { return float64(svc.Stats().Accepted) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_ingest_events_dropped_total", Help: "Ingested events dropped because their subject opted out."},
			func() float64 { return float64(svc.Stats().Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_ingest_values_scrubbed_total", Help: "Personal-data values replaced in ingested events."},
			func() float64 { return float64(svc.Stats().Scrubbed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_ingest_batches_rejected_total", Help: "Ingestion batches refused by the schema."},
			func() float64 { return float64(svc.Stats().Rejected) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_ingest_events_expired_total", Help: "Ingested events deleted by the retention sweep."},
			func() float64 { return float64(svc.Stats().Swept) }),
	)
	return nil
}

// runIngestSweep deletes expired events every sweep_interval on the node
// holding the "ingest-retention" leadership.
func (a *App) runIngestSweep(ctx context.Context) {
	t := time.NewTicker(a.Config.Ingest.SweepInterval)
	defer t.Stop()
	for {
		release, ok, err := a.Store.TryLeader(ctx, "ingest-retention")
		if err != nil && ctx.Err() == nil {
			a.Log.Warn("ingest: leadership check failed", "err", err)
		}
		if ok {
			n, err := a.Ingest.Sweep(ctx)
			release()
			switch {
			case err != nil && ctx.Err() == nil:
				a.Log.Error("ingest retention sweep failed", "err", err)
			case n > 0:
				a.Log.Info("ingest retention sweep", "deleted", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) ingestWebDeps() web.IngestDeps {
	if a.Ingest == nil {
		return web.IngestDeps{}
	}
	return web.IngestDeps{Ingest: a.Ingest, Limiter: a.ingestLimit, Rate: a.ingestPolicy, MaxBodyBytes: a.Config.Ingest.MaxBatchBytes}
}

func (a *App) ingestChecks() map[string]trust.Check {
	return map[string]trust.Check{"APP-9": a.checkIngest}
}

// Probe values: one of each kind of personal data the scrubber handles.
const (
	probeEmail = "probe.person@example.com"
	probePhone = "+1 415 555 0100"
	probeCard  = "4111 1111 1111 1111" // gitleaks:allow (the standard Visa test number)
)

// APP-9: a probe ingestion through the real handler. In a scratch
// workspace (deleted afterwards), with a fresh publishable key: a plain-HTTP
// request is refused; an event carrying an email, a phone number and a card
// number is stored scrubbed and sealed (the stored bytes contain none of
// them, and decrypt to the placeholders); an opted-out user's event is
// dropped; a schema violation is refused.
func (a *App) checkIngest(ctx context.Context) trust.Result {
	if a.Ingest == nil {
		return failing("event ingestion is disabled (ingest.enabled: false)")
	}
	ws, cleanup, err := a.ingestProbeWorkspace(ctx)
	if err != nil {
		return failing("could not set up the probe workspace")
	}
	defer cleanup()
	actor := ingest.Actor{Type: audit.ActorSystem, ID: "controls"}
	_, key, err := a.Ingest.CreateKey(ctx, actor, ws, "APP-9 probe", "")
	if err != nil {
		return failing("could not create a probe publishable key")
	}
	post := func(path, body string, overTLS bool) (int, []byte) {
		req := httptest.NewRequest(http.MethodPost, "https://localhost"+path, strings.NewReader(body))
		if !overTLS {
			req.TLS = nil
		} else if req.TLS == nil {
			req.TLS = &tls.ConnectionState{}
		}
		req.RemoteAddr = "127.0.0.1:0"
		req.Header.Set("User-Agent", "rampart-controls-probe")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, b
	}
	payload := fmt.Sprintf(`{"events":[{"name":"probe","user_id":"probe-user","properties":{"note":"mail %s call %s","card":%q}}]}`,
		probeEmail, probePhone, probeCard)

	plainStatus, _ := post("/v1/ingest/events", payload, false)
	if plainStatus != http.StatusForbidden {
		return failing("a plain-HTTP ingestion request was answered %d, not refused", plainStatus)
	}
	if st, _ := post("/v1/ingest/events", `{"events":[{"name":"probe","surprise":1}]}`, true); st != http.StatusBadRequest {
		return failing("an event with an unknown field was answered %d, not 400", st)
	}
	st, body := post("/v1/ingest/events", payload, true)
	var res struct{ Accepted, Dropped, Scrubbed int }
	if st != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Accepted != 1 {
		return failing("the probe event was not accepted (status %d)", st)
	}
	page, err := a.Ingest.Events(ctx, actor, ws, "", 10)
	if err != nil || len(page.Events) != 1 {
		return failing("the probe event could not be read back")
	}
	id := page.Events[0].ID
	raw, err := a.Ingest.RawPayload(ctx, ws, id)
	if err != nil {
		return failing("the probe event's stored bytes could not be read")
	}
	for _, secret := range []string{probeEmail, probePhone, probeCard, "probe-user", `"note"`} {
		if bytes.Contains(raw, []byte(secret)) {
			return failing("the stored event contains plaintext")
		}
	}
	decrypted, _ := json.Marshal(page.Events[0].Event.Properties)
	for _, pii := range []string{probeEmail, probePhone, probeCard} {
		if bytes.Contains(decrypted, []byte(pii)) {
			return failing("the stored event still holds personal data after decryption")
		}
	}
	if !bytes.Contains(decrypted, []byte(ingest.PlaceholderEmail)) || !bytes.Contains(decrypted, []byte(ingest.PlaceholderPhone)) ||
		!bytes.Contains(decrypted, []byte(ingest.PlaceholderCard)) {
		return failing("the stored event lacks the scrubber's placeholders")
	}
	if st, _ := post("/v1/ingest/opt-out", `{"user_id":"probe-user"}`, true); st != http.StatusOK {
		return failing("the probe opt-out was answered %d", st)
	}
	st, body = post("/v1/ingest/events", payload, true)
	res = struct{ Accepted, Dropped, Scrubbed int }{}
	if st != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Accepted != 0 || res.Dropped != 1 {
		return failing("an opted-out user's event was not dropped (status %d)", st)
	}
	s := a.Ingest.Stats()
	return trust.Result{Status: trust.Passing,
		Data: map[string]any{"plain_http_status": plainStatus, "probe_scrubbed": res.Scrubbed, "accepted_total": s.Accepted,
			"dropped_total": s.Dropped, "scrubbed_total": s.Scrubbed, "rejected_total": s.Rejected, "expired_total": s.Swept,
			"rate_per_second": a.ingestPolicy.Limit, "burst": a.ingestPolicy.Burst},
		Evidence: fmt.Sprintf("probe through the real handler: plain HTTP refused (%d); an unknown field refused (400); an event with an email, a phone and a card number stored with all three replaced and sealed (stored bytes hold no plaintext); an opted-out user's event dropped; per-workspace limit %d events/s, burst %d",
			plainStatus, a.ingestPolicy.Limit, a.ingestPolicy.Burst)}
}

// ingestProbeWorkspace creates a scratch workspace owned by a probe
// account; cleanup deletes it (with its events, keys and opt-outs) and
// destroys its keys.
func (a *App) ingestProbeWorkspace(ctx context.Context) (string, func(), error) {
	u, _, err := a.Identity.ProvisionUser(ctx, "ingest-probe@rampart.invalid")
	if err != nil {
		return "", nil, err
	}
	w := &tenancy.Workspace{Name: "APP-9 ingestion probe"}
	if err := a.Store.CreateWorkspace(ctx, w, tenancy.Member{UserID: u.ID, Roles: []string{tenancy.RoleAdmin}}); err != nil {
		return "", nil, err
	}
	return w.ID, func() {
		c := context.WithoutCancel(ctx)
		if err := a.Store.DeleteWorkspace(c, w.ID); err != nil {
			a.Log.Warn("APP-9 probe workspace not deleted", "err", err)
		}
		if a.Vault != nil {
			_ = a.onWorkspaceDelete(c, w.ID)
		}
	}, nil
}
