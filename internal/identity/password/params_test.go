package password

import (
	"errors"
	"strings"
	"testing"
)

// Known-answer vectors produced by the reference implementation's CLI
// (Debian package argon2 0~20171227-0.3+deb12u1), e.g.
//
//	printf '%s' 'correct horse battery staple' | argon2 rampart-kat-salt -id -k 19456 -t 2 -p 1 -l 32 -e
var katVectors = []struct {
	name, pw, encoded string
	variant           variant
}{
	{"argon2id default params", "correct horse battery staple",
		"$argon2id$v=19$m=19456,t=2,p=1$cmFtcGFydC1rYXQtc2FsdA$RvsQw72rf0KNuYaGqMVe9CkZT91JTEqcD9V06NopUqE", argon2id},
	{"argon2id m=4096", "correct horse battery staple",
		"$argon2id$v=19$m=4096,t=2,p=1$cmFtcGFydC1rYXQtc2FsdA$urSuUdS72ibKPIHTT5rhhXiBNIGNHvjeVIEHHMP8BL8", argon2id},
	{"argon2id p=4 unicode 24-byte key", "pässwörd ünïcode",
		"$argon2id$v=19$m=1024,t=3,p=4$MDEyMzQ1Njc4OWFiY2RlZg$XFsTnQ/teSO5z2c5fGqSxgFcAxoXYfA+", argon2id},
	{"argon2i legacy", "password",
		"$argon2i$v=19$m=1024,t=2,p=1$c29tZXNhbHQ$/AomWzXGuO56QhmXE3p9/0R81VDwTUaD1xQMkGw+IbQ", argon2i},
}

// TestKnownAnswer recomputes each reference hash from its parsed salt and
// parameters, so it fails if derivation or encoding drifts from argon2's.
func TestKnownAnswer(t *testing.T) {
	for _, tc := range katVectors {
		t.Run(tc.name, func(t *testing.T) {
			v, p, salt, key, err := parse(tc.encoded)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if v != tc.variant {
				t.Fatalf("variant = %d, want %d", v, tc.variant)
			}
			got := derive(v, []byte(tc.pw), salt, p)
			if string(got) != string(key) {
				t.Fatalf("derived key differs from reference")
			}
			if v == argon2id {
				if enc := encode(p, salt, got); enc != tc.encoded {
					t.Fatalf("encode = %q, want %q", enc, tc.encoded)
				}
			}
		})
	}
}

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	want := Params{MemoryKiB: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if p != want {
		t.Fatalf("DefaultParams = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultParams invalid: %v", err)
	}
}

func TestParseValid(t *testing.T) {
	p, salt, key, err := Parse(katVectors[0].encoded)
	if err != nil {
		t.Fatal(err)
	}
	if p != DefaultParams() {
		t.Fatalf("params = %+v, want defaults", p)
	}
	if string(salt) != "rampart-kat-salt" || len(key) != 32 {
		t.Fatalf("salt %q, key len %d", salt, len(key))
	}
	if !IsArgon2id(katVectors[0].encoded) {
		t.Fatal("IsArgon2id(valid) = false")
	}
}

func TestParseRejects(t *testing.T) {
	const good = "$argon2id$v=19$m=4096,t=2,p=1$cmFtcGFydC1rYXQtc2FsdA$urSuUdS72ibKPIHTT5rhhXiBNIGNHvjeVIEHHMP8BL8"
	const salt, key = "cmFtcGFydC1rYXQtc2FsdA", "urSuUdS72ibKPIHTT5rhhXiBNIGNHvjeVIEHHMP8BL8" // gitleaks:allow (test vector, not a secret)
	r := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	b64of := func(n int) string { return b64.EncodeToString(make([]byte, n)) }
	cases := []struct{ name, in string }{
		{"empty", ""},
		{"argon2i", katVectors[3].encoded},
		{"argon2d", r("argon2id", "argon2d")},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"no version", r("v=19$", "")},
		{"version 16", r("v=19", "v=16")},
		{"missing key", r("$"+key, "")},
		{"trailing dollar", good + "$"},
		{"leading space", " " + good},
		{"no leading dollar", good[1:]},
		{"leading zero", r("m=4096", "m=04096")},
		{"plus sign", r("m=4096", "m=+4096")},
		{"empty value", r("t=2", "t=")},
		{"swapped order", r("m=4096,t=2", "t=2,m=4096")},
		{"extra field", r("p=1", "p=1,keyid=abc")},
		{"space in params", r("t=2", "t= 2")},
		{"memory over bound", r("m=4096", "m=262145")},
		{"memory overflow", r("m=4096", "m=4294967296")},
		{"memory huge", r("m=4096", "m=99999999999999999999")},
		{"memory below 8 per lane", r("m=4096,t=2,p=1", "m=15,t=1,p=2")},
		{"time zero", r("t=2", "t=0")},
		{"time over bound", r("t=2", "t=17")},
		{"threads zero", r("p=1", "p=0")},
		{"threads over bound", r("p=1", "p=17")},
		{"threads over uint8", r("p=1", "p=257")},
		{"salt too short", r(salt, b64of(7))},
		{"salt too long", r(salt, b64of(65))},
		{"key too short", r(key, b64of(15))},
		{"key too long", r(key, b64of(65))},
		{"padded salt", r(salt, salt+"==")},
		{"non-canonical trailing bits", r(salt, "cmFtcGFydC1rYXQtc2FsdB")},
		{"newline in salt", r(salt, salt[:8]+"\n"+salt[8:])},
		{"url-safe alphabet", r(key, "-_"+key[2:])},
		{"overlong", good + strings.Repeat("A", 300)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := Parse(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) err = %v, want ErrMalformed", tc.in, err)
			}
			if IsArgon2id(tc.in) {
				t.Fatalf("IsArgon2id(%q) = true", tc.in)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	cases := []struct {
		name  string
		edit  func(*Params)
		valid bool
	}{
		{"tiny ok", func(*Params) {}, true},
		{"max bounds ok", func(p *Params) { *p = Params{maxMemoryKiB, maxTime, maxThreads, maxSaltLen, maxKeyLen} }, true},
		{"zero", func(p *Params) { *p = Params{} }, false},
		{"memory < 8*threads", func(p *Params) { p.Threads, p.MemoryKiB = 4, 31 }, false},
		{"memory too big", func(p *Params) { p.MemoryKiB = maxMemoryKiB + 1 }, false},
		{"time too big", func(p *Params) { p.Time = maxTime + 1 }, false},
		{"salt short", func(p *Params) { p.SaltLen = minSaltLen - 1 }, false},
		{"key short", func(p *Params) { p.KeyLen = minKeyLen - 1 }, false},
		{"key long", func(p *Params) { p.KeyLen = maxKeyLen + 1 }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			if err := p.Validate(); (err == nil) != tc.valid {
				t.Fatalf("Validate(%+v) = %v, want valid=%v", p, err, tc.valid)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, that everything it accepts is
// within bounds, and that accepted input is canonical: re-encoding gives
// back exactly the input, so no two stored strings mean the same hash.
func FuzzParse(f *testing.F) {
	for _, v := range katVectors {
		f.Add(v.encoded)
	}
	f.Add("$argon2id$v=19$m=04096,t=2,p=1$cmFtcGFydC1rYXQtc2FsdA$urSuUdS72ibKPIHTT5rhhXiBNIGNHvjeVIEHHMP8BL8")
	f.Add("$argon2id$v=19$m=4096,t=2,p=1$cmFtcGFydC1rYXQtc2FsdB$urSuUdS72ibKPIHTT5rhhXiBNIGNHvjeVIEHHMP8BL8")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		p, salt, key, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted out-of-bounds params: %v", err)
		}
		if int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) {
			t.Fatalf("lengths %+v do not match salt %d key %d", p, len(salt), len(key))
		}
		if enc := encode(p, salt, key); enc != in {
			t.Fatalf("not canonical: re-encoded %q from %q", enc, in)
		}
	})
}
