package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// OutboundOptions say what an outbound connection may do (TLS-3).
type OutboundOptions struct {
	// AllowPlaintext permits unencrypted connections to hosts that are not
	// loopback: an explicit, per-use decision (e.g. an upstream app on a
	// private network). Loopback is always allowed: it never leaves the
	// machine.
	AllowPlaintext bool
	// RootCAs verifies servers; nil means the system pool.
	RootCAs *x509.CertPool
	// DialTimeout bounds connecting; zero means 10 s.
	DialTimeout time.Duration
}

// ErrPlaintextRefused is returned (kind Forbidden) when a plaintext
// connection to a non-loopback host is attempted without AllowPlaintext.
var ErrPlaintextRefused = fault.New(fault.Forbidden, "plaintext_refused",
	"plaintext connection to a non-loopback host refused; use TLS or allow plaintext explicitly")

// IsLoopback reports whether host (a name or address, without port) stays
// on this machine: "localhost" or a loopback address. Other names are not
// resolved: a name that happens to resolve to 127.0.0.1 today may not
// tomorrow, so it counts as remote.
func IsLoopback(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckPlaintext is the rule itself, for clients that are not HTTP
// (database, Redis, SMTP, syslog): it returns ErrPlaintextRefused when addr
// (host:port or host) is remote and plaintext is not allowed.
func CheckPlaintext(addr string, allow bool) error {
	if allow {
		return nil
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if IsLoopback(host) {
		return nil
	}
	return ErrPlaintextRefused
}

// ClientConfig is the TLS client configuration for outbound connections:
// TLS 1.2 or later, certificate verified against RootCAs (or the system
// pool) for serverName. It never skips verification.
func ClientConfig(serverName string, rootCAs *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, RootCAs: rootCAs}
}

// Dialer dials plaintext connections under the TLS-3 rule; use it where a
// library takes a dial function (go-redis Options.Dialer, SMTP, syslog).
type Dialer struct {
	AllowPlaintext bool
	Timeout        time.Duration
}

// DialContext refuses a remote address unless plaintext is allowed; the
// check uses the address as given, before any resolution.
func (d Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := CheckPlaintext(addr, d.AllowPlaintext); err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: d.Timeout, KeepAlive: 30 * time.Second}
	if nd.Timeout == 0 {
		nd.Timeout = 10 * time.Second
	}
	return nd.DialContext(ctx, network, addr)
}

// Outbound returns an http.Transport for outbound HTTP (webhooks, identity
// providers, object storage, upstream apps) that enforces TLS-3: https
// connections verify the server (TLS 1.2+, no InsecureSkipVerify), and
// http connections to a host that is not loopback fail with
// ErrPlaintextRefused unless AllowPlaintext is set. Proxies from the
// environment are not used: an outbound call goes where it says.
//
// The transport keeps connections alive and may be shared; callers tune
// pool sizes on the result.
func Outbound(o OutboundOptions) *http.Transport {
	timeout := o.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	plain := Dialer{AllowPlaintext: o.AllowPlaintext, Timeout: timeout}
	tlsDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		raw, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := ClientConfig(host, o.RootCAs)
		cfg.NextProtos = []string{"h2", "http/1.1"}
		c := tls.Client(raw, cfg)
		if err := c.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return c, nil
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           plain.DialContext, // only plaintext http:// reaches this
		DialTLSContext:        tlsDial,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       ClientConfig("", o.RootCAs),
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
