package app_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/trust"
	"golang.org/x/oauth2/clientcredentials"
)

// upstreamApp is the customer's app in these tests: it records what it
// received and answers with its own (weak) headers.
type upstreamApp struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last http.Header
	path string
}

func newUpstreamApp(t *testing.T) *upstreamApp {
	u := &upstreamApp{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last, u.path = r.Header.Clone(), r.URL.Path
		u.mu.Unlock()
		w.Header().Set("X-Powered-By", "express")
		_, _ = io.WriteString(w, "app "+r.URL.Path)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstreamApp) seen() (http.Header, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.path
}

// gatewayConfig routes /app to the upstream under each policy.
func gatewayConfig(t *testing.T, db, upstream string) config.Config {
	cfg := testConfig(t, db)
	cfg.Tenancy.Permissions = []string{"docs.read"}
	cfg.Gateway.HTTPRedirectListen = "127.0.0.1:0"
	cfg.Gateway.ReadHeaderTimeout = time.Second
	cfg.Gateway.MaxBodyBytes = 64 << 10
	cfg.Gateway.Routes = []config.GatewayRoute{
		{Name: "public", PathPrefix: "/app/public", Upstreams: []string{upstream}, Policy: "anonymous"},
		{Name: "members", PathPrefix: "/app/members", Upstreams: []string{upstream}, Policy: "authenticated"},
		{Name: "docs", PathPrefix: "/app/ws", Upstreams: []string{upstream}, Policy: "permission", Permission: "docs.read", Workspace: "path:1"},
		{Name: "mfa", PathPrefix: "/app/admin", Upstreams: []string{upstream}, Policy: "authenticated", MFA: true},
		{Name: "office", PathPrefix: "/app/office", Upstreams: []string{upstream}, Networks: []string{"10.0.0.0/8"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestGatewayEndToEnd(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine)
			}
			up := newUpstreamApp(t)
			s := start(t, gatewayConfig(t, db, up.srv.URL))
			gatewayWalk(t, s, up)
		})
	}
}

func gatewayWalk(t *testing.T, s *server, up *upstreamApp) {
	ctx := context.Background()
	u := func(p string) string { return s.base + p }
	anon := s.client(t, false)

	// A person with a session (signed up, verified, signed in).
	const email = "gate@example.com"
	c := s.client(t, true)
	creds := map[string]string{"email": email, "password": firstPassword}
	call(t, c, "POST", u("/v1/signup"), creds, http.StatusAccepted, nil)
	call(t, c, "POST", u("/v1/verify-email"), map[string]string{"token": mailToken(t, s, "verify_email", "/verify-email", 0)}, http.StatusOK, nil)
	call(t, c, "POST", u("/v1/signin"), creds, http.StatusOK, nil)
	user, err := s.app.Identity.UserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	admin := tenancy.Principal{UserID: user.ID, MFA: true, MFAAt: s.clock.Now()}
	ws, err := s.app.Tenancy.CreateWorkspace(ctx, admin, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.app.Tenancy.CreateWorkspace(ctx, admin, "Other")
	if err != nil {
		t.Fatal(err)
	}
	_, keyText, err := s.app.Tenancy.CreateAPIKey(ctx, admin, ws.ID, "ci", []string{"docs.read"}, 0)
	if err != nil {
		t.Fatal(err)
	}

	get := func(cl *http.Client, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", u(path), nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := cl.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	bearer := map[string]string{"Authorization": "Bearer " + keyText}
	tests := []struct {
		name string
		cl   *http.Client
		path string
		hdr  map[string]string
		want int
	}{
		{"anonymous route", anon, "/app/public/x", nil, 200},
		{"authenticated: no session, API client", anon, "/app/members/x", map[string]string{"Accept": "application/json"}, 401},
		{"authenticated: no session, browser", anon, "/app/members/x", map[string]string{"Accept": "text/html"}, 302},
		{"authenticated: session", c, "/app/members/x", nil, 200},
		{"permission: member of workspace", c, "/app/ws/" + ws.ID + "/doc", nil, 200},
		{"permission: api key of workspace", anon, "/app/ws/" + ws.ID + "/doc", bearer, 200},
		{"permission: api key, other workspace", anon, "/app/ws/" + other.ID + "/doc", bearer, 403},
		{"permission: unknown workspace", c, "/app/ws/nope/doc", nil, 403},
		{"permission: revoked-looking key", anon, "/app/ws/" + ws.ID + "/doc", map[string]string{"Authorization": "Bearer rmp_x_y"}, 401},
		{"mfa: session without second factor", c, "/app/admin/x", nil, 403},
		{"networks: loopback not in 10/8", c, "/app/office/x", nil, 403},
		{"rampart itself behind the gateway", c, "/v1/me", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(tt.cl, tt.path, tt.hdr)
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, body)
			}
			if hsts := res.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "includeSubDomains") {
				t.Errorf("HSTS %q", hsts)
			}
			if tt.want == 302 && !strings.HasPrefix(res.Header.Get("Location"), "/signin?return_to=%2Fapp%2Fmembers%2Fx") {
				t.Errorf("Location %q", res.Header.Get("Location"))
			}
		})
	}

	checkEdgeTokens(t, s, ws.ID, other.ID, get)

	// The upstream got an identity assertion, not a client's forgery, and
	// the headers of a proxy, not the client's.
	res, _ := get(c, "/app/ws/"+ws.ID+"/doc", map[string]string{"Rampart-Assertion": "forged", "X-Forwarded-For": "6.6.6.6"})
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	h, path := up.seen()
	if path != "/app/ws/"+ws.ID+"/doc" || h.Get("Rampart-Assertion") == "forged" || h.Get("X-Forwarded-For") != "127.0.0.1" ||
		h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("upstream saw %s %v", path, h)
	}
	// The assertion verifies with the public Go client against Rampart's
	// JWKS, fetched over the real listener.
	v := client.NewAssertionVerifier(s.app.Config.PublicURL, up.srv.URL)
	v.JWKSURL = u("/.well-known/jwks.json")
	v.HTTP = s.client(t, false)
	v.Now = s.clock.Now
	as, err := v.VerifyAssertion(ctx, h.Get("Rampart-Assertion"))
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	if as.Subject != user.ID || as.Email != email || as.Workspace != ws.ID || len(as.Roles) == 0 || as.SessionID == "" {
		t.Errorf("assertion claims %+v", as)
	}
	// Security headers on the upstream's response; its software banner gone.
	for _, name := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy"} {
		if res.Header.Get(name) == "" {
			t.Errorf("upstream response lacks %s", name)
		}
	}
	if res.Header.Get("X-Powered-By") != "" {
		t.Error("X-Powered-By leaked")
	}
	// And on Rampart's own pages, through the pipeline.
	res, _ = get(anon, "/signin", map[string]string{"Accept": "text/html"})
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("rampart page headers: %v", res.Header)
	}

	// Oversized bodies are cut off.
	req, _ := http.NewRequest("POST", u("/app/public/upload"), strings.NewReader(strings.Repeat("x", 70<<10)))
	if res, err := anon.Do(req); err != nil || res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	// Denials are audited.
	evs, err := s.app.AuditLog.Query(ctx, audit.Filter{Action: "gateway.policy_denied", AfterID: -1, Limit: 100})
	if err != nil || len(evs) == 0 {
		t.Errorf("no gateway.policy_denied audit events (%v)", err)
	}

	checkRedirectOnly(t, s)
	checkSlowloris(t, s)
	checkGatewayControls(t, s)
}

// checkRedirectOnly: the plain-HTTP listener answers only with a redirect.
func checkRedirectOnly(t *testing.T, s *server) {
	t.Helper()
	addr := s.app.RedirectAddr()
	if addr == "" {
		t.Fatal("no redirect listener")
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, m := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(m, "http://"+addr+"/v1/me?x=1", strings.NewReader("a=1"))
		req.Host = "localhost"
		res, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 301 && res.StatusCode != 308 || !strings.HasPrefix(res.Header.Get("Location"), "https://localhost") ||
			!strings.HasSuffix(res.Header.Get("Location"), "/v1/me?x=1") || len(b) > 0 && strings.Contains(string(b), "{") {
			t.Errorf("%s redirect: %d %q %q", m, res.StatusCode, res.Header.Get("Location"), b)
		}
	}
}

// checkSlowloris: a client that sends its headers a byte at a time is cut
// off at the read-header timeout (1 s here).
func checkSlowloris(t *testing.T, s *server) {
	t.Helper()
	addr := strings.TrimPrefix(s.base, "https://")
	conn, err := tls.Dial("tcp", addr, s.tls.Clone())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	line := "GET /signin HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
	var writeErr error
	for i := 0; i < 200 && writeErr == nil; i++ {
		_, writeErr = conn.Write([]byte{line[i%len(line)]})
		time.Sleep(50 * time.Millisecond)
		if time.Since(start) > 8*time.Second {
			break
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, readErr := bufio.NewReader(conn).ReadString('\n')
	if writeErr == nil && readErr == nil {
		t.Fatal("slow client was never cut off")
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("slow client cut off only after %s", el)
	}
}

// checkGatewayControls runs the gateway's live checks.
func checkGatewayControls(t *testing.T, s *server) {
	t.Helper()
	reports := s.app.Trust.Run(context.Background())
	byID := map[string]trust.Report{}
	for _, r := range reports {
		byID[r.ID] = r
	}
	for _, id := range []string{"TLS-1", "TLS-2", "TLS-3", "APP-1", "APP-4"} {
		r := byID[id]
		if r.Status != trust.Passing {
			t.Errorf("%s: %s %s", id, r.Status, r.Evidence)
		}
	}
	if e := byID["TLS-1"].Evidence; !strings.Contains(e, "TLS 1.3") || !strings.Contains(e, "redirect") {
		t.Errorf("TLS-1 evidence %q", e)
	}
	if r := byID["APP-8"]; r.Status != trust.Passing {
		t.Errorf("APP-8: %s %s", r.Status, r.Evidence)
	}
	b, _ := json.Marshal(byID["APP-4"])
	if !strings.Contains(string(b), "413") && !strings.Contains(string(b), "65536") {
		t.Errorf("APP-4 evidence: %s", b)
	}
}

// TestTLSListenerRefusesWeakHandshakes checks the serving listener itself.
func TestTLSListenerRefusesWeakHandshakes(t *testing.T) {
	s := start(t, testConfig(t, ""))
	addr := strings.TrimPrefix(s.base, "https://")
	tests := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}}, false},
		{"TLS 1.2 AEAD", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, true},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.RootCAs, cfg.ServerName = s.tls.RootCAs, "localhost"
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("handshake err = %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				if st := conn.ConnectionState(); st.Version < tls.VersionTLS12 {
					t.Errorf("negotiated %s", tls.VersionName(st.Version))
				}
				conn.Close()
			}
		})
	}
}

// checkEdgeTokens: Rampart access tokens are accepted at the edge (APP-7)
// with the API's rules, bound to the service client's workspace and
// permissions; a tampered or revoked token is refused.
func checkEdgeTokens(t *testing.T, s *server, wsID, otherID string, get func(*http.Client, string, map[string]string) (*http.Response, string)) {
	t.Helper()
	ctx := context.Background()
	op := oauth.Actor{Type: audit.ActorOperator, ID: "test"}
	var revoke func(tok string)
	token := func(perms ...string) string {
		t.Helper()
		cl, secret, err := s.app.OAuth.CreateClient(ctx, op, wsID, oauth.ClientSpec{Name: "edge worker",
			GrantTypes: []string{"client_credentials"}, Permissions: perms, Scopes: []string{"jobs"}})
		if err != nil {
			t.Fatal(err)
		}
		e := newOIDCEnv(t, s, cl.ID, secret)
		cc := clientcredentials.Config{ClientID: cl.ID, ClientSecret: secret, TokenURL: e.prov.Endpoint().TokenURL, Scopes: []string{"jobs"}}
		tok, err := cc.Token(e.ctx)
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		revoke = func(tok string) {
			res, b := e.postForm(t, "/oauth2/revoke", url.Values{"token": {tok}}, [2]string{cl.ID, secret})
			if res.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %d %s", res.StatusCode, b)
			}
		}
		return tok.AccessToken
	}
	content := token("content.read")
	docs := token("docs.read") // last: revoke is this client's
	tampered := docs[:len(docs)-4] + map[bool]string{true: "AAAA", false: "BBBB"}[!strings.HasSuffix(docs, "AAAA")]
	anon := s.client(t, false)
	bearer := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Accept": "application/json"}
	}
	for _, tt := range []struct {
		name, path, tok string
		want            int
	}{
		{"token with the route's permission", "/app/ws/" + wsID + "/doc", docs, 200},
		{"token on an authenticated route", "/app/members/x", docs, 200},
		{"token in another workspace", "/app/ws/" + otherID + "/doc", docs, 403},
		{"token without the route's permission", "/app/ws/" + wsID + "/doc", content, 403},
		{"tampered token", "/app/ws/" + wsID + "/doc", tampered, 401},
		{"tampered token on an anonymous route", "/app/public/x", tampered, 401},
	} {
		t.Run("edge "+tt.name, func(t *testing.T) {
			res, body := get(anon, tt.path, bearer(tt.tok))
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, body)
			}
		})
	}
	// Revoked (RFC 7009) is refused at the edge at once.
	revoke(docs)
	if res, body := get(anon, "/app/ws/"+wsID+"/doc", bearer(docs)); res.StatusCode != 401 {
		t.Fatalf("revoked token at the edge: %d %s", res.StatusCode, body)
	}
}
