package web

// WorkspaceRoutePatterns lists the patterns workspaceRoutes registers, for
// the cross-tenant test's coverage check.
func WorkspaceRoutePatterns() []string {
	var out []string
	for _, rt := range (&server{}).workspaceAPI() {
		out = append(out, rt.pattern)
	}
	return out
}
