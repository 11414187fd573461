package gateway

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/internal/audit"
)

// testSigner signs like Rampart's signing manager (a JWS with kid and typ)
// with a key of the test's own; jwks serves its public half.
type testSigner struct {
	alg  jose.SignatureAlgorithm
	key  crypto.Signer
	kid  string
	fail bool
}

func newTestSigner(t testing.TB, alg jose.SignatureAlgorithm) *testSigner {
	t.Helper()
	var k crypto.Signer
	switch alg {
	case jose.EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k = priv
	case jose.ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k = priv
	}
	return &testSigner{alg: alg, key: k, kid: "kid-" + string(alg)}
}

func (s *testSigner) Sign(typ string, claims any) (string, error) {
	if s.fail {
		return "", context.DeadlineExceeded
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: jose.JSONWebKey{Key: s.key, KeyID: s.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := sg.Sign(b)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

func (s *testSigner) jwks() []byte {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: s.key.Public(), KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}}}
	b, _ := json.Marshal(set)
	return b
}

// fakeAuth authenticates by a test header and answers authorization from
// a table; the app's real Authenticator is tested in internal/app with
// real sessions and API keys.
type fakeAuth struct {
	ids   map[string]*Identity       // X-Test-User value → identity
	perms map[string]map[string]bool // subject → "ws/perm"
	roles []string
}

func (a *fakeAuth) Authenticate(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	v := r.Header.Get("X-Test-User")
	if v == "" {
		return nil, nil
	}
	id, ok := a.ids[v]
	if !ok {
		return nil, context.Canceled
	}
	return id, nil
}

func (a *fakeAuth) Authorize(_ context.Context, id *Identity, ws, perm string) Decision {
	if a.perms[id.Subject][ws+"/"+perm] {
		return Decision{Allowed: true, Reason: "allowed"}
	}
	return Decision{Reason: "permission_denied"}
}

func (a *fakeAuth) Roles(context.Context, *Identity, string) []string { return a.roles }

// memAudit keeps events in memory.
type memAudit struct {
	mu sync.Mutex
	ev []audit.Event
}

func (m *memAudit) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ev = append(m.ev, e)
	return nil
}

func (m *memAudit) actions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.ev {
		out = append(out, e.Action)
	}
	return out
}

// echo is an upstream that reports what it received.
type seen struct {
	Path    string
	Host    string
	Headers http.Header
}

func echoUpstream(t testing.TB) (*httptest.Server, func() seen) {
	t.Helper()
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = seen{Path: r.URL.Path, Host: r.Host, Headers: r.Header.Clone()}
		mu.Unlock()
		w.Header().Set("Server", "app/1.0")
		w.Header().Set("X-Powered-By", "php")
		if strings.HasSuffix(r.URL.Path, "/own-csp") {
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("upstream " + r.Method + " " + r.URL.Path))
	}))
	t.Cleanup(srv.Close)
	return srv, func() seen { mu.Lock(); defer mu.Unlock(); return last }
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// do sends req through h and returns the recorded response.
func do(h http.Handler, method, target string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for k, v := range hdr {
		if k == "RemoteAddr" {
			r.RemoteAddr = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type urlT = url.URL
