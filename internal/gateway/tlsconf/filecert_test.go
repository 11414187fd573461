package tlsconf

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// writePair writes cert and key and stamps both with mtime, as a renewal
// tool replacing the files would.
func writePair(t testing.TB, dir string, certPEM, keyPEM []byte, mtime time.Time) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for p, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	st, err := handshake(t, addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return st.PeerCertificates[0].SerialNumber.Int64()
}

func TestFileCertHotReload(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := &fakeClock{t: now}
	expiry := now.Add(60 * 24 * time.Hour)
	certA, keyA := testPair(t, ecdsaKey, 1, expiry)
	certB, keyB := testPair(t, rsaKey, 2, expiry)
	certC, keyC := testPair(t, ecdsaKey, 3, expiry)
	certFile, keyFile := writePair(t, dir, certA, keyA, now.Add(-time.Hour))

	logs := &lockedBuffer{}
	fc, err := NewFileCert(certFile, keyFile, slog.New(slog.NewTextHandler(logs, nil)), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, fc.GetCertificate)

	steps := []struct {
		name       string
		write      func()
		advance    time.Duration
		wantSerial int64
		wantLog    string
	}{
		{name: "serves A", wantSerial: 1},
		{name: "B written, checked too soon: still A",
			write:   func() { writePair(t, dir, certB, keyB, now.Add(time.Minute)) },
			advance: time.Second, wantSerial: 1},
		{name: "after the check interval: B", advance: reloadCheckInterval, wantSerial: 2,
			wantLog: "certificate reloaded"},
		{name: "garbage written: keep B and log",
			write:   func() { writePair(t, dir, []byte("junk"), keyB, now.Add(2*time.Minute)) },
			advance: reloadCheckInterval, wantSerial: 2, wantLog: "rejected"},
		{name: "mismatched pair: keep B",
			write:   func() { writePair(t, dir, certC, keyB, now.Add(3*time.Minute)) },
			advance: reloadCheckInterval, wantSerial: 2},
		{name: "key removed mid-rotation: keep B",
			write: func() {
				if err := os.Remove(keyFile); err != nil {
					t.Fatal(err)
				}
			},
			advance: reloadCheckInterval, wantSerial: 2, wantLog: "cannot stat"},
		{name: "good pair C: recovered",
			write:   func() { writePair(t, dir, certC, keyC, now.Add(4*time.Minute)) },
			advance: reloadCheckInterval, wantSerial: 3},
	}
	for _, s := range steps {
		if s.write != nil {
			s.write()
		}
		clock.Advance(s.advance)
		if got := servedSerial(t, addr); got != s.wantSerial {
			t.Fatalf("%s: served serial %d, want %d", s.name, got, s.wantSerial)
		}
		if got := fc.Leaf().SerialNumber.Int64(); got != s.wantSerial {
			t.Fatalf("%s: Leaf serial %d, want %d", s.name, got, s.wantSerial)
		}
		if s.wantLog != "" && !strings.Contains(logs.String(), s.wantLog) {
			t.Fatalf("%s: log lacks %q:\n%s", s.name, s.wantLog, logs.String())
		}
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Error("key material reached the log")
	}
	if !fc.Leaf().NotAfter.Equal(expiry.Truncate(time.Second)) {
		t.Errorf("Leaf NotAfter = %v, want %v", fc.Leaf().NotAfter, expiry)
	}
}

func TestNewFileCertErrors(t *testing.T) {
	now := time.Now()
	good, goodKey := testPair(t, ecdsaKey, 1, now.Add(time.Hour))
	_, otherKey := testPair(t, ecdsaKey, 2, now.Add(time.Hour))
	expired, expiredKey := testPair(t, ecdsaKey, 3, now.Add(-time.Hour))
	tests := []struct {
		name     string
		cert     []byte
		key      []byte
		missing  bool
		wantCode string
	}{
		{name: "valid", cert: good, key: goodKey},
		{name: "missing files", missing: true, wantCode: "tls_cert_unreadable"},
		{name: "not PEM", cert: []byte("nope"), key: goodKey, wantCode: "tls_cert_invalid"},
		{name: "key does not match", cert: good, key: otherKey, wantCode: "tls_cert_invalid"},
		{name: "expired", cert: expired, key: expiredKey, wantCode: "tls_cert_expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "x.crt"), filepath.Join(dir, "x.key")
			if !tt.missing {
				certFile, keyFile = writePair(t, dir, tt.cert, tt.key, now)
			}
			fc, err := NewFileCert(certFile, keyFile, nil, func() time.Time { return now })
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				if fc.Leaf().SerialNumber.Int64() != 1 {
					t.Error("wrong leaf")
				}
				return
			}
			if err == nil {
				t.Fatal("want error")
			}
			if fe := fault.As(err); fe.Kind != fault.Invalid || fe.Code != tt.wantCode {
				t.Errorf("err = %v (code %s), want Invalid %s", err, fe.Code, tt.wantCode)
			}
		})
	}
}

// FuzzParsePair feeds arbitrary certificate and key bytes to the loader a
// hot reload runs on whatever a renewal tool left on disk: it must never
// panic and must only accept a pair whose leaf is present.
func FuzzParsePair(f *testing.F) {
	now := time.Now()
	cert, key := testPair(f, ecdsaKey, 1, now.Add(time.Hour))
	f.Add(cert, key)
	f.Add(cert, cert)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), key)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		c, err := parsePair(certPEM, keyPEM, now)
		if err == nil && (c == nil || c.Leaf == nil || !now.Before(c.Leaf.NotAfter)) {
			t.Fatal("accepted a pair without a valid leaf")
		}
	})
}

func BenchmarkGetCertificate(b *testing.B) {
	dir := b.TempDir()
	cert, key := testPair(b, ecdsaKey, 1, time.Now().Add(time.Hour))
	certFile, keyFile := writePair(b, dir, cert, key, time.Now())
	fc, err := NewFileCert(certFile, keyFile, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := fc.GetCertificate(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHandshake(b *testing.B) {
	cert := mustPair(b)(testPair(b, ecdsaKey, 1, time.Now().Add(time.Hour)))
	addr := startServer(b, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		b.Run(tls.VersionName(v), func(b *testing.B) {
			cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: v}
			for b.Loop() {
				if _, err := handshake(b, addr, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
