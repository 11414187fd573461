package gateway

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/tlsconf"
)

// HSTS is sent on every HTTPS response (TLS-2): two years, subdomains.
const HSTS = "max-age=63072000; includeSubDomains"

// strictHeaders go on every answer the gateway writes itself (refusals,
// redirects, errors): nothing there needs script, frames or other origins.
var strictHeaders = [][2]string{
	{"Strict-Transport-Security", HSTS},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
}

// defaultUpstreamCSP is what an app gets when it sends no CSP of its own
// and the route names none: it cannot know the app's script sources, so it
// sets the directives that never break a same-origin app (no framing by
// others, no plugins, no base-tag hijack) rather than a default-src that
// would.
const defaultUpstreamCSP = "frame-ancestors 'self'; object-src 'none'; base-uri 'self'; upgrade-insecure-requests"

// upstreamHeaders are the security headers for an app's responses (APP-5).
var upstreamHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
}

// UpstreamHeaderNames lists the headers set on upstream responses (for the
// APP-5 check and docs).
func UpstreamHeaderNames() []string {
	out := []string{"Strict-Transport-Security", "Content-Security-Policy"}
	for _, kv := range upstreamHeaders {
		out = append(out, kv[0])
	}
	return out
}

func setStrictHeaders(h http.Header) {
	for _, kv := range strictHeaders {
		h.Set(kv[0], kv[1])
	}
}

// setUpstreamHeaders applies a route's header policy to an upstream
// response. HSTS is always set (TLS-2); the headers that reveal the app's
// software are removed.
func setUpstreamHeaders(h http.Header, p HeaderPolicy) {
	h.Set("Strict-Transport-Security", HSTS)
	h.Del("Server")
	h.Del("X-Powered-By")
	if p.Mode == "hsts" {
		return
	}
	override := p.Mode == "override"
	csp := p.CSP
	if csp == "" {
		csp = defaultUpstreamCSP
	}
	if override || h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", csp)
	}
	for _, kv := range upstreamHeaders {
		if override || h.Get(kv[0]) == "" {
			h.Set(kv[0], kv[1])
		}
	}
}

// upstreamTransport is the proxy's transport: the TLS-3 outbound rules
// (https verified; http only to loopback unless the route allows it) with
// a pool sized for a proxy, where most requests go to few hosts.
func upstreamTransport(allowPlaintext bool, headerTimeout time.Duration) *http.Transport {
	t := tlsconf.Outbound(tlsconf.OutboundOptions{AllowPlaintext: allowPlaintext})
	t.MaxIdleConns = 2048
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = headerTimeout
	t.DisableCompression = true // pass the client's Accept-Encoding and the app's encoding through untouched
	return t
}
