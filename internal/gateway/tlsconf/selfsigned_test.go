package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestLoadOrCreateSelfSigned(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name       string
		secondAt   time.Time
		firstHosts []string
		hosts      []string
		corrupt    string // file to overwrite with garbage before the second call
		wantReuse  bool
	}{
		{name: "reused on restart", secondAt: t0.Add(time.Hour), wantReuse: true},
		{name: "reused with 8 days left", secondAt: t0.Add(82 * day), wantReuse: true},
		{name: "regenerated with 6 days left", secondAt: t0.Add(84 * day)},
		{name: "regenerated when expired", secondAt: t0.Add(91 * day)},
		{name: "regenerated for a new host", secondAt: t0.Add(time.Hour), hosts: []string{"dev.example.test"}},
		{name: "reused when hosts are a subset", secondAt: t0.Add(time.Hour),
			firstHosts: []string{"a.test", "10.0.0.1"}, hosts: []string{"10.0.0.1"}, wantReuse: true},
		{name: "empty host ignored", secondAt: t0.Add(time.Hour), hosts: []string{""}, wantReuse: true},
		{name: "regenerated when key is garbage", secondAt: t0.Add(time.Hour), corrupt: SelfSignedKeyFile},
		{name: "regenerated when cert is garbage", secondAt: t0.Add(time.Hour), corrupt: SelfSignedCertFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			first, err := LoadOrCreateSelfSigned(dir, tt.firstHosts, func() time.Time { return t0 }, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if tt.corrupt != "" {
				if err := os.WriteFile(filepath.Join(dir, tt.corrupt), []byte("not pem"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			second, err := LoadOrCreateSelfSigned(dir, tt.hosts, func() time.Time { return tt.secondAt }, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			reused := bytes.Equal(first.Certificate[0], second.Certificate[0])
			if reused != tt.wantReuse {
				t.Fatalf("reused = %v, want %v", reused, tt.wantReuse)
			}
			if !tt.wantReuse {
				if got, want := second.Leaf.NotAfter, tt.secondAt.Add(90*day); !got.Equal(want) {
					t.Errorf("new NotAfter = %v, want %v", got, want)
				}
				for _, h := range tt.hosts {
					if !certCovers(second.Leaf, h) {
						t.Errorf("regenerated certificate lacks %s", h)
					}
				}
			}
			// What is on disk is what was returned, so the next restart
			// reuses it.
			onDisk, err := tls.LoadX509KeyPair(filepath.Join(dir, SelfSignedCertFile), filepath.Join(dir, SelfSignedKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(onDisk.Certificate[0], second.Certificate[0]) {
				t.Error("stored certificate differs from the returned one")
			}
		})
	}
}

func TestSelfSignedProperties(t *testing.T) {
	dir := t.TempDir()
	cert, err := LoadOrCreateSelfSigned(dir, []string{"rampart.local", "192.0.2.10"}, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "rampart.local", "192.0.2.10"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("SAN %s: %v", h, err)
		}
	}
	if len(leaf.DNSNames) != 2 || len(leaf.IPAddresses) != 3 {
		t.Errorf("SANs = %v %v, want exactly the requested ones", leaf.DNSNames, leaf.IPAddresses)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if got := leaf.NotAfter.Sub(t0); got != 90*24*time.Hour {
		t.Errorf("validity = %v, want 90 days", got)
	}
	if leaf.NotBefore.After(t0) {
		t.Error("NotBefore is in the future")
	}
	if leaf.IsCA || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Error("want a server-auth leaf, not a CA")
	}
	fi, err := os.Stat(filepath.Join(dir, SelfSignedKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %o, want 600", mode)
	}
	// A client that trusts the certificate verifies it for 127.0.0.1 in a
	// real handshake; ServerConfig accepts an ECDSA certificate under TLS 1.2.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	addr := startServer(t, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	// The certificate is dated t0, so verify against a client clock of t0.
	for _, maxV := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		_, err := handshake(t, addr, &tls.Config{RootCAs: pool, MaxVersion: maxV, Time: func() time.Time { return t0 }})
		if err != nil {
			t.Errorf("%s handshake: %v", tls.VersionName(maxV), err)
		}
	}
}

func TestSelfSignedRandFailure(t *testing.T) {
	_, err := LoadOrCreateSelfSigned(t.TempDir(), nil, nil, bytes.NewReader(nil))
	if err == nil {
		t.Fatal("want an error when the random source is empty")
	}
}
