package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

func TestServerConfigProfile(t *testing.T) {
	cfg := ServerConfig(nil)
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %s, want TLS 1.2", tls.VersionName(cfg.MinVersion))
	}
	if len(cfg.CipherSuites) == 0 {
		t.Fatal("CipherSuites empty: Go defaults include CBC suites")
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		aead := strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")
		if insecure[id] || !strings.HasPrefix(name, "TLS_ECDHE_") || !aead {
			t.Errorf("suite %s is not ECDHE+AEAD", name)
		}
	}
	for _, c := range []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384} {
		if !slices.Contains(cfg.CurvePreferences, c) {
			t.Errorf("curve %s missing", c)
		}
	}
	if slices.Contains(cfg.CurvePreferences, tls.CurveP521) {
		t.Error("P-521 is not in the intermediate profile")
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos = %v", cfg.NextProtos)
	}
	// Each call is independent: a caller editing one must not affect others.
	cfg.CipherSuites[0] = tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
	if ServerConfig(nil).CipherSuites[0] == tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA {
		t.Error("ServerConfig shares its suite slice between calls")
	}
}

func TestHandshake(t *testing.T) {
	future := time.Now().Add(30 * 24 * time.Hour)
	ecCert := mustPair(t)(testPair(t, ecdsaKey, 1, future))
	rsaCert := mustPair(t)(testPair(t, rsaKey, 2, future))
	ecAddr := startServer(t, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return ecCert, nil })
	rsaAddr := startServer(t, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return rsaCert, nil })

	tls12 := func(suites ...uint16) *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites}
	}
	tests := []struct {
		name      string
		addr      string
		client    *tls.Config
		wantOK    bool
		wantVer   uint16
		wantSuite uint16 // 0 = any
		wantALPN  string
		wantCurve tls.CurveID // 0 = any
	}{
		{name: "TLS 1.3 default client", addr: ecAddr,
			client: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}},
			// Go's default hybrid post-quantum exchange stays enabled.
			wantOK: true, wantVer: tls.VersionTLS13, wantALPN: "h2", wantCurve: tls.X25519MLKEM768},
		{name: "TLS 1.3 http/1.1 only client", addr: ecAddr,
			client: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
			wantOK: true, wantVer: tls.VersionTLS13, wantALPN: "http/1.1"},
		{name: "TLS 1.3 X25519 only", addr: ecAddr,
			client: &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519}},
			wantOK: true, wantVer: tls.VersionTLS13, wantCurve: tls.X25519},
		{name: "TLS 1.2 ECDHE-ECDSA-AES128-GCM", addr: ecAddr,
			client: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
			wantOK: true, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2 ECDHE-ECDSA-CHACHA20", addr: ecAddr,
			client: tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
			wantOK: true, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "TLS 1.2 ECDHE-RSA-AES256-GCM", addr: rsaAddr,
			client: tls12(tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
			wantOK: true, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{name: "TLS 1.2 P-384 only", addr: ecAddr,
			client: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP384}},
			wantOK: true, wantVer: tls.VersionTLS12, wantCurve: tls.CurveP384},
		{name: "TLS 1.0/1.1 client refused", addr: ecAddr,
			client: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
		{name: "TLS 1.2 ECDHE-ECDSA CBC only refused", addr: ecAddr,
			client: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA)},
		{name: "TLS 1.2 ECDHE-RSA CBC only refused", addr: rsaAddr,
			client: tls12(tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA)},
		{name: "TLS 1.2 RSA key exchange refused", addr: rsaAddr,
			client: tls12(tls.TLS_RSA_WITH_AES_128_GCM_SHA256)},
		{name: "P-521 only client refused", addr: ecAddr,
			client: &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.CurveP521}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := handshake(t, tt.addr, tt.client)
			if !tt.wantOK {
				if err == nil {
					t.Fatalf("handshake succeeded with %s, want refusal", Describe(st))
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if st.Version != tt.wantVer {
				t.Errorf("version = %s, want %s", tls.VersionName(st.Version), tls.VersionName(tt.wantVer))
			}
			if tt.wantSuite != 0 && st.CipherSuite != tt.wantSuite {
				t.Errorf("suite = %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tt.wantSuite))
			}
			if tt.wantCurve != 0 && st.CurveID != tt.wantCurve {
				t.Errorf("key exchange = %s, want %s", st.CurveID, tt.wantCurve)
			}
			if tt.wantALPN != "" && st.NegotiatedProtocol != tt.wantALPN {
				t.Errorf("ALPN = %q, want %q", st.NegotiatedProtocol, tt.wantALPN)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		state tls.ConnectionState
		want  string
	}{
		{tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256},
			"TLS 1.3 TLS_AES_128_GCM_SHA256"},
		{tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
			"TLS 1.2 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
		{tls.ConnectionState{}, "no TLS handshake"},
	}
	for _, tt := range tests {
		if got := Describe(tt.state); got != tt.want {
			t.Errorf("Describe = %q, want %q", got, tt.want)
		}
	}
}

func TestProbeListener(t *testing.T) {
	certPEM, keyPEM := testPair(t, ecdsaKey, 7, time.Now().Add(24*time.Hour))
	cert := mustPair(t)(certPEM, keyPEM)
	addr := startServer(t, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	trusted := x509.NewCertPool()
	trusted.AppendCertsFromPEM(certPEM)
	other := x509.NewCertPool()
	otherPEM, _ := testPair(t, ecdsaKey, 8, time.Now().Add(24*time.Hour))
	other.AppendCertsFromPEM(otherPEM)

	tests := []struct {
		name     string
		addr     string
		roots    *x509.CertPool
		wantKind fault.Kind
		wantOK   bool
	}{
		{name: "insecure local check", addr: addr, wantOK: true},
		{name: "verified against trusted root", addr: addr, roots: trusted, wantOK: true},
		{name: "untrusted certificate", addr: addr, roots: other, wantKind: fault.Unavailable},
		{name: "bad address", addr: "no-port", wantKind: fault.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := ProbeListener(ctx, tt.addr, tt.roots)
			if !tt.wantOK {
				if err == nil || fault.KindOf(err) != tt.wantKind {
					t.Fatalf("err = %v, want kind %s", err, tt.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := Describe(st); !strings.HasPrefix(got, "TLS 1.3 TLS_") {
				t.Errorf("Describe = %q", got)
			}
			if st.PeerCertificates[0].SerialNumber.Int64() != 7 {
				t.Error("probe saw the wrong certificate")
			}
		})
	}
}
