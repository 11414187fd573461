// Package web is Rampart's HTTP face: the JSON API under /v1, the
// server-rendered pages (which work without JavaScript), the trust page and
// the admin endpoints. It is the only package that turns error kinds into
// HTTP statuses; routes.go lists every route.
package web

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/trust"
)

// Cookie names. The __Host- prefix makes the browser insist on Secure, Path=/
// and no Domain, so a sibling subdomain cannot set or read them.
const (
	SessionCookie = "__Host-rampart_session"
	DeviceCookie  = "__Host-rampart_device"
)

// Deps are what the web layer needs.
type Deps struct {
	Identity    *identity.Service
	Tenancy     *tenancy.Service
	Trust       *trust.Registry
	SecurityTxt func() trust.SecurityTxt
	Audit       audit.Recorder
	Log         *slog.Logger
	Metrics     prometheus.Registerer
	Now         func() time.Time
	Rand        io.Reader
	// SessionMaxAge is the cookie lifetime (the absolute session timeout).
	SessionMaxAge time.Duration
	// Ready reports whether the service can take traffic (database up).
	Ready func(ctx context.Context) error
	// Gatherer serves /metrics on the admin handler.
	Gatherer prometheus.Gatherer
	// Tracing gives each request a server span (MON-2); nil turns it off.
	Tracing Tracing
	// RecordAPICalls writes an "api.request" audit event for every API
	// call (AUD-1). The app turns it on with the group-committing audit log.
	RecordAPICalls bool
	// AuditLog serves the audit trail API (auditapi.go); nil leaves it out.
	AuditLog AuditLog

	// Each feature's dependencies live beside its handlers: tokens.go, oauth.go,
	// vault.go, secrets.go, integrations.go, ingest.go.
	TokenDeps
	OAuthDeps
	VaultDeps
	SecretsDeps
	IntegrationDeps
	IngestDeps
}

type server struct {
	id          *identity.Service
	ten         *tenancy.Service
	trust       *trust.Registry
	securityTxt func() trust.SecurityTxt
	audit       audit.Recorder
	log         *slog.Logger
	now         func() time.Time
	rand        io.Reader
	metrics     *metrics
	maxAge      time.Duration
	pages       *pageSet
	traces      *httpTracer
	recordAPI   bool
	apiAudit    chan struct{} // in-flight API-call events (apiaudit.go)
	apiAuditWG  sync.WaitGroup
	auditLog    AuditLog

	tokenWeb
	oauthWeb
	vaultWeb
	secretsWeb
	integrationWeb
	ingestWeb
}

func newServer(d Deps) *server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	s := &server{
		id: d.Identity, ten: d.Tenancy, trust: d.Trust, securityTxt: d.SecurityTxt, audit: d.Audit, log: d.Log,
		now: d.Now, rand: d.Rand, metrics: newMetrics(d.Metrics), maxAge: d.SessionMaxAge,
		pages: mustPages(), traces: newHTTPTracer(d.Tracing), recordAPI: d.RecordAPICalls,
		apiAudit: make(chan struct{}, maxAPIAuditInFlight), auditLog: d.AuditLog,
	}
	if d.TokenDeps.SessionLive == nil && d.Identity != nil {
		d.TokenDeps.SessionLive = SessionFromList(d.Identity, d.Now)
	}
	s.tokenWeb = newTokenWeb(d.TokenDeps, d.Now)
	s.oauthWeb = newOAuthWeb(d.OAuthDeps)
	s.vaultWeb = newVaultWeb(d.VaultDeps)
	s.secretsWeb = newSecretsWeb(d.SecretsDeps)
	s.integrationWeb = newIntegrationWeb(d.IntegrationDeps)
	s.ingestWeb = newIngestWeb(d.IngestDeps)
	return s
}

// Handler is the public HTTPS handler.
type Handler struct {
	http.Handler
	s *server
}

// NewHandler returns the public HTTPS handler.
func NewHandler(d Deps) *Handler {
	s := newServer(d)
	return &Handler{Handler: s.outer(s.routes()), s: s}
}

// Drain waits for the API-call audit events still on their way to the log;
// call it after the HTTP server has shut down and before the log closes.
func (h *Handler) Drain() { h.s.apiAuditWG.Wait() }
