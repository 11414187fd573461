package oauth_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
)

func TestValidateSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   string
		spec oauth.ClientSpec
		code string // "" = valid
	}{
		{"app defaults", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"https://a.example/cb"}}, ""},
		{"loopback http", "", oauth.ClientSpec{Name: "CLI", Public: true, RedirectURIs: []string{"http://127.0.0.1:8080/cb", "http://[::1]/cb", "http://localhost/cb"}}, ""},
		{"service", "ws1", oauth.ClientSpec{Name: "Svc", GrantTypes: []string{"client_credentials"}, Permissions: []string{"content.read"}}, ""},
		{"empty name", "", oauth.ClientSpec{Name: " ", RedirectURIs: []string{"https://a.example/cb"}}, "client_name_invalid"},
		{"control in name", "", oauth.ClientSpec{Name: "a\nb", RedirectURIs: []string{"https://a.example/cb"}}, "client_name_invalid"},
		{"no redirect", "", oauth.ClientSpec{Name: "App"}, "redirect_uri_required"},
		{"http non-loopback", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"http://a.example/cb"}}, "redirect_uri_invalid"},
		{"relative", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"/cb"}}, "redirect_uri_invalid"},
		{"fragment", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"https://a.example/cb#x"}}, "redirect_uri_invalid"},
		{"userinfo", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"https://u:p@a.example/cb"}}, "redirect_uri_invalid"},
		{"custom scheme", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"javascript://a.example/%0aalert(1)"}}, "redirect_uri_invalid"},
		{"bad post-logout", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"ftp://x"}}, "post_logout_redirect_uri_invalid"},
		{"unknown grant", "", oauth.ClientSpec{Name: "App", GrantTypes: []string{"password"}}, "grant_type_invalid"},
		{"implicit", "", oauth.ClientSpec{Name: "App", GrantTypes: []string{"implicit"}}, "grant_type_invalid"},
		{"public service", "", oauth.ClientSpec{Name: "Svc", Public: true, GrantTypes: []string{"client_credentials"}}, "grant_type_invalid"},
		{"refresh alone", "", oauth.ClientSpec{Name: "App", GrantTypes: []string{"refresh_token"}}, "grant_type_invalid"},
		{"bad scope", "", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"a b"}}, "scope_invalid"},
		{"perms without workspace", "", oauth.ClientSpec{Name: "Svc", GrantTypes: []string{"client_credentials"}, Permissions: []string{"x.y"}}, "permissions_invalid"},
		{"perms on app client", "ws1", oauth.ClientSpec{Name: "App", RedirectURIs: []string{"https://a.example/cb"}, Permissions: []string{"x.y"}}, "permissions_invalid"},
		{"too many redirects", "", oauth.ClientSpec{Name: "App", RedirectURIs: manyURIs(11)}, "redirect_uri_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := oauth.ValidateSpec(tc.ws, tc.spec)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.Has(oauth.GrantAuthorizationCode) && !slices.Contains(c.Scopes, "openid") {
					t.Fatalf("app client without default scopes: %v", c.Scopes)
				}
				return
			}
			if !fault.Is(err, fault.Invalid) || fault.As(err).Code != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
		})
	}
}

func manyURIs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "https://a.example/cb"+strings.Repeat("x", i))
	}
	return out
}

func TestSecretHash(t *testing.T) {
	h := oauth.HashSecret([]byte("rcs_secret")) // gitleaks:allow
	for _, tc := range []struct {
		hash   []byte
		secret string
		want   bool
	}{{h, "rcs_secret", true}, {h, "rcs_secreT", false}, {h, "", false}, {nil, "", false}, {h[:16], "rcs_secret", false}} {
		if got := oauth.SecretMatches(tc.hash, []byte(tc.secret)); got != tc.want {
			t.Errorf("SecretMatches(%x, %q) = %v", tc.hash, tc.secret, got)
		}
	}
}

// FuzzValidateSpec decodes arbitrary registration JSON and validates it:
// nothing panics, and every accepted client has only safe redirect URIs,
// known grant types and bounded lists.
func FuzzValidateSpec(f *testing.F) {
	f.Add("", `{"name":"App","redirect_uris":["https://a.example/cb"]}`)
	f.Add("ws", `{"name":"Svc","grant_types":["client_credentials"],"permissions":["a.b"]}`)
	f.Add("", `{"name":"N","public":true,"redirect_uris":["http://127.0.0.1:1/x"],"scopes":["openid","x:y/z"]}`)
	f.Add("", `{"name":"\u0000","redirect_uris":["http://[::1]:0/"],"audience":["https://api"]}`)
	f.Add("", `{"name":"x","redirect_uris":["HTTPS://A.EXAMPLE/%2e%2e/cb"]}`)
	f.Fuzz(func(t *testing.T, ws, body string) {
		var spec oauth.ClientSpec
		if json.Unmarshal([]byte(body), &spec) != nil {
			return
		}
		c, err := oauth.ValidateSpec(ws, spec)
		if err != nil {
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("non-Invalid error %v", err)
			}
			return
		}
		if len(c.Name) == 0 || len(c.Name) > 64 || len(c.RedirectURIs) > 10 || len(c.Scopes) > 32 {
			t.Fatalf("unbounded client %+v", c)
		}
		for _, g := range c.GrantTypes {
			if g != oauth.GrantAuthorizationCode && g != oauth.GrantRefreshToken && g != oauth.GrantClientCredentials {
				t.Fatalf("grant %q accepted", g)
			}
		}
		for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
			p, err := url.Parse(u)
			if err != nil || p.Host == "" || p.Fragment != "" || p.User != nil ||
				!(p.Scheme == "https" || (p.Scheme == "http" && (p.Hostname() == "localhost" || p.Hostname() == "127.0.0.1" || p.Hostname() == "::1"))) {
				t.Fatalf("unsafe URI accepted: %q", u)
			}
		}
		if len(c.Permissions) > 0 && (ws == "" || !c.Has(oauth.GrantClientCredentials)) {
			t.Fatalf("permissions on a non-service client: %+v", c)
		}
	})
}
