package scim

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/fault"
)

func ann() User {
	return User{Schemas: []string{SchemaUser}, ID: "u1", ExternalID: "ext-1", UserName: "ann@example.com", Active: true,
		Emails: []Email{{Value: "ann@example.com", Type: "work", Primary: true}}}
}

func TestApplyUserPatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want func(u *User)
	}{
		{"okta deactivate", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			func(u *User) { u.Active = false }},
		{"okta reactivate", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`,
			func(u *User) {}},
		{"azure deactivate with string boolean", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			func(u *User) { u.Active = false }},
		{"azure deactivate with boolean", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":false}]}`,
			func(u *User) { u.Active = false }},
		{"azure update attributes", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"emails[type eq \"work\"].value","value":"ann@example.com"},
			{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}]}`,
			func(u *User) {}},
		{"azure add externalId", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"externalId","value":"0a21f0f2-8d2a-4f8e"}]}`,
			func(u *User) { u.ExternalID = "0a21f0f2-8d2a-4f8e" }},
		{"azure path-less replace with dotted keys", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{
			"displayName":"Ann","name.givenName":"Ann","name.familyName":"Lee","active":"True","externalId":"e2",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Ops"}}]}`,
			func(u *User) { u.ExternalID = "e2" }},
		{"okta profile push ignores unstored attributes", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{
			"id":"u1","userName":"ann@example.com","name":{"givenName":"Ann","familyName":"Lee"},"displayName":"Ann Lee",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Ops"}}}]}`,
			func(u *User) {}},
		{"core schema urn object", `{"Operations":[{"op":"replace","value":{"urn:ietf:params:scim:schemas:core:2.0:User":{"externalId":"e3","active":false}}}]}`,
			func(u *User) { u.ExternalID, u.Active = "e3", false }},
		{"core schema urn path", `{"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:active","value":false}]}`,
			func(u *User) { u.Active = false }},
		{"remove externalId", `{"Operations":[{"op":"remove","path":"externalId"}]}`,
			func(u *User) { u.ExternalID = "" }},
		{"lower-case operations key, upper-case op and attribute", `{"operations":[{"OP":"REPLACE","PATH":"ACTIVE","VALUE":"false"}]}`,
			func(u *User) { u.Active = false }},
		{"replace userName", `{"Operations":[{"op":"replace","path":"userName","value":"ann.lee@example.com"}]}`,
			func(u *User) { u.UserName = "ann.lee@example.com" }},
		{"add email (github style)", `{"Operations":[{"op":"add","path":"emails","value":[{"type":"home","value":"ann@home.example"}]}]}`,
			func(u *User) { u.Emails = append(u.Emails, Email{Value: "ann@home.example", Type: "home"}) }},
		{"add primary email moves primary", `{"Operations":[{"op":"add","path":"emails","value":{"value":"a2@example.com","primary":"true"}}]}`,
			func(u *User) {
				u.Emails = []Email{{Value: "ann@example.com", Type: "work"}, {Value: "a2@example.com", Primary: true}}
			}},
		{"replace emails", `{"Operations":[{"op":"replace","path":"emails","value":[{"value":"x@example.com","primary":true}]}]}`,
			func(u *User) { u.Emails = []Email{{Value: "x@example.com", Primary: true}} }},
		{"replace work email value", `{"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@example.com"}]}`,
			func(u *User) { u.Emails[0].Value = "new@example.com" }},
		{"add home email value creates it", `{"Operations":[{"op":"add","path":"emails[type eq \"home\"].value","value":"h@example.com"}]}`,
			func(u *User) { u.Emails = append(u.Emails, Email{Value: "h@example.com", Type: "home"}) }},
		{"remove email by filter", `{"Operations":[{"op":"remove","path":"emails[type eq \"work\"]"}]}`,
			func(u *User) { u.Emails = nil }},
		{"remove all emails", `{"Operations":[{"op":"remove","path":"emails"}]}`,
			func(u *User) { u.Emails = nil }},
		{"remove unmatched is not an error", `{"Operations":[{"op":"remove","path":"emails[type eq \"home\"]"}]}`,
			func(u *User) {}},
		{"several operations in order", `{"Operations":[{"op":"replace","path":"active","value":false},{"op":"replace","path":"active","value":true},{"op":"add","path":"externalId","value":"z"}]}`,
			func(u *User) { u.ExternalID = "z" }},
		{"unknown attribute ignored", `{"Operations":[{"op":"add","path":"phoneNumbers","value":[{"value":"555","type":"work"}]},{"op":"remove","path":"title"}]}`,
			func(u *User) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePatch([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePatch: %v", err)
			}
			got, want := ann(), ann()
			tt.want(&want)
			if err := ApplyUserPatch(&got, p); err != nil {
				t.Fatalf("ApplyUserPatch: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestApplyUserPatchErrors(t *testing.T) {
	tests := []struct {
		name, body, code string
	}{
		{"remove userName", `{"Operations":[{"op":"remove","path":"userName"}]}`, TypeMutability},
		{"remove active", `{"Operations":[{"op":"remove","path":"active"}]}`, TypeMutability},
		{"empty userName", `{"Operations":[{"op":"replace","path":"userName","value":"  "}]}`, TypeInvalidValue},
		{"id is read-only", `{"Operations":[{"op":"replace","path":"id","value":"u2"}]}`, TypeMutability},
		{"groups are read-only", `{"Operations":[{"op":"add","path":"groups","value":[{"value":"admin"}]}]}`, TypeMutability},
		{"active not a boolean", `{"Operations":[{"op":"replace","path":"active","value":"yes"}]}`, TypeInvalidValue},
		{"active as number", `{"Operations":[{"op":"replace","value":{"active":0}}]}`, TypeInvalidValue},
		{"userName not a string", `{"Operations":[{"op":"replace","path":"userName","value":["a"]}]}`, TypeInvalidValue},
		{"replace unmatched email", `{"Operations":[{"op":"replace","path":"emails[type eq \"home\"].value","value":"h@example.com"}]}`, TypeNoTarget},
		{"sub-attribute of simple attribute", `{"Operations":[{"op":"replace","path":"active.value","value":true}]}`, TypeInvalidPath},
		{"bad email list", `{"Operations":[{"op":"add","path":"emails","value":"x@example.com"}]}`, TypeInvalidValue},
		{"bad key in path-less value", `{"Operations":[{"op":"replace","value":{"a b":1}}]}`, TypeInvalidPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePatch([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePatch: %v", err)
			}
			u := ann()
			err = ApplyUserPatch(&u, p)
			if fe := fault.As(err); err == nil || fe.Kind != fault.Invalid || fe.Code != tt.code {
				t.Fatalf("ApplyUserPatch: %v, want invalid %s", err, tt.code)
			}
			if !reflect.DeepEqual(u, ann()) {
				t.Errorf("a failed patch changed the user: %+v", u)
			}
		})
	}
	// All or nothing: a later failing operation undoes the earlier ones.
	p, err := ParsePatch([]byte(`{"Operations":[{"op":"replace","path":"active","value":false},{"op":"remove","path":"emails"},{"op":"remove","path":"userName"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	u := ann()
	if err := ApplyUserPatch(&u, p); err == nil || !reflect.DeepEqual(u, ann()) {
		t.Errorf("partial patch applied: err %v, user %+v", err, u)
	}
}

func TestParsePatchErrors(t *testing.T) {
	tests := []struct {
		name, body, code string
	}{
		{"not json", `{`, TypeInvalidSyntax},
		{"trailing data", `{"Operations":[{"op":"remove","path":"title"}]} {}`, TypeInvalidSyntax},
		{"array body", `[]`, TypeInvalidSyntax},
		{"no operations", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, TypeInvalidSyntax},
		{"empty operations", `{"Operations":[]}`, TypeInvalidSyntax},
		{"wrong schema", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"Operations":[{"op":"remove","path":"title"}]}`, TypeInvalidSyntax},
		{"unknown op", `{"Operations":[{"op":"move","path":"title","value":"x"}]}`, TypeInvalidSyntax},
		{"op not a string", `{"Operations":[{"op":1,"path":"title"}]}`, TypeInvalidSyntax},
		{"remove without path", `{"Operations":[{"op":"remove"}]}`, TypeNoTarget},
		{"add without value", `{"Operations":[{"op":"add","path":"title"}]}`, TypeInvalidSyntax},
		{"replace with null value", `{"Operations":[{"op":"replace","path":"title","value":null}]}`, TypeInvalidSyntax},
		{"path-less scalar value", `{"Operations":[{"op":"replace","value":false}]}`, TypeInvalidValue},
		{"bad path", `{"Operations":[{"op":"replace","path":"emails[type eq","value":"x"}]}`, TypeInvalidPath},
		{"path not a string", `{"Operations":[{"op":"replace","path":1,"value":"x"}]}`, TypeInvalidPath},
		{"too many operations", `{"Operations":[` + strings.Repeat(`{"op":"remove","path":"title"},`, maxOperations) + `{"op":"remove","path":"title"}]}`, TypeInvalidSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePatch([]byte(tt.body))
			if fe := fault.As(err); err == nil || fe.Kind != fault.Invalid || fe.Code != tt.code {
				t.Fatalf("ParsePatch: %v, want invalid %s", err, tt.code)
			}
		})
	}
}

func editors() Group {
	return Group{Schemas: []string{SchemaGroup}, ID: "editor", DisplayName: "Editor", Members: []Member{{Value: "u1"}, {Value: "u2"}}}
}

func memberIDs(g Group) []string {
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.Value)
	}
	return ids
}

func TestApplyGroupPatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"azure add member", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"u3"}]}]}`,
			[]string{"u1", "u2", "u3"}},
		{"azure remove member", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"u1"}]}]}`,
			[]string{"u2"}},
		{"okta remove member by filter", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"u2\"]"}]}`,
			[]string{"u1"}},
		{"okta add members with display", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"u4","display":"d@example.com"},{"value":"u1"}]}]}`,
			[]string{"u1", "u2", "u4"}},
		{"okta rename to the same name with id", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"editor","displayName":"editor"}}]}`,
			[]string{"u1", "u2"}},
		{"replace members", `{"Operations":[{"op":"replace","path":"members","value":[{"value":"u9"},{"value":"u9"}]}]}`,
			[]string{"u9"}},
		{"path-less replace of members", `{"Operations":[{"op":"replace","value":{"members":[{"value":"u5"}]}}]}`,
			[]string{"u5"}},
		{"remove all members", `{"Operations":[{"op":"remove","path":"members"}]}`, nil},
		{"add then remove", `{"Operations":[{"op":"add","path":"members","value":[{"value":"u3"}]},{"op":"remove","path":"members[value eq \"u1\" or value eq \"u3\"]"}]}`,
			[]string{"u2"}},
		{"externalId ignored", `{"Operations":[{"op":"add","path":"externalId","value":"g-1"}]}`, []string{"u1", "u2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePatch([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePatch: %v", err)
			}
			g := editors()
			if err := ApplyGroupPatch(&g, p); err != nil {
				t.Fatalf("ApplyGroupPatch: %v", err)
			}
			if got := memberIDs(g); !slices.Equal(got, tt.want) {
				t.Errorf("members %v, want %v", got, tt.want)
			}
			if g.ID != "editor" || g.DisplayName != "Editor" {
				t.Errorf("group identity changed: %+v", g)
			}
		})
	}
	errs := []struct {
		name, body, code string
	}{
		{"rename", `{"Operations":[{"op":"replace","path":"displayName","value":"Writers"}]}`, TypeMutability},
		{"path-less rename", `{"Operations":[{"op":"replace","value":{"displayName":"Writers"}}]}`, TypeMutability},
		{"remove displayName", `{"Operations":[{"op":"remove","path":"displayName"}]}`, TypeMutability},
		{"replace id", `{"Operations":[{"op":"replace","path":"id","value":"admin"}]}`, TypeMutability},
		{"member without value", `{"Operations":[{"op":"add","path":"members","value":[{"display":"x"}]}]}`, TypeInvalidValue},
		{"member value not a string", `{"Operations":[{"op":"add","path":"members","value":[{"value":7}]}]}`, TypeInvalidValue},
		{"replace with filter", `{"Operations":[{"op":"replace","path":"members[value eq \"u1\"]","value":{"value":"u3"}}]}`, TypeInvalidPath},
		{"members sub-attribute", `{"Operations":[{"op":"replace","path":"members.value","value":"u3"}]}`, TypeInvalidPath},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePatch([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePatch: %v", err)
			}
			g := editors()
			err = ApplyGroupPatch(&g, p)
			if fe := fault.As(err); err == nil || fe.Code != tt.code {
				t.Fatalf("ApplyGroupPatch: %v, want %s", err, tt.code)
			}
			if !reflect.DeepEqual(g, editors()) {
				t.Errorf("a failed patch changed the group: %+v", g)
			}
		})
	}
}

func TestParseUser(t *testing.T) {
	tests := []struct {
		name string
		body string
		want User
	}{
		{"okta create", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann@example.com",
			"name":{"givenName":"Ann","familyName":"Lee"},"emails":[{"primary":true,"value":"ann@example.com","type":"work"}],
			"displayName":"Ann Lee","locale":"en-US","externalId":"00u1","groups":[],"password":"ignored","active":true}`,
			User{Schemas: []string{SchemaUser}, UserName: "ann@example.com", ExternalID: "00u1", Active: true,
				Emails: []Email{{Value: "ann@example.com", Type: "work", Primary: true}}}},
		{"azure create", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"externalId":"0a21f0f2-8d2a-4f8e-bf98-7df1a7c4a2c2","userName":"Test_User_ab6490ee@testuser.com","active":"False",
			"emails":[{"primary":"True","type":"work","value":"Test_User_fd0ea19b@testuser.com"}],"meta":{"resourceType":"User"},
			"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},"roles":[]}`,
			User{Schemas: []string{SchemaUser}, UserName: "Test_User_ab6490ee@testuser.com", ExternalID: "0a21f0f2-8d2a-4f8e-bf98-7df1a7c4a2c2",
				Emails: []Email{{Value: "Test_User_fd0ea19b@testuser.com", Type: "work", Primary: true}}}},
		{"minimal, active defaults to true", `{"userName":"  b@example.com "}`,
			User{Schemas: []string{SchemaUser}, UserName: "b@example.com", Active: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUser([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseUser: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	bad := []struct{ body, code string }{
		{`{}`, TypeInvalidValue},
		{`{"userName":""}`, TypeInvalidValue},
		{`{"userName":7}`, TypeInvalidValue},
		{`{"userName":"a@example.com","active":"maybe"}`, TypeInvalidValue},
		{`{"userName":"a@example.com","emails":"a@example.com"}`, TypeInvalidValue},
		{`{"userName":"a@example.com","emails":[{"value":"a@example.com","primary":"yes"}]}`, TypeInvalidValue},
		{`{"userName":"` + strings.Repeat("a", maxUserName+1) + `"}`, TypeInvalidValue},
		{`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"a@example.com"}`, TypeInvalidSyntax},
		{`{"userName":"a@example.com"`, TypeInvalidSyntax},
		{`"a@example.com"`, TypeInvalidSyntax},
	}
	for _, tt := range bad {
		_, err := ParseUser([]byte(tt.body))
		if fe := fault.As(err); err == nil || fe.Kind != fault.Invalid || fe.Code != tt.code {
			t.Errorf("ParseUser(%.60s): %v, want invalid %s", tt.body, err, tt.code)
		}
	}
}

func TestParseGroup(t *testing.T) {
	g, err := ParseGroup([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Editor","members":[{"value":"u1","display":"a"},{"value":"u2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.DisplayName != "Editor" || !slices.Equal(memberIDs(g), []string{"u1", "u2"}) {
		t.Errorf("got %+v", g)
	}
	for _, body := range []string{`{"displayName":"x","members":[{"value":""}]}`, `{"members":{}}`, `{"schemas":["x"],"displayName":"x"}`, `[`} {
		if _, err := ParseGroup([]byte(body)); !fault.Is(err, fault.Invalid) {
			t.Errorf("ParseGroup(%s): %v, want invalid", body, err)
		}
	}
}

func TestParsePage(t *testing.T) {
	tests := []struct {
		start, count     string
		wantStart, wantN int
		ok               bool
	}{
		{"", "", 1, MaxResults, true},
		{"1", "2", 1, 2, true},
		{"0", "-5", 1, 0, true},
		{"-3", "100000", 1, MaxResults, true},
		{"99999999999999999999999", "10", 1 << 40, 10, true},
		{"x", "", 0, 0, false},
		{"", "1.5", 0, 0, false},
		{"", " ", 0, 0, false},
	}
	for _, tt := range tests {
		s, n, err := ParsePage(tt.start, tt.count)
		if (err == nil) != tt.ok || (tt.ok && (s < tt.wantStart || n != tt.wantN)) {
			t.Errorf("ParsePage(%q, %q) = %d, %d, %v", tt.start, tt.count, s, n, err)
		}
		if err != nil && fault.As(err).Code != TypeInvalidValue {
			t.Errorf("ParsePage(%q, %q): code %q", tt.start, tt.count, fault.As(err).Code)
		}
	}
	for _, tt := range []struct{ total, start, count, lo, hi int }{
		{10, 1, 200, 0, 10}, {10, 3, 2, 2, 4}, {10, 11, 5, 10, 10}, {10, 1 << 40, 5, 10, 10}, {0, 1, 0, 0, 0},
	} {
		if lo, hi := Window(tt.total, tt.start, tt.count); lo != tt.lo || hi != tt.hi {
			t.Errorf("Window(%d, %d, %d) = %d, %d", tt.total, tt.start, tt.count, lo, hi)
		}
	}
}

func TestJSONShapes(t *testing.T) {
	u := ann()
	u.Meta = &Meta{ResourceType: "User", Location: "https://r.example/scim/v2/Users/u1"}
	b, _ := json.Marshal(NewListResponse(1, 1, []User{u}))
	want := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"startIndex":1,"itemsPerPage":1,"Resources":[` +
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","externalId":"ext-1","userName":"ann@example.com","active":true,` +
		`"emails":[{"value":"ann@example.com","type":"work","primary":true}],"meta":{"resourceType":"User","location":"https://r.example/scim/v2/Users/u1"}}]}`
	if string(b) != want {
		t.Errorf("list response\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(NewListResponse[User](0, 1, nil))
	if !strings.Contains(string(b), `"Resources":[]`) {
		t.Errorf("empty list must carry an empty Resources array: %s", b)
	}
	b, _ = json.Marshal(NewError(400, TypeInvalidFilter, "bad"))
	if string(b) != `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"bad"}` {
		t.Errorf("error body %s", b)
	}
	for _, code := range []string{TypeInvalidFilter, TypeUniqueness, TypeNoTarget} {
		if !IsType(code) {
			t.Errorf("IsType(%s) = false", code)
		}
	}
	if IsType("last_admin") || IsType("") {
		t.Error("IsType accepts a non-SCIM code")
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	base := "https://r.example/scim/v2"
	var spc map[string]any
	b, _ := json.Marshal(NewServiceProviderConfig(base))
	_ = json.Unmarshal(b, &spc)
	checks := map[string]any{"patch": true, "bulk": false, "filter": true, "changePassword": false, "sort": false, "etag": false}
	for k, want := range checks {
		if got := spc[k].(map[string]any)["supported"]; got != want {
			t.Errorf("%s.supported = %v, want %v", k, got, want)
		}
	}
	if spc["filter"].(map[string]any)["maxResults"] != float64(MaxResults) {
		t.Errorf("filter.maxResults = %v", spc["filter"])
	}
	if as := spc["authenticationSchemes"].([]any); len(as) != 1 || as[0].(map[string]any)["type"] != "oauthbearertoken" {
		t.Errorf("authenticationSchemes = %v", as)
	}
	rts := ResourceTypes(base)
	if len(rts) != 2 || rts[0].Endpoint != "/Users" || rts[1].Schema != SchemaGroup {
		t.Errorf("resource types %+v", rts)
	}
	ss := Schemas(base)
	if len(ss) != 2 || ss[0].ID != SchemaUser || ss[1].ID != SchemaGroup {
		t.Fatalf("schemas %+v", ss)
	}
	if ss[0].Attributes[0].Name != "userName" || !ss[0].Attributes[0].Required || ss[0].Attributes[0].Uniqueness != "server" {
		t.Errorf("userName definition %+v", ss[0].Attributes[0])
	}
}

func FuzzParsePatch(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"Operations":[{"op":"replace","value":{"active":false,"name.givenName":"x","urn:ietf:params:scim:schemas:core:2.0:User":{"externalId":"e"}}}]}`,
		`{"Operations":[{"op":"add","path":"emails[type eq \"home\"].value","value":"h@example.com"}]}`,
		`{"Operations":[{"op":"remove","path":"members[value eq \"u2\"]"}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"u3"}]}]}`,
		`{"Operations":[{"op":"replace","path":"emails","value":{"value":"a@b","primary":"true"}}]}`,
		`{"Operations":[{"op":"remove","path":"emails[type eq \"work\"].primary"}]}`,
		`{`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePatch(body)
		if err != nil {
			if fe := fault.As(err); fe.Kind != fault.Invalid || !IsType(fe.Code) {
				t.Fatalf("error of kind %v code %q", fe.Kind, fe.Code)
			}
			return
		}
		u := ann()
		before := ann()
		if err := ApplyUserPatch(&u, p); err != nil {
			if fe := fault.As(err); fe.Kind != fault.Invalid || !IsType(fe.Code) {
				t.Fatalf("apply error of kind %v code %q", fe.Kind, fe.Code)
			}
			if !reflect.DeepEqual(u, before) {
				t.Fatalf("failed patch changed the user")
			}
		} else if strings.TrimSpace(u.UserName) == "" || u.ID != "u1" {
			t.Fatalf("patch broke an invariant: %+v", u)
		}
		g := editors()
		if err := ApplyGroupPatch(&g, p); err == nil {
			if g.ID != "editor" || g.DisplayName != "Editor" {
				t.Fatalf("patch changed the group's identity: %+v", g)
			}
			seen := map[string]bool{}
			for _, m := range g.Members {
				if m.Value == "" || seen[m.Value] {
					t.Fatalf("members empty or duplicated: %+v", g.Members)
				}
				seen[m.Value] = true
			}
		}
	})
}

func TestMemberChanges(t *testing.T) {
	ms := func(ids ...string) []Member {
		var out []Member
		for _, id := range ids {
			out = append(out, Member{Value: id})
		}
		return out
	}
	tests := []struct {
		before, after  []Member
		added, removed []string
	}{
		{ms(), ms(), nil, nil},
		{ms("a", "b"), ms("a", "b"), nil, nil},
		{ms("a"), ms("a", "b", "b", "c"), []string{"b", "c"}, nil},
		{ms("a", "b", "c"), ms("b"), nil, []string{"a", "c"}},
		{ms("a", "b"), ms("c", "a"), []string{"c"}, []string{"b"}},
		{ms("a", "a"), nil, nil, []string{"a"}},
	}
	for _, tt := range tests {
		added, removed := MemberChanges(tt.before, tt.after)
		if !slices.Equal(added, tt.added) || !slices.Equal(removed, tt.removed) {
			t.Errorf("MemberChanges(%v, %v) = %v, %v; want %v, %v", tt.before, tt.after, added, removed, tt.added, tt.removed)
		}
	}
}
