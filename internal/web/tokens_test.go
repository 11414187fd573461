package web_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/web"
)

// tokenClaims mirror the access-token format agreed with the OAuth
// provider (docs/SIGNING.md).
type tokenClaims struct {
	Iss         string   `json:"iss"`
	Sub         string   `json:"sub"`
	Aud         []string `json:"aud"`
	Exp         int64    `json:"exp"`
	Iat         int64    `json:"iat"`
	Jti         string   `json:"jti"`
	ClientID    string   `json:"client_id"`
	Scope       string   `json:"scope,omitempty"`
	Workspace   string   `json:"workspace,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	Sid         string   `json:"sid,omitempty"`
	Amr         []string `json:"amr,omitempty"`
}

type tokenEnv struct {
	a      *app.App
	cookie string
	uid    string
	sid    string
	client string // a registered OAuth client
}

// newClient registers an operator-level OAuth client and returns its id.
func newClient(t testing.TB, a *app.App) string {
	t.Helper()
	c, _, err := a.OAuth.CreateClient(context.Background(), oauth.Actor{Type: audit.ActorSystem, ID: "test"}, "",
		oauth.ClientSpec{Name: "tokens-test", GrantTypes: []string{oauth.GrantClientCredentials}, Scopes: []string{"jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func newTokenEnv(t testing.TB) tokenEnv {
	t.Helper()
	a := newApp(t)
	signUp(t, a, "tokens@example.com")
	cookie := signIn(t, a.Handler, "tokens@example.com")
	res := serve(a.Handler, newRequest(t, http.MethodGet, "/v1/me", nil, "Cookie", web.SessionCookie+"="+cookie))
	var me struct {
		ID      string `json:"id"`
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if err := json.Unmarshal(res.body, &me); err != nil || me.ID == "" || me.Session.ID == "" {
		t.Fatalf("me: %d %s", res.StatusCode, res.body)
	}
	return tokenEnv{a: a, cookie: cookie, uid: me.ID, sid: me.Session.ID, client: newClient(t, a)}
}

func (e tokenEnv) claims() tokenClaims {
	now := time.Now()
	return tokenClaims{Iss: e.a.Config.PublicURL, Sub: e.uid, Aud: []string{e.a.Config.PublicURL}, Exp: now.Add(5 * time.Minute).Unix(),
		Iat: now.Unix(), Jti: rand.Text(), ClientID: e.client, Scope: "openid " + web.APIScope, Sid: e.sid, Amr: []string{"pwd"}}
}

func (e tokenEnv) token(t testing.TB, typ string, c tokenClaims) string {
	t.Helper()
	tok, err := e.a.Signing.Sign(typ, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e tokenEnv) get(t testing.TB, path string, kv ...string) response {
	t.Helper()
	return serve(e.a.Handler, newRequest(t, http.MethodGet, path, nil, kv...))
}

func TestJWKSRoute(t *testing.T) {
	e := newTokenEnv(t)
	res := e.get(t, "/.well-known/jwks.json")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	cc := res.Header.Get("Cache-Control")
	if !strings.HasPrefix(cc, "public, max-age=") || cc == "public, max-age=0" {
		t.Fatalf("Cache-Control %q", cc)
	}
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal(res.body, &ks); err != nil || len(ks.Keys) != 1 {
		t.Fatalf("jwks body: %v %s", err, res.body)
	}
	kid, _, _, _ := e.a.Signing.SignerFor(context.Background())
	if ks.Keys[0].KeyID != kid || ks.Keys[0].Algorithm != "EdDSA" || !ks.Keys[0].IsPublic() {
		t.Fatalf("jwks key: %+v", ks.Keys[0])
	}
}

// TestAccessTokens: Rampart's API accepts its access tokens and refuses
// every kind of bad one with 401 invalid_token (403 for scope).
func TestAccessTokens(t *testing.T) {
	e := newTokenEnv(t)
	good := e.token(t, web.AccessTokenType, e.claims())
	if res := e.get(t, "/v1/workspaces", "Authorization", "Bearer "+good); res.StatusCode != http.StatusOK {
		t.Fatalf("good token: %d %s", res.StatusCode, res.body)
	}
	// A token acts as its user: a workspace created with it is theirs.
	res := serve(e.a.Handler, jsonRequest(t, http.MethodPost, "/v1/workspaces", `{"name":"Token Co"}`, "Authorization", "Bearer "+good))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create with token: %d %s", res.StatusCode, res.body)
	}
	var ws struct{ ID string }
	if err := json.Unmarshal(res.body, &ws); err != nil || ws.ID == "" {
		t.Fatalf("workspace: %s", res.body)
	}
	// A token is never an MFA session, even with a second factor in amr:
	// admin-only actions (here minting an API key) need the person's session.
	mfaTok := e.token(t, web.AccessTokenType, func() tokenClaims { c := e.claims(); c.Amr = []string{"pwd", "otp"}; return c }())
	res = serve(e.a.Handler, jsonRequest(t, http.MethodPost, "/v1/workspaces/"+ws.ID+"/api-keys", `{"name":"k","permissions":["content.read"]}`,
		"Authorization", "Bearer "+mfaTok))
	if res.StatusCode != http.StatusForbidden || decodeError(t, res).Error.Code != "mfa_required" {
		t.Fatalf("admin-only action with a token: %d %s", res.StatusCode, res.body)
	}

	mod := func(f func(*tokenClaims)) tokenClaims {
		c := e.claims()
		f(&c)
		return c
	}
	now := time.Now()
	cases := []struct {
		name   string
		token  string
		status int
		code   string
	}{
		{"wrong typ (an ID token)", e.token(t, "JWT", e.claims()), 401, "invalid_token"},
		{"wrong issuer", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Iss = "https://evil.example" })), 401, "invalid_token"},
		{"audience without Rampart", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Aud = []string{"https://api.other"} })), 401, "invalid_token"},
		{"expired", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) {
			c.Iat, c.Exp = now.Add(-10*time.Minute).Unix(), now.Add(-time.Minute).Unix()
		})), 401, "invalid_token"},
		{"issued in the future", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) {
			c.Iat, c.Exp = now.Add(5*time.Minute).Unix(), now.Add(10*time.Minute).Unix()
		})), 401, "invalid_token"},
		{"lifetime over 15 minutes", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Exp = now.Add(20 * time.Minute).Unix() })), 401, "invalid_token"},
		{"no exp", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Exp = 0 })), 401, "invalid_token"},
		{"no client", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.ClientID = "" })), 401, "invalid_token"},
		{"unknown client", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.ClientID = "no-such-client" })), 401, "invalid_token"},
		{"deleted client", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) {
			id := newClient(t, e.a)
			if err := e.a.OAuth.DeleteClient(context.Background(), oauth.Actor{Type: audit.ActorSystem, ID: "test"}, "", id); err != nil {
				t.Fatal(err)
			}
			c.ClientID = id
		})), 401, "invalid_token"},
		{"unknown session", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Sid = "nope" })), 401, "invalid_token"},
		{"session of another user", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Sub = "someone-else" })), 401, "invalid_token"},
		{"tampered", good[:len(good)-3] + "AAA", 401, "invalid_token"},
		{"not a token", "abc.def.ghi", 401, "invalid_token"},
		{"scope without the API", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Scope = "openid profile" })), 403, "insufficient_scope"},
		{"user token narrowed to permissions", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) { c.Permissions = []string{"content.read"} })), 403, "insufficient_scope"},
		{"client-credentials token", e.token(t, web.AccessTokenType, mod(func(c *tokenClaims) {
			c.Sid, c.Sub, c.Workspace, c.Permissions = "", "svc-client", "ws1", []string{"content.read"}
		})), 403, "client_token_unsupported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A valid cookie riding along changes nothing: the bearer is
			// judged alone.
			res := e.get(t, "/v1/workspaces", "Authorization", "Bearer "+c.token, "Cookie", web.SessionCookie+"="+e.cookie)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, res.body)
			}
			if got := decodeError(t, res).Error.Code; got != c.code {
				t.Fatalf("code %q, want %q", got, c.code)
			}
			if wa := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, `Bearer error="`) {
				t.Fatalf("WWW-Authenticate %q", wa)
			}
		})
	}
}

// TestRevokedSessionToken: revoking the session kills its tokens at once,
// while cookies and API keys keep working.
func TestRevokedSessionToken(t *testing.T) {
	e := newTokenEnv(t)
	ctx := context.Background()
	tok := e.token(t, web.AccessTokenType, e.claims())
	if res := e.get(t, "/v1/workspaces", "Authorization", "Bearer "+tok); res.StatusCode != http.StatusOK {
		t.Fatalf("before revocation: %d", res.StatusCode)
	}

	// An API key of a workspace of this user.
	p := tenancy.Principal{UserID: e.uid, MFA: true, MFAAt: time.Now()}
	ws, err := e.a.Tenancy.CreateWorkspace(ctx, p, "Key Co")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := e.a.Tenancy.CreateAPIKey(ctx, p, ws.ID, "k", []string{tenancy.PermWorkspaceRead}, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := signIn(t, e.a.Handler, "tokens@example.com")

	// A token revoked at the provider (RFC 7009) is refused, its sibling not.
	rc := e.claims()
	revokedTok := e.token(t, web.AccessTokenType, rc)
	if err := e.a.OAuth.RevokeAccessToken(ctx, rc.Jti, rc.ClientID, time.Unix(rc.Exp, 0)); err != nil {
		t.Fatal(err)
	}
	if res := e.get(t, "/v1/workspaces", "Authorization", "Bearer "+revokedTok); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d %s", res.StatusCode, res.body)
	}
	if res := e.get(t, "/v1/workspaces", "Authorization", "Bearer "+tok); res.StatusCode != http.StatusOK {
		t.Fatalf("sibling of a revoked token: %d %s", res.StatusCode, res.body)
	}

	if err := e.a.Identity.RevokeSession(ctx, e.uid, e.sid); err != nil {
		t.Fatal(err)
	}
	res := e.get(t, "/v1/workspaces", "Authorization", "Bearer "+tok)
	if res.StatusCode != http.StatusUnauthorized || decodeError(t, res).Error.Code != "invalid_token" ||
		res.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("token of a revoked session: %d %s", res.StatusCode, res.body)
	}
	if res := e.get(t, "/v1/workspaces", "Cookie", web.SessionCookie+"="+other); res.StatusCode != http.StatusOK {
		t.Fatalf("cookie of another session: %d %s", res.StatusCode, res.body)
	}
	if res := e.get(t, "/v1/workspaces/"+ws.ID, "Authorization", "Bearer "+key); res.StatusCode != http.StatusOK {
		t.Fatalf("API key: %d %s", res.StatusCode, res.body)
	}
	if res := e.get(t, "/v1/workspaces/"+ws.ID, "Authorization", "Bearer rmp_nope_nope"); res.StatusCode != http.StatusUnauthorized ||
		decodeError(t, res).Error.Code != "api_key_invalid" {
		t.Fatalf("bad API key: %d %s", res.StatusCode, res.body)
	}
}

// FuzzAccessTokenBearer: arbitrary bearer text on the token path never
// panics, never answers 500 and never authenticates.
func FuzzAccessTokenBearer(f *testing.F) {
	e := newTokenEnv(f)
	good := e.token(f, web.AccessTokenType, e.claims())
	p := strings.Split(good, ".")
	for _, s := range []string{good + "x", p[0] + "." + p[1] + ".", "a.b.c", "..", p[0] + ".e30." + p[2], "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == good || strings.ContainsAny(tok, "\r\n\x00") {
			return
		}
		res := e.get(t, "/v1/workspaces", "Authorization", "Bearer "+tok)
		if res.StatusCode == http.StatusOK || res.StatusCode >= 500 {
			t.Fatalf("bearer %q: status %d", tok, res.StatusCode)
		}
	})
}

// TestSES2LiveCheck: the SES-2 control reports passing with measured
// evidence, and fails once the active key is older than the rotation
// interval allows.
func TestSES2LiveCheck(t *testing.T) {
	find := func(a *app.App) (status, evidence string, data map[string]any) {
		for _, r := range a.Trust.Run(context.Background()) {
			if r.ID == "SES-2" {
				return string(r.Status), r.Evidence, r.Data
			}
		}
		t.Fatal("no SES-2 report")
		return "", "", nil
	}
	e := newTokenEnv(t)
	status, ev, data := find(e.a)
	if status != "passing" || !strings.Contains(ev, "EdDSA") || data["probe_round_trip"] != true || data["recent_unpublished"] != 0 {
		t.Fatalf("SES-2: %s: %s %v", status, ev, data)
	}

	// With the clock moved past the rotation interval (and Maintain not
	// run), the active key is too old: the check must fail.
	var skew atomic.Int64
	cfg := config.Default()
	cfg.DataDir, cfg.Dev, cfg.PublicURL = t.TempDir(), true, "https://localhost"
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Password.HashMemoryKiB, cfg.Password.HashTime = 8192, 1
	cfg.Finalize()
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if status, ev, _ := find(a); status != "passing" {
		t.Fatalf("fresh app: %s %s", status, ev)
	}
	skew.Store(int64(cfg.Signing.RotateEvery + cfg.Signing.PublishAhead + time.Hour))
	if status, ev, _ := find(a); status != "failing" || !strings.Contains(ev, "rotation is due") {
		t.Fatalf("stale key: %s %s", status, ev)
	}
}

// BenchmarkBearerToken is a whole API request (GET /v1/workspaces)
// authenticated by an access token — verification, revocation, client and
// session lookups included — interleaved with the same request
// authenticated by the session cookie; x-of-cookie is token-request
// throughput over cookie-request throughput in the same run.
func BenchmarkBearerToken(b *testing.B) {
	e := newTokenEnv(b)
	tok := e.token(b, web.AccessTokenType, e.claims())
	var own, base time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if res := e.get(b, "/v1/workspaces", "Authorization", "Bearer "+tok); res.StatusCode != http.StatusOK {
			b.Fatalf("token: %d", res.StatusCode)
		}
		t1 := time.Now()
		if res := e.get(b, "/v1/workspaces", "Cookie", web.SessionCookie+"="+e.cookie); res.StatusCode != http.StatusOK {
			b.Fatalf("cookie: %d", res.StatusCode)
		}
		own, base = own+t1.Sub(t0), base+time.Since(t1)
	}
	b.ReportMetric(float64(base)/float64(own), "x-of-cookie")
	b.ReportMetric(float64(b.N)/own.Seconds(), "token-req/s")
	b.ReportMetric(float64(b.N)/base.Seconds(), "cookie-req/s")
}
