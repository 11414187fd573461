package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/outbound"
)

// maxBody bounds what is read of a provider's answer.
const maxBody = 64 << 10

// provider is a validated Provider with its HTTP client and OAuth config.
type provider struct {
	Provider
	client *http.Client
	oauth  *oauth2.Config
}

// checkURL parses an endpoint and applies TLS-3 (internal/outbound): https,
// or http only to a loopback host unless the provider explicitly allows
// plaintext. Credentials in the URL are refused too. Errors never quote
// the URL.
func checkURL(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := outbound.ParseURL(raw, allowInsecure)
	switch {
	case errors.Is(err, outbound.ErrPlaintextRefused):
		return nil, errors.New("plaintext http to a non-loopback host is refused (TLS-3); use https or allow_insecure_http")
	case err != nil || u.User != nil:
		return nil, errors.New("must be an absolute http(s) URL without user information")
	}
	return u, nil
}

func (s *Service) newProvider(p Provider) (*provider, error) {
	if p.Name == "" || len(p.Name) > 64 {
		return nil, errors.New("needs a name of at most 64 characters")
	}
	if len(p.Scopes) == 0 {
		return nil, errors.New("declares no allowed scopes (INT-2 needs every provider to declare them)")
	}
	// The shared outbound client: TLS 1.2+ verified, plaintext only as
	// allowed, every request re-checked, and a provider's redirect not
	// followed (it could lead to plaintext or elsewhere with the client's
	// credentials).
	client := outbound.Client(outbound.Options{AllowPlaintext: p.AllowInsecureHTTP, RootCAs: s.d.RootCAs, EnvironmentProxy: true},
		s.cfg.HTTPTimeout)
	if s.d.Transport != nil {
		client.Transport = outbound.Guard(s.d.Transport, p.AllowInsecureHTTP)
	}
	out := &provider{Provider: p, client: client}
	switch p.Kind {
	case KindOAuth2:
		for _, e := range []struct{ name, v string }{{"auth_url", p.AuthURL}, {"token_url", p.TokenURL}} {
			if _, err := checkURL(e.v, p.AllowInsecureHTTP); err != nil {
				return nil, fmt.Errorf("%s: %w", e.name, err)
			}
		}
		if p.RevocationURL != "" {
			if _, err := checkURL(p.RevocationURL, p.AllowInsecureHTTP); err != nil {
				return nil, fmt.Errorf("revocation_url: %w", err)
			}
		}
		if p.ClientID == "" {
			return nil, errors.New("needs a client_id")
		}
		style := oauth2.AuthStyleInHeader
		switch p.AuthStyle {
		case "", "header":
		case "params":
			style = oauth2.AuthStyleInParams
		default:
			return nil, errors.New("auth_style must be header or params")
		}
		out.oauth = &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: s.cfg.RedirectURL,
			Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: style}}
	case KindAPIKey:
		if p.CheckURL == "" && len(p.KeyPrefixes) == 0 {
			return nil, errors.New("an API-key provider needs a scope check: check_url, key_prefixes or both")
		}
		if p.CheckURL != "" {
			if _, err := checkURL(p.CheckURL, p.AllowInsecureHTTP); err != nil {
				return nil, fmt.Errorf("check_url: %w", err)
			}
		}
		if p.CheckAuth != "" && p.CheckAuth != "bearer" && p.CheckAuth != "basic" {
			return nil, errors.New("check_auth must be bearer or basic")
		}
	default:
		return nil, errors.New("type must be oauth2 or api_key")
	}
	return out, nil
}

// ctx returns ctx carrying the provider's client for golang.org/x/oauth2.
func (p *provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

// revoke asks the provider to revoke token (RFC 7009 §2.1), authenticating
// as the client. 200 is success (RFC 7009 answers 200 for an unknown or
// already invalid token too); anything else is a failure to retry.
func (p *provider) revoke(ctx context.Context, token, hint string) error {
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	if p.AuthStyle == "params" {
		form.Set("client_id", p.ClientID)
		form.Set("client_secret", p.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fault.Wrap(fault.Internal, "internal", "cannot build the revocation request", stripURL(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.AuthStyle != "params" {
		// RFC 6749 §2.3.1: form-encode id and secret before Basic.
		req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fault.Wrap(fault.Unavailable, "provider_unreachable", "the provider could not be reached", stripURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.CopyN(io.Discard, resp.Body, maxBody)
	if resp.StatusCode != http.StatusOK {
		return fault.New(fault.Unavailable, "revocation_failed", fmt.Sprintf("the provider answered %d", resp.StatusCode))
	}
	return nil
}

// checkKey asks the provider which permissions key holds.
func (p *provider) checkKey(ctx context.Context, key string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.CheckURL, nil)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "internal", "cannot build the key check request", stripURL(err))
	}
	if p.CheckAuth == "basic" {
		req.SetBasicAuth(key, "")
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "provider_unreachable", "the provider could not be reached to check the key", stripURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "provider_unreachable", "the provider's answer could not be read", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fault.New(fault.Invalid, "api_key_invalid", "the provider does not accept this key")
	case resp.StatusCode != http.StatusOK:
		return nil, fault.New(fault.Unavailable, "key_check_failed", fmt.Sprintf("the provider's key check answered %d", resp.StatusCode))
	}
	return parsePermissions(body, p.PermissionsField)
}

// parsePermissions reads the permission list from a key check answer. A
// missing or malformed list fails closed: a key whose scope is unknown is
// not stored.
func parsePermissions(body []byte, field string) ([]string, error) {
	if field == "" {
		field = "permissions"
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fault.New(fault.Forbidden, "scope_unknown", "the provider's key check did not say what the key may do")
	}
	raw, ok := obj[field]
	var perms []string
	if !ok || json.Unmarshal(raw, &perms) != nil {
		return nil, fault.New(fault.Forbidden, "scope_unknown", "the provider's key check did not say what the key may do")
	}
	slices.Sort(perms)
	return slices.Compact(perms), nil
}

// stripURL drops the *url.Error wrapper, whose message quotes the URL
// (and, for a GET with a query, whatever the query carries).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// splitScope reads a token response's scope: space-separated per RFC 6749
// §3.3, commas accepted for providers that use them.
func splitScope(v string) []string {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	slices.Sort(f)
	return slices.Compact(f)
}
