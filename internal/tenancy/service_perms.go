package tenancy

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// permFlags are the MFA rules a permission carries, precomputed so the hot
// path needs no catalog lookup for an allowed permission.
type permFlags uint8

const (
	// flagAdminOnly: usable only from an MFA session unless
	// Config.AdminMFAOptional (AUTH-2, AC-7).
	flagAdminOnly permFlags = 1 << iota
	// flagSensitive: needs a second-factor check within StepUpWindow (AC-2).
	flagSensitive
)

// builtinPermissions are the permissions every deployment has.
var builtinPermissions = []Permission{
	{Name: PermWorkspaceRead, Description: "See the workspace"},
	{Name: PermWorkspaceManage, Description: "Rename the workspace"},
	{Name: PermWorkspaceDelete, Description: "Delete the workspace and all its data", Sensitive: true},
	{Name: PermMembersRead, Description: "See members, invitations and support access"},
	{Name: PermMembersManage, Description: "Invite, change roles of and remove members"},
	{Name: PermRolesRead, Description: "See roles"},
	{Name: PermRolesManage, Description: "Create, edit and delete custom roles"},
	{Name: PermBillingRead, Description: "See billing"},
	{Name: PermBillingManage, Description: "Change billing"},
	{Name: PermContentRead, Description: "Read content"},
	{Name: PermContentWrite, Description: "Write content"},
	{Name: PermAPIKeysRead, Description: "See API keys"},
	{Name: PermAPIKeysManage, Description: "Create and revoke API keys"},
	{Name: PermSCIMManage, Description: "Manage SCIM provisioning tokens", Sensitive: true},
	{Name: PermAuditRead, Description: "Read the workspace audit trail"},
	{Name: PermAccessReview, Description: "Run and record access reviews"},
	{Name: PermSupportGrant, Description: "Grant and revoke operator support access", Sensitive: true},
	{Name: PermAuthzCheck, Description: "Ask Rampart about other users' permissions"},
}

// adminOnly lists the built-ins that only Admin holds by default; they are
// the admin console and need an MFA session.
var adminOnly = map[string]bool{
	PermMembersManage: true, PermRolesManage: true, PermBillingManage: true,
	PermWorkspaceManage: true, PermWorkspaceDelete: true, PermAPIKeysManage: true,
	PermSCIMManage: true, PermSupportGrant: true, PermAccessReview: true,
}

// catalog is an immutable snapshot of the known permissions and of what the
// built-in roles expand to. A new snapshot replaces it on registration or
// when it is older than DecisionCacheTTL (another node may have registered).
type catalog struct {
	list    []Permission         // sorted by name
	flags   map[string]permFlags // every known permission
	builtin map[string][]string  // built-in role id → permissions
	loaded  int64                // unix nanos
}

func isReadPerm(name string) bool { return strings.HasSuffix(name, ".read") }

func isBuiltinRole(id string) bool {
	return id == RoleAdmin || id == RoleEditor || id == RoleReadOnly
}

func newCatalog(app []Permission, now time.Time) *catalog {
	c := &catalog{flags: make(map[string]permFlags), loaded: now.UnixNano()}
	for _, p := range builtinPermissions {
		p.BuiltIn = true
		c.list = append(c.list, p)
	}
	for _, p := range app {
		if isBuiltinName(p.Name) {
			continue // built-ins are defined in code only
		}
		p.BuiltIn = false
		c.list = append(c.list, p)
	}
	slices.SortFunc(c.list, func(a, b Permission) int { return strings.Compare(a.Name, b.Name) })
	var admin, editor, ro []string
	for _, p := range c.list {
		var f permFlags
		if adminOnly[p.Name] {
			f |= flagAdminOnly
		}
		if p.Sensitive {
			f |= flagSensitive
		}
		c.flags[p.Name] = f
		admin = append(admin, p.Name)
		if isReadPerm(p.Name) {
			editor = append(editor, p.Name)
			ro = append(ro, p.Name)
		} else if p.Name == PermContentWrite {
			editor = append(editor, p.Name)
		}
	}
	c.builtin = map[string][]string{RoleAdmin: admin, RoleEditor: editor, RoleReadOnly: ro}
	return c
}

// sameAs reports whether two snapshots know the same permissions with the
// same rules, so a periodic reload only invalidates decisions on a change.
func (c *catalog) sameAs(o *catalog) bool {
	if o == nil || len(c.list) != len(o.list) {
		return false
	}
	for i := range c.list {
		if c.list[i].Name != o.list[i].Name || c.list[i].Sensitive != o.list[i].Sensitive {
			return false
		}
	}
	return true
}

func isBuiltinName(name string) bool {
	for _, p := range builtinPermissions {
		if p.Name == name {
			return true
		}
	}
	return false
}

// validPermName reports whether name is "resource.action" with both parts
// in [a-z0-9_]+.
func validPermName(name string) bool {
	if len(name) < 3 || len(name) > 64 {
		return false
	}
	dot := strings.IndexByte(name, '.')
	if dot <= 0 || dot == len(name)-1 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if i == dot {
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// loadCatalog returns the current snapshot, reloading it from the store
// when it is older than DecisionCacheTTL. A changed catalog bumps the
// global generation: built-in roles expand differently.
func (s *Service) loadCatalog(ctx context.Context, now time.Time) (*catalog, error) {
	c := s.az.cat.Load()
	if c != nil && now.UnixNano()-c.loaded < int64(s.cfg.DecisionCacheTTL) {
		return c, nil
	}
	return s.reloadCatalog(ctx, now)
}

func (s *Service) reloadCatalog(ctx context.Context, now time.Time) (*catalog, error) {
	app, err := s.d.Store.ListPermissions(ctx)
	if err != nil {
		return nil, err
	}
	c := newCatalog(app, now)
	old := s.az.cat.Swap(c)
	if !c.sameAs(old) {
		s.az.global.Add(1)
	}
	return c, nil
}

// RegisterPermission adds or updates an app permission. Built-in names
// cannot be redefined.
func (s *Service) RegisterPermission(ctx context.Context, p Permission) error {
	if !validPermName(p.Name) {
		return fault.Invalidf("permission_invalid", "a permission is resource.action in lowercase letters, digits and _")
	}
	if isBuiltinName(p.Name) {
		return fault.Invalidf("permission_builtin", "%s is a built-in permission", p.Name)
	}
	if len(p.Description) > 200 {
		return fault.Invalidf("description_too_long", "the description is longer than 200 characters")
	}
	p.BuiltIn = false
	if err := s.d.Store.UpsertPermission(ctx, p); err != nil {
		return err
	}
	if _, err := s.reloadCatalog(ctx, s.d.Now()); err != nil {
		return err
	}
	s.az.global.Add(1) // even an unchanged catalog: be sure no decision outlives a registration
	sens := "false"
	if p.Sensitive {
		sens = "true"
	}
	return s.record(ctx, audit.Event{ActorType: audit.ActorSystem, Action: "permission.register", Target: "permission:" + p.Name,
		Outcome: audit.Success, Details: map[string]string{"sensitive": sens}})
}

// Permissions lists the built-in and registered permissions, by name.
func (s *Service) Permissions(ctx context.Context) ([]Permission, error) {
	c, err := s.loadCatalog(ctx, s.d.Now())
	if err != nil {
		return nil, err
	}
	return slices.Clone(c.list), nil
}

// knownPerms checks that every name is a known permission and returns them
// sorted without duplicates.
func (s *Service) knownPerms(ctx context.Context, perms []string) ([]string, error) {
	c, err := s.loadCatalog(ctx, s.d.Now())
	if err != nil {
		return nil, err
	}
	out := slices.Clone(perms)
	slices.Sort(out)
	out = slices.Compact(out)
	for _, p := range out {
		if _, ok := c.flags[p]; !ok {
			if !validPermName(p) {
				return nil, fault.Invalidf("unknown_permission", "a permission in the list is unknown")
			}
			return nil, fault.Invalidf("unknown_permission", "unknown permission %q", p)
		}
	}
	return out, nil
}
