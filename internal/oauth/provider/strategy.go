package provider

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/rampartsec/rampart/internal/oauth"
)

// Token type headers (RFC 9068 for access tokens).
const (
	TypAccessToken = "at+jwt"
	TypIDToken     = "JWT"
)

// AccessClaims are the claims of an access token. Rampart's API verifies
// exactly these (internal/web/authn.go).
type AccessClaims struct {
	Issuer      string   `json:"iss"`
	Subject     string   `json:"sub"`
	Audience    []string `json:"aud"`
	ExpiresAt   int64    `json:"exp"`
	IssuedAt    int64    `json:"iat"`
	JTI         string   `json:"jti"`
	ClientID    string   `json:"client_id"`
	Scope       string   `json:"scope,omitempty"`
	Workspace   string   `json:"workspace,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	SessionID   string   `json:"sid,omitempty"`
	AMR         []string `json:"amr,omitempty"`
	// Grant names the grant (refresh family) the token belongs to, so
	// revoking the grant revokes the token at introspection.
	Grant string `json:"grant,omitempty"`
}

// IDClaims are the claims of an ID token.
type IDClaims struct {
	Issuer        string   `json:"iss"`
	Subject       string   `json:"sub"`
	Audience      []string `json:"aud"`
	ExpiresAt     int64    `json:"exp"`
	IssuedAt      int64    `json:"iat"`
	AuthTime      int64    `json:"auth_time,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	AtHash        string   `json:"at_hash,omitempty"`
	AZP           string   `json:"azp,omitempty"`
	SessionID     string   `json:"sid,omitempty"`
	AMR           []string `json:"amr,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified *bool    `json:"email_verified,omitempty"`
}

// jwsSignature is the storage "signature" of a JWT: its signature segment.
func jwsSignature(token string) string {
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		return token[i+1:]
	}
	return ""
}

// --- access tokens ---

func (p *Provider) AccessTokenSignature(_ context.Context, token string) string {
	return jwsSignature(token)
}

// GenerateAccessToken signs a JWT access token for the request through
// the signing keys (EdDSA or ES256, typ at+jwt).
func (p *Provider) GenerateAccessToken(_ context.Context, r fosite.Requester) (string, string, error) {
	c, err := p.accessClaims(r)
	if err != nil {
		return "", "", err
	}
	tok, err := p.keys.Sign(TypAccessToken, c)
	if err != nil {
		return "", "", err
	}
	return tok, jwsSignature(tok), nil
}

func (p *Provider) accessClaims(r fosite.Requester) (*AccessClaims, error) {
	sess, _ := r.GetSession().(*Session)
	if sess == nil {
		sess = &Session{}
	}
	jti, err := p.svc.RandomToken("")
	if err != nil {
		return nil, err
	}
	now := p.now().UTC()
	aud := []string{p.cfg.Issuer}
	for _, a := range r.GetGrantedAudience() {
		if a != p.cfg.Issuer {
			aud = append(aud, a)
		}
	}
	clientID := r.GetClient().GetID()
	sub := sess.Subject
	if sub == "" {
		sub = clientID
	}
	c := &AccessClaims{Issuer: p.cfg.Issuer, Subject: sub, Audience: aud, IssuedAt: now.Unix(), ExpiresAt: now.Add(p.cfg.AccessTokenTTL).Unix(),
		JTI: jti[:22], ClientID: clientID, Scope: strings.Join(r.GetGrantedScopes(), " "), Workspace: sess.Workspace,
		Permissions: sess.Permissions, SessionID: sess.SessionID, AMR: sess.AMR}
	if sess.SessionID != "" {
		c.Grant = r.GetID()
	}
	return c, nil
}

// ValidateAccessToken checks signature and expiry.
func (p *Provider) ValidateAccessToken(ctx context.Context, _ fosite.Requester, token string) error {
	_, err := p.parseAccess(ctx, token)
	return err
}

var errTokenInactive = errors.New("token inactive")

// parseAccess verifies an access token: signature, type, issuer, expiry,
// revocation, and that its client still exists.
func (p *Provider) parseAccess(ctx context.Context, token string) (*AccessClaims, error) {
	if token == "" || len(token) > 8<<10 || strings.Count(token, ".") != 2 {
		return nil, errTokenInactive
	}
	var c AccessClaims
	if err := p.keys.Verify(token, TypAccessToken, &c); err != nil {
		return nil, errTokenInactive
	}
	now := p.now().Unix()
	if c.Issuer != p.cfg.Issuer || c.ExpiresAt <= now || c.JTI == "" || c.ClientID == "" {
		return nil, errTokenInactive
	}
	keys := []string{oauth.TokenKey(c.JTI)}
	if c.Grant != "" {
		keys = append(keys, oauth.GrantKey(c.Grant))
	}
	revoked, err := p.svc.Revoked(ctx, keys...)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, errTokenInactive
	}
	if ok, err := p.svc.ClientActive(ctx, c.ClientID); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return nil, errTokenInactive
	}
	if c.SessionID != "" && p.d.SessionAlive != nil {
		alive, err := p.d.SessionAlive(ctx, c.Subject, c.SessionID)
		if err != nil {
			return nil, err
		}
		if !alive {
			return nil, errTokenInactive
		}
	}
	return &c, nil
}

// --- refresh tokens and authorization codes: opaque random values ---

func (p *Provider) RefreshTokenSignature(_ context.Context, token string) string {
	return oauth.Signature(token)
}

func (p *Provider) GenerateRefreshToken(context.Context, fosite.Requester) (string, string, error) {
	tok, err := p.svc.RandomToken(oauth.RefreshTokenPrefix)
	if err != nil {
		return "", "", err
	}
	return tok, oauth.Signature(tok), nil
}

func (p *Provider) ValidateRefreshToken(context.Context, fosite.Requester, string) error { return nil }

// CodePrefix starts every authorization code.
const CodePrefix = "rac_"

func (p *Provider) AuthorizeCodeSignature(_ context.Context, token string) string {
	return oauth.Signature(token)
}

func (p *Provider) GenerateAuthorizeCode(context.Context, fosite.Requester) (string, string, error) {
	tok, err := p.svc.RandomToken(CodePrefix)
	if err != nil {
		return "", "", err
	}
	return tok, oauth.Signature(tok), nil
}

// ValidateAuthorizeCode checks the expiry fosite stamped on the code's
// session. fosite stamps it from the wall clock, so it is compared with the
// wall clock; the stored request's own expiry, on Rampart's clock, is
// enforced when the code is looked up (storage.get).
func (p *Provider) ValidateAuthorizeCode(_ context.Context, r fosite.Requester, _ string) error {
	exp := r.GetSession().GetExpiresAt(fosite.AuthorizeCode)
	if !exp.IsZero() && !time.Now().Before(exp) {
		return fosite.ErrTokenExpired
	}
	return nil
}

// --- ID tokens ---

// GenerateIDToken signs an ID token for the authorize request r.
func (p *Provider) GenerateIDToken(_ context.Context, lifespan time.Duration, r fosite.Requester) (string, error) {
	sess, ok := r.GetSession().(*Session)
	if !ok || sess.Subject == "" {
		return "", fosite.ErrServerError.WithDebug("no subject for the ID token")
	}
	if lifespan <= 0 {
		lifespan = p.cfg.IDTokenTTL
	}
	now := p.now().UTC()
	clientID := r.GetClient().GetID()
	c := IDClaims{Issuer: p.cfg.Issuer, Subject: sess.Subject, Audience: []string{clientID}, IssuedAt: now.Unix(),
		ExpiresAt: now.Add(lifespan).Unix(), Nonce: r.GetRequestForm().Get("nonce"), AZP: clientID, SessionID: sess.SessionID, AMR: sess.AMR}
	if !sess.AuthTime.IsZero() {
		c.AuthTime = sess.AuthTime.Unix()
	}
	if sess.idClaims != nil {
		c.AtHash = sess.idClaims.AccessTokenHash
	}
	if r.GetGrantedScopes().Has("email") && sess.Email != "" {
		v := sess.EmailVerified
		c.Email, c.EmailVerified = sess.Email, &v
	}
	return p.keys.Sign(TypIDToken, c)
}

// noHintSigner is the jwt.Signer fosite's prompt validator wants; Rampart
// does not accept id_token_hint at the authorization endpoint, so decoding
// one always fails (the request is refused).
type noHintSigner struct{}

var errNoHint = errors.New("id_token_hint is not supported at the authorization endpoint")

func (noHintSigner) Generate(context.Context, jwt.MapClaims, jwt.Mapper) (string, string, error) {
	return "", "", errNoHint
}
func (noHintSigner) Validate(context.Context, string) (string, error)   { return "", errNoHint }
func (noHintSigner) Hash(context.Context, []byte) ([]byte, error)       { return nil, errNoHint }
func (noHintSigner) Decode(context.Context, string) (*jwt.Token, error) { return nil, errNoHint }
func (noHintSigner) GetSignature(context.Context, string) (string, error) {
	return "", errNoHint
}
func (noHintSigner) GetSigningMethodLength(context.Context) int { return 0 }
