package tenancy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	rmail "github.com/rampartsec/rampart/internal/mail"
)

// KindInvitation is the mail kind of an invitation.
const KindInvitation = "invitation"

var (
	errMemberNotFound     = fault.New(fault.NotFound, "member_not_found", "no such member")
	errRoleNotFound       = fault.New(fault.NotFound, "role_not_found", "no such role")
	errInvitationInvalid  = fault.New(fault.Invalid, "invitation_invalid", "this invitation is invalid, expired or already used")
	errLastAdmin          = fault.New(fault.Conflict, "last_admin", "a workspace needs at least one active Admin")
	errAlreadyMember      = fault.New(fault.Conflict, "already_member", "this person is already a member")
	errScopeExceedsCaller = fault.New(fault.Forbidden, "scope_exceeds_caller", "you cannot grant permissions you do not hold")
	errBuiltinRole        = fault.New(fault.Invalid, "builtin_role", "built-in roles cannot be changed")
)

// mapNotFound replaces a store NotFound with the caller's error.
func mapNotFound(err, nf error) error {
	if fault.Is(err, fault.NotFound) {
		return nf
	}
	return err
}

// mapLastAdmin gives the last-Admin refusal one stable shape.
func mapLastAdmin(err error) error {
	if fault.Is(err, fault.Conflict) && fault.As(err).Code == "last_admin" {
		return errLastAdmin
	}
	return err
}

// --- Workspaces ---

// CreateWorkspace creates a workspace with the signed-in user as its Admin.
func (s *Service) CreateWorkspace(ctx context.Context, p Principal, name string) (*Workspace, error) {
	if err := requireUser(&p); err != nil {
		return nil, err
	}
	name, err := cleanName(name, 100, "workspace_name_invalid")
	if err != nil {
		return nil, err
	}
	id, err := s.randomID()
	if err != nil {
		return nil, err
	}
	now := s.d.Now().UTC()
	w := &Workspace{ID: id, Name: name, CreatedBy: p.UserID, CreatedAt: now, UpdatedAt: now}
	creator := Member{WorkspaceID: id, UserID: p.UserID, Roles: []string{RoleAdmin}, JoinedAt: now, LastActiveAt: now, Active: true}
	if err := s.d.Store.CreateWorkspace(ctx, w, creator); err != nil {
		return nil, err
	}
	s.invalidate(id)
	if err := s.recordBy(ctx, &p, id, "workspace.create", "workspace:"+id, nil); err != nil {
		return nil, err
	}
	return w, nil
}

// Workspaces lists the workspaces the signed-in user is an active member of.
func (s *Service) Workspaces(ctx context.Context, p Principal) ([]Workspace, error) {
	if err := requireUser(&p); err != nil {
		return nil, err
	}
	return s.d.Store.WorkspacesOf(ctx, p.UserID)
}

// Workspace returns a workspace the principal may read.
func (s *Service) Workspace(ctx context.Context, p Principal, id string) (*Workspace, error) {
	if err := s.Require(ctx, p, id, PermWorkspaceRead); err != nil {
		return nil, err
	}
	w, err := s.d.Store.Workspace(ctx, id)
	return w, mapNotFound(err, errWorkspaceNotFound)
}

// RenameWorkspace changes the workspace's display name.
func (s *Service) RenameWorkspace(ctx context.Context, p Principal, id, name string) error {
	if err := s.Require(ctx, p, id, PermWorkspaceManage); err != nil {
		return err
	}
	name, err := cleanName(name, 100, "workspace_name_invalid")
	if err != nil {
		return err
	}
	if err := s.d.Store.RenameWorkspace(ctx, id, name, s.d.Now().UTC()); err != nil {
		return mapNotFound(err, errWorkspaceNotFound)
	}
	return s.recordBy(ctx, &p, id, "workspace.rename", "workspace:"+id, nil)
}

// DeleteWorkspace deletes the workspace and everything in it. confirm must
// be the workspace's name, so a stray request cannot do it; the vault hook
// runs first so the data is unreadable even where rows linger (backups).
func (s *Service) DeleteWorkspace(ctx context.Context, p Principal, id, confirm string) error {
	if err := s.Require(ctx, p, id, PermWorkspaceDelete); err != nil {
		return err
	}
	w, err := s.d.Store.Workspace(ctx, id)
	if err != nil {
		return mapNotFound(err, errWorkspaceNotFound)
	}
	if confirm != w.Name {
		return fault.Invalidf("confirmation_mismatch", "type the workspace's name to confirm")
	}
	if s.d.OnWorkspaceDelete != nil {
		if err := s.d.OnWorkspaceDelete(ctx, id); err != nil {
			return err
		}
	}
	if err := s.d.Store.DeleteWorkspace(ctx, id); err != nil {
		return mapNotFound(err, errWorkspaceNotFound)
	}
	s.invalidate(id)
	return s.recordBy(ctx, &p, id, "workspace.delete", "workspace:"+id, nil)
}

// --- Members ---

// Members lists the workspace's members.
func (s *Service) Members(ctx context.Context, p Principal, ws string) ([]Member, error) {
	if err := s.Require(ctx, p, ws, PermMembersRead); err != nil {
		return nil, err
	}
	return s.d.Store.ListMembers(ctx, ws)
}

// normRoles sorts and de-duplicates role ids and checks their number.
func normRoles(roles []string) ([]string, error) {
	out := slices.Clone(roles)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 || len(out) > 20 {
		return nil, fault.Invalidf("roles_invalid", "give 1 to 20 roles")
	}
	return out, nil
}

// rolesPerms checks that every role exists in ws and returns the union of
// their permissions. It reads the store, not the cache: it serves changes.
func (s *Service) rolesPerms(ctx context.Context, ws string, roles []string) ([]string, error) {
	cat, err := s.loadCatalog(ctx, s.d.Now())
	if err != nil {
		return nil, err
	}
	var custom map[string][]string
	var out []string
	for _, r := range roles {
		if list, ok := cat.builtin[r]; ok {
			out = append(out, list...)
			continue
		}
		if custom == nil {
			list, err := s.d.Store.ListRoles(ctx, ws)
			if err != nil {
				return nil, err
			}
			custom = make(map[string][]string, len(list))
			for _, ro := range list {
				custom[ro.ID] = ro.Permissions
			}
		}
		list, ok := custom[r]
		if !ok {
			return nil, fault.Invalidf("unknown_role", "a role in the list does not exist in this workspace")
		}
		out = append(out, list...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// mayGrant refuses to hand out permissions the acting principal does not
// hold itself, so members.manage or roles.manage alone cannot be used to
// climb to Admin.
func (s *Service) mayGrant(ctx context.Context, p *Principal, ws string, perms []string) error {
	have, err := s.effective(ctx, p, ws)
	if err != nil {
		return err
	}
	if !subsetOf(perms, have) {
		return errScopeExceedsCaller
	}
	return nil
}

// SetMemberRoles replaces a member's roles.
func (s *Service) SetMemberRoles(ctx context.Context, p Principal, ws, userID string, roles []string) error {
	if err := s.Require(ctx, p, ws, PermMembersManage); err != nil {
		return err
	}
	roles, err := normRoles(roles)
	if err != nil {
		return err
	}
	perms, err := s.rolesPerms(ctx, ws, roles)
	if err != nil {
		return err
	}
	if err := s.mayGrant(ctx, &p, ws, perms); err != nil {
		return err
	}
	if err := s.d.Store.SetMemberRoles(ctx, ws, userID, roles, true); err != nil {
		return mapLastAdmin(mapNotFound(err, errMemberNotFound))
	}
	s.invalidate(ws)
	return s.recordBy(ctx, &p, ws, "member.role_change", "user:"+userID, map[string]string{"roles": strings.Join(roles, ",")})
}

// RemoveMember ends a membership (members.manage, or leaving oneself) and
// revokes the member's API keys in the workspace.
func (s *Service) RemoveMember(ctx context.Context, p Principal, ws, userID string) error {
	self := p.APIKey == nil && p.OperatorID == "" && p.UserID != "" && p.UserID == userID
	if self {
		if _, reason := s.subject(ctx, &p, ws, s.d.Now()); reason != "" {
			return denialError(reason)
		}
	} else if err := s.Require(ctx, p, ws, PermMembersManage); err != nil {
		return err
	}
	if err := s.d.Store.RemoveMember(ctx, ws, userID); err != nil {
		return mapLastAdmin(mapNotFound(err, errMemberNotFound))
	}
	s.invalidate(ws)
	n, err := s.d.Store.RevokeUserAPIKeys(ctx, ws, userID, s.d.Now().UTC())
	if err != nil {
		return err
	}
	s.invalidate(ws)
	return s.recordBy(ctx, &p, ws, "member.remove", "user:"+userID, map[string]string{"api_keys_revoked": strconv.Itoa(n)})
}

// --- Invitations ---

// Invite invites an address with a role and mails it a single-use link.
func (s *Service) Invite(ctx context.Context, p Principal, ws, email, roleID string) (*Invitation, error) {
	if err := s.Require(ctx, p, ws, PermMembersManage); err != nil {
		return nil, err
	}
	email, err := identity.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	perms, err := s.rolesPerms(ctx, ws, []string{roleID})
	if err != nil {
		return nil, err
	}
	if err := s.mayGrant(ctx, &p, ws, perms); err != nil {
		return nil, err
	}
	if u, err := s.d.Accounts.UserByEmail(ctx, email); err == nil {
		if _, err := s.d.Store.Member(ctx, ws, u.ID); err == nil {
			return nil, errAlreadyMember
		} else if !fault.Is(err, fault.NotFound) {
			return nil, err
		}
	} else if !fault.Is(err, fault.NotFound) {
		return nil, err
	}
	w, err := s.d.Store.Workspace(ctx, ws)
	if err != nil {
		return nil, mapNotFound(err, errWorkspaceNotFound)
	}
	id, err := s.randomID()
	if err != nil {
		return nil, err
	}
	token, err := s.randomToken()
	if err != nil {
		return nil, err
	}
	now := s.d.Now().UTC()
	inv := &Invitation{ID: id, WorkspaceID: ws, Email: email, RoleID: roleID, InvitedBy: p.UserID,
		TokenHash: hashToken(token), CreatedAt: now, ExpiresAt: now.Add(s.cfg.InvitationTTL)}
	if inv.InvitedBy == "" {
		_, inv.InvitedBy = actorOf(&p)
	}
	if err := s.d.Store.CreateInvitation(ctx, inv); err != nil {
		return nil, err
	}
	msg := rmail.Message{
		Kind:    KindInvitation,
		To:      email,
		Subject: "You are invited to " + w.Name + " on Rampart",
		Text: fmt.Sprintf("You have been invited to join the workspace %q.\n\nAccept the invitation:\n%s\n\n"+
			"The link works once and expires on %s. If you did not expect this invitation, ignore this mail.\n",
			w.Name, s.link("/invitations/accept?token="+token), inv.ExpiresAt.Format(time.RFC1123)),
	}
	if err := s.send(ctx, msg); err != nil {
		// Nobody can use an invitation whose link was never delivered.
		_ = s.d.Store.CloseInvitation(ctx, ws, id, "revoked", now)
		return nil, fault.Wrap(fault.Unavailable, "mail_unavailable", "the invitation could not be sent; try again", err)
	}
	if err := s.recordBy(ctx, &p, ws, "invitation.create", "invitation:"+id, map[string]string{"role": roleID}); err != nil {
		return nil, err
	}
	return inv, nil
}

// Invitations lists the workspace's invitations.
func (s *Service) Invitations(ctx context.Context, p Principal, ws string) ([]Invitation, error) {
	if err := s.Require(ctx, p, ws, PermMembersRead); err != nil {
		return nil, err
	}
	return s.d.Store.ListInvitations(ctx, ws)
}

// RevokeInvitation withdraws a pending invitation.
func (s *Service) RevokeInvitation(ctx context.Context, p Principal, ws, id string) error {
	if err := s.Require(ctx, p, ws, PermMembersManage); err != nil {
		return err
	}
	if err := s.d.Store.CloseInvitation(ctx, ws, id, "revoked", s.d.Now().UTC()); err != nil {
		return mapNotFound(err, fault.New(fault.NotFound, "invitation_not_found", "no such pending invitation"))
	}
	return s.recordBy(ctx, &p, ws, "invitation.revoke", "invitation:"+id, nil)
}

// pendingInvitation finds the invitation of a token and checks that it is
// still usable and addressed to the signed-in user.
func (s *Service) pendingInvitation(ctx context.Context, p *Principal, token string) (*Invitation, error) {
	if err := requireUser(p); err != nil {
		return nil, err
	}
	if len(token) != 43 { // 256 bits in unpadded base64url
		return nil, errInvitationInvalid
	}
	inv, err := s.d.Store.InvitationByTokenHash(ctx, hashToken(token))
	if err != nil {
		return nil, mapNotFound(err, errInvitationInvalid)
	}
	if !inv.AcceptedAt.IsZero() || !inv.DeclinedAt.IsZero() || !inv.RevokedAt.IsZero() || !s.d.Now().Before(inv.ExpiresAt) {
		return nil, errInvitationInvalid
	}
	u, err := s.d.Accounts.User(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if u.EmailVerifiedAt.IsZero() {
		return nil, fault.New(fault.Forbidden, "email_unverified", "verify your email address first")
	}
	if !strings.EqualFold(u.Email, inv.Email) {
		return nil, fault.New(fault.Forbidden, "invitation_email_mismatch", "this invitation is for another email address; sign in with that one")
	}
	return inv, nil
}

// AcceptInvitation makes the signed-in user a member with the invited role.
func (s *Service) AcceptInvitation(ctx context.Context, p Principal, token string) (*Workspace, error) {
	inv, err := s.pendingInvitation(ctx, &p, token)
	if err != nil {
		return nil, err
	}
	if _, err := s.d.Store.AcceptInvitation(ctx, inv.ID, p.UserID, s.d.Now().UTC()); err != nil {
		if fault.Is(err, fault.Conflict) {
			return nil, errAlreadyMember
		}
		return nil, mapNotFound(err, errInvitationInvalid)
	}
	s.invalidate(inv.WorkspaceID)
	if err := s.recordBy(ctx, &p, inv.WorkspaceID, "invitation.accept", "invitation:"+inv.ID, map[string]string{"role": inv.RoleID}); err != nil {
		return nil, err
	}
	w, err := s.d.Store.Workspace(ctx, inv.WorkspaceID)
	return w, mapNotFound(err, errWorkspaceNotFound)
}

// DeclineInvitation turns an invitation down; it cannot be used afterwards.
func (s *Service) DeclineInvitation(ctx context.Context, p Principal, token string) error {
	inv, err := s.pendingInvitation(ctx, &p, token)
	if err != nil {
		return err
	}
	if err := s.d.Store.CloseInvitation(ctx, inv.WorkspaceID, inv.ID, "declined", s.d.Now().UTC()); err != nil {
		return mapNotFound(err, errInvitationInvalid)
	}
	return s.recordBy(ctx, &p, inv.WorkspaceID, "invitation.decline", "invitation:"+inv.ID, nil)
}

// --- Roles ---

var builtinRoleInfo = []struct{ id, name, desc string }{
	{RoleAdmin, "Admin", "Every permission, including members, billing and security settings"},
	{RoleEditor, "Editor", "Write content and read everything"},
	{RoleReadOnly, "Read-only", "Read everything"},
}

// Roles lists the built-in roles and the workspace's custom roles.
func (s *Service) Roles(ctx context.Context, p Principal, ws string) ([]Role, error) {
	if err := s.Require(ctx, p, ws, PermRolesRead); err != nil {
		return nil, err
	}
	cat, err := s.loadCatalog(ctx, s.d.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Role, 0, len(builtinRoleInfo))
	for _, b := range builtinRoleInfo {
		out = append(out, Role{ID: b.id, Name: b.name, Description: b.desc, Permissions: slices.Clone(cat.builtin[b.id]), BuiltIn: true})
	}
	custom, err := s.d.Store.ListRoles(ctx, ws)
	if err != nil {
		return nil, err
	}
	for _, r := range custom {
		if !r.BuiltIn && !isBuiltinRole(r.ID) {
			out = append(out, r)
		}
	}
	return out, nil
}

// roleInput validates a custom role's fields and that the caller holds
// every permission it would carry.
func (s *Service) roleInput(ctx context.Context, p *Principal, ws, name, description string, perms []string) (string, []string, error) {
	name, err := cleanName(name, 64, "role_name_invalid")
	if err != nil {
		return "", nil, err
	}
	if len(description) > 500 {
		return "", nil, fault.Invalidf("description_too_long", "the description is longer than 500 characters")
	}
	if len(perms) == 0 {
		return "", nil, fault.Invalidf("permissions_required", "a role needs at least one permission")
	}
	perms, err = s.knownPerms(ctx, perms)
	if err != nil {
		return "", nil, err
	}
	if err := s.mayGrant(ctx, p, ws, perms); err != nil {
		return "", nil, err
	}
	return name, perms, nil
}

// CreateRole creates a custom role from known permissions.
func (s *Service) CreateRole(ctx context.Context, p Principal, ws, name, description string, perms []string) (*Role, error) {
	if err := s.Require(ctx, p, ws, PermRolesManage); err != nil {
		return nil, err
	}
	name, perms, err := s.roleInput(ctx, &p, ws, name, description, perms)
	if err != nil {
		return nil, err
	}
	id, err := s.randomID()
	if err != nil {
		return nil, err
	}
	r := &Role{ID: id, WorkspaceID: ws, Name: name, Description: description, Permissions: perms, CreatedAt: s.d.Now().UTC()}
	if err := s.d.Store.CreateRole(ctx, r); err != nil {
		return nil, err
	}
	s.invalidate(ws)
	if err := s.recordBy(ctx, &p, ws, "role.create", "role:"+id, map[string]string{"permissions": strings.Join(perms, ",")}); err != nil {
		return nil, err
	}
	return r, nil
}

// UpdateRole replaces a custom role's name, description and permissions;
// its holders' access changes at once.
func (s *Service) UpdateRole(ctx context.Context, p Principal, ws, id, name, description string, perms []string) (*Role, error) {
	if err := s.Require(ctx, p, ws, PermRolesManage); err != nil {
		return nil, err
	}
	if isBuiltinRole(id) {
		return nil, errBuiltinRole
	}
	r, err := s.d.Store.Role(ctx, ws, id)
	if err != nil {
		return nil, mapNotFound(err, errRoleNotFound)
	}
	name, perms, err = s.roleInput(ctx, &p, ws, name, description, perms)
	if err != nil {
		return nil, err
	}
	r.Name, r.Description, r.Permissions = name, description, perms
	if err := s.d.Store.UpdateRole(ctx, r); err != nil {
		return nil, mapNotFound(err, errRoleNotFound)
	}
	s.invalidate(ws)
	if err := s.recordBy(ctx, &p, ws, "role.update", "role:"+id, map[string]string{"permissions": strings.Join(perms, ",")}); err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteRole deletes a custom role nobody holds.
func (s *Service) DeleteRole(ctx context.Context, p Principal, ws, id string) error {
	if err := s.Require(ctx, p, ws, PermRolesManage); err != nil {
		return err
	}
	if isBuiltinRole(id) {
		return errBuiltinRole
	}
	if err := s.d.Store.DeleteRole(ctx, ws, id); err != nil {
		return mapNotFound(err, errRoleNotFound)
	}
	s.invalidate(ws)
	return s.recordBy(ctx, &p, ws, "role.delete", "role:"+id, nil)
}
