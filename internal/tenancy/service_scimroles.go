package tenancy

import (
	"context"
	"slices"
)

// SCIMRoles lists the workspace's roles (built-in and custom) for SCIM
// Groups. It takes no Principal: the caller has already authenticated with
// the workspace's SCIM token (AuthenticateSCIM), which speaks for the
// workspace's identity provider.
func (s *Service) SCIMRoles(ctx context.Context, ws string) ([]Role, error) {
	if _, err := s.d.Store.Workspace(ctx, ws); err != nil {
		return nil, mapNotFound(err, errWorkspaceNotFound)
	}
	cat, err := s.loadCatalog(ctx, s.d.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Role, 0, len(builtinRoleInfo))
	for _, b := range builtinRoleInfo {
		out = append(out, Role{ID: b.id, WorkspaceID: ws, Name: b.name, Description: b.desc, Permissions: slices.Clone(cat.builtin[b.id]), BuiltIn: true})
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
