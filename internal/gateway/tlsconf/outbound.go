package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"

	"github.com/rampartsec/rampart/internal/outbound"
)

// The TLS-3 outbound rule lives in internal/outbound, below every
// capability, so that vault, audit, rotation and mail use the same rule as
// the gateway. These names keep the gateway's callers compiling.

// OutboundOptions say what an outbound connection may do (TLS-3).
type OutboundOptions = outbound.Options

// Dialer dials plaintext connections under the TLS-3 rule.
type Dialer = outbound.Dialer

// ErrPlaintextRefused is outbound.ErrPlaintextRefused.
var ErrPlaintextRefused = outbound.ErrPlaintextRefused

// IsLoopback is outbound.IsLoopback.
func IsLoopback(host string) bool { return outbound.IsLoopback(host) }

// CheckPlaintext is outbound.CheckPlaintext.
func CheckPlaintext(addr string, allow bool) error { return outbound.CheckPlaintext(addr, allow) }

// ClientConfig is outbound.TLSConfig.
func ClientConfig(serverName string, rootCAs *x509.CertPool) *tls.Config {
	return outbound.TLSConfig(serverName, rootCAs)
}

// Outbound is outbound.Transport: the gateway's upstream transport and the
// one the TLS-3 live check probes.
func Outbound(o OutboundOptions) *http.Transport { return outbound.Transport(o) }
