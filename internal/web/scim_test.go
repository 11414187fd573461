package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/scim"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// scimEnv is a workspace with an admin and a SCIM token.
type scimEnv struct {
	a     *app.App
	h     http.Handler
	ws    string
	token string
	admin tenancy.Principal
}

func newSCIMEnv(t *testing.T, a *app.App, adminEmail string) scimEnv {
	t.Helper()
	ctx := context.Background()
	signUp(t, a, adminEmail)
	u, err := a.Identity.UserByEmail(ctx, adminEmail)
	if err != nil {
		t.Fatal(err)
	}
	p := tenancy.Principal{UserID: u.ID, MFA: true, MFAAt: time.Now()}
	ws, err := a.Tenancy.CreateWorkspace(ctx, p, "Acme "+adminEmail)
	if err != nil {
		t.Fatalf("create workspace: %v", err)
	}
	_, token, err := a.Tenancy.CreateSCIMToken(ctx, p, ws.ID)
	if err != nil {
		t.Fatalf("create SCIM token: %v", err)
	}
	if !strings.HasPrefix(token, "rscim_") {
		t.Fatalf("token %q", token)
	}
	return scimEnv{a: a, h: a.Handler, ws: ws.ID, token: token, admin: p}
}

// do sends a SCIM request with the env's token.
func (e scimEnv) do(t *testing.T, method, target, body string) response {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return serve(e.h, newRequest(t, method, target, b, "Authorization", "Bearer "+e.token, "Content-Type", "application/scim+json"))
}

// want asserts the status and the SCIM content type, and decodes the body into v (if not nil).
func want(t *testing.T, res response, status int, v any) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.body)
	}
	if ct := res.Header.Get("Content-Type"); ct != scim.ContentType {
		t.Fatalf("content type %q", ct)
	}
	if v != nil {
		if err := json.Unmarshal(res.body, v); err != nil {
			t.Fatalf("body: %v: %s", err, res.body)
		}
	}
}

// wantSCIMError asserts a SCIM error response, strictly, and returns its scimType.
func wantSCIMError(t *testing.T, res response, status int) string {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.body)
	}
	if ct := res.Header.Get("Content-Type"); ct != scim.ContentType {
		t.Fatalf("error content type %q", ct)
	}
	var e scim.Error
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("not a SCIM error: %v: %s", err, res.body)
	}
	if !slices.Equal(e.Schemas, []string{scim.MessageError}) || e.Status != strconv.Itoa(status) || e.Detail == "" {
		t.Fatalf("SCIM error %+v", e)
	}
	return e.ScimType
}

func TestSCIMAuthentication(t *testing.T) {
	a := newApp(t)
	e := newSCIMEnv(t, a, "admin@example.com")
	other := newSCIMEnv(t, a, "other@example.com")
	revoked := newSCIMEnv(t, a, "third@example.com")
	toks, err := a.Tenancy.SCIMTokens(context.Background(), revoked.admin, revoked.ws)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens %v %v", toks, err)
	}
	if err := a.Tenancy.RevokeSCIMToken(context.Background(), revoked.admin, revoked.ws, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	bad := []struct{ name, header string }{
		{"none", ""},
		{"basic", "Basic " + e.token},
		{"api key", "Bearer rmp_abc_def"},
		{"garbage token", "Bearer rscim_nope_nope"},
		{"tampered token", "Bearer " + e.token[:len(e.token)-2] + "xx"},
		{"huge", "Bearer rscim_" + strings.Repeat("a", 4000)},
		{"revoked", "Bearer " + revoked.token},
	}
	for _, tt := range bad {
		for _, path := range []string{"/scim/v2/ServiceProviderConfig", "/scim/v2/Users", "/scim/v2/nope"} {
			var kv []string
			if tt.header != "" {
				kv = []string{"Authorization", tt.header}
			}
			res := serve(e.h, newRequest(t, "GET", path, nil, kv...))
			wantSCIMError(t, res, http.StatusUnauthorized)
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: WWW-Authenticate %q", tt.name, path, res.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// A token reaches only its own workspace.
	var created scim.User
	want(t, e.do(t, "POST", "/scim/v2/Users", `{"userName":"ann@example.com"}`), http.StatusCreated, &created)
	wantSCIMError(t, other.do(t, "GET", "/scim/v2/Users/"+created.ID, ""), http.StatusNotFound)
	wantSCIMError(t, other.do(t, "DELETE", "/scim/v2/Users/"+created.ID, ""), http.StatusNotFound)
	wantSCIMError(t, other.do(t, "PATCH", "/scim/v2/Users/"+created.ID, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), http.StatusNotFound)
	var list scim.ListResponse
	want(t, other.do(t, "GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "ann@example.com"`), ""), http.StatusOK, &list)
	if list.TotalResults != 0 {
		t.Errorf("another workspace's token sees %d users", list.TotalResults)
	}
}

func TestSCIMDiscovery(t *testing.T) {
	e := newSCIMEnv(t, newApp(t), "admin@example.com")
	var spc map[string]any
	want(t, e.do(t, "GET", "/scim/v2/ServiceProviderConfig", ""), http.StatusOK, &spc)
	for k, v := range map[string]bool{"patch": true, "bulk": false, "filter": true, "changePassword": false, "sort": false, "etag": false} {
		if spc[k].(map[string]any)["supported"] != v {
			t.Errorf("%s.supported = %v", k, spc[k])
		}
	}
	var schemas, types scim.ListResponse
	want(t, e.do(t, "GET", "/scim/v2/Schemas", ""), http.StatusOK, &schemas)
	want(t, e.do(t, "GET", "/scim/v2/ResourceTypes", ""), http.StatusOK, &types)
	if schemas.TotalResults != 2 || types.TotalResults != 2 {
		t.Errorf("schemas %d, resource types %d", schemas.TotalResults, types.TotalResults)
	}
	var one map[string]any
	want(t, e.do(t, "GET", "/scim/v2/Schemas/"+scim.SchemaUser, ""), http.StatusOK, &one)
	if one["id"] != scim.SchemaUser {
		t.Errorf("schema %v", one["id"])
	}
	want(t, e.do(t, "GET", "/scim/v2/ResourceTypes/Group", ""), http.StatusOK, &one)
	if one["endpoint"] != "/Groups" {
		t.Errorf("resource type %v", one)
	}
	wantSCIMError(t, e.do(t, "GET", "/scim/v2/Schemas/urn:nope", ""), http.StatusNotFound)
	wantSCIMError(t, e.do(t, "GET", "/scim/v2/Nope", ""), http.StatusNotFound)
	wantSCIMError(t, e.do(t, "POST", "/scim/v2/ServiceProviderConfig", "{}"), http.StatusMethodNotAllowed)
	wantSCIMError(t, e.do(t, "POST", "/scim/v2/Users/abc", "{}"), http.StatusMethodNotAllowed)
	wantSCIMError(t, e.do(t, "POST", "/scim/v2/Bulk", "{}"), http.StatusNotImplemented)
}

func TestSCIMUserLifecycle(t *testing.T) {
	e := newSCIMEnv(t, newApp(t), "admin@example.com")

	// Okta's create.
	var ann scim.User
	res := e.do(t, "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Ann@Example.com",
		"name":{"givenName":"Ann","familyName":"Lee"},"emails":[{"primary":true,"value":"ann@example.com","type":"work"}],
		"displayName":"Ann Lee","locale":"en-US","externalId":"00u1okta","groups":[],"password":"ignored-1234","active":true}`)
	want(t, res, http.StatusCreated, &ann)
	if ann.ID == "" || ann.UserName != "ann@example.com" || ann.ExternalID != "00u1okta" || !ann.Active ||
		len(ann.Emails) != 1 || ann.Emails[0].Value != "ann@example.com" || !ann.Emails[0].Primary {
		t.Fatalf("created %+v", ann)
	}
	if ann.Meta == nil || ann.Meta.ResourceType != "User" || ann.Meta.Location != "https://localhost/scim/v2/Users/"+ann.ID ||
		res.Header.Get("Location") != ann.Meta.Location || ann.Meta.Created.IsZero() {
		t.Errorf("meta %+v, Location %q", ann.Meta, res.Header.Get("Location"))
	}
	if len(ann.Groups) != 1 || ann.Groups[0].Value != tenancy.RoleReadOnly {
		t.Errorf("groups %+v, want the read-only role", ann.Groups)
	}
	if strings.Contains(string(res.body), "ignored-1234") {
		t.Error("the password was echoed")
	}

	// Azure's create, with string booleans, provisioned inactive.
	var bob scim.User
	want(t, e.do(t, "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId":"0a21f0f2","userName":"bob@example.com","active":"False","emails":[{"primary":"True","type":"work","value":"bob@example.com"}],
		"meta":{"resourceType":"User"},"name":{"formatted":"Bob B","familyName":"B","givenName":"Bob"},"roles":[]}`), http.StatusCreated, &bob)
	if bob.Active || bob.ExternalID != "0a21f0f2" {
		t.Errorf("azure create %+v", bob)
	}

	// Again → uniqueness (the address in another case, too).
	if st := wantSCIMError(t, e.do(t, "POST", "/scim/v2/Users", `{"userName":"ANN@example.com"}`), http.StatusConflict); st != scim.TypeUniqueness {
		t.Errorf("scimType %q", st)
	}
	for body, typ := range map[string]string{
		`{"userName":""}`:                               scim.TypeInvalidValue,
		`{"userName":"not an address"}`:                 scim.TypeInvalidValue,
		`{"userName":"x@example.com","active":"maybe"}`: scim.TypeInvalidValue,
		`{"userName":`:                                  scim.TypeInvalidSyntax,
	} {
		if st := wantSCIMError(t, e.do(t, "POST", "/scim/v2/Users", body), http.StatusBadRequest); st != typ {
			t.Errorf("POST %s: scimType %q, want %q", body, st, typ)
		}
	}
	res = serve(e.h, newRequest(t, "POST", "/scim/v2/Users", []byte(`userName=x`), "Authorization", "Bearer "+e.token, "Content-Type", "application/x-www-form-urlencoded"))
	wantSCIMError(t, res, http.StatusBadRequest)
	res = e.do(t, "POST", "/scim/v2/Users", `{"userName":"big@example.com","x":"`+strings.Repeat("a", 600<<10)+`"}`)
	wantSCIMError(t, res, http.StatusRequestEntityTooLarge)

	// Get and list.
	var got scim.User
	want(t, e.do(t, "GET", "/scim/v2/Users/"+ann.ID, ""), http.StatusOK, &got)
	if got.ID != ann.ID || got.UserName != "ann@example.com" {
		t.Errorf("get %+v", got)
	}
	wantSCIMError(t, e.do(t, "GET", "/scim/v2/Users/nosuchuser", ""), http.StatusNotFound)

	list := func(query string) scim.ListResponse {
		t.Helper()
		var l scim.ListResponse
		want(t, e.do(t, "GET", "/scim/v2/Users"+query, ""), http.StatusOK, &l)
		return l
	}
	ids := func(l scim.ListResponse) []string {
		var out []string
		for _, r := range l.Resources {
			out = append(out, r.(map[string]any)["id"].(string))
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	q := func(f string) string { return "?filter=" + url.QueryEscape(f) }
	filters := []struct {
		filter string
		want   []string
	}{
		{`userName eq "ANN@example.com"`, []string{ann.ID}},
		{`userName eq "nobody@example.com"`, nil},
		{`externalId eq "0a21f0f2"`, []string{bob.ID}},
		{`emails.value eq "bob@example.com"`, []string{bob.ID}},
		{`emails[type eq "work" and value eq "bob@example.com"]`, []string{bob.ID}},
		{`id eq "` + ann.ID + `"`, []string{ann.ID}},
		{`userName eq "ann@example.com" or externalId eq "0a21f0f2"`, sorted(ann.ID, bob.ID)},
		{`userName eq "ann@example.com" and active eq false`, nil},
		{`active eq false`, []string{bob.ID}},
		{`userName sw "a" and not (userName eq "admin@example.com")`, []string{ann.ID}},
	}
	for _, f := range filters {
		l := list(q(f.filter))
		if g := ids(l); !slices.Equal(g, f.want) || l.TotalResults != len(f.want) {
			t.Errorf("filter %s: %v (total %d), want %v", f.filter, g, l.TotalResults, f.want)
		}
	}
	all := list("")
	if all.TotalResults != 3 || all.StartIndex != 1 || all.ItemsPerPage != 3 { // admin, ann, bob
		t.Errorf("list all: total %d start %d items %d", all.TotalResults, all.StartIndex, all.ItemsPerPage)
	}
	page := list("?startIndex=2&count=1")
	if page.TotalResults != 3 || page.StartIndex != 2 || page.ItemsPerPage != 1 || ids(page)[0] != ids(scim.ListResponse{Resources: all.Resources[1:2]})[0] {
		t.Errorf("page %+v", page)
	}
	if okta := list("?startIndex=1&count=2"); okta.ItemsPerPage != 2 {
		t.Errorf("okta connection test %+v", okta)
	}
	if l := list("?startIndex=50"); l.TotalResults != 3 || len(l.Resources) != 0 || !strings.Contains(string(e.do(t, "GET", "/scim/v2/Users?startIndex=50", "").body), `"Resources":[]`) {
		t.Errorf("past the end %+v", l)
	}
	for _, bad := range []string{q(`userName eq`), q(`userName eq "x" and`), q(`((`), "?count=x", "?startIndex=1.5"} {
		res := e.do(t, "GET", "/scim/v2/Users"+bad, "")
		st := wantSCIMError(t, res, http.StatusBadRequest)
		if strings.HasPrefix(bad, "?filter") && st != scim.TypeInvalidFilter || !strings.HasPrefix(bad, "?filter") && st != scim.TypeInvalidValue {
			t.Errorf("%s: scimType %q", bad, st)
		}
	}

	// PATCH: Azure deactivation with a string boolean, Okta reactivation.
	var patched scim.User
	want(t, e.do(t, "PATCH", "/scim/v2/Users/"+ann.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`), http.StatusOK, &patched)
	if patched.Active {
		t.Error("azure deactivation left the user active")
	}
	want(t, e.do(t, "GET", "/scim/v2/Users/"+ann.ID, ""), http.StatusOK, &got)
	if got.Active {
		t.Error("deactivation was not stored")
	}
	want(t, e.do(t, "PATCH", "/scim/v2/Users/"+ann.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`), http.StatusOK, &patched)
	if !patched.Active {
		t.Error("okta reactivation left the user inactive")
	}
	want(t, e.do(t, "PATCH", "/scim/v2/Users/"+ann.ID, `{"Operations":[{"op":"Add","path":"externalId","value":"ext-2"},{"op":"Replace","path":"name.familyName","value":"Lee-Smith"},
		{"op":"Replace","path":"emails[type eq \"work\"].value","value":"ann@example.com"}]}`), http.StatusOK, &patched)
	if patched.ExternalID != "ext-2" || patched.UserName != "ann@example.com" {
		t.Errorf("patched %+v", patched)
	}
	patchErrs := []struct {
		body, typ string
	}{
		{`{"Operations":[{"op":"replace","path":"userName","value":"ann2@example.com"}]}`, scim.TypeMutability},
		{`{"Operations":[{"op":"remove","path":"active"}]}`, scim.TypeMutability},
		{`{"Operations":[{"op":"remove"}]}`, scim.TypeNoTarget},
		{`{"Operations":[{"op":"replace","path":"emails[type eq","value":"x"}]}`, scim.TypeInvalidPath},
		{`{"Operations":[{"op":"jump","path":"active","value":true}]}`, scim.TypeInvalidSyntax},
		{`{"Operations":[{"op":"replace","path":"externalId","value":"` + strings.Repeat("x", 300) + `"}]}`, scim.TypeInvalidValue},
	}
	for _, pe := range patchErrs {
		if st := wantSCIMError(t, e.do(t, "PATCH", "/scim/v2/Users/"+ann.ID, pe.body), http.StatusBadRequest); st != pe.typ {
			t.Errorf("PATCH %s: scimType %q, want %q", pe.body, st, pe.typ)
		}
	}
	wantSCIMError(t, e.do(t, "PATCH", "/scim/v2/Users/nosuchuser", `{"Operations":[{"op":"replace","path":"active","value":false}]}`), http.StatusNotFound)

	// PUT replaces externalId and active; userName cannot change.
	var put scim.User
	want(t, e.do(t, "PUT", "/scim/v2/Users/"+bob.ID, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob@example.com","externalId":"b-3","active":true}`), http.StatusOK, &put)
	if put.ExternalID != "b-3" || !put.Active {
		t.Errorf("put %+v", put)
	}
	if st := wantSCIMError(t, e.do(t, "PUT", "/scim/v2/Users/"+bob.ID, `{"userName":"robert@example.com","active":true}`), http.StatusBadRequest); st != scim.TypeMutability {
		t.Errorf("PUT rename: scimType %q", st)
	}

	// DELETE, then the user is gone.
	res = e.do(t, "DELETE", "/scim/v2/Users/"+bob.ID, "")
	if res.StatusCode != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("delete: %d %s", res.StatusCode, res.body)
	}
	wantSCIMError(t, e.do(t, "GET", "/scim/v2/Users/"+bob.ID, ""), http.StatusNotFound)
	wantSCIMError(t, e.do(t, "DELETE", "/scim/v2/Users/"+bob.ID, ""), http.StatusNotFound)
	// Provisioning the address again brings the person back as a new member.
	want(t, e.do(t, "POST", "/scim/v2/Users", `{"userName":"bob@example.com"}`), http.StatusCreated, &got)
	if got.ID != bob.ID || !got.Active {
		t.Errorf("re-provisioned %+v, want the same account, active", got)
	}
}

// TestSCIMDeprovisioningCutsOff is AC-4: deactivating or deleting a person
// over SCIM ends their sessions and revokes their API keys in the same
// request.
func TestSCIMDeprovisioningCutsOff(t *testing.T) {
	a := newApp(t)
	e := newSCIMEnv(t, a, "admin@example.com")
	ctx := context.Background()
	for _, how := range []string{"patch", "put", "delete"} {
		t.Run(how, func(t *testing.T) {
			email := how + "@example.com"
			signUp(t, a, email)
			cookie := signIn(t, e.h, email)
			var u scim.User
			want(t, e.do(t, "POST", "/scim/v2/Users", `{"userName":"`+email+`"}`), http.StatusCreated, &u)
			if err := a.Tenancy.SetMemberRoles(ctx, e.admin, e.ws, u.ID, []string{tenancy.RoleAdmin}); err != nil {
				t.Fatal(err)
			}
			p := tenancy.Principal{UserID: u.ID, MFA: true, MFAAt: time.Now()}
			_, key, err := a.Tenancy.CreateAPIKey(ctx, p, e.ws, "ci", []string{tenancy.PermContentRead}, 0)
			if err != nil {
				t.Fatalf("create API key: %v", err)
			}
			me := func() int {
				return serve(e.h, newRequest(t, "GET", "/v1/me", nil, "Cookie", "__Host-rampart_session="+cookie)).StatusCode
			}
			if st := me(); st != http.StatusOK {
				t.Fatalf("before: /v1/me %d", st)
			}
			if _, err := a.Tenancy.AuthenticateAPIKey(ctx, key, "192.0.2.1"); err != nil {
				t.Fatalf("before: API key %v", err)
			}
			switch how {
			case "patch":
				want(t, e.do(t, "PATCH", "/scim/v2/Users/"+u.ID, `{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`), http.StatusOK, nil)
			case "put":
				want(t, e.do(t, "PUT", "/scim/v2/Users/"+u.ID, `{"userName":"`+email+`","active":false}`), http.StatusOK, nil)
			case "delete":
				if res := e.do(t, "DELETE", "/scim/v2/Users/"+u.ID, ""); res.StatusCode != http.StatusNoContent {
					t.Fatalf("delete %d %s", res.StatusCode, res.body)
				}
			}
			if st := me(); st != http.StatusUnauthorized {
				t.Errorf("after: /v1/me %d, want 401", st)
			}
			if _, err := a.Tenancy.AuthenticateAPIKey(ctx, key, "192.0.2.1"); err == nil {
				t.Error("after: the API key still works")
			}
		})
	}
	// The last active Admin cannot be deprovisioned.
	admin, err := a.Identity.UserByEmail(ctx, "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	wantSCIMError(t, e.do(t, "DELETE", "/scim/v2/Users/"+admin.ID, ""), http.StatusConflict)
}

func TestSCIMGroupsAreRoles(t *testing.T) {
	a := newApp(t)
	e := newSCIMEnv(t, a, "admin@example.com")
	// Groups are roles: they are not created or deleted over SCIM.
	if st := wantSCIMError(t, e.do(t, "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Ops"}`), http.StatusForbidden); st != "" {
		t.Errorf("scimType %q", st)
	}
	wantSCIMError(t, e.do(t, "DELETE", "/scim/v2/Groups/"+tenancy.RoleEditor, ""), http.StatusForbidden)

	var ann, bob scim.User
	want(t, e.do(t, "POST", "/scim/v2/Users", `{"userName":"ann@example.com"}`), http.StatusCreated, &ann)
	want(t, e.do(t, "POST", "/scim/v2/Users", `{"userName":"bob@example.com"}`), http.StatusCreated, &bob)

	var groups scim.ListResponse
	want(t, e.do(t, "GET", "/scim/v2/Groups", ""), http.StatusOK, &groups)
	if groups.TotalResults < 3 {
		t.Fatalf("groups %+v", groups)
	}
	group := func(id string) scim.Group {
		t.Helper()
		var g scim.Group
		want(t, e.do(t, "GET", "/scim/v2/Groups/"+id, ""), http.StatusOK, &g)
		return g
	}
	members := func(g scim.Group) []string {
		var out []string
		for _, m := range g.Members {
			out = append(out, m.Value)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	editor := group(tenancy.RoleEditor)
	if editor.ID != tenancy.RoleEditor || editor.DisplayName == "" || len(editor.Members) != 0 {
		t.Fatalf("editor %+v", editor)
	}
	var found scim.ListResponse
	want(t, e.do(t, "GET", "/scim/v2/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "`+strings.ToUpper(editor.DisplayName)+`"`), ""), http.StatusOK, &found)
	if found.TotalResults != 1 || found.Resources[0].(map[string]any)["id"] != tenancy.RoleEditor {
		t.Errorf("by displayName %+v", found)
	}

	// Azure adds, Okta removes by filter.
	want(t, e.do(t, "PATCH", "/scim/v2/Groups/"+tenancy.RoleEditor, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"`+ann.ID+`"},{"value":"`+bob.ID+`"}]}]}`), http.StatusOK, nil)
	if got := members(group(tenancy.RoleEditor)); !slices.Equal(got, sorted(ann.ID, bob.ID)) {
		t.Errorf("after add %v", got)
	}
	var u scim.User
	want(t, e.do(t, "GET", "/scim/v2/Users/"+ann.ID, ""), http.StatusOK, &u)
	if !slices.ContainsFunc(u.Groups, func(g scim.GroupRef) bool { return g.Value == tenancy.RoleEditor }) {
		t.Errorf("ann's groups %+v", u.Groups)
	}
	want(t, e.do(t, "PATCH", "/scim/v2/Groups/"+tenancy.RoleEditor, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"remove","path":"members[value eq \"`+ann.ID+`\"]"}]}`), http.StatusOK, nil)
	if got := members(group(tenancy.RoleEditor)); !slices.Equal(got, []string{bob.ID}) {
		t.Errorf("after remove %v", got)
	}
	// Azure's membership check.
	var check scim.ListResponse
	want(t, e.do(t, "GET", "/scim/v2/Groups?excludedAttributes=members&filter="+url.QueryEscape(`id eq "editor" and members[value eq "`+bob.ID+`"]`), ""), http.StatusOK, &check)
	if check.TotalResults != 1 || check.Resources[0].(map[string]any)["members"] != nil {
		t.Errorf("membership check %+v", check)
	}
	// PUT replaces the members.
	want(t, e.do(t, "PUT", "/scim/v2/Groups/"+tenancy.RoleEditor, `{"displayName":"`+editor.DisplayName+`","members":[{"value":"`+ann.ID+`"}]}`), http.StatusOK, nil)
	if got := members(group(tenancy.RoleEditor)); !slices.Equal(got, []string{ann.ID}) {
		t.Errorf("after put %v", got)
	}
	// Leaving every group leaves the provisioning default, Read-only.
	roleIDs := func(id string) []string {
		var u scim.User
		want(t, e.do(t, "GET", "/scim/v2/Users/"+id, ""), http.StatusOK, &u)
		var out []string
		for _, g := range u.Groups {
			out = append(out, g.Value)
		}
		slices.Sort(out)
		return out
	}
	want(t, e.do(t, "PATCH", "/scim/v2/Groups/"+tenancy.RoleReadOnly, `{"Operations":[{"op":"remove","path":"members[value eq \"`+ann.ID+`\"]"}]}`), http.StatusOK, nil)
	if got := roleIDs(ann.ID); !slices.Equal(got, []string{tenancy.RoleEditor}) {
		t.Errorf("ann's roles %v, want editor only", got)
	}
	want(t, e.do(t, "PATCH", "/scim/v2/Groups/"+tenancy.RoleEditor, `{"Operations":[{"op":"remove","path":"members"}]}`), http.StatusOK, nil)
	if got := roleIDs(ann.ID); !slices.Equal(got, []string{tenancy.RoleReadOnly}) {
		t.Errorf("ann's roles %v, want read-only", got)
	}
	// Renames, unknown members, and the last Admin are refused.
	if st := wantSCIMError(t, e.do(t, "PATCH", "/scim/v2/Groups/"+tenancy.RoleEditor, `{"Operations":[{"op":"replace","path":"displayName","value":"Writers"}]}`), http.StatusBadRequest); st != scim.TypeMutability {
		t.Errorf("rename scimType %q", st)
	}
	if st := wantSCIMError(t, e.do(t, "PATCH", "/scim/v2/Groups/"+tenancy.RoleEditor, `{"Operations":[{"op":"add","path":"members","value":[{"value":"nosuchuser"}]}]}`), http.StatusBadRequest); st != scim.TypeInvalidValue {
		t.Errorf("unknown member scimType %q", st)
	}
	wantSCIMError(t, e.do(t, "PATCH", "/scim/v2/Groups/"+tenancy.RoleAdmin, `{"Operations":[{"op":"remove","path":"members"}]}`), http.StatusConflict)
	wantSCIMError(t, e.do(t, "GET", "/scim/v2/Groups/nosuchrole", ""), http.StatusNotFound)
}
