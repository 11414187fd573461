package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/trust"
)

// tenancyChecks are the live checks of the workspace controls.
func (a *App) tenancyChecks() map[string]trust.Check {
	return map[string]trust.Check{
		"AC-1":  a.checkDenyByDefault,
		"AC-2":  a.checkSeparation,
		"AC-3":  a.checkIsolation,
		"AC-4":  a.checkSCIM,
		"AC-5":  a.checkReviews,
		"AC-6":  a.checkSupportAccess,
		"AC-7":  a.checkOperatorMFA,
		"SES-5": a.checkAPIKeys,
	}
}

// AC-1: a principal with no membership is refused in a workspace; counts.
func (a *App) checkDenyByDefault(ctx context.Context) trust.Result {
	probe := tenancy.Principal{UserID: "probe-" + rand.Text(), MFA: true}
	d := a.Tenancy.Check(ctx, probe, "probe-"+rand.Text(), tenancy.PermContentRead)
	if d.Allowed {
		return failing("deny-by-default probe was allowed (%s)", d.Reason)
	}
	st, err := a.Store.TenancyStats(ctx, a.now())
	if err != nil {
		return failing("could not count workspaces")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("deny by default: a principal without membership was refused (%s); %d workspaces, %d memberships, built-in roles Admin/Editor/ReadOnly plus %d custom roles and %d app permissions",
			d.Reason, st.Workspaces, st.Members, st.CustomRoles, st.AppPermissions),
		Data: map[string]any{"probe_reason": d.Reason, "workspaces": st.Workspaces, "members": st.Members, "custom_roles": st.CustomRoles}}
}

// AC-2: read and write are distinct permissions; sensitive ones need a
// fresh step-up.
func (a *App) checkSeparation(ctx context.Context) trust.Result {
	perms, err := a.Tenancy.Permissions(ctx)
	if err != nil {
		return failing("could not list permissions")
	}
	reads, writes, sensitive := 0, 0, 0
	for _, p := range perms {
		if strings.HasSuffix(p.Name, ".read") {
			reads++
		} else {
			writes++
		}
		if p.Sensitive {
			sensitive++
		}
	}
	if reads == 0 || writes == 0 {
		return failing("%d read and %d write permissions: read and write are not separated", reads, writes)
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("%d permissions: %d read, %d write or manage, never combined; %d sensitive ones need an MFA step-up within %s",
			len(perms), reads, writes, sensitive, a.Config.Tenancy.StepUpWindow),
		Data: map[string]any{"read": reads, "write": writes, "sensitive": sensitive}}
}

// AC-3: row-level security on every workspace table, and the application
// role neither owns them nor bypasses RLS.
func (a *App) checkIsolation(ctx context.Context) trust.Result {
	st, err := a.Store.RLSStatus(ctx)
	if err != nil {
		return failing("could not read the database catalog")
	}
	if st.Engine != "postgres" {
		return trust.Result{Status: trust.Planned,
			Evidence: fmt.Sprintf("this node runs on SQLite, which has no row-level security: each of the %d workspace tables is filtered by workspace in every query; database-enforced isolation applies on PostgreSQL", st.Tables),
			Data:     map[string]any{"engine": st.Engine}}
	}
	data := map[string]any{"tables": st.Tables, "enabled": st.Enabled, "forced": st.Forced, "role": st.Role, "superuser": st.RoleIsSuper, "bypassrls": st.RoleBypassRLS, "owns_tables": st.RoleOwnsAny}
	if st.Enabled != st.Tables || st.Forced != st.Tables || st.RoleIsSuper || st.RoleBypassRLS || st.RoleOwnsAny {
		return trust.Result{Status: trust.Failing, Data: data,
			Evidence: fmt.Sprintf("RLS enabled on %d and forced on %d of %d workspace tables; role %s superuser=%t bypassrls=%t owns tables=%t",
				st.Enabled, st.Forced, st.Tables, st.Role, st.RoleIsSuper, st.RoleBypassRLS, st.RoleOwnsAny)}
	}
	return trust.Result{Status: trust.Passing, Data: data,
		Evidence: fmt.Sprintf("PostgreSQL row-level security enabled and forced on %d of %d workspace tables; queries run as %s, which owns no table and cannot bypass RLS",
			st.Forced, st.Tables, st.Role)}
}

// AC-4: SCIM provisioning is available and deprovisioning cuts access.
func (a *App) checkSCIM(ctx context.Context) trust.Result {
	st, err := a.Store.TenancyStats(ctx, a.now())
	if err != nil {
		return failing("could not count SCIM tokens")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("SCIM 2.0 at /scim/v2 with per-workspace tokens (%d active); %d memberships deprovisioned; deactivating or deleting a user revokes their sessions and API keys in the same request",
			st.ActiveSCIMTokens, st.InactiveMembers),
		Data: map[string]any{"scim_tokens": st.ActiveSCIMTokens, "deprovisioned": st.InactiveMembers}}
}

// AC-5: access reviews recorded; cadence.
func (a *App) checkReviews(ctx context.Context) trust.Result {
	st, err := a.Store.TenancyStats(ctx, a.now())
	if err != nil {
		return failing("could not count reviews")
	}
	t := a.Config.Tenancy
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("%d access reviews recorded, covering %d of %d workspaces; a review is due every %s, access unused for %s is flagged stale, Admins are reminded when due",
			st.Reviews, st.WorkspacesReviewed, st.Workspaces, days(t.ReviewEvery.Hours()), days(t.StaleAfter.Hours())),
		Data: map[string]any{"reviews": st.Reviews, "workspaces_reviewed": st.WorkspacesReviewed, "workspaces": st.Workspaces}}
}

func days(hours float64) string { return fmt.Sprintf("%.0f days", hours/24) }

// AC-6: no standing operator access; grants and break-glass counted.
func (a *App) checkSupportAccess(ctx context.Context) trust.Result {
	st, err := a.Store.TenancyStats(ctx, a.now())
	if err != nil {
		return failing("could not count support grants")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("operators have no standing access: %d active time-boxed grants (longest allowed %s), %d expired; %d break-glass accesses in the last 30 days, each with a reason, alerted and shown to the workspace",
			st.ActiveGrants, a.Config.Tenancy.SupportGrantMaxTTL, st.ExpiredGrants, st.BreakGlass30d),
		Data: map[string]any{"active_grants": st.ActiveGrants, "break_glass_30d": st.BreakGlass30d}}
}

// AC-7: operators and admins need MFA; operator networks.
func (a *App) checkOperatorMFA(ctx context.Context) trust.Result {
	st, err := a.Store.TenancyStats(ctx, a.now())
	if err != nil {
		return failing("could not count operators")
	}
	if a.Config.Tenancy.AdminMFAOptional {
		return failing("tenancy.admin_mfa_optional is set: workspace admin permissions work without MFA")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("%d operators, each needing an MFA session on every request, %d of them limited to listed networks; workspace admin permissions need an MFA session",
			st.Operators, st.OperatorsWithNets),
		Data: map[string]any{"operators": st.Operators, "operators_with_networks": st.OperatorsWithNets}}
}

// SES-5: API keys expire, are stored hashed, and within the maximum life.
func (a *App) checkAPIKeys(ctx context.Context) trust.Result {
	st, err := a.Store.TenancyStats(ctx, a.now())
	if err != nil {
		return failing("could not count API keys")
	}
	maxH := int64(a.Config.Tenancy.APIKeyMaxTTL.Hours())
	data := map[string]any{"active": st.ActiveAPIKeys, "without_expiry": st.APIKeysNoExpiry, "longest_life_hours": st.LongestKeyLifeHours, "max_hours": maxH}
	if st.APIKeysNoExpiry > 0 || st.LongestKeyLifeHours > maxH {
		return trust.Result{Status: trust.Failing, Data: data,
			Evidence: fmt.Sprintf("%d active keys without expiry; longest life %dh (maximum %dh)", st.APIKeysNoExpiry, st.LongestKeyLifeHours, maxH)}
	}
	return trust.Result{Status: trust.Passing, Data: data,
		Evidence: fmt.Sprintf("%d active API keys, all expiring (longest life %dh of at most %dh), scoped to a subset of their creator's permissions, stored as SHA-256 only, last use recorded",
			st.ActiveAPIKeys, st.LongestKeyLifeHours, maxH)}
}
