package tenancy

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCredential(t *testing.T) {
	s := New(Config{}, Deps{Rand: bytes.NewReader(bytes.Repeat([]byte{0x5a}, 64))})
	id, text, hash, err := s.newCredential(APIKeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 16 || !strings.HasPrefix(text, "rmp_"+id+"_") || len(text) != 4+16+1+43 {
		t.Fatalf("credential %q (id %q) has the wrong shape", text, id)
	}
	gotID, secret, ok := parseCredential(text, APIKeyPrefix)
	if !ok || gotID != id || !secretMatches(secret, hash) {
		t.Fatalf("round trip failed: %q %v", gotID, ok)
	}
	secretPart := text[len(text)-43:]
	cases := []struct {
		name, text, prefix string
	}{
		{"empty", "", APIKeyPrefix},
		{"other prefix", text, SCIMTokenPrefix},
		{"short", text[:len(text)-1], APIKeyPrefix},
		{"long", text + "A", APIKeyPrefix},
		{"upper-case id", "rmp_" + strings.ToUpper(id) + "_" + secretPart, APIKeyPrefix},
		{"id with 0", "rmp_0" + id[1:] + "_" + secretPart, APIKeyPrefix},
		{"missing separator", "rmp_" + id + "-" + secretPart, APIKeyPrefix},
		{"padding", "rmp_" + id + "_" + secretPart[:42] + "=", APIKeyPrefix},
		{"std alphabet", "rmp_" + id + "_+" + secretPart[1:], APIKeyPrefix},
		// The last character carries 2 unused bits; only the canonical
		// spelling (zero bits) is accepted.
		{"non-canonical", "rmp_" + id + "_" + secretPart[:42] + string(secretPart[42]+1), APIKeyPrefix},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, ok := parseCredential(c.text, c.prefix); ok {
				t.Fatalf("parseCredential(%q) accepted", c.text)
			}
		})
	}
	if secretMatches(secret, hash[:31]) || secretMatches(append(secret[:31:31], 0), hash) {
		t.Fatal("secretMatches accepted a wrong hash or secret")
	}
}

// FuzzParseKey: the parser never panics, and whatever it accepts is the
// one canonical spelling of its id and secret.
func FuzzParseKey(f *testing.F) {
	f.Add("rmp_abcdefghijklmnop_" + strings.Repeat("A", 43))
	f.Add("rscim_abcdefghijklmnop_" + strings.Repeat("_", 42) + "w")
	f.Add("rmp_")
	f.Add("rmp_abcdefghijklmnop_" + strings.Repeat("A", 42) + "B")
	f.Add("rmp_abcdefghijklmnop_" + strings.Repeat("é", 21) + "A")
	f.Fuzz(func(t *testing.T, text string) {
		for _, prefix := range []string{APIKeyPrefix, SCIMTokenPrefix} {
			id, secret, ok := parseCredential(text, prefix)
			if !ok {
				continue
			}
			if len(secret) != 32 || len(id) != 16 {
				t.Fatalf("accepted %q with id %q and %d secret bytes", text, id, len(secret))
			}
			if again := prefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret); again != text {
				t.Fatalf("accepted non-canonical %q (canonical %q)", text, again)
			}
		}
	})
}

func TestValidPermName(t *testing.T) {
	for name, want := range map[string]bool{
		"reports.read": true, "a.b": true, "x_1.y_2": true,
		"": false, "a": false, "a.": false, ".b": false, "a.b.c": false, "A.b": false, "a-b.c": false,
		"a .b": false, strings.Repeat("a", 60) + ".read": false,
	} {
		if got := validPermName(name); got != want {
			t.Errorf("validPermName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestBuiltinRoles(t *testing.T) {
	c := newCatalog([]Permission{
		{Name: "reports.read"}, {Name: "reports.export", Sensitive: true},
		{Name: "content.read", Description: "an attempt to redefine a built-in"},
	}, time.Unix(0, 0))
	want := map[string][]string{
		RoleAdmin: {"access_reviews.manage", "apikeys.manage", "apikeys.read", "audit.read", "authz.check", "billing.manage",
			"billing.read", "content.read", "content.write", "members.manage", "members.read", "reports.export", "reports.read",
			"roles.manage", "roles.read", "scim.manage", "support.grant", "workspace.delete", "workspace.manage", "workspace.read"},
		RoleEditor:   {"apikeys.read", "audit.read", "billing.read", "content.read", "content.write", "members.read", "reports.read", "roles.read", "workspace.read"},
		RoleReadOnly: {"apikeys.read", "audit.read", "billing.read", "content.read", "members.read", "reports.read", "roles.read", "workspace.read"},
	}
	for role, perms := range want {
		if got := c.builtin[role]; !slices.Equal(got, perms) {
			t.Errorf("%s = %v\nwant %v", role, got, perms)
		}
	}
	flags := map[string]permFlags{
		"reports.export":   flagSensitive,
		"reports.read":     0,
		"workspace.delete": flagAdminOnly | flagSensitive,
		"scim.manage":      flagAdminOnly | flagSensitive,
		"support.grant":    flagAdminOnly | flagSensitive,
		"members.manage":   flagAdminOnly,
		"content.write":    0,
		"content.read":     0,
	}
	for p, f := range flags {
		if c.flags[p] != f {
			t.Errorf("flags[%s] = %b, want %b", p, c.flags[p], f)
		}
	}
	for _, p := range c.list {
		if p.Name == "content.read" && (!p.BuiltIn || p.Description == "an attempt to redefine a built-in") {
			t.Fatal("a stored permission redefined a built-in")
		}
	}
}
