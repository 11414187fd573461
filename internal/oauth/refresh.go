package oauth

import (
	"context"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// RefreshTokenPrefix starts every refresh token, so a leaked one is
// recognisable by secret scanners.
const RefreshTokenPrefix = "rrt_"

// StartFamily stores the first refresh token of a grant. familyID is the
// grant's request id, so that a replayed authorization code revokes it.
func (s *Service) StartFamily(ctx context.Context, signature, familyID, clientID, subject, sessionID string, data []byte) error {
	now := s.d.Now().UTC()
	return s.d.Store.CreateRefreshToken(ctx, &RefreshToken{Signature: signature, FamilyID: familyID, ClientID: clientID,
		Subject: subject, SessionID: sessionID, Data: data, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)})
}

// Refreshed is the outcome of a refresh: the successor token and the grant
// it continues.
type Refreshed struct {
	Token string
	Grant *RefreshToken // the used token's record: family, subject, data
	Grace bool          // answered from the grace window (same successor)
}

// Refresh rotates a refresh token (SES-3). A current token is replaced by
// a new one of the same family. A token already rotated within the grace
// window yields the same successor, so parallel clients racing a refresh
// all continue. Any other reuse means the token leaked: the whole family
// and the Rampart session behind it are revoked.
func (s *Service) Refresh(ctx context.Context, token, clientID string) (*Refreshed, error) {
	if len(token) < len(RefreshTokenPrefix)+8 || len(token) > 256 {
		return nil, ErrInvalidGrant
	}
	sig := Signature(token)
	rt, err := s.d.Store.RefreshTokenBySignature(ctx, sig)
	if fault.Is(err, fault.NotFound) {
		return nil, ErrInvalidGrant
	}
	if err != nil {
		return nil, err
	}
	if rt.ClientID != clientID {
		s.refused(ctx, rt, clientID, "client_mismatch")
		return nil, ErrInvalidGrant
	}
	now := s.d.Now().UTC()
	if !rt.RevokedAt.IsZero() {
		s.refused(ctx, rt, clientID, "family_revoked")
		return nil, ErrInvalidGrant
	}
	if !now.Before(rt.ExpiresAt) {
		s.refused(ctx, rt, clientID, "expired")
		return nil, ErrInvalidGrant
	}
	if rt.RotatedAt.IsZero() {
		if err := s.checkSession(ctx, rt); err != nil {
			return nil, err
		}
		next, err := s.RandomToken(RefreshTokenPrefix)
		if err != nil {
			return nil, err
		}
		sealed, err := s.d.Sealer.Seal(ctx, []byte(next), successorAD(rt))
		if err != nil {
			return nil, err
		}
		nrt := &RefreshToken{Signature: Signature(next), FamilyID: rt.FamilyID, ClientID: rt.ClientID, Subject: rt.Subject,
			SessionID: rt.SessionID, Data: rt.Data, CreatedAt: now, ExpiresAt: rt.ExpiresAt}
		ok, err := s.d.Store.RotateRefreshToken(ctx, sig, sealed, nrt, now)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := s.record(ctx, s.event(rt, "oauth.refresh", audit.Success, nil)); err != nil {
				return nil, err
			}
			return &Refreshed{Token: next, Grant: rt}, nil
		}
		// Another request rotated it first: judge as a reuse below.
		if rt, err = s.d.Store.RefreshTokenBySignature(ctx, sig); err != nil {
			return nil, err
		}
		if !rt.RevokedAt.IsZero() {
			s.refused(ctx, rt, clientID, "family_revoked")
			return nil, ErrInvalidGrant
		}
	}
	if len(rt.Successor) > 0 && now.Sub(rt.RotatedAt) <= s.cfg.RefreshGrace {
		next, err := s.d.Sealer.Open(ctx, rt.Successor, successorAD(rt))
		if err != nil {
			return nil, err
		}
		if err := s.record(ctx, s.event(rt, "oauth.refresh", audit.Success, map[string]string{"grace": "true"})); err != nil {
			return nil, err
		}
		return &Refreshed{Token: string(next), Grant: rt, Grace: true}, nil
	}
	return nil, s.reused(ctx, rt, now)
}

// successorAD binds a sealed successor to the token row it belongs to.
func successorAD(rt *RefreshToken) vault.AD {
	return vault.AD{Workspace: "", Table: "oauth_refresh", Column: "successor", Row: rt.FamilyID + "/" + rt.Signature}
}

// checkSession refuses (and revokes the family of) a grant whose Rampart
// session has ended: signing out ends the app's refresh too.
func (s *Service) checkSession(ctx context.Context, rt *RefreshToken) error {
	if rt.SessionID == "" || s.d.SessionAlive == nil {
		return nil
	}
	alive, err := s.d.SessionAlive(ctx, rt.Subject, rt.SessionID)
	if err != nil {
		return err
	}
	if alive {
		return nil
	}
	n, err := s.d.Store.RevokeRefreshFamily(ctx, rt.FamilyID, s.d.Now().UTC())
	if err != nil {
		return err
	}
	_ = s.record(ctx, s.event(rt, "oauth.family_revoke", audit.Success, map[string]string{"reason": "session_ended", "tokens": strconv.Itoa(n)}))
	return ErrInvalidGrant
}

// reused revokes the family and the session of a replayed refresh token.
func (s *Service) reused(ctx context.Context, rt *RefreshToken, now time.Time) error {
	n, err := s.d.Store.RevokeRefreshFamily(ctx, rt.FamilyID, now)
	if err != nil {
		return err
	}
	if err := s.d.Store.RevokeOAuthKey(ctx, GrantKey(rt.FamilyID), rt.ExpiresAt); err != nil {
		return err
	}
	sessionRevoked := "false"
	if rt.SessionID != "" && s.d.RevokeSession != nil {
		if err := s.d.RevokeSession(ctx, rt.Subject, rt.SessionID); err != nil && !fault.Is(err, fault.NotFound) {
			s.d.Log.Warn("oauth: revoke session after refresh reuse", "err", err)
		} else {
			sessionRevoked = "true"
		}
	}
	if err := s.record(ctx, s.event(rt, "oauth.refresh_reuse", audit.Denied, map[string]string{
		"family_tokens_revoked": strconv.Itoa(n), "session_revoked": sessionRevoked})); err != nil {
		return err
	}
	return ErrRefreshReused
}

func (s *Service) refused(ctx context.Context, rt *RefreshToken, clientID, reason string) {
	e := s.event(rt, "oauth.refresh", audit.Denied, map[string]string{"reason": reason})
	e.ActorID = clientID
	_ = s.record(ctx, e)
}

func (s *Service) event(rt *RefreshToken, action string, o audit.Outcome, details map[string]string) audit.Event {
	if details == nil {
		details = map[string]string{}
	}
	details["family"] = rt.FamilyID
	if rt.SessionID != "" {
		details["session"] = rt.SessionID
	}
	if rt.Subject != "" {
		details["subject"] = rt.Subject
	}
	return audit.Event{ActorType: audit.ActorService, ActorID: rt.ClientID, Action: action, Target: "oauth_client:" + rt.ClientID, Outcome: o, Details: details}
}

// GrantKey is the revocation key of a whole grant (family).
func GrantKey(familyID string) string { return "grant:" + familyID }

// TokenKey is the revocation key of one access token.
func TokenKey(jti string) string { return "jti:" + jti }

// RevokeGrant revokes a grant's refresh family and marks its access tokens
// revoked for introspection. It serves a replayed authorization code and
// RFC 7009 revocation of a refresh token.
func (s *Service) RevokeGrant(ctx context.Context, familyID, clientID, reason string) error {
	now := s.d.Now().UTC()
	n, err := s.d.Store.RevokeRefreshFamily(ctx, familyID, now)
	if err != nil {
		return err
	}
	if err := s.d.Store.RevokeOAuthKey(ctx, GrantKey(familyID), now.Add(s.cfg.RefreshTTL)); err != nil {
		return err
	}
	return s.record(ctx, audit.Event{ActorType: audit.ActorService, ActorID: clientID, Action: "oauth.family_revoke", Target: "oauth_client:" + clientID,
		Outcome: audit.Success, Details: map[string]string{"family": familyID, "reason": reason, "tokens": strconv.Itoa(n)}})
}

// RevokeRefreshToken implements RFC 7009 for a refresh token: unknown
// tokens are fine (nothing to do), another client's token is refused.
func (s *Service) RevokeRefreshToken(ctx context.Context, token, clientID string) (found bool, err error) {
	if len(token) > 256 {
		return false, nil
	}
	rt, err := s.d.Store.RefreshTokenBySignature(ctx, Signature(token))
	if fault.Is(err, fault.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if rt.ClientID != clientID {
		return true, ErrUnauthorizedClient
	}
	return true, s.RevokeGrant(ctx, rt.FamilyID, clientID, "revocation")
}

// RevokeAccessToken records an access token (by jti) as revoked until it
// expires by itself.
func (s *Service) RevokeAccessToken(ctx context.Context, jti, clientID string, exp time.Time) error {
	if err := s.d.Store.RevokeOAuthKey(ctx, TokenKey(jti), exp); err != nil {
		return err
	}
	return s.record(ctx, audit.Event{ActorType: audit.ActorService, ActorID: clientID, Action: "oauth.revoke", Target: "oauth_client:" + clientID,
		Outcome: audit.Success, Details: map[string]string{"token_type": "access_token", "jti": jti}})
}

// Revoked reports whether any of keys (TokenKey, GrantKey) is revoked.
func (s *Service) Revoked(ctx context.Context, keys ...string) (bool, error) {
	now := s.d.Now().UTC()
	for _, k := range keys {
		if k == "" {
			continue
		}
		r, err := s.d.Store.OAuthKeyRevoked(ctx, k, now)
		if err != nil || r {
			return r, err
		}
	}
	return false, nil
}

// Stats returns counts for the live checks.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	return s.d.Store.OAuthStats(ctx, s.d.Now().UTC())
}

// Purge deletes expired state.
func (s *Service) Purge(ctx context.Context) (int, error) {
	return s.d.Store.PurgeOAuth(ctx, s.d.Now().UTC())
}

// Store exposes the storage to the provider adapter (same package family).
func (s *Service) Store() Store { return s.d.Store }
