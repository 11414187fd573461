package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
)

// route is a Route with its handler built.
type route struct {
	Route
	metrics *routeMetrics
	next    atomic.Uint64
	proxy   *httputil.ReverseProxy
	handler http.Handler
}

func (g *Gateway) compile(r *Route) (*route, error) {
	if len(r.Upstreams) == 0 {
		return nil, fmt.Errorf("route %q: no upstream", r.Name)
	}
	for _, u := range r.Upstreams {
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("route %q: upstream %q is not an http(s) URL", r.Name, u)
		}
	}
	switch r.Policy {
	case "":
		r.Policy = PolicyAnonymous
	case PolicyAnonymous, PolicyAuthenticated:
	case PolicyPermission:
		if r.Permission == "" || r.Workspace.Kind == "" {
			return nil, fmt.Errorf("route %q: policy permission needs a permission and a workspace source", r.Name)
		}
	default:
		return nil, fmt.Errorf("route %q: unknown policy %q", r.Name, r.Policy)
	}
	if r.Name == "" {
		r.Name = r.Host + r.PathPrefix
	}
	if r.Audience == "" {
		u := r.Upstreams[0]
		r.Audience = u.Scheme + "://" + u.Host
	}
	r.Host = strings.ToLower(r.Host)
	rt := &route{Route: *r, metrics: g.metrics.forRoute(r.Name)}
	transport := g.secure
	if r.AllowPlaintext {
		transport = g.plain
	}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { g.rewrite(rt, pr) },
		Transport:      transport,
		FlushInterval:  -1, // stream as the upstream writes: SSE, long polls, chunked downloads
		ModifyResponse: func(resp *http.Response) error { setUpstreamHeaders(resp.Header, rt.Headers); return nil },
		ErrorHandler:   g.upstreamError,
		ErrorLog:       nil,
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { g.serveRoute(rt, w, req) })
	if g.d.WAF != nil && !r.WAF.Disabled {
		h = g.d.WAF(h, r.WAF, g.wafBlocked)
	}
	rt.handler = h
	return rt, nil
}

func (rt *route) permitIP(a netip.Addr) bool {
	if containsAddr(rt.IPDeny, a) {
		return false
	}
	return len(rt.IPAllow) == 0 || containsAddr(rt.IPAllow, a)
}

// serveRoute runs the part of the pipeline after the WAF: cross-origin
// check, identity, route policy, per-identity rate limits, the assertion,
// per-upstream load shedding and the proxy.
func (g *Gateway) serveRoute(rt *route, w http.ResponseWriter, r *http.Request) {
	bearer := r.Header.Get("Authorization") != ""
	if rt.CSRF && !bearer {
		if err := g.csrf.Check(r); err != nil {
			g.deny(w, r, http.StatusForbidden, "gateway.csrf_refused", "cross_origin_refused", "cross-origin request refused", nil)
			return
		}
	}
	var id *Identity
	if g.d.Auth != nil {
		var err error
		id, err = g.d.Auth.Authenticate(w, r)
		if err != nil {
			// A credential was presented and is not valid: refused even on
			// an anonymous route, so a client never proceeds under an
			// identity other than the one it meant to present.
			g.unauthenticated(w, r, "credential_invalid")
			return
		}
	}
	if id == nil && rt.Policy != PolicyAnonymous {
		g.unauthenticated(w, r, "credential_missing")
		return
	}
	ri := info(r)
	if len(rt.Networks) > 0 && !containsAddr(rt.Networks, ri.client) {
		g.deny(w, r, http.StatusForbidden, "gateway.policy_denied", "network_denied", "access from this network is not allowed", id)
		return
	}
	if rt.MFA && (id == nil || !id.MFA) {
		g.deny(w, r, http.StatusForbidden, "gateway.policy_denied", "mfa_required", "this resource needs a session with a second factor", id)
		return
	}
	ws := ""
	if rt.Workspace.Kind != "" {
		ws = workspaceOf(rt, r)
	}
	if rt.Policy == PolicyPermission {
		if ws == "" {
			g.deny(w, r, http.StatusForbidden, "gateway.policy_denied", "workspace_missing", "the request names no workspace", id)
			return
		}
		d := g.d.Auth.Authorize(r.Context(), id, ws, rt.Permission)
		if !d.Allowed {
			g.deny(w, r, http.StatusForbidden, "gateway.policy_denied", "permission_denied", "permission denied",
				id, "permission", rt.Permission, "workspace", ws, "reason", d.Reason)
			return
		}
	}
	if id != nil {
		for _, l := range []struct{ policy, key string }{
			{rt.Limits.Account, keyIf("account:", id.Subject, id.APIKeyID == "")},
			{rt.Limits.APIKey, keyIf("apikey:", id.APIKeyID, true)},
			{rt.Limits.Workspace, keyIf("workspace:", firstNonEmpty(ws, id.KeyWorkspace), true)},
		} {
			if l.key != "" && !g.limit(w, r, l.policy, l.key) {
				return
			}
		}
	}
	target := rt.Upstreams[0]
	if n := len(rt.Upstreams); n > 1 {
		target = rt.Upstreams[(rt.next.Add(1)-1)%uint64(n)]
	}
	release, ok := g.shed.acquire(target.Host)
	if !ok {
		g.metrics.shed.Inc()
		w.Header().Set("Retry-After", "1")
		g.plainError(w, r, http.StatusServiceUnavailable, "upstream saturated, retry shortly")
		return
	}
	defer release()
	ri.target = target
	if id != nil && g.d.Signer != nil {
		tok, err := g.mint(rt, id, ws, r.Context())
		if err != nil {
			// Fail closed: without an assertion the app would see the
			// request as anonymous, which is not what the policy admitted.
			g.d.Log.Error("gateway: assertion signing failed", "route", rt.Name, "err", err)
			g.plainError(w, r, http.StatusServiceUnavailable, "identity assertion unavailable")
			return
		}
		ri.assertion = tok
	}
	if isStreaming(r) {
		// Event streams and WebSockets live longer than the server's
		// write and read timeouts, which are meant for ordinary requests.
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		_ = rc.SetReadDeadline(time.Time{})
	}
	rt.proxy.ServeHTTP(w, r)
}

func isStreaming(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func keyIf(prefix, v string, cond bool) string {
	if v == "" || !cond {
		return ""
	}
	return prefix + v
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// workspaceOf reads the route's workspace id from the request. Only ids of
// a sane shape are returned; anything else is "" (and a permission route
// then refuses).
func workspaceOf(rt *route, r *http.Request) string {
	var v string
	switch rt.Workspace.Kind {
	case "path":
		rest := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(rt.PathPrefix, "/"))
		segs := strings.Split(strings.Trim(rest, "/"), "/")
		if rt.Workspace.Index >= 1 && rt.Workspace.Index <= len(segs) {
			v = segs[rt.Workspace.Index-1]
		}
	case "header":
		v = r.Header.Get(rt.Workspace.Header)
	case "subdomain":
		host := strings.ToLower(r.Host)
		if i := strings.IndexByte(host, '.'); i > 0 {
			v = host[:i]
		}
	}
	if len(v) == 0 || len(v) > 64 {
		return ""
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return v
}

// rewrite builds the upstream request: the chosen target, the stripped
// prefix, X-Forwarded-* set by the gateway (a client's own copies are only
// kept when the peer is a trusted proxy), no client-sent Rampart-*
// headers, the assertion, and the trace context.
func (g *Gateway) rewrite(rt *route, pr *httputil.ProxyRequest) {
	ri := info(pr.In)
	target := ri.target
	if target == nil {
		target = rt.Upstreams[0]
	}
	if rt.StripPrefix && rt.PathPrefix != "" && rt.PathPrefix != "/" {
		p := strings.TrimPrefix(pr.Out.URL.Path, strings.TrimSuffix(rt.PathPrefix, "/"))
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		pr.Out.URL.Path, pr.Out.URL.RawPath = p, ""
	}
	pr.SetURL(target)
	for k := range pr.Out.Header {
		if len(k) >= len(ownHeaderPrefix) && strings.EqualFold(k[:len(ownHeaderPrefix)], ownHeaderPrefix) {
			delete(pr.Out.Header, k)
		}
	}
	xff := ri.peer.String()
	if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 && g.d.TrustedPeer != nil && g.d.TrustedPeer(ri.peer) {
		xff = strings.Join(prior, ", ") + ", " + xff
	}
	pr.Out.Header.Set("X-Forwarded-For", xff)
	pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
	proto := "https"
	if pr.In.TLS == nil {
		proto = "http"
	}
	pr.Out.Header.Set("X-Forwarded-Proto", proto)
	pr.Out.Header.Set("X-Request-Id", ri.id)
	if ri.assertion != "" {
		pr.Out.Header.Set(AssertionHeader, ri.assertion)
	}
	if g.d.Propagator != nil {
		g.d.Propagator.Inject(pr.In.Context(), headerCarrier(pr.Out.Header))
	}
}

// headerCarrier adapts http.Header to the propagation carrier.
type headerCarrier http.Header

func (h headerCarrier) Get(k string) string { return http.Header(h).Get(k) }
func (h headerCarrier) Set(k, v string)     { http.Header(h).Set(k, v) }
func (h headerCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// upstreamError answers a failed upstream exchange: 413 when the body
// limit cut the request off, else a plain 502 (details only in the log).
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		g.deny(w, r, http.StatusRequestEntityTooLarge, "gateway.body_too_large", "body_too_large", "the request body is too large", nil)
		return
	}
	if errors.Is(err, context.Canceled) {
		w.WriteHeader(499) // the client went away; nobody reads this
		return
	}
	ri := info(r)
	route := ""
	if ri.route != nil {
		route = ri.route.Name
	}
	g.d.Log.Warn("gateway: upstream failed", "route", route, "request_id", ri.id, "err", err)
	g.plainError(w, r, http.StatusBadGateway, "bad gateway")
}

// limit applies policy to key and answers 429 when it is exhausted. A
// limiter error fails closed with 503: an unknown policy must not turn
// into "unlimited".
func (g *Gateway) limit(w http.ResponseWriter, r *http.Request, policy, key string) bool {
	if policy == "" || g.d.Limiter == nil {
		return true
	}
	res, err := g.d.Limiter.Allow(r.Context(), policy, key)
	if err != nil {
		g.d.Log.Error("gateway: rate limiter failed", "policy", policy, "err", err)
		w.Header().Set("Retry-After", "1")
		g.plainError(w, r, http.StatusServiceUnavailable, "rate limiter unavailable")
		return false
	}
	if res.SetHeaders != nil {
		res.SetHeaders(w.Header())
	}
	if res.Allowed {
		return true
	}
	secs := int(res.RetryAfter.Seconds() + 0.999)
	w.Header().Set("Retry-After", fmt.Sprint(max(1, secs)))
	kind, _, _ := strings.Cut(key, ":")
	g.deny(w, r, http.StatusTooManyRequests, "gateway.rate_limited", "rate_limited", "too many requests", nil, "policy", policy, "key_kind", kind)
	return false
}

// wafBlocked answers a request the WAF interrupted: a plain 403 with the
// request id, and a "waf.block" audit event (the alert engine watches for
// spikes of those, MON-3).
func (g *Gateway) wafBlocked(w http.ResponseWriter, r *http.Request, b Block) {
	st := b.Status
	if st < 400 || st > 599 {
		st = http.StatusForbidden
	}
	g.metrics.denied.WithLabelValues("waf").Inc()
	g.record(r, audit.Event{Action: "waf.block", Outcome: audit.Denied, Target: r.URL.Path,
		Details: map[string]string{"rule": fmt.Sprint(b.RuleID), "method": r.Method}})
	g.plainError(w, r, st, "request blocked by the web application firewall")
}

// record writes an audit event for a refused request. Floods of refusals
// must not become floods of synchronous audit writes that slow every
// request, so at most 256 are in flight; beyond that they are counted in
// rampart_gateway_audit_dropped_total instead.
func (g *Gateway) record(r *http.Request, e audit.Event) {
	if g.d.Audit == nil {
		return
	}
	select {
	case g.auditQ <- struct{}{}:
	default:
		g.metrics.dropped.Inc()
		return
	}
	defer func() { <-g.auditQ }()
	ri := info(r)
	if e.ActorType == "" {
		e.ActorType = audit.ActorAnonymous
	}
	e.IP = ri.client.String()
	e.UserAgent = truncate(r.UserAgent(), 256)
	e.RequestID = ri.id
	e.Time = g.d.Now().UTC()
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	if ri.route != nil {
		e.Details["route"] = ri.route.Name
	}
	if err := g.d.Audit.Record(r.Context(), e); err != nil {
		g.d.Log.Warn("gateway: audit record failed", "action", e.Action, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// deny answers a refused request and audits it.
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, status int, action, code, msg string, id *Identity, kv ...string) {
	g.metrics.denied.WithLabelValues(code).Inc()
	e := audit.Event{Action: action, Outcome: audit.Denied, Target: r.URL.Path, Details: map[string]string{"code": code, "method": r.Method}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Details[kv[i]] = kv[i+1]
	}
	if id != nil {
		e.ActorType, e.ActorID = audit.ActorUser, id.Subject
		if id.APIKeyID != "" {
			e.ActorType, e.ActorID = audit.ActorAPIKey, id.APIKeyID
		}
	}
	g.record(r, e)
	g.jsonError(w, r, status, code, msg)
}

// unauthenticated sends a browser to sign in and gives an API client 401.
func (g *Gateway) unauthenticated(w http.ResponseWriter, r *http.Request, reason string) {
	g.metrics.denied.WithLabelValues("unauthenticated").Inc()
	g.record(r, audit.Event{Action: "gateway.unauthenticated", Outcome: audit.Denied, Target: r.URL.Path,
		Details: map[string]string{"reason": reason, "method": r.Method}})
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html") &&
		r.Header.Get("Authorization") == "" {
		ret := r.URL.Path
		if r.URL.RawQuery != "" {
			ret += "?" + r.URL.RawQuery
		}
		loc := g.cfg.SignInPath + "?return_to=" + url.QueryEscape(ret)
		setStrictHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
	g.jsonError(w, r, http.StatusUnauthorized, "unauthenticated", "sign in or present a valid API key or access token")
}

func (g *Gateway) jsonError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	h := w.Header()
	setStrictHeaders(h)
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Request-Id", info(r).id)
	w.WriteHeader(status)
	// code and msg are constants of this package; the id is hex.
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q,"request_id":%q}}`+"\n", code, msg, info(r).id)
}

func (g *Gateway) plainError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h := w.Header()
	setStrictHeaders(h)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", info(r).id)
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s\nrequest id: %s\n", msg, info(r).id)
}
