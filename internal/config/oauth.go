package config

// OAuthConfig configures the OAuth 2.0 / OpenID Connect provider and its signing keys.
type OAuthConfig struct{}

func defaultOAuth() OAuthConfig { return OAuthConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s OAuthConfig) check(p *problems, c Config) {}
