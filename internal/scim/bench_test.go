package scim

import (
	"strconv"
	"testing"
)

// BenchmarkFilterUsers is the work of GET /Users?filter=userName eq "…" on
// a 1,000-member workspace: parse once, render and match every member.
func BenchmarkFilterUsers(b *testing.B) {
	users := make([]User, 1000)
	for i := range users {
		email := "user" + strconv.Itoa(i) + "@example.com"
		users[i] = User{Schemas: []string{SchemaUser}, ID: "id" + strconv.Itoa(i), UserName: email, Active: true,
			Emails: []Email{{Value: email, Type: "work", Primary: true}}, Groups: []GroupRef{{Value: "readonly", Display: "Read-only"}}}
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := ParseFilter(`userName eq "USER999@example.com"`)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for i := range users {
			if f.Match(&users[i]) {
				n++
			}
		}
		if n != 1 {
			b.Fatalf("%d matches", n)
		}
	}
}

func BenchmarkParseFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFilter(`userType eq "Employee" and emails[type eq "work" and value co "@example.com"] or not (title pr)`); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPatchUser(b *testing.B) {
	body := []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"},
		{"op":"Replace","path":"emails[type eq \"work\"].value","value":"ann@example.com"},{"op":"Replace","path":"name.familyName","value":"Lee"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParsePatch(body)
		if err != nil {
			b.Fatal(err)
		}
		u := ann()
		if err := ApplyUserPatch(&u, p); err != nil || u.Active {
			b.Fatal(err)
		}
	}
}
