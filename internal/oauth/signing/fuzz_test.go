package signing_test

import (
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary text to Verify: it must never panic, and
// nothing but a token this manager signed may verify.
func FuzzVerify(f *testing.F) {
	e := sqliteEnv(f)
	m := e.manager()
	good := sign(f, m, "at+jwt", e.claims())
	p := strings.Split(good, ".")
	for _, s := range []string{
		good, "", ".", "..", "a.b.c", p[0] + ".." + p[2], p[0] + "." + p[1] + ".",
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.e30." + strings.Repeat("A", 86),
		p[0] + "." + p[1] + "." + strings.Repeat("_", 86), "e30.e30." + strings.Repeat("A", 86),
		"eyJhbGciOiJFZERTQSIsImtpZCI6IngiLCJjcml0IjpbXX0.e30." + strings.Repeat("A", 86),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		var c claims
		err := m.Verify(tok, "at+jwt", &c)
		if err == nil && tok != good {
			// Only a token signed by the key verifies; the fuzzer cannot
			// forge one, so any other accepted input is a bug.
			t.Fatalf("accepted a token the manager did not sign: %q", tok)
		}
	})
}
