package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveWith runs a TLS listener with cfg that completes handshakes.
func serveWith(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Read(make([]byte, 1))
				}
			})
		}
	})
	return ln.Addr().String()
}

func TestTicketKeyRotation(t *testing.T) {
	clk := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	keys, err := NewTicketKeys(24*time.Hour, rand.Reader, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := testPair(t, ecdsaKey, 1, time.Now().Add(time.Hour))
	cert := mustPair(t)(certPEM, keyPEM)
	cfg := ServerConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	keys.Attach(cfg)
	addr := serveWith(t, cfg)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	cache := tls.NewLRUClientSessionCache(4)
	dial := func() bool {
		t.Helper()
		// TLS 1.2: the ticket arrives within the handshake, so resumption
		// is deterministic.
		st, err := handshake(t, addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12, ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return st.DidResume
	}
	steps := []struct {
		name   string
		rotate int
		resume bool
	}{
		{"first handshake is full", 0, false},
		{"same key resumes", 0, true},
		{"one rotation: previous key still resumes", 1, true},
		{"two rotations: the old ticket is dead", 2, false},
	}
	for _, s := range steps {
		for range s.rotate {
			clk.Advance(24 * time.Hour)
			if err := keys.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
		if got := dial(); got != s.resume {
			t.Errorf("%s: resumed=%v", s.name, got)
		}
	}
	if !keys.Rotated().Equal(clk.Now()) {
		t.Errorf("Rotated() = %v, want %v", keys.Rotated(), clk.Now())
	}
	if _, err := NewTicketKeys(time.Hour, io.LimitReader(rand.Reader, 0), clk.Now); err == nil {
		t.Error("a failing random source must fail")
	}
}

func TestRedirectHandler(t *testing.T) {
	tests := []struct {
		name, method, target, host, port string
		want                             int
		loc                              string
	}{
		{"get keeps path and query", "GET", "/a/b?x=1", "example.com", "443", 301, "https://example.com/a/b?x=1"},
		{"port from config", "GET", "/", "example.com:80", "8443", 301, "https://example.com:8443/"},
		{"post keeps method", "POST", "/v1/signin", "example.com", "", 308, "https://example.com/v1/signin"},
		{"ipv6 literal", "GET", "/", "[::1]:80", "8443", 301, "https://[::1]:8443/"},
		{"bad host", "GET", "/", "evil.com/@x", "", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader("a=1"))
			r.Host = tt.host
			w := httptest.NewRecorder()
			RedirectHandler(tt.port).ServeHTTP(w, r)
			if w.Code != tt.want || w.Header().Get("Location") != tt.loc {
				t.Errorf("got %d %q", w.Code, w.Header().Get("Location"))
			}
			if w.Code < 400 && w.Body.Len() > 0 {
				t.Errorf("redirect carries a body: %q", w.Body.String())
			}
		})
	}
}
