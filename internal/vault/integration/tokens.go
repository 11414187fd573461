package integration

import (
	"context"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

var errRefresh = fault.New(fault.Unavailable, "integration_refresh_failed", "the provider did not refresh the token; try again or reconnect")

// Revocation states Disconnect reports.
const (
	RevocationDone          = "done"
	RevocationQueued        = "queued"
	RevocationUnsupported   = "unsupported"
	RevocationNotApplicable = "not_applicable"
)

// Token is a usable credential handed to the app.
type Token struct {
	AccessToken string
	TokenType   string
	ExpiresAt   time.Time // zero = no known expiry
	Scopes      []string
	Refreshed   bool
}

// List returns ws's connections. The caller has checked a permission.
func (s *Service) List(ctx context.Context, ws string) ([]Connection, error) {
	return s.d.Store.Integrations(ctx, ws)
}

// Get returns one connection.
func (s *Service) Get(ctx context.Context, ws, id string) (*Connection, error) {
	c, err := s.d.Store.Integration(ctx, ws, id)
	return c, notFound(err)
}

// Token returns a fresh credential of connection id, refreshing it first
// when it expires within RefreshBefore (INT-4). Every use is audited, never
// the value; if the audit record cannot be written the token is not given
// out. The caller has checked PermUse.
func (s *Service) Token(ctx context.Context, a Actor, ws, id string) (*Token, error) {
	c, cr, err := s.d.Store.IntegrationCredentials(ctx, ws, id)
	if err != nil {
		return nil, notFound(err)
	}
	refreshed := false
	now := s.d.Now()
	if c.Kind == KindOAuth2 && c.HasRefresh && !c.ExpiresAt.IsZero() && !now.Add(s.cfg.RefreshBefore).Before(c.ExpiresAt) {
		nc, ncr, did, rerr := s.refresh(ctx, a, c)
		switch {
		case rerr == nil:
			c, cr, refreshed = nc, ncr, did
		case now.Before(c.ExpiresAt):
			// The current token still works: hand it out; the job retries.
		default:
			_ = s.record(ctx, a, ws, "integrations.token", "integration:"+id, audit.Failure, map[string]string{"provider": c.Provider, "reason": "refresh_failed"})
			return nil, rerr
		}
	}
	if c.Kind == KindOAuth2 && !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		_ = s.record(ctx, a, ws, "integrations.token", "integration:"+id, audit.Failure, map[string]string{"provider": c.Provider, "reason": "expired"})
		return nil, fault.New(fault.Conflict, "integration_expired", "the token has expired and cannot be refreshed; reconnect the integration")
	}
	plain, err := s.d.Sealer.Open(ctx, cr.Access, tokenAD(ws, id, "access"))
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, a, ws, "integrations.token", "integration:"+id, audit.Success,
		map[string]string{"provider": c.Provider, "refreshed": boolText(refreshed)}); err != nil {
		return nil, fault.Wrap(fault.Unavailable, "audit_unavailable", "the use could not be recorded; try again", err)
	}
	if err := s.d.Store.TouchIntegration(ctx, ws, id, now); err != nil {
		s.d.Log.Warn("integration: last use not recorded", "err", err)
	}
	return &Token{AccessToken: string(plain), TokenType: cr.TokenType, ExpiresAt: c.ExpiresAt, Scopes: c.Scopes, Refreshed: refreshed}, nil
}

// refresh uses c's refresh token and stores the new tokens. One refresh per
// connection runs at a time on a node; across nodes the version check lets
// only one write, and the other reads the winner's tokens.
func (s *Service) refresh(ctx context.Context, a Actor, c *Connection) (*Connection, *Credentials, bool, error) {
	unlock := s.lock(c.ID)
	defer unlock()
	cur, cr, err := s.d.Store.IntegrationCredentials(ctx, c.Workspace, c.ID)
	if err != nil {
		return nil, nil, false, notFound(err)
	}
	now := s.d.Now()
	if cur.Version != c.Version && now.Add(s.cfg.RefreshBefore).Before(cur.ExpiresAt) {
		return cur, cr, false, nil // refreshed meanwhile
	}
	p, err := s.provider(cur.Provider)
	if err != nil {
		return nil, nil, false, err
	}
	target := "integration:" + cur.ID
	fail := func(code string, err error) (*Connection, *Credentials, bool, error) {
		_ = s.d.Store.RecordIntegrationRefreshFailure(ctx, cur.Workspace, cur.ID, code, now)
		_ = s.record(ctx, a, cur.Workspace, "integrations.refresh", target, audit.Failure, map[string]string{"provider": p.Name, "reason": code})
		return nil, nil, false, err
	}
	if cr.Refresh == nil {
		return fail("no_refresh_token", errRefresh)
	}
	rt, err := s.d.Sealer.Open(ctx, cr.Refresh, tokenAD(cur.Workspace, cur.ID, "refresh"))
	if err != nil {
		return fail("unseal_failed", err)
	}
	cfg := *p.oauth
	cfg.Scopes = cur.Scopes
	tok, err := cfg.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: string(rt), Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		s.d.Log.Warn("integration refresh failed", "provider", p.Name, "err", stripURL(err))
		return fail("provider_refused", errRefresh)
	}
	granted := grantedScopes(tok, cur.Scopes)
	if ex := scopeExcess(granted, p.Scopes); len(ex) > 0 {
		// A refresh must not widen the grant (RFC 6749 §6); if it does,
		// the new tokens are refused like a broad grant.
		s.refusals.Add(1)
		if tok.RefreshToken == string(rt) {
			tok.RefreshToken = "" // revoke only what is new
		}
		revoked := s.revokeGrant(ctx, p, cur.Workspace, tok)
		_ = s.record(ctx, a, cur.Workspace, "integrations.scope_refused", target, audit.Denied,
			map[string]string{"stage": "refresh", "excess": auditList(ex), "revocation": revoked})
		return fail("scope_too_broad", errScopeTooBroad)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = string(rt) // RFC 6749 §6: the old one stays valid
	}
	ncr, err := s.seal(ctx, cur.Workspace, cur.ID, tok)
	if err != nil {
		return nil, nil, false, err
	}
	expires := tokenExpiry(tok, now)
	if err := s.d.Store.UpdateIntegrationTokens(ctx, cur.Workspace, cur.ID, cur.Version, ncr, granted, expires, now); err != nil {
		if fault.Is(err, fault.Conflict) {
			again, acr, gerr := s.d.Store.IntegrationCredentials(ctx, cur.Workspace, cur.ID)
			return again, acr, false, notFound(gerr)
		}
		return nil, nil, false, err
	}
	_ = s.record(ctx, a, cur.Workspace, "integrations.refresh", target, audit.Success, map[string]string{"provider": p.Name})
	next := *cur
	next.Version, next.ExpiresAt, next.RefreshedAt, next.Scopes = cur.Version+1, expires, now, granted
	next.RefreshFailures, next.LastRefreshError = 0, ""
	return &next, &ncr, true, nil
}

// Disconnect deletes the connection and its credentials at once and
// revokes its tokens at the provider (RFC 7009, INT-3). The tokens are
// moved, re-sealed, into the revocation queue in the same transaction that
// deletes them; what the provider does not confirm now stays queued for
// RunJobs. It reports the revocation's state: RevocationDone,
// RevocationQueued, RevocationUnsupported (the provider has no revocation
// endpoint) or RevocationNotApplicable (API keys: the key is the
// provider's; only the workspace can roll it there).
func (s *Service) Disconnect(ctx context.Context, a Actor, ws, id string) (string, error) {
	c, cr, err := s.d.Store.IntegrationCredentials(ctx, ws, id)
	if err != nil {
		return "", notFound(err)
	}
	p, perr := s.provider(c.Provider)
	var revs []Revocation
	mode := RevocationNotApplicable
	if c.Kind == KindOAuth2 {
		mode = RevocationUnsupported
		if perr == nil && p.RevocationURL != "" {
			mode = RevocationQueued
			acc, err := s.d.Sealer.Open(ctx, cr.Access, tokenAD(ws, id, "access"))
			if err != nil {
				return "", err
			}
			var ref []byte
			if cr.Refresh != nil {
				if ref, err = s.d.Sealer.Open(ctx, cr.Refresh, tokenAD(ws, id, "refresh")); err != nil {
					return "", err
				}
			}
			if revs, err = s.revocations(ctx, p, ws, string(acc), string(ref)); err != nil {
				return "", err
			}
		}
	}
	if err := s.d.Store.DeleteIntegration(ctx, ws, id, revs); err != nil {
		return "", notFound(err)
	}
	if err := s.record(ctx, a, ws, "integrations.disconnect", "integration:"+id, audit.Success,
		map[string]string{"provider": c.Provider, "revocation": mode}); err != nil {
		s.d.Log.Error("integration: disconnect not audited", "err", err)
	}
	if len(revs) == 0 {
		return mode, nil
	}
	if s.revokeQueued(ctx, p, revs) {
		return RevocationDone, nil
	}
	return RevocationQueued, nil
}

// revocations builds the queue rows for tokens (refresh first: revoking it
// revokes its access tokens at most providers, RFC 7009 §2.1).
func (s *Service) revocations(ctx context.Context, p *provider, ws, access, refresh string) ([]Revocation, error) {
	now := s.d.Now()
	var out []Revocation
	for _, t := range []struct{ tok, hint string }{{refresh, "refresh_token"}, {access, "access_token"}} {
		if t.tok == "" {
			continue
		}
		id, err := s.randomHex(16)
		if err != nil {
			return nil, err
		}
		sealed, err := s.d.Sealer.Seal(ctx, []byte(t.tok), revocationAD(ws, id))
		if err != nil {
			return nil, err
		}
		out = append(out, Revocation{ID: id, Workspace: ws, Provider: p.Name, Token: sealed, TokenTypeHint: t.hint, QueuedAt: now, NextAttemptAt: now})
	}
	return out, nil
}

func revocationAD(ws, id string) vault.AD {
	return vault.AD{Workspace: ws, Table: TableRevocations, Column: "token", Row: id}
}

// revokeQueued tries each queued revocation now; it reports whether all
// succeeded.
func (s *Service) revokeQueued(ctx context.Context, p *provider, revs []Revocation) bool {
	all := true
	for i := range revs {
		if r := s.attempt(ctx, p, &revs[i]); r != outcomeRevoked {
			all = false
		}
	}
	return all
}

type outcome int

const (
	outcomeRevoked outcome = iota
	outcomeRetrying
	outcomeGivenUp
)

// attempt tries one revocation and records its result in the queue.
func (s *Service) attempt(ctx context.Context, p *provider, r *Revocation) outcome {
	now := s.d.Now()
	target := "provider:" + r.Provider
	var err error = errUnknownProvider
	var tok []byte
	if p != nil {
		tok, err = s.d.Sealer.Open(ctx, r.Token, revocationAD(r.Workspace, r.ID))
		if err == nil {
			err = p.revoke(ctx, string(tok), r.TokenTypeHint)
		}
	}
	if err == nil {
		if derr := s.d.Store.DeleteIntegrationRevocation(ctx, r.Workspace, r.ID); derr != nil {
			s.d.Log.Warn("integration: revoked token left in the queue", "err", derr)
		}
		_ = s.record(ctx, Actor{Type: audit.ActorSystem, ID: "rampart"}, r.Workspace, "integrations.revoke", target, audit.Success,
			map[string]string{"hint": r.TokenTypeHint, "attempts": itoa(r.Attempts + 1)})
		return outcomeRevoked
	}
	code := fault.As(err).Code
	r.Attempts++
	if now.Sub(r.QueuedAt) >= s.cfg.RevocationRetryFor || p == nil || fault.Is(err, fault.Internal) && tok == nil {
		// Bounded: after RetryFor (or when the token can no longer be
		// opened) the sealed token is dropped and people are told.
		_ = s.d.Store.DeleteIntegrationRevocation(ctx, r.Workspace, r.ID)
		s.revokeGiveUps.Add(1)
		e := audit.Event{ActorType: audit.ActorSystem, ActorID: "rampart", Workspace: r.Workspace, Action: "integrations.revoke",
			Target: target, Outcome: audit.Failure, Details: map[string]string{"reason": "gave_up", "last_error": code, "attempts": itoa(r.Attempts)}}
		_ = s.d.Audit.Record(ctx, e)
		if s.d.Alert != nil {
			s.d.Alert(ctx, e)
		}
		return outcomeGivenUp
	}
	next := now.Add(s.backoff(r.Attempts))
	if uerr := s.d.Store.RetryIntegrationRevocation(ctx, r.Workspace, r.ID, r.Attempts, next, code); uerr != nil {
		s.d.Log.Warn("integration: revocation retry not recorded", "err", uerr)
	}
	r.NextAttemptAt, r.LastError = next, code
	return outcomeRetrying
}

// backoff doubles from BackoffMin per attempt, capped at BackoffMax.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.cfg.BackoffMin
	for i := 1; i < attempts && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.BackoffMax)
}

// RunJobs is one background pass: it refreshes tokens that expire within
// RefreshBefore, retries due revocations, and sweeps expired connect
// flows. Run it on one node (leader) every minute or so.
func (s *Service) RunJobs(ctx context.Context) (JobReport, error) {
	now := s.d.Now()
	rep := JobReport{At: now}
	sys := Actor{Type: audit.ActorSystem, ID: "rampart"}
	due, err := s.d.Store.ExpiringIntegrations(ctx, now.Add(s.cfg.RefreshBefore), 200)
	if err != nil {
		return rep, err
	}
	for i := range due {
		if _, _, _, err := s.refresh(ctx, sys, &due[i]); err != nil {
			rep.RefreshFailed++
		} else {
			rep.Refreshed++
		}
	}
	revs, err := s.d.Store.DueIntegrationRevocations(ctx, now, 200)
	if err != nil {
		return rep, err
	}
	for i := range revs {
		p := s.providers[revs[i].Provider]
		switch s.attempt(ctx, p, &revs[i]) {
		case outcomeRevoked:
			rep.Revoked++
		case outcomeRetrying:
			rep.Retrying++
		case outcomeGivenUp:
			rep.GivenUp++
		}
	}
	if _, err := s.d.Store.DeleteExpiredIntegrationStates(ctx, now); err != nil {
		return rep, err
	}
	s.lastJob.Store(&rep)
	return rep, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// SealCheck is the INT-1 evidence: sampled token rows open under their own
// context and are refused under another row's.
type SealCheck struct {
	Sampled, Opened, CrossRefused int
}

// CheckSealing samples up to n stored token rows. Each must open under its
// own context and must not open when presented as another row's (the next
// sampled row's, or a row id that cannot exist when only one is stored).
func (s *Service) CheckSealing(ctx context.Context, n int) (SealCheck, error) {
	rows, err := s.d.Store.SampleIntegrationTokens(ctx, n)
	if err != nil {
		return SealCheck{}, err
	}
	var out SealCheck
	for i, r := range rows {
		out.Sampled++
		if _, err := s.d.Sealer.Open(ctx, r.Access, tokenAD(r.Workspace, r.ID, "access")); err == nil {
			out.Opened++
		}
		other := tokenAD(r.Workspace, "not-a-row", "access")
		if len(rows) > 1 {
			o := rows[(i+1)%len(rows)]
			other = tokenAD(o.Workspace, o.ID, "access")
		}
		if _, err := s.d.Sealer.Open(ctx, r.Access, other); err != nil {
			out.CrossRefused++
		}
	}
	return out, nil
}
