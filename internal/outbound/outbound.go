// Package outbound is the one place Rampart decides how it connects to
// other machines (control TLS-3): TLS is always verified (1.2 or later, no
// switch to skip verification), and plaintext to a host that is not
// loopback is refused unless the caller's configuration explicitly allows
// it.
//
// Every outbound client uses it: gateway upstreams, audit webhooks, syslog
// and witnesses, alert channels, integration providers, rotation webhooks
// and SMTP. It sits below every capability (it imports only internal/fault)
// so that vault and audit, which may not import the gateway, can use it
// instead of keeping copies of the rule that drift apart.
//
// Hosts are judged by name as written, never by resolving them: a name that
// resolves to 127.0.0.1 today may not tomorrow, and DNS is something an
// attacker may influence, so only "localhost" and loopback addresses count
// as loopback.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// Options say what an outbound connection may do.
type Options struct {
	// AllowPlaintext permits unencrypted connections to hosts that are not
	// loopback: an explicit, per-use decision (e.g. an upstream app on a
	// private network) taken from configuration. Loopback is always
	// allowed: it never leaves the machine.
	AllowPlaintext bool
	// RootCAs verifies servers; nil means the system pool.
	RootCAs *x509.CertPool
	// DialTimeout bounds connecting; zero means 10 s.
	DialTimeout time.Duration
	// EnvironmentProxy sends HTTP requests through the proxy named by
	// HTTPS_PROXY, HTTP_PROXY and NO_PROXY, for deployments whose egress
	// goes through one (webhooks, providers). Off, a call goes where its URL
	// says (the gateway's upstreams). Either way the rule applies to the
	// request's own URL; https through a proxy stays end-to-end TLS,
	// verified against the destination's name.
	EnvironmentProxy bool
}

// ErrPlaintextRefused is returned (kind Forbidden) when a plaintext
// connection to a non-loopback host is attempted without AllowPlaintext.
// Callers wrap it with their own code; errors.Is still finds it.
var ErrPlaintextRefused = fault.New(fault.Forbidden, "plaintext_refused",
	"plaintext connection to a non-loopback host refused; use TLS or allow plaintext explicitly")

// ErrSchemeRefused is returned (kind Forbidden) for an HTTP request whose
// URL is neither https nor http.
var ErrSchemeRefused = fault.New(fault.Forbidden, "scheme_refused", "only https (or allowed http) may be used for outbound calls")

// ErrInvalidURL is returned (kind Invalid) by ParseURL for a URL that is not
// an absolute http(s) URL. Like every error here it does not quote the URL,
// which may carry a secret in its path or query (Slack's incoming webhooks).
var ErrInvalidURL = fault.New(fault.Invalid, "endpoint_invalid", "endpoint must be an absolute http(s) URL")

const defaultDialTimeout = 10 * time.Second

// IsLoopback reports whether host (a name or address, without port;
// brackets around an IPv6 address are accepted) stays on this machine:
// "localhost" or a loopback address. Other names are not resolved, so
// "localhost.example.org" or a name that resolves to 127.0.0.1 is remote.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckPlaintext is the rule itself, for clients that are not HTTP
// (database, Redis, SMTP, syslog) and for checking configuration early: it
// returns ErrPlaintextRefused when addr (host:port or host) is remote and
// plaintext is not allowed.
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

// checkRequestURL applies the rule to one HTTP request's URL: https always,
// http under CheckPlaintext, nothing else.
func checkRequestURL(u *url.URL, allow bool) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		return CheckPlaintext(u.Host, allow)
	}
	return ErrSchemeRefused
}

// ParseURL parses an endpoint from configuration and applies the rule, so
// a refused endpoint fails at start-up rather than at the first call. It
// returns ErrInvalidURL or ErrPlaintextRefused; neither quotes the URL.
func ParseURL(raw string, allowPlaintext bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, ErrInvalidURL
	}
	if err := checkRequestURL(u, allowPlaintext); err != nil {
		return nil, err
	}
	return u, nil
}

// TLSConfig is the TLS client configuration for outbound connections:
// TLS 1.2 or later (older versions have known weaknesses and TLS-1 requires
// 1.2+), certificate verified against rootCAs (nil: the system pool) for
// serverName. There is deliberately no way to skip verification: a private
// CA goes in rootCAs instead.
func TLSConfig(serverName string, rootCAs *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, RootCAs: rootCAs}
}

// Dialer dials plaintext connections under the rule; use it where a
// library takes a dial function (go-redis Options.Dialer, SMTP, syslog).
type Dialer struct {
	AllowPlaintext bool
	// Timeout bounds connecting; zero means 10 s.
	Timeout time.Duration
}

// DialContext refuses a remote address unless plaintext is allowed; the
// check uses the address as given, before any resolution.
func (d Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := CheckPlaintext(addr, d.AllowPlaintext); err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: d.Timeout, KeepAlive: 30 * time.Second}
	if nd.Timeout == 0 {
		nd.Timeout = defaultDialTimeout
	}
	return nd.DialContext(ctx, network, addr)
}

// Transport returns an http.Transport that enforces the rule twice over:
// each request's URL is checked before anything is dialled (so a redirect
// or a reused transport cannot reach a plaintext remote host), and, without
// a proxy, every plaintext connection is dialled through Dialer. https
// verifies the server with TLSConfig.
//
// The transport keeps connections alive and may be shared; callers tune
// pool sizes and timeouts on the result.
func Transport(o Options) *http.Transport {
	timeout := o.DialTimeout
	if timeout == 0 {
		timeout = defaultDialTimeout
	}
	nd := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	dial := Dialer{AllowPlaintext: o.AllowPlaintext, Timeout: timeout}.DialContext
	proxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	if o.EnvironmentProxy {
		// The connection dialled is the proxy's, not the destination's:
		// the per-request check below judges the destination.
		dial = nd.DialContext
		proxy = http.ProxyFromEnvironment
	}
	return &http.Transport{
		// http.Transport asks Proxy about every request, redirects
		// included, before dialling: the request check lives there so the
		// transport enforces the rule on its own.
		Proxy: func(r *http.Request) (*url.URL, error) {
			if err := checkRequestURL(r.URL, o.AllowPlaintext); err != nil {
				return nil, err
			}
			return proxy(r)
		},
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       TLSConfig("", o.RootCAs), // the transport fills in ServerName per host
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Guard wraps next so that every request is checked against the rule
// before next sees it. Use it around a RoundTripper that is not from
// Transport (an injected one in tests, an instrumented one): the rule then
// still holds for each request, redirects included.
func Guard(next http.RoundTripper, allowPlaintext bool) http.RoundTripper {
	return guard{next: next, allow: allowPlaintext}
}

type guard struct {
	next  http.RoundTripper
	allow bool
}

func (g guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := checkRequestURL(r.URL, g.allow); err != nil {
		// A RoundTripper must close the body, even on error.
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(r)
}

// DefaultTimeout bounds one request made with Client when the caller gives
// none: the low end of the Standard Webhooks recommendation.
const DefaultTimeout = 15 * time.Second

// Client returns an http.Client for calls to one service outside Rampart
// (webhooks, providers): Transport(o) behind Guard (which repeats the
// request check without relying on how net/http consults Proxy), a modest
// idle pool,
// timeout bounding each request from connection to last byte (zero:
// DefaultTimeout), and redirects not followed. A 3xx comes back as the
// response, which callers treat as a failure: following it would resend
// the body (a signed audit batch, a rotated secret) and credentials to
// wherever the answer points.
func Client(o Options, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return client(Transport(o), o.AllowPlaintext, timeout)
}

func client(tr *http.Transport, allowPlaintext bool, timeout time.Duration) *http.Client {
	tr.MaxIdleConns = 16
	tr.MaxIdleConnsPerHost = 4
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{
		Transport: Guard(tr, allowPlaintext),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
