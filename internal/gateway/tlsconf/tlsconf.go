// Package tlsconf builds the TLS configuration every Rampart listener uses
// (control TLS-1): the Mozilla "intermediate" server profile, a self-signed
// certificate for development, certificates from files with hot reload, and
// small helpers the TLS-1 live check uses to verify a running listener.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// intermediateCipherSuites are the TLS 1.2 suites of the Mozilla
// "intermediate" profile (https://wiki.mozilla.org/Security/Server_Side_TLS,
// https://ssl-config.mozilla.org/ guideline 5.7): ECDHE key exchange only, so
// every session is forward secret, and AEAD ciphers only, so there is no
// CBC padding-oracle surface (Lucky13 and friends). Plain RSA key exchange,
// CBC, 3DES and RC4 are absent on purpose; testssl.sh (TLS-4) flags them.
var intermediateCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// intermediateCurves are the key exchanges the profile allows: X25519, P-256
// and P-384 as Mozilla lists them, plus the hybrid post-quantum groups Go
// turns on by default for TLS 1.3. Since Go 1.24 CurvePreferences only
// filters Go's own default list, so naming the hybrids here keeps them only
// while Go (and GODEBUG) enables them; it never switches one on. P-521 is
// dropped as the profile does.
var intermediateCurves = []tls.CurveID{
	tls.X25519MLKEM768,
	tls.SecP256r1MLKEM768,
	tls.SecP384r1MLKEM1024,
	tls.X25519,
	tls.CurveP256,
	tls.CurveP384,
}

// ServerConfig returns the server TLS configuration for every Rampart
// listener, following the Mozilla "intermediate" profile
// (https://wiki.mozilla.org/Security/Server_Side_TLS): TLS 1.2 and 1.3 only,
// forward-secret AEAD suites for TLS 1.2 (TLS 1.3 suites are all AEAD and
// are left to Go), curves X25519/P-256/P-384, and ALPN h2 then http/1.1.
// The intermediate rather than the "modern" (TLS 1.3 only) profile is used
// because Rampart fronts customer apps whose clients we do not control.
//
// getCert supplies the certificate per handshake, so file reload, ACME or a
// self-signed dev certificate plug in without rebuilding the config. The
// caller gets a fresh *tls.Config each time and may add to it.
func ServerConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     append([]uint16(nil), intermediateCipherSuites...),
		CurvePreferences: append([]tls.CurveID(nil), intermediateCurves...),
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   getCert,
	}
}

// Describe renders the negotiated protocol and cipher suite of a connection,
// e.g. "TLS 1.3 TLS_AES_128_GCM_SHA256", for live checks and startup logs.
func Describe(state tls.ConnectionState) string {
	if !state.HandshakeComplete {
		return "no TLS handshake"
	}
	return tls.VersionName(state.Version) + " " + tls.CipherSuiteName(state.CipherSuite)
}

// probeTimeout bounds a probe whose context has no deadline, so a live
// check never hangs on a listener that accepts but never answers.
const probeTimeout = 10 * time.Second

// ProbeListener performs a real TLS handshake with addr (host:port) and
// returns the negotiated state; the TLS-1 live check uses it to prove the
// running listener serves what ServerConfig promises. It dials addr and
// nothing else and sends no application data.
//
// rootCAs verifies the server certificate against the host in addr. A nil
// pool skips verification: that is only meant for checking a local listener
// that serves the self-signed development certificate, where the question
// is "which protocol and suite", not "who is this".
func ProbeListener(ctx context.Context, addr string, rootCAs *x509.CertPool) (tls.ConnectionState, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return tls.ConnectionState{}, fault.Wrap(fault.Invalid, "tls_probe_address", "invalid listener address", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	d := tls.Dialer{Config: &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: host,
		RootCAs:    rootCAs,
		// Deliberate and scoped: see the doc comment above.
		InsecureSkipVerify: rootCAs == nil, //nolint:gosec
		NextProtos:         []string{"h2", "http/1.1"},
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, fault.Wrap(fault.Unavailable, "tls_probe_failed",
			fmt.Sprintf("TLS handshake with %s failed", addr), err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}
