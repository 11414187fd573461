package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampartsec/rampart/internal/outbound"
)

// IntegrationsConfig configures third-party integration providers (INT-1
// to INT-4): OAuth 2.0 services a workspace connects with the authorization
// code flow, and API-key services whose keys are checked for scope.
type IntegrationsConfig struct {
	// RefreshBefore: tokens expiring within this are refreshed before use
	// and by the background job.
	RefreshBefore time.Duration `yaml:"refresh_before"`
	// JobInterval is how often the background job runs (refresh, retry
	// revocations).
	JobInterval time.Duration `yaml:"job_interval"`
	// RevocationRetryFor bounds how long a failed revocation is retried
	// before it is dropped with an alert.
	RevocationRetryFor time.Duration `yaml:"revocation_retry_for"`
	// StateTTL bounds a connect flow (authorize and come back).
	StateTTL time.Duration `yaml:"state_ttl"`
	// Providers are read from the file only (a list of records has no
	// environment form), by UnmarshalYAML below, as gateway routes are.
	Providers []IntegrationProvider `yaml:"-"`
}

type integrationsFields IntegrationsConfig

type integrationsDoc struct {
	integrationsFields `yaml:",inline"`
	Providers          []IntegrationProvider `yaml:"providers,omitempty"`
}

// UnmarshalYAML decodes the section strictly (unknown keys are errors),
// keeping defaults for absent keys.
func (s *IntegrationsConfig) UnmarshalYAML(n *yaml.Node) error {
	doc := integrationsDoc{integrationsFields: integrationsFields(*s), Providers: s.Providers}
	if err := decodeStrict(n, "integrations", &doc); err != nil {
		return err
	}
	*s = IntegrationsConfig(doc.integrationsFields)
	s.Providers = doc.Providers
	return nil
}

// MarshalYAML writes the section with its providers.
func (s IntegrationsConfig) MarshalYAML() (any, error) {
	return integrationsDoc{integrationsFields: integrationsFields(s), Providers: s.Providers}, nil
}

// IntegrationProvider declares one provider. client_secret is a reference
// (${env:NAME} or ${file:/path}) outside dev mode; it is resolved by
// (IntegrationsConfig).Resolve, not by the loader, because the loader's
// walk does not descend into lists.
type IntegrationProvider struct {
	Name string `yaml:"name"`
	// Type is oauth2 or api_key.
	Type string `yaml:"type"`
	// Scopes are what a connection may hold (required): OAuth scopes, or
	// the permissions an API key may have.
	Scopes []string `yaml:"scopes"`

	AuthURL       string `yaml:"auth_url,omitempty"`
	TokenURL      string `yaml:"token_url,omitempty"`
	RevocationURL string `yaml:"revocation_url,omitempty"`
	ClientID      string `yaml:"client_id,omitempty"`
	ClientSecret  string `yaml:"client_secret,omitempty"`
	// AuthStyle: header (HTTP Basic, default) or params.
	AuthStyle string `yaml:"auth_style,omitempty"`

	// API keys: accepted key prefixes and/or a check endpoint whose JSON
	// answer lists the key's permissions in permissions_field.
	KeyPrefixes      []string `yaml:"key_prefixes,omitempty"`
	CheckURL         string   `yaml:"check_url,omitempty"`
	CheckAuth        string   `yaml:"check_auth,omitempty"`
	PermissionsField string   `yaml:"permissions_field,omitempty"`

	// AllowInsecureHTTP permits http:// to a non-loopback host (TLS-3).
	AllowInsecureHTTP bool `yaml:"allow_insecure_http,omitempty"`
}

func defaultIntegrations() IntegrationsConfig {
	return IntegrationsConfig{RefreshBefore: 5 * time.Minute, JobInterval: time.Minute, RevocationRetryFor: 72 * time.Hour, StateTTL: 10 * time.Minute}
}

// check adds the section's problems; c is the whole (finalized) config.
func (s IntegrationsConfig) check(p *problems, c Config) {
	if s.RefreshBefore <= 0 || s.RefreshBefore > 24*time.Hour {
		p.add("integrations.refresh_before", "must be between 1s and 24h")
	}
	if s.JobInterval < time.Second || s.JobInterval > time.Hour {
		p.add("integrations.job_interval", "must be between 1s and 1h")
	}
	if s.RevocationRetryFor < time.Minute {
		p.add("integrations.revocation_retry_for", "must be at least 1m")
	}
	if s.StateTTL < time.Minute || s.StateTTL > time.Hour {
		p.add("integrations.state_ttl", "must be between 1m and 1h")
	}
	seen := map[string]bool{}
	for i, pr := range s.Providers {
		f := fmt.Sprintf("integrations.providers[%d]", i)
		if pr.Name == "" || len(pr.Name) > 64 || strings.ContainsAny(pr.Name, " /\t") {
			p.add(f+".name", "must be a short name without spaces or slashes")
		} else if seen[pr.Name] {
			p.add(f+".name", "is declared twice")
		}
		seen[pr.Name] = true
		if len(pr.Scopes) == 0 {
			p.add(f+".scopes", "must list the scopes a connection may hold (INT-2)")
		}
		urlCheck := func(field, v string, required bool) {
			if v == "" {
				if required {
					p.add(f+"."+field, "is required")
				}
				return
			}
			u, err := url.Parse(v)
			if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
				p.add(f+"."+field, "must be an absolute http(s) URL without user information")
				return
			}
			if u.Scheme == "http" && !pr.AllowInsecureHTTP && !outbound.IsLoopback(u.Hostname()) {
				p.add(f+"."+field, "plaintext http to a non-loopback host is refused (TLS-3); use https or allow_insecure_http")
			}
		}
		switch pr.Type {
		case "oauth2":
			urlCheck("auth_url", pr.AuthURL, true)
			urlCheck("token_url", pr.TokenURL, true)
			urlCheck("revocation_url", pr.RevocationURL, false)
			if pr.ClientID == "" {
				p.add(f+".client_id", "is required")
			}
			if pr.ClientSecret != "" && !c.Dev && !isSecretRef(pr.ClientSecret) {
				p.add(f+".client_secret", "must be a reference (${env:NAME} or ${file:/path}), not the secret itself (SEC-3)")
			}
			if pr.AuthStyle != "" && pr.AuthStyle != "header" && pr.AuthStyle != "params" {
				p.add(f+".auth_style", "must be header or params")
			}
		case "api_key":
			if pr.CheckURL == "" && len(pr.KeyPrefixes) == 0 {
				p.add(f, "an api_key provider needs a scope check: check_url, key_prefixes or both")
			}
			urlCheck("check_url", pr.CheckURL, false)
			if pr.CheckAuth != "" && pr.CheckAuth != "bearer" && pr.CheckAuth != "basic" {
				p.add(f+".check_auth", "must be bearer or basic")
			}
		default:
			p.add(f+".type", "must be oauth2 or api_key")
		}
	}
}

func isSecretRef(v string) bool {
	scheme, _, ok := parseRef(v)
	return ok && (scheme == "env" || scheme == "file")
}

// Resolve returns the section with each provider's client_secret reference
// resolved from environ or the file it names. Errors name the provider and
// the reference, never a value.
func (s IntegrationsConfig) Resolve(environ []string) (IntegrationsConfig, error) {
	out := s
	out.Providers = append([]IntegrationProvider(nil), s.Providers...)
	for i := range out.Providers {
		pr := &out.Providers[i]
		scheme, arg, ok := parseRef(pr.ClientSecret)
		if !ok {
			continue
		}
		v, err := resolveRef(scheme, arg, environ)
		if err != nil {
			return s, fmt.Errorf("integrations.providers[%d].client_secret: %w", i, err)
		}
		pr.ClientSecret = v
	}
	return out, nil
}
