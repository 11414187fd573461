package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/outbound"
	"github.com/rampartsec/rampart/internal/rotate"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/vault/secrets"
	"github.com/rampartsec/rampart/internal/web"
)

// secretsParts is the secrets store's share of the App.
type secretsParts struct {
	// Secrets is the secrets store (SEC-1).
	Secrets *secrets.Service
	// secretPolicies are the configured rotation policies (SEC-2).
	secretPolicies []secrets.Policy
}

// probeSecret is the operator-level secret the SEC-1 check writes and
// reads; it is destroyed and started afresh every probeVersions versions so
// it does not grow without bound.
const (
	probeSecret   = "rampart.probe"
	probeVersions = 100
)

// rotationActor is who the rotation job acts as in the audit trail.
var rotationActor = secrets.Actor{Type: audit.ActorSystem, ID: "secrets-rotation"}

// buildSecrets wires the secrets store over the key hierarchy's Sealer,
// registers the secrets permissions, resolves the configuration's
// ${secret:…} references (failing the start when one does not resolve) and
// builds the rotation policies and their leader-only job. It runs after
// tenancy and before every feature that reads such references.
func (a *App) buildSecrets(ctx context.Context) error {
	if a.Sealer == nil {
		return errors.New("the key hierarchy is not ready")
	}
	a.Secrets = secrets.New(secrets.Deps{Store: a.Store, Sealer: a.Sealer, Audit: a.Audit, Log: a.Log, Now: a.now, Rand: a.rand})
	for _, p := range []tenancy.Permission{
		{Name: web.PermSecretsRead, Description: "Read the workspace's secret values (every read is audited)"},
		{Name: web.PermSecretsWrite, Description: "Write, promote, rotate, delete and destroy the workspace's secrets"},
	} {
		if err := a.Tenancy.RegisterPermission(ctx, p); err != nil {
			return fmt.Errorf("register permission %s: %w", p.Name, err)
		}
	}
	if err := a.resolveSecretRefs(ctx); err != nil {
		return err
	}
	policies, err := a.rotationPolicies(a.Config.Secrets.Policies)
	if err != nil {
		return err
	}
	a.secretPolicies = policies
	if len(policies) > 0 {
		a.jobs = append(a.jobs, a.runRotation)
	}
	return nil
}

// resolveSecretRefs replaces the configuration's ${secret:name} references
// with the current value of the operator-level secret name. Settings read
// before this point are refused by validation (config.SecretRefAllowed).
func (a *App) resolveSecretRefs(ctx context.Context) error {
	if !a.Config.HasSecretRefs() {
		return nil
	}
	err := a.Config.ResolveSecretRefs(func(name string) (string, error) {
		v, err := a.Secrets.Resolve(ctx, name)
		if err != nil {
			if fe := fault.As(err); fe != nil {
				return "", errors.New(fe.Message)
			}
			return "", errors.New("cannot be read")
		}
		return string(v), nil
	})
	if err != nil {
		return fmt.Errorf("configuration secret references: %w", err)
	}
	return nil
}

// rotationPolicies builds each configured policy's rotator. Plaintext to a
// remote database is refused unless the policy allows it (TLS-3).
func (a *App) rotationPolicies(cfgs []config.RotationPolicy) ([]secrets.Policy, error) {
	var out []secrets.Policy
	for i, c := range cfgs {
		p := secrets.Policy{Name: c.Name, Workspace: c.Workspace, Secret: c.SecretName(), Interval: c.Interval, RetryAfter: c.RetryAfter}
		switch c.Rotator {
		case "random":
			p.Rotator = &rotate.Random{Length: c.Length, Alphabet: c.Alphabet, Rand: a.rand}
		case "postgres":
			for _, dsn := range []string{c.PostgresAdminDSN, c.PostgresTestDSN} {
				if dsn == "" {
					continue
				}
				if err := store.CheckTransport(dsn, c.AllowInsecure); err != nil {
					return nil, fmt.Errorf("secrets.policies[%d] (%s): %w", i, c.Name, err)
				}
			}
			p.Rotator = &rotate.Postgres{AdminDSN: c.PostgresAdminDSN, Role: c.PostgresRole, TestDSN: c.PostgresTestDSN, Length: c.Length, Rand: a.rand}
		case "webhook":
			if _, err := rotate.NewWebhookKey(c.WebhookSecret); err != nil {
				return nil, fmt.Errorf("secrets.policies[%d] (%s).webhook_secret: %w", i, c.Name, err)
			}
			// TLS-3: the shared outbound client; plaintext to a remote
			// receiver only with the policy's allow_insecure or in dev
			// mode, as the configuration check accepts.
			allowPlain := c.AllowInsecure || a.Config.Dev
			if _, err := outbound.ParseURL(c.WebhookURL, allowPlain); err != nil {
				return nil, fmt.Errorf("secrets.policies[%d] (%s).webhook_url: %w", i, c.Name, err)
			}
			client := outbound.Client(outbound.Options{AllowPlaintext: allowPlain, EnvironmentProxy: true}, 15*time.Second)
			p.Rotator = &rotate.Webhook{URL: c.WebhookURL, Secret: c.WebhookSecret, Retries: c.WebhookRetries, Length: c.Length,
				Rand: a.rand, Now: a.now, Client: client}
		default:
			return nil, fmt.Errorf("secrets.policies[%d] (%s): unknown rotator %q", i, c.Name, c.Rotator)
		}
		out = append(out, p)
	}
	return out, nil
}

// runRotation checks the policies every secrets.check_every, on the node
// holding the "secrets-rotation" leadership, and rotates the due ones.
func (a *App) runRotation(ctx context.Context) {
	every := a.Config.Secrets.CheckEvery
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if release, ok, err := a.Store.TryLeader(ctx, "secrets-rotation"); err == nil && ok {
			a.RotateDue(ctx)
			release()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RotateDue runs every due policy once and returns how many rotated and
// how many failed. Failures are audited and alerted by the service.
func (a *App) RotateDue(ctx context.Context) (rotated, failed int) {
	for _, p := range a.secretPolicies {
		due, err := a.Secrets.Due(ctx, p)
		if err != nil {
			if ctx.Err() == nil {
				a.Log.Error("secret rotation: cannot tell whether due", "policy", p.Name, "err", err)
			}
			continue
		}
		if !due {
			continue
		}
		if _, err := a.Secrets.Rotate(ctx, rotationActor, p); err != nil {
			failed++
			var re *secrets.RotationError
			if !errors.As(err, &re) && ctx.Err() == nil { // rotation errors are logged, audited and alerted by the service
				a.Log.Error("secret rotation could not start", "policy", p.Name, "err", err)
			}
			continue
		}
		rotated++
	}
	return rotated, failed
}

// RotateSecret runs the policy that rotates ws/name now (API and CLI).
func (a *App) RotateSecret(ctx context.Context, actor secrets.Actor, ws, name string) (int, error) {
	for _, p := range a.secretPolicies {
		if p.Workspace == ws && p.Secret == name {
			return a.Secrets.Rotate(ctx, actor, p)
		}
	}
	return 0, fault.New(fault.NotFound, "rotation_policy_not_found", "no rotation policy rotates this secret")
}

func (a *App) secretsWebDeps() web.SecretsDeps {
	return web.SecretsDeps{Secrets: a.Secrets, Rotate: a.RotateSecret}
}

func (a *App) secretsChecks() map[string]trust.Check {
	return map[string]trust.Check{
		"SEC-1": a.checkSecretsStore,
		"SEC-2": a.checkSecretRotation,
		"SEC-3": a.checkSecretConfig,
	}
}

// SEC-1: a probe write and read through the service creates a version, the
// read comes back equal, and it appears in the audit trail.
func (a *App) checkSecretsStore(ctx context.Context) trust.Result {
	actor := secrets.Actor{Type: audit.ActorSystem, ID: "controls-probe"}
	start := a.now().UTC().Add(-time.Second)
	value := []byte("probe-" + rand.Text())
	sec, v, err := a.Secrets.Put(ctx, actor, "", probeSecret, value, secrets.PutOptions{})
	if err != nil {
		return failing("probe write failed (%s)", faultCode(err))
	}
	got, err := a.Secrets.Get(ctx, actor, "", probeSecret, secrets.Selector{Version: v})
	if err != nil {
		return failing("probe read failed (%s)", faultCode(err))
	}
	if string(got.Value) != string(value) {
		return failing("probe read returned another value")
	}
	if sec.Latest >= probeVersions {
		_ = a.Secrets.Destroy(ctx, actor, "", probeSecret)
	}
	evs, err := a.AuditLog.Query(ctx, audit.Filter{Action: "secrets.read", ActorID: actor.ID, Since: start, AfterID: -1, Limit: 1000})
	if err != nil {
		return failing("could not query the audit trail")
	}
	found := false
	for _, e := range evs {
		if e.Target == "secret:"+probeSecret && e.Details["version"] == fmt.Sprint(v) {
			found = true
		}
	}
	if !found {
		return failing("the probe read is missing from the audit trail")
	}
	list, err := a.Secrets.List(ctx, "", false)
	if err != nil {
		return failing("could not list secrets")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("probe wrote version %d (stages current/previous moved), read it back and found the read in the audit trail; %d operator-level secrets", v, len(list)),
		Data:     map[string]any{"probe_version": v, "operator_secrets": len(list), "audited_read": true}}
}

// SEC-2: secrets overdue for rotation (0 to pass) and each policy's last
// result.
func (a *App) checkSecretRotation(ctx context.Context) trust.Result {
	if len(a.secretPolicies) == 0 {
		// Like APP-3 without limits: nothing is promised yet, so nothing
		// fails, and nothing is shown as working either.
		return trust.Result{Status: trust.Planned, Evidence: "no rotation policy is configured (secrets.policies); rotators random, postgres and webhook are available",
			Data: map[string]any{"policies": 0}}
	}
	overdue, failedLast := 0, 0
	var lines []string
	policies := map[string]any{}
	for _, p := range a.secretPolicies {
		st, err := a.Secrets.PolicyStatus(ctx, p, a.Config.Secrets.OverdueGrace)
		if err != nil {
			return failing("could not read the state of policy %s", p.Name)
		}
		if st.Overdue {
			overdue++
		}
		if st.State.Status == "failed" {
			failedLast++
		}
		last := "never"
		if !st.LastRotated.IsZero() {
			last = st.LastRotated.UTC().Format(time.RFC3339)
		}
		lines = append(lines, fmt.Sprintf("%s: %s, last %s", p.Name, orDash(st.State.Status), last))
		policies[p.Name] = map[string]any{"rotator": p.Rotator.Kind(), "interval": p.Interval.String(), "last_rotated": last,
			"last_status": st.State.Status, "failed_step": st.State.Error, "overdue": st.Overdue, "next_due": st.NextDue.UTC().Format(time.RFC3339)}
	}
	sort.Strings(lines)
	res := trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("%d of %d rotation policies overdue, %d with a failed last attempt (%s)", overdue, len(a.secretPolicies), failedLast, strings.Join(lines, "; ")),
		Data:     map[string]any{"policies": policies, "overdue": overdue, "failed_last": failedLast}}
	if overdue > 0 {
		res.Status = trust.Failing
	}
	return res
}

func orDash(s string) string {
	if s == "" {
		return "pending first rotation"
	}
	return s
}

// SEC-3: every secret setting is empty or given by reference; production
// refuses the built-in development values (validation already did, this
// reports it).
func (a *App) checkSecretConfig(ctx context.Context) trust.Result {
	fields := a.Config.SecretFields()
	set, plain := 0, 0
	byRef := map[string]int{}
	var plainPaths []string
	devInProd := 0
	for _, f := range fields {
		if !f.Set {
			continue
		}
		set++
		if f.Ref == "" {
			plain++
			plainPaths = append(plainPaths, f.Path)
		} else {
			byRef[f.Ref]++
		}
		if !a.Config.Dev && config.IsDevSecret(f.Value) {
			devInProd++
		}
	}
	data := map[string]any{"secret_settings": set, "by_reference": byRef, "plaintext": plain, "plaintext_settings": plainPaths,
		"dev_mode": a.Config.Dev, "dev_values_in_production": devInProd}
	if plain > 0 || devInProd > 0 {
		return trust.Result{Status: trust.Failing,
			Evidence: fmt.Sprintf("%d of %d secret settings hold a plaintext value in the configuration (%s); use ${env:…}, ${file:…} or ${secret:…}", plain, set, strings.Join(plainPaths, ", ")),
			Data:     data}
	}
	mode := "production: built-in development values are refused"
	if a.Config.Dev {
		mode = "dev mode: development values allowed"
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("%d secret settings, all by reference (env %d, file %d, secret %d), none in plaintext; %s", set, byRef["env"], byRef["file"], byRef["secret"], mode),
		Data:     data}
}

func faultCode(err error) string {
	if fe := fault.As(err); fe != nil {
		return fe.Code
	}
	return "internal"
}
