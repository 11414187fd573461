package totp

import (
	"bytes"
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
)

var recoveryFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)

func TestNewRecoveryCodes(t *testing.T) {
	codes, err := NewRecoveryCodes(nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 {
		t.Fatalf("got %d codes", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !recoveryFormat.MatchString(c) {
			t.Errorf("malformed code %q", c)
		}
		if seen[c] {
			t.Errorf("duplicate code %q", c)
		}
		seen[c] = true
		if NormalizeRecoveryCode(c) != strings.ReplaceAll(c, "-", "") {
			t.Errorf("display form %q is not already canonical", c)
		}
	}
}

// TestRecoveryCodeCarries80Bits checks that a code is a bijective encoding
// of 10 random bytes: decoding it gives those bytes back, so no entropy is
// lost to the formatting.
func TestRecoveryCodeCarries80Bits(t *testing.T) {
	raw := []byte{0x00, 0xff, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x13, 0x57}
	codes, err := NewRecoveryCodes(bytes.NewReader(raw), 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		got, err := recoveryEncoding.DecodeString(NormalizeRecoveryCode(c))
		if err != nil {
			t.Fatal(err)
		}
		if want := raw[i*10 : i*10+10]; !bytes.Equal(got, want) {
			t.Fatalf("code %q decodes to %x, want %x", c, got, want)
		}
	}
	if codes[0] != "03zh-0cjm-etcb-nq7y" {
		t.Fatalf("code[0] = %q", codes[0])
	}
}

func TestNewRecoveryCodesErrors(t *testing.T) {
	tests := []struct {
		name string
		rand []byte
		n    int
	}{
		{"zero count", make([]byte, 100), 0},
		{"negative count", make([]byte, 100), -1},
		{"too many", make([]byte, 2000), 101},
		{"short rand", make([]byte, 15), 2},
		// A source that repeats itself is broken; fail rather than hand out
		// guessable codes.
		{"repeating rand", make([]byte, 100), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRecoveryCodes(bytes.NewReader(tc.rand), tc.n); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

func TestNormalizeRecoveryCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abcd-efgh-jkmn-pqrs", "abcdefghjkmnpqrs"},
		{"ABCD EFGH\tJKMN-PQRS\n", "abcdefghjkmnpqrs"},
		{"o0il-OIL1", "00110111"},
		{"", ""},
		{"ü-x", "üx"}, // non-alphabet characters are kept, so matching fails
	}
	for _, tc := range tests {
		if got := NormalizeRecoveryCode(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHashRecoveryCode(t *testing.T) {
	want := sha256.Sum256([]byte("abcdefghjkmnpqrs"))
	if got := HashRecoveryCode("ABCD-EFGH-JKMN-PQRS"); !bytes.Equal(got, want[:]) {
		t.Fatalf("got %x, want SHA-256 of the normalized code", got)
	}
}

func TestMatchRecoveryCode(t *testing.T) {
	codes, err := NewRecoveryCodes(nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = HashRecoveryCode(c)
	}

	for i, c := range codes {
		// As printed, and as a user might retype it.
		for _, typed := range []string{c, strings.ToUpper(strings.ReplaceAll(c, "-", " ")), strings.ReplaceAll(strings.ReplaceAll(c, "0", "O"), "1", "l")} {
			got, ok := MatchRecoveryCode(typed, hashes)
			if !ok || got != i {
				t.Fatalf("Match(%q) = %d, %v; want %d", typed, got, ok, i)
			}
		}
	}

	// Once the caller clears a used code it no longer matches.
	used := append([][]byte(nil), hashes...)
	used[3] = nil
	if _, ok := MatchRecoveryCode(codes[3], used); ok {
		t.Fatal("a cleared code still matches")
	}

	// A duplicate stored hash reports the first position.
	dup := append(append([][]byte(nil), hashes...), hashes[2])
	if got, ok := MatchRecoveryCode(codes[2], dup); !ok || got != 2 {
		t.Fatalf("dup match = %d, %v", got, ok)
	}

	other, err := NewRecoveryCodes(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{
		other[0],
		codes[0][:len(codes[0])-1], // one character short
		codes[0] + "a",             // one too many
		strings.Replace(codes[0], codes[0][:1], "u", 1), // u is outside the alphabet
		"",
		strings.Repeat("-", 1000) + codes[0], // oversized input
	} {
		if got, ok := MatchRecoveryCode(wrong, hashes); ok || got != -1 {
			t.Errorf("Match(%q) = %d, %v; want -1, false", wrong, got, ok)
		}
	}
	if _, ok := MatchRecoveryCode(codes[0], nil); ok {
		t.Fatal("matched against no hashes")
	}
}

// FuzzMatchRecoveryCode: whatever is typed, a match means it normalizes to
// the matched code.
func FuzzMatchRecoveryCode(f *testing.F) {
	codes := []string{"03zh-0cjm-etcb-nq7y", "abcd-efgh-jkmn-pqrs"}
	hashes := [][]byte{HashRecoveryCode(codes[0]), HashRecoveryCode(codes[1])}
	for _, s := range []string{codes[0], "O1ZH 0HJM EWBN QQ7Y", "", "----", "\xff", "abcd-efgh-jkmn-pqr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		i, ok := MatchRecoveryCode(typed, hashes)
		if !ok {
			if i != -1 {
				t.Fatalf("no match but index %d", i)
			}
			return
		}
		if NormalizeRecoveryCode(typed) != NormalizeRecoveryCode(codes[i]) {
			t.Fatalf("%q matched %q", typed, codes[i])
		}
	})
}

func BenchmarkMatchRecoveryCode(b *testing.B) {
	codes, err := NewRecoveryCodes(nil, 10)
	if err != nil {
		b.Fatal(err)
	}
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = HashRecoveryCode(c)
	}
	for b.Loop() {
		if _, ok := MatchRecoveryCode(codes[9], hashes); !ok {
			b.Fatal("no match")
		}
	}
}
