package provider

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
)

// Session is what a grant carries from the authorize endpoint to the
// tokens: who signed in, with which Rampart session and factors, or which
// service client. It implements fosite.Session and openid.Session and is
// stored as JSON with the authorization code and the refresh family.
type Session struct {
	Subject       string                         `json:"sub"`
	SessionID     string                         `json:"sid,omitempty"`
	AMR           []string                       `json:"amr,omitempty"`
	AuthTime      time.Time                      `json:"auth_time,omitzero"`
	RequestedAt   time.Time                      `json:"requested_at,omitzero"`
	Workspace     string                         `json:"workspace,omitempty"`
	Permissions   []string                       `json:"permissions,omitempty"`
	Email         string                         `json:"email,omitempty"`
	EmailVerified bool                           `json:"email_verified,omitempty"`
	Expires       map[fosite.TokenType]time.Time `json:"expires,omitempty"`
	idClaims      *jwt.IDTokenClaims             // at_hash set by fosite before the ID token is signed
	successor     string                         // refresh grant: the rotated refresh token to return
	atHashAlg     string                         // alg whose hash fosite uses for at_hash (see IDTokenHeaders)
}

var _ fosite.Session = (*Session)(nil)

// SetExpiresAt implements fosite.Session.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.Expires == nil {
		s.Expires = map[fosite.TokenType]time.Time{}
	}
	s.Expires[key] = exp
}

// GetExpiresAt implements fosite.Session.
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time { return s.Expires[key] }

// GetUsername implements fosite.Session.
func (s *Session) GetUsername() string { return s.Subject }

// GetSubject implements fosite.Session.
func (s *Session) GetSubject() string { return s.Subject }

// Clone implements fosite.Session.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.AMR = slices.Clone(s.AMR)
	c.Permissions = slices.Clone(s.Permissions)
	c.Expires = maps.Clone(s.Expires)
	if s.idClaims != nil {
		ic := *s.idClaims
		c.idClaims = &ic
	}
	return &c
}

// IDTokenClaims implements openid.Session; fosite only reads the subject
// and sets at_hash, the claims themselves are built by idTokenStrategy.
func (s *Session) IDTokenClaims() *jwt.IDTokenClaims {
	if s.idClaims == nil {
		s.idClaims = &jwt.IDTokenClaims{Subject: s.Subject, AuthTime: s.AuthTime, RequestedAt: s.RequestedAt}
	}
	return s.idClaims
}

// IDTokenHeaders implements openid.Session. fosite reads only "alg" from
// it, to pick the at_hash hash by the alg's digits: Ed25519 hashes with
// SHA-512 (as go-oidc and the OpenID errata expect), ES256 with SHA-256.
// The ID token's real header comes from the signing keys.
func (s *Session) IDTokenHeaders() *jwt.Headers {
	alg := s.atHashAlg
	if alg == "" {
		alg = "ES512"
	}
	return &jwt.Headers{Extra: map[string]any{"alg": alg}}
}

// storedRequest is the JSON form of a fosite request.
type storedRequest struct {
	ID                string     `json:"id"`
	RequestedAt       time.Time  `json:"requested_at"`
	ClientID          string     `json:"client_id"`
	RequestedScope    []string   `json:"requested_scope,omitempty"`
	GrantedScope      []string   `json:"granted_scope,omitempty"`
	RequestedAudience []string   `json:"requested_audience,omitempty"`
	GrantedAudience   []string   `json:"granted_audience,omitempty"`
	Form              url.Values `json:"form,omitempty"`
	Session           *Session   `json:"session"`
}

func encodeRequest(r fosite.Requester) ([]byte, error) {
	sess, _ := r.GetSession().(*Session)
	return json.Marshal(storedRequest{ID: r.GetID(), RequestedAt: r.GetRequestedAt(), ClientID: r.GetClient().GetID(),
		RequestedScope: r.GetRequestedScopes(), GrantedScope: r.GetGrantedScopes(), RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience: r.GetGrantedAudience(), Form: r.GetRequestForm(), Session: sess})
}

// decodeRequest rebuilds a request, loading its client afresh (a deleted
// client's grants die with it).
func (p *Provider) decodeRequest(ctx context.Context, data []byte) (*fosite.Request, error) {
	var sr storedRequest
	if err := json.Unmarshal(data, &sr); err != nil {
		return nil, fault.Wrap(fault.Internal, "internal", "cannot decode a stored grant", err)
	}
	c, err := p.svc.Client(ctx, sr.ClientID)
	if err != nil {
		if fault.Is(err, fault.NotFound) {
			return nil, fosite.ErrNotFound
		}
		return nil, err
	}
	if sr.Session == nil {
		sr.Session = &Session{}
	}
	sr.Session.atHashAlg = p.atHashAlg()
	if sr.Form == nil {
		sr.Form = url.Values{}
	}
	return &fosite.Request{ID: sr.ID, RequestedAt: sr.RequestedAt, Client: &client{c}, RequestedScope: sr.RequestedScope,
		GrantedScope: sr.GrantedScope, RequestedAudience: sr.RequestedAudience, GrantedAudience: sr.GrantedAudience,
		Form: sr.Form, Session: sr.Session}, nil
}

// client adapts oauth.Client to fosite.Client. It deliberately does not
// implement fosite.OpenIDConnectClient, so both client_secret_basic and
// client_secret_post are accepted.
type client struct{ c *oauth.Client }

func (c *client) GetID() string                   { return c.c.ID }
func (c *client) GetHashedSecret() []byte         { return c.c.SecretHash }
func (c *client) GetRedirectURIs() []string       { return c.c.RedirectURIs }
func (c *client) GetGrantTypes() fosite.Arguments { return c.c.GrantTypes }
func (c *client) GetResponseTypes() fosite.Arguments {
	if c.c.Has(oauth.GrantAuthorizationCode) {
		return fosite.Arguments{"code"}
	}
	return nil
}
func (c *client) GetScopes() fosite.Arguments   { return c.c.Scopes }
func (c *client) IsPublic() bool                { return c.c.Public }
func (c *client) GetAudience() fosite.Arguments { return c.c.Audience }

// hasher is fosite's secret hasher over SHA-256: client secrets are 256
// random bits, so a slow password hash buys nothing and would cap client
// credentials at a few dozen grants per second.
type hasher struct{}

func (hasher) Compare(_ context.Context, hash, data []byte) error {
	if !oauth.SecretMatches(hash, data) {
		return fosite.ErrInvalidClient
	}
	return nil
}

func (hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return oauth.HashSecret(data), nil
}

// GetExtraClaims adds Rampart's claims to introspection answers
// (fosite.ExtraClaimsSession), so resource servers see what the token's
// JWT says.
func (s *Session) GetExtraClaims() map[string]any {
	m := map[string]any{}
	if s.Workspace != "" {
		m["workspace"] = s.Workspace
	}
	if len(s.Permissions) > 0 {
		m["permissions"] = s.Permissions
	}
	if s.SessionID != "" {
		m["sid"] = s.SessionID
	}
	if len(s.AMR) > 0 {
		m["amr"] = s.AMR
	}
	return m
}
