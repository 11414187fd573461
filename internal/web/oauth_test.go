package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/web"
)

// serviceClient registers an operator-level client-credentials client.
func serviceClient(t testing.TB, a *app.App) (id, secret string) {
	t.Helper()
	c, secret, err := a.OAuth.CreateClient(context.Background(), oauth.Actor{Type: audit.ActorSystem, ID: "test"}, "",
		oauth.ClientSpec{Name: "svc", GrantTypes: []string{oauth.GrantClientCredentials}, Scopes: []string{"jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, secret
}

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// The sign-in page honours only a local return_to, through the password
// step (and would through MFA): no open redirect.
func TestSignInReturnTo(t *testing.T) {
	a := newApp(t)
	signUp(t, a, "ret@example.com")
	long := "/oauth2/authorize?" + strings.Repeat("a=b&", 300)
	for _, tc := range []struct {
		ret, want string
	}{
		{"/oauth2/authorize?client_id=x&state=y", "/oauth2/authorize?client_id=x&state=y"},
		{long, long},
		{"https://evil.example/x", "/settings/security"},
		{"//evil.example/x", "/settings/security"},
		{"/\\evil.example", "/settings/security"},
		{"\\\\evil.example", "/settings/security"},
		{"/ok\x00", "/settings/security"},
		{"javascript:alert(1)", "/settings/security"},
		{"/" + strings.Repeat("x", 2100), "/settings/security"},
	} {
		form := url.Values{"email": {"ret@example.com"}, "password": {testPassword}, "return_to": {tc.ret}}.Encode()
		res := serve(a.Handler, formRequest(t, "/signin", form, "Accept", "text/html"))
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != tc.want {
			t.Errorf("return_to %.40q: %d %q, want %q", tc.ret, res.StatusCode, res.Header.Get("Location"), tc.want)
		}
	}
	// The sign-in page carries a safe return_to into its form only.
	res := serve(a.Handler, newRequest(t, http.MethodGet, "/signin?return_to="+url.QueryEscape("//evil.example"), nil, "Accept", "text/html"))
	if strings.Contains(string(res.body), "evil.example") {
		t.Fatal("unsafe return_to rendered into the sign-in form")
	}
}

func TestAuthorizeNeedsSession(t *testing.T) {
	a := newApp(t)
	target := "/oauth2/authorize?client_id=rc_x&response_type=code&state=abcdefghij"
	res := serve(a.Handler, newRequest(t, http.MethodGet, target, nil, "Accept", "text/html"))
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/signin?return_to="+url.QueryEscape(target) {
		t.Fatalf("authorize without session: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestWorkspaceClientAPI(t *testing.T) {
	a := newApp(t, func(c *config.Config) { c.Tenancy.AdminMFAOptional = true })
	signUp(t, a, "admin@example.com")
	ck := web.SessionCookie + "=" + signIn(t, a.Handler, "admin@example.com")
	res := serve(a.Handler, jsonRequest(t, http.MethodPost, "/v1/workspaces", `{"name":"Acme"}`, "Cookie", ck))
	var ws struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(res.body, &ws); err != nil || ws.ID == "" {
		t.Fatalf("workspace: %d %s", res.StatusCode, res.body)
	}
	path := "/v1/workspaces/" + ws.ID + "/oauth/clients"
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown field", `{"name":"x","secret":"mine"}`, 400, ""},
		{"no name", `{"redirect_uris":["https://a.example/cb"]}`, 400, "client_name_invalid"},
		{"http redirect", `{"name":"x","redirect_uris":["http://a.example/cb"]}`, 400, "redirect_uri_invalid"},
		{"fragment", `{"name":"x","redirect_uris":["https://a.example/cb#f"]}`, 400, "redirect_uri_invalid"},
		{"first party", `{"name":"x","first_party":true,"redirect_uris":["https://a.example/cb"]}`, 403, "first_party_operator_only"},
		{"permissions beyond the creator", `{"name":"x","grant_types":["client_credentials"],"permissions":["no.such"]}`, 403, "scope_exceeds_creator"},
		{"permissions on an app client", `{"name":"x","redirect_uris":["https://a.example/cb"],"permissions":["content.read"]}`, 400, "permissions_invalid"},
		{"app client", `{"name":"App","redirect_uris":["https://a.example/cb"]}`, 201, ""},
		{"service client", `{"name":"Svc","grant_types":["client_credentials"],"permissions":["content.read","content.write"]}`, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(a.Handler, jsonRequest(t, http.MethodPost, path, tc.body, "Cookie", ck))
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, res.body)
			}
			if tc.code != "" && decodeError(t, res).Error.Code != tc.code {
				t.Fatalf("code: %s", res.body)
			}
			if tc.status == 201 && !strings.Contains(string(res.body), `"client_secret":"rcs_`) {
				t.Fatalf("no secret shown: %s", res.body)
			}
		})
	}
	// Another account is not an Admin of the workspace.
	signUp(t, a, "other@example.com")
	other := web.SessionCookie + "=" + signIn(t, a.Handler, "other@example.com")
	if res := serve(a.Handler, newRequest(t, http.MethodGet, path, nil, "Cookie", other)); res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusNotFound {
		t.Fatalf("non-member listing clients: %d", res.StatusCode)
	}
	// The operator API refuses people who are not operator staff.
	if res := serve(a.Handler, newRequest(t, http.MethodGet, "/v1/operator/oauth/clients", nil, "Cookie", ck)); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator API for a non-operator: %d", res.StatusCode)
	}
}

// FuzzTokenEndpoint posts arbitrary forms and client credentials to the
// token endpoint through the whole handler: no input may cause a server
// error, and a 200 only ever comes with the right secret.
func FuzzTokenEndpoint(f *testing.F) {
	a := newApp(f)
	id, secret := serviceClient(f, a)
	f.Add("grant_type=client_credentials", id, secret)
	f.Add("grant_type=client_credentials&scope=jobs", id, secret)
	f.Add("grant_type=client_credentials&scope=other", id, secret)
	f.Add("grant_type=refresh_token&refresh_token=rrt_xxxxxxxxxxxxxxxx", id, secret)
	f.Add("grant_type=authorization_code&code=rac_x&code_verifier=abc&redirect_uri=https%3A%2F%2Fa", id, secret)
	f.Add("grant_type=password&username=a&password=b", id, "wrong")
	f.Add("%zz&&==;grant_type", "", "")
	f.Add("grant_type=client_credentials&audience=https%3A%2F%2Fapi", id+"\x00", secret)
	f.Fuzz(func(t *testing.T, form, cid, csecret string) {
		r := formRequest(t, "/oauth2/token", form)
		if cid != "" || csecret != "" {
			r.Header.Set("Authorization", basicAuth(cid, csecret))
		}
		res := serve(a.Handler, r)
		if res.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", res.StatusCode, form, res.body)
		}
		if res.StatusCode == http.StatusOK && (cid != id || csecret != secret) {
			t.Fatalf("token issued without the right credentials: %q %q", cid, form)
		}
	})
}

// FuzzClientRegistration posts arbitrary registration bodies: nothing may
// cause a server error, and whatever is accepted is a valid client.
func FuzzClientRegistration(f *testing.F) {
	a := newApp(f, func(c *config.Config) { c.Tenancy.AdminMFAOptional = true })
	signUp(f, a, "fuzz-admin@example.com")
	ck := web.SessionCookie + "=" + signIn(f, a.Handler, "fuzz-admin@example.com")
	res := serve(a.Handler, jsonRequest(f, http.MethodPost, "/v1/workspaces", `{"name":"Fuzz"}`, "Cookie", ck))
	var ws struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(res.body, &ws); err != nil {
		f.Fatal(err)
	}
	path := "/v1/workspaces/" + ws.ID + "/oauth/clients"
	f.Add(`{"name":"App","redirect_uris":["https://a.example/cb"]}`)
	f.Add(`{"name":"Svc","grant_types":["client_credentials"],"permissions":["content.read"]}`)
	f.Add(`{"name":"N","public":true,"redirect_uris":["http://127.0.0.1:9/cb"],"scopes":["openid","x:y"]}`)
	f.Add(`{"name":"\u0000","redirect_uris":["javascript:alert(1)"]}`)
	f.Add(`{"name":"x","redirect_uris":["https://user@a.example/cb"],"audience":["a b"]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		res := serve(a.Handler, jsonRequest(t, http.MethodPost, path, body, "Cookie", ck))
		if res.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", res.StatusCode, body, res.body)
		}
		if res.StatusCode != http.StatusCreated {
			return
		}
		var out struct {
			Client struct {
				RedirectURIs []string `json:"redirect_uris"`
				Public       bool     `json:"public"`
				GrantTypes   []string `json:"grant_types"`
			} `json:"client"`
		}
		if err := json.Unmarshal(res.body, &out); err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Client.RedirectURIs {
			p, err := url.Parse(u)
			if err != nil || p.Fragment != "" || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
	})
}

// BenchmarkClientCredentials measures client-credentials grants per second
// through the whole public handler (middleware, client lookup in the
// store, SHA-256 secret check, fosite, signing, audit log), in parallel,
// and reports the ratio to the raw signing rate of the same keys measured
// in the same run.
func BenchmarkClientCredentials(b *testing.B) {
	a := newApp(b)
	id, secret := serviceClient(b, a)
	auth := basicAuth(id, secret)

	// Raw signing rate of the same manager, same claims size, same run.
	claims := map[string]any{"iss": "https://localhost", "sub": id, "aud": []string{"https://localhost"}, "client_id": id, "scope": "jobs",
		"exp": time.Now().Add(5 * time.Minute).Unix(), "iat": time.Now().Unix(), "jti": "0123456789abcdefghijkl"}
	const rawN = 20000
	start := time.Now()
	for range rawN {
		if _, err := a.Signing.Sign("at+jwt", claims); err != nil {
			b.Fatal(err)
		}
	}
	rawPerSec := rawN / time.Since(start).Seconds()

	var failed atomic.Int64
	// Many clients at once, as a server sees them: the audit log commits
	// grants in groups, so throughput comes from concurrency, not from
	// one request's latency.
	b.SetParallelism(32)
	b.ResetTimer()
	begin := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := formRequest(b, "/oauth2/token", "grant_type=client_credentials&scope=jobs", "Authorization", auth)
			r.RemoteAddr = "127.0.0.1:40000"
			if res := serve(a.Handler, r); res.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	elapsed := time.Since(begin)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d grants failed", n)
	}
	grants := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(grants, "grants/s")
	b.ReportMetric(rawPerSec, "raw-signs/s")
	b.ReportMetric(grants/rawPerSec, "x-of-raw-sign")
}
