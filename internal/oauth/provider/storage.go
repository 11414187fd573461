package provider

import (
	"context"
	"time"

	"github.com/ory/fosite"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
)

// storage implements fosite's storage interfaces over the oauth domain.
// Access tokens are self-contained JWTs and are not stored: revocation
// and introspection work from their jti and grant id. Refresh tokens are
// handled by refreshHandler (rotation with a grace window); fosite's own
// refresh storage methods are therefore not used.
type storage struct{ p *Provider }

const (
	kindCode = "code"
	kindPKCE = "pkce"
	kindOIDC = "oidc"
)

func (s storage) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.p.svc.Client(ctx, id)
	if fault.Is(err, fault.NotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &client{c}, nil
}

// Client assertions (private_key_jwt) are not offered.
func (s storage) ClientAssertionJWTValid(context.Context, string) error { return fosite.ErrJTIKnown }
func (s storage) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return fosite.ErrServerError
}

func (s storage) put(ctx context.Context, kind, sig string, r fosite.Requester) error {
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	now := s.p.now().UTC()
	return s.p.svc.Store().PutOAuthRequest(ctx, &oauth.StoredRequest{Kind: kind, Signature: sig, RequestID: r.GetID(),
		ClientID: r.GetClient().GetID(), Data: data, Active: true, CreatedAt: now, ExpiresAt: now.Add(s.p.cfg.AuthCodeTTL)})
}

func (s storage) get(ctx context.Context, kind, sig string) (*fosite.Request, bool, error) {
	sr, err := s.p.svc.Store().OAuthRequest(ctx, kind, sig)
	if fault.Is(err, fault.NotFound) {
		return nil, false, fosite.ErrNotFound
	}
	if err != nil {
		return nil, false, err
	}
	if kind == kindCode && !s.p.now().Before(sr.ExpiresAt) {
		return nil, false, fosite.ErrNotFound // an expired code is as good as none
	}
	r, err := s.p.decodeRequest(ctx, sr.Data)
	if err != nil {
		return nil, false, err
	}
	return r, sr.Active, nil
}

func (s storage) del(ctx context.Context, kind, sig string) error {
	return s.p.svc.Store().DeleteOAuthRequest(ctx, kind, sig)
}

// --- authorization codes ---

func (s storage) CreateAuthorizeCodeSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.put(ctx, kindCode, sig, r)
}

// GetAuthorizeCodeSession returns a spent code's request with
// ErrInvalidatedAuthorizeCode, so fosite revokes what it granted.
func (s storage) GetAuthorizeCodeSession(ctx context.Context, sig string, _ fosite.Session) (fosite.Requester, error) {
	r, active, err := s.get(ctx, kindCode, sig)
	if err != nil {
		return nil, err
	}
	if !active {
		return r, fosite.ErrInvalidatedAuthorizeCode
	}
	return r, nil
}

// InvalidateAuthorizeCodeSession spends a code; of concurrent exchanges
// only one wins.
func (s storage) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	ok, err := s.p.svc.Store().DeactivateOAuthRequest(ctx, kindCode, sig)
	if err != nil {
		return err
	}
	if !ok {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return nil
}

// --- PKCE ---

func (s storage) CreatePKCERequestSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.put(ctx, kindPKCE, sig, r)
}

func (s storage) GetPKCERequestSession(ctx context.Context, sig string, _ fosite.Session) (fosite.Requester, error) {
	r, _, err := s.get(ctx, kindPKCE, sig)
	return r, err
}

func (s storage) DeletePKCERequestSession(ctx context.Context, sig string) error {
	return s.del(ctx, kindPKCE, sig)
}

// --- OpenID Connect requests (keyed by the code, stored by its hash) ---

func (s storage) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.put(ctx, kindOIDC, oauth.Signature(code), r)
}

func (s storage) GetOpenIDConnectSession(ctx context.Context, code string, _ fosite.Requester) (fosite.Requester, error) {
	r, _, err := s.get(ctx, kindOIDC, oauth.Signature(code))
	return r, err
}

func (s storage) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.del(ctx, kindOIDC, oauth.Signature(code))
}

// --- access tokens: self-contained, not stored ---

func (s storage) CreateAccessTokenSession(context.Context, string, fosite.Requester) error {
	return nil
}
func (s storage) GetAccessTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}
func (s storage) DeleteAccessTokenSession(context.Context, string) error { return nil }

// --- refresh tokens: the first of a family is stored here ---

// CreateRefreshTokenSession starts a family named after the grant's
// request id, the id fosite revokes when the code is replayed.
func (s storage) CreateRefreshTokenSession(ctx context.Context, sig string, _ string, r fosite.Requester) error {
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	sess, _ := r.GetSession().(*Session)
	if sess == nil {
		sess = &Session{}
	}
	return s.p.svc.StartFamily(ctx, sig, r.GetID(), r.GetClient().GetID(), sess.Subject, sess.SessionID, data)
}

func (s storage) GetRefreshTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}
func (s storage) DeleteRefreshTokenSession(context.Context, string) error  { return nil }
func (s storage) RotateRefreshToken(context.Context, string, string) error { return nil }

// RevokeRefreshToken revokes the grant's family (a replayed code).
func (s storage) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.p.svc.RevokeGrant(ctx, requestID, "", "code_reuse")
}

// RevokeAccessToken marks the grant's access tokens revoked until they
// expire (introspection and userinfo honour it).
func (s storage) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.p.svc.Store().RevokeOAuthKey(ctx, oauth.GrantKey(requestID), s.p.now().Add(s.p.cfg.AccessTokenTTL+time.Minute))
}
