package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tenancy"
)

var _ tenancy.Store = (*Store)(nil)

// Workspace isolation (AC-3). Every method that takes a workspace id runs
// in a transaction bound to it (withWorkspaceTx, readWorkspace): on
// PostgreSQL row-level security then hides and refuses every other
// workspace's rows, and on both engines each query also filters on
// workspace_id. Only these run with the global scope, because they must
// find a row before its workspace is known or list across workspaces:
//
//   - AllWorkspaces, WorkspacesOf: lists across workspaces by nature;
//   - InvitationByTokenHash, APIKeyByID, SCIMTokenByID: the credential is
//     all the caller holds;
//   - TouchAPIKey: the key id is all the caller passes (one UPDATE by id);
//   - AcceptInvitation: finds the invitation's workspace, then narrows the
//     transaction to it before writing (rescope).
//
// Permissions and operators are not workspace-owned and have no policies.

type rowScanner interface{ Scan(...any) error }

// queryAll runs query and scans every row with scan.
func queryAll[T any](ctx context.Context, s *Store, x querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := x.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// timeOf converts a NOT NULL microsecond column.
func timeOf(v int64) time.Time { return time.UnixMicro(v).UTC() }

// encodeList stores a string list as JSON text; nil as "[]".
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// decodeList is the inverse of encodeList; an empty list reads back nil.
func decodeList(v string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(v), &l); err != nil {
		return nil, fault.Wrap(fault.Internal, "internal", "cannot decode a stored list", err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// normalizeRoles sorts and deduplicates role ids; an empty id is invalid.
func normalizeRoles(roles []string) ([]string, error) {
	out := slices.Clone(roles)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] == "" {
		return nil, fault.Invalidf("invalid_role", "a role id cannot be empty")
	}
	return out, nil
}

// lockWorkspace takes the workspace's row lock on PostgreSQL, so the
// transactions that change memberships or roles in one workspace run one
// after another: two concurrent removals of the last two Admins then see
// each other, and a role cannot be deleted while being assigned. NO KEY
// UPDATE does not block inserts that merely reference the workspace. On
// SQLite the single writer already serializes. Either way a missing
// workspace is fault.ErrNotFound.
func (s *Store) lockWorkspace(ctx context.Context, tx *sql.Tx, ws string) error {
	query := `SELECT 1 FROM workspaces WHERE id = ?`
	if s.engine == EnginePostgres {
		query += ` FOR NO KEY UPDATE`
	}
	var one int
	return tx.QueryRowContext(ctx, s.q(query), ws).Scan(&one)
}

// --- permissions ---

// UpsertPermission registers an app permission or updates its description
// and sensitivity.
func (s *Store) UpsertPermission(ctx context.Context, p tenancy.Permission) error {
	if p.Name == "" {
		return fault.Invalidf("invalid_permission", "a permission needs a name")
	}
	_, err := s.exec(ctx, s.db, "upsert permission", `INSERT INTO permissions (name, description, sensitive) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET description = excluded.description, sensitive = excluded.sensitive`,
		p.Name, p.Description, p.Sensitive)
	return err
}

// ListPermissions returns the app-registered permissions by name.
func (s *Store) ListPermissions(ctx context.Context) ([]tenancy.Permission, error) {
	ps, err := queryAll(ctx, s, s.rdb, func(r rowScanner) (tenancy.Permission, error) {
		var p tenancy.Permission
		err := r.Scan(&p.Name, &p.Description, &p.Sensitive)
		return p, err
	}, `SELECT name, description, sensitive FROM permissions ORDER BY name`)
	return ps, s.fail("list permissions", err)
}

// --- workspaces ---

const workspaceColumns = `id, name, created_by, created_at, updated_at`

func scanWorkspace(r rowScanner) (tenancy.Workspace, error) {
	var w tenancy.Workspace
	var created, updated int64
	err := r.Scan(&w.ID, &w.Name, &w.CreatedBy, &created, &updated)
	w.CreatedAt, w.UpdatedAt = timeOf(created), timeOf(updated)
	return w, err
}

// CreateWorkspace inserts w and creator as an active member holding the
// Admin role (added to creator.Roles if missing), in one transaction bound
// to the new workspace. An empty ID is generated and zero times stamped,
// and written back to w.
func (s *Store) CreateWorkspace(ctx context.Context, w *tenancy.Workspace, creator tenancy.Member) error {
	if w.Name == "" || creator.UserID == "" {
		return fault.Invalidf("invalid_workspace", "a workspace needs a name and a creator")
	}
	if w.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		w.ID = id
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = s.now().UTC()
	}
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = w.CreatedAt
	}
	if w.CreatedBy == "" {
		w.CreatedBy = creator.UserID
	}
	creator.WorkspaceID = w.ID
	creator.Active = true
	if !slices.Contains(creator.Roles, tenancy.RoleAdmin) {
		creator.Roles = append(slices.Clone(creator.Roles), tenancy.RoleAdmin)
	}
	if creator.JoinedAt.IsZero() {
		creator.JoinedAt = w.CreatedAt
	}
	return s.withWorkspaceTx(ctx, "create workspace", w.ID, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "create workspace", `INSERT INTO workspaces (`+workspaceColumns+`) VALUES (?, ?, ?, ?, ?)`,
			w.ID, w.Name, w.CreatedBy, w.CreatedAt.UnixMicro(), w.UpdatedAt.UnixMicro()); err != nil {
			return err
		}
		return s.insertMember(ctx, tx, &creator)
	})
}

// Workspace returns the workspace; fault.ErrNotFound if there is none.
func (s *Store) Workspace(ctx context.Context, id string) (*tenancy.Workspace, error) {
	var w tenancy.Workspace
	err := s.readWorkspace(ctx, "workspace", id, func(x querier) (err error) {
		w, err = scanWorkspace(x.QueryRowContext(ctx, s.q(`SELECT `+workspaceColumns+` FROM workspaces WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// RenameWorkspace sets the name.
func (s *Store) RenameWorkspace(ctx context.Context, id, name string, now time.Time) error {
	if name == "" {
		return fault.Invalidf("invalid_workspace", "a workspace needs a name")
	}
	return s.withWorkspaceTx(ctx, "rename workspace", id, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "rename workspace", `UPDATE workspaces SET name = ?, updated_at = ? WHERE id = ?`,
			name, now.UnixMicro(), id)
		if err == nil && n == 0 {
			err = fault.ErrNotFound
		}
		return err
	})
}

// DeleteWorkspace deletes the workspace; every table it owns follows by
// ON DELETE CASCADE in the same statement.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error {
	return s.withWorkspaceTx(ctx, "delete workspace", id, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "delete workspace", `DELETE FROM workspaces WHERE id = ?`, id)
		if err == nil && n == 0 {
			err = fault.ErrNotFound
		}
		return err
	})
}

// AllWorkspaces lists every workspace, oldest first (global scope).
func (s *Store) AllWorkspaces(ctx context.Context) ([]tenancy.Workspace, error) {
	var ws []tenancy.Workspace
	err := s.readGlobal(ctx, "all workspaces", func(x querier) (err error) {
		ws, err = queryAll(ctx, s, x, scanWorkspace, `SELECT `+workspaceColumns+` FROM workspaces ORDER BY created_at, id`)
		return err
	})
	return ws, err
}

// WorkspacesOf lists the workspaces the user is an active member of, by
// name (global scope: the user's workspaces are what is being found).
func (s *Store) WorkspacesOf(ctx context.Context, userID string) ([]tenancy.Workspace, error) {
	var ws []tenancy.Workspace
	err := s.readGlobal(ctx, "workspaces of", func(x querier) (err error) {
		ws, err = queryAll(ctx, s, x, scanWorkspace, `SELECT w.id, w.name, w.created_by, w.created_at, w.updated_at
			FROM workspaces w JOIN members m ON m.workspace_id = w.id
			WHERE m.user_id = ? AND m.active = ? ORDER BY w.name, w.id`, userID, true)
		return err
	})
	return ws, err
}

// --- members ---

const memberSelect = `SELECT m.workspace_id, m.user_id, u.email, u.totp_enabled, m.joined_at, m.last_active_at,
	m.scim_external_id, m.active FROM members m JOIN users u ON u.id = m.user_id`

func scanMember(r rowScanner) (tenancy.Member, error) {
	var m tenancy.Member
	var joined int64
	var lastActive sql.NullInt64
	err := r.Scan(&m.WorkspaceID, &m.UserID, &m.Email, &m.MFAEnabled, &joined, &lastActive, &m.SCIMExternal, &m.Active)
	m.JoinedAt, m.LastActiveAt = timeOf(joined), fromMicros(lastActive)
	return m, err
}

// Member returns the membership with its roles (sorted); fault.ErrNotFound
// if the user is not a member.
func (s *Store) Member(ctx context.Context, workspaceID, userID string) (*tenancy.Member, error) {
	var m tenancy.Member
	err := s.readWorkspace(ctx, "member", workspaceID, func(x querier) (err error) {
		m, err = scanMember(x.QueryRowContext(ctx, s.q(memberSelect+` WHERE m.workspace_id = ? AND m.user_id = ?`), workspaceID, userID))
		if err != nil {
			return err
		}
		m.Roles, err = queryAll(ctx, s, x, func(r rowScanner) (id string, err error) {
			err = r.Scan(&id)
			return id, err
		}, `SELECT role_id FROM member_roles WHERE workspace_id = ? AND user_id = ? ORDER BY role_id`, workspaceID, userID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// ListMembers returns the workspace's members by email, with their roles.
func (s *Store) ListMembers(ctx context.Context, workspaceID string) ([]tenancy.Member, error) {
	var ms []tenancy.Member
	err := s.readWorkspace(ctx, "list members", workspaceID, func(x querier) (err error) {
		ms, err = queryAll(ctx, s, x, scanMember, memberSelect+` WHERE m.workspace_id = ? ORDER BY u.email, m.user_id`, workspaceID)
		if err != nil {
			return err
		}
		type pair struct{ user, role string }
		pairs, err := queryAll(ctx, s, x, func(r rowScanner) (p pair, err error) {
			err = r.Scan(&p.user, &p.role)
			return p, err
		}, `SELECT user_id, role_id FROM member_roles WHERE workspace_id = ? ORDER BY user_id, role_id`, workspaceID)
		if err != nil {
			return err
		}
		roles := make(map[string][]string, len(ms))
		for _, p := range pairs {
			roles[p.user] = append(roles[p.user], p.role)
		}
		for i := range ms {
			ms[i].Roles = roles[ms[i].UserID]
		}
		return nil
	})
	return ms, err
}

// AddMember inserts a member with its roles; Active is stored as given. A
// zero JoinedAt is stamped and written back. fault.Conflict if the user is
// already a member, fault.NotFound if the user or workspace is gone.
func (s *Store) AddMember(ctx context.Context, m *tenancy.Member) error {
	if m.WorkspaceID == "" || m.UserID == "" {
		return fault.Invalidf("invalid_member", "a member needs a workspace and a user")
	}
	if m.JoinedAt.IsZero() {
		m.JoinedAt = s.now().UTC()
	}
	return s.withWorkspaceTx(ctx, "add member", m.WorkspaceID, func(tx *sql.Tx) error {
		if err := s.lockWorkspace(ctx, tx, m.WorkspaceID); err != nil {
			return err
		}
		return s.insertMember(ctx, tx, m)
	})
}

func (s *Store) insertMember(ctx context.Context, tx *sql.Tx, m *tenancy.Member) error {
	roles, err := normalizeRoles(m.Roles)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, "add member", `INSERT INTO members
		(workspace_id, user_id, joined_at, last_active_at, scim_external_id, active) VALUES (?, ?, ?, ?, ?, ?)`,
		m.WorkspaceID, m.UserID, m.JoinedAt.UnixMicro(), micros(m.LastActiveAt), m.SCIMExternal, m.Active); err != nil {
		return err
	}
	return s.insertRoles(ctx, tx, m.WorkspaceID, m.UserID, roles)
}

func (s *Store) insertRoles(ctx context.Context, tx *sql.Tx, ws, userID string, roles []string) error {
	for _, r := range roles {
		if _, err := s.exec(ctx, tx, "set member roles",
			`INSERT INTO member_roles (workspace_id, user_id, role_id) VALUES (?, ?, ?)`, ws, userID, r); err != nil {
			return err
		}
	}
	return nil
}

// memberState reports whether the member is active and holds Admin;
// fault.ErrNotFound if not a member.
func (s *Store) memberState(ctx context.Context, tx *sql.Tx, ws, userID string) (active, admin bool, err error) {
	var admins int
	err = tx.QueryRowContext(ctx, s.q(`SELECT m.active,
			(SELECT COUNT(*) FROM member_roles r WHERE r.workspace_id = m.workspace_id AND r.user_id = m.user_id AND r.role_id = ?)
		FROM members m WHERE m.workspace_id = ? AND m.user_id = ?`), tenancy.RoleAdmin, ws, userID).Scan(&active, &admins)
	return active, admins > 0, err
}

// guardLastAdmin fails with Conflict "last_admin" unless an active Admin
// other than userID remains. Callers hold lockWorkspace, so the count
// cannot go stale before their write commits.
func (s *Store) guardLastAdmin(ctx context.Context, tx *sql.Tx, ws, userID string) error {
	var others int
	err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM members m
		JOIN member_roles r ON r.workspace_id = m.workspace_id AND r.user_id = m.user_id
		WHERE m.workspace_id = ? AND m.active = ? AND r.role_id = ? AND m.user_id <> ?`),
		ws, true, tenancy.RoleAdmin, userID).Scan(&others)
	if err != nil {
		return err
	}
	if others == 0 {
		return fault.Conflictf("last_admin", "the workspace must keep at least one active admin")
	}
	return nil
}

// SetMemberRoles replaces the member's roles. With guardAdmin, taking
// Admin from the last active Admin fails with Conflict "last_admin".
func (s *Store) SetMemberRoles(ctx context.Context, workspaceID, userID string, roles []string, guardAdmin bool) error {
	roles, err := normalizeRoles(roles)
	if err != nil {
		return err
	}
	return s.withWorkspaceTx(ctx, "set member roles", workspaceID, func(tx *sql.Tx) error {
		if err := s.lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		active, admin, err := s.memberState(ctx, tx, workspaceID, userID)
		if err != nil {
			return err
		}
		if guardAdmin && active && admin && !slices.Contains(roles, tenancy.RoleAdmin) {
			if err := s.guardLastAdmin(ctx, tx, workspaceID, userID); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, "set member roles",
			`DELETE FROM member_roles WHERE workspace_id = ? AND user_id = ?`, workspaceID, userID); err != nil {
			return err
		}
		return s.insertRoles(ctx, tx, workspaceID, userID, roles)
	})
}

// SetMemberActive sets the SCIM active flag; deactivating the last active
// Admin fails with Conflict "last_admin".
func (s *Store) SetMemberActive(ctx context.Context, workspaceID, userID string, active bool) error {
	return s.withWorkspaceTx(ctx, "set member active", workspaceID, func(tx *sql.Tx) error {
		if err := s.lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		wasActive, admin, err := s.memberState(ctx, tx, workspaceID, userID)
		if err != nil {
			return err
		}
		if wasActive && admin && !active {
			if err := s.guardLastAdmin(ctx, tx, workspaceID, userID); err != nil {
				return err
			}
		}
		_, err = s.exec(ctx, tx, "set member active",
			`UPDATE members SET active = ? WHERE workspace_id = ? AND user_id = ?`, active, workspaceID, userID)
		return err
	})
}

// SetMemberExternalID records the member's SCIM externalId.
func (s *Store) SetMemberExternalID(ctx context.Context, workspaceID, userID, externalID string) error {
	return s.withWorkspaceTx(ctx, "set member external id", workspaceID, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "set member external id",
			`UPDATE members SET scim_external_id = ? WHERE workspace_id = ? AND user_id = ?`, externalID, workspaceID, userID)
		if err == nil && n == 0 {
			err = fault.ErrNotFound
		}
		return err
	})
}

// RemoveMember deletes the membership (its roles follow by cascade);
// removing the last active Admin fails with Conflict "last_admin".
func (s *Store) RemoveMember(ctx context.Context, workspaceID, userID string) error {
	return s.withWorkspaceTx(ctx, "remove member", workspaceID, func(tx *sql.Tx) error {
		if err := s.lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		active, admin, err := s.memberState(ctx, tx, workspaceID, userID)
		if err != nil {
			return err
		}
		if active && admin {
			if err := s.guardLastAdmin(ctx, tx, workspaceID, userID); err != nil {
				return err
			}
		}
		_, err = s.exec(ctx, tx, "remove member", `DELETE FROM members WHERE workspace_id = ? AND user_id = ?`, workspaceID, userID)
		return err
	})
}

// TouchMember records the member's last use of the workspace. It only
// moves the time forward, and is a no-op for a non-member: activity
// tracking must never fail the request it observes.
func (s *Store) TouchMember(ctx context.Context, workspaceID, userID string, at time.Time) error {
	return s.withWorkspaceTx(ctx, "touch member", workspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "touch member", `UPDATE members SET last_active_at = ?
			WHERE workspace_id = ? AND user_id = ? AND (last_active_at IS NULL OR last_active_at < ?)`,
			at.UnixMicro(), workspaceID, userID, at.UnixMicro())
		return err
	})
}

// --- roles ---

const roleColumns = `workspace_id, id, name, description, permissions, created_at`

func scanRole(r rowScanner) (tenancy.Role, error) {
	var ro tenancy.Role
	var perms string
	var created int64
	if err := r.Scan(&ro.WorkspaceID, &ro.ID, &ro.Name, &ro.Description, &perms, &created); err != nil {
		return ro, err
	}
	ro.CreatedAt = timeOf(created)
	var err error
	ro.Permissions, err = decodeList(perms)
	return ro, err
}

func isBuiltInRole(id string) bool {
	return id == tenancy.RoleAdmin || id == tenancy.RoleEditor || id == tenancy.RoleReadOnly
}

// CreateRole inserts a custom role. An empty ID is generated and a zero
// CreatedAt stamped, and written back. A built-in id is refused; a name
// taken in the workspace is fault.Conflict.
func (s *Store) CreateRole(ctx context.Context, r *tenancy.Role) error {
	if r.WorkspaceID == "" || r.Name == "" {
		return fault.Invalidf("invalid_role", "a role needs a workspace and a name")
	}
	if isBuiltInRole(r.ID) {
		return fault.Invalidf("reserved_role_id", "built-in roles cannot be created")
	}
	if r.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		r.ID = id
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now().UTC()
	}
	r.BuiltIn = false
	return s.withWorkspaceTx(ctx, "create role", r.WorkspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create role", `INSERT INTO roles (`+roleColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			r.WorkspaceID, r.ID, r.Name, r.Description, encodeList(r.Permissions), r.CreatedAt.UnixMicro())
		return err
	})
}

// Role returns a custom role; fault.ErrNotFound for built-ins and unknown ids.
func (s *Store) Role(ctx context.Context, workspaceID, id string) (*tenancy.Role, error) {
	var r tenancy.Role
	err := s.readWorkspace(ctx, "role", workspaceID, func(x querier) (err error) {
		r, err = scanRole(x.QueryRowContext(ctx, s.q(`SELECT `+roleColumns+` FROM roles WHERE workspace_id = ? AND id = ?`), workspaceID, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// ListRoles returns the workspace's custom roles by name (built-ins live in
// code).
func (s *Store) ListRoles(ctx context.Context, workspaceID string) ([]tenancy.Role, error) {
	var rs []tenancy.Role
	err := s.readWorkspace(ctx, "list roles", workspaceID, func(x querier) (err error) {
		rs, err = queryAll(ctx, s, x, scanRole, `SELECT `+roleColumns+` FROM roles WHERE workspace_id = ? ORDER BY name, id`, workspaceID)
		return err
	})
	return rs, err
}

// UpdateRole replaces a custom role's name, description and permissions.
func (s *Store) UpdateRole(ctx context.Context, r *tenancy.Role) error {
	if r.Name == "" {
		return fault.Invalidf("invalid_role", "a role needs a name")
	}
	return s.withWorkspaceTx(ctx, "update role", r.WorkspaceID, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "update role", `UPDATE roles SET name = ?, description = ?, permissions = ?
			WHERE workspace_id = ? AND id = ?`, r.Name, r.Description, encodeList(r.Permissions), r.WorkspaceID, r.ID)
		if err == nil && n == 0 {
			err = fault.ErrNotFound
		}
		return err
	})
}

// DeleteRole removes a custom role; Conflict "role_in_use" while a member
// holds it. The workspace lock keeps a concurrent assignment from slipping
// in between the check and the delete.
func (s *Store) DeleteRole(ctx context.Context, workspaceID, id string) error {
	return s.withWorkspaceTx(ctx, "delete role", workspaceID, func(tx *sql.Tx) error {
		if err := s.lockWorkspace(ctx, tx, workspaceID); err != nil {
			return err
		}
		found, err := s.exists(ctx, tx, "delete role", `SELECT 1 FROM roles WHERE workspace_id = ? AND id = ?`, workspaceID, id)
		if err != nil {
			return err
		}
		if !found {
			return fault.ErrNotFound
		}
		used, err := s.exists(ctx, tx, "delete role",
			`SELECT 1 FROM member_roles WHERE workspace_id = ? AND role_id = ? LIMIT 1`, workspaceID, id)
		if err != nil {
			return err
		}
		if used {
			return fault.Conflictf("role_in_use", "members still hold this role")
		}
		_, err = s.exec(ctx, tx, "delete role", `DELETE FROM roles WHERE workspace_id = ? AND id = ?`, workspaceID, id)
		return err
	})
}

// --- invitations ---

const invitationColumns = `id, workspace_id, email, role_id, invited_by, token_hash, created_at, expires_at,
	accepted_at, declined_at, revoked_at`

func scanInvitation(r rowScanner) (tenancy.Invitation, error) {
	var inv tenancy.Invitation
	var created, expires int64
	var accepted, declined, revoked sql.NullInt64
	err := r.Scan(&inv.ID, &inv.WorkspaceID, &inv.Email, &inv.RoleID, &inv.InvitedBy, &inv.TokenHash,
		&created, &expires, &accepted, &declined, &revoked)
	inv.CreatedAt, inv.ExpiresAt = timeOf(created), timeOf(expires)
	inv.AcceptedAt, inv.DeclinedAt, inv.RevokedAt = fromMicros(accepted), fromMicros(declined), fromMicros(revoked)
	return inv, err
}

// CreateInvitation stores a pending invitation. An empty ID is generated
// and a zero CreatedAt stamped, and written back. A reused token hash is
// fault.Conflict.
func (s *Store) CreateInvitation(ctx context.Context, inv *tenancy.Invitation) error {
	if inv.WorkspaceID == "" || inv.Email == "" || inv.RoleID == "" || len(inv.TokenHash) == 0 || inv.ExpiresAt.IsZero() {
		return fault.Invalidf("invalid_invitation", "an invitation needs a workspace, an email, a role, a token hash and an expiry")
	}
	if inv.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		inv.ID = id
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = s.now().UTC()
	}
	return s.withWorkspaceTx(ctx, "create invitation", inv.WorkspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create invitation", `INSERT INTO invitations (`+invitationColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			inv.ID, inv.WorkspaceID, inv.Email, inv.RoleID, inv.InvitedBy, inv.TokenHash, inv.CreatedAt.UnixMicro(),
			inv.ExpiresAt.UnixMicro(), micros(inv.AcceptedAt), micros(inv.DeclinedAt), micros(inv.RevokedAt))
		return err
	})
}

// InvitationByTokenHash finds an invitation in any state across workspaces
// (global scope: the invitee holds only the token).
func (s *Store) InvitationByTokenHash(ctx context.Context, hash []byte) (*tenancy.Invitation, error) {
	if len(hash) == 0 {
		return nil, fault.ErrNotFound
	}
	var inv tenancy.Invitation
	err := s.readGlobal(ctx, "invitation by token hash", func(x querier) (err error) {
		inv, err = scanInvitation(x.QueryRowContext(ctx, s.q(`SELECT `+invitationColumns+` FROM invitations WHERE token_hash = ?`), hash))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &inv, nil
}

// ListInvitations returns the workspace's invitations in every state,
// newest first.
func (s *Store) ListInvitations(ctx context.Context, workspaceID string) ([]tenancy.Invitation, error) {
	var invs []tenancy.Invitation
	err := s.readWorkspace(ctx, "list invitations", workspaceID, func(x querier) (err error) {
		invs, err = queryAll(ctx, s, x, scanInvitation, `SELECT `+invitationColumns+` FROM invitations
			WHERE workspace_id = ? ORDER BY created_at DESC, id`, workspaceID)
		return err
	})
	return invs, err
}

const invitationPending = `accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL`

// AcceptInvitation marks a pending, unexpired invitation accepted and makes
// userID an active member with its role, in one transaction; a user who is
// already a member keeps their roles and the invitation is just marked.
// fault.ErrNotFound if the invitation is unknown, closed or expired. The
// transaction finds the invitation's workspace with the global scope, then
// narrows to that workspace before any write.
func (s *Store) AcceptInvitation(ctx context.Context, id string, userID string, now time.Time) (*tenancy.Invitation, error) {
	var inv tenancy.Invitation
	err := s.withGlobalTx(ctx, "accept invitation", func(tx *sql.Tx) error {
		var ws string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT workspace_id FROM invitations WHERE id = ?`), id).Scan(&ws); err != nil {
			return err
		}
		if err := s.rescope(ctx, tx, ws); err != nil {
			return err
		}
		if err := s.lockWorkspace(ctx, tx, ws); err != nil {
			return err
		}
		var err error
		inv, err = scanInvitation(tx.QueryRowContext(ctx, s.q(`UPDATE invitations SET accepted_at = ?
			WHERE id = ? AND workspace_id = ? AND `+invitationPending+` AND expires_at > ?
			RETURNING `+invitationColumns), now.UnixMicro(), id, ws, now.UnixMicro()))
		if err != nil {
			return err
		}
		member, err := s.exists(ctx, tx, "accept invitation",
			`SELECT 1 FROM members WHERE workspace_id = ? AND user_id = ?`, ws, userID)
		if err != nil || member {
			return err
		}
		return s.insertMember(ctx, tx, &tenancy.Member{
			WorkspaceID: ws, UserID: userID, Roles: []string{inv.RoleID}, JoinedAt: now, Active: true,
		})
	})
	if err != nil {
		return nil, err
	}
	return &inv, nil
}

// CloseInvitation marks a pending invitation "declined" or "revoked";
// fault.ErrNotFound if it is not pending.
func (s *Store) CloseInvitation(ctx context.Context, workspaceID, id, how string, now time.Time) error {
	var column string
	switch how {
	case "declined":
		column = "declined_at"
	case "revoked":
		column = "revoked_at"
	default:
		return fault.Invalidf("invalid_close", "an invitation is closed as declined or revoked")
	}
	return s.withWorkspaceTx(ctx, "close invitation", workspaceID, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "close invitation", `UPDATE invitations SET `+column+` = ?
			WHERE workspace_id = ? AND id = ? AND `+invitationPending, now.UnixMicro(), workspaceID, id)
		if err == nil && n == 0 {
			err = fault.ErrNotFound
		}
		return err
	})
}

// --- API keys ---

const apiKeyColumns = `id, workspace_id, name, created_by, secret_hash, permissions, created_at, expires_at,
	last_used_at, last_used_ip, revoked_at`

func scanAPIKey(r rowScanner) (tenancy.APIKey, error) {
	var k tenancy.APIKey
	var perms string
	var created, expires int64
	var used, revoked sql.NullInt64
	if err := r.Scan(&k.ID, &k.WorkspaceID, &k.Name, &k.CreatedBy, &k.SecretHash, &perms, &created, &expires,
		&used, &k.LastUsedIP, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt, k.ExpiresAt = timeOf(created), timeOf(expires)
	k.LastUsedAt, k.RevokedAt = fromMicros(used), fromMicros(revoked)
	var err error
	k.Permissions, err = decodeList(perms)
	return k, err
}

// CreateAPIKey stores a key. An empty ID is generated and a zero CreatedAt
// stamped, and written back. Every key needs an expiry (SES-5).
func (s *Store) CreateAPIKey(ctx context.Context, k *tenancy.APIKey) error {
	if k.WorkspaceID == "" || len(k.SecretHash) == 0 || k.ExpiresAt.IsZero() {
		return fault.Invalidf("invalid_api_key", "an API key needs a workspace, a secret hash and an expiry")
	}
	if k.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		k.ID = id
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now().UTC()
	}
	return s.withWorkspaceTx(ctx, "create api key", k.WorkspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create api key", `INSERT INTO api_keys (`+apiKeyColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.WorkspaceID, k.Name, k.CreatedBy, k.SecretHash, encodeList(k.Permissions), k.CreatedAt.UnixMicro(),
			k.ExpiresAt.UnixMicro(), micros(k.LastUsedAt), k.LastUsedIP, micros(k.RevokedAt))
		return err
	})
}

// APIKeyByID finds a key across workspaces (global scope: the key text
// carries only its id).
func (s *Store) APIKeyByID(ctx context.Context, id string) (*tenancy.APIKey, error) {
	var k tenancy.APIKey
	err := s.readGlobal(ctx, "api key by id", func(x querier) (err error) {
		k, err = scanAPIKey(x.QueryRowContext(ctx, s.q(`SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// ListAPIKeys returns the workspace's keys, revoked ones included, newest
// first.
func (s *Store) ListAPIKeys(ctx context.Context, workspaceID string) ([]tenancy.APIKey, error) {
	var ks []tenancy.APIKey
	err := s.readWorkspace(ctx, "list api keys", workspaceID, func(x querier) (err error) {
		ks, err = queryAll(ctx, s, x, scanAPIKey, `SELECT `+apiKeyColumns+` FROM api_keys
			WHERE workspace_id = ? ORDER BY created_at DESC, id`, workspaceID)
		return err
	})
	return ks, err
}

// revoke sets revoked_at on one row of table unless already set (the first
// revocation time stands); fault.ErrNotFound if the row is not the
// workspace's. table is one of this file's constants, never input.
func (s *Store) revoke(ctx context.Context, op, table, workspaceID, id string, now time.Time) error {
	return s.withWorkspaceTx(ctx, op, workspaceID, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, op, `UPDATE `+table+` SET revoked_at = ?
			WHERE workspace_id = ? AND id = ? AND revoked_at IS NULL`, now.UnixMicro(), workspaceID, id)
		if err != nil || n == 1 {
			return err
		}
		found, err := s.exists(ctx, tx, op, `SELECT 1 FROM `+table+` WHERE workspace_id = ? AND id = ?`, workspaceID, id)
		if err == nil && !found {
			err = fault.ErrNotFound
		}
		return err
	})
}

// RevokeAPIKey revokes a key; revoking a revoked key is a no-op.
func (s *Store) RevokeAPIKey(ctx context.Context, workspaceID, id string, now time.Time) error {
	return s.revoke(ctx, "revoke api key", "api_keys", workspaceID, id, now)
}

// RevokeUserAPIKeys revokes every unrevoked key the user created in the
// workspace and returns how many.
func (s *Store) RevokeUserAPIKeys(ctx context.Context, workspaceID, userID string, now time.Time) (int, error) {
	var n int64
	err := s.withWorkspaceTx(ctx, "revoke user api keys", workspaceID, func(tx *sql.Tx) (err error) {
		n, err = s.exec(ctx, tx, "revoke user api keys", `UPDATE api_keys SET revoked_at = ?
			WHERE workspace_id = ? AND created_by = ? AND revoked_at IS NULL`, now.UnixMicro(), workspaceID, userID)
		return err
	})
	return int(n), err
}

// apiKeyTouchEvery bounds how often a key's last use is written: keys
// authenticate every request, and a write per request would be the
// database's busiest work for a minute-grained answer.
const apiKeyTouchEvery = time.Minute

// TouchAPIKey records a use (time and address) unless one was recorded
// within the last minute; a no-op for unknown keys (global scope: the
// caller has only the key id).
func (s *Store) TouchAPIKey(ctx context.Context, id, ip string, now time.Time) error {
	return s.withGlobalTx(ctx, "touch api key", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "touch api key", `UPDATE api_keys SET last_used_at = ?, last_used_ip = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
			now.UnixMicro(), ip, id, now.Add(-apiKeyTouchEvery).UnixMicro())
		return err
	})
}

// --- SCIM tokens ---

const scimTokenColumns = `id, workspace_id, secret_hash, created_by, created_at, last_used_at, revoked_at`

func scanSCIMToken(r rowScanner) (tenancy.SCIMToken, error) {
	var t tenancy.SCIMToken
	var created int64
	var used, revoked sql.NullInt64
	err := r.Scan(&t.ID, &t.WorkspaceID, &t.SecretHash, &t.CreatedBy, &created, &used, &revoked)
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = timeOf(created), fromMicros(used), fromMicros(revoked)
	return t, err
}

// CreateSCIMToken stores a provisioning token. An empty ID is generated
// and a zero CreatedAt stamped, and written back.
func (s *Store) CreateSCIMToken(ctx context.Context, t *tenancy.SCIMToken) error {
	if t.WorkspaceID == "" || len(t.SecretHash) == 0 {
		return fault.Invalidf("invalid_scim_token", "a SCIM token needs a workspace and a secret hash")
	}
	if t.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		t.ID = id
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now().UTC()
	}
	return s.withWorkspaceTx(ctx, "create scim token", t.WorkspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create scim token", `INSERT INTO scim_tokens (`+scimTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.WorkspaceID, t.SecretHash, t.CreatedBy, t.CreatedAt.UnixMicro(), micros(t.LastUsedAt), micros(t.RevokedAt))
		return err
	})
}

// SCIMTokenByID finds a token across workspaces (global scope: the token
// text carries only its id).
func (s *Store) SCIMTokenByID(ctx context.Context, id string) (*tenancy.SCIMToken, error) {
	var t tenancy.SCIMToken
	err := s.readGlobal(ctx, "scim token by id", func(x querier) (err error) {
		t, err = scanSCIMToken(x.QueryRowContext(ctx, s.q(`SELECT `+scimTokenColumns+` FROM scim_tokens WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// ListSCIMTokens returns the workspace's tokens, revoked ones included,
// newest first.
func (s *Store) ListSCIMTokens(ctx context.Context, workspaceID string) ([]tenancy.SCIMToken, error) {
	var ts []tenancy.SCIMToken
	err := s.readWorkspace(ctx, "list scim tokens", workspaceID, func(x querier) (err error) {
		ts, err = queryAll(ctx, s, x, scanSCIMToken, `SELECT `+scimTokenColumns+` FROM scim_tokens
			WHERE workspace_id = ? ORDER BY created_at DESC, id`, workspaceID)
		return err
	})
	return ts, err
}

// RevokeSCIMToken revokes a token; revoking a revoked token is a no-op.
func (s *Store) RevokeSCIMToken(ctx context.Context, workspaceID, id string, now time.Time) error {
	return s.revoke(ctx, "revoke scim token", "scim_tokens", workspaceID, id, now)
}

// --- operators ---

const operatorSelect = `SELECT o.user_id, u.email, o.allowed_networks, o.created_at
	FROM operators o JOIN users u ON u.id = o.user_id`

func scanOperator(r rowScanner) (tenancy.Operator, error) {
	var o tenancy.Operator
	var networks string
	var created int64
	if err := r.Scan(&o.UserID, &o.Email, &networks, &created); err != nil {
		return o, err
	}
	o.CreatedAt = timeOf(created)
	var err error
	o.AllowedNetworks, err = decodeList(networks)
	return o, err
}

// CreateOperator marks an account as operator staff. A zero CreatedAt is
// stamped and written back. fault.Conflict if already one, fault.NotFound
// if the account does not exist.
func (s *Store) CreateOperator(ctx context.Context, o *tenancy.Operator) error {
	if o.UserID == "" {
		return fault.Invalidf("invalid_operator", "an operator needs a user")
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = s.now().UTC()
	}
	_, err := s.exec(ctx, s.db, "create operator", `INSERT INTO operators (user_id, allowed_networks, created_at) VALUES (?, ?, ?)`,
		o.UserID, encodeList(o.AllowedNetworks), o.CreatedAt.UnixMicro())
	return err
}

// Operator returns the operator with their account's email;
// fault.ErrNotFound if the user is not one.
func (s *Store) Operator(ctx context.Context, userID string) (*tenancy.Operator, error) {
	o, err := scanOperator(s.rdb.QueryRowContext(ctx, s.q(operatorSelect+` WHERE o.user_id = ?`), userID))
	if err != nil {
		return nil, s.fail("operator", err)
	}
	return &o, nil
}

// ListOperators returns every operator by email.
func (s *Store) ListOperators(ctx context.Context) ([]tenancy.Operator, error) {
	ops, err := queryAll(ctx, s, s.rdb, scanOperator, operatorSelect+` ORDER BY u.email, o.user_id`)
	return ops, s.fail("list operators", err)
}

// --- support grants and access ---

const supportGrantColumns = `id, workspace_id, operator_id, granted_by, scope, reason, created_at, expires_at, revoked_at`

func scanSupportGrant(r rowScanner) (tenancy.SupportGrant, error) {
	var g tenancy.SupportGrant
	var scope string
	var created, expires int64
	var revoked sql.NullInt64
	if err := r.Scan(&g.ID, &g.WorkspaceID, &g.OperatorID, &g.GrantedBy, &scope, &g.Reason, &created, &expires, &revoked); err != nil {
		return g, err
	}
	g.CreatedAt, g.ExpiresAt, g.RevokedAt = timeOf(created), timeOf(expires), fromMicros(revoked)
	var err error
	g.Scope, err = decodeList(scope)
	return g, err
}

// CreateSupportGrant stores a grant. An empty ID is generated and a zero
// CreatedAt stamped, and written back. Every grant needs an expiry.
func (s *Store) CreateSupportGrant(ctx context.Context, g *tenancy.SupportGrant) error {
	if g.WorkspaceID == "" || g.ExpiresAt.IsZero() {
		return fault.Invalidf("invalid_support_grant", "a support grant needs a workspace and an expiry")
	}
	if g.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		g.ID = id
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = s.now().UTC()
	}
	return s.withWorkspaceTx(ctx, "create support grant", g.WorkspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create support grant", `INSERT INTO support_grants (`+supportGrantColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.WorkspaceID, g.OperatorID, g.GrantedBy, encodeList(g.Scope), g.Reason, g.CreatedAt.UnixMicro(),
			g.ExpiresAt.UnixMicro(), micros(g.RevokedAt))
		return err
	})
}

// ListSupportGrants returns the workspace's grants in every state, newest
// first.
func (s *Store) ListSupportGrants(ctx context.Context, workspaceID string) ([]tenancy.SupportGrant, error) {
	var gs []tenancy.SupportGrant
	err := s.readWorkspace(ctx, "list support grants", workspaceID, func(x querier) (err error) {
		gs, err = queryAll(ctx, s, x, scanSupportGrant, `SELECT `+supportGrantColumns+` FROM support_grants
			WHERE workspace_id = ? ORDER BY created_at DESC, id`, workspaceID)
		return err
	})
	return gs, err
}

// ActiveSupportGrant returns an unrevoked grant, unexpired at now, naming
// the operator or any operator (OperatorID ""); a grant naming the
// operator is preferred, then the one expiring last. fault.ErrNotFound if
// none, or if operatorID is empty.
func (s *Store) ActiveSupportGrant(ctx context.Context, workspaceID, operatorID string, now time.Time) (*tenancy.SupportGrant, error) {
	if operatorID == "" {
		return nil, fault.ErrNotFound
	}
	var g tenancy.SupportGrant
	err := s.readWorkspace(ctx, "active support grant", workspaceID, func(x querier) (err error) {
		g, err = scanSupportGrant(x.QueryRowContext(ctx, s.q(`SELECT `+supportGrantColumns+` FROM support_grants
			WHERE workspace_id = ? AND revoked_at IS NULL AND expires_at > ? AND (operator_id = ? OR operator_id = '')
			ORDER BY CASE WHEN operator_id = '' THEN 1 ELSE 0 END, expires_at DESC, id LIMIT 1`),
			workspaceID, now.UnixMicro(), operatorID))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// RevokeSupportGrant revokes a grant; revoking a revoked grant is a no-op.
func (s *Store) RevokeSupportGrant(ctx context.Context, workspaceID, id string, now time.Time) error {
	return s.revoke(ctx, "revoke support grant", "support_grants", workspaceID, id, now)
}

// RecordSupportAccess stores one operator access. An empty ID is generated
// and a zero At stamped, and written back.
func (s *Store) RecordSupportAccess(ctx context.Context, a *tenancy.SupportAccess) error {
	if a.WorkspaceID == "" || a.OperatorID == "" {
		return fault.Invalidf("invalid_support_access", "a support access needs a workspace and an operator")
	}
	if a.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		a.ID = id
	}
	if a.At.IsZero() {
		a.At = s.now().UTC()
	}
	return s.withWorkspaceTx(ctx, "record support access", a.WorkspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "record support access", `INSERT INTO support_access
			(id, workspace_id, operator_id, grant_id, break_glass, reason, action, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.WorkspaceID, a.OperatorID, a.GrantID, a.BreakGlass, a.Reason, a.Action, a.At.UnixMicro())
		return err
	})
}

// ListSupportAccess returns the operator accesses to the workspace, newest
// first.
func (s *Store) ListSupportAccess(ctx context.Context, workspaceID string) ([]tenancy.SupportAccess, error) {
	var as []tenancy.SupportAccess
	err := s.readWorkspace(ctx, "list support access", workspaceID, func(x querier) (err error) {
		as, err = queryAll(ctx, s, x, func(r rowScanner) (tenancy.SupportAccess, error) {
			var a tenancy.SupportAccess
			var when int64
			err := r.Scan(&a.ID, &a.WorkspaceID, &a.OperatorID, &a.GrantID, &a.BreakGlass, &a.Reason, &a.Action, &when)
			a.At = timeOf(when)
			return a, err
		}, `SELECT id, workspace_id, operator_id, grant_id, break_glass, reason, action, at FROM support_access
			WHERE workspace_id = ? ORDER BY at DESC, id`, workspaceID)
		return err
	})
	return as, err
}

// --- access reviews ---

// reviewDecision is the stored form of a tenancy.ReviewDecision, with its
// own names so renaming a Go field cannot orphan recorded reviews.
type reviewDecision struct {
	UserID   string   `json:"user_id"`
	Decision string   `json:"decision"`
	Roles    []string `json:"roles,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// CreateAccessReview records a signed-off review. An empty ID is generated
// and a zero CreatedAt stamped, and written back.
func (s *Store) CreateAccessReview(ctx context.Context, r *tenancy.AccessReview) error {
	if r.WorkspaceID == "" || r.ReviewerID == "" {
		return fault.Invalidf("invalid_access_review", "an access review needs a workspace and a reviewer")
	}
	ds := make([]reviewDecision, len(r.Decisions))
	for i, d := range r.Decisions {
		ds[i] = reviewDecision{UserID: d.UserID, Decision: d.Decision, Roles: d.Roles, Note: d.Note}
	}
	b, err := json.Marshal(ds)
	if err != nil {
		return fault.Wrap(fault.Internal, "internal", "cannot encode review decisions", err)
	}
	if r.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		r.ID = id
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now().UTC()
	}
	return s.withWorkspaceTx(ctx, "create access review", r.WorkspaceID, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create access review", `INSERT INTO access_reviews
			(id, workspace_id, reviewer_id, decisions, created_at) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.WorkspaceID, r.ReviewerID, string(b), r.CreatedAt.UnixMicro())
		return err
	})
}

// ListAccessReviews returns the workspace's reviews, newest first.
func (s *Store) ListAccessReviews(ctx context.Context, workspaceID string) ([]tenancy.AccessReview, error) {
	var rs []tenancy.AccessReview
	err := s.readWorkspace(ctx, "list access reviews", workspaceID, func(x querier) (err error) {
		rs, err = queryAll(ctx, s, x, func(row rowScanner) (tenancy.AccessReview, error) {
			var r tenancy.AccessReview
			var decisions string
			var created int64
			if err := row.Scan(&r.ID, &r.WorkspaceID, &r.ReviewerID, &decisions, &created); err != nil {
				return r, err
			}
			r.CreatedAt = timeOf(created)
			var ds []reviewDecision
			if err := json.Unmarshal([]byte(decisions), &ds); err != nil {
				return r, fault.Wrap(fault.Internal, "internal", "cannot decode review decisions", err)
			}
			for _, d := range ds {
				r.Decisions = append(r.Decisions, tenancy.ReviewDecision{UserID: d.UserID, Decision: d.Decision, Roles: d.Roles, Note: d.Note})
			}
			return r, nil
		}, `SELECT id, workspace_id, reviewer_id, decisions, created_at FROM access_reviews
			WHERE workspace_id = ? ORDER BY created_at DESC, id`, workspaceID)
		return err
	})
	return rs, err
}
