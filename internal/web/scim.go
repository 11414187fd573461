package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/scim"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// SCIM 2.0 provisioning (AC-4, RFC 7643/7644).
//
// The root is /scim/v2 for every workspace: the bearer token
// (Authorization: Bearer rscim_…) names the workspace, so the URL carries
// no workspace id and one token can never reach another workspace. Every
// endpoint, discovery included, needs the token.
//
//	GET    /scim/v2/ServiceProviderConfig | Schemas[/{id}] | ResourceTypes[/{id}]
//	GET    /scim/v2/Users?filter=…&startIndex=…&count=…   (count ≤ 200)
//	POST   /scim/v2/Users                                  201; 409 uniqueness if already a member
//	GET    /scim/v2/Users/{id}
//	PUT    /scim/v2/Users/{id}                             replace: externalId, active
//	PATCH  /scim/v2/Users/{id}                             add/replace/remove
//	DELETE /scim/v2/Users/{id}                             204; removes the membership
//	GET    /scim/v2/Groups[?filter=…&excludedAttributes=members]
//	GET    /scim/v2/Groups/{id}
//	PATCH  /scim/v2/Groups/{id}                            add/remove members
//	PUT    /scim/v2/Groups/{id}                            replace members
//	POST   /scim/v2/Groups, DELETE /scim/v2/Groups/{id}    403: roles are managed in Rampart
//
// A User is a workspace member: id is the Rampart user id, userName the
// email address (it cannot change: a new address is a new person), and
// emails echo that address. active=false and DELETE end every session of
// the person and revoke their API keys in the workspace in the same
// request. A Group is a workspace role (id = role id, displayName = role
// name); membership changes set the members' roles. Attributes Rampart
// does not keep (name, displayName, phone numbers, extensions) are accepted
// and ignored. Errors use the SCIM error shape, the one exception to
// Rampart's {"error":{…}} shape, because identity providers parse it.

// maxSCIMBody bounds a SCIM request body; a group PATCH from an identity
// provider carries at most a few hundred member changes.
const maxSCIMBody = 512 << 10

// scimHandler serves one SCIM request in the token's workspace.
type scimHandler func(w http.ResponseWriter, r *http.Request, ws string) error

// scimRoutes registers SCIM 2.0 under /scim/v2/ (issue: workspaces).
func (s *server) scimRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /scim/v2/ServiceProviderConfig", s.scim(s.scimServiceProviderConfig))
	mux.HandleFunc("GET /scim/v2/Schemas", s.scim(s.scimSchemas))
	mux.HandleFunc("GET /scim/v2/Schemas/{id}", s.scim(s.scimSchema))
	mux.HandleFunc("GET /scim/v2/ResourceTypes", s.scim(s.scimResourceTypes))
	mux.HandleFunc("GET /scim/v2/ResourceTypes/{id}", s.scim(s.scimResourceType))
	mux.HandleFunc("GET /scim/v2/Users", s.scim(s.scimListUsers))
	mux.HandleFunc("POST /scim/v2/Users", s.scim(s.scimCreateUser))
	mux.HandleFunc("GET /scim/v2/Users/{id}", s.scim(s.scimGetUser))
	mux.HandleFunc("PUT /scim/v2/Users/{id}", s.scim(s.scimReplaceUser))
	mux.HandleFunc("PATCH /scim/v2/Users/{id}", s.scim(s.scimPatchUser))
	mux.HandleFunc("DELETE /scim/v2/Users/{id}", s.scim(s.scimDeleteUser))
	mux.HandleFunc("GET /scim/v2/Groups", s.scim(s.scimListGroups))
	mux.HandleFunc("GET /scim/v2/Groups/{id}", s.scim(s.scimGetGroup))
	mux.HandleFunc("PATCH /scim/v2/Groups/{id}", s.scim(s.scimPatchGroup))
	mux.HandleFunc("PUT /scim/v2/Groups/{id}", s.scim(s.scimReplaceGroup))
	mux.HandleFunc("POST /scim/v2/Groups", s.scim(s.scimGroupsManagedInRampart))
	mux.HandleFunc("DELETE /scim/v2/Groups/{id}", s.scim(s.scimGroupsManagedInRampart))
	mux.HandleFunc("/scim/v2/", s.scim(s.scimFallback))
}

var (
	errSCIMUnavailable    = fault.New(fault.Unavailable, "scim_unavailable", "SCIM provisioning is not available")
	errSCIMToken          = fault.New(fault.Unauthenticated, "scim_token_invalid", "the SCIM token is invalid or revoked")
	errSCIMRolesInRampart = fault.New(fault.Forbidden, "roles_managed_in_rampart",
		"groups are Rampart roles: create, rename and delete roles in Rampart, then manage their members here")
	errSCIMUserName = fault.New(fault.Invalid, scim.TypeMutability,
		"userName is the person's address and cannot change; provision the new address as a new user")
	errSCIMMediaType = fault.New(fault.Invalid, scim.TypeInvalidSyntax, "send the body as application/scim+json")
	errSCIMNoGroup   = fault.New(fault.NotFound, "group_not_found", "no such group")
)

// scim authenticates the request by its SCIM token and runs h, writing
// any error in the SCIM shape.
func (s *server) scim(h scimHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if s.ten == nil {
			s.scimError(w, r, errSCIMUnavailable)
			return
		}
		ws, err := s.scimAuthenticate(r)
		if err != nil {
			if fault.Is(err, fault.Unauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="scim", error="invalid_token"`)
			}
			s.scimError(w, r, err)
			return
		}
		if err := h(w, r, ws); err != nil {
			s.scimError(w, r, err)
		}
	}
}

// scimAuthenticate returns the workspace of the request's SCIM token.
// Malformed credentials are refused before any lookup.
func (s *server) scimAuthenticate(r *http.Request) (string, error) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(cred) > maxBearerLen || !strings.HasPrefix(cred, tenancy.SCIMTokenPrefix) {
		return "", errSCIMToken
	}
	return s.ten.AuthenticateSCIM(r.Context(), cred)
}

// scimError writes err as a SCIM error. The status comes from the one
// kind→status mapping (status, via publicError); the scimType is the
// error's code when it is one, invalidValue for other invalid input
// (tenancy's own validation codes) and uniqueness for an existing member.
func (s *server) scimError(w http.ResponseWriter, r *http.Request, err error) {
	fe, st := publicError(err)
	if st >= 500 {
		s.log.Error("scim request failed", "method", r.Method, "route", r.Pattern, "status", st, "request_id", requestID(r.Context()), "err", err)
	}
	scimType := ""
	switch {
	case scim.IsType(fe.Code):
		scimType = fe.Code
	case st == http.StatusBadRequest:
		scimType = scim.TypeInvalidValue
	case fe.Code == "already_member":
		scimType = scim.TypeUniqueness
	}
	if fe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(fe.RetryAfter.Seconds()+0.999)))
	}
	writeSCIM(w, st, scim.NewError(st, scimType, fe.Message))
}

func writeSCIM(w http.ResponseWriter, st int, v any) {
	w.Header().Set("Content-Type", scim.ContentType)
	w.WriteHeader(st)
	if v == nil {
		return
	}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return // the client went away; nothing to tell it
	}
}

// readSCIMBody reads a JSON body of at most maxSCIMBody bytes.
func readSCIMBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, errSCIMMediaType
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSCIMBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, fault.Wrap(fault.Invalid, scim.TypeInvalidSyntax, "the request body could not be read", err)
	}
	if len(body) > maxSCIMBody {
		return nil, errBodyTooLarge
	}
	return body, nil
}

// scimBase is the absolute URL of the SCIM root, for meta.location. The
// host is the one the client used; Rampart is served over HTTPS only.
func scimBase(r *http.Request) string {
	return "https://" + r.Host + "/scim/v2"
}

// --- discovery ---

func (s *server) scimServiceProviderConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	writeSCIM(w, http.StatusOK, scim.NewServiceProviderConfig(scimBase(r)))
	return nil
}

func (s *server) scimSchemas(w http.ResponseWriter, r *http.Request, _ string) error {
	list := scim.Schemas(scimBase(r))
	writeSCIM(w, http.StatusOK, scim.NewListResponse(len(list), 1, list))
	return nil
}

func (s *server) scimSchema(w http.ResponseWriter, r *http.Request, _ string) error {
	for _, sc := range scim.Schemas(scimBase(r)) {
		if sc.ID == r.PathValue("id") {
			writeSCIM(w, http.StatusOK, sc)
			return nil
		}
	}
	return fault.NotFoundf("schema_not_found", "no such schema")
}

func (s *server) scimResourceTypes(w http.ResponseWriter, r *http.Request, _ string) error {
	list := scim.ResourceTypes(scimBase(r))
	writeSCIM(w, http.StatusOK, scim.NewListResponse(len(list), 1, list))
	return nil
}

func (s *server) scimResourceType(w http.ResponseWriter, r *http.Request, _ string) error {
	for _, rt := range scim.ResourceTypes(scimBase(r)) {
		if rt.ID == r.PathValue("id") {
			writeSCIM(w, http.StatusOK, rt)
			return nil
		}
	}
	return fault.NotFoundf("resource_type_not_found", "no such resource type")
}

// scimFallback answers the rest of /scim/v2/: 405 on a known resource
// path, 501 for bulk, 404 otherwise — in the SCIM shape, after the token
// check, so an unauthenticated caller learns nothing.
func (s *server) scimFallback(w http.ResponseWriter, r *http.Request, _ string) error {
	first, tail, nested := strings.Cut(strings.TrimPrefix(r.URL.Path, "/scim/v2/"), "/")
	oneID := nested && tail != "" && !strings.Contains(tail, "/")
	switch first {
	case "Bulk":
		if !nested {
			writeSCIM(w, http.StatusNotImplemented, scim.NewError(http.StatusNotImplemented, "", "bulk operations are not supported"))
			return nil
		}
	case "ServiceProviderConfig":
		if !nested {
			return errMethodNotAllowed
		}
	case "Schemas", "ResourceTypes", "Users", "Groups":
		if !nested || oneID {
			return errMethodNotAllowed
		}
	}
	return fault.NotFoundf("not_found", "no such SCIM endpoint")
}

// --- users ---

// toSCIMUser renders a member. lastModified is the join time: the
// membership carries no update time.
func toSCIMUser(m *tenancy.Member, base string, roleNames map[string]string) scim.User {
	u := scim.User{
		Schemas: []string{scim.SchemaUser}, ID: m.UserID, ExternalID: m.SCIMExternal, UserName: m.Email, Active: m.Active,
		Emails: []scim.Email{{Value: m.Email, Type: "work", Primary: true}},
		Meta:   &scim.Meta{ResourceType: "User", Created: m.JoinedAt.UTC(), LastModified: m.JoinedAt.UTC(), Location: base + "/Users/" + m.UserID},
	}
	for _, role := range m.Roles {
		name := roleNames[role]
		if name == "" {
			name = role
		}
		u.Groups = append(u.Groups, scim.GroupRef{Value: role, Ref: base + "/Groups/" + role, Display: name})
	}
	return u
}

// roleNames maps role ids to names for the users' "groups"; without the
// roles (see scimRoles) the ids stand in.
func (s *server) roleNames(ctx context.Context, ws string) map[string]string {
	roles, err := s.scimRoles(ctx, ws)
	if err != nil {
		return nil
	}
	names := make(map[string]string, len(roles))
	for _, r := range roles {
		names[r.ID] = r.Name
	}
	return names
}

// sortMembers orders members by join time, so pages stay put as members
// are added.
func sortMembers(ms []tenancy.Member) {
	slices.SortStableFunc(ms, func(a, b tenancy.Member) int {
		return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), strings.Compare(a.UserID, b.UserID))
	})
}

func (s *server) scimListUsers(w http.ResponseWriter, r *http.Request, ws string) error {
	q := r.URL.Query()
	var filter *scim.Filter
	if fs := q.Get("filter"); fs != "" {
		f, err := scim.ParseFilter(fs)
		if err != nil {
			return err
		}
		filter = f
	}
	start, count, err := scim.ParsePage(q.Get("startIndex"), q.Get("count"))
	if err != nil {
		return err
	}
	members, err := s.ten.SCIMMembers(r.Context(), ws)
	if err != nil {
		return err
	}
	sortMembers(members)
	base, names := scimBase(r), s.roleNames(r.Context(), ws)
	var hits []scim.User
	for i := range members {
		u := toSCIMUser(&members[i], base, names)
		if filter.Match(&u) {
			hits = append(hits, u)
		}
	}
	lo, hi := scim.Window(len(hits), start, count)
	writeSCIM(w, http.StatusOK, scim.NewListResponse(len(hits), start, hits[lo:hi]))
	return nil
}

func (s *server) scimGetUser(w http.ResponseWriter, r *http.Request, ws string) error {
	m, err := s.ten.SCIMMember(r.Context(), ws, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeSCIM(w, http.StatusOK, toSCIMUser(m, scimBase(r), s.roleNames(r.Context(), ws)))
	return nil
}

// scimCreateUser provisions a person. A person who is already a member is
// a 409 uniqueness conflict (RFC 7644 §3.3): identity providers then look
// the user up by userName and link it.
func (s *server) scimCreateUser(w http.ResponseWriter, r *http.Request, ws string) error {
	body, err := readSCIMBody(r)
	if err != nil {
		return err
	}
	in, err := scim.ParseUser(body)
	if err != nil {
		return err
	}
	email, err := identity.NormalizeEmail(in.UserName)
	if err != nil {
		return err
	}
	members, err := s.ten.SCIMMembers(r.Context(), ws)
	if err != nil {
		return err
	}
	for _, m := range members {
		if strings.EqualFold(m.Email, email) {
			return fault.New(fault.Conflict, scim.TypeUniqueness, "a user with this userName already exists")
		}
	}
	m, created, err := s.ten.SCIMUpsertUser(r.Context(), ws, email, in.ExternalID, in.Active)
	if err != nil {
		return err
	}
	if !created { // joined between the check and the upsert
		return fault.New(fault.Conflict, scim.TypeUniqueness, "a user with this userName already exists")
	}
	u := toSCIMUser(m, scimBase(r), s.roleNames(r.Context(), ws))
	w.Header().Set("Location", u.Meta.Location)
	writeSCIM(w, http.StatusCreated, u)
	return nil
}

// scimReplaceUser is PUT: the writable attributes Rampart keeps are
// externalId and active; userName must stay the same.
func (s *server) scimReplaceUser(w http.ResponseWriter, r *http.Request, ws string) error {
	body, err := readSCIMBody(r)
	if err != nil {
		return err
	}
	in, err := scim.ParseUser(body)
	if err != nil {
		return err
	}
	m, err := s.ten.SCIMMember(r.Context(), ws, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.scimUpdateUser(w, r, ws, m, in)
}

func (s *server) scimPatchUser(w http.ResponseWriter, r *http.Request, ws string) error {
	body, err := readSCIMBody(r)
	if err != nil {
		return err
	}
	op, err := scim.ParsePatch(body)
	if err != nil {
		return err
	}
	m, err := s.ten.SCIMMember(r.Context(), ws, r.PathValue("id"))
	if err != nil {
		return err
	}
	u := toSCIMUser(m, scimBase(r), nil)
	if err := scim.ApplyUserPatch(&u, op); err != nil {
		return err
	}
	return s.scimUpdateUser(w, r, ws, m, u)
}

// scimUpdateUser stores the changes of a PUT or PATCH. Deactivation goes
// through SCIMUpsertUser → SCIMSetActive, which ends the person's sessions
// and keys in the same call (AC-4).
func (s *server) scimUpdateUser(w http.ResponseWriter, r *http.Request, ws string, m *tenancy.Member, u scim.User) error {
	if !sameAddress(u.UserName, m.Email) {
		return errSCIMUserName
	}
	if u.ExternalID != m.SCIMExternal || u.Active != m.Active {
		if _, _, err := s.ten.SCIMUpsertUser(r.Context(), ws, m.Email, u.ExternalID, u.Active); err != nil {
			return err
		}
		fresh, err := s.ten.SCIMMember(r.Context(), ws, m.UserID)
		if err != nil {
			return err
		}
		m = fresh
	}
	writeSCIM(w, http.StatusOK, toSCIMUser(m, scimBase(r), s.roleNames(r.Context(), ws)))
	return nil
}

// sameAddress compares a userName with the member's address as identity
// normalizes addresses.
func sameAddress(userName, email string) bool {
	n, err := identity.NormalizeEmail(userName)
	if err != nil {
		return strings.EqualFold(strings.TrimSpace(userName), email)
	}
	return strings.EqualFold(n, email)
}

func (s *server) scimDeleteUser(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := s.ten.SCIMDeleteUser(r.Context(), ws, r.PathValue("id")); err != nil {
		return err
	}
	w.Header().Set("Content-Type", scim.ContentType)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- groups (= roles) ---

// scimRoles lists the workspace's roles, which SCIM presents as Groups.
func (s *server) scimRoles(ctx context.Context, ws string) ([]tenancy.Role, error) {
	return s.ten.SCIMRoles(ctx, ws)
}

// groupView says how much of a Group to render.
type groupView struct {
	members bool
}

// groupViewOf reads attributes/excludedAttributes (RFC 7644 §3.9) as far
// as members go: identity providers exclude them when they only need the
// group's existence, and a large role's member list is the costly part.
func groupViewOf(r *http.Request) groupView {
	q := r.URL.Query()
	has := func(list, name string) bool {
		for _, a := range strings.Split(list, ",") {
			a = strings.TrimSpace(a)
			if strings.EqualFold(a, name) || strings.EqualFold(a, scim.SchemaGroup+":"+name) {
				return true
			}
		}
		return false
	}
	v := groupView{members: true}
	if ex := q.Get("excludedAttributes"); ex != "" && has(ex, "members") {
		v.members = false
	}
	if at := q.Get("attributes"); at != "" && !has(at, "members") {
		v.members = false
	}
	return v
}

func toSCIMGroup(role tenancy.Role, holders []tenancy.Member, base string) scim.Group {
	g := scim.Group{Schemas: []string{scim.SchemaGroup}, ID: role.ID, DisplayName: role.Name,
		Meta: &scim.Meta{ResourceType: "Group", Created: role.CreatedAt.UTC(), Location: base + "/Groups/" + role.ID}}
	for _, m := range holders {
		g.Members = append(g.Members, scim.Member{Value: m.UserID, Ref: base + "/Users/" + m.UserID, Display: m.Email})
	}
	return g
}

// scimGroupState loads the roles and members of ws and indexes the
// members by role.
type scimGroupState struct {
	roles   []tenancy.Role
	members map[string]*tenancy.Member
	holders map[string][]tenancy.Member
}

func (s *server) loadGroupState(ctx context.Context, ws string) (*scimGroupState, error) {
	roles, err := s.scimRoles(ctx, ws)
	if err != nil {
		return nil, err
	}
	ms, err := s.ten.SCIMMembers(ctx, ws)
	if err != nil {
		return nil, err
	}
	sortMembers(ms)
	st := &scimGroupState{roles: roles, members: make(map[string]*tenancy.Member, len(ms)), holders: map[string][]tenancy.Member{}}
	for i := range ms {
		st.members[ms[i].UserID] = &ms[i]
		for _, role := range ms[i].Roles {
			st.holders[role] = append(st.holders[role], ms[i])
		}
	}
	return st, nil
}

func (st *scimGroupState) role(id string) (tenancy.Role, error) {
	for _, r := range st.roles {
		if r.ID == id {
			return r, nil
		}
	}
	return tenancy.Role{}, errSCIMNoGroup
}

func (s *server) scimListGroups(w http.ResponseWriter, r *http.Request, ws string) error {
	q := r.URL.Query()
	var filter *scim.Filter
	if fs := q.Get("filter"); fs != "" {
		f, err := scim.ParseFilter(fs)
		if err != nil {
			return err
		}
		filter = f
	}
	start, count, err := scim.ParsePage(q.Get("startIndex"), q.Get("count"))
	if err != nil {
		return err
	}
	st, err := s.loadGroupState(r.Context(), ws)
	if err != nil {
		return err
	}
	base, view := scimBase(r), groupViewOf(r)
	var hits []scim.Group
	for _, role := range st.roles {
		g := toSCIMGroup(role, st.holders[role.ID], base)
		if !filter.Match(&g) { // on the full group: members[value eq …] works with members excluded
			continue
		}
		if !view.members {
			g.Members = nil
		}
		hits = append(hits, g)
	}
	lo, hi := scim.Window(len(hits), start, count)
	writeSCIM(w, http.StatusOK, scim.NewListResponse(len(hits), start, hits[lo:hi]))
	return nil
}

func (s *server) scimGetGroup(w http.ResponseWriter, r *http.Request, ws string) error {
	st, err := s.loadGroupState(r.Context(), ws)
	if err != nil {
		return err
	}
	role, err := st.role(r.PathValue("id"))
	if err != nil {
		return err
	}
	s.writeGroup(w, r, role, st.holders[role.ID])
	return nil
}

func (s *server) writeGroup(w http.ResponseWriter, r *http.Request, role tenancy.Role, holders []tenancy.Member) {
	g := toSCIMGroup(role, holders, scimBase(r))
	if !groupViewOf(r).members {
		g.Members = nil
	}
	writeSCIM(w, http.StatusOK, g)
}

func (s *server) scimPatchGroup(w http.ResponseWriter, r *http.Request, ws string) error {
	body, err := readSCIMBody(r)
	if err != nil {
		return err
	}
	op, err := scim.ParsePatch(body)
	if err != nil {
		return err
	}
	st, err := s.loadGroupState(r.Context(), ws)
	if err != nil {
		return err
	}
	role, err := st.role(r.PathValue("id"))
	if err != nil {
		return err
	}
	g := toSCIMGroup(role, st.holders[role.ID], scimBase(r))
	before := g.Members
	if err := scim.ApplyGroupPatch(&g, op); err != nil {
		return err
	}
	return s.scimSetGroupMembers(w, r, ws, st, role, before, g.Members)
}

func (s *server) scimReplaceGroup(w http.ResponseWriter, r *http.Request, ws string) error {
	body, err := readSCIMBody(r)
	if err != nil {
		return err
	}
	in, err := scim.ParseGroup(body)
	if err != nil {
		return err
	}
	st, err := s.loadGroupState(r.Context(), ws)
	if err != nil {
		return err
	}
	role, err := st.role(r.PathValue("id"))
	if err != nil {
		return err
	}
	if !strings.EqualFold(strings.TrimSpace(in.DisplayName), role.Name) {
		return errSCIMRolesInRampart
	}
	before := toSCIMGroup(role, st.holders[role.ID], scimBase(r)).Members
	return s.scimSetGroupMembers(w, r, ws, st, role, before, in.Members)
}

// scimSetGroupMembers makes the role's holders go from before to after:
// each person gained gets the role added to their roles, each person lost
// has it taken away — down to Read-only, the provisioning default, since a
// member always holds a role (deprovision the user to end access).
// Additions go first, so handing Admin from one person to another in one
// request does not trip the last-Admin rule. Each change is its own
// tenancy call: if one fails (last Admin, 409) the ones before it stay.
func (s *server) scimSetGroupMembers(w http.ResponseWriter, r *http.Request, ws string, st *scimGroupState, role tenancy.Role, before, after []scim.Member) error {
	added, removed := scim.MemberChanges(before, after)
	for _, id := range added {
		if _, ok := st.members[id]; !ok {
			return fault.New(fault.Invalid, scim.TypeInvalidValue, "a member is not a user of this workspace")
		}
	}
	for _, id := range added {
		roles := append(slices.Clone(st.members[id].Roles), role.ID)
		if err := s.ten.SCIMSetRoles(r.Context(), ws, id, roles); err != nil {
			return err
		}
	}
	for _, id := range removed {
		m, ok := st.members[id]
		if !ok {
			continue
		}
		roles := slices.DeleteFunc(slices.Clone(m.Roles), func(x string) bool { return x == role.ID })
		if len(roles) == 0 {
			roles = []string{tenancy.RoleReadOnly}
		}
		if err := s.ten.SCIMSetRoles(r.Context(), ws, id, roles); err != nil {
			return err
		}
	}
	fresh, err := s.loadGroupState(r.Context(), ws)
	if err != nil {
		return err
	}
	s.writeGroup(w, r, role, fresh.holders[role.ID])
	return nil
}

func (s *server) scimGroupsManagedInRampart(http.ResponseWriter, *http.Request, string) error {
	return errSCIMRolesInRampart
}
