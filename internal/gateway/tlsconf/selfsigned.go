package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// File names of the development certificate inside the data directory.
const (
	SelfSignedCertFile = "tls-selfsigned.crt"
	SelfSignedKeyFile  = "tls-selfsigned.key"
)

const (
	// selfSignedValidity is short, like an ACME certificate, so a dev
	// certificate that leaks is not useful for long.
	selfSignedValidity = 90 * 24 * time.Hour
	// selfSignedRenewBefore: a certificate closer than this to expiry is
	// replaced at startup, so a dev server never starts with a certificate
	// that will expire while it runs for a typical week.
	selfSignedRenewBefore = 7 * 24 * time.Hour
	// selfSignedBackdate tolerates small clock differences between the
	// server and a browser on another machine.
	selfSignedBackdate = 5 * time.Minute
)

// defaultSelfSignedHosts are always covered so the dev server is reachable
// as localhost over IPv4 and IPv6.
var defaultSelfSignedHosts = []string{"localhost", "127.0.0.1", "::1"}

// LoadOrCreateSelfSigned returns the development certificate stored in dir,
// creating it when it is missing, unreadable, expiring within 7 days or not
// covering every host. It covers localhost, 127.0.0.1, ::1 and hosts (names
// or IP literals), uses an ECDSA P-256 key and is valid for 90 days. Reusing
// it across restarts matters because a browser exception or a pinned dev CA
// survives only as long as the certificate does.
//
// The key file is written with mode 0600. now and rand default to time.Now
// and crypto/rand.Reader when nil. (Since Go 1.26 key generation ignores
// rand and always uses the system source; rand still drives the serial.)
func LoadOrCreateSelfSigned(dir string, hosts []string, now func() time.Time, rand io.Reader) (tls.Certificate, error) {
	if now == nil {
		now = time.Now
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	want := append([]string(nil), defaultSelfSignedHosts...)
	for _, h := range hosts {
		if h != "" {
			want = append(want, h)
		}
	}
	certPath := filepath.Join(dir, SelfSignedCertFile)
	keyPath := filepath.Join(dir, SelfSignedKeyFile)
	t := now()

	if cp, err := os.ReadFile(certPath); err == nil {
		if kp, err := os.ReadFile(keyPath); err == nil {
			// parsePair also rejects an expired pair; selfSignedUsable
			// adds the renewal margin and host coverage.
			if cert, err := parsePair(cp, kp, t); err == nil && selfSignedUsable(cert.Leaf, want, t) {
				return *cert, nil
			}
		}
	}

	certPEM, keyPEM, err := newSelfSigned(want, t, rand)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fault.Wrap(fault.Internal, "tls_selfsigned_write", "cannot store development certificate", err)
	}
	// Key first: if we die between the two writes, the old certificate no
	// longer matches the new key, so the next start regenerates instead of
	// serving a mismatched pair.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	cert, err := parsePair(certPEM, keyPEM, t)
	if err != nil {
		return tls.Certificate{}, fault.Wrap(fault.Internal, "tls_selfsigned_invalid", "generated development certificate is invalid", err)
	}
	return *cert, nil
}

// selfSignedUsable reports whether a stored certificate can be reused at t.
func selfSignedUsable(leaf *x509.Certificate, hosts []string, t time.Time) bool {
	if leaf == nil || t.Before(leaf.NotBefore) || leaf.NotAfter.Sub(t) <= selfSignedRenewBefore {
		return false
	}
	for _, h := range hosts {
		if !certCovers(leaf, h) {
			return false
		}
	}
	return true
}

// certCovers reports whether leaf names host exactly in its SANs. Exact
// match, not VerifyHostname, because we only ever issue exact names and a
// stale wildcard from elsewhere should not count.
func certCovers(leaf *x509.Certificate, host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		for _, c := range leaf.IPAddresses {
			if c.Equal(ip) {
				return true
			}
		}
		return false
	}
	for _, n := range leaf.DNSNames {
		if n == host {
			return true
		}
	}
	return false
}

// newSelfSigned returns a PEM certificate and PKCS#8 key for hosts.
func newSelfSigned(hosts []string, t time.Time, rand io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, nil, fault.Wrap(fault.Internal, "tls_selfsigned_key", "cannot generate development key", err)
	}
	serial, err := randSerial(rand)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Rampart development"}, CommonName: "Rampart development certificate"},
		NotBefore:             t.Add(-selfSignedBackdate),
		NotAfter:              t.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fault.Wrap(fault.Internal, "tls_selfsigned_cert", "cannot create development certificate", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fault.Wrap(fault.Internal, "tls_selfsigned_key", "cannot encode development key", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// randSerial returns a positive 128-bit serial number (RFC 5280 allows up
// to 20 octets; 128 random bits make collisions irrelevant).
func randSerial(rand io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, fault.Wrap(fault.Internal, "tls_selfsigned_serial", "cannot generate serial number", err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // never zero, constant length
	return new(big.Int).SetBytes(b), nil
}

// writeFileAtomic writes data to path via a temporary file in the same
// directory and a rename, so a crash never leaves a half-written key, and
// sets perm before any secret byte is written.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	fail := func(e error) error {
		return fault.Wrap(fault.Internal, "tls_selfsigned_write", "cannot store development certificate", e)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fail(err)
	}
	return nil
}
