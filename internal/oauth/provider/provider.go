// Package provider adapts github.com/ory/fosite to Rampart: the OAuth 2.0 /
// OpenID Connect endpoints (authorization code with PKCE S256, client
// credentials, refresh with rotation, revocation, introspection, userinfo,
// discovery, RP-initiated logout) over the oauth domain, with access and ID
// tokens signed by Rampart's signing keys. It is one of the few packages
// allowed to speak HTTP (internal/archtest).
package provider

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
)

// Keys signs and verifies compact JWS (the signing package's Manager).
// Verify checks signature, kid and typ only; claims are checked here.
type Keys interface {
	Sign(typ string, claims any) (string, error)
	Verify(token, typ string, claims any) error
}

// Config holds the provider's settings.
type Config struct {
	Issuer         string // the public URL, without trailing slash
	AccessTokenTTL time.Duration
	IDTokenTTL     time.Duration
	AuthCodeTTL    time.Duration
	RefreshTTL     time.Duration
	// Algorithm is the signing keys' algorithm ("EdDSA" or "ES256"); it
	// decides the at_hash digest.
	Algorithm string
}

// atHashAlg names, for fosite's at_hash, an alg with the digest the ID
// token's real algorithm uses.
func (p *Provider) atHashAlg() string {
	if p.cfg.Algorithm == "ES256" {
		return "ES256"
	}
	return "ES512"
}

// Account is what userinfo and ID tokens say about a person.
type Account struct {
	Email         string
	EmailVerified bool
}

// Deps are the provider's collaborators.
type Deps struct {
	Service *oauth.Service
	Keys    Keys
	Audit   audit.Recorder
	Log     *slog.Logger
	Now     func() time.Time
	Rand    io.Reader
	// Account looks up a person for userinfo and ID-token claims.
	Account func(ctx context.Context, userID string) (Account, error)
	// SessionAlive reports whether a Rampart session still exists; tokens
	// of an ended session are inactive.
	SessionAlive func(ctx context.Context, userID, sessionID string) (bool, error)
}

// Provider is the OAuth 2.0 / OpenID Connect provider.
type Provider struct {
	cfg  Config
	d    Deps
	svc  *oauth.Service
	keys Keys
	f    *fosite.Fosite
	fc   *fosite.Config
	now  func() time.Time
}

// New builds the provider. PKCE is enforced for every client with S256
// only, scopes and audiences match exactly, and client secrets are
// compared as SHA-256 hashes in constant time.
func New(cfg Config, d Deps) (*Provider, error) {
	if d.Service == nil || d.Keys == nil {
		return nil, errors.New("provider: service and keys are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	p := &Provider{cfg: cfg, d: d, svc: d.Service, keys: d.Keys, now: d.Now}
	fc := &fosite.Config{
		AccessTokenLifespan:            cfg.AccessTokenTTL,
		RefreshTokenLifespan:           cfg.RefreshTTL,
		AuthorizeCodeLifespan:          cfg.AuthCodeTTL,
		IDTokenLifespan:                cfg.IDTokenTTL,
		IDTokenIssuer:                  cfg.Issuer,
		AccessTokenIssuer:              cfg.Issuer,
		TokenURL:                       cfg.Issuer + PathToken,
		EnforcePKCE:                    true,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.ExactAudienceMatchingStrategy,
		RefreshTokenScopes:             []string{}, // any grant of a client allowed refresh_token gets one
		ClientSecretsHasher:            hasher{},
		SendDebugMessagesToClients:     false,
		OmitRedirectScopeParam:         true,
	}
	st := storage{p: p}
	strategy := &strategies{Provider: p}
	f := compose.Compose(fc, st, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		func(fosite.Configurator, any, any) any { return &refreshHandler{p: p} },
		compose.OpenIDConnectExplicitFactory,
		compose.OAuth2PKCEFactory,
		func(fosite.Configurator, any, any) any { return &introspector{p: p} },
		func(fosite.Configurator, any, any) any { return &revoker{p: p} },
	)
	p.f = f.(*fosite.Fosite)
	p.fc = fc
	return p, nil
}

// strategies bundles the token strategies compose expects in one value.
type strategies struct {
	*Provider
	noHintSigner
}

var _ openid.OpenIDConnectTokenStrategy = (*strategies)(nil)

// Endpoint paths, relative to the issuer.
const (
	PathDiscovery  = "/.well-known/openid-configuration"
	PathJWKS       = "/.well-known/jwks.json"
	PathAuthorize  = "/oauth2/authorize"
	PathConsent    = "/oauth2/consent"
	PathToken      = "/oauth2/token"
	PathRevoke     = "/oauth2/revoke"
	PathIntrospect = "/oauth2/introspect"
	PathUserInfo   = "/oauth2/userinfo"
	PathLogout     = "/oauth2/logout"
)

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// AccessTokenTTL is the configured access-token lifetime.
func (p *Provider) AccessTokenTTL() time.Duration { return p.cfg.AccessTokenTTL }

func (p *Provider) record(ctx context.Context, e audit.Event) error {
	if p.d.Audit == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = p.now().UTC()
	}
	return p.d.Audit.Record(ctx, e)
}

// refreshHandler replaces fosite's refresh grant: rotation on every use,
// the same successor inside the grace window, and family plus session
// revocation on reuse (oauth.Service.Refresh).
type refreshHandler struct{ p *Provider }

func (h *refreshHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *refreshHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne("refresh_token")
}

func (h *refreshHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if !r.GetClient().GetGrantTypes().Has("refresh_token") {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the refresh_token grant.")
	}
	res, err := h.p.svc.Refresh(ctx, r.GetRequestForm().Get("refresh_token"), r.GetClient().GetID())
	if err != nil {
		if fault.Is(err, fault.Invalid) {
			return fosite.ErrInvalidGrant.WithHint(fault.As(err).Message)
		}
		return fosite.ErrServerError.WithWrap(err)
	}
	orig, err := h.p.decodeRequest(ctx, res.Grant.Data)
	if err != nil {
		return fosite.ErrInvalidGrant.WithHint("The grant no longer exists.")
	}
	sess, _ := orig.GetSession().(*Session)
	if sess == nil {
		sess = &Session{}
	}
	sess = sess.Clone().(*Session)
	sess.successor = res.Token
	sess.SetExpiresAt(fosite.AccessToken, h.p.now().UTC().Add(h.p.cfg.AccessTokenTTL))
	r.SetID(orig.GetID())
	r.SetSession(sess)
	r.SetRequestedScopes(orig.GetRequestedScopes())
	r.SetRequestedAudience(orig.GetRequestedAudience())
	for _, sc := range orig.GetGrantedScopes() {
		if !r.GetClient().GetScopes().Has(sc) {
			return fosite.ErrInvalidScope.WithHintf("The client may no longer use scope '%s'.", sc)
		}
		r.GrantScope(sc)
	}
	for _, a := range orig.GetGrantedAudience() {
		r.GrantAudience(a)
	}
	return nil
}

func (h *refreshHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	sess, _ := r.GetSession().(*Session)
	if sess == nil || sess.successor == "" {
		return fosite.ErrServerError.WithDebug("refresh without successor")
	}
	tok, _, err := h.p.GenerateAccessToken(ctx, r)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	resp.SetAccessToken(tok)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(h.p.cfg.AccessTokenTTL)
	resp.SetScopes(r.GetGrantedScopes())
	resp.SetExtra("refresh_token", sess.successor)
	return nil
}

// introspector answers RFC 7662 for Rampart's access and refresh tokens.
type introspector struct{ p *Provider }

func (i *introspector) IntrospectToken(ctx context.Context, token string, _ fosite.TokenUse, ar fosite.AccessRequester, _ []string) (fosite.TokenUse, error) {
	if strings.HasPrefix(token, oauth.RefreshTokenPrefix) {
		if len(token) > 256 {
			return "", fosite.ErrInactiveToken
		}
		rt, err := i.p.svc.Store().RefreshTokenBySignature(ctx, oauth.Signature(token))
		if err != nil || !rt.RevokedAt.IsZero() || !rt.RotatedAt.IsZero() || !i.p.now().Before(rt.ExpiresAt) {
			return "", fosite.ErrInactiveToken
		}
		orig, err := i.p.decodeRequest(ctx, rt.Data)
		if err != nil {
			return "", fosite.ErrInactiveToken
		}
		sess := orig.GetSession().(*Session).Clone().(*Session)
		sess.SetExpiresAt(fosite.RefreshToken, rt.ExpiresAt)
		sess.SetExpiresAt(fosite.AccessToken, rt.ExpiresAt) // fosite reports "exp" from this key
		fillRequester(ar, orig, sess)
		return fosite.RefreshToken, nil
	}
	c, err := i.p.parseAccess(ctx, token)
	if err != nil {
		if errors.Is(err, errTokenInactive) {
			return "", fosite.ErrInactiveToken
		}
		return "", fosite.ErrServerError.WithWrap(err)
	}
	cl, err := i.p.svc.Client(ctx, c.ClientID)
	if err != nil {
		return "", fosite.ErrInactiveToken
	}
	sess := &Session{Subject: c.Subject, SessionID: c.SessionID, AMR: c.AMR, Workspace: c.Workspace, Permissions: c.Permissions}
	sess.SetExpiresAt(fosite.AccessToken, time.Unix(c.ExpiresAt, 0).UTC())
	orig := &fosite.Request{ID: c.JTI, RequestedAt: time.Unix(c.IssuedAt, 0).UTC(), Client: &client{cl},
		GrantedScope: strings.Fields(c.Scope), GrantedAudience: c.Audience}
	fillRequester(ar, orig, sess)
	return fosite.AccessToken, nil
}

func fillRequester(ar fosite.AccessRequester, orig fosite.Requester, sess *Session) {
	ar.SetID(orig.GetID())
	ar.SetSession(sess)
	if r, ok := ar.(*fosite.AccessRequest); ok {
		r.Client = orig.GetClient()
		r.RequestedAt = orig.GetRequestedAt()
	}
	for _, sc := range orig.GetGrantedScopes() {
		ar.GrantScope(sc)
	}
	for _, a := range orig.GetGrantedAudience() {
		ar.GrantAudience(a)
	}
}

// revoker implements RFC 7009: unknown tokens succeed silently, another
// client's token is refused, a refresh token revokes its whole family and
// an access token is recorded revoked until it expires.
type revoker struct{ p *Provider }

func (rv *revoker) RevokeToken(ctx context.Context, token string, hint fosite.TokenType, c fosite.Client) error {
	switch hint {
	case "", fosite.AccessToken, fosite.RefreshToken:
	default:
		return errUnsupportedTokenType
	}
	if strings.HasPrefix(token, oauth.RefreshTokenPrefix) {
		_, err := rv.p.svc.RevokeRefreshToken(ctx, token, c.GetID())
		if errors.Is(err, oauth.ErrUnauthorizedClient) {
			return fosite.ErrUnauthorizedClient.WithHint("The token was not issued to this client.")
		}
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		return nil
	}
	var claims AccessClaims
	if len(token) > 8<<10 || rv.p.keys.Verify(token, TypAccessToken, &claims) != nil || claims.JTI == "" {
		return nil // unknown to us: nothing to revoke (RFC 7009 section 2.2)
	}
	if claims.ClientID != c.GetID() {
		return fosite.ErrUnauthorizedClient.WithHint("The token was not issued to this client.")
	}
	if err := rv.p.svc.RevokeAccessToken(ctx, claims.JTI, c.GetID(), time.Unix(claims.ExpiresAt, 0).Add(time.Minute)); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	return nil
}

// errUnsupportedTokenType is RFC 7009's answer to a token type hint
// Rampart does not revoke (fosite has no value for it).
var errUnsupportedTokenType = &fosite.RFC6749Error{ErrorField: "unsupported_token_type",
	DescriptionField: "The authorization server does not support the revocation of the presented token type.", CodeField: 400}
