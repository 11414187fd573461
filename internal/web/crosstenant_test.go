package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/web"
)

// crossTenantCases is every workspace route that takes a {ws}, with a body
// that would succeed for the workspace's own Admin. TestCrossTenant fails
// when a route with {ws} is registered without an entry here, so a new
// route cannot skip the suite.
//
// want is the status for a caller from another tenant: 404, exactly as for
// a workspace that does not exist. The operator door answers on who the
// caller is, not on the workspace (want 0: the same answer as for a
// workspace that does not exist, and never a success).
var crossTenantCases = []struct {
	pattern string
	body    string
	want    int
}{
	{"GET /v1/workspaces/{ws}", ``, 404},
	{"PATCH /v1/workspaces/{ws}", `{"name":"Taken over"}`, 404},
	{"DELETE /v1/workspaces/{ws}", `{"confirm":"{name}"}`, 404},
	{"GET /v1/workspaces/{ws}/members", ``, 404},
	{"PUT /v1/workspaces/{ws}/members/{user}/roles", `{"roles":["readonly"]}`, 404},
	{"DELETE /v1/workspaces/{ws}/members/{user}", ``, 404},
	{"POST /v1/workspaces/{ws}/invitations", `{"email":"intruder@example.com","role":"admin"}`, 404},
	{"GET /v1/workspaces/{ws}/invitations", ``, 404},
	{"DELETE /v1/workspaces/{ws}/invitations/{id}", ``, 404},
	{"GET /v1/workspaces/{ws}/roles", ``, 404},
	{"POST /v1/workspaces/{ws}/roles", `{"name":"Backdoor","permissions":["workspace.read"]}`, 404},
	{"PUT /v1/workspaces/{ws}/roles/{id}", `{"name":"Backdoor","permissions":["workspace.read","members.read"]}`, 404},
	{"DELETE /v1/workspaces/{ws}/roles/{id}", ``, 404},
	{"POST /v1/workspaces/{ws}/api-keys", `{"name":"x","permissions":["workspace.read"],"expires_in_days":1}`, 404},
	{"GET /v1/workspaces/{ws}/api-keys", ``, 404},
	{"DELETE /v1/workspaces/{ws}/api-keys/{id}", ``, 404},
	{"POST /v1/workspaces/{ws}/scim-tokens", ``, 404},
	{"GET /v1/workspaces/{ws}/scim-tokens", ``, 404},
	{"DELETE /v1/workspaces/{ws}/scim-tokens/{id}", ``, 404},
	{"GET /v1/workspaces/{ws}/access-review", ``, 404},
	{"POST /v1/workspaces/{ws}/access-reviews", `{"decisions":[{"user":"{user}","decision":"remove"}]}`, 404},
	{"POST /v1/workspaces/{ws}/support-grants", `{"operator":"","scope":["workspace.read"],"hours":1,"reason":"x"}`, 404},
	{"GET /v1/workspaces/{ws}/support-grants", ``, 404},
	{"DELETE /v1/workspaces/{ws}/support-grants/{id}", ``, 404},
	{"GET /v1/workspaces/{ws}/support-access", ``, 404},
	{"POST /v1/operator/workspaces/{ws}/enter", `{"reason":"x"}`, 0},
}

// tenant is a workspace with one of everything in it, owned by owner.
type tenant struct {
	owner *actor
	ws    wsJSON
	key   string            // the owner's API key text for ws
	ids   map[string]string // path segment before {id} → an id of that kind in ws
	token string            // a pending invitation's token
}

// populate fills ws with a pending invitation, a custom role, an API key,
// a SCIM token and a support grant.
func populate(t *testing.T, owner *actor, name, invitee string) *tenant {
	t.Helper()
	tn := &tenant{owner: owner, ws: owner.createWorkspace(t, name), ids: map[string]string{}}
	base := "/v1/workspaces/" + tn.ws.ID
	var x struct {
		ID string `json:"id"`
	}
	owner.must(t, "POST", base+"/invitations", `{"email":"`+invitee+`","role":"editor"}`, http.StatusCreated, &x)
	tn.ids["invitations"] = x.ID
	tn.token = mailedToken(t, owner.e, invitee, "/invitations/accept")
	owner.must(t, "POST", base+"/roles", `{"name":"Custom","permissions":["workspace.read"]}`, http.StatusCreated, &x)
	tn.ids["roles"] = x.ID
	tn.ids["api-keys"], tn.key = owner.createKey(t, tn.ws.ID, []string{"workspace.read", "members.read", "members.manage", "roles.read", "roles.manage", "apikeys.read", "apikeys.manage"}, 30)
	owner.stepUp(t)
	var st struct {
		SCIMToken struct {
			ID string `json:"id"`
		} `json:"scim_token"`
	}
	owner.must(t, "POST", base+"/scim-tokens", ``, http.StatusCreated, &st)
	tn.ids["scim-tokens"] = st.SCIMToken.ID
	owner.must(t, "POST", base+"/support-grants", `{"operator":"","scope":["workspace.read"],"hours":4,"reason":"ticket 1"}`, http.StatusCreated, &x)
	tn.ids["support-grants"] = x.ID
	for k, v := range tn.ids {
		if v == "" {
			t.Fatalf("populate %s: no %s id", name, k)
		}
	}
	return tn
}

// target fills a pattern in for the tenant: its method, path and body.
func (tn *tenant) target(pattern, body string) (method, path, b string) {
	method, path, _ = strings.Cut(pattern, " ")
	segs := strings.Split(path, "/")
	for i, s := range segs {
		switch s {
		case "{ws}":
			segs[i] = tn.ws.ID
		case "{user}":
			segs[i] = tn.owner.id
		case "{id}":
			segs[i] = tn.ids[segs[i-1]]
		}
	}
	r := strings.NewReplacer("{user}", tn.owner.id, "{name}", tn.ws.Name)
	return method, strings.Join(segs, "/"), r.Replace(body)
}

// snapshot is the tenant's state as its owner sees it, without the fields
// that legitimately move (last use, last activity).
func (tn *tenant) snapshot(t *testing.T) string {
	t.Helper()
	tn.owner.stepUp(t) // listing SCIM tokens is sensitive
	base := "/v1/workspaces/" + tn.ws.ID
	var b strings.Builder
	var w wsJSON
	tn.owner.must(t, "GET", base, "", http.StatusOK, &w)
	fmt.Fprintf(&b, "workspace %s %s\n", w.ID, w.Name)
	lists := []struct{ path, field string }{
		{"/members", "members"}, {"/roles", "roles"}, {"/api-keys", "api_keys"}, {"/invitations", "invitations"},
		{"/scim-tokens", "scim_tokens"}, {"/support-grants", "support_grants"},
	}
	keep := []string{"id", "user_id", "roles", "permissions", "status", "revoked_at", "email", "name", "active", "scope", "operator"}
	for _, l := range lists {
		var m map[string][]map[string]any
		tn.owner.must(t, "GET", base+l.path, "", http.StatusOK, &m)
		var rows []string
		for _, row := range m[l.field] {
			var parts []string
			for _, k := range keep {
				if v, ok := row[k]; ok {
					j, _ := json.Marshal(v)
					parts = append(parts, k+"="+string(j))
				}
			}
			rows = append(rows, strings.Join(parts, " "))
		}
		slices.Sort(rows)
		fmt.Fprintf(&b, "%s (%d)\n  %s\n", l.field, len(rows), strings.Join(rows, "\n  "))
	}
	return b.String()
}

// TestCrossTenant is the tenant-isolation suite: a caller from one tenant,
// with a session or with an API key, gets for every workspace endpoint
// aimed at another tenant the answer a workspace that does not exist gets
// (404), and the other tenant's state is unchanged.
func TestCrossTenant(t *testing.T) {
	// Every {ws} route is in the table, and every entry is a real route.
	var registered []string
	for _, p := range web.WorkspaceRoutePatterns() {
		if strings.Contains(p, "{ws}") {
			registered = append(registered, p)
		}
	}
	var covered []string
	for _, c := range crossTenantCases {
		covered = append(covered, c.pattern)
	}
	slices.Sort(registered)
	slices.Sort(covered)
	if !slices.Equal(registered, slices.Compact(slices.Clone(covered))) || len(covered) != len(registered) {
		for _, p := range registered {
			if !slices.Contains(covered, p) {
				t.Errorf("route %q has no cross-tenant case: add it to crossTenantCases", p)
			}
		}
		for _, p := range covered {
			if !slices.Contains(registered, p) {
				t.Errorf("cross-tenant case %q is not a registered route (or is listed twice)", p)
			}
		}
		t.FailNow()
	}

	forEachEngine(t, func(t *testing.T, e *tenv) {
		a := newPerson(t, e, "alice@example.com")
		a.enrolMFA(t)
		b := newPerson(t, e, "bob@example.com")
		b.enrolMFA(t)
		wa := populate(t, a, "Alpha", "pending-a@example.com")
		r := newPerson(t, e, "reader@example.com")
		join(t, a, r, wa.ws.ID, "readonly")
		wb := populate(t, b, "Bravo", "pending-b@example.com")
		ghost := &tenant{owner: a, ws: wsJSON{ID: "ws0000000000000000000000000000", Name: "Ghost"}, ids: map[string]string{}}
		for k := range wa.ids {
			ghost.ids[k] = "id000000000000000000000000"
		}

		beforeA, beforeB := wa.snapshot(t), wb.snapshot(t)

		// Fresh MFA for the intruders, so nothing but the tenant boundary
		// stands in the way.
		b.stepUp(t)
		callers := []struct {
			name   string
			who    *actor
			victim *tenant
		}{
			{"B session on WA", b, wa},
			{"B key on WA", b.withKey(wb.key), wa},
			{"A key on WB", a.withKey(wa.key), wb},
		}
		for _, c := range callers {
			for _, tc := range crossTenantCases {
				t.Run(c.name+"/"+tc.pattern, func(t *testing.T) {
					m, p, body := c.victim.target(tc.pattern, tc.body)
					got := c.who.do(t, m, p, body)
					gm, gp, gbody := ghost.target(tc.pattern, tc.body)
					none := c.who.do(t, gm, gp, gbody)
					ge, ne := decodeError(t, got), decodeError(t, none)
					if got.StatusCode != none.StatusCode || ge.Error.Code != ne.Error.Code {
						t.Errorf("%s: %d %s, but %d %s for a workspace that does not exist", tc.pattern, got.StatusCode, ge.Error.Code, none.StatusCode, ne.Error.Code)
					}
					if tc.want != 0 && (got.StatusCode != tc.want || ge.Error.Code != "workspace_not_found") {
						t.Errorf("%s: %d %s, want %d workspace_not_found", tc.pattern, got.StatusCode, ge.Error.Code, tc.want)
					}
				})
			}
		}

		// The routes without {ws} do not reach into WA either.
		var mine struct {
			Workspaces []wsJSON `json:"workspaces"`
		}
		b.must(t, "GET", "/v1/workspaces", "", http.StatusOK, &mine)
		if len(mine.Workspaces) != 1 || mine.Workspaces[0].ID != wb.ws.ID {
			t.Errorf("B lists %+v", mine.Workspaces)
		}
		var res authzResults
		b.must(t, "POST", "/v1/authz/check", `{"checks":[{"workspace":"`+wa.ws.ID+`","permission":"workspace.read"}]}`, http.StatusOK, &res)
		if res.Results[0].Allowed || res.Results[0].Reason != "not_member" {
			t.Errorf("B's check on WA: %+v", res.Results[0])
		}
		b.refused(t, "POST", "/v1/authz/check", `{"checks":[{"workspace":"`+wa.ws.ID+`","permission":"workspace.read","user":"`+a.id+`"}]}`, http.StatusNotFound, "workspace_not_found")
		b.withKey(wb.key).refused(t, "POST", "/v1/authz/check", `{"checks":[{"workspace":"`+wa.ws.ID+`","permission":"workspace.read","user":"`+a.id+`"}]}`, http.StatusNotFound, "workspace_not_found")
		b.withKey(wb.key).must(t, "POST", "/v1/authz/check", `{"workspace":"`+wa.ws.ID+`","permission":"workspace.read"}`, http.StatusOK, &res)
		if res.Results[0].Allowed {
			t.Errorf("B's key allowed in WA: %+v", res.Results[0])
		}
		// Someone else's invitation token is not B's to accept or decline.
		for _, path := range []string{"/v1/invitations/accept", "/v1/invitations/decline"} {
			if got := b.do(t, "POST", path, `{"token":"`+wa.token+`"}`); got.StatusCode < 400 || got.StatusCode >= 500 {
				t.Errorf("B %s with A's invitation token: status %d", path, got.StatusCode)
			}
		}
		// A reader of WA is not a reader of WB.
		r.refused(t, "GET", "/v1/workspaces/"+wb.ws.ID, "", http.StatusNotFound, "workspace_not_found")

		if after := wa.snapshot(t); after != beforeA {
			t.Errorf("WA changed:\nbefore %s\nafter  %s", beforeA, after)
		}
		if after := wb.snapshot(t); after != beforeB {
			t.Errorf("WB changed:\nbefore %s\nafter  %s", beforeB, after)
		}
		// The suite's own callers still work where they belong.
		b.withKey(wb.key).must(t, "GET", "/v1/workspaces/"+wb.ws.ID+"/members", "", http.StatusOK, nil)
		a.withKey(wa.key).must(t, "GET", "/v1/workspaces/"+wa.ws.ID+"/members", "", http.StatusOK, nil)
	})
}
