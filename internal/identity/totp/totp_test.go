package totp

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// testSecret is a fixed 160-bit secret for tests that do not care about its
// value.
var testSecret = b32.EncodeToString([]byte("12345678901234567890"))

func wantFault(t *testing.T, err error, kind fault.Kind, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %s/%s", kind, code)
	}
	fe := fault.As(err)
	if fe.Kind != kind || fe.Code != code {
		t.Fatalf("got %s/%s (%v), want %s/%s", fe.Kind, fe.Code, err, kind, code)
	}
}

// TestRFC6238Vectors checks all 18 vectors of RFC 6238 Appendix B, both
// through Code and through Validate. The seeds differ per algorithm (the
// RFC's reference code uses a 20-, 32- and 64-byte key; erratum 2866 fixes
// the prose that claimed one 20-byte seed).
func TestRFC6238Vectors(t *testing.T) {
	seeds := map[Algorithm]string{
		SHA1:   "12345678901234567890",
		SHA256: "12345678901234567890123456789012",
		SHA512: "1234567890123456789012345678901234567890123456789012345678901234",
	}
	tests := []struct {
		unix int64
		alg  Algorithm
		want string
	}{
		{59, SHA1, "94287082"},
		{59, SHA256, "46119246"},
		{59, SHA512, "90693936"},
		{1111111109, SHA1, "07081804"},
		{1111111109, SHA256, "68084774"},
		{1111111109, SHA512, "25091201"},
		{1111111111, SHA1, "14050471"},
		{1111111111, SHA256, "67062674"},
		{1111111111, SHA512, "99943326"},
		{1234567890, SHA1, "89005924"},
		{1234567890, SHA256, "91819424"},
		{1234567890, SHA512, "93441116"},
		{2000000000, SHA1, "69279037"},
		{2000000000, SHA256, "90698825"},
		{2000000000, SHA512, "38618901"},
		{20000000000, SHA1, "65353130"},
		{20000000000, SHA256, "77737706"},
		{20000000000, SHA512, "47863826"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%d", tc.unix, tc.alg), func(t *testing.T) {
			cfg := Config{Digits: 8, Algorithm: tc.alg}
			secret := b32.EncodeToString([]byte(seeds[tc.alg]))
			now := time.Unix(tc.unix, 0)
			got, err := Code(cfg, secret, now)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Code = %s, want %s", got, tc.want)
			}
			step, err := Validate(cfg, secret, tc.want, now, -1)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if want := tc.unix / 30; step != want {
				t.Fatalf("step = %d, want %d", step, want)
			}
		})
	}
}

func TestDefaultsAreAuthenticatorDefaults(t *testing.T) {
	// A zero Config must behave exactly like the explicit app defaults.
	now := time.Unix(1111111111, 0)
	a, err := Code(Config{}, testSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Code(Config{Digits: 6, Period: 30 * time.Second, Skew: 1, Algorithm: SHA1}, testSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	// Last 6 digits of the RFC SHA1 vector 14050471.
	if a != "050471" || b != a {
		t.Fatalf("got %q and %q, want 050471", a, b)
	}
}

func TestValidateSkewWindow(t *testing.T) {
	now := time.Unix(1_700_000_015, 0)
	cur := now.Unix() / 30
	tests := []struct {
		skew   uint
		offset int64
		ok     bool
	}{
		{0, 0, true}, // 0 means the default of 1
		{0, 1, true},
		{0, -1, true},
		{0, 2, false},
		{0, -2, false},
		{1, -1, true},
		{1, 2, false},
		{2, 2, true},
		{2, -2, true},
		{2, 3, false},
		{2, -3, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("skew%d/off%d", tc.skew, tc.offset), func(t *testing.T) {
			cfg := Config{Skew: tc.skew}
			code, err := Code(cfg, testSecret, now.Add(time.Duration(tc.offset)*30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			step, err := Validate(cfg, testSecret, code, now, 0)
			if !tc.ok {
				wantFault(t, err, fault.Invalid, CodeInvalid)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if step != cur+tc.offset {
				t.Fatalf("step = %d, want %d", step, cur+tc.offset)
			}
		})
	}
}

func TestValidateRejectsReplay(t *testing.T) {
	cfg := Config{}
	now := time.Unix(1_700_000_015, 0)
	code, err := Code(cfg, testSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	step, err := Validate(cfg, testSecret, code, now, 0)
	if err != nil {
		t.Fatal(err)
	}

	// The same code, a few seconds later, still inside its window.
	_, err = Validate(cfg, testSecret, code, now.Add(10*time.Second), step)
	wantFault(t, err, fault.Invalid, CodeReused)
	// The same code one step later is still inside the skew window.
	_, err = Validate(cfg, testSecret, code, now.Add(30*time.Second), step)
	wantFault(t, err, fault.Invalid, CodeReused)

	// An older code after a newer one was accepted.
	prev, err := Code(cfg, testSecret, now.Add(-30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Validate(cfg, testSecret, prev, now, step)
	wantFault(t, err, fault.Invalid, CodeReused)

	// The next code is fine.
	next, err := Code(cfg, testSecret, now.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Validate(cfg, testSecret, next, now.Add(30*time.Second), step)
	if err != nil {
		t.Fatal(err)
	}
	if got != step+1 {
		t.Fatalf("step = %d, want %d", got, step+1)
	}
}

// TestValidateCollidingSteps uses a secret whose codes for two adjacent
// steps happen to be equal (found by search), to pin down which step is
// reported: the earliest one after lastStep, and a match at or before
// lastStep does not mask a fresh match later in the window.
func TestValidateCollidingSteps(t *testing.T) {
	const secret = "5L2SBYLJPIOUVCX7DKLS6HBYWS4ZV6L3" // gitleaks:allow (test fixture)
	now := time.Unix(1_700_000_015, 0)
	cur := now.Unix() / 30
	for _, off := range []int64{0, 1} {
		c, err := Code(Config{}, secret, time.Unix((cur+off)*30, 0))
		if err != nil || c != "010491" {
			t.Fatalf("fixture broken: step %d code %q, %v", cur+off, c, err)
		}
	}
	tests := []struct {
		lastStep int64
		want     int64
	}{
		{0, cur},
		{cur - 1, cur},
		{cur, cur + 1},
	}
	for _, tc := range tests {
		got, err := Validate(Config{}, secret, "010491", now, tc.lastStep)
		if err != nil || got != tc.want {
			t.Errorf("lastStep %d: got %d, %v; want %d", tc.lastStep, got, err, tc.want)
		}
	}
	_, err := Validate(Config{}, secret, "010491", now, cur+1)
	wantFault(t, err, fault.Invalid, CodeReused)
}

func TestValidateMalformedAndWrong(t *testing.T) {
	cfg := Config{}
	now := time.Unix(1_700_000_015, 0)
	good, err := Code(cfg, testSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	// A well-formed code that matches no step in the window.
	wrong := ""
	for i := 0; i < 1_000_000 && wrong == ""; i++ {
		c := fmt.Sprintf("%06d", i)
		if _, err := Validate(cfg, testSecret, c, now, 0); err != nil {
			wrong = c
		}
	}

	tests := []struct {
		name string
		code string
		ok   bool
	}{
		{"plain", good, true},
		{"spaced", good[:3] + " " + good[3:], true},
		{"padded", " \t" + good + "\n", true},
		{"empty", "", false},
		{"spaces only", "      ", false},
		{"short", good[:5], false},
		{"long", good + "0", false},
		{"letter", "12a456", false},
		{"sign", "+" + good[1:], false},
		{"dash", good[:3] + "-" + good[3:], false},
		{"fullwidth digits", "１２３４５６", false},
		{"arabic-indic digits", "١٢٣٤٥٦", false},
		{"nul", good[:3] + "\x00" + good[3:], false},
		{"huge whitespace", strings.Repeat(" ", 100) + good, false},
		{"wrong", wrong, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(cfg, testSecret, tc.code, now, 0)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantFault(t, err, fault.Invalid, CodeInvalid)
		})
	}
}

func TestValidateInternalErrors(t *testing.T) {
	now := time.Unix(1_700_000_015, 0)
	tests := []struct {
		name   string
		cfg    Config
		secret string
		now    time.Time
	}{
		{"empty secret", Config{}, "", now},
		{"short secret", Config{}, b32.EncodeToString(make([]byte, 15)), now},
		{"not base32", Config{}, "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", now},
		{"digits 5", Config{Digits: 5}, testSecret, now},
		{"digits 9", Config{Digits: 9}, testSecret, now},
		{"fractional period", Config{Period: 1500 * time.Millisecond}, testSecret, now},
		{"negative period", Config{Period: -30 * time.Second}, testSecret, now},
		{"skew too big", Config{Skew: 6}, testSecret, now},
		{"unknown algorithm", Config{Algorithm: 7}, testSecret, now},
		{"before epoch", Config{}, testSecret, time.Unix(-100, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.cfg, tc.secret, "123456", tc.now, 0)
			if err == nil || fault.KindOf(err) != fault.Internal {
				t.Fatalf("got %v, want an Internal error", err)
			}
			if _, err := Code(tc.cfg, tc.secret, tc.now); err == nil {
				t.Fatal("Code accepted it")
			}
		})
	}
}

func TestSecretFormsAccepted(t *testing.T) {
	// Stored secrets may have come from elsewhere lower-cased or padded;
	// they must derive the same codes.
	now := time.Unix(1_700_000_015, 0)
	want, err := Code(Config{}, testSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{strings.ToLower(testSecret), base32.StdEncoding.EncodeToString([]byte("1234567890123456789012"))} {
		if _, err := Code(Config{}, s, now); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	}
	got, err := Code(Config{}, strings.ToLower(testSecret), now)
	if err != nil || got != want {
		t.Fatalf("lower-case secret: %q, %v; want %q", got, err, want)
	}
}

func TestGenerate(t *testing.T) {
	raw := []byte("abcdefghijklmnopqrst") // exactly 20 bytes
	cfg := Config{Issuer: "Rampart Sec"}
	k, err := Generate(cfg, "alice@example.com", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if k.Secret != b32.EncodeToString(raw) || len(k.Secret) != 32 {
		t.Fatalf("secret = %q, want the 160-bit encoding of the random bytes", k.Secret)
	}
	u, err := url.Parse(k.URI)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Rampart Sec:alice@example.com" {
		t.Fatalf("URI = %s", k.URI)
	}
	q := u.Query()
	for key, want := range map[string]string{
		"secret": k.Secret, "issuer": "Rampart Sec", "algorithm": "SHA1", "digits": "6", "period": "30",
	} {
		if got := q.Get(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}

	// The secret round-trips through Validate.
	now := time.Unix(1_700_000_015, 0)
	code, err := Code(cfg, k.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(cfg, k.Secret, code, now, 0); err != nil {
		t.Fatal(err)
	}

	// Non-default parameters appear in the URI so the app derives the same codes.
	k2, err := Generate(Config{Issuer: "R", Digits: 8, Period: 60 * time.Second, Algorithm: SHA256}, "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := url.Parse(k2.URI)
	if q := u2.Query(); q.Get("digits") != "8" || q.Get("period") != "60" || q.Get("algorithm") != "SHA256" {
		t.Fatalf("URI = %s", k2.URI)
	}

	// nil rand means crypto/rand: two keys differ.
	k3, err := Generate(cfg, "alice@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	k4, err := Generate(cfg, "alice@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if k3.Secret == k4.Secret {
		t.Fatal("two generated secrets are equal")
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name    string
		issuer  string
		account string
		rand    []byte
		kind    fault.Kind
	}{
		{"empty account", "Rampart", "", make([]byte, 20), fault.Invalid},
		{"colon account", "Rampart", "a:b@example.com", make([]byte, 20), fault.Invalid},
		{"control account", "Rampart", "a\nb@example.com", make([]byte, 20), fault.Invalid},
		{"empty issuer", "", "a@example.com", make([]byte, 20), fault.Internal},
		{"colon issuer", "Ram:part", "a@example.com", make([]byte, 20), fault.Internal},
		{"short rand", "Rampart", "a@example.com", make([]byte, 19), fault.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(Config{Issuer: tc.issuer}, tc.account, bytes.NewReader(tc.rand))
			if err == nil || fault.KindOf(err) != tc.kind {
				t.Fatalf("got %v, want kind %s", err, tc.kind)
			}
		})
	}
}

func TestQRCodePNG(t *testing.T) {
	k, err := Generate(Config{Issuer: "Rampart"}, "alice@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := QRCodePNG(k.URI, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != 256 || r.Dy() != 256 {
		t.Fatalf("bounds = %v", r)
	}

	for _, tc := range []struct {
		name string
		uri  string
		size int
	}{
		{"zero size", k.URI, 0},
		{"too small for the symbol", k.URI, 10},
		{"too large", k.URI, 100_000},
		{"not otpauth", "https://example.com/", 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := QRCodePNG(tc.uri, tc.size); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

// FuzzValidate feeds arbitrary user input to Validate. Whatever it is, the
// result is either a user error with one of the two public codes, or a step
// in the window whose code equals the input with whitespace removed.
func FuzzValidate(f *testing.F) {
	cfg := Config{}
	now := time.Unix(1_700_000_015, 0)
	cur := now.Unix() / 30
	good, err := Code(cfg, testSecret, now)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, " " + good[:3] + " " + good[3:], "", "000000", "12345", "1234567", "12a456", "١٢٣٤٥٦", "\xff\xfe", strings.Repeat(" ", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		// lastStep = cur-1 so both outcomes (reused, fresh) are reachable.
		step, err := Validate(cfg, testSecret, code, now, cur-1)
		if err != nil {
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Invalid || (fe.Code != CodeInvalid && fe.Code != CodeReused) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if step < cur || step > cur+1 {
			t.Fatalf("step %d outside the fresh window", step)
		}
		want, err := Code(cfg, testSecret, time.Unix(step*30, 0))
		if err != nil {
			t.Fatal(err)
		}
		stripped := strings.Join(strings.Fields(code), "")
		if stripped != want {
			t.Fatalf("accepted %q for step %d whose code is %s", code, step, want)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	cfg := Config{}
	now := time.Unix(1_700_000_015, 0)
	code, err := Code(cfg, testSecret, now)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Validate(cfg, testSecret, code, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQRCodePNG(b *testing.B) {
	k, err := Generate(Config{Issuer: "Rampart"}, "alice@example.com", nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := QRCodePNG(k.URI, 256); err != nil {
			b.Fatal(err)
		}
	}
}
