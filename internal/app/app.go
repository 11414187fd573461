// Package app is Rampart's one composition root: configuration → store →
// services → web → background jobs. Nothing else wires packages together,
// and only the cli package imports app.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rampartsec/rampart/internal/alert"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/audit/sink"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/password"
	"github.com/rampartsec/rampart/internal/mail"
	"github.com/rampartsec/rampart/internal/redact"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/tracing"
	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/web"
)

// Options are the process facts the app needs, injected so tests control them.
type Options struct {
	Stderr  io.Writer // logs
	Environ []string
	Now     func() time.Time
	Rand    io.Reader
	// Log, if set, replaces the logger built from the config.
	Log *slog.Logger
}

// App is a wired Rampart instance.
type App struct {
	Config        config.Config
	Log           *slog.Logger
	Store         *store.Store
	Identity      *identity.Service
	Tenancy       *tenancy.Service
	Hasher        *password.Hasher
	Policy        *password.Policy
	Trust         *trust.Registry
	Audit         audit.Recorder
	AuditLog      *audit.MerkleLog
	Mailer        identity.Mailer
	Outbox        string // outbox directory when mail goes there, else ""
	Handler       *web.Handler
	Admin         http.Handler
	Metrics       *prometheus.Registry
	Tracing       *tracing.Tracing
	redactions    *redact.Counter
	now           func() time.Time
	rand          io.Reader
	environ       []string
	started       time.Time
	warnings      []string
	listenAddr    string // set by Serve once listening
	sinks         []*sink.Runner
	sinkNames     []string
	alerts        alertObserver
	alertEngine   *alert.Engine
	alertChannels int // external channels configured (webhook, chat, mail)
	auditKeys     *vault.Keyring
	root          vault.RootKey // loaded and verified in New; features derive their keys from it
	bgCtx         context.Context
	bgStop        context.CancelFunc
	bgWG          sync.WaitGroup
	// jobs run on every node while serving (Serve starts them); closers
	// run in reverse order when the app closes. Features add to both.
	jobs    []func(ctx context.Context)
	closers []func()

	// Each feature's wiring lives in its own file: oauth.go, vault.go,
	// secrets.go, integrations.go, gateway.go, ingest.go.
	signingParts
	oauthParts
	vaultParts
	secretsParts
	integrationParts
	gatewayParts
	ingestParts
}

// alertObserver is the alert engine as the audit tap sees it.
type alertObserver interface{ Observe([]audit.Event) }

// NewLogger builds the process logger: JSON (or text) with redaction of
// emails, bearer tokens and card numbers in front (MON-4).
func NewLogger(cfg config.Config, w io.Writer) (*slog.Logger, *redact.Counter) {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	if cfg.Log.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	rh, counter := redact.New(h)
	return slog.New(rh), counter
}

// New wires an App. It opens the store and runs migrations, loads the root
// key (failing closed when it cannot be loaded or does not match the one the
// database was set up with) and builds every service.
func New(ctx context.Context, cfg config.Config, o Options) (a *App, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	a = &App{Config: cfg, now: o.Now, rand: o.Rand, environ: o.Environ, started: o.Now()}
	a.Log, a.redactions = NewLogger(cfg, o.Stderr)
	if o.Log != nil {
		a.Log = o.Log
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	a.warnings = cfg.Warnings()
	for _, w := range a.warnings {
		a.Log.Warn("configuration warning", "warning", w)
	}

	a.Metrics = prometheus.NewRegistry()
	a.Tracing, err = tracing.Setup(ctx, tracing.Config{Endpoint: cfg.Tracing.OTLPEndpoint, ServiceName: cfg.Tracing.ServiceName,
		SampleRatio: cfg.Tracing.SampleRatio, Insecure: cfg.Tracing.Insecure}, a.Log)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	tr := a.Tracing
	defer func() {
		if err != nil {
			_ = tr.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	a.Store, err = store.Open(ctx, store.Options{DSN: cfg.Database, SQLitePath: cfg.SQLitePath(), Log: a.Log,
		Observe: web.NewQueryMetrics(a.Metrics, store.EngineFor(cfg.Database))})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Every error return below sets a to nil, so close the store through
	// its own variable.
	st := a.Store
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	if err := a.Store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate database: %w", err)
	}

	root, err := a.loadRootKey(ctx)
	if err != nil {
		return nil, err
	}
	a.root = root
	// TOTP seeds live on the key hierarchy (operator scope); the v1 key
	// derived from the root only decrypts seeds sealed before, until the
	// vault's re-wrap job has moved them (vault.go).
	a.totpLegacy = vault.NewKeyring(o.Rand)
	if err := a.totpLegacy.Add(1, root.Derive("rampart/totp-secrets/v1", 32)); err != nil {
		return nil, err
	}
	totpKeys := &a.totp

	pc := cfg.Password
	a.Hasher = password.NewHasher(password.HasherConfig{
		Params:      password.Params{MemoryKiB: pc.HashMemoryKiB, Time: pc.HashTime, Threads: pc.HashThreads, SaltLen: 16, KeyLen: 32},
		Concurrency: pc.HashConcurrency, MaxWait: pc.HashMaxWait, MaxQueue: pc.HashMaxQueue, Rand: o.Rand,
	})
	a.Policy, err = password.NewPolicy(pc.MinLength, pc.MaxLength)
	if err != nil {
		return nil, err
	}
	if err := a.buildMailer(); err != nil {
		return nil, err
	}
	if err := a.buildAudit(root); err != nil {
		return nil, err
	}
	started := a // every error return sets a to nil
	defer func() {
		if err != nil {
			started.stopAudit()
		}
	}()
	if err := a.buildSinks(); err != nil {
		return nil, err
	}
	if err := a.buildAlerts(); err != nil {
		return nil, err
	}
	a.AuditLog.Start(a.bgCtx) // CLI commands record too, so it runs from here
	// The start is itself recorded, durably, before anything else: an audit
	// log that cannot write stops Rampart here (fail closed), and the first
	// checkpoint is signed and witnessed at once.
	if err := a.AuditLog.Record(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: "rampart", Action: "system.start", Outcome: audit.Success,
		Details: map[string]string{"engine": a.Store.Engine(), "dev": fmt.Sprint(cfg.Dev), "pid": fmt.Sprint(os.Getpid())}}); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if _, err := a.AuditLog.CheckpointNow(ctx); err != nil {
		return nil, fmt.Errorf("audit checkpoint: %w", err)
	}

	if err := a.buildVault(ctx, root); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}

	tc := cfg.Throttle
	a.Identity = identity.New(identity.Config{
		PublicURL:       cfg.PublicURL,
		IdleTimeout:     cfg.Session.IdleTimeout,
		AbsoluteTimeout: cfg.Session.AbsoluteTimeout,
		RotateEvery:     cfg.Session.RotateEvery,
		RotateGrace:     cfg.Session.RotateGrace,
		ResetTTL:        cfg.Tokens.ResetTTL,
		VerifyTTL:       cfg.Tokens.VerifyTTL,
		SessionCacheTTL: 2 * time.Second,
		MFAIssuer:       cfg.MFA.Issuer,
		Throttle: identity.ThrottleConfig{
			AccountFreeFailures: tc.AccountFreeFailures, AccountLockAfter: tc.AccountLockAfter, AccountLockDuration: tc.AccountLockDuration,
			IPFreeFailures: tc.IPFreeFailures, BaseDelay: tc.BaseDelay, MaxDelay: tc.MaxDelay,
			StuffingAccounts: tc.StuffingAccounts, StuffingWindow: tc.StuffingWindow, StuffingBlock: tc.StuffingBlock,
		},
	}, identity.Deps{Store: a.Store, Hasher: a.Hasher, Policy: a.Policy, Mailer: a.Mailer, Sealer: totpKeys, Audit: a.Audit, Log: a.Log, Now: o.Now, Rand: o.Rand})

	tn := cfg.Tenancy
	a.Tenancy = tenancy.New(tenancy.Config{
		PublicURL: cfg.PublicURL, InvitationTTL: tn.InvitationTTL, APIKeyDefaultTTL: tn.APIKeyDefaultTTL, APIKeyMaxTTL: tn.APIKeyMaxTTL,
		StepUpWindow: tn.StepUpWindow, AdminMFAOptional: tn.AdminMFAOptional, StaleAfter: tn.StaleAfter, ReviewEvery: tn.ReviewEvery,
		SupportGrantMaxTTL: tn.SupportGrantMaxTTL,
	}, tenancy.Deps{
		Store: a.Store, Accounts: a.Identity, Mailer: a.Mailer, Audit: a.Audit, Log: a.Log, Now: o.Now, Rand: o.Rand,
		// Deleting a workspace destroys its keys (crypto-shredding, ENC-4).
		OnWorkspaceDelete: a.onWorkspaceDelete,
		Alert: func(ctx context.Context, e audit.Event) {
			a.Log.Warn("security alert", "action", e.Action, "workspace", e.Workspace, "actor", e.ActorID)
		},
	})

	for _, name := range cfg.Tenancy.Permissions {
		p := tenancy.Permission{Name: name, Sensitive: slices.Contains(cfg.Tenancy.SensitivePermissions, name)}
		if err := a.Tenancy.RegisterPermission(ctx, p); err != nil {
			return nil, fmt.Errorf("register permission %s: %w", name, err)
		}
	}

	if err := a.buildSecrets(ctx); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	if err := a.buildSigning(ctx); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	if err := a.buildOAuth(ctx); err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	if err := a.buildIntegrations(ctx); err != nil {
		return nil, fmt.Errorf("integrations: %w", err)
	}
	if err := a.buildIngest(ctx); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}

	a.Metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(a.Store.DB(), a.Store.Engine()),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_password_hash_in_flight", Help: "Password hashes being computed."},
			func() float64 { n, _ := a.Hasher.Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_password_hash_waiting", Help: "Requests waiting for a password-hash slot."},
			func() float64 { _, n := a.Hasher.Stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_log_redactions_total", Help: "Values redacted from logs."},
			func() float64 { return float64(a.redactions.Count()) }),
	)

	a.registerAuditMetrics()

	a.Trust = trust.NewRegistry(o.Now, 5*time.Second, cfg.Trust.CacheTTL)
	a.Trust.Logger = a.Log
	a.Handler = web.NewHandler(web.Deps{
		Identity: a.Identity, Tenancy: a.Tenancy, Trust: a.Trust, SecurityTxt: a.securityTxt, Audit: a.Audit, Log: a.Log,
		Metrics: a.Metrics, Now: o.Now, Rand: o.Rand, SessionMaxAge: cfg.Session.AbsoluteTimeout, RecordAPICalls: true,
		AuditLog: a.AuditLog, Tracing: a.Tracing,
		TokenDeps: a.tokenWebDeps(), OAuthDeps: a.oauthWebDeps(), VaultDeps: a.vaultWebDeps(), SecretsDeps: a.secretsWebDeps(),
		IntegrationDeps: a.integrationWebDeps(), IngestDeps: a.ingestWebDeps(),
	})
	if err := a.buildGateway(ctx); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	a.Admin = web.NewAdminHandler(web.AdminDeps{Ready: a.Store.Ping, Gatherer: a.Metrics, Log: a.Log})
	if err := a.registerControls(); err != nil {
		return nil, err
	}
	return a, nil
}

// loadRootKey opens the root key source (key file, created on first
// start; environment; or a PKCS#11 token, where the key never leaves the
// HSM), pins its fingerprint or key check value in the database so a start
// with a different key is refused, and returns the key the subsystems
// derive from (see derivationRoot in vault.go).
func (a *App) loadRootKey(ctx context.Context) (vault.RootKey, error) {
	w, mem, err := a.openRootSource()
	if err != nil {
		return vault.RootKey{}, err
	}
	if err := a.pinRoot(ctx, w); err != nil {
		return vault.RootKey{}, err
	}
	a.vaultRoot = w
	return a.derivationRoot(ctx, w, mem)
}

func (a *App) buildMailer() error {
	cfg := a.Config
	if cfg.Mail.SMTP.Host != "" && !cfg.Dev {
		s, err := mail.NewSMTP(mail.SMTPConfig{
			Host: cfg.Mail.SMTP.Host, Port: cfg.Mail.SMTP.Port, Username: cfg.Mail.SMTP.Username, Password: cfg.Mail.SMTP.Password,
			From: cfg.Mail.From, TLS: cfg.Mail.SMTP.TLS, AllowInsecure: cfg.Mail.SMTP.AllowInsecure,
		}, a.Log)
		if err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
		a.Mailer = s
		return nil
	}
	dir := filepath.Join(cfg.DataDir, "outbox")
	o, err := mail.NewOutbox(dir, cfg.Mail.From, a.now, a.rand, a.Log)
	if err != nil {
		return fmt.Errorf("mail outbox: %w", err)
	}
	a.Mailer, a.Outbox = o, dir
	return nil
}

// securityTxt is built per request so Expires never goes stale.
func (a *App) securityTxt() trust.SecurityTxt {
	c := a.Config.SecurityTxt
	st := trust.SecurityTxt{Contact: c.Contact, Expires: c.Expires, PreferredLanguages: c.PreferredLanguages,
		Canonical: []string{strings.TrimRight(a.Config.PublicURL, "/") + trust.SecurityTxtPath}}
	if len(st.Contact) == 0 {
		st.Contact = []string{"mailto:security@" + publicHost(a.Config.PublicURL)}
	}
	if st.Expires.IsZero() {
		st.Expires = a.now().Add(180 * 24 * time.Hour).UTC().Truncate(time.Hour)
	}
	if c.Policy != "" {
		st.Policy = []string{c.Policy}
	}
	if c.Acknowledgments != "" {
		st.Acknowledgments = []string{c.Acknowledgments}
	}
	if c.Encryption != "" {
		st.Encryption = []string{c.Encryption}
	}
	return st
}

func publicHost(u string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexAny(h, ":/"); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "localhost"
	}
	return h
}

// Close waits for background work, flushes the audit log and closes the
// store.
func (a *App) Close() error {
	a.Identity.Wait()
	if a.Handler != nil {
		a.Handler.Drain()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.stopAudit()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Tracing.Shutdown(ctx); err != nil {
		a.Log.Warn("tracing shutdown", "err", err)
	}
	return a.Store.Close()
}

func (a *App) stopAudit() {
	if a.AuditLog != nil {
		if err := a.AuditLog.Close(); err != nil {
			a.Log.Error("audit log close", "err", err)
		}
	}
	if a.bgStop != nil {
		a.bgStop()
	}
	a.bgWG.Wait() // nothing of the app runs (or logs) after Close
}

// Ready reports whether the app can serve: the database answers.
func (a *App) Ready(ctx context.Context) error {
	if err := a.Store.Ping(ctx); err != nil {
		return fault.Wrap(fault.Unavailable, "database_unavailable", "database unavailable", err)
	}
	return nil
}

var errStopped = errors.New("stopped")
