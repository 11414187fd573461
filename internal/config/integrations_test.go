package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIntegrationsConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `
integrations:
  refresh_before: 2m
  providers:
    - name: acme
      type: oauth2
      scopes: [read]
      auth_url: https://idp.example.com/auth
      token_url: https://idp.example.com/token
      revocation_url: https://idp.example.com/revoke
      client_id: rampart
      client_secret: ${env:ACME_SECRET}
    - name: payments
      type: api_key
      scopes: [charges.read]
      key_prefixes: [rk_]
      check_url: https://pay.example.com/v1/key
`
	var c Config
	c = Default()
	if err := decodeYAML([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	ic := c.Integrations
	if len(ic.Providers) != 2 || ic.RefreshBefore.Minutes() != 2 || ic.JobInterval.Minutes() != 1 {
		t.Fatalf("decoded %+v", ic)
	}
	var p problems
	ic.check(&p, c)
	if len(p) != 0 {
		t.Fatalf("problems: %v", p)
	}
	r, err := ic.Resolve([]string{"ACME_SECRET=s3cret"}) // gitleaks:allow
	if err != nil || r.Providers[0].ClientSecret != "s3cret" || ic.Providers[0].ClientSecret != "${env:ACME_SECRET}" {
		t.Fatalf("resolve: %v", err)
	}
	ic.Providers[0].ClientSecret = "${file:" + secretFile + "}"
	if r, err := ic.Resolve(nil); err != nil || r.Providers[0].ClientSecret != "from-file" {
		t.Fatalf("resolve file: %v", err)
	}
	ic.Providers[0].ClientSecret = "${env:MISSING}"
	if _, err := ic.Resolve(nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("missing reference: %v", err)
	}

	bad := []struct {
		name string
		mut  func(p *IntegrationProvider)
		want string
	}{
		{"plaintext remote", func(p *IntegrationProvider) { p.TokenURL = "http://idp.example.com/token" }, "TLS-3"},
		{"literal secret", func(p *IntegrationProvider) { p.ClientSecret = "literal" }, "reference"},
		{"no scopes", func(p *IntegrationProvider) { p.Scopes = nil }, "INT-2"},
		{"bad type", func(p *IntegrationProvider) { p.Type = "saml" }, "oauth2 or api_key"},
		{"api key without check", func(p *IntegrationProvider) { p.Type = "api_key"; p.CheckURL = "" }, "scope check"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			x := c.Integrations
			x.Providers = []IntegrationProvider{c.Integrations.Providers[0]}
			tc.mut(&x.Providers[0])
			var p problems
			x.check(&p, c)
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Fatalf("problems %v, want %q", p, tc.want)
			}
		})
	}
	if err := decodeYAML([]byte("integrations:\n  providers:\n    - name: x\n      bogus: 1\n"), &c); err == nil {
		t.Fatal("unknown key accepted")
	}
}
