package scim

import (
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// babs is RFC 7643 §8.2's Barbara Jensen, trimmed, as filter input.
func babs() map[string]any {
	return map[string]any{
		"schemas":    []any{SchemaUser, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"id":         "2819c223-7f76-453a-919d-413861904646",
		"externalId": "701984",
		"userName":   "bjensen@example.com",
		"userType":   "Employee",
		"title":      "Tour Guide",
		"active":     true,
		"name":       map[string]any{"familyName": "O'Malley", "givenName": "Barbara"},
		"emails": []any{
			map[string]any{"value": "bjensen@example.com", "type": "work", "primary": true},
			map[string]any{"value": "babs@jensen.org", "type": "home"},
		},
		"ims":  []any{map[string]any{"value": "someaimhandle", "type": "aim"}},
		"meta": map[string]any{"resourceType": "User", "lastModified": time.Date(2011, 5, 13, 4, 42, 34, 0, time.UTC)},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"employeeNumber": "701984", "costCenter": 4130.0},
		"x-count": 3,
	}
}

func TestParseFilterRFCExamples(t *testing.T) {
	// The examples of RFC 7644 §3.4.2.2, with the canonical rendering
	// (which shows the parse) and whether Babs matches.
	tests := []struct {
		in, want string
		match    bool
	}{
		{`userName Eq "john"`, `userName eq "john"`, false},
		{`Username eq "john"`, `Username eq "john"`, false},
		{`userName eq "bjensen@EXAMPLE.com"`, `userName eq "bjensen@EXAMPLE.com"`, true},
		{`name.familyName co "O'Malley"`, `name.familyName co "O'Malley"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley"`, `urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley"`, true},
		{`userName sw "J"`, `userName sw "J"`, false},
		{`userName sw "B"`, `userName sw "B"`, true},
		{`title pr`, `title pr`, true},
		{`nickName pr`, `nickName pr`, false},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`, false},
		{`meta.lastModified ge "2011-05-13T04:42:34Z"`, `meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
		{`meta.lastModified lt "2011-05-13T04:42:34Z"`, `meta.lastModified lt "2011-05-13T04:42:34Z"`, false},
		{`meta.lastModified le "2011-05-13T04:42:34Z"`, `meta.lastModified le "2011-05-13T04:42:34Z"`, true},
		{`title pr and userType eq "Employee"`, `(title pr and userType eq "Employee")`, true},
		{`title pr or userType eq "Intern"`, `(title pr or userType eq "Intern")`, true},
		{`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, `schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, true},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
			`(userType eq "Employee" and (emails co "example.com" or emails.value co "example.org"))`, true},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
			`(userType ne "Employee" and not ((emails co "example.com" or emails.value co "example.org")))`, false},
		{`userType eq "Employee" and (emails.type eq "work")`, `(userType eq "Employee" and emails.type eq "work")`, true},
		{`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
			`(userType eq "Employee" and emails[(type eq "work" and value co "@example.com")])`, true},
		{`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
			`(emails[(type eq "work" and value co "@example.com")] or ims[(type eq "xmpp" and value co "@foo.com")])`, true},
		// Precedence: and binds tighter than or; not applies to its parentheses.
		{`a eq "1" or b eq "2" and c eq "3"`, `(a eq "1" or (b eq "2" and c eq "3"))`, false},
		{`userName eq "x" or userName eq "y" or title pr`, `((userName eq "x" or userName eq "y") or title pr)`, true},
		{`NOT (userName eq "x") AND active EQ true`, `(not (userName eq "x") and active eq true)`, true},
		// Literals and types.
		{`active eq false`, `active eq false`, false},
		{`active ne false`, `active ne false`, true},
		{`x-count gt 2`, `x-count gt 2`, true},
		{`x-count le 2.5`, `x-count le 2.5`, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq 4130`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq 4130`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
		{`nickName eq null`, `nickName eq null`, true},
		{`title ne null`, `title ne null`, true},
		{`nickName ne "x"`, `nickName ne "x"`, true},
		{`userName eq "bjensen\u0040example.com"`, `userName eq "bjensen@example.com"`, true},
		{`emails ew ".ORG"`, `emails ew ".ORG"`, true},
		// id and externalId compare case-sensitively.
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, `id eq "2819C223-7F76-453A-919D-413861904646"`, false},
		{`externalId eq "701984"`, `externalId eq "701984"`, true},
		{`emails.value eq "BABS@jensen.org"`, `emails.value eq "BABS@jensen.org"`, true},
		{"\tuserName\neq  \"bjensen@example.com\" ", `userName eq "bjensen@example.com"`, true},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.in, err)
			continue
		}
		if got := f.String(); got != tt.want {
			t.Errorf("ParseFilter(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := f.Match(Attrs(babs())); got != tt.match {
			t.Errorf("%q matches Babs = %v, want %v", tt.in, got, tt.match)
		}
		// The rendering is itself a filter that parses to the same thing.
		g, err := ParseFilter(f.String())
		if err != nil || g.String() != f.String() {
			t.Errorf("re-parse of %s: %v, %s", f, err, g)
		}
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []string{
		``,
		`   `,
		`userName`,
		`userName eq`,
		`userName eq john`,
		`userName equals "john"`,
		`userName eq "john`,
		`userName eq "\x"`,
		`(userName eq "john"`,
		`userName eq "john")`,
		`userName eq "john" and`,
		`and userName eq "john"`,
		`not userName eq "john"`,
		`emails[type eq "work"`,
		`emails[type eq "work"]]`,
		`emails[type[value eq "x"]]`,
		`emails.type[value eq "x"]`,
		`userName gt true`,
		`userName co null`,
		`1userName eq "x"`,
		`user name eq "x"`,
		`http://x:y eq "x"`,
		`a.b.c eq "x"`,
		`userName eq 1e999`,
		`userName eq NaN`,
		strings.Repeat("(", 40) + `a pr` + strings.Repeat(")", 40),
		strings.Repeat("not (", 40) + `a pr` + strings.Repeat(")", 40),
		`a eq "` + strings.Repeat("x", maxFilterLen) + `"`,
	}
	for _, in := range tests {
		f, err := ParseFilter(in)
		if err == nil {
			t.Errorf("ParseFilter(%.60q) = %s, want an error", in, f)
			continue
		}
		fe := fault.As(err)
		if fe.Kind != fault.Invalid || fe.Code != TypeInvalidFilter {
			t.Errorf("ParseFilter(%.60q): kind %v code %q, want invalid/invalidFilter", in, fe.Kind, fe.Code)
		}
		if len(fe.Message) > 200 {
			t.Errorf("ParseFilter(%.60q): message echoes too much: %d bytes", in, len(fe.Message))
		}
	}
}

func TestFilterNestingBound(t *testing.T) {
	ok := strings.Repeat("(", maxDepth) + `a pr` + strings.Repeat(")", maxDepth)
	if _, err := ParseFilter(ok); err != nil {
		t.Errorf("depth %d: %v", maxDepth, err)
	}
	deep := strings.Repeat("(", maxDepth+1) + `a pr` + strings.Repeat(")", maxDepth+1)
	if _, err := ParseFilter(deep); err == nil {
		t.Errorf("depth %d accepted", maxDepth+1)
	}
}

func TestFilterOnUserAndGroup(t *testing.T) {
	u := User{Schemas: []string{SchemaUser}, ID: "u1", ExternalID: "ext-1", UserName: "Ann@Example.com", Active: true,
		Emails: []Email{{Value: "ann@example.com", Type: "work", Primary: true}}}
	g := Group{Schemas: []string{SchemaGroup}, ID: "editor", DisplayName: "Editor", Members: []Member{{Value: "u1"}, {Value: "u2"}}}
	tests := []struct {
		filter string
		attrs  Resource
		want   bool
	}{
		{`userName eq "ann@example.com"`, &u, true},
		{`USERNAME eq "ANN@EXAMPLE.COM"`, &u, true},
		{`externalId eq "ext-1"`, &u, true},
		{`externalId eq "EXT-1"`, &u, false},
		{`emails.value eq "ann@example.com"`, &u, true},
		{`emails[type eq "work" and primary eq true]`, &u, true},
		{`id eq "u1" and active eq true`, &u, true},
		{`id eq "u2" or userName eq "nobody@example.com"`, &u, false},
		{`displayName eq "editor"`, &g, true},
		{`id eq "editor" and members[value eq "u2"]`, &g, true},
		{`id eq "editor" and members[value eq "U2"]`, &g, false},
		{`members eq "u1"`, &g, true},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		if got := f.Match(tt.attrs); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.filter, got, tt.want)
		}
	}
	var none *Filter
	if !none.Match(&u) {
		t.Error("a nil filter must match everything")
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in, want string
		attr     string
		sub      string
		filter   bool
	}{
		{`active`, `active`, "active", "", false},
		{`name.givenName`, `name.givenName`, "name", "givenName", false},
		{`members[value eq "2819c223-7f76-453a-919d-413861904646"]`, `members[value eq "2819c223-7f76-453a-919d-413861904646"]`, "members", "", true},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`, "emails", "value", true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`, "employeeNumber", "", false},
		{`addresses[type eq "work" and primary eq true].streetAddress`, `addresses[(type eq "work" and primary eq true)].streetAddress`, "addresses", "streetAddress", true},
	}
	for _, tt := range tests {
		p, err := ParsePath(tt.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.in, err)
			continue
		}
		if p.String() != tt.want || p.Attr != tt.attr || p.Sub != tt.sub || (p.Filter != nil) != tt.filter {
			t.Errorf("ParsePath(%q) = %s (attr %q sub %q filter %v)", tt.in, p, p.Attr, p.Sub, p.Filter != nil)
		}
	}
	for _, in := range []string{``, `[`, `emails[`, `emails[type eq "work"`, `emails[type eq "work"].`, `emails[type eq "work"]x`,
		`emails.value[type eq "work"]`, `emails[type eq "work"].value.x`, `a b`, `emails[x[y pr]]`, `"active"`} {
		if p, err := ParsePath(in); err == nil {
			t.Errorf("ParsePath(%q) = %s, want an error", in, p)
		} else if fe := fault.As(err); fe.Code != TypeInvalidPath {
			t.Errorf("ParsePath(%q): code %q, want invalidPath", in, fe.Code)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`, `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]`,
		`not (a pr) and (b gt 1.5 or c le "x")`, `urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley"`,
		`a eq "\u00e9\"\\"`, `((((a pr))))`, `meta.lastModified gt "2011-05-13T04:42:34Z"`, `x eq null`, `]`, `"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if fe := fault.As(err); fe.Kind != fault.Invalid || fe.Code != TypeInvalidFilter {
				t.Fatalf("error of kind %v code %q", fe.Kind, fe.Code)
			}
			return
		}
		flt.Match(Attrs(babs()))
		// The canonical rendering parses back to itself.
		again, err := ParseFilter(flt.String())
		if err != nil {
			if len(flt.String()) > maxFilterLen {
				return // rendering adds parentheses; a filter at the limit may exceed it
			}
			t.Fatalf("rendering %q of %q does not parse: %v", flt.String(), s, err)
		}
		if again.String() != flt.String() {
			t.Fatalf("round trip: %q → %q", flt.String(), again.String())
		}
	})
}
