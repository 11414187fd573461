package config

import (
	"strings"
	"time"
)

// MaxAccessTokenTTL is the longest access-token lifetime Rampart accepts
// (SES-2): a stolen bearer token must expire by itself soon.
const MaxAccessTokenTTL = 15 * time.Minute

// OAuthConfig configures the OAuth 2.0 / OpenID Connect provider (SES-3,
// SES-4). The signing keys themselves are the signing section's.
type OAuthConfig struct {
	// AccessTokenTTL is the lifetime of issued JWT access tokens; at most
	// 15 minutes, because they are verified without a database lookup.
	AccessTokenTTL time.Duration `yaml:"access_token_ttl"`
	// IDTokenTTL is the lifetime of ID tokens.
	IDTokenTTL time.Duration `yaml:"id_token_ttl"`
	// RefreshTokenTTL bounds a refresh-token family from its first token.
	RefreshTokenTTL time.Duration `yaml:"refresh_token_ttl"`
	// RefreshGrace is how long a just-rotated refresh token still yields the
	// same successor (parallel tabs racing a refresh); after it, reuse
	// revokes the whole family and its session.
	RefreshGrace time.Duration `yaml:"refresh_grace"`
	// AuthCodeTTL is the lifetime of an authorization code.
	AuthCodeTTL time.Duration `yaml:"auth_code_ttl"`
	// FirstPartyClients are client ids that skip the consent screen in
	// addition to clients registered with first_party.
	FirstPartyClients []string `yaml:"first_party_clients,omitempty"`
	// ConsentTTL is how long a remembered consent lasts.
	ConsentTTL time.Duration `yaml:"consent_ttl"`
}

func defaultOAuth() OAuthConfig {
	return OAuthConfig{
		AccessTokenTTL:  5 * time.Minute,
		IDTokenTTL:      time.Hour,
		RefreshTokenTTL: 30 * 24 * time.Hour,
		RefreshGrace:    10 * time.Second,
		AuthCodeTTL:     time.Minute,
		ConsentTTL:      180 * 24 * time.Hour,
	}
}

// check adds the section's problems; c is the whole (finalized) config.
func (s OAuthConfig) check(p *problems, c Config) {
	positive(p, "oauth.access_token_ttl", s.AccessTokenTTL)
	if s.AccessTokenTTL > MaxAccessTokenTTL {
		p.add("oauth.access_token_ttl", "must be at most %s", MaxAccessTokenTTL)
	}
	positive(p, "oauth.id_token_ttl", s.IDTokenTTL)
	if s.IDTokenTTL > 24*time.Hour {
		p.add("oauth.id_token_ttl", "must be at most 24h")
	}
	positive(p, "oauth.refresh_token_ttl", s.RefreshTokenTTL)
	if s.RefreshGrace < 0 || s.RefreshGrace > time.Minute {
		p.add("oauth.refresh_grace", "must be from 0 to 1m")
	}
	positive(p, "oauth.auth_code_ttl", s.AuthCodeTTL)
	if s.AuthCodeTTL > 10*time.Minute {
		p.add("oauth.auth_code_ttl", "must be at most 10m (RFC 6749 section 4.1.2)")
	}
	positive(p, "oauth.consent_ttl", s.ConsentTTL)
	for _, id := range s.FirstPartyClients {
		if strings.TrimSpace(id) == "" {
			p.add("oauth.first_party_clients", "must not contain empty ids")
		}
	}
}
