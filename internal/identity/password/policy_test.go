package password

import (
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/fault"
)

func newTestPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := NewPolicy(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPolicy(t *testing.T) {
	p := newTestPolicy(t)
	if p.MinLength != 8 || p.MaxLength != 256 {
		t.Fatalf("defaults = [%d,%d], want [8,256]", p.MinLength, p.MaxLength)
	}
	if n := len(p.common); n < 49000 {
		t.Fatalf("common list has %d entries, want ~49k", n)
	}
	for _, c := range []struct{ min, max int }{{7, 256}, {8, 63}, {100, 80}, {-1, 256}} {
		if _, err := NewPolicy(c.min, c.max); err == nil {
			t.Errorf("NewPolicy(%d, %d) accepted", c.min, c.max)
		}
	}
	if p, err := NewPolicy(15, 64); err != nil || p.MinLength != 15 || p.MaxLength != 64 {
		t.Fatalf("NewPolicy(15, 64) = %+v, %v", p, err)
	}
}

func TestPolicyCheck(t *testing.T) {
	p := newTestPolicy(t)
	email := "Alice.Smith99@example.com"
	ctx := []string{email, "rampartsec", ""}
	cases := []struct {
		name     string
		pw       string
		wantCode string // "" means accepted
	}{
		{"seven chars", "xq7!vB2", "password_too_short"},
		{"empty", "", "password_too_short"},
		{"eight chars", "xq7!vB2z", ""},
		{"at max length", strings.Repeat("Zq9#", 64), ""},
		{"over max length", strings.Repeat("Zq9#", 64) + "x", "password_too_long"},
		{"passphrase with spaces", "correct horse battery staple", ""},
		{"only spaces is long enough", "          ", ""},
		{"common password", "password", "password_common"},
		{"common iloveyou", "iloveyou", "password_common"},
		{"common any case", "PassWord", "password_common"},
		{"common full-width (NFKC)", "ｐａｓｓｗｏｒｄ", "password_common"},
		{"common with suffix is not on list", "password-for-rampart-2024", ""},
		{"email", "alice.smith99@EXAMPLE.com", "password_contextual"},
		{"email local part", "ALICE.SMITH99", "password_contextual"},
		{"service name", "RampartSec", "password_contextual"},
		{"contains context word but differs", "rampartsec is great", ""},
		{"unicode 7 code points", "日本語のパスワ", "password_too_short"},
		{"unicode 9 code points", "日本語のパスワード", ""},
		{"decomposed accents count once", strings.Repeat("e\u0301", 7), "password_too_short"},
		{"ligatures expand under NFKC", "ﬃﬃﬃ", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.pw, ctx...)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Check rejected: %v", err)
				}
				return
			}
			fe := fault.As(err)
			if err == nil || fe.Kind != fault.Invalid || fe.Code != tc.wantCode {
				t.Fatalf("Check = %v, want invalid/%s", err, tc.wantCode)
			}
			// "password" itself legitimately appears in the messages.
			if tc.pw != "" && tc.pw != "password" && strings.Contains(fe.Message, tc.pw) {
				t.Fatalf("message echoes the password: %q", fe.Message)
			}
		})
	}
}

func TestPolicyIsCommon(t *testing.T) {
	p := newTestPolicy(t)
	cases := []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"PASSWORD", true},
		{"123456", true},
		{"qwerty", true},
		{"correct horse battery staple", false},
		{"", false},
		{"Tr0ub4dor&3-but-longer", false},
	}
	for _, tc := range cases {
		if got := p.IsCommon(tc.pw); got != tc.want {
			t.Errorf("IsCommon(%q) = %v, want %v", tc.pw, got, tc.want)
		}
	}
}
