package store

import (
	"context"
	"time"
)

// TenancyStats are counts the tenancy controls' live checks report as
// evidence (AC-1, AC-4, AC-5, AC-6, AC-7, SES-5). They are aggregates: no
// row of any workspace is returned.
type TenancyStats struct {
	Workspaces          int
	Members             int
	CustomRoles         int
	AppPermissions      int
	ActiveAPIKeys       int
	APIKeysNoExpiry     int   // active keys without an expiry (must be 0)
	LongestKeyLifeHours int64 // longest created→expires span among active keys
	ActiveSCIMTokens    int
	InactiveMembers     int // deprovisioned over SCIM
	Operators           int
	OperatorsWithNets   int
	ActiveGrants        int
	ExpiredGrants       int
	BreakGlass30d       int
	Reviews             int
	WorkspacesReviewed  int // workspaces with at least one recorded review
}

// TenancyStats counts across every workspace (a global read).
func (s *Store) TenancyStats(ctx context.Context, now time.Time) (TenancyStats, error) {
	var st TenancyStats
	n := now.UnixMicro()
	month := now.Add(-30 * 24 * time.Hour).UnixMicro()
	err := s.readGlobal(ctx, "tenancy stats", func(q querier) error {
		rows := []struct {
			dst   any
			query string
			args  []any
		}{
			{&st.Workspaces, `SELECT COUNT(*) FROM workspaces`, nil},
			{&st.Members, `SELECT COUNT(*) FROM members`, nil},
			{&st.InactiveMembers, `SELECT COUNT(*) FROM members WHERE active = ?`, []any{false}},
			{&st.CustomRoles, `SELECT COUNT(*) FROM roles`, nil},
			{&st.AppPermissions, `SELECT COUNT(*) FROM permissions`, nil},
			{&st.ActiveAPIKeys, `SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL AND expires_at > ?`, []any{n}},
			{&st.APIKeysNoExpiry, `SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at <= 0)`, nil},
			{&st.LongestKeyLifeHours, `SELECT COALESCE(MAX(expires_at - created_at), 0) / 3600000000 FROM api_keys WHERE revoked_at IS NULL AND expires_at > ?`, []any{n}},
			{&st.ActiveSCIMTokens, `SELECT COUNT(*) FROM scim_tokens WHERE revoked_at IS NULL`, nil},
			{&st.Operators, `SELECT COUNT(*) FROM operators`, nil},
			{&st.OperatorsWithNets, `SELECT COUNT(*) FROM operators WHERE allowed_networks <> '[]' AND allowed_networks <> ''`, nil},
			{&st.ActiveGrants, `SELECT COUNT(*) FROM support_grants WHERE revoked_at IS NULL AND expires_at > ?`, []any{n}},
			{&st.ExpiredGrants, `SELECT COUNT(*) FROM support_grants WHERE expires_at <= ?`, []any{n}},
			{&st.BreakGlass30d, `SELECT COUNT(*) FROM support_access WHERE break_glass = ? AND at >= ?`, []any{true, month}},
			{&st.Reviews, `SELECT COUNT(*) FROM access_reviews`, nil},
			{&st.WorkspacesReviewed, `SELECT COUNT(DISTINCT workspace_id) FROM access_reviews`, nil},
		}
		for _, r := range rows {
			if err := q.QueryRowContext(ctx, s.q(r.query), r.args...).Scan(r.dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return st, s.fail("tenancy stats", err)
	}
	return st, nil
}

// RLSStatus is what the AC-3 live check reports: on PostgreSQL, how many
// workspace tables have row-level security enabled and forced, and whether
// the role the application's queries run as owns tables or bypasses RLS.
type RLSStatus struct {
	Engine        string
	Tables        int // workspace-owned tables
	Enabled       int
	Forced        int
	Role          string
	RoleIsSuper   bool
	RoleBypassRLS bool
	RoleOwnsAny   bool
}

// workspaceTables are the workspace-owned tables of migration 0003.
var workspaceTables = []string{"workspaces", "roles", "members", "member_roles", "invitations", "api_keys",
	"scim_tokens", "support_grants", "support_access", "access_reviews"}

// RLSStatus reads the catalog. On SQLite only Engine and Tables are set.
func (s *Store) RLSStatus(ctx context.Context) (RLSStatus, error) {
	st := RLSStatus{Engine: s.engine, Tables: len(workspaceTables)}
	if s.engine != EnginePostgres {
		return st, nil
	}
	err := s.readGlobal(ctx, "rls status", func(q querier) error {
		if err := q.QueryRowContext(ctx, `SELECT current_user, r.rolsuper, r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user`).
			Scan(&st.Role, &st.RoleIsSuper, &st.RoleBypassRLS); err != nil {
			return err
		}
		for _, t := range workspaceTables {
			var enabled, forced, owns bool
			err := q.QueryRowContext(ctx, `SELECT c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) = current_user
				FROM pg_class c WHERE c.oid = to_regclass($1)`, t).Scan(&enabled, &forced, &owns)
			if err != nil {
				return err
			}
			if enabled {
				st.Enabled++
			}
			if forced {
				st.Forced++
			}
			st.RoleOwnsAny = st.RoleOwnsAny || owns
		}
		return nil
	})
	if err != nil {
		return st, s.fail("rls status", err)
	}
	return st, nil
}
