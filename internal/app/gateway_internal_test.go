package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
)

// TestLimiterAdapter drives the gateway with the real local GCRA limiter:
// 429 with Retry-After and RateLimit headers once a policy is spent, per
// client address, and 503 for a policy name that does not exist.
func TestLimiterAdapter(t *testing.T) {
	a := &App{now: time.Now, Log: slog.New(slog.DiscardHandler)}
	l := a.newLimiterAdapter(nil, map[string]ratelimit.Policy{"per-ip": {Name: "per-ip", Limit: 2, Period: time.Minute}})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	g, err := gateway.New(gateway.Config{Routes: []gateway.Route{
		{Name: "a", PathPrefix: "/a", Upstreams: []*url.URL{u}, Limits: gateway.Limits{IP: "per-ip"}},
		{Name: "typo", PathPrefix: "/typo", Upstreams: []*url.URL{u}, Limits: gateway.Limits{IP: "per-iq"}},
	}}, gateway.Deps{Limiter: l})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://x"+path, nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	for i, want := range []int{200, 200, 429} {
		w := get("/a", "198.51.100.1:1")
		if w.Code != want {
			t.Fatalf("request %d: %d", i, w.Code)
		}
		if w.Header().Get("RateLimit-Policy") == "" || w.Header().Get("RateLimit") == "" {
			t.Errorf("request %d: no RateLimit headers: %v", i, w.Header())
		}
		if want == 429 && w.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if w := get("/a", "198.51.100.2:1"); w.Code != 200 {
		t.Errorf("another address: %d", w.Code)
	}
	if w := get("/typo", "198.51.100.3:1"); w.Code != 503 {
		t.Errorf("unknown policy: %d", w.Code)
	}
	if l.backend() != ratelimit.BackendLocal {
		t.Errorf("backend %q", l.backend())
	}
	_ = context.Background()
}

// TestCompileRoutes maps the config's routes onto the gateway's.
func TestCompileRoutes(t *testing.T) {
	gc := config.Default().Gateway
	gc.Upstream = "http://127.0.0.1:3000"
	gc.Routes = []config.GatewayRoute{{Name: "w", Host: "App.Example.com", PathPrefix: "/w", Upstreams: []string{"https://app.internal"},
		Policy: "permission", Permission: "docs.read", Workspace: "path:2", Networks: []string{"10.0.0.0/8", "192.0.2.7"}, CSRFOff: true}}
	rs, err := compileRoutes(gc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[1].Name != "upstream" || rs[1].Policy != "anonymous" || !rs[1].CSRF {
		t.Fatalf("routes %+v", rs)
	}
	w := rs[0]
	if w.Workspace.Kind != "path" || w.Workspace.Index != 2 || len(w.Networks) != 2 || w.Networks[1].Bits() != 32 || w.CSRF {
		t.Errorf("route %+v", w)
	}
	gc.Routes[0].Workspace = "path:x"
	if _, err := compileRoutes(gc); err == nil {
		t.Error("bad workspace source accepted")
	}
}
