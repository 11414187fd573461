package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// nativeRedirect is a native app's loopback redirect (RFC 8252 §7.3).
const nativeRedirect = "http://127.0.0.1:8765/cb"

const (
	rpRedirect = "https://rp.example/callback"
	rpLogout   = "https://rp.example/bye"
)

// oidcEnv is one relying party's view of a running Rampart.
type oidcEnv struct {
	s        *server
	hc       *http.Client // trusts the server, dials "localhost" to it, keeps cookies, no redirects
	ctx      context.Context
	prov     *oidc.Provider
	verifier *oidc.IDTokenVerifier
	conf     oauth2.Config
	issuer   string
}

// newOIDCEnv builds an HTTP client that reaches the server under its public
// URL (https://localhost) and discovers the provider with go-oidc.
func newOIDCEnv(t *testing.T, s *server, clientID, secret string) *oidcEnv {
	t.Helper()
	addr := strings.TrimPrefix(s.base, "https://")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	hc := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: s.tls.Clone(), DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if a == "localhost:443" {
				a = addr
			}
			return dialer.DialContext(ctx, network, a)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(hc.CloseIdleConnections)
	e := &oidcEnv{s: s, hc: hc, issuer: s.app.Config.PublicURL}
	e.ctx = oidc.ClientContext(context.Background(), hc)
	e.prov, err = oidc.NewProvider(e.ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	e.verifier = e.prov.Verifier(&oidc.Config{ClientID: clientID})
	e.conf = oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: e.prov.Endpoint(), RedirectURL: rpRedirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "offline_access", "rampart:api"}}
	return e
}

func (e *oidcEnv) u(p string) string { return e.issuer + p }

// do sends a request with the env's client and returns status, headers, body.
func (e *oidcEnv) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func (e *oidcEnv) get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	return e.do(t, req)
}

func (e *oidcEnv) postForm(t *testing.T, path string, form url.Values, basic [2]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.u(path), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic[0] != "" {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return e.do(t, req)
}

// bearer calls Rampart's API with an access token and returns the status.
func (e *oidcEnv) bearer(t *testing.T, path, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.u(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	hc := *e.hc
	hc.Jar = nil // the token alone
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func (e *oidcEnv) signIn(t *testing.T, email string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.u("/v1/signin"), strings.NewReader(`{"email":"`+email+`","password":"`+firstPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if res, b := e.do(t, req); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", res.StatusCode, b)
	}
}

var hiddenRequest = regexp.MustCompile(`name="request" value="([^"]*)"`)

// authorize follows the authorization request until the redirect to the
// client, answering the consent page with decision when it appears. It
// returns the redirect's query (code, state or error).
func (e *oidcEnv) authorize(t *testing.T, authURL, decision string) (url.Values, bool) {
	t.Helper()
	res, body := e.get(t, authURL)
	consented := false
	if res.StatusCode == http.StatusOK && strings.Contains(string(body), `action="/oauth2/consent"`) {
		m := hiddenRequest.FindSubmatch(body)
		if m == nil {
			t.Fatalf("consent page without request: %s", body)
		}
		res, body = e.postForm(t, "/oauth2/consent", url.Values{"request": {html.UnescapeString(string(m[1]))}, "decision": {decision}}, [2]string{})
		consented = true
	}
	if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: status %d: %s", res.StatusCode, body)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), rpRedirect) {
		t.Fatalf("authorize redirected to %q", res.Header.Get("Location"))
	}
	return loc.Query(), consented
}

// claimsOf decodes a JWT's payload without verifying (the tests verify
// separately).
func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	_ = json.Unmarshal(hb, &h)
	m["_typ"] = h["typ"]
	return m
}

func (e *oidcEnv) introspect(t *testing.T, token string, basic [2]string) map[string]any {
	t.Helper()
	res, b := e.postForm(t, "/oauth2/introspect", url.Values{"token": {token}}, basic)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %s", res.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *oidcEnv) refresh(rt string) (*oauth2.Token, error) {
	return e.conf.TokenSource(e.ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
}

func oauthErrCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestOAuthEndToEnd(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine)
			}
			cfg := testConfig(t, db)
			cfg.Tenancy.AdminMFAOptional = true // the workspace Admin below has no TOTP
			s := start(t, cfg)
			oauthFlow(t, s)
		})
	}
}

func oauthFlow(t *testing.T, s *server) {
	const email = "oidc-user@example.com"
	ctx := context.Background()

	// A verified account.
	c := s.client(t, true)
	call(t, c, "POST", s.base+"/v1/signup", map[string]string{"email": email, "password": firstPassword}, http.StatusAccepted, nil)
	verify := mailToken(t, s, "verify_email", "/verify-email", 0)
	call(t, c, "POST", s.base+"/v1/verify-email", map[string]string{"token": verify}, http.StatusOK, nil)

	// A third-party confidential client registered by the operator.
	op := oauth.Actor{Type: audit.ActorOperator, ID: "test"}
	rp, secret, err := s.app.OAuth.CreateClient(ctx, op, "", oauth.ClientSpec{Name: "Relying Party", RedirectURIs: []string{rpRedirect},
		PostLogoutRedirectURIs: []string{rpLogout}, Scopes: []string{"openid", "email", "offline_access", "rampart:api"}})
	if err != nil {
		t.Fatal(err)
	}
	e := newOIDCEnv(t, s, rp.ID, secret)

	// Discovery lists S256 only and the endpoints.
	var disc map[string]any
	if err := e.prov.Claims(&disc); err != nil {
		t.Fatal(err)
	}
	if m, _ := disc["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Fatalf("PKCE methods %v", disc["code_challenge_methods_supported"])
	}
	for _, k := range []string{"revocation_endpoint", "introspection_endpoint", "end_session_endpoint", "userinfo_endpoint", "jwks_uri"} {
		if v, _ := disc[k].(string); !strings.HasPrefix(v, e.issuer+"/") {
			t.Fatalf("discovery %s = %v", k, disc[k])
		}
	}

	// Without a session the authorization endpoint sends the browser to
	// sign in, and signing in (page form) brings it back to the request.
	pkce := oauth2.GenerateVerifier()
	authURL := e.conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(pkce), oidc.Nonce("nonce-0123456789"))
	res, _ := e.get(t, authURL)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/signin?return_to=") {
		t.Fatalf("authorize without session: %d %q", res.StatusCode, loc)
	}
	ret, _ := url.Parse(loc)
	back := ret.Query().Get("return_to")
	res, _ = e.postForm(t, "/signin", url.Values{"email": {email}, "password": {firstPassword}, "return_to": {back}}, [2]string{})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != back || !strings.HasPrefix(back, "/oauth2/authorize?") {
		t.Fatalf("sign-in page did not return to the request: %d %q (want %q)", res.StatusCode, res.Header.Get("Location"), back)
	}
	// An absolute return_to is dropped (open redirect).
	res, _ = e.postForm(t, "/signin", url.Values{"email": {email}, "password": {firstPassword}, "return_to": {"https://evil.example/x"}}, [2]string{})
	if l := res.Header.Get("Location"); strings.Contains(l, "evil") {
		t.Fatalf("open redirect after sign-in: %q", l)
	}

	// Consent (third party), code, exchange with PKCE, ID token.
	q, consented := e.authorize(t, e.u(back), "allow")
	if !consented || q.Get("state") != "state-0123456789" || q.Get("code") == "" {
		t.Fatalf("authorize: consent %v, %v", consented, q)
	}
	tok, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := e.verifier.Verify(e.ctx, rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var idc struct {
		Email string   `json:"email"`
		SID   string   `json:"sid"`
		AMR   []string `json:"amr"`
	}
	if err := idt.Claims(&idc); err != nil || idt.Nonce != "nonce-0123456789" || idc.Email != email || idc.SID == "" || !slices.Equal(idc.AMR, []string{"pwd"}) {
		t.Fatalf("ID token claims: nonce %q %+v %v", idt.Nonce, idc, err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	at := claimsOf(t, tok.AccessToken)
	aud, _ := at["aud"].([]any)
	if at["_typ"] != "at+jwt" || at["iss"] != e.issuer || at["sub"] != idt.Subject || at["client_id"] != rp.ID || at["sid"] != idc.SID ||
		!slices.Contains(aud, any(e.issuer)) || at["jti"] == "" || !strings.Contains(at["scope"].(string), "openid") {
		t.Fatalf("access token claims %v", at)
	}
	if life := at["exp"].(float64) - at["iat"].(float64); life <= 0 || life > 15*60 {
		t.Fatalf("access token lifetime %vs", life)
	}
	if tok.RefreshToken == "" || !strings.HasPrefix(tok.RefreshToken, "rrt_") {
		t.Fatalf("no refresh token: %q", tok.RefreshToken)
	}

	// Rampart's own API accepts the access token.
	if st := e.bearer(t, "/v1/workspaces", tok.AccessToken); st != http.StatusOK {
		t.Fatalf("API with the access token: %d", st)
	}

	// userinfo through go-oidc.
	ui, err := e.prov.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != idt.Subject || ui.Email != email || !ui.EmailVerified {
		t.Fatalf("userinfo: %+v %v", ui, err)
	}

	// Introspection: authenticated clients only.
	basic := [2]string{rp.ID, secret}
	if m := e.introspect(t, tok.AccessToken, basic); m["active"] != true || m["sub"] != idt.Subject || m["client_id"] != rp.ID {
		t.Fatalf("introspect access token: %v", m)
	}
	if m := e.introspect(t, tok.RefreshToken, basic); m["active"] != true {
		t.Fatalf("introspect refresh token: %v", m)
	}
	if res, _ := e.postForm(t, "/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, [2]string{}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("introspection without client authentication: %d", res.StatusCode)
	}
	if res, _ := e.postForm(t, "/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, [2]string{rp.ID, "wrong"}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("introspection with a wrong secret: %d", res.StatusCode)
	}

	// Refresh rotates; inside the grace window the old token gets the
	// same successor.
	t2, err := e.refresh(tok.RefreshToken)
	if err != nil || t2.RefreshToken == tok.RefreshToken || t2.AccessToken == "" {
		t.Fatalf("refresh: %v", err)
	}
	t2b, err := e.refresh(tok.RefreshToken)
	if err != nil || t2b.RefreshToken != t2.RefreshToken {
		t.Fatalf("refresh inside the grace window: %v (same successor: %v)", err, err == nil && t2b.RefreshToken == t2.RefreshToken)
	}
	if m := e.introspect(t, tok.RefreshToken, basic); m["active"] != false {
		t.Fatalf("rotated refresh token still active: %v", m)
	}

	// Key rotation while tokens are outstanding: old tokens still verify.
	if _, err := s.app.RotateOAuthKeys(ctx); err != nil {
		t.Fatalf("rotate keys: %v", err)
	}
	if m := e.introspect(t, t2.AccessToken, basic); m["active"] != true {
		t.Fatalf("token signed before the rotation: %v", m)
	}
	if _, err := e.verifier.Verify(e.ctx, rawID); err != nil {
		t.Fatalf("ID token signed before the rotation: %v", err)
	}

	// Reuse after the grace window revokes the family and the session.
	s.clock.Advance(s.app.Config.OAuth.RefreshGrace + time.Second)
	if _, err := e.refresh(tok.RefreshToken); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("refresh reuse: %v", err)
	}
	if _, err := e.refresh(t2.RefreshToken); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("current token of a revoked family: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.u("/v1/me"), nil)
	if res, _ := e.do(t, req); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after refresh reuse: %d", res.StatusCode)
	}
	if m := e.introspect(t, t2.AccessToken, basic); m["active"] != false {
		t.Fatalf("access token of a revoked session still active: %v", m)
	}
	if st := e.bearer(t, "/v1/workspaces", t2.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("API with a token of a revoked session: %d", st)
	}
	if _, err := e.prov.UserInfo(e.ctx, oauth2.StaticTokenSource(t2)); err == nil {
		t.Fatal("userinfo accepted a token of a revoked session")
	}

	// Sign in again: consent is remembered, so no consent page.
	e.signIn(t, email)
	pkce = oauth2.GenerateVerifier()
	q, consented = e.authorize(t, e.conf.AuthCodeURL("state-abcdefghij", oauth2.S256ChallengeOption(pkce)), "")
	if consented || q.Get("code") == "" {
		t.Fatalf("second authorization: consent asked again %v, %v", consented, q)
	}
	t3, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}

	// Code reuse fails and revokes what the code granted.
	if _, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(pkce)); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("code reuse: %v", err)
	}
	if _, err := e.refresh(t3.RefreshToken); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("refresh of a replayed code's grant: %v", err)
	}
	if m := e.introspect(t, t3.AccessToken, basic); m["active"] != false {
		t.Fatalf("access token of a replayed code's grant: %v", m)
	}
	if st := e.bearer(t, "/v1/workspaces", t3.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("API with an access token of a replayed code's grant: %d", st)
	}

	// PKCE: missing, plain and wrong verifiers are refused.
	q, _ = e.authorize(t, e.conf.AuthCodeURL("state-nopkce0000"), "")
	if q.Get("error") != "invalid_request" || q.Get("code") != "" {
		t.Fatalf("authorize without PKCE: %v", q)
	}
	q, _ = e.authorize(t, e.conf.AuthCodeURL("state-plainpkce0", oauth2.SetAuthURLParam("code_challenge", pkce), oauth2.SetAuthURLParam("code_challenge_method", "plain")), "")
	if q.Get("error") == "" || q.Get("code") != "" {
		t.Fatalf("authorize with plain PKCE: %v", q)
	}
	q, _ = e.authorize(t, e.conf.AuthCodeURL("state-wrongpkce0", oauth2.S256ChallengeOption(pkce)), "")
	if _, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("exchange with a wrong verifier: %v", err)
	}
	if _, err := e.conf.Exchange(e.ctx, q.Get("code")); err == nil {
		t.Fatal("exchange without a verifier succeeded")
	}

	// Redirect URI: exact match only, and no redirect on mismatch.
	other := e.conf
	other.RedirectURL = "https://rp.example/callback2"
	res, body := e.get(t, other.AuthCodeURL("state-redirect00", oauth2.S256ChallengeOption(pkce)))
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Fatalf("redirect mismatch: %d %q %s", res.StatusCode, res.Header.Get("Location"), body)
	}

	// An expired code (Rampart's clock moved past its lifetime).
	q, _ = e.authorize(t, e.conf.AuthCodeURL("state-expired000", oauth2.S256ChallengeOption(pkce)), "")
	s.clock.Advance(s.app.Config.OAuth.AuthCodeTTL + time.Second)
	if _, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(pkce)); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("expired code: %v", err)
	}

	// Revocation (RFC 7009).
	q, _ = e.authorize(t, e.conf.AuthCodeURL("state-revoke0000", oauth2.S256ChallengeOption(pkce)), "")
	t4, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		form  url.Values
		basic [2]string
		want  int
		code  string
	}{
		{"unknown token", url.Values{"token": {"not-a-token"}}, basic, http.StatusOK, ""},
		{"unsupported hint", url.Values{"token": {t4.AccessToken}, "token_type_hint": {"id_token"}}, basic, http.StatusBadRequest, "unsupported_token_type"},
		{"no client", url.Values{"token": {t4.AccessToken}}, [2]string{}, http.StatusBadRequest, "invalid_request"},
		{"wrong secret", url.Values{"token": {t4.AccessToken}}, [2]string{rp.ID, "rcs_wrong"}, http.StatusUnauthorized, "invalid_client"},
		{"access token", url.Values{"token": {t4.AccessToken}, "token_type_hint": {"access_token"}}, basic, http.StatusOK, ""},
		{"refresh token", url.Values{"token": {t4.RefreshToken}}, basic, http.StatusOK, ""},
	} {
		res, b := e.postForm(t, "/oauth2/revoke", tc.form, tc.basic)
		if res.StatusCode != tc.want || (tc.code != "" && !strings.Contains(string(b), tc.code)) {
			t.Fatalf("revoke %s: %d %s", tc.name, res.StatusCode, b)
		}
	}
	if m := e.introspect(t, t4.AccessToken, basic); m["active"] != false {
		t.Fatalf("revoked access token: %v", m)
	}
	if st := e.bearer(t, "/v1/workspaces", t4.AccessToken); st != http.StatusUnauthorized {
		t.Fatalf("API with a revoked access token: %d", st)
	}
	if _, err := e.refresh(t4.RefreshToken); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("revoked refresh token: %v", err)
	}

	// A service client registered by a workspace Admin, with a subset of
	// the Admin's permissions; more than the Admin holds is refused.
	var ws struct {
		ID string `json:"id"`
	}
	call(t, c, "POST", s.base+"/v1/signin", map[string]string{"email": email, "password": firstPassword}, http.StatusOK, nil)
	call(t, c, "POST", s.base+"/v1/workspaces", map[string]string{"name": "Acme"}, http.StatusCreated, &ws)
	call(t, c, "POST", s.base+"/v1/workspaces/"+ws.ID+"/oauth/clients", map[string]any{"name": "too much",
		"grant_types": []string{"client_credentials"}, "permissions": []string{"nonexistent.permission"}}, http.StatusForbidden, nil)
	var created struct {
		Client struct {
			ID string `json:"id"`
		} `json:"client"`
		Secret string `json:"client_secret"`
	}
	call(t, c, "POST", s.base+"/v1/workspaces/"+ws.ID+"/oauth/clients", map[string]any{"name": "billing worker",
		"grant_types": []string{"client_credentials"}, "permissions": []string{"content.read"}, "scopes": []string{"jobs"}}, http.StatusCreated, &created)
	cc := clientcredentials.Config{ClientID: created.Client.ID, ClientSecret: created.Secret, TokenURL: e.prov.Endpoint().TokenURL, Scopes: []string{"jobs"}}
	st, err := cc.Token(e.ctx)
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	sc := claimsOf(t, st.AccessToken)
	perms, _ := sc["permissions"].([]any)
	if sc["sub"] != created.Client.ID || sc["workspace"] != ws.ID || len(perms) != 1 || perms[0] != "content.read" || sc["scope"] != "jobs" {
		t.Fatalf("service token claims: %v", sc)
	}
	if life := time.Until(st.Expiry); life > 15*time.Minute {
		t.Fatalf("service token lives %s", life)
	}
	if _, err := (&clientcredentials.Config{ClientID: created.Client.ID, ClientSecret: "rcs_wrong", TokenURL: cc.TokenURL}).Token(e.ctx); oauthErrCode(err) != "invalid_client" {
		t.Fatalf("wrong client secret: %v", err)
	}
	var list struct {
		Clients []map[string]any `json:"clients"`
	}
	call(t, c, "GET", s.base+"/v1/workspaces/"+ws.ID+"/oauth/clients", nil, http.StatusOK, &list)
	if len(list.Clients) != 1 || list.Clients[0]["client_secret"] != nil {
		t.Fatalf("client list: %v", list)
	}
	// Deleting the client ends its tokens at once (through the listener,
	// so through the gateway's WAF, which lets the API's DELETE pass).
	call(t, c, "DELETE", s.base+"/v1/workspaces/"+ws.ID+"/oauth/clients/"+created.Client.ID, nil, http.StatusNoContent, nil)
	if m := e.introspect(t, st.AccessToken, basic); m["active"] != false {
		t.Fatalf("token of a deleted client: %v", m)
	}

	// A native app (RFC 8252): public client, loopback IP redirect. The
	// WAF does not take the redirect URI for an inclusion attack.
	native, _, err := s.app.OAuth.CreateClient(ctx, op, "", oauth.ClientSpec{Name: "CLI", Public: true, FirstParty: true,
		RedirectURIs: []string{nativeRedirect}, Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	e.signIn(t, email)
	nc := oauth2.Config{ClientID: native.ID, Endpoint: e.prov.Endpoint(), RedirectURL: nativeRedirect, Scopes: []string{oidc.ScopeOpenID}}
	pkce = oauth2.GenerateVerifier()
	nres, nbody := e.get(t, nc.AuthCodeURL("state-native0000", oauth2.S256ChallengeOption(pkce), oidc.Nonce("nonce-native0000")))
	nloc, _ := url.Parse(nres.Header.Get("Location"))
	if nres.StatusCode != http.StatusFound && nres.StatusCode != http.StatusSeeOther || nloc == nil || !strings.HasPrefix(nloc.String(), nativeRedirect+"?") {
		t.Fatalf("native authorize: %d %q %s", nres.StatusCode, nres.Header.Get("Location"), nbody)
	}
	if _, err := nc.Exchange(e.ctx, nloc.Query().Get("code"), oauth2.VerifierOption(pkce)); err != nil {
		t.Fatalf("native exchange: %v", err)
	}

	// RP-initiated logout ends the session and returns to the registered URI.
	e.signIn(t, email)
	pkce = oauth2.GenerateVerifier()
	q, _ = e.authorize(t, e.conf.AuthCodeURL("state-logout0000", oauth2.S256ChallengeOption(pkce), oidc.Nonce("nonce-logout0000")), "")
	t5, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := t5.Extra("id_token").(string)
	res, _ = e.get(t, e.u("/oauth2/logout?")+url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("logout to an unregistered URI: %d", res.StatusCode)
	}
	res, _ = e.get(t, e.u("/oauth2/logout?")+url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rpLogout}, "state": {"st"}}.Encode())
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != rpLogout+"?state=st" {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	req, _ = http.NewRequest(http.MethodGet, e.u("/v1/me"), nil)
	if res, _ := e.do(t, req); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after logout: %d", res.StatusCode)
	}
	if _, err := e.refresh(t5.RefreshToken); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("refresh after logout: %v", err)
	}

	// The live checks pass with measured evidence.
	seen := 0
	for _, r := range s.app.Trust.Run(ctx) {
		if r.ID != "SES-3" && r.ID != "SES-4" {
			continue
		}
		seen++
		if r.Status != "passing" || r.Evidence == "" {
			t.Fatalf("%s: %s: %s", r.ID, r.Status, r.Evidence)
		}
		t.Logf("%s: %s", r.ID, r.Evidence)
	}
	if seen != 2 {
		t.Fatalf("%d of the SES-3/SES-4 checks ran", seen)
	}
}
