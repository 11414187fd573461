package gateway

import (
	"context"
	"strings"
)

// Claims are the identity assertion's claims (APP-8). The app verifies the
// JWT against Rampart's JWKS and reads these instead of trusting any
// plain header.
type Claims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	Email     string   `json:"email,omitempty"`
	Workspace string   `json:"workspace,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	APIKeyID  string   `json:"api_key,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ExpiresAt int64    `json:"exp"`
	ID        string   `json:"jti"`
}

// mint signs the assertion for one request. Its lifetime is the configured
// TTL (at most 60 s): it travels one hop, so there is nothing to refresh
// and little worth stealing.
func (g *Gateway) mint(rt *route, id *Identity, ws string, ctx context.Context) (string, error) {
	now := g.d.Now()
	c := Claims{
		Issuer: strings.TrimRight(g.cfg.Issuer, "/"), Audience: rt.Audience, Subject: id.Subject, Email: id.Email,
		SessionID: id.SessionID, APIKeyID: id.APIKeyID, AMR: id.AMR,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), ExpiresAt: now.Add(g.cfg.AssertionTTL).Unix(), ID: info2id(ctx),
	}
	if ws == "" {
		ws = id.KeyWorkspace
	}
	if ws != "" {
		c.Workspace = ws
		if g.d.Auth != nil {
			c.Roles = g.d.Auth.Roles(ctx, id, ws)
		}
	}
	return g.d.Signer.Sign(AssertionType, c)
}

func info2id(ctx context.Context) string {
	if ri, ok := ctx.Value(infoKey).(*reqInfo); ok {
		return ri.id
	}
	return ""
}
