package web

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// ---- roles and permissions ----

type roleBody struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
}

func (s *server) apiRoles(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	list, err := s.ten.Roles(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]roleJSON, 0, len(list))
	for _, x := range list {
		out = append(out, toRoleJSON(x))
	}
	writeJSON(w, http.StatusOK, struct {
		Roles []roleJSON `json:"roles"`
	}{out})
}

func (s *server) apiCreateRole(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[roleBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	role, err := s.ten.CreateRole(r.Context(), p, ws, in.Name, in.Description, nonNil(in.Permissions))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toRoleJSON(*role))
}

func (s *server) apiUpdateRole(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "role_not_found")
	if !ok {
		return
	}
	in, err := decodeJSON[roleBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	role, err := s.ten.UpdateRole(r.Context(), p, ws, id, in.Name, in.Description, nonNil(in.Permissions))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRoleJSON(*role))
}

func (s *server) apiDeleteRole(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "role_not_found")
	if !ok {
		return
	}
	if err := s.ten.DeleteRole(r.Context(), p, ws, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiPermissions lists every permission (built-in and app-registered); any
// authenticated caller may read the catalogue, it holds no tenant data.
func (s *server) apiPermissions(w http.ResponseWriter, r *http.Request) {
	if _, err := s.principal(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.ten.Permissions(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]permissionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, permissionJSON{Name: x.Name, Description: x.Description, Sensitive: x.Sensitive, BuiltIn: x.BuiltIn})
	}
	writeJSON(w, http.StatusOK, struct {
		Permissions []permissionJSON `json:"permissions"`
	}{out})
}

// apiRegisterPermission adds an app permission. Permissions apply to every
// workspace, so only operator staff (MFA, allowed network) may add them.
func (s *server) apiRegisterPermission(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.ten.OperatorPrincipal(r.Context(), p); err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Sensitive   bool   `json:"sensitive"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	perm := tenancy.Permission{Name: in.Name, Description: in.Description, Sensitive: in.Sensitive}
	if err := s.ten.RegisterPermission(r.Context(), perm); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, permissionJSON{Name: perm.Name, Description: perm.Description, Sensitive: perm.Sensitive})
}

// ---- authorization ----

// maxChecks bounds one /v1/authz/check request.
const maxChecks = 100

type authzCheck struct {
	Workspace  string `json:"workspace"`
	Permission string `json:"permission"`
	User       string `json:"user,omitempty"`
}

type authzRequest struct {
	authzCheck
	Checks []authzCheck `json:"checks"`
}

type authzResult struct {
	Workspace  string `json:"workspace"`
	Permission string `json:"permission"`
	User       string `json:"user"`
	Allowed    bool   `json:"allowed"`
	Reason     string `json:"reason"`
}

var (
	errChecksMissing  = fault.New(fault.Invalid, "checks_missing", `send {"workspace","permission"} or {"checks":[…]}`)
	errChecksBoth     = fault.New(fault.Invalid, "checks_ambiguous", `send either a single check or "checks", not both`)
	errChecksTooMany  = fault.New(fault.Invalid, "too_many_checks", "at most 100 checks per request")
	errCheckMalformed = fault.New(fault.Invalid, "check_invalid", "each check needs a workspace and a permission")
)

// apiAuthzCheck answers "may this principal (or this user) do this here"
// for up to maxChecks pairs. Checks about the caller never fail: the
// reason says why not (a workspace the caller cannot see answers
// not_member, whether or not it exists). Checks about another user need
// authz.check in that workspace; a refusal there fails the whole request
// (404 or 403), since it is the caller, not the user, who is refused.
func (s *server) apiAuthzCheck(w http.ResponseWriter, r *http.Request) {
	p, err := s.principal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[authzRequest](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	single := in.authzCheck != (authzCheck{})
	checks := in.Checks
	switch {
	case single && checks != nil:
		s.writeError(w, r, errChecksBoth)
		return
	case single:
		checks = []authzCheck{in.authzCheck}
	case len(checks) == 0:
		s.writeError(w, r, errChecksMissing)
		return
	case len(checks) > maxChecks:
		s.writeError(w, r, errChecksTooMany)
		return
	}
	out := make([]authzResult, len(checks))
	for i, c := range checks {
		if c.Workspace == "" || c.Permission == "" || len(c.Workspace) > maxIDLen || len(c.Permission) > 128 || len(c.User) > maxIDLen {
			s.writeError(w, r, errCheckMalformed)
			return
		}
		res := authzResult{Workspace: c.Workspace, Permission: c.Permission, User: c.User}
		var d tenancy.Decision
		switch {
		case c.User == "":
			res.User = p.UserID
			d = s.ten.Check(r.Context(), p, c.Workspace, c.Permission)
		case p.APIKey != nil && p.APIKey.WorkspaceID != c.Workspace:
			s.writeError(w, r, errWorkspaceNotFound)
			return
		default:
			d, err = s.ten.CheckUser(r.Context(), p, c.Workspace, c.User, c.Permission)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		res.Allowed, res.Reason = d.Allowed, d.Reason
		out[i] = res
	}
	writeJSON(w, http.StatusOK, struct {
		Results []authzResult `json:"results"`
	}{out})
}

// ---- API keys ----

// maxTTLDays bounds expires_in_days before the multiplication, so no
// input overflows a Duration; the service applies the configured maximum.
const maxTTLDays = 100 * 365

func (s *server) apiCreateAPIKey(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Name          string   `json:"name"`
		Permissions   []string `json:"permissions"`
		ExpiresInDays int      `json:"expires_in_days"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.ExpiresInDays < 0 || in.ExpiresInDays > maxTTLDays {
		s.writeError(w, r, fault.New(fault.Invalid, "ttl_too_long", "expires_in_days must be between 1 and the configured maximum (0 = the default)"))
		return
	}
	key, text, err := s.ten.CreateAPIKey(r.Context(), p, ws, in.Name, nonNil(in.Permissions), time.Duration(in.ExpiresInDays)*24*time.Hour)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		APIKey apiKeyJSON `json:"api_key"`
		Key    string     `json:"key"`
	}{toAPIKeyJSON(*key, s.now()), text})
}

func (s *server) apiAPIKeys(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	list, err := s.ten.APIKeys(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	out := make([]apiKeyJSON, 0, len(list))
	for _, k := range list {
		out = append(out, toAPIKeyJSON(k, now))
	}
	writeJSON(w, http.StatusOK, struct {
		APIKeys []apiKeyJSON `json:"api_keys"`
	}{out})
}

func (s *server) apiRevokeAPIKey(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "api_key_not_found")
	if !ok {
		return
	}
	if err := s.ten.RevokeAPIKey(r.Context(), p, ws, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- SCIM tokens ----

func (s *server) apiCreateSCIMToken(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	tok, text, err := s.ten.CreateSCIMToken(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		SCIMToken scimTokenJSON `json:"scim_token"`
		Token     string        `json:"token"`
	}{toSCIMTokenJSON(*tok), text})
}

func (s *server) apiSCIMTokens(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	list, err := s.ten.SCIMTokens(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]scimTokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, toSCIMTokenJSON(t))
	}
	writeJSON(w, http.StatusOK, struct {
		SCIMTokens []scimTokenJSON `json:"scim_tokens"`
	}{out})
}

func (s *server) apiRevokeSCIMToken(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "scim_token_not_found")
	if !ok {
		return
	}
	if err := s.ten.RevokeSCIMToken(r.Context(), p, ws, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
