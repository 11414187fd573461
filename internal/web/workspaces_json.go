package web

import (
	"time"

	"github.com/rampartsec/rampart/internal/tenancy"
)

// The JSON shapes of the workspace API. Secrets and their hashes have no
// field here at all: the once-shown key or token text is added by the
// creating handler alone.

// optTime is nil for the zero time, so "never" is absent, not year 1.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

type workspaceJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toWorkspaceJSON(w tenancy.Workspace) workspaceJSON {
	return workspaceJSON{ID: w.ID, Name: w.Name, CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

type memberJSON struct {
	UserID       string     `json:"user_id"`
	Email        string     `json:"email"`
	MFAEnabled   bool       `json:"mfa_enabled"`
	Roles        []string   `json:"roles"`
	Active       bool       `json:"active"`
	JoinedAt     time.Time  `json:"joined_at"`
	LastActiveAt *time.Time `json:"last_active_at"`
	SCIMExternal string     `json:"scim_external_id,omitempty"`
}

func toMemberJSON(m tenancy.Member) memberJSON {
	return memberJSON{UserID: m.UserID, Email: m.Email, MFAEnabled: m.MFAEnabled, Roles: nonNil(m.Roles), Active: m.Active,
		JoinedAt: m.JoinedAt, LastActiveAt: optTime(m.LastActiveAt), SCIMExternal: m.SCIMExternal}
}

type invitationJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	InvitedBy string    `json:"invited_by"`
	Status    string    `json:"status"` // pending, accepted, declined, revoked, expired
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toInvitationJSON(i tenancy.Invitation, now time.Time) invitationJSON {
	st := "pending"
	switch {
	case !i.AcceptedAt.IsZero():
		st = "accepted"
	case !i.DeclinedAt.IsZero():
		st = "declined"
	case !i.RevokedAt.IsZero():
		st = "revoked"
	case !now.Before(i.ExpiresAt):
		st = "expired"
	}
	return invitationJSON{ID: i.ID, Email: i.Email, Role: i.RoleID, InvitedBy: i.InvitedBy, Status: st, CreatedAt: i.CreatedAt, ExpiresAt: i.ExpiresAt}
}

type roleJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Permissions []string   `json:"permissions"`
	BuiltIn     bool       `json:"built_in"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
}

func toRoleJSON(r tenancy.Role) roleJSON {
	return roleJSON{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: nonNil(r.Permissions), BuiltIn: r.BuiltIn, CreatedAt: optTime(r.CreatedAt)}
}

type permissionJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Sensitive   bool   `json:"sensitive"`
	BuiltIn     bool   `json:"built_in"`
}

type apiKeyJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	CreatedBy   string     `json:"created_by"`
	Permissions []string   `json:"permissions"`
	Status      string     `json:"status"` // active, expired, revoked
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	LastUsedIP  string     `json:"last_used_ip,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

func toAPIKeyJSON(k tenancy.APIKey, now time.Time) apiKeyJSON {
	st := "active"
	switch {
	case !k.RevokedAt.IsZero():
		st = "revoked"
	case !now.Before(k.ExpiresAt):
		st = "expired"
	}
	return apiKeyJSON{ID: k.ID, Name: k.Name, CreatedBy: k.CreatedBy, Permissions: nonNil(k.Permissions), Status: st,
		CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastUsedAt: optTime(k.LastUsedAt), LastUsedIP: k.LastUsedIP, RevokedAt: optTime(k.RevokedAt)}
}

type scimTokenJSON struct {
	ID         string     `json:"id"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

func toSCIMTokenJSON(t tenancy.SCIMToken) scimTokenJSON {
	return scimTokenJSON{ID: t.ID, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, LastUsedAt: optTime(t.LastUsedAt), RevokedAt: optTime(t.RevokedAt)}
}

type reviewDecisionJSON struct {
	User     string   `json:"user"`
	Decision string   `json:"decision"`
	Roles    []string `json:"roles,omitempty"`
	Note     string   `json:"note,omitempty"`
}

type accessReviewJSON struct {
	ID        string               `json:"id"`
	Reviewer  string               `json:"reviewer"`
	CreatedAt time.Time            `json:"created_at"`
	Decisions []reviewDecisionJSON `json:"decisions"`
}

func toAccessReviewJSON(a tenancy.AccessReview) *accessReviewJSON {
	out := &accessReviewJSON{ID: a.ID, Reviewer: a.ReviewerID, CreatedAt: a.CreatedAt, Decisions: make([]reviewDecisionJSON, 0, len(a.Decisions))}
	for _, d := range a.Decisions {
		out.Decisions = append(out.Decisions, reviewDecisionJSON{User: d.UserID, Decision: d.Decision, Roles: d.Roles, Note: d.Note})
	}
	return out
}

type reviewEntryJSON struct {
	Member      memberJSON   `json:"member"`
	APIKeys     []apiKeyJSON `json:"api_keys"`
	Stale       bool         `json:"stale"`
	MFAEnabled  bool         `json:"mfa_enabled"`
	Permissions []string     `json:"permissions"`
}

type reviewReportJSON struct {
	Workspace   string            `json:"workspace"`
	GeneratedAt time.Time         `json:"generated_at"`
	DueAt       time.Time         `json:"due_at"`
	LastReview  *accessReviewJSON `json:"last_review"`
	Entries     []reviewEntryJSON `json:"entries"`
}

func toReviewReportJSON(r tenancy.ReviewReport, now time.Time) reviewReportJSON {
	out := reviewReportJSON{Workspace: r.WorkspaceID, GeneratedAt: r.GeneratedAt, DueAt: r.DueAt, Entries: make([]reviewEntryJSON, 0, len(r.Entries))}
	if r.LastReview != nil {
		out.LastReview = toAccessReviewJSON(*r.LastReview)
	}
	for _, e := range r.Entries {
		keys := make([]apiKeyJSON, 0, len(e.APIKeys))
		for _, k := range e.APIKeys {
			keys = append(keys, toAPIKeyJSON(k, now))
		}
		out.Entries = append(out.Entries, reviewEntryJSON{Member: toMemberJSON(e.Member), APIKeys: keys, Stale: e.Stale, MFAEnabled: e.MFAEnabled, Permissions: nonNil(e.Permissions)})
	}
	return out
}

type supportGrantJSON struct {
	ID        string     `json:"id"`
	Operator  string     `json:"operator"` // "" = any operator
	GrantedBy string     `json:"granted_by"`
	Scope     []string   `json:"scope"`
	Reason    string     `json:"reason"`
	Status    string     `json:"status"` // active, expired, revoked
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func toSupportGrantJSON(g tenancy.SupportGrant, now time.Time) supportGrantJSON {
	st := "active"
	switch {
	case !g.RevokedAt.IsZero():
		st = "revoked"
	case !now.Before(g.ExpiresAt):
		st = "expired"
	}
	return supportGrantJSON{ID: g.ID, Operator: g.OperatorID, GrantedBy: g.GrantedBy, Scope: nonNil(g.Scope), Reason: g.Reason, Status: st,
		CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt, RevokedAt: optTime(g.RevokedAt)}
}

type supportAccessJSON struct {
	ID         string    `json:"id"`
	Operator   string    `json:"operator"`
	Grant      string    `json:"grant,omitempty"`
	BreakGlass bool      `json:"break_glass"`
	Reason     string    `json:"reason,omitempty"`
	Action     string    `json:"action"`
	At         time.Time `json:"at"`
}

func toSupportAccessJSON(a tenancy.SupportAccess) supportAccessJSON {
	return supportAccessJSON{ID: a.ID, Operator: a.OperatorID, Grant: a.GrantID, BreakGlass: a.BreakGlass, Reason: a.Reason, Action: a.Action, At: a.At}
}
