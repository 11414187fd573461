package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const policyYAML = `
secrets:
  check_every: 30s
  policies:
    - name: app-db
      rotator: postgres
      interval: 720h
      postgres_admin_dsn: ${env:ADMIN_DSN}
      postgres_role: app
    - name: hook
      rotator: webhook
      interval: 24h
      webhook_url: https://hooks.example.com/rotate
      webhook_secret: ${secret:hook-signing}
`

func TestSecretsSectionLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"ADMIN_DSN=postgres://admin:s3cret@db.internal/postgres?sslmode=verify-full"}) // gitleaks:allow (test DSN)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Secrets.Policies
	if len(p) != 2 || p[0].PostgresAdminDSN != "postgres://admin:s3cret@db.internal/postgres?sslmode=verify-full" || p[1].WebhookSecret != "${secret:hook-signing}" {
		t.Fatalf("policies = %+v", p)
	}
	if !c.HasSecretRefs() {
		t.Fatal("the ${secret:…} reference was lost")
	}
	c.Finalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Which secret settings came from where.
	got := map[string]string{}
	for _, f := range c.SecretFields() {
		got[f.Path] = f.Ref
	}
	if got["secrets.policies[0].postgres_admin_dsn"] != "env" || got["secrets.policies[1].webhook_secret"] != "secret" {
		t.Fatalf("secret fields = %v", got)
	}
	// Resolution: a value in, the reference recorded; failures named.
	if err := c.ResolveSecretRefs(func(name string) (string, error) { return "whsec_resolved", nil }); err != nil {
		t.Fatal(err)
	}
	if c.Secrets.Policies[1].WebhookSecret != "whsec_resolved" || c.HasSecretRefs() {
		t.Fatal("not resolved")
	}
	// Printing redacts the policies' secrets.
	var buf bytes.Buffer
	if err := WriteYAML(&buf, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "s3cret") || strings.Contains(buf.String(), "whsec_resolved") || !strings.Contains(buf.String(), "app-db") {
		t.Fatalf("printed config leaks or lost policies:\n%s", buf.String())
	}
	// Unknown keys inside the section are errors.
	if err := os.WriteFile(path, []byte("secrets:\n  policies:\n    - name: x\n      rotater: random\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err == nil {
		t.Fatal("a misspelt policy key was accepted")
	}
}

func TestSecretRefAllowed(t *testing.T) {
	for path, want := range map[string]bool{
		"database": false, "root_key.env": false, "audit.webhook_secret": false, "mail.smtp.password": false, "vault.pkcs11.pin": false,
		"secrets.policies[0].webhook_secret": true, "gateway.upstream": true, "oauth.x": true, "development": true,
	} {
		if got := SecretRefAllowed(path); got != want {
			t.Errorf("SecretRefAllowed(%q) = %v", path, got)
		}
	}
}

func TestRotationPolicyPrintsRedacted(t *testing.T) {
	p := RotationPolicy{Name: "x", WebhookSecret: "whsec_do-not-print", PostgresAdminDSN: "postgres://a:pw-do-not-print@h/db"} // gitleaks:allow (test values)
	c := Default()
	c.Secrets.Policies = []RotationPolicy{p}
	for _, s := range []string{p.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c.Secrets)} {
		if strings.Contains(s, "do-not-print") {
			t.Fatalf("printed a secret: %s", s)
		}
	}
}
