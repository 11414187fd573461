package web

import (
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// route is one API route: a ServeMux pattern and its handler.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// workspaceAPI lists every route of the workspace API (docs/API.md,
// "Workspaces"). It is data, not a series of mux calls, so the
// cross-tenant test can check that every route taking a workspace is
// covered by its table: a new route without an entry there fails it.
func (s *server) workspaceAPI() []route {
	return []route{
		{"POST /v1/workspaces", s.apiCreateWorkspace},
		{"GET /v1/workspaces", s.apiMyWorkspaces},
		{"GET /v1/workspaces/{ws}", s.apiWorkspace},
		{"PATCH /v1/workspaces/{ws}", s.apiRenameWorkspace},
		{"DELETE /v1/workspaces/{ws}", s.apiDeleteWorkspace},

		{"GET /v1/workspaces/{ws}/members", s.apiMembers},
		{"PUT /v1/workspaces/{ws}/members/{user}/roles", s.apiSetMemberRoles},
		{"DELETE /v1/workspaces/{ws}/members/{user}", s.apiRemoveMember},

		{"POST /v1/workspaces/{ws}/invitations", s.apiInvite},
		{"GET /v1/workspaces/{ws}/invitations", s.apiInvitations},
		{"DELETE /v1/workspaces/{ws}/invitations/{id}", s.apiRevokeInvitation},
		{"POST /v1/invitations/accept", s.apiAcceptInvitation},
		{"POST /v1/invitations/decline", s.apiDeclineInvitation},

		{"GET /v1/workspaces/{ws}/roles", s.apiRoles},
		{"POST /v1/workspaces/{ws}/roles", s.apiCreateRole},
		{"PUT /v1/workspaces/{ws}/roles/{id}", s.apiUpdateRole},
		{"DELETE /v1/workspaces/{ws}/roles/{id}", s.apiDeleteRole},
		{"GET /v1/permissions", s.apiPermissions},
		{"POST /v1/permissions", s.apiRegisterPermission},

		{"POST /v1/authz/check", s.apiAuthzCheck},

		{"POST /v1/workspaces/{ws}/api-keys", s.apiCreateAPIKey},
		{"GET /v1/workspaces/{ws}/api-keys", s.apiAPIKeys},
		{"DELETE /v1/workspaces/{ws}/api-keys/{id}", s.apiRevokeAPIKey},

		{"POST /v1/workspaces/{ws}/scim-tokens", s.apiCreateSCIMToken},
		{"GET /v1/workspaces/{ws}/scim-tokens", s.apiSCIMTokens},
		{"DELETE /v1/workspaces/{ws}/scim-tokens/{id}", s.apiRevokeSCIMToken},

		{"GET /v1/workspaces/{ws}/access-review", s.apiReviewReport},
		{"POST /v1/workspaces/{ws}/access-reviews", s.apiRecordReview},

		{"POST /v1/workspaces/{ws}/support-grants", s.apiGrantSupport},
		{"GET /v1/workspaces/{ws}/support-grants", s.apiSupportGrants},
		{"DELETE /v1/workspaces/{ws}/support-grants/{id}", s.apiRevokeSupportGrant},
		{"GET /v1/workspaces/{ws}/support-access", s.apiSupportAccess},
		{"POST /v1/operator/workspaces/{ws}/enter", s.apiOperatorEnter},
	}
}

// workspaceRoutes registers the workspace API.
func (s *server) workspaceRoutes(mux *http.ServeMux) {
	for _, rt := range s.workspaceAPI() {
		mux.Handle(rt.pattern, noStore(rt.handler))
	}
}

// noStore keeps workspace answers (member lists, once-shown secrets) out
// of every cache.
func noStore(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h(w, r)
	})
}

// maxIDLen bounds ids taken from the path; longer ones cannot exist.
const maxIDLen = 64

var errWorkspaceNotFound = fault.New(fault.NotFound, "workspace_not_found", "no such workspace")

// wsRequest authenticates the request and resolves its {ws} path value.
// A key of another workspace is answered 404 here already, the same
// answer the service gives, so a foreign key learns nothing and costs
// nothing more.
func (s *server) wsRequest(w http.ResponseWriter, r *http.Request) (tenancy.Principal, string, bool) {
	p, err := s.principal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return p, "", false
	}
	ws := r.PathValue("ws")
	if ws == "" || len(ws) > maxIDLen || (p.APIKey != nil && p.APIKey.WorkspaceID != ws) {
		s.writeError(w, r, errWorkspaceNotFound)
		return p, "", false
	}
	return p, ws, true
}

// pathID returns the path value name, or false (after answering 404 with
// code) when it is too long to be an id.
func (s *server) pathID(w http.ResponseWriter, r *http.Request, name, code string) (string, bool) {
	v := r.PathValue(name)
	if v == "" || len(v) > maxIDLen {
		s.writeError(w, r, fault.New(fault.NotFound, code, "no such "+strings.ReplaceAll(strings.TrimSuffix(code, "_not_found"), "_", " ")))
		return "", false
	}
	return v, true
}

// decodeOptionalJSON is decodeJSON for endpoints whose body may be absent.
func decodeOptionalJSON[T any](r *http.Request) (T, error) {
	if r.ContentLength == 0 {
		var zero T
		return zero, nil
	}
	return decodeJSON[T](r)
}

// ---- workspaces ----

type nameBody struct {
	Name string `json:"name"`
}

func (s *server) apiCreateWorkspace(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[nameBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ws, err := s.ten.CreateWorkspace(r.Context(), p, in.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toWorkspaceJSON(*ws))
}

func (s *server) apiMyWorkspaces(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.ten.Workspaces(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]workspaceJSON, 0, len(list))
	for _, x := range list {
		out = append(out, toWorkspaceJSON(x))
	}
	writeJSON(w, http.StatusOK, struct {
		Workspaces []workspaceJSON `json:"workspaces"`
	}{out})
}

func (s *server) apiWorkspace(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	x, err := s.ten.Workspace(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWorkspaceJSON(*x))
}

func (s *server) apiRenameWorkspace(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[nameBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.ten.RenameWorkspace(r.Context(), p, ws, in.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	x, err := s.ten.Workspace(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWorkspaceJSON(*x))
}

func (s *server) apiDeleteWorkspace(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Confirm string `json:"confirm"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.ten.DeleteWorkspace(r.Context(), p, ws, in.Confirm); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- members ----

func (s *server) apiMembers(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	list, err := s.ten.Members(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]memberJSON, 0, len(list))
	for _, m := range list {
		out = append(out, toMemberJSON(m))
	}
	writeJSON(w, http.StatusOK, struct {
		Members []memberJSON `json:"members"`
	}{out})
}

type rolesBody struct {
	Roles []string `json:"roles"`
}

func (s *server) apiSetMemberRoles(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	user, ok := s.pathID(w, r, "user", "member_not_found")
	if !ok {
		return
	}
	in, err := decodeJSON[rolesBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.ten.SetMemberRoles(r.Context(), p, ws, user, nonNil(in.Roles)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiRemoveMember(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	user, ok := s.pathID(w, r, "user", "member_not_found")
	if !ok {
		return
	}
	if err := s.ten.RemoveMember(r.Context(), p, ws, user); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- invitations ----

func (s *server) apiInvite(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	inv, err := s.ten.Invite(r.Context(), p, ws, in.Email, in.Role)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toInvitationJSON(*inv, s.now()))
}

func (s *server) apiInvitations(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	list, err := s.ten.Invitations(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	out := make([]invitationJSON, 0, len(list))
	for _, x := range list {
		out = append(out, toInvitationJSON(x, now))
	}
	writeJSON(w, http.StatusOK, struct {
		Invitations []invitationJSON `json:"invitations"`
	}{out})
}

func (s *server) apiRevokeInvitation(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "invitation_not_found")
	if !ok {
		return
	}
	if err := s.ten.RevokeInvitation(r.Context(), p, ws, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiAcceptInvitation(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[tokenBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ws, err := s.ten.AcceptInvitation(r.Context(), p, in.Token)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWorkspaceJSON(*ws))
}

func (s *server) apiDeclineInvitation(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[tokenBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.ten.DeclineInvitation(r.Context(), p, in.Token); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// nonNil turns an absent JSON list into an empty one, so "no roles" and
// "roles omitted" mean the same to the service.
func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}
