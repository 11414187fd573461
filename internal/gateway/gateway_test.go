package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/gateway/waf"
)

type fixture struct {
	gw      *Gateway
	audit   *memAudit
	signer  *testSigner
	clock   *clock
	last    func() seen
	jwks    *httptest.Server
	issuer  string
	limiter *countLimiter
}

// countLimiter allows limit requests per key, then refuses.
type countLimiter struct {
	mu    sync.Mutex
	limit int
	n     map[string]int
}

func (l *countLimiter) Allow(_ context.Context, policy, key string) (RateResult, error) {
	if policy == "broken" {
		return RateResult{}, errors.New("no such policy")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n[policy+"|"+key]++
	n := l.n[policy+"|"+key]
	rem := max(0, l.limit-n)
	return RateResult{Allowed: n <= l.limit, RetryAfter: 1500 * time.Millisecond, SetHeaders: func(h http.Header) {
		h.Set("RateLimit", fmt.Sprintf(`"%s";r=%d;t=2`, policy, rem))
	}}, nil
}

func newFixture(t *testing.T, alg jose.SignatureAlgorithm, routes func(up string) []Route) *fixture {
	t.Helper()
	up, last := echoUpstream(t)
	f := &fixture{audit: &memAudit{}, signer: newTestSigner(t, alg), clock: &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, last: last,
		limiter: &countLimiter{limit: 3, n: map[string]int{}}}
	f.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.signer.jwks())
	}))
	t.Cleanup(f.jwks.Close)
	f.issuer = f.jwks.URL
	auth := &fakeAuth{
		ids: map[string]*Identity{
			"alice":    {Subject: "u-alice", Email: "alice@example.com", SessionID: "s1", Method: "session", AMR: []string{"pwd"}},
			"alice2fa": {Subject: "u-alice", Email: "alice@example.com", SessionID: "s2", Method: "session", MFA: true, AMR: []string{"pwd", "otp"}},
			"key":      {Subject: "apikey:k1", APIKeyID: "k1", KeyWorkspace: "ws1", Method: "api_key"},
		},
		perms: map[string]map[string]bool{"u-alice": {"ws1/docs.read": true}, "apikey:k1": {"ws1/docs.read": true}},
		roles: []string{"editor"},
	}
	rampart := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "rampart")
		_, _ = io.WriteString(w, "rampart "+r.URL.Path)
	})
	gw, err := New(Config{
		Routes: routes(up.URL), Issuer: f.issuer, AssertionTTL: 30 * time.Second, MaxBodyBytes: 1024,
		MaxInFlight: 100, MaxInFlightPerUpstream: 50, UpstreamTimeout: 5 * time.Second,
		RampartPaths: []string{"/signin", "/v1/", "/.well-known/"},
	}, Deps{Rampart: rampart, Auth: auth, Signer: f.signer, Audit: f.audit, Now: f.clock.Now, Limiter: f.limiter,
		TrustedPeer: func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.1") }})
	if err != nil {
		t.Fatal(err)
	}
	f.gw = gw
	return f
}

func (f *fixture) verifier(aud string) *client.AssertionVerifier {
	v := client.NewAssertionVerifier(f.issuer, aud)
	v.Now = f.clock.Now
	return v
}

func TestRoutingAndForwardedHeaders(t *testing.T) {
	f := newFixture(t, jose.EdDSA, func(up string) []Route {
		return []Route{
			{Name: "api", PathPrefix: "/api", StripPrefix: true, Upstreams: []*urlT{mustURL(t, up+"/base")}, Policy: PolicyAnonymous},
			{Name: "app", Host: "app.example.com", Upstreams: []*urlT{mustURL(t, up)}},
			{Name: "all", PathPrefix: "/", Upstreams: []*urlT{mustURL(t, up)}},
		}
	})
	tests := []struct {
		name, target, wantBody, wantPath string
		hdr                              map[string]string
	}{
		{"prefix stripped onto upstream base", "http://rampart.test/api/items", "upstream GET /base/items", "/base/items", nil},
		{"segment boundary", "http://rampart.test/apix", "upstream GET /apix", "/apix", nil},
		{"host route beats path route", "http://app.example.com/api/x", "upstream GET /api/x", "/api/x", nil},
		{"rampart path stays with rampart", "http://rampart.test/signin", "rampart /signin", "", nil},
		{"rampart prefix", "http://rampart.test/v1/me", "rampart /v1/me", "", nil},
		{"host route takes rampart paths too", "http://app.example.com/signin", "upstream GET /signin", "/signin", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(f.gw, "GET", tt.target, tt.hdr, "")
			if w.Code != 200 || w.Body.String() != tt.wantBody {
				t.Fatalf("got %d %q, want %q", w.Code, w.Body.String(), tt.wantBody)
			}
		})
	}

	// Spoofed own headers and forwarded headers from an untrusted peer.
	w := do(f.gw, "GET", "http://rampart.test/api/x", map[string]string{
		"Rampart-Assertion": "forged", "Rampart-User": "admin", "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil",
		"RemoteAddr": "192.0.2.9:1234", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}, "")
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	h := f.last().Headers
	if h.Get("Rampart-Assertion") != "" || h.Get("Rampart-User") != "" {
		t.Errorf("client-sent Rampart-* reached the upstream: %v", h)
	}
	if got := h.Get("X-Forwarded-For"); got != "192.0.2.9" {
		t.Errorf("X-Forwarded-For = %q, want only the peer", got)
	}
	if h.Get("X-Forwarded-Host") != "rampart.test" || h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Request-Id") == "" {
		t.Errorf("forwarded headers: %v", h)
	}
	if h.Get("Traceparent") == "" {
		t.Errorf("trace context not forwarded")
	}
	// A trusted proxy's chain is kept.
	do(f.gw, "GET", "http://rampart.test/api/x", map[string]string{"X-Forwarded-For": "203.0.113.7", "RemoteAddr": "10.0.0.1:9"}, "")
	if got := f.last().Headers.Get("X-Forwarded-For"); got != "203.0.113.7, 10.0.0.1" {
		t.Errorf("X-Forwarded-For via trusted proxy = %q", got)
	}
}

func TestSecurityHeadersOnUpstream(t *testing.T) {
	f := newFixture(t, jose.EdDSA, func(up string) []Route {
		return []Route{
			{Name: "add", PathPrefix: "/add", Upstreams: []*urlT{mustURL(t, up)}},
			{Name: "override", PathPrefix: "/ovr", Upstreams: []*urlT{mustURL(t, up)}, Headers: HeaderPolicy{Mode: "override", CSP: "default-src 'self'; frame-ancestors 'none'"}},
			{Name: "hsts", PathPrefix: "/hsts", Upstreams: []*urlT{mustURL(t, up)}, Headers: HeaderPolicy{Mode: "hsts"}},
		}
	})
	tests := []struct {
		path, wantCSP string
		wantNosniff   bool
	}{
		{"/add/x", defaultUpstreamCSP, true},
		{"/add/own-csp", "default-src 'self'", true},
		{"/ovr/own-csp", "default-src 'self'; frame-ancestors 'none'", true},
		{"/hsts/x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			// Upstream sees the path under its prefix (no strip here).
			w := do(f.gw, "GET", "http://rampart.test"+tt.path, nil, "")
			h := w.Result().Header
			if h.Get("Strict-Transport-Security") != HSTS {
				t.Errorf("HSTS = %q", h.Get("Strict-Transport-Security"))
			}
			if h.Get("Content-Security-Policy") != tt.wantCSP {
				t.Errorf("CSP = %q, want %q", h.Get("Content-Security-Policy"), tt.wantCSP)
			}
			if (h.Get("X-Content-Type-Options") == "nosniff") != tt.wantNosniff {
				t.Errorf("nosniff = %q", h.Get("X-Content-Type-Options"))
			}
			if h.Get("Server") != "" || h.Get("X-Powered-By") != "" {
				t.Errorf("software headers not removed: %v", h)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	f := newFixture(t, jose.EdDSA, func(up string) []Route {
		u := []*urlT{mustURL(t, up)}
		return []Route{
			{Name: "anon", PathPrefix: "/anon", Upstreams: u},
			{Name: "authn", PathPrefix: "/authn", Upstreams: u, Policy: PolicyAuthenticated},
			{Name: "perm", PathPrefix: "/w", Upstreams: u, Policy: PolicyPermission, Permission: "docs.read", Workspace: WorkspaceSource{Kind: "path", Index: 1}},
			{Name: "permh", PathPrefix: "/h", Upstreams: u, Policy: PolicyPermission, Permission: "docs.read", Workspace: WorkspaceSource{Kind: "header", Header: "X-Workspace"}},
			{Name: "mfa", PathPrefix: "/mfa", Upstreams: u, Policy: PolicyAuthenticated, MFA: true},
			{Name: "net", PathPrefix: "/net", Upstreams: u, Networks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "ipdeny", PathPrefix: "/deny", Upstreams: u, IPDeny: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		}
	})
	html := "text/html,application/xhtml+xml"
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		want               int
		wantLoc            string
	}{
		{"anonymous ok", "GET", "/anon/x", nil, 200, ""},
		{"invalid credential refused even on anonymous", "GET", "/anon/x", map[string]string{"X-Test-User": "mallory"}, 401, ""},
		{"authenticated: api client gets 401", "GET", "/authn/x", map[string]string{"Accept": "application/json"}, 401, ""},
		{"authenticated: browser goes to sign in", "GET", "/authn/x?a=1", map[string]string{"Accept": html}, 302, "/signin?return_to=%2Fauthn%2Fx%3Fa%3D1"},
		{"authenticated: session ok", "GET", "/authn/x", map[string]string{"X-Test-User": "alice"}, 200, ""},
		{"permission in path workspace", "GET", "/w/ws1/docs", map[string]string{"X-Test-User": "alice"}, 200, ""},
		{"permission denied in other workspace", "GET", "/w/ws2/docs", map[string]string{"X-Test-User": "alice"}, 403, ""},
		{"permission by api key", "GET", "/w/ws1/docs", map[string]string{"X-Test-User": "key"}, 200, ""},
		{"header workspace", "GET", "/h/docs", map[string]string{"X-Test-User": "alice", "X-Workspace": "ws1"}, 200, ""},
		{"header workspace missing", "GET", "/h/docs", map[string]string{"X-Test-User": "alice"}, 403, ""},
		{"workspace of bad shape", "GET", "/w/ws1%27--/docs", map[string]string{"X-Test-User": "alice"}, 403, ""},
		{"mfa required", "GET", "/mfa/x", map[string]string{"X-Test-User": "alice"}, 403, ""},
		{"mfa session ok", "GET", "/mfa/x", map[string]string{"X-Test-User": "alice2fa"}, 200, ""},
		{"api key has no mfa", "GET", "/mfa/x", map[string]string{"X-Test-User": "key"}, 403, ""},
		{"network refused", "GET", "/net/x", map[string]string{"RemoteAddr": "192.0.2.1:1"}, 403, ""},
		{"network allowed", "GET", "/net/x", map[string]string{"RemoteAddr": "10.1.2.3:1"}, 200, ""},
		{"route ip deny", "GET", "/deny/x", map[string]string{"RemoteAddr": "192.0.2.1:1"}, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(f.gw, tt.method, "http://rampart.test"+tt.path, tt.hdr, "")
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body.String())
			}
			if tt.wantLoc != "" && w.Header().Get("Location") != tt.wantLoc {
				t.Errorf("Location = %q, want %q", w.Header().Get("Location"), tt.wantLoc)
			}
			if w.Code >= 400 && w.Header().Get("Strict-Transport-Security") == "" {
				t.Errorf("refusal without security headers")
			}
		})
	}
	acts := strings.Join(f.audit.actions(), ",")
	for _, want := range []string{"gateway.unauthenticated", "gateway.policy_denied", "gateway.ip_denied"} {
		if !strings.Contains(acts, want) {
			t.Errorf("audit lacks %s: %s", want, acts)
		}
	}
}

func TestAssertionVerifiedByClient(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			f := newFixture(t, alg, func(up string) []Route {
				return []Route{{Name: "w", PathPrefix: "/w", Upstreams: []*urlT{mustURL(t, up)}, Audience: "https://app.example.com",
					Policy: PolicyPermission, Permission: "docs.read", Workspace: WorkspaceSource{Kind: "path", Index: 1}}}
			})
			w := do(f.gw, "GET", "http://rampart.test/w/ws1/x", map[string]string{"X-Test-User": "alice2fa"}, "")
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			tok := f.last().Headers.Get(AssertionHeader)
			if tok == "" {
				t.Fatal("no assertion forwarded")
			}
			ctx := context.Background()
			a, err := f.verifier("https://app.example.com").VerifyAssertion(ctx, tok)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if a.Subject != "u-alice" || a.Email != "alice@example.com" || a.Workspace != "ws1" || a.SessionID != "s2" ||
				strings.Join(a.Roles, ",") != "editor" || strings.Join(a.AMR, ",") != "pwd,otp" || a.ExpiresAt.Time().Sub(a.IssuedAt.Time()) != 30*time.Second {
				t.Errorf("claims: %+v", a)
			}
			if _, err := f.verifier("https://other.example.com").VerifyAssertion(ctx, tok); !errors.Is(err, client.ErrAssertion) {
				t.Errorf("wrong audience accepted: %v", err)
			}
			late := f.verifier("https://app.example.com")
			late.Now = func() time.Time { return f.clock.Now().Add(36 * time.Second) }
			if _, err := late.VerifyAssertion(ctx, tok); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Errorf("expired assertion accepted: %v", err)
			}
			// A forged token: same claims, another key with the same kid.
			forger := newTestSigner(t, alg)
			forger.kid = f.signer.kid
			forged, _ := forger.Sign(AssertionType, map[string]any{"iss": f.issuer, "aud": "https://app.example.com", "sub": "u-admin",
				"iat": f.clock.Now().Unix(), "exp": f.clock.Now().Unix() + 30})
			if _, err := f.verifier("https://app.example.com").VerifyAssertion(ctx, forged); err == nil {
				t.Error("forged assertion accepted")
			}
			// A token of another type signed by the real key.
			other, _ := f.signer.Sign("at+jwt", map[string]any{"iss": f.issuer, "aud": "https://app.example.com", "sub": "u-alice",
				"iat": f.clock.Now().Unix(), "exp": f.clock.Now().Unix() + 30})
			if _, err := f.verifier("https://app.example.com").VerifyAssertion(ctx, other); err == nil {
				t.Error("access token accepted as assertion")
			}
		})
	}
}

func TestAssertionSigningFailureFailsClosed(t *testing.T) {
	f := newFixture(t, jose.EdDSA, func(up string) []Route {
		return []Route{{Name: "a", PathPrefix: "/a", Upstreams: []*urlT{mustURL(t, up)}, Policy: PolicyAuthenticated}}
	})
	f.signer.fail = true
	if w := do(f.gw, "GET", "http://rampart.test/a", map[string]string{"X-Test-User": "alice"}, ""); w.Code != 503 {
		t.Fatalf("status %d, want 503", w.Code)
	}
}

func TestLimits(t *testing.T) {
	f := newFixture(t, jose.EdDSA, func(up string) []Route {
		u := []*urlT{mustURL(t, up)}
		return []Route{
			{Name: "small", PathPrefix: "/small", Upstreams: u},
			{Name: "big", PathPrefix: "/big", Upstreams: u, MaxBodyBytes: 4096},
			{Name: "limited", PathPrefix: "/rl", Upstreams: u, Limits: Limits{IP: "per-ip", Account: "per-account"}},
			{Name: "broken", PathPrefix: "/broken", Upstreams: u, Limits: Limits{IP: "broken"}},
		}
	})
	big := strings.Repeat("a", 2000)
	if w := do(f.gw, "POST", "http://rampart.test/small", nil, big); w.Code != 413 {
		t.Errorf("oversized body: %d", w.Code)
	}
	if w := do(f.gw, "POST", "http://rampart.test/big", nil, big); w.Code != 200 {
		t.Errorf("route limit override: %d", w.Code)
	}
	// A chunked body (no Content-Length) is cut off while streaming.
	r := httptest.NewRequest("POST", "http://rampart.test/small", io.MultiReader(strings.NewReader(big)))
	r.ContentLength = -1
	w := httptest.NewRecorder()
	f.gw.ServeHTTP(w, r)
	if w.Code != 413 {
		t.Errorf("chunked oversized body: %d", w.Code)
	}
	for i := 1; i <= 4; i++ {
		w := do(f.gw, "GET", "http://rampart.test/rl/x", map[string]string{"RemoteAddr": "198.51.100.1:5"}, "")
		want := 200
		if i == 4 {
			want = 429
		}
		if w.Code != want {
			t.Fatalf("request %d: %d", i, w.Code)
		}
		if w.Header().Get("RateLimit") == "" {
			t.Errorf("request %d: no RateLimit header", i)
		}
		if i == 4 && w.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
		}
	}
	// Another address has its own budget.
	if w := do(f.gw, "GET", "http://rampart.test/rl/x", map[string]string{"RemoteAddr": "198.51.100.2:5"}, ""); w.Code != 200 {
		t.Errorf("other address limited: %d", w.Code)
	}
	// The account budget is separate from the address budget.
	for i := 1; i <= 4; i++ {
		w := do(f.gw, "GET", "http://rampart.test/rl/x", map[string]string{"X-Test-User": "alice", "RemoteAddr": fmt.Sprintf("198.51.100.%d:5", 10+i)}, "")
		if want := map[bool]int{true: 429, false: 200}[i == 4]; w.Code != want {
			t.Fatalf("account request %d: %d", i, w.Code)
		}
	}
	if w := do(f.gw, "GET", "http://rampart.test/broken", nil, ""); w.Code != 503 {
		t.Errorf("limiter error must fail closed: %d", w.Code)
	}
}

func TestLoadShedding(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer slow.Close()
	gw, err := New(Config{Routes: []Route{{Name: "slow", Upstreams: []*urlT{mustURL(t, slow.URL)}}}, MaxInFlight: 10, MaxInFlightPerUpstream: 2}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); do(gw, "GET", "http://x/", nil, "") }()
	}
	<-entered
	<-entered
	w := do(gw, "GET", "http://x/", nil, "")
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("saturated upstream: %d %v", w.Code, w.Header())
	}
	close(release)
	wg.Wait()
	if w := do(gw, "GET", "http://x/", nil, ""); w.Code != 200 {
		t.Errorf("after release: %d", w.Code)
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	u := dead.URL
	dead.Close()
	gw, err := New(Config{Routes: []Route{{Name: "dead", Upstreams: []*urlT{mustURL(t, u)}}}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	w := do(gw, "GET", "http://x/", nil, "")
	if w.Code != 502 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") || strings.Contains(w.Body.String(), "127.0.0.1") {
		t.Errorf("got %d %q", w.Code, w.Body.String())
	}
}

func TestPlaintextUpstreamRefused(t *testing.T) {
	gw, err := New(Config{Routes: []Route{{Name: "remote", Upstreams: []*urlT{mustURL(t, "http://192.0.2.1:81")}}}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if w := do(gw, "GET", "http://x/", nil, ""); w.Code != 502 {
		t.Errorf("plaintext to a remote upstream: %d", w.Code)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, jose.EdDSA, func(up string) []Route {
		return []Route{{Name: "app", PathPrefix: "/", Upstreams: []*urlT{mustURL(t, up)}, CSRF: true}}
	})
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"cross-site form post refused", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-origin by Origin refused", map[string]string{"Origin": "https://evil.example"}, 403},
		{"same-origin allowed", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"non-browser allowed", nil, 200},
		{"bearer exempt", map[string]string{"Sec-Fetch-Site": "cross-site", "Authorization": "Bearer x", "X-Test-User": "key"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w := do(f.gw, "POST", "http://rampart.test/form", tt.hdr, "a=1"); w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
		})
	}
}

// TestStreamingThroughGateway runs a real TLS server with HTTP/2 and HTTP/1.1
// and checks that an event stream arrives event by event and a WebSocket
// is upgraded end to end.
func TestStreamingThroughGateway(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				_ = http.NewResponseController(w).Flush()
				time.Sleep(20 * time.Millisecond)
			}
		case "/ws":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			_ = c.Write(r.Context(), typ, append([]byte("echo "), msg...))
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
	}))
	defer up.Close()
	// The real WAF (CRS, paranoia 1, blocking) sits in front, as in
	// production: streams and upgrades must survive its wrapper.
	w, err := waf.New(waf.Defaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hook := func(next http.Handler, o WAFOptions, block func(http.ResponseWriter, *http.Request, Block)) http.Handler {
		return w.Handler(next, waf.RouteOptions{Disabled: o.Disabled, ExcludeRules: o.ExcludeRules, Mode: o.Mode},
			func(rw http.ResponseWriter, r *http.Request, in waf.Interruption) {
				block(rw, r, Block{RuleID: in.RuleID, Status: in.Status})
			}, nil)
	}
	gw, err := New(Config{Routes: []Route{{Name: "app", Upstreams: []*urlT{mustURL(t, up.URL)}}}}, Deps{WAF: hook})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gw)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse h2=%v", h2), func(t *testing.T) {
			c := srv.Client()
			if !h2 {
				tr := c.Transport.(*http.Transport).Clone()
				tr.ForceAttemptHTTP2 = false
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
				c = &http.Client{Transport: tr}
			}
			resp, err := c.Get(srv.URL + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if (resp.ProtoMajor == 2) != h2 {
				t.Errorf("protocol %s", resp.Proto)
			}
			sc := bufio.NewScanner(resp.Body)
			var got []string
			for sc.Scan() {
				if l := sc.Text(); l != "" {
					got = append(got, l)
				}
			}
			if strings.Join(got, "|") != "data: 0|data: 1|data: 2" {
				t.Errorf("events %q", got)
			}
		})
	}
	t.Run("waf blocks an attack on the same route", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/events?q=%3Cscript%3Ealert(1)%3C/script%3E")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("attack got %d", resp.StatusCode)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		c, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https")+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "echo hi" {
			t.Fatalf("read %q %v", msg, err)
		}
	})
}

func FuzzRouteMatch(f *testing.F) {
	for _, s := range []string{"/w/ws1/x", "/", "//", "/w/%2e%2e/x", "/w/" + strings.Repeat("a", 100), "/api", "/apix/y"} {
		f.Add(s, "app.example.com", "ws1")
	}
	gw, err := New(Config{Routes: []Route{
		{Name: "w", PathPrefix: "/w", Upstreams: []*urlT{mustURL(f, "http://127.0.0.1:1")}, Policy: PolicyPermission, Permission: "p", Workspace: WorkspaceSource{Kind: "path", Index: 1}},
		{Name: "h", Host: "*.example.com", Upstreams: []*urlT{mustURL(f, "http://127.0.0.1:1")}, Workspace: WorkspaceSource{Kind: "subdomain"}},
		{Name: "x", Upstreams: []*urlT{mustURL(f, "http://127.0.0.1:1")}, Workspace: WorkspaceSource{Kind: "header", Header: "X-W"}},
	}, RampartPaths: []string{"/signin"}}, Deps{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, host, hdr string) {
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.URL.Path, r.Host = path, host
		r.Header.Set("X-W", hdr)
		rt := gw.match(r)
		if rt == nil {
			return
		}
		ws := workspaceOf(rt, r)
		if len(ws) > 64 || strings.ContainsAny(ws, "/.%' \x00") {
			t.Fatalf("workspace %q from %q", ws, path)
		}
	})
}
