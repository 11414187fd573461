package identity_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
)

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM\t", "alice@example.com"},
		{"a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk"},
		{"root@localhost", "root@localhost"},
		{"", ""},
		{"alice", ""},
		{"alice@example", ""}, // no dot in the domain
		{"Alice <alice@example.com>", ""},
		{"alice@example.com\r\nBcc: evil@example.com", ""},
		{"alice@exa mple.com", ""},
		{strings.Repeat("a", 243) + "@example.com", ""}, // 255 characters
	} {
		got, err := identity.NormalizeEmail(tc.in)
		if got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.want == "" {
			wantFault(t, err, fault.Invalid, "email_invalid")
		} else if err != nil {
			t.Errorf("NormalizeEmail(%q): %v", tc.in, err)
		}
	}
}

// FuzzNormalizeEmail checks that whatever NormalizeEmail accepts is safe to
// store and to put in a mail header: canonical, bounded, one address and no
// control characters.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", " A@B.C ", "\"a b\"@example.com", "a@[127.0.0.1]", "a@localhost",
		"a@b.c\n", "=?utf-8?q?x?=@example.com", "a@example.com, b@example.com", "(c)a@example.com", "ä@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := identity.NormalizeEmail(in)
		if err != nil {
			if out != "" || !fault.Is(err, fault.Invalid) {
				t.Fatalf("NormalizeEmail(%q) = %q, %v", in, out, err)
			}
			return
		}
		if len(out) < 3 || len(out) > 254 || !strings.Contains(out, "@") || out != strings.ToLower(strings.TrimSpace(out)) {
			t.Fatalf("NormalizeEmail(%q) = %q: not canonical", in, out)
		}
		if strings.IndexFunc(out, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
			t.Fatalf("NormalizeEmail(%q) = %q: control character", in, out)
		}
		if again, err := identity.NormalizeEmail(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}
