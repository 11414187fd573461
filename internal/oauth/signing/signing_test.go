package signing_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth/signing"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

var enc = base64.RawURLEncoding

func jwksKids(t testing.TB, m *signing.Manager) []string {
	t.Helper()
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &ks); err != nil {
		t.Fatalf("JWKS does not parse: %v", err)
	}
	var out []string
	for _, k := range ks.Keys {
		if !k.Valid() || !k.IsPublic() || k.Use != "sig" {
			t.Fatalf("JWKS key %s is not a valid public signing key", k.KeyID)
		}
		out = append(out, k.KeyID)
	}
	return out
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	raw, err := enc.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] == 0 {
			return false
		}
		seen[x]--
	}
	return true
}

func TestFreshInstall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		m := e.manager()
		keys := m.Keys()
		if len(keys) != 1 || keys[0].State != signing.StateActive || keys[0].Algorithm != signing.EdDSA {
			t.Fatalf("fresh install: want one active EdDSA key, got %+v", keys)
		}
		c := e.claims()
		tok := sign(t, m, "at+jwt", c)
		var got claims
		if err := m.Verify(tok, "at+jwt", &got); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got.Jti != c.Jti || got.Sub != c.Sub || len(got.Aud) != 1 {
			t.Fatalf("claims round trip: got %+v want %+v", got, c)
		}
		if kidOf(t, tok) != keys[0].ID {
			t.Fatalf("token kid %s, want %s", kidOf(t, tok), keys[0].ID)
		}
		if got := e.events("keys.rotate"); len(got) != 1 || got[0].Target != "signing_key:"+keys[0].ID {
			t.Fatalf("want one keys.rotate event for the first key, got %+v", got)
		}

		// A second node on the same database loads the key, creates none.
		m2 := e.manager()
		if len(m2.Keys()) != 1 || m2.Verify(tok, "at+jwt", nil) != nil {
			t.Fatalf("second node: keys %+v", m2.Keys())
		}

		// The private key is stored sealed, bound to its row.
		stored, err := st.SigningKeys(e.ctx)
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored keys: %v %d", err, len(stored))
		}
		sk := stored[0]
		_, _, signer, err := m.SignerFor(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(signer)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sk.PrivateKey, der[len(der)-32:]) {
			t.Fatal("the stored private key contains the raw key")
		}
		if _, err := e.sealer.Open(e.ctx, sk.PrivateKey, vault.AD{Table: "signing_keys", Column: "private_key", Row: "other"}); err == nil {
			t.Fatal("sealed private key opened under another row")
		}
		if _, err := e.sealer.Open(e.ctx, sk.PrivateKey, vault.AD{Table: "signing_keys", Column: "private_key", Row: sk.ID}); err != nil {
			t.Fatalf("sealed private key does not open under its own row: %v", err)
		}
	})
}

// TestRotationWhileTokensOutstanding walks a scheduled rotation with an
// injected clock: the new key is published before it signs, the old key's
// tokens verify until their last possible expiry, then the old key leaves
// the JWKS and the store.
func TestRotationWhileTokensOutstanding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		m := e.manager()
		other := e.manager() // a second node
		a := m.Keys()[0].ID
		tokA := sign(t, m, "at+jwt", e.claims())

		// Not yet due: Maintain changes nothing.
		e.clock.Advance(testCfg.RotateEvery - testCfg.PublishAhead - time.Second)
		if err := m.Maintain(e.ctx); err != nil {
			t.Fatal(err)
		}
		if len(m.Keys()) != 1 {
			t.Fatalf("rotation before it was due: %+v", m.Keys())
		}

		// Due: both nodes run the job; one new key, published, not signing.
		e.clock.Advance(time.Second)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, n := range []*signing.Manager{m, other} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = n.Maintain(e.ctx) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Maintain(e.ctx); err != nil { // and a reload of what the other wrote
			t.Fatal(err)
		}
		keys := m.Keys()
		if len(keys) != 2 || keys[1].State != signing.StatePending {
			t.Fatalf("after the due Maintain: want the old key and one pending key, got %+v", keys)
		}
		b := keys[1].ID
		if !keys[1].ActiveFrom.Equal(e.clock.Now().Add(testCfg.PublishAhead)) {
			t.Fatalf("pending key signs from %s, want now+PublishAhead", keys[1].ActiveFrom)
		}
		if got := jwksKids(t, m); !sameSet(got, []string{a, b}) {
			t.Fatalf("JWKS during publish-ahead: %v, want %v", got, []string{a, b})
		}
		if kidOf(t, sign(t, m, "at+jwt", e.claims())) != a {
			t.Fatal("a pending key signed before its time")
		}
		if n := len(e.events("keys.rotate")); n != 2 {
			t.Fatalf("want 2 keys.rotate events (first + scheduled), got %d", n)
		}

		// Its time comes: the new key signs, without waiting for Maintain.
		e.clock.Advance(testCfg.PublishAhead)
		tokB := sign(t, m, "at+jwt", e.claims())
		if kidOf(t, tokB) != b {
			t.Fatal("the new key does not sign at its time")
		}
		if err := m.Verify(tokA, "at+jwt", nil); err != nil {
			t.Fatalf("old key's token refused right after rotation: %v", err)
		}
		tokALast := tokA
		if err := m.Maintain(e.ctx); err != nil {
			t.Fatal(err)
		}
		var oldInfo signing.KeyInfo
		for _, k := range m.Keys() {
			if k.ID == a {
				oldInfo = k
			}
		}
		wantDelete := e.clock.Now().Add(testCfg.MaxTokenTTL + testCfg.ReloadEvery + signing.ClockSkew)
		if oldInfo.State != signing.StateRetired || !oldInfo.DeleteAfter.Equal(wantDelete) {
			t.Fatalf("old key after promotion: %+v, want retired, delete after %s", oldInfo, wantDelete)
		}
		if ev := e.events("keys.retire"); len(ev) != 1 || ev[0].Target != "signing_key:"+a {
			t.Fatalf("want one keys.retire for the old key, got %+v", ev)
		}

		// Up to the end of the overlap the old key verifies and is published.
		e.clock.Advance(wantDelete.Sub(e.clock.Now()) - time.Second)
		if err := other.Verify(tokALast, "at+jwt", nil); err != nil {
			t.Fatalf("old key's token refused inside the overlap: %v", err)
		}
		if got := jwksKids(t, m); !sameSet(got, []string{a, b}) {
			t.Fatalf("JWKS in the overlap: %v", got)
		}

		// After it, the old key is gone everywhere, even before Maintain.
		e.clock.Advance(time.Second)
		wantInvalid(t, m.Verify(tokALast, "at+jwt", nil))
		if got := jwksKids(t, m); !sameSet(got, []string{b}) {
			t.Fatalf("JWKS after the overlap: %v, want only %s", got, b)
		}
		if err := m.Maintain(e.ctx); err != nil {
			t.Fatal(err)
		}
		stored, err := st.SigningKeys(e.ctx)
		if err != nil || len(stored) != 1 || stored[0].ID != b {
			t.Fatalf("store after the overlap: %v %+v", err, stored)
		}
		if n := len(e.events("keys.delete")); n != 1 {
			t.Fatalf("want one keys.delete, got %d", n)
		}
		if err := m.Verify(tokB, "at+jwt", nil); err != nil {
			t.Fatalf("new key's token: %v", err)
		}
	})
}

func TestImmediateRotationAndRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		m := e.manager()
		node2 := e.manager()
		old := m.Keys()[0].ID
		tokOld := sign(t, m, "at+jwt", e.claims())

		// Non-immediate: published now, signs after PublishAhead; a second
		// one while it waits is a conflict.
		info, err := m.Rotate(e.ctx, false)
		if err != nil || info.State != signing.StatePending {
			t.Fatalf("Rotate: %+v %v", info, err)
		}
		if _, err := m.Rotate(e.ctx, false); fault.As(err) == nil || fault.As(err).Code != "rotation_pending" {
			t.Fatalf("second Rotate while pending: %v", err)
		}

		imm, err := m.Rotate(e.ctx, true)
		if err != nil || imm.State != signing.StateActive {
			t.Fatalf("immediate Rotate: %+v %v", imm, err)
		}
		tokNew := sign(t, m, "at+jwt", e.claims())
		if kidOf(t, tokNew) != imm.ID {
			t.Fatal("the immediate key does not sign at once")
		}
		// The other node has not reloaded, yet accepts the new key's token
		// (unknown kid → one reload).
		e.clock.Advance(2 * time.Second)
		if err := node2.Verify(tokNew, "at+jwt", nil); err != nil {
			t.Fatalf("node 2 refused a token of a key created on node 1: %v", err)
		}
		// The old key is retired but its tokens still verify.
		if err := m.Verify(tokOld, "at+jwt", nil); err != nil {
			t.Fatalf("old token after immediate rotation: %v", err)
		}
		// Revoking it stops that at once.
		if err := m.Revoke(e.ctx, old); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, m.Verify(tokOld, "at+jwt", nil))
		if err := node2.Maintain(e.ctx); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, node2.Verify(tokOld, "at+jwt", nil))
		if n := len(e.events("keys.revoke")); n != 1 {
			t.Fatalf("want one keys.revoke, got %d", n)
		}
		// Revoking the signing key itself puts a replacement in place.
		if err := m.Revoke(e.ctx, imm.ID); err != nil {
			t.Fatal(err)
		}
		tok := sign(t, m, "at+jwt", e.claims())
		if k := kidOf(t, tok); k == imm.ID || k == old {
			t.Fatalf("signed with a revoked key %s", k)
		}
		wantInvalid(t, m.Verify(tokNew, "at+jwt", nil))
		if err := m.Revoke(e.ctx, "no-such-kid"); !fault.Is(err, fault.NotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
	})
}

// TestVerifyRefuses covers the header and signature attacks on JWS.
func TestVerifyRefuses(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager()
	good := sign(t, m, "at+jwt", e.claims())
	parts := strings.Split(good, ".")
	kid := m.Keys()[0].ID
	pub, _, _ := m.PublicKey(kid)
	_, _, priv, _ := m.SignerFor(e.ctx)

	hdr := func(v string) string { return enc.EncodeToString([]byte(v)) }
	edSign := func(h, p string) string {
		in := h + "." + p
		return in + "." + enc.EncodeToString(ed25519.Sign(priv.(ed25519.PrivateKey), []byte(in)))
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hs := func(h, p string) string {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		mac := hmac.New(sha256.New, der)
		mac.Write([]byte(h + "." + p))
		return h + "." + p + "." + enc.EncodeToString(append(mac.Sum(nil), make([]byte, 32)...))
	}
	tampered := []byte(parts[1])
	tampered[5] ^= 1
	sig := []byte(parts[2])
	sig[10] = map[bool]byte{true: 'B', false: 'A'}[sig[10] == 'A']

	cases := []struct {
		name, token, typ string
	}{
		{"empty", "", "at+jwt"},
		{"two parts", parts[0] + "." + parts[1], "at+jwt"},
		{"four parts", good + ".x", "at+jwt"},
		{"alg none", hdr(`{"alg":"none","kid":"`+kid+`","typ":"at+jwt"}`) + "." + parts[1] + ".", "at+jwt"},
		{"alg none with padding sig", hdr(`{"alg":"none","kid":"`+kid+`","typ":"at+jwt"}`) + "." + parts[1] + "." + strings.Repeat("A", 86), "at+jwt"},
		{"alg ES256 on an EdDSA key", edSign(hdr(`{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt"}`), parts[1]), "at+jwt"},
		{"HS256 with the public key as secret", hs(hdr(`{"alg":"HS256","kid":"`+kid+`","typ":"at+jwt"}`), parts[1]), "at+jwt"},
		{"unknown kid", edSign(hdr(`{"alg":"EdDSA","kid":"nope","typ":"at+jwt"}`), parts[1]), "at+jwt"},
		{"no kid", edSign(hdr(`{"alg":"EdDSA","typ":"at+jwt"}`), parts[1]), "at+jwt"},
		{"wrong typ", good, "JWT"},
		{"missing typ", edSign(hdr(`{"alg":"EdDSA","kid":"`+kid+`"}`), parts[1]), "at+jwt"},
		{"crit header", edSign(hdr(`{"alg":"EdDSA","kid":"`+kid+`","typ":"at+jwt","crit":["exp"],"exp":1}`), parts[1]), "at+jwt"},
		{"tampered payload", parts[0] + "." + string(tampered) + "." + parts[2], "at+jwt"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + string(sig), "at+jwt"},
		{"signature by another key", func() string {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			in := parts[0] + "." + parts[1]
			return in + "." + enc.EncodeToString(ed25519.Sign(other, []byte(in)))
		}(), "at+jwt"},
		{"ecdsa signature", func() string {
			in := parts[0] + "." + parts[1]
			d := sha256.Sum256([]byte(in))
			r, s, _ := ecdsa.Sign(rand.Reader, ecKey, d[:])
			raw := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
			return in + "." + enc.EncodeToString(raw)
		}(), "at+jwt"},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], "at+jwt"},
		{"standard base64 alphabet", func() string {
			// A token whose URL-safe form holds a '-' or '_' (so the
			// standard alphabet really differs) and that verifies as is:
			// only the alphabet can be why it is refused.
			for i := range 1000 {
				tok := edSign(hdr(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"at+jwt","n":%d}`, kid, i)), parts[1])
				if !strings.ContainsAny(tok, "-_") {
					continue
				}
				var c claims
				if err := m.Verify(tok, "at+jwt", &c); err != nil {
					t.Fatalf("url-safe form refused: %v", err)
				}
				return strings.NewReplacer("-", "+", "_", "/").Replace(tok)
			}
			t.Fatal("no token with a '-' or '_' in 1000 tries")
			return ""
		}(), "at+jwt"},
		{"oversized", parts[0] + "." + strings.Repeat("A", signing.MaxTokenLen) + "." + parts[2], "at+jwt"},
		{"payload not json", edSign(parts[0], enc.EncodeToString([]byte("not json"))), "at+jwt"},
		{"payload an array", edSign(parts[0], enc.EncodeToString([]byte("[1,2]"))), "at+jwt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got claims
			wantInvalid(t, m.Verify(c.token, c.typ, &got))
		})
	}
	// The typ comparison is RFC 7515's: case-insensitive, "application/" optional.
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt"} {
		if err := m.Verify(good, typ, nil); err != nil {
			t.Errorf("typ %q refused: %v", typ, err)
		}
	}
	// The signature is not malleable: flipping the unused low bits of the
	// last base64 character is refused (strict decoding).
	last := parts[2][len(parts[2])-1]
	alt := strings.IndexByte("AEIMQUYcgkosw048", last)
	if alt >= 0 {
		flipped := parts[2][:len(parts[2])-1] + string("BFJNRVZdhlptx159"[alt])
		wantInvalid(t, m.Verify(parts[0]+"."+parts[1]+"."+flipped, "at+jwt", nil))
	}
}

// TestInteropWithGoJose runs the EdDSA and ES256 paths and cross-checks them with
// go-jose in both directions.
func TestInteropWithGoJose(t *testing.T) {
	for _, alg := range []signing.Algorithm{signing.EdDSA, signing.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			e := sqliteEnv(t)
			m := e.manager(func(c *signing.Config) { c.Algorithm = alg })
			k := m.Keys()[0]
			if k.Algorithm != alg {
				t.Fatalf("key algorithm %s", k.Algorithm)
			}
			c := e.claims()
			tok := sign(t, m, "at+jwt", c)

			// go-jose verifies ours with the key from our JWKS.
			var ks jose.JSONWebKeySet
			if err := json.Unmarshal(m.JWKS(), &ks); err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose parse: %v", err)
			}
			keys := ks.Key(jws.Signatures[0].Header.KeyID)
			if len(keys) != 1 || keys[0].Algorithm != string(alg) {
				t.Fatalf("JWKS lookup by kid: %+v", keys)
			}
			payload, err := jws.Verify(keys[0].Key)
			if err != nil {
				t.Fatalf("go-jose verify: %v", err)
			}
			var got claims
			if err := json.Unmarshal(payload, &got); err != nil || got.Jti != c.Jti {
				t.Fatalf("payload: %s", payload)
			}
			if typ, _ := jws.Signatures[0].Protected.ExtraHeaders["typ"].(string); typ != "at+jwt" {
				t.Fatalf("typ header %v", jws.Signatures[0].Protected.ExtraHeaders)
			}

			// We verify what go-jose signs with our key (the adapter A
			// writes for fosite signs through SignerFor the same way).
			kid, salg, signer, err := m.SignerFor(e.ctx)
			if err != nil || salg != alg || kid != k.ID {
				t.Fatalf("SignerFor: %s %s %v", kid, salg, err)
			}
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: signer},
				(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := js.Sign([]byte(`{"sub":"from-jose","jti":"j1"}`))
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			var back claims
			if err := m.Verify(theirs, "at+jwt", &back); err != nil || back.Sub != "from-jose" {
				t.Fatalf("Verify of a go-jose token: %v %+v", err, back)
			}
			// Twice: the second parse comes from the header cache.
			if err := m.Verify(theirs, "at+jwt", &back); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigRefused(t *testing.T) {
	e := sqliteEnv(t)
	for name, c := range map[string]signing.Config{
		"algorithm":                  {Algorithm: "RS256"},
		"publish ahead below reload": {PublishAhead: time.Minute, ReloadEvery: 2 * time.Minute},
		"rotate below publish ahead": {RotateEvery: time.Hour, PublishAhead: 2 * time.Hour},
		"negative":                   {MaxTokenTTL: -time.Second},
	} {
		if _, err := signing.New(context.Background(), c, signing.Deps{Store: e.st, Sealer: e.sealer, Audit: e.log, Now: e.clock.Now, Rand: rand.Reader}); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
	if n := len(e.events("keys.rotate")); n != 0 {
		t.Fatalf("a refused config created %d keys", n)
	}
}

// TestSealerFailureFailsClosed: a node whose sealer cannot open the stored
// key does not sign (and does not mint a key of its own to hide it).
func TestSealerFailureFailsClosed(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager()
	tok := sign(t, m, "at+jwt", e.claims())
	other := vault.NewKeyring(nil)
	if err := other.Add(1, bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := other.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	_, err := signing.New(e.ctx, testCfg, signing.Deps{Store: e.st, Sealer: vault.KeyringSealer{Keyring: other}, Audit: e.log, Now: e.clock.Now, Rand: rand.Reader})
	if err == nil {
		t.Fatal("a node that cannot open the signing key started")
	}
	if n := len(m.Keys()); n != 1 {
		t.Fatalf("keys: %d", n)
	}
	if err := m.Verify(tok, "at+jwt", nil); err != nil {
		t.Fatal(err)
	}
}
