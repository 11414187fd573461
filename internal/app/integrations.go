package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/integration"
	"github.com/rampartsec/rampart/internal/web"
)

// integrationParts is this feature's share of the App.
type integrationParts struct {
	Integrations *integration.Service
}

// integrationSealer is the sealer integration tokens go through: the
// per-workspace key hierarchy (vaultParts) when wired, else a keyring with
// a key derived from the root key for this purpose only.
func (a *App) integrationSealer() (vault.Sealer, error) {
	if a.Sealer != nil {
		return a.Sealer, nil
	}
	kr := vault.NewKeyring(a.rand)
	if err := kr.Add(1, a.root.Derive("rampart/integration-tokens/v1", 32)); err != nil {
		return nil, err
	}
	if err := kr.SetPrimary(1); err != nil {
		return nil, err
	}
	return vault.KeyringSealer{Keyring: kr}, nil
}

func (a *App) buildIntegrations(ctx context.Context) error {
	for _, p := range []tenancy.Permission{
		{Name: integration.PermManage, Description: "Connect and disconnect third-party integrations"},
		{Name: integration.PermUse, Description: "Obtain integration access tokens"},
	} {
		if err := a.Tenancy.RegisterPermission(ctx, p); err != nil {
			return fmt.Errorf("register permission %s: %w", p.Name, err)
		}
	}
	ic, err := a.Config.Integrations.Resolve(a.environ)
	if err != nil {
		return err
	}
	providers := make([]integration.Provider, 0, len(ic.Providers))
	for _, p := range ic.Providers {
		providers = append(providers, integration.Provider{Name: p.Name, Kind: integration.Kind(p.Type), Scopes: p.Scopes,
			AuthURL: p.AuthURL, TokenURL: p.TokenURL, RevocationURL: p.RevocationURL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			AuthStyle: p.AuthStyle, KeyPrefixes: p.KeyPrefixes, CheckURL: p.CheckURL, CheckAuth: p.CheckAuth,
			PermissionsField: p.PermissionsField, AllowInsecureHTTP: p.AllowInsecureHTTP})
	}
	sealer, err := a.integrationSealer()
	if err != nil {
		return err
	}
	svc, err := integration.New(integration.Config{
		Providers: providers, RedirectURL: strings.TrimRight(a.Config.PublicURL, "/") + "/v1/integrations/callback",
		StateTTL: ic.StateTTL, RefreshBefore: ic.RefreshBefore, RevocationRetryFor: ic.RevocationRetryFor,
	}, integration.Deps{Store: a.Store, Sealer: sealer, Audit: a.Audit, Log: a.Log, Now: a.now, Rand: a.rand,
		Alert: func(ctx context.Context, e audit.Event) {
			a.Log.Warn("security alert", "action", e.Action, "workspace", e.Workspace, "reason", e.Details["reason"])
		}})
	if err != nil {
		return err
	}
	a.Integrations = svc
	a.jobs = append(a.jobs, a.runIntegrationJobs)
	return nil
}

// runIntegrationJobs refreshes expiring tokens and retries revocations
// every job_interval on the node holding the "integrations" leadership.
func (a *App) runIntegrationJobs(ctx context.Context) {
	t := time.NewTicker(a.Config.Integrations.JobInterval)
	defer t.Stop()
	for {
		release, ok, err := a.Store.TryLeader(ctx, "integrations")
		if err != nil && ctx.Err() == nil {
			a.Log.Warn("integrations: leadership check failed", "err", err)
		}
		if ok {
			rep, err := a.Integrations.RunJobs(ctx)
			release()
			switch {
			case err != nil && ctx.Err() == nil:
				a.Log.Error("integrations job failed", "err", err)
			case rep.Refreshed+rep.RefreshFailed+rep.Revoked+rep.Retrying+rep.GivenUp > 0:
				a.Log.Info("integrations job", "refreshed", rep.Refreshed, "refresh_failed", rep.RefreshFailed,
					"revoked", rep.Revoked, "retrying", rep.Retrying, "given_up", rep.GivenUp)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) integrationWebDeps() web.IntegrationDeps {
	return web.IntegrationDeps{Integrations: a.Integrations}
}

func (a *App) integrationChecks() map[string]trust.Check {
	return map[string]trust.Check{
		"INT-1": a.checkIntegrationSealing,
		"INT-2": a.checkIntegrationScopes,
		"INT-3": a.checkIntegrationRevocations,
		"INT-4": a.checkIntegrationRefresh,
	}
}

// INT-1: sampled stored tokens are ciphertext that opens under its own
// row's context and not under another's.
func (a *App) checkIntegrationSealing(ctx context.Context) trust.Result {
	sc, err := a.Integrations.CheckSealing(ctx, 5)
	if err != nil {
		return failing("could not sample stored integration tokens")
	}
	data := map[string]any{"sampled": sc.Sampled, "opened": sc.Opened, "cross_row_refused": sc.CrossRefused}
	if sc.Opened != sc.Sampled || sc.CrossRefused != sc.Sampled {
		return trust.Result{Status: trust.Failing, Data: data,
			Evidence: fmt.Sprintf("of %d sampled token rows, %d opened under their own context and %d were refused under another row's", sc.Sampled, sc.Opened, sc.CrossRefused)}
	}
	return trust.Result{Status: trust.Passing, Data: data,
		Evidence: fmt.Sprintf("%d sampled stored integration tokens are AES-256-GCM ciphertext bound to workspace, table, column and row: each opened under its own context and was refused under another row's", sc.Sampled)}
}

// INT-2: every configured provider declares its allowed scopes; refusals
// of broader grants and keys are counted.
func (a *App) checkIntegrationScopes(ctx context.Context) trust.Result {
	providers := a.Integrations.Providers()
	undeclared := 0
	for _, p := range providers {
		if len(p.Scopes) == 0 {
			undeclared++
		}
	}
	since := a.now().Add(-30 * 24 * time.Hour)
	refused, err := a.countEvents(ctx, "integrations.scope_refused", audit.Denied, since)
	if err != nil {
		return failing("could not count scope refusals in the audit trail")
	}
	data := map[string]any{"providers": len(providers), "providers_without_scopes": undeclared, "refused_30d": refused,
		"refused_since_start": a.Integrations.Refusals()}
	if undeclared > 0 {
		return trust.Result{Status: trust.Failing, Data: data, Evidence: fmt.Sprintf("%d of %d providers declare no allowed scopes", undeclared, len(providers))}
	}
	return trust.Result{Status: trust.Passing, Data: data,
		Evidence: fmt.Sprintf("%d configured providers all declare their allowed scopes; %d grants or keys broader than allowed refused in 30 days", len(providers), refused)}
}

// INT-3: the revocation queue is drained: pending count and the age of
// the oldest; revocations given up in 30 days.
func (a *App) checkIntegrationRevocations(ctx context.Context) trust.Result {
	st, err := a.Integrations.Stats(ctx)
	if err != nil {
		return failing("could not read the revocation queue")
	}
	gaveUp, err := a.countEvents(ctx, "integrations.revoke", audit.Failure, a.now().Add(-30*24*time.Hour))
	if err != nil {
		return failing("could not count failed revocations in the audit trail")
	}
	age := time.Duration(0)
	if !st.OldestRevocation.IsZero() {
		age = a.now().Sub(st.OldestRevocation)
	}
	data := map[string]any{"pending_revocations": st.PendingRevocations, "oldest_pending_seconds": int(age.Seconds()), "given_up_30d": gaveUp}
	if age > a.Config.Integrations.RevocationRetryFor {
		return trust.Result{Status: trust.Failing, Data: data, Evidence: fmt.Sprintf("a revocation has waited %s, longer than the retry bound", age.Truncate(time.Second))}
	}
	return trust.Result{Status: trust.Passing, Data: data,
		Evidence: fmt.Sprintf("disconnect deletes credentials in the same transaction that queues their RFC 7009 revocation; %d revocations pending (oldest %s); %d given up in 30 days",
			st.PendingRevocations, age.Truncate(time.Second), gaveUp)}
}

// INT-4: no refreshable token has expired unrefreshed; the last job run.
func (a *App) checkIntegrationRefresh(ctx context.Context) trust.Result {
	st, err := a.Integrations.Stats(ctx)
	if err != nil {
		return failing("could not read integration tokens")
	}
	data := map[string]any{"connections": st.Connections, "expired_unrefreshed": st.ExpiredUnrefreshed}
	last := "the refresh job has not run on this node yet"
	if j := a.Integrations.LastJob(); j != nil {
		data["last_job_at"] = j.At.UTC().Format(time.RFC3339)
		data["last_job_refreshed"], data["last_job_refresh_failed"] = j.Refreshed, j.RefreshFailed
		last = fmt.Sprintf("last job run %s: %d refreshed, %d failed", j.At.UTC().Format(time.RFC3339), j.Refreshed, j.RefreshFailed)
	}
	if st.ExpiredUnrefreshed > 0 {
		return trust.Result{Status: trust.Failing, Data: data, Evidence: fmt.Sprintf("%d refreshable tokens expired without refresh; %s", st.ExpiredUnrefreshed, last)}
	}
	return trust.Result{Status: trust.Passing, Data: data,
		Evidence: fmt.Sprintf("0 of %d connections hold an expired refreshable token; every token use is audited; %s", st.Connections, last)}
}
