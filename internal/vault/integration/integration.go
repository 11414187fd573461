// Package integration holds the credentials Rampart keeps for a workspace's
// third-party services (INT-1 to INT-4): it is the OAuth 2.0 client side
// (authorization code with PKCE, refresh, RFC 7009 revocation) and the
// API-key side (a submitted key checked for scope before it is stored).
//
// Tokens and keys are sealed through vault.Sealer, bound to their workspace,
// table, column and row; a grant or key broader than the provider's declared
// scopes is refused (and an OAuth grant revoked at once); disconnecting
// deletes the credentials in the same transaction that queues their
// revocation, so the connection is gone at once even when the provider is
// down. The package speaks HTTP outward only; storage is the Store
// interface, implemented by internal/store.
package integration

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// Kind is how a provider grants access.
type Kind string

const (
	// KindOAuth2 providers are connected with the authorization code flow.
	KindOAuth2 Kind = "oauth2"
	// KindAPIKey providers take a key the workspace admin submits.
	KindAPIKey Kind = "api_key"
)

// Permissions a workspace role needs (registered by the app).
const (
	PermManage = "integrations.manage" // connect, list, disconnect
	PermUse    = "integrations.use"    // obtain a fresh access token
)

// Tables and columns the sealed values are bound to (vault.AD).
const (
	TableTokens      = "integration_tokens"
	TableStates      = "integration_states"
	TableRevocations = "integration_revocations"
)

// Provider is a third-party service declared in the configuration.
type Provider struct {
	Name string
	Kind Kind
	// Scopes are the scopes (OAuth) or permissions (API keys) a connection
	// may hold; anything broader is refused (INT-2). Required.
	Scopes []string

	// OAuth 2.0.
	AuthURL, TokenURL, RevocationURL string
	ClientID, ClientSecret           string
	// AuthStyle is how the client authenticates at the token and
	// revocation endpoints: "header" (HTTP Basic, the default) or
	// "params" (client_secret_post).
	AuthStyle string

	// API keys. KeyPrefixes, if set, are the only key prefixes accepted
	// (a provider's restricted keys, e.g. "rk_live_"; a full-access
	// "sk_live_" key is refused). CheckURL, if set, is called with the key
	// (CheckAuth "bearer", the default, or "basic" with the key as user
	// name) and must answer 200 with a JSON object whose PermissionsField
	// (default "permissions") lists the key's permissions.
	KeyPrefixes      []string
	CheckURL         string
	CheckAuth        string
	PermissionsField string

	// AllowInsecureHTTP permits http:// endpoints on non-loopback hosts
	// (TLS-3). Off by default.
	AllowInsecureHTTP bool
}

// Config tunes the service.
type Config struct {
	Providers []Provider
	// RedirectURL is Rampart's callback URL registered at every OAuth
	// provider (https://rampart.example.com/v1/integrations/callback).
	RedirectURL string
	// StateTTL bounds how long a started connect flow may take.
	StateTTL time.Duration
	// RefreshBefore: an access token this close to expiry is refreshed
	// before it is handed out, and by the background job.
	RefreshBefore time.Duration
	// RevocationRetryFor bounds how long a queued revocation is retried;
	// then it is dropped and an alert raised.
	RevocationRetryFor time.Duration
	// BackoffMin and BackoffMax bound the retry delay, doubled per attempt.
	BackoffMin, BackoffMax time.Duration
	// HTTPTimeout bounds one call to a provider.
	HTTPTimeout time.Duration
}

func (c *Config) defaults() {
	if c.StateTTL <= 0 {
		c.StateTTL = 10 * time.Minute
	}
	if c.RefreshBefore <= 0 {
		c.RefreshBefore = 5 * time.Minute
	}
	if c.RevocationRetryFor <= 0 {
		c.RevocationRetryFor = 72 * time.Hour
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 30 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(time.Hour, c.BackoffMin)
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = 15 * time.Second
	}
}

// Connection is a workspace's link to a provider. It never carries the
// credentials themselves.
type Connection struct {
	ID        string
	Workspace string
	Provider  string
	Kind      Kind
	Scopes    []string
	CreatedBy string
	CreatedAt time.Time
	// ExpiresAt is when the current access token expires; zero = never
	// (API keys, tokens issued without expires_in).
	ExpiresAt        time.Time
	HasRefresh       bool
	RefreshedAt      time.Time
	LastUsedAt       time.Time
	RefreshFailures  int
	LastRefreshError string // an error code, never provider text
	// Version changes with every credential update (optimistic locking,
	// so two nodes refreshing at once do not both write).
	Version int64
}

// Credentials are a connection's sealed token material.
type Credentials struct {
	Access    []byte // sealed
	Refresh   []byte // sealed; nil when the provider issued none
	TokenType string
}

// State is a started OAuth connect flow, found again by its state value.
type State struct {
	Hash        []byte // SHA-256 of the state parameter; the parameter is never stored
	Workspace   string
	Provider    string
	SessionHash []byte // binds the flow to the initiating session
	Verifier    []byte // sealed PKCE code verifier
	Scopes      []string
	CreatedBy   string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Revocation is a token waiting to be revoked at its provider. The token is
// sealed under the revocation row's own context; it lives nowhere else.
type Revocation struct {
	ID            string
	Workspace     string
	Provider      string
	Token         []byte // sealed
	TokenTypeHint string // "refresh_token" or "access_token"
	Attempts      int
	QueuedAt      time.Time
	NextAttemptAt time.Time
	LastError     string
}

// Stats are counts the live checks report.
type Stats struct {
	Connections        int
	PendingRevocations int
	OldestRevocation   time.Time // zero when none pending
	// ExpiredUnrefreshed counts OAuth connections holding a refresh token
	// whose access token has expired (INT-4 wants 0).
	ExpiredUnrefreshed int
}

// Sample is one stored token row for the INT-1 live check.
type Sample struct {
	Workspace, ID string
	Access        []byte
}

// Store is the storage the service needs; internal/store implements it.
type Store interface {
	CreateIntegrationState(ctx context.Context, st *State) error
	// TakeIntegrationState deletes and returns the state with this hash
	// (single use); fault.ErrNotFound when there is none.
	TakeIntegrationState(ctx context.Context, hash []byte) (*State, error)
	DeleteExpiredIntegrationStates(ctx context.Context, now time.Time) (int, error)

	CreateIntegration(ctx context.Context, c *Connection, cr Credentials) error
	Integration(ctx context.Context, ws, id string) (*Connection, error)
	Integrations(ctx context.Context, ws string) ([]Connection, error)
	IntegrationCredentials(ctx context.Context, ws, id string) (*Connection, *Credentials, error)
	// UpdateIntegrationTokens replaces the credentials if the connection is
	// still at version; fault Conflict otherwise.
	UpdateIntegrationTokens(ctx context.Context, ws, id string, version int64, cr Credentials, scopes []string, expires, at time.Time) error
	RecordIntegrationRefreshFailure(ctx context.Context, ws, id, code string, at time.Time) error
	TouchIntegration(ctx context.Context, ws, id string, at time.Time) error
	// DeleteIntegration deletes the connection and its credentials and
	// queues revs, in one transaction.
	DeleteIntegration(ctx context.Context, ws, id string, revs []Revocation) error
	QueueIntegrationRevocations(ctx context.Context, revs []Revocation) error

	DueIntegrationRevocations(ctx context.Context, now time.Time, limit int) ([]Revocation, error)
	DeleteIntegrationRevocation(ctx context.Context, ws, id string) error
	RetryIntegrationRevocation(ctx context.Context, ws, id string, attempts int, next time.Time, lastErr string) error

	ExpiringIntegrations(ctx context.Context, before time.Time, limit int) ([]Connection, error)
	IntegrationStats(ctx context.Context, now time.Time) (Stats, error)
	SampleIntegrationTokens(ctx context.Context, n int) ([]Sample, error)
}

// Deps are the service's collaborators.
type Deps struct {
	Store  Store
	Sealer vault.Sealer
	Audit  audit.Recorder
	Log    *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
	// RootCAs verifies providers' certificates; nil = system roots.
	RootCAs *x509.CertPool
	// Transport, if set, replaces internal/outbound's transport (tests);
	// the TLS-3 rule (outbound.Guard) still wraps it.
	Transport http.RoundTripper
	// Alert raises a security alert (a revocation that never succeeded).
	Alert func(ctx context.Context, e audit.Event)
}

// Actor is who acts, for authorization decisions already made by the
// caller and for the audit trail.
type Actor struct {
	Type, ID string
	// SessionID is the signed-in session (empty for API keys); a connect
	// flow is bound to it.
	SessionID string
}

// Service manages integrations.
type Service struct {
	cfg       Config
	d         Deps
	providers map[string]*provider

	locks sync.Map // connection id → *sync.Mutex: one refresh at a time per node

	refusals      atomic.Int64 // grants and keys refused as too broad, since start
	lastJob       atomic.Pointer[JobReport]
	revokeGiveUps atomic.Int64
}

// JobReport is the outcome of one background run.
type JobReport struct {
	At                         time.Time
	Refreshed, RefreshFailed   int
	Revoked, Retrying, GivenUp int
}

// New validates the providers (TLS-3 included) and returns the service.
func New(cfg Config, d Deps) (*Service, error) {
	cfg.defaults()
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Store == nil || d.Sealer == nil || d.Audit == nil || d.Rand == nil {
		return nil, fmt.Errorf("integration: store, sealer, audit and rand are required")
	}
	s := &Service{cfg: cfg, d: d, providers: map[string]*provider{}}
	for i := range cfg.Providers {
		p, err := s.newProvider(cfg.Providers[i])
		if err != nil {
			return nil, fmt.Errorf("integration provider %q: %w", cfg.Providers[i].Name, err)
		}
		if _, dup := s.providers[p.Name]; dup {
			return nil, fmt.Errorf("integration provider %q declared twice", p.Name)
		}
		s.providers[p.Name] = p
	}
	return s, nil
}

// Providers lists the configured providers (without their secrets), by name.
func (s *Service) Providers() []ProviderInfo {
	out := make([]ProviderInfo, 0, len(s.providers))
	for _, p := range s.providers {
		out = append(out, ProviderInfo{Name: p.Name, Kind: p.Kind, Scopes: slices.Clone(p.Scopes), Revocable: p.RevocationURL != ""})
	}
	slices.SortFunc(out, func(a, b ProviderInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// ProviderInfo is what may be shown about a provider.
type ProviderInfo struct {
	Name      string
	Kind      Kind
	Scopes    []string
	Revocable bool
}

// Refusals is the number of grants and keys refused as broader than
// allowed since the process started (INT-2 evidence).
func (s *Service) Refusals() int64 { return s.refusals.Load() }

// LastJob is the report of the last background run, or nil.
func (s *Service) LastJob() *JobReport { return s.lastJob.Load() }

// Stats returns the stored counts the live checks report.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	return s.d.Store.IntegrationStats(ctx, s.d.Now())
}

// ---- helpers ----

var (
	errNotFound        = fault.New(fault.NotFound, "integration_not_found", "no such integration")
	errUnknownProvider = fault.New(fault.Invalid, "provider_unknown", "no such integration provider")
)

func (s *Service) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.d.Rand, b); err != nil {
		return "", fault.Wrap(fault.Internal, "internal", "cannot generate randomness", err)
	}
	return hex.EncodeToString(b), nil
}

func (s *Service) record(ctx context.Context, a Actor, ws, action, target string, out audit.Outcome, details map[string]string) error {
	m := audit.MetaFrom(ctx)
	return s.d.Audit.Record(ctx, audit.Event{ActorType: a.Type, ActorID: a.ID, Workspace: ws, Action: action, Target: target,
		Outcome: out, IP: m.IP, UserAgent: m.UserAgent, RequestID: m.RequestID, TraceID: m.TraceID, Details: details})
}

func (s *Service) provider(name string) (*provider, error) {
	p, ok := s.providers[name]
	if !ok {
		return nil, errUnknownProvider
	}
	return p, nil
}

// sessionHash binds a connect flow to a session without storing its id.
func sessionHash(sessionID string) []byte {
	h := sha256.Sum256([]byte("rampart/integration-session/v1\x00" + sessionID))
	return h[:]
}

func stateHash(state string) []byte {
	h := sha256.Sum256([]byte("rampart/integration-state/v1\x00" + state))
	return h[:]
}

func tokenAD(ws, id, column string) vault.AD {
	return vault.AD{Workspace: ws, Table: TableTokens, Column: column, Row: id}
}

// notFound maps a store miss to the package's answer.
func notFound(err error) error {
	if fault.Is(err, fault.NotFound) {
		return errNotFound
	}
	return err
}

// lock serializes refreshes of one connection on this node.
func (s *Service) lock(id string) func() {
	v, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	m := v.(*sync.Mutex)
	m.Lock()
	return m.Unlock
}

// scopeExcess returns the granted scopes outside allowed (sorted).
func scopeExcess(granted, allowed []string) []string {
	var out []string
	for _, g := range granted {
		if !slices.Contains(allowed, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// auditList renders names for audit details, bounded.
func auditList(l []string) string {
	out := ""
	for i, v := range l {
		if i == 8 {
			return out + ",…"
		}
		if len(v) > 64 {
			v = v[:64]
		}
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
