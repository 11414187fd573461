// Package tenancy holds workspaces, members, roles and permissions,
// invitations, API keys, SCIM provisioning tokens, access reviews and
// operator support access. It decides who may do what in which workspace
// (deny by default) and knows nothing of HTTP or SQL.
package tenancy

import (
	"context"
	"time"
)

// Built-in role ids. They exist in every workspace and cannot be edited.
const (
	RoleAdmin    = "admin"
	RoleEditor   = "editor"
	RoleReadOnly = "readonly"
)

// Built-in permissions, "resource.action". Read and write are always
// distinct permissions (AC-2).
const (
	PermWorkspaceRead   = "workspace.read"
	PermWorkspaceManage = "workspace.manage" // rename
	PermWorkspaceDelete = "workspace.delete" // sensitive
	PermMembersRead     = "members.read"
	PermMembersManage   = "members.manage" // invite, change roles, remove
	PermRolesRead       = "roles.read"
	PermRolesManage     = "roles.manage"
	PermBillingRead     = "billing.read"
	PermBillingManage   = "billing.manage"
	PermContentRead     = "content.read"
	PermContentWrite    = "content.write"
	PermAPIKeysRead     = "apikeys.read"
	PermAPIKeysManage   = "apikeys.manage"
	PermSCIMManage      = "scim.manage" // sensitive
	PermAuditRead       = "audit.read"
	PermAccessReview    = "access_reviews.manage"
	PermSupportGrant    = "support.grant" // sensitive
	PermAuthzCheck      = "authz.check"   // call /v1/authz/check for others
)

// Permission is a permission name with its description. Sensitive
// permissions need a fresh MFA step-up (AC-2). App permissions are
// registered by the operator (config or API) and apply to every workspace.
type Permission struct {
	Name        string
	Description string
	Sensitive   bool
	BuiltIn     bool
}

// Workspace is a tenant.
type Workspace struct {
	ID        string
	Name      string
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Role is a named set of permissions. Built-in roles have WorkspaceID "".
type Role struct {
	ID          string
	WorkspaceID string
	Name        string
	Description string
	Permissions []string
	BuiltIn     bool
	CreatedAt   time.Time
}

// Member is a user's membership of a workspace with its roles.
type Member struct {
	WorkspaceID  string
	UserID       string
	Email        string // joined from the account, for display
	MFAEnabled   bool   // joined from the account, for access reviews
	Roles        []string
	JoinedAt     time.Time
	LastActiveAt time.Time // last authorized use of the workspace (access reviews)
	SCIMExternal string    // externalId when provisioned over SCIM
	Active       bool      // SCIM active flag; inactive members hold no access
}

// Invitation asks an email address to join with a role. Only the SHA-256 of
// its token is stored; it is single-use and expires.
type Invitation struct {
	ID          string
	WorkspaceID string
	Email       string
	RoleID      string
	InvitedBy   string
	TokenHash   []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
	AcceptedAt  time.Time
	DeclinedAt  time.Time
	RevokedAt   time.Time
}

// APIKey is a workspace credential for machines. The secret is shown once;
// only its SHA-256 is stored. Its permissions are a subset of its creator's
// at creation, and it always expires (SES-5).
type APIKey struct {
	ID          string // public id, part of the key text
	WorkspaceID string
	Name        string
	CreatedBy   string
	SecretHash  []byte
	Permissions []string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	LastUsedAt  time.Time
	LastUsedIP  string
	RevokedAt   time.Time
}

// SCIMToken is a workspace's provisioning bearer token (hash only).
type SCIMToken struct {
	ID          string
	WorkspaceID string
	SecretHash  []byte
	CreatedBy   string
	CreatedAt   time.Time
	LastUsedAt  time.Time
	RevokedAt   time.Time
}

// Operator marks an account as operator staff (the SaaS company's own
// people). Operators always need MFA and may be limited to networks; they
// have no standing access to any workspace's data (AC-6, AC-7).
type Operator struct {
	UserID          string
	Email           string
	AllowedNetworks []string // CIDRs; empty = any
	CreatedAt       time.Time
}

// SupportGrant is a workspace admin's time-boxed permission for operator
// staff to access the workspace (AC-6).
type SupportGrant struct {
	ID          string
	WorkspaceID string
	OperatorID  string // a specific operator, or "" for any operator
	GrantedBy   string
	Scope       []string // permissions the support access carries
	Reason      string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	RevokedAt   time.Time
}

// SupportAccess is one recorded access by an operator to a workspace, under
// a grant or as break-glass (GrantID "").
type SupportAccess struct {
	ID          string
	WorkspaceID string
	OperatorID  string
	GrantID     string
	BreakGlass  bool
	Reason      string
	Action      string
	At          time.Time
}

// Review decisions.
const (
	DecisionKeep   = "keep"
	DecisionChange = "change"
	DecisionRemove = "remove"
)

// ReviewDecision is the reviewer's verdict on one member.
type ReviewDecision struct {
	UserID   string
	Decision string
	Roles    []string // the new roles, for DecisionChange
	Note     string
}

// AccessReview is a recorded, signed-off review of a workspace's access (AC-5).
type AccessReview struct {
	ID          string
	WorkspaceID string
	ReviewerID  string
	Decisions   []ReviewDecision
	CreatedAt   time.Time
}

// Store is the storage tenancy needs. Every method that takes a
// workspaceID touches only that workspace's rows (on PostgreSQL inside a
// transaction bound to the workspace, under row-level security). Methods
// return errors of kind fault.NotFound for missing rows and fault.Conflict
// for uniqueness violations.
type Store interface {
	// Permissions registered by the app (built-ins live in code).
	UpsertPermission(ctx context.Context, p Permission) error
	ListPermissions(ctx context.Context) ([]Permission, error)

	// CreateWorkspace inserts the workspace and its creator as an Admin
	// member in one transaction.
	CreateWorkspace(ctx context.Context, w *Workspace, creator Member) error
	Workspace(ctx context.Context, id string) (*Workspace, error)
	RenameWorkspace(ctx context.Context, id, name string, now time.Time) error
	// DeleteWorkspace deletes the workspace and every row that belongs to
	// it (members, roles, invitations, keys, tokens, grants, reviews).
	DeleteWorkspace(ctx context.Context, id string) error
	// AllWorkspaces lists every workspace (operator jobs: review reminders).
	AllWorkspaces(ctx context.Context) ([]Workspace, error)
	// WorkspacesOf lists the workspaces the user is an active member of.
	WorkspacesOf(ctx context.Context, userID string) ([]Workspace, error)

	Member(ctx context.Context, workspaceID, userID string) (*Member, error)
	ListMembers(ctx context.Context, workspaceID string) ([]Member, error)
	// AddMember inserts a member (Conflict if already one).
	AddMember(ctx context.Context, m *Member) error
	// SetMemberRoles replaces the member's roles. When guardAdmin is true it
	// fails with Conflict "last_admin" if the change would leave the
	// workspace with no active Admin; the check and the write are one
	// transaction.
	SetMemberRoles(ctx context.Context, workspaceID, userID string, roles []string, guardAdmin bool) error
	// SetMemberActive sets the SCIM active flag (with the same last-Admin guard).
	SetMemberActive(ctx context.Context, workspaceID, userID string, active bool) error
	SetMemberExternalID(ctx context.Context, workspaceID, userID, externalID string) error
	// RemoveMember deletes the membership, refusing to remove the last
	// active Admin (Conflict "last_admin"), in one transaction.
	RemoveMember(ctx context.Context, workspaceID, userID string) error
	TouchMember(ctx context.Context, workspaceID, userID string, at time.Time) error

	CreateRole(ctx context.Context, r *Role) error
	Role(ctx context.Context, workspaceID, id string) (*Role, error) // custom roles only
	ListRoles(ctx context.Context, workspaceID string) ([]Role, error)
	UpdateRole(ctx context.Context, r *Role) error
	// DeleteRole removes a custom role; Conflict "role_in_use" while members hold it.
	DeleteRole(ctx context.Context, workspaceID, id string) error

	CreateInvitation(ctx context.Context, inv *Invitation) error
	// InvitationByTokenHash finds an invitation across workspaces (the
	// invitee does not know the workspace yet).
	InvitationByTokenHash(ctx context.Context, hash []byte) (*Invitation, error)
	ListInvitations(ctx context.Context, workspaceID string) ([]Invitation, error)
	// AcceptInvitation marks a pending, unexpired invitation accepted and
	// adds the member with its role, in one transaction; NotFound if it is
	// no longer pending.
	AcceptInvitation(ctx context.Context, id string, userID string, now time.Time) (*Invitation, error)
	// CloseInvitation marks a pending invitation declined or revoked
	// (field "declined" or "revoked"); NotFound if not pending.
	CloseInvitation(ctx context.Context, workspaceID, id, how string, now time.Time) error

	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByID finds a key across workspaces (the key text carries its id).
	APIKeyByID(ctx context.Context, id string) (*APIKey, error)
	ListAPIKeys(ctx context.Context, workspaceID string) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, workspaceID, id string, now time.Time) error
	// RevokeUserAPIKeys revokes every key the user created in the workspace.
	RevokeUserAPIKeys(ctx context.Context, workspaceID, userID string, now time.Time) (int, error)
	// TouchAPIKey records a use, at most once a minute per key.
	TouchAPIKey(ctx context.Context, id, ip string, at time.Time) error

	CreateSCIMToken(ctx context.Context, t *SCIMToken) error
	SCIMTokenByID(ctx context.Context, id string) (*SCIMToken, error)
	ListSCIMTokens(ctx context.Context, workspaceID string) ([]SCIMToken, error)
	RevokeSCIMToken(ctx context.Context, workspaceID, id string, now time.Time) error

	CreateOperator(ctx context.Context, o *Operator) error
	Operator(ctx context.Context, userID string) (*Operator, error)
	ListOperators(ctx context.Context) ([]Operator, error)

	CreateSupportGrant(ctx context.Context, g *SupportGrant) error
	ListSupportGrants(ctx context.Context, workspaceID string) ([]SupportGrant, error)
	// ActiveSupportGrant returns an unexpired, unrevoked grant covering the
	// operator in the workspace; NotFound otherwise.
	ActiveSupportGrant(ctx context.Context, workspaceID, operatorID string, now time.Time) (*SupportGrant, error)
	RevokeSupportGrant(ctx context.Context, workspaceID, id string, now time.Time) error
	RecordSupportAccess(ctx context.Context, a *SupportAccess) error
	ListSupportAccess(ctx context.Context, workspaceID string) ([]SupportAccess, error)

	CreateAccessReview(ctx context.Context, r *AccessReview) error
	ListAccessReviews(ctx context.Context, workspaceID string) ([]AccessReview, error)
}
