package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

type testKey struct {
	alg jose.SignatureAlgorithm
	kid string
	key crypto.Signer
}

func newKey(t testing.TB, alg jose.SignatureAlgorithm, kid string) *testKey {
	t.Helper()
	var k crypto.Signer
	var err error
	if alg == jose.EdDSA {
		_, k, err = ed25519.GenerateKey(rand.Reader)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{alg: alg, kid: kid, key: k}
}

func (k *testKey) sign(t testing.TB, typ string, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (k *testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// jwksServer serves the keys it is given; fetches are counted.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int32
	down    atomic.Bool
}

func newJWKS(t *testing.T, keys ...*testKey) *jwksServer {
	j := &jwksServer{}
	for _, k := range keys {
		j.keys = append(j.keys, k.jwk())
	}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		if j.down.Load() || r.URL.Path != "/.well-known/jwks.json" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
	}))
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) add(k *testKey) {
	j.mu.Lock()
	j.keys = append(j.keys, k.jwk())
	j.mu.Unlock()
}

const aud = "https://app.example.com"

var t0 = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

func claims(iss string, mod func(m map[string]any)) map[string]any {
	m := map[string]any{"iss": iss, "aud": aud, "sub": "u1", "email": "a@example.com", "workspace": "ws1", "roles": []string{"admin"},
		"sid": "s1", "amr": []string{"pwd", "mfa"}, "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(30 * time.Second).Unix(), "jti": "r1"}
	if mod != nil {
		mod(m)
	}
	return m
}

func TestVerifyAssertion(t *testing.T) {
	ed, es := newKey(t, jose.EdDSA, "ed1"), newKey(t, jose.ES256, "es1")
	j := newJWKS(t, ed, es)
	iss := j.URL
	hs := func() string { // an HS256 token "signed" with the public key's bytes: the classic confusion attack
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"ed1","typ":"rampart-assertion+jwt"}`))
		b, _ := json.Marshal(claims(iss, nil))
		p := base64.RawURLEncoding.EncodeToString(b)
		m := hmac.New(sha256.New, ed.key.Public().(ed25519.PublicKey))
		m.Write([]byte(h + "." + p))
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"ed1","typ":"rampart-assertion+jwt"}`))
		b, _ := json.Marshal(claims(iss, nil))
		return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
	}
	tests := []struct {
		name  string
		token string
		now   time.Time
		want  string // "" = valid; else a substring of the error
	}{
		{"EdDSA valid", ed.sign(t, AssertionType, claims(iss, nil)), t0.Add(time.Second), ""},
		{"ES256 valid", es.sign(t, AssertionType, claims(iss, nil)), t0.Add(time.Second), ""},
		{"aud as list", ed.sign(t, AssertionType, claims(iss, func(m map[string]any) { m["aud"] = []string{"x", aud} })), t0, ""},
		{"within leeway after exp", ed.sign(t, AssertionType, claims(iss, nil)), t0.Add(34 * time.Second), ""},
		{"expired", ed.sign(t, AssertionType, claims(iss, nil)), t0.Add(36 * time.Second), "expired"},
		{"issued in the future", ed.sign(t, AssertionType, claims(iss, nil)), t0.Add(-10 * time.Second), "future"},
		{"wrong audience", ed.sign(t, AssertionType, claims(iss, func(m map[string]any) { m["aud"] = "https://other" })), t0, "audience"},
		{"wrong issuer", ed.sign(t, AssertionType, claims(iss, func(m map[string]any) { m["iss"] = "https://evil" })), t0, "issuer"},
		{"no subject", ed.sign(t, AssertionType, claims(iss, func(m map[string]any) { delete(m, "sub") })), t0, "subject"},
		{"lifetime too long", ed.sign(t, AssertionType, claims(iss, func(m map[string]any) { m["exp"] = t0.Add(time.Hour).Unix() })), t0, "lifetime"},
		{"access token type", ed.sign(t, "at+jwt", claims(iss, nil)), t0, "type"},
		{"no type", ed.sign(t, "", claims(iss, nil)), t0, "type"},
		{"unknown key", newKey(t, jose.EdDSA, "ghost").sign(t, AssertionType, claims(iss, nil)), t0, "unknown key"},
		{"known kid, other key", (&testKey{alg: jose.EdDSA, kid: "ed1", key: newKey(t, jose.EdDSA, "x").key}).sign(t, AssertionType, claims(iss, nil)), t0, "signature"},
		{"HS256 with the public key", hs(), t0, "invalid"},
		{"alg none", none(), t0, "invalid"},
		{"garbage", "a.b.c", t0, "invalid"},
		{"empty", "", t0, "missing"},
		{"tampered payload", tamper(ed.sign(t, AssertionType, claims(iss, nil))), t0, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewAssertionVerifier(iss, aud)
			now := tt.now
			v.Now = func() time.Time { return now }
			a, err := v.VerifyAssertion(context.Background(), tt.token)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if a.Subject != "u1" || a.Email != "a@example.com" || a.Workspace != "ws1" || a.Roles[0] != "admin" || a.SessionID != "s1" || len(a.AMR) != 2 {
					t.Errorf("claims %+v", a)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrAssertion) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = []byte(strings.Replace(string(b), `"u1"`, `"u2"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestVerifierKeyCache(t *testing.T) {
	old, next := newKey(t, jose.EdDSA, "k1"), newKey(t, jose.EdDSA, "k2")
	j := newJWKS(t, old)
	now := t0
	v := NewAssertionVerifier(j.URL, aud)
	v.Now = func() time.Time { return now }
	ctx := context.Background()
	verify := func(k *testKey) error {
		c := claims(j.URL, func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = now.Unix(), now.Unix(), now.Add(30*time.Second).Unix()
		})
		_, err := v.VerifyAssertion(ctx, k.sign(t, AssertionType, c))
		return err
	}
	for i := range 5 {
		if err := verify(old); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if n := j.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for five verifications, want 1 (cached)", n)
	}
	// A rotated-in key: an unknown kid refreshes once.
	j.add(next)
	now = now.Add(time.Minute)
	if err := verify(next); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if n := j.fetches.Load(); n != 2 {
		t.Errorf("fetches %d, want 2", n)
	}
	// Forged kids cannot make it fetch on every request.
	for range 10 {
		_ = verify(newKey(t, jose.EdDSA, "forged"))
	}
	if n := j.fetches.Load(); n > 3 {
		t.Errorf("forged kids caused %d fetches", n)
	}
	// The JWKS endpoint goes down after the cache went stale: known keys
	// keep working.
	j.down.Store(true)
	now = now.Add(11 * time.Minute)
	if err := verify(next); err != nil {
		t.Errorf("stale cached key during outage: %v", err)
	}
}

func FuzzVerifyAssertion(f *testing.F) {
	k := newKey(f, jose.EdDSA, "ed1")
	f.Add(k.sign(f, AssertionType, claims("https://r", nil)))
	f.Add("eyJhbGciOiJFZERTQSJ9.e30.AAAA")
	f.Add("..")
	f.Add(strings.Repeat("a.", 100))
	keys, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk()}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(keys) }))
	defer srv.Close()
	v := NewAssertionVerifier("https://r", aud)
	v.JWKSURL = srv.URL
	v.Now = func() time.Time { return t0 }
	f.Fuzz(func(t *testing.T, tok string) {
		a, err := v.VerifyAssertion(context.Background(), tok)
		if err == nil && (a.Subject == "" || a.Issuer != "https://r") {
			t.Fatalf("accepted %q as %+v", tok, a)
		}
	})
}
