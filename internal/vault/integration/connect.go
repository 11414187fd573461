package integration

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

var (
	errSessionNeeded  = fault.New(fault.Forbidden, "session_required", "connecting a service needs a signed-in person, not an API key")
	errScopeNotAllow  = fault.New(fault.Invalid, "scope_not_allowed", "a requested scope is not among the provider's allowed scopes")
	errScopeTooBroad  = fault.New(fault.Forbidden, "scope_too_broad", "the grant is broader than this integration may hold; it was refused and revoked")
	errKeyTooBroad    = fault.New(fault.Forbidden, "scope_too_broad", "this key may do more than this integration may hold; use a restricted, read-only key")
	errStateInvalid   = fault.New(fault.Invalid, "state_invalid", "the connect flow is unknown, used or expired; start again")
	errStateSession   = fault.New(fault.Forbidden, "state_session_mismatch", "the connect flow was started from another session")
	errProviderDenied = fault.New(fault.Invalid, "provider_denied", "the provider did not grant access")
	errExchange       = fault.New(fault.Unavailable, "exchange_failed", "the provider did not exchange the authorization code")
	errKind           = fault.New(fault.Invalid, "provider_kind", "this provider is connected another way")
)

// BeginConnect starts the authorization code flow with PKCE (S256) for
// provider in ws and returns the URL to send the browser to. The flow is
// bound to the actor's session: only that session can complete it. The
// caller has checked PermManage.
func (s *Service) BeginConnect(ctx context.Context, a Actor, ws, providerName string, scopes []string) (authURL string, expires time.Time, err error) {
	if a.SessionID == "" {
		return "", time.Time{}, errSessionNeeded
	}
	p, err := s.provider(providerName)
	if err != nil {
		return "", time.Time{}, err
	}
	if p.Kind != KindOAuth2 {
		return "", time.Time{}, errKind
	}
	if len(scopes) == 0 {
		scopes = slices.Clone(p.Scopes)
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	if ex := scopeExcess(scopes, p.Scopes); len(ex) > 0 {
		s.refusals.Add(1)
		_ = s.record(ctx, a, ws, "integrations.scope_refused", "provider:"+p.Name, audit.Denied,
			map[string]string{"stage": "request", "excess": auditList(ex)})
		return "", time.Time{}, errScopeNotAllow
	}
	var raw [64]byte
	if _, err := io.ReadFull(s.d.Rand, raw[:]); err != nil {
		return "", time.Time{}, fault.Wrap(fault.Internal, "internal", "cannot generate randomness", err)
	}
	state := base64.RawURLEncoding.EncodeToString(raw[:32])
	verifier := base64.RawURLEncoding.EncodeToString(raw[32:]) // 43 characters, RFC 7636 §4.1
	h := stateHash(state)
	now := s.d.Now()
	sealed, err := s.d.Sealer.Seal(ctx, []byte(verifier), vault.AD{Workspace: ws, Table: TableStates, Column: "verifier", Row: hex.EncodeToString(h)})
	if err != nil {
		return "", time.Time{}, err
	}
	st := &State{Hash: h, Workspace: ws, Provider: p.Name, SessionHash: sessionHash(a.SessionID), Verifier: sealed,
		Scopes: scopes, CreatedBy: a.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.StateTTL)}
	if err := s.d.Store.CreateIntegrationState(ctx, st); err != nil {
		return "", time.Time{}, err
	}
	if err := s.record(ctx, a, ws, "integrations.connect_begin", "provider:"+p.Name, audit.Success,
		map[string]string{"scopes": auditList(scopes)}); err != nil {
		return "", time.Time{}, err
	}
	cfg := *p.oauth
	cfg.Scopes = scopes
	return cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), st.ExpiresAt, nil
}

// Callback is the provider's answer at the redirect URI.
type Callback struct {
	State, Code string
	// Error is the provider's error code (RFC 6749 §4.1.2.1) when the
	// user or provider refused.
	Error string
}

const maxParam = 2048

// ParseCallback validates the query of a callback request: a state and
// either a code or an error, each present once, bounded and printable.
func ParseCallback(q url.Values) (Callback, error) {
	one := func(name string) (string, error) {
		v := q[name]
		if len(v) > 1 {
			return "", fault.Invalidf("callback_invalid", "the callback repeats %s", name)
		}
		if len(v) == 0 {
			return "", nil
		}
		if len(v[0]) > maxParam || !printable(v[0]) {
			return "", fault.Invalidf("callback_invalid", "the callback's %s is malformed", name)
		}
		return v[0], nil
	}
	var cb Callback
	var err error
	if cb.State, err = one("state"); err != nil {
		return Callback{}, err
	}
	if cb.Code, err = one("code"); err != nil {
		return Callback{}, err
	}
	if cb.Error, err = one("error"); err != nil {
		return Callback{}, err
	}
	if cb.State == "" {
		return Callback{}, fault.Invalidf("callback_invalid", "the callback has no state")
	}
	if (cb.Code == "") == (cb.Error == "") {
		return Callback{}, fault.Invalidf("callback_invalid", "the callback needs a code or an error")
	}
	return cb, nil
}

// printable reports whether v is visible ASCII (what RFC 6749 allows in
// state, code and error: VSCHAR / NQSCHAR).
func printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// CompleteConnect finishes a flow: the state must be live and bound to the
// actor's session, authorize(ws) must still allow the actor to manage the
// workspace's integrations, the code is exchanged with the PKCE verifier,
// and a grant broader than allowed is refused and revoked at once (INT-2).
// The tokens are stored sealed (INT-1).
func (s *Service) CompleteConnect(ctx context.Context, a Actor, cb Callback, authorize func(ws string) error) (*Connection, error) {
	st, err := s.d.Store.TakeIntegrationState(ctx, stateHash(cb.State))
	if fault.Is(err, fault.NotFound) {
		_ = s.record(ctx, a, "", "integrations.connect", "", audit.Failure, map[string]string{"reason": "state_invalid"})
		return nil, errStateInvalid
	}
	if err != nil {
		return nil, err
	}
	now := s.d.Now()
	if !now.Before(st.ExpiresAt) {
		_ = s.record(ctx, a, st.Workspace, "integrations.connect", "provider:"+st.Provider, audit.Failure, map[string]string{"reason": "state_expired"})
		return nil, errStateInvalid
	}
	if a.SessionID == "" || subtle.ConstantTimeCompare(st.SessionHash, sessionHash(a.SessionID)) != 1 {
		_ = s.record(ctx, a, st.Workspace, "integrations.connect", "provider:"+st.Provider, audit.Denied, map[string]string{"reason": "session_mismatch"})
		return nil, errStateSession
	}
	if err := authorize(st.Workspace); err != nil {
		return nil, err
	}
	p, err := s.provider(st.Provider)
	if err != nil || p.Kind != KindOAuth2 {
		return nil, errUnknownProvider
	}
	target := "provider:" + p.Name
	if cb.Error != "" {
		code := cb.Error
		if len(code) > 40 {
			code = code[:40]
		}
		_ = s.record(ctx, a, st.Workspace, "integrations.connect", target, audit.Failure, map[string]string{"reason": "provider_error", "error": code})
		return nil, errProviderDenied
	}
	verifier, err := s.d.Sealer.Open(ctx, st.Verifier, vault.AD{Workspace: st.Workspace, Table: TableStates, Column: "verifier", Row: hex.EncodeToString(st.Hash)})
	if err != nil {
		return nil, err
	}
	cfg := *p.oauth
	cfg.Scopes = st.Scopes
	tok, err := cfg.Exchange(p.ctx(ctx), cb.Code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		s.d.Log.Warn("integration code exchange failed", "provider", p.Name, "err", stripURL(err))
		_ = s.record(ctx, a, st.Workspace, "integrations.connect", target, audit.Failure, map[string]string{"reason": "exchange_failed"})
		return nil, errExchange
	}
	granted := grantedScopes(tok, st.Scopes)
	if ex := scopeExcess(granted, p.Scopes); len(ex) > 0 {
		s.refusals.Add(1)
		revoked := s.revokeGrant(ctx, p, st.Workspace, tok)
		_ = s.record(ctx, a, st.Workspace, "integrations.scope_refused", target, audit.Denied,
			map[string]string{"stage": "grant", "excess": auditList(ex), "revocation": revoked})
		return nil, errScopeTooBroad
	}
	id, err := s.randomHex(16)
	if err != nil {
		return nil, err
	}
	c := &Connection{ID: id, Workspace: st.Workspace, Provider: p.Name, Kind: KindOAuth2, Scopes: granted, CreatedBy: a.ID,
		CreatedAt: now, ExpiresAt: tokenExpiry(tok, now), RefreshedAt: now, HasRefresh: tok.RefreshToken != "", Version: 1}
	cr, err := s.seal(ctx, c.Workspace, c.ID, tok)
	if err != nil {
		return nil, err
	}
	if err := s.d.Store.CreateIntegration(ctx, c, cr); err != nil {
		return nil, err
	}
	if err := s.record(ctx, a, c.Workspace, "integrations.connect", "integration:"+c.ID, audit.Success,
		map[string]string{"provider": p.Name, "scopes": auditList(granted), "refresh": boolText(c.HasRefresh)}); err != nil {
		return nil, err
	}
	return c, nil
}

// ConnectAPIKey checks key's scope with the provider's rules and stores it
// sealed. A key that may do more than allowed, or whose scope cannot be
// established, is refused (INT-2). The caller has checked PermManage.
func (s *Service) ConnectAPIKey(ctx context.Context, a Actor, ws, providerName, key string) (*Connection, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return nil, err
	}
	if p.Kind != KindAPIKey {
		return nil, errKind
	}
	if key == "" || len(key) > 1024 || !printable(key) || strings.ContainsRune(key, ' ') {
		return nil, fault.Invalidf("api_key_invalid", "the key is empty, too long or not printable")
	}
	target := "provider:" + p.Name
	if len(p.KeyPrefixes) > 0 && !slices.ContainsFunc(p.KeyPrefixes, func(pre string) bool { return strings.HasPrefix(key, pre) }) {
		s.refusals.Add(1)
		_ = s.record(ctx, a, ws, "integrations.scope_refused", target, audit.Denied, map[string]string{"stage": "key", "reason": "key_prefix"})
		return nil, errKeyTooBroad
	}
	scopes := slices.Clone(p.Scopes)
	if p.CheckURL != "" {
		perms, err := p.checkKey(ctx, key)
		if err != nil {
			if fault.Is(err, fault.Forbidden) {
				s.refusals.Add(1)
				_ = s.record(ctx, a, ws, "integrations.scope_refused", target, audit.Denied, map[string]string{"stage": "key", "reason": "scope_unknown"})
			} else {
				_ = s.record(ctx, a, ws, "integrations.connect", target, audit.Failure, map[string]string{"reason": fault.As(err).Code})
			}
			return nil, err
		}
		if ex := scopeExcess(perms, p.Scopes); len(ex) > 0 {
			s.refusals.Add(1)
			_ = s.record(ctx, a, ws, "integrations.scope_refused", target, audit.Denied, map[string]string{"stage": "key", "excess": auditList(ex)})
			return nil, errKeyTooBroad
		}
		scopes = perms
	}
	id, err := s.randomHex(16)
	if err != nil {
		return nil, err
	}
	now := s.d.Now()
	c := &Connection{ID: id, Workspace: ws, Provider: p.Name, Kind: KindAPIKey, Scopes: scopes, CreatedBy: a.ID, CreatedAt: now, Version: 1}
	sealed, err := s.d.Sealer.Seal(ctx, []byte(key), tokenAD(ws, id, "access"))
	if err != nil {
		return nil, err
	}
	if err := s.d.Store.CreateIntegration(ctx, c, Credentials{Access: sealed, TokenType: "api_key"}); err != nil {
		return nil, err
	}
	if err := s.record(ctx, a, ws, "integrations.connect", "integration:"+id, audit.Success,
		map[string]string{"provider": p.Name, "scopes": auditList(scopes)}); err != nil {
		return nil, err
	}
	return c, nil
}

// seal seals a token's access and refresh parts for connection id.
func (s *Service) seal(ctx context.Context, ws, id string, tok *oauth2.Token) (Credentials, error) {
	if tok.AccessToken == "" {
		return Credentials{}, errExchange
	}
	acc, err := s.d.Sealer.Seal(ctx, []byte(tok.AccessToken), tokenAD(ws, id, "access"))
	if err != nil {
		return Credentials{}, err
	}
	cr := Credentials{Access: acc, TokenType: tokenType(tok)}
	if tok.RefreshToken != "" {
		if cr.Refresh, err = s.d.Sealer.Seal(ctx, []byte(tok.RefreshToken), tokenAD(ws, id, "refresh")); err != nil {
			return Credentials{}, err
		}
	}
	return cr, nil
}

// revokeGrant revokes a refused grant's tokens at once; what cannot be
// revoked now is queued. It returns how it went, for the audit trail.
func (s *Service) revokeGrant(ctx context.Context, p *provider, ws string, tok *oauth2.Token) string {
	if p.RevocationURL == "" {
		return "unsupported"
	}
	revs, err := s.revocations(ctx, p, ws, tok.AccessToken, tok.RefreshToken)
	if err != nil {
		s.d.Log.Error("integration: cannot queue revocation of a refused grant", "provider", p.Name, "err", err)
		return "failed"
	}
	if err := s.d.Store.QueueIntegrationRevocations(ctx, revs); err != nil {
		s.d.Log.Error("integration: cannot queue revocation of a refused grant", "provider", p.Name, "err", err)
		return "failed"
	}
	if s.revokeQueued(ctx, p, revs) {
		return "revoked"
	}
	return "queued"
}

func grantedScopes(tok *oauth2.Token, requested []string) []string {
	if v, ok := tok.Extra("scope").(string); ok && strings.TrimSpace(v) != "" {
		return splitScope(v)
	}
	// RFC 6749 §5.1: scope is omitted when it is the one requested.
	return slices.Clone(requested)
}

// tokenExpiry computes the expiry from expires_in with the service's clock
// (golang.org/x/oauth2 uses the wall clock, which tests cannot move).
func tokenExpiry(tok *oauth2.Token, now time.Time) time.Time {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return time.Time{}
		}
		secs = f
	default:
		if tok.ExpiresIn > 0 {
			secs = float64(tok.ExpiresIn)
		}
	}
	if secs <= 0 || secs > 10*365*24*3600 {
		return time.Time{}
	}
	return now.Add(time.Duration(secs) * time.Second).UTC()
}

func tokenType(tok *oauth2.Token) string {
	if tok.TokenType == "" {
		return "Bearer"
	}
	if len(tok.TokenType) > 32 {
		return tok.TokenType[:32]
	}
	return tok.TokenType
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
