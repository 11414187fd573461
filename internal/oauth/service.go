package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// Config holds the domain's settings.
type Config struct {
	RefreshTTL        time.Duration // life of a refresh-token family
	RefreshGrace      time.Duration // same successor for concurrent uses
	ConsentTTL        time.Duration
	FirstPartyClients []string
}

// Deps are the service's collaborators, injected.
type Deps struct {
	Store  Store
	Sealer vault.Sealer // seals refresh-token successors
	Audit  audit.Recorder
	Log    *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
	// RevokeSession ends a Rampart session: a reused refresh token means
	// the session's tokens leaked, so the session goes with the family.
	RevokeSession func(ctx context.Context, userID, sessionID string) error
	// SessionAlive reports whether a Rampart session still exists; a
	// refresh for a signed-out session is refused (nil: not checked).
	SessionAlive func(ctx context.Context, userID, sessionID string) (bool, error)
}

// Service is the OAuth domain.
type Service struct {
	cfg Config
	d   Deps
}

// New builds the service.
func New(cfg Config, d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, d: d}
}

// Config returns the service's settings.
func (s *Service) Config() Config { return s.cfg }

// Errors the provider maps to OAuth error codes.
var (
	ErrInvalidGrant       = fault.New(fault.Invalid, "invalid_grant", "the grant is invalid, expired or revoked")
	ErrRefreshReused      = fault.New(fault.Invalid, "invalid_grant", "the refresh token was already used; its family is revoked")
	ErrUnauthorizedClient = fault.New(fault.Forbidden, "unauthorized_client", "the token was not issued to this client")
	errClientNotFound     = fault.New(fault.NotFound, "client_not_found", "no such client")
)

// Signature is how tokens and codes are found in storage: the hex SHA-256
// of their text, so the store never holds a usable token.
func Signature(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// HashSecret returns the stored form of a client secret.
func HashSecret(secret []byte) []byte {
	h := sha256.Sum256(secret)
	return h[:]
}

// SecretMatches compares a presented secret with a stored hash in constant
// time.
func SecretMatches(hash, secret []byte) bool {
	h := sha256.Sum256(secret)
	return len(hash) == sha256.Size && subtle.ConstantTimeCompare(hash, h[:]) == 1
}

// RandomToken returns prefix + 256 random bits, base64url.
func (s *Service) RandomToken(prefix string) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.d.Rand, b[:]); err != nil {
		return "", fault.Wrap(fault.Internal, "internal", "randomness unavailable", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (s *Service) randomID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.d.Rand, b[:]); err != nil {
		return "", fault.Wrap(fault.Internal, "internal", "randomness unavailable", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.d.Now() }

func (s *Service) record(ctx context.Context, e audit.Event) error {
	if s.d.Audit == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = s.d.Now().UTC()
	}
	return s.d.Audit.Record(ctx, e)
}

// --- clients ---

// ClientSpec is what a registration asks for.
type ClientSpec struct {
	Name                   string   `json:"name"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"first_party"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	Scopes                 []string `json:"scopes"`
	Audience               []string `json:"audience"`
	Permissions            []string `json:"permissions"`
}

// Actor says who registers or deletes a client, for the audit trail.
type Actor struct {
	Type string // audit.ActorUser, audit.ActorOperator, audit.ActorSystem
	ID   string
}

// Limits of a registration, so input never grows storage unboundedly.
const (
	maxURIs       = 10
	maxURILen     = 512
	maxScopes     = 32
	maxScopeLen   = 64
	maxNameLen    = 64
	maxAudience   = 10
	maxPerms      = 64
	maxPermLen    = 128
	defaultScopes = "openid profile email offline_access"
)

// CreateClient registers a client and returns it with its secret (shown
// once; empty for public clients). workspace "" registers an
// operator-level client. The caller has checked that the actor may manage
// clients in the workspace and holds spec.Permissions there.
func (s *Service) CreateClient(ctx context.Context, actor Actor, workspace string, spec ClientSpec) (*Client, string, error) {
	c, err := ValidateSpec(workspace, spec)
	if err != nil {
		return nil, "", err
	}
	if c.ID, err = s.randomID("rc_"); err != nil {
		return nil, "", err
	}
	secret := ""
	if !c.Public {
		if secret, err = s.RandomToken("rcs_"); err != nil {
			return nil, "", err
		}
		c.SecretHash = HashSecret([]byte(secret))
	}
	c.CreatedBy = actor.Type + ":" + actor.ID
	c.CreatedAt = s.d.Now().UTC()
	if err := s.d.Store.CreateOAuthClient(ctx, c); err != nil {
		return nil, "", err
	}
	if err := s.record(ctx, audit.Event{ActorType: actor.Type, ActorID: actor.ID, Workspace: workspace, Action: "oauth.client_create",
		Target: "oauth_client:" + c.ID, Outcome: audit.Success, Details: map[string]string{
			"grant_types": strings.Join(c.GrantTypes, ","), "scopes": strings.Join(c.Scopes, ","), "public": boolText(c.Public),
			"first_party": boolText(c.FirstParty), "permissions": strings.Join(c.Permissions, ",")}}); err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// ValidateSpec checks a registration and returns the client it describes
// (without id or secret).
func ValidateSpec(workspace string, spec ClientSpec) (*Client, error) {
	name := strings.TrimSpace(spec.Name)
	if name == "" || len(name) > maxNameLen || strings.ContainsFunc(name, isControl) {
		return nil, fault.Invalidf("client_name_invalid", "the name must be 1 to %d printable characters", maxNameLen)
	}
	grants := uniq(spec.GrantTypes)
	if len(grants) == 0 {
		grants = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	for _, g := range grants {
		if g != GrantAuthorizationCode && g != GrantRefreshToken && g != GrantClientCredentials {
			return nil, fault.Invalidf("grant_type_invalid", "grant types are authorization_code, refresh_token and client_credentials")
		}
	}
	c := &Client{Workspace: workspace, Name: name, Public: spec.Public, FirstParty: spec.FirstParty, GrantTypes: grants}
	if c.Public && c.Has(GrantClientCredentials) {
		return nil, fault.Invalidf("grant_type_invalid", "a public client cannot use client_credentials")
	}
	if c.Has(GrantRefreshToken) && !c.Has(GrantAuthorizationCode) {
		return nil, fault.Invalidf("grant_type_invalid", "refresh_token needs authorization_code")
	}
	var err error
	if c.RedirectURIs, err = checkURIs(spec.RedirectURIs, "redirect_uri_invalid"); err != nil {
		return nil, err
	}
	if c.PostLogoutRedirectURIs, err = checkURIs(spec.PostLogoutRedirectURIs, "post_logout_redirect_uri_invalid"); err != nil {
		return nil, err
	}
	if c.Has(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return nil, fault.Invalidf("redirect_uri_required", "authorization_code needs at least one redirect URI")
	}
	scopes := uniq(spec.Scopes)
	if len(scopes) == 0 && c.Has(GrantAuthorizationCode) {
		scopes = strings.Fields(defaultScopes)
	}
	if len(scopes) > maxScopes {
		return nil, fault.Invalidf("scope_invalid", "at most %d scopes", maxScopes)
	}
	for _, sc := range scopes {
		if !validToken(sc, maxScopeLen) {
			return nil, fault.Invalidf("scope_invalid", "a scope is 1 to %d of A-Z a-z 0-9 _ . : / -", maxScopeLen)
		}
	}
	c.Scopes = scopes
	c.Audience = uniq(spec.Audience)
	if len(c.Audience) > maxAudience {
		return nil, fault.Invalidf("audience_invalid", "at most %d audiences", maxAudience)
	}
	for _, a := range c.Audience {
		if !validToken(a, maxURILen) {
			return nil, fault.Invalidf("audience_invalid", "an audience is a URL or name without spaces")
		}
	}
	c.Permissions = uniq(spec.Permissions)
	if len(c.Permissions) > 0 && (workspace == "" || !c.Has(GrantClientCredentials)) {
		return nil, fault.Invalidf("permissions_invalid", "only service clients (client_credentials) of a workspace carry permissions")
	}
	if len(c.Permissions) > maxPerms {
		return nil, fault.Invalidf("permissions_invalid", "at most %d permissions", maxPerms)
	}
	for _, p := range c.Permissions {
		if !validToken(p, maxPermLen) {
			return nil, fault.Invalidf("permissions_invalid", "a permission is resource.action")
		}
	}
	return c, nil
}

// checkURIs accepts absolute https URLs, or http on a loopback host
// (native apps, RFC 8252), without fragments.
func checkURIs(in []string, code string) ([]string, error) {
	out := uniq(in)
	if len(out) > maxURIs {
		return nil, fault.Invalidf(code, "at most %d URIs", maxURIs)
	}
	for _, v := range out {
		u, err := url.Parse(v)
		if err != nil || len(v) > maxURILen || u.Fragment != "" || u.Host == "" || u.User != nil || strings.ContainsFunc(v, isControl) ||
			!(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return nil, fault.Invalidf(code, "a URI must be an absolute https URL (http only on a loopback host) without fragment")
		}
	}
	return out, nil
}

func isLoopback(h string) bool { return h == "localhost" || h == "127.0.0.1" || h == "::1" }

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validToken accepts the characters of scopes, permissions and audiences.
func validToken(v string, maxLen int) bool {
	if v == "" || len(v) > maxLen {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_.:/-", r):
		default:
			return false
		}
	}
	return true
}

func uniq(in []string) []string {
	var out []string
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Client returns a client by id.
func (s *Service) Client(ctx context.Context, id string) (*Client, error) {
	if id == "" || len(id) > 128 {
		return nil, errClientNotFound
	}
	c, err := s.d.Store.OAuthClient(ctx, id)
	if fault.Is(err, fault.NotFound) {
		return nil, errClientNotFound
	}
	return c, err
}

// ClientActive reports whether a client still exists; tokens of a deleted
// client stop working at once (the API checks this on every request).
func (s *Service) ClientActive(ctx context.Context, id string) (bool, error) {
	_, err := s.Client(ctx, id)
	if fault.Is(err, fault.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// Clients lists a workspace's clients ("" = operator-level; all = every one).
func (s *Service) Clients(ctx context.Context, workspace string, all bool) ([]Client, error) {
	return s.d.Store.ListOAuthClients(ctx, workspace, all)
}

// DeleteClient deletes a client of workspace ("" = operator, any client).
func (s *Service) DeleteClient(ctx context.Context, actor Actor, workspace, id string) error {
	if id == "" || len(id) > 128 {
		return errClientNotFound
	}
	err := s.d.Store.DeleteOAuthClient(ctx, workspace, id)
	if fault.Is(err, fault.NotFound) {
		return errClientNotFound
	}
	if err != nil {
		return err
	}
	return s.record(ctx, audit.Event{ActorType: actor.Type, ActorID: actor.ID, Workspace: workspace, Action: "oauth.client_delete",
		Target: "oauth_client:" + id, Outcome: audit.Success})
}

// IsFirstParty reports whether the client skips consent.
func (s *Service) IsFirstParty(c *Client) bool {
	return c.FirstParty || slices.Contains(s.cfg.FirstPartyClients, c.ID)
}

// --- consent ---

// ConsentCovers reports whether the account already consented to every
// one of scopes for the client (and the consent has not expired).
func (s *Service) ConsentCovers(ctx context.Context, userID, clientID string, scopes []string) (bool, error) {
	c, err := s.d.Store.OAuthConsent(ctx, userID, clientID)
	if fault.Is(err, fault.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !s.d.Now().Before(c.ExpiresAt) {
		return false, nil
	}
	for _, sc := range scopes {
		if !slices.Contains(c.Scopes, sc) {
			return false, nil
		}
	}
	return true, nil
}

// RememberConsent records the account's consent to scopes (added to what
// it already granted the client).
func (s *Service) RememberConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	now := s.d.Now().UTC()
	all := slices.Clone(scopes)
	if old, err := s.d.Store.OAuthConsent(ctx, userID, clientID); err == nil && now.Before(old.ExpiresAt) {
		all = uniq(append(old.Scopes, scopes...))
	}
	if err := s.d.Store.SaveOAuthConsent(ctx, &Consent{UserID: userID, ClientID: clientID, Scopes: uniq(all), GrantedAt: now, ExpiresAt: now.Add(s.cfg.ConsentTTL)}); err != nil {
		return err
	}
	return s.record(ctx, audit.Event{ActorType: audit.ActorUser, ActorID: userID, Action: "oauth.consent", Target: "oauth_client:" + clientID,
		Outcome: audit.Success, Details: map[string]string{"scopes": strings.Join(scopes, " ")}})
}
