package app_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

const hookSecret = "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=" // gitleaks:allow (test secret)

func newSecretsApp(t *testing.T, cfg config.Config) (*app.App, error) {
	t.Helper()
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Log: testLog(t)})
	if err == nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}

func control(t *testing.T, a *app.App, id string) trust.Report {
	t.Helper()
	for _, r := range a.Trust.Run(context.Background()) {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no control %s", id)
	return trust.Report{}
}

// TestSecretsWiring: the rotation policies run from config, the live
// checks report real evidence, and ${secret:…} references resolve from the
// store at start (an unresolvable one fails the start), on both engines.
func TestSecretsWiring(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine)
			}
			cfg := testConfig(t, db)
			ctx := context.Background()

			// First start: no policy; SEC-2 is planned, SEC-1 and SEC-3 pass.
			a, err := newSecretsApp(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r := control(t, a, "SEC-2"); r.Status != trust.Planned || !strings.Contains(r.Evidence, "no rotation policy") {
				t.Fatalf("SEC-2 without policies: %+v", r)
			}
			if r := control(t, a, "SEC-1"); r.Status != trust.Passing || !strings.Contains(r.Evidence, "audit trail") {
				t.Fatalf("SEC-1: %+v", r)
			}
			if r := control(t, a, "SEC-3"); r.Status != trust.Passing {
				t.Fatalf("SEC-3: %+v", r)
			}
			// The operator stores the webhook signing secret.
			if _, _, err := a.Secrets.Put(ctx, secrets.Actor{Type: audit.ActorSystem, ID: "test"}, "", "hook-signing", []byte(hookSecret), secrets.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			a.Close()

			// Second start: a policy whose webhook secret is a reference.
			cfg2 := cfg
			cfg2.Secrets.Policies = []config.RotationPolicy{
				{Name: "app-token", Interval: time.Hour, Rotator: "random", Length: 24},
				{Name: "hooked", Interval: time.Hour, Rotator: "webhook", WebhookURL: "http://127.0.0.1:1/rotate", WebhookSecret: "${secret:hook-signing}", WebhookRetries: 1},
			}
			if err := cfg2.Validate(); err != nil {
				t.Fatal(err)
			}
			a2, err := newSecretsApp(t, cfg2)
			if err != nil {
				t.Fatal(err)
			}
			if got := a2.Config.Secrets.Policies[1].WebhookSecret; got != hookSecret {
				t.Fatal("the ${secret:…} reference was not resolved from the store")
			}
			reads, err := a2.AuditLog.Query(ctx, audit.Filter{Action: "secrets.read", ActorID: "config", AfterID: -1})
			if err != nil || len(reads) != 1 || reads[0].Target != "secret:hook-signing" {
				t.Fatalf("config read not audited: %v %+v", err, reads)
			}
			rotated, failed := a2.RotateDue(ctx)
			if rotated != 1 || failed != 1 { // the webhook receiver does not exist
				t.Fatalf("RotateDue = %d rotated, %d failed", rotated, failed)
			}
			v, err := a2.Secrets.Get(ctx, secrets.Actor{Type: audit.ActorSystem, ID: "test"}, "", "app-token", secrets.Selector{})
			if err != nil || len(v.Value) != 24 {
				t.Fatalf("rotated value: %v", err)
			}
			alerts, _ := a2.AuditLog.Query(ctx, audit.Filter{Action: "secret.rotation_failed", AfterID: -1})
			if len(alerts) != 1 || alerts[0].Target != "secret:hooked" {
				t.Fatalf("failed rotation events = %+v", alerts)
			}
			r := control(t, a2, "SEC-2")
			if r.Status != trust.Passing || !strings.Contains(r.Evidence, "0 of 2 rotation policies overdue, 1 with a failed last attempt") {
				t.Fatalf("SEC-2: %+v", r)
			}
			if r := control(t, a2, "SEC-3"); r.Status != trust.Passing || !strings.Contains(r.Evidence, "secret 1") {
				t.Fatalf("SEC-3 with a reference: %+v", r)
			}
			a2.Close()

			// Third start: a reference to a secret that does not exist.
			cfg3 := cfg2
			cfg3.Secrets.Policies = []config.RotationPolicy{cfg2.Secrets.Policies[1]}
			cfg3.Secrets.Policies[0].WebhookSecret = "${secret:missing}"
			if _, err := newSecretsApp(t, cfg3); err == nil || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("start with an unresolvable reference: %v", err)
			}
		})
	}
}

// TestSecretConfigRefusals: validation refuses ${secret:…} where the
// store is not open yet, and development values in production (SEC-3).
func TestSecretConfigRefusals(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"secret ref in database", func(c *config.Config) { c.Database = "${secret:db}" }, "database: ${secret:db}"},
		{"secret ref in audit", func(c *config.Config) { c.Audit.WebhookSecret = "${secret:x}" }, "audit.webhook_secret"},
		{"dev webhook secret in production", func(c *config.Config) {
			c.Dev = false
			c.Alerts.WebhookURL = "https://alerts.example.com/hook"
			c.Alerts.WebhookSecret = config.DevSecrets[0]
		}, "alerts.webhook_secret: holds a built-in development"},
		{"placeholder SMTP password in production", func(c *config.Config) { c.Dev = false; c.Mail.SMTP.Password = "changeme" }, "mail.smtp.password"},
		{"bad rotator", func(c *config.Config) {
			c.Secrets.Policies = []config.RotationPolicy{{Name: "x", Interval: time.Hour, Rotator: "magic"}}
		}, "rotator"},
		{"postgres without role", func(c *config.Config) {
			c.Secrets.Policies = []config.RotationPolicy{{Name: "x", Interval: time.Hour, Rotator: "postgres"}}
		}, "postgres_role"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Dev = true
			c.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want mention of %q", err, c.want)
			}
			if strings.Contains(err.Error(), config.DevSecrets[0]) || strings.Contains(err.Error(), "changeme\"") {
				t.Fatal("the error quotes a secret value")
			}
		})
	}
}
