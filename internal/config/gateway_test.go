package config

import (
	"strings"
	"testing"
	"time"
)

func TestGatewayRoutesFromYAML(t *testing.T) {
	path := writeFile(t, "gw.yaml", `
gateway:
  upstream: http://127.0.0.1:3000
  max_body_bytes: 2048
  routes:
    - name: docs
      host: app.example.com
      path_prefix: /api
      upstreams: [https://app.internal:8443]
      policy: permission
      permission: docs.read
      workspace: path:1
      networks: [10.0.0.0/8, 192.0.2.7]
      waf: {exclude_rules: [942100]}
      rate_limit: {account: per-account}
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Finalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	g := c.Gateway
	if g.MaxBodyBytes != 2048 || g.ReadHeaderTimeout != 10*time.Second || len(g.Routes) != 1 {
		t.Fatalf("gateway %+v", g)
	}
	r := g.Routes[0]
	if r.Permission != "docs.read" || r.Workspace != "path:1" || r.WAF.ExcludeRules[0] != 942100 || r.RateLimit.Account != "per-account" {
		t.Errorf("route %+v", r)
	}
	if all := g.AllRoutes(); len(all) != 2 || all[1].Upstreams[0] != "http://127.0.0.1:3000" {
		t.Errorf("AllRoutes %+v", all)
	}
	// Unknown keys inside the section are errors, as everywhere else.
	if _, err := Load(writeFile(t, "bad.yaml", "gateway:\n  routes:\n    - name: x\n      upstream: http://127.0.0.1\n"), nil); err == nil {
		t.Error("unknown route key accepted")
	}
}

func TestGatewayValidation(t *testing.T) {
	tests := []struct {
		name string
		mod  func(g *GatewayConfig)
		want string // "" = valid
	}{
		{"defaults", func(g *GatewayConfig) {}, ""},
		{"loopback plaintext upstream", func(g *GatewayConfig) { g.Upstream = "http://localhost:3000" }, ""},
		{"remote plaintext upstream", func(g *GatewayConfig) { g.Upstream = "http://10.1.2.3:3000" }, "plaintext"},
		{"remote plaintext allowed", func(g *GatewayConfig) { g.Upstream = "http://10.1.2.3:3000"; g.AllowPlaintextUpstreams = true }, ""},
		{"upstream with credentials", func(g *GatewayConfig) { g.Upstream = "https://u:p@app" }, "without credentials"},
		{"assertion ttl too long", func(g *GatewayConfig) { g.Assertion.TTL = 2 * time.Minute }, "assertion.ttl"},
		{"permission without workspace", func(g *GatewayConfig) {
			g.Routes = []GatewayRoute{{Upstreams: []string{"https://a"}, Policy: "permission", Permission: "p"}}
		}, "workspace source"},
		{"bad workspace source", func(g *GatewayConfig) {
			g.Routes = []GatewayRoute{{Upstreams: []string{"https://a"}, Workspace: "path:0"}}
		}, "path:N"},
		{"bad policy", func(g *GatewayConfig) { g.Routes = []GatewayRoute{{Upstreams: []string{"https://a"}, Policy: "open"}} }, "anonymous, authenticated"},
		{"bad cidr", func(g *GatewayConfig) {
			g.Routes = []GatewayRoute{{Upstreams: []string{"https://a"}, Networks: []string{"10.0.0.0/33"}}}
		}, "not an address"},
		{"no upstream", func(g *GatewayConfig) { g.Routes = []GatewayRoute{{Name: "x"}} }, "at least one upstream"},
		{"duplicate names", func(g *GatewayConfig) {
			g.Routes = []GatewayRoute{{Name: "x", Upstreams: []string{"https://a"}}, {Name: "x", Upstreams: []string{"https://b"}}}
		}, "duplicate"},
		{"header size", func(g *GatewayConfig) { g.MaxHeaderBytes = 10 }, "max_header_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c.Gateway)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
