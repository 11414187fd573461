// Package gateway is the security pipeline in front of Rampart's own pages
// and API and in front of the customer's app (APP-1 … APP-8): IP filter,
// rate limits, size limits and load shedding, the WAF, the cross-origin
// check, authentication and route policy at the edge, security headers, and
// a reverse proxy that forwards a short-lived signed identity assertion.
//
// The gateway knows nothing of SQL, sessions or the WAF's rule engine: the
// app hands it small interfaces (Authenticator, Signer, Limiter, WAF) and
// the gateway only decides and forwards.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"

	"github.com/rampartsec/rampart/internal/audit"
)

// Route policies.
const (
	PolicyAnonymous     = "anonymous"
	PolicyAuthenticated = "authenticated"
	PolicyPermission    = "permission"
)

// Header names the gateway owns. Any client-sent header starting with
// "Rampart-" is removed before a request goes anywhere, so the app can trust
// that every Rampart-* header it sees came from the gateway.
const (
	AssertionHeader = "Rampart-Assertion"
	ownHeaderPrefix = "Rampart-"
	// AssertionType is the JWT "typ" of the assertion (RFC 8725 §3.11:
	// explicit typing keeps it from being confused with an access token).
	AssertionType = "rampart-assertion+jwt"
)

// Route is one compiled entry of the route table.
type Route struct {
	Name string
	// Host matches the request host (port ignored, case-insensitive);
	// "*.example.com" matches one or more labels before example.com; ""
	// matches any host.
	Host string
	// PathPrefix matches on a segment boundary: "/api" matches "/api" and
	// "/api/x", not "/apix". "" means "/".
	PathPrefix  string
	StripPrefix bool
	Upstreams   []*url.URL
	// Audience is the assertion's aud.
	Audience   string
	Policy     string
	Permission string
	Workspace  WorkspaceSource
	MFA        bool
	Networks   []netip.Prefix
	IPAllow    []netip.Prefix
	IPDeny     []netip.Prefix
	// MaxBodyBytes overrides Config.MaxBodyBytes when > 0.
	MaxBodyBytes int64
	WAF          WAFOptions
	Limits       Limits
	Headers      HeaderPolicy
	// CSRF turns the cross-origin check on for this route.
	CSRF bool
	// AllowPlaintext permits http:// to a non-loopback upstream (TLS-3).
	AllowPlaintext bool
}

// WorkspaceSource says where a route's workspace id comes from.
type WorkspaceSource struct {
	Kind   string // "", "path", "header", "subdomain"
	Index  int    // path segment after the prefix, from 1
	Header string
}

// WAFOptions are a route's firewall options, passed through to the WAF.
type WAFOptions struct {
	Disabled     bool
	ExcludeRules []int
	Mode         string
}

// Limits name the rate-limit policies of a route per key kind; "" means
// none for that kind.
type Limits struct {
	IP, Account, APIKey, Workspace string
}

// HeaderPolicy says how the security headers meet an upstream's own:
// "add" sets those the app left out (default), "override" always sets
// Rampart's, "hsts" only HSTS (which is never optional, TLS-2).
type HeaderPolicy struct {
	Mode string
	CSP  string
}

// Config is the compiled gateway configuration.
type Config struct {
	Routes []Route
	// Issuer is the assertion's iss: Rampart's public URL.
	Issuer       string
	AssertionTTL time.Duration
	// MaxBodyBytes bounds request bodies (413 beyond).
	MaxBodyBytes int64
	// MaxInFlight bounds requests served at once overall, and
	// MaxInFlightPerUpstream per upstream URL; 0 means no bound.
	MaxInFlight            int
	MaxInFlightPerUpstream int
	UpstreamTimeout        time.Duration
	// IPLimit is the rate-limit policy applied per client address to every
	// request, Rampart's own included; "" means none.
	IPLimit string
	// RampartWAF are the WAF options for Rampart's own pages and API.
	RampartWAF WAFOptions
	// RampartPaths are path prefixes Rampart itself serves: on a route
	// without its own host they stay with Rampart, so an upstream on "/"
	// does not swallow the sign-in page.
	RampartPaths []string
	// SignInPath is where a browser without a session is sent.
	SignInPath string
}

// Deps are what the gateway needs from the rest of Rampart.
type Deps struct {
	// Rampart is Rampart's own handler, the route table's fallback.
	Rampart http.Handler
	Auth    Authenticator
	// Signer mints assertions; nil forwards none (spoofed ones are
	// stripped all the same).
	Signer Signer
	// WAF wraps a handler with the firewall; nil means no WAF.
	WAF WAF
	// Limiter applies rate limits; nil means none.
	Limiter Limiter
	// ClientIP is the client address (trusted proxies honoured); nil
	// means the TCP peer.
	ClientIP func(*http.Request) netip.Addr
	// TrustedPeer reports whether the TCP peer is a trusted proxy whose
	// X-Forwarded-For chain is kept; nil trusts none.
	TrustedPeer func(netip.Addr) bool
	// IPPermit is the global IP filter; nil permits all.
	IPPermit func(netip.Addr) bool
	// Transport overrides the upstream transport (tests, benchmarks).
	Transport  http.RoundTripper
	Propagator propagation.TextMapPropagator
	Audit      audit.Recorder
	Log        *slog.Logger
	Metrics    prometheus.Registerer
	Now        func() time.Time
	Rand       io.Reader
}

// Identity is who a request is, as the Authenticator found it.
type Identity struct {
	Subject   string // user id, or "apikey:<id>" for an API key
	Email     string
	SessionID string
	APIKeyID  string
	// KeyWorkspace is the workspace an API key belongs to.
	KeyWorkspace string
	MFA          bool
	AMR          []string
	// Method is "session", "api_key" or "access_token".
	Method string
	// ClientID is the OAuth client of an access token.
	ClientID string
	// Permissions, when not nil, narrow an access token to this list
	// (service clients, user tokens narrowed at issue): a route
	// permission outside it is refused whatever the subject's roles.
	Permissions []string
}

// Decision is an authorization answer.
type Decision struct {
	Allowed bool
	Reason  string
}

// Authenticator finds and checks the request's credential. Authenticate
// returns nil, nil when the request carries none, and an error when it
// carries one that is not valid; it may set cookies on w (session
// rotation).
type Authenticator interface {
	Authenticate(w http.ResponseWriter, r *http.Request) (*Identity, error)
	Authorize(ctx context.Context, id *Identity, workspace, permission string) Decision
	Roles(ctx context.Context, id *Identity, workspace string) []string
}

// Signer signs a JWT with Rampart's current signing key (EdDSA or ES256).
type Signer interface {
	Sign(typ string, claims any) (string, error)
}

// Block is what the WAF reports when it interrupts a request.
type Block struct {
	RuleID  int
	Status  int
	Message string
}

// WAF wraps next with the firewall; block is called for each interrupted
// request and writes the answer.
type WAF func(next http.Handler, o WAFOptions, block func(http.ResponseWriter, *http.Request, Block)) http.Handler

// RateResult is a rate-limit answer; SetHeaders writes the RateLimit
// headers for it.
type RateResult struct {
	Allowed    bool
	RetryAfter time.Duration
	SetHeaders func(http.Header)
}

// Limiter applies the named policy to key.
type Limiter interface {
	Allow(ctx context.Context, policy, key string) (RateResult, error)
}

// Gateway is the pipeline; it is an http.Handler.
type Gateway struct {
	cfg     Config
	d       Deps
	routes  []*route
	rampart http.Handler
	csrf    *http.CrossOriginProtection
	shed    *shedder
	metrics *metrics
	plain   http.RoundTripper
	secure  http.RoundTripper
	auditQ  chan struct{}
	ids     *idSource
	// rampartMetrics are the resolved metric children of Rampart's own
	// traffic (routes hold theirs), so a request does no label lookups.
	rampartMetrics *routeMetrics
}

type ctxKey int

const infoKey ctxKey = 0

// reqInfo travels with a request through the pipeline.
type reqInfo struct {
	id        string
	client    netip.Addr
	peer      netip.Addr
	route     *route
	target    *url.URL // the upstream chosen for this request
	assertion string   // the minted assertion, if any
}

func info(r *http.Request) *reqInfo {
	v, _ := r.Context().Value(infoKey).(*reqInfo)
	if v == nil {
		return &reqInfo{}
	}
	return v
}

// New compiles the route table and builds every route's handler once, so
// the per-request path only matches and runs them.
func New(cfg Config, d Deps) (*Gateway, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	if cfg.SignInPath == "" {
		cfg.SignInPath = "/signin"
	}
	if cfg.AssertionTTL <= 0 || cfg.AssertionTTL > 60*time.Second {
		cfg.AssertionTTL = 30 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	g := &Gateway{cfg: cfg, d: d, csrf: http.NewCrossOriginProtection(), auditQ: make(chan struct{}, 256), ids: newIDSource(d.Rand)}
	g.metrics = newMetrics(d.Metrics)
	g.rampartMetrics = g.metrics.forRoute("rampart")
	g.shed = newShedder(cfg.MaxInFlight, cfg.MaxInFlightPerUpstream)
	g.plain, g.secure = d.Transport, d.Transport
	if d.Transport == nil {
		g.secure = upstreamTransport(false, cfg.UpstreamTimeout)
		g.plain = upstreamTransport(true, cfg.UpstreamTimeout)
	}
	for i := range cfg.Routes {
		rt, err := g.compile(&cfg.Routes[i])
		if err != nil {
			return nil, err
		}
		g.routes = append(g.routes, rt)
	}
	// Most specific first: a route with a host beats one without, then the
	// longer prefix wins.
	sort.SliceStable(g.routes, func(i, j int) bool {
		a, b := g.routes[i], g.routes[j]
		if (a.Host != "") != (b.Host != "") {
			return a.Host != ""
		}
		return len(a.PathPrefix) > len(b.PathPrefix)
	})
	g.rampart = d.Rampart
	if g.rampart == nil {
		g.rampart = http.NotFoundHandler()
	}
	if d.WAF != nil && !cfg.RampartWAF.Disabled {
		g.rampart = d.WAF(g.rampart, cfg.RampartWAF, g.wafBlocked)
	}
	return g, nil
}

// ServeHTTP runs the pipeline: own headers stripped, client address, IP
// filter, per-IP rate limit, size limit, load shedding, then the route's
// handler (WAF → CSRF → identity → policy → proxy) or Rampart's own.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.d.Now()
	for k := range r.Header {
		if len(k) >= len(ownHeaderPrefix) && strings.EqualFold(k[:len(ownHeaderPrefix)], ownHeaderPrefix) {
			delete(r.Header, k)
		}
	}
	ri := &reqInfo{id: g.ids.next()}
	ri.peer = peerAddr(r)
	ri.client = ri.peer
	if g.d.ClientIP != nil {
		ri.client = g.d.ClientIP(r)
	}
	ri.route = g.match(r)
	r = r.WithContext(context.WithValue(r.Context(), infoKey, ri))
	rm := g.rampartMetrics
	if ri.route != nil {
		rm = ri.route.metrics
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { rm.observe(sw.status, g.d.Now().Sub(start)) }()

	if g.d.IPPermit != nil && !g.d.IPPermit(ri.client) {
		g.deny(sw, r, http.StatusForbidden, "gateway.ip_denied", "ip_denied", "access from this address is not allowed", nil)
		return
	}
	if rt := ri.route; rt != nil && !rt.permitIP(ri.client) {
		g.deny(sw, r, http.StatusForbidden, "gateway.ip_denied", "ip_denied", "access from this address is not allowed", nil)
		return
	}
	policy := g.cfg.IPLimit
	if ri.route != nil && ri.route.Limits.IP != "" {
		policy = ri.route.Limits.IP
	}
	if !g.limit(sw, r, policy, "ip:"+ri.client.String()) {
		return
	}
	limit := g.cfg.MaxBodyBytes
	if ri.route != nil && ri.route.MaxBodyBytes > 0 {
		limit = ri.route.MaxBodyBytes
	}
	if r.ContentLength > limit {
		g.deny(sw, r, http.StatusRequestEntityTooLarge, "gateway.body_too_large", "body_too_large", "the request body is too large", nil)
		return
	}
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// A declared length was checked above and the server never reads
		// past it; only a body of unknown length (chunked) needs the cap
		// while it streams.
		r.Body = http.MaxBytesReader(sw, r.Body, limit)
	}
	release, ok := g.shed.acquire("")
	if !ok {
		g.metrics.shed.Inc()
		sw.Header().Set("Retry-After", "1")
		g.plainError(sw, r, http.StatusServiceUnavailable, "overloaded, retry shortly")
		return
	}
	defer release()
	if ri.route == nil {
		g.rampart.ServeHTTP(sw, r)
		return
	}
	ri.route.handler.ServeHTTP(sw, r)
}

// match finds the route for r, or nil for Rampart itself.
func (g *Gateway) match(r *http.Request) *route {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	path := r.URL.Path
	for _, rt := range g.routes {
		if rt.Host != "" && !hostMatch(rt.Host, host) {
			continue
		}
		if !prefixMatch(rt.PathPrefix, path) {
			continue
		}
		if rt.Host == "" && g.isRampartPath(path) {
			continue
		}
		return rt
	}
	return nil
}

func (g *Gateway) isRampartPath(path string) bool {
	for _, p := range g.cfg.RampartPaths {
		if prefixMatch(p, path) {
			return true
		}
	}
	return false
}

func hostMatch(pattern, host string) bool {
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+rest) && len(host) > len(rest)+1
	}
	return pattern == host
}

// prefixMatch matches prefix on a path-segment boundary.
func prefixMatch(prefix, path string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix) || path == strings.TrimSuffix(prefix, "/")
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}

func containsAddr(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// idSource makes request ids: a random per-process prefix and a counter.
// Request ids correlate logs, audit events and responses; they are not
// secrets, so one random read per process instead of one per request
// keeps a syscall off the hot path while ids stay unique across nodes.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource(r io.Reader) *idSource {
	b := make([]byte, 6)
	if _, err := io.ReadFull(r, b); err != nil {
		_, _ = rand.Read(b)
	}
	return &idSource{prefix: hex.EncodeToString(b)}
}

func (s *idSource) next() string {
	var buf [28]byte
	out := append(buf[:0], s.prefix...)
	n := s.n.Add(1)
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		out = append(out, digits[(n>>uint(i))&0xf])
	}
	return string(out)
}

// statusWriter remembers the status for metrics; Unwrap keeps Flush and
// Hijack reachable through http.ResponseController (SSE, WebSocket).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 || w.status == http.StatusSwitchingProtocols || (w.status >= 100 && w.status < 200) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// shedder bounds in-flight requests globally and per upstream.
type shedder struct {
	global  chan struct{}
	per     int
	mu      sync.Mutex
	perUp   map[string]chan struct{}
	noLimit func()
}

func newShedder(global, per int) *shedder {
	s := &shedder{per: per, perUp: map[string]chan struct{}{}, noLimit: func() {}}
	if global > 0 {
		s.global = make(chan struct{}, global)
	}
	return s
}

// acquire takes a slot for key ("" = global) without waiting: a saturated
// gateway answers 503 at once rather than queueing work it cannot finish.
func (s *shedder) acquire(key string) (func(), bool) {
	var ch chan struct{}
	if key == "" {
		ch = s.global
	} else if s.per > 0 {
		s.mu.Lock()
		ch = s.perUp[key]
		if ch == nil {
			ch = make(chan struct{}, s.per)
			s.perUp[key] = ch
		}
		s.mu.Unlock()
	}
	if ch == nil {
		return s.noLimit, true
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, true
	default:
		return nil, false
	}
}

// inFlight reports the global in-flight count (for the APP-4 check).
func (s *shedder) inFlight() int {
	if s.global == nil {
		return 0
	}
	return len(s.global)
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	denied   *prometheus.CounterVec
	shed     prometheus.Counter
	dropped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_gateway_requests_total",
			Help: "Requests through the gateway by route and status class."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rampart_gateway_request_seconds",
			Help: "Gateway request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_gateway_denied_total",
			Help: "Requests the gateway refused, by reason."}, []string{"reason"}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_gateway_shed_total",
			Help: "Requests refused with 503 because the gateway or an upstream was saturated."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_gateway_audit_dropped_total",
			Help: "Denial audit events dropped because too many were being written at once (a flood)."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.denied, m.shed, m.dropped} {
		_ = reg.Register(c)
	}
	return m
}

// routeMetrics are one route's metric children, resolved once.
type routeMetrics struct {
	codes   [6]prometheus.Counter // none, 1xx … 5xx
	latency prometheus.Observer
}

var codeClasses = [6]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *metrics) forRoute(route string) *routeMetrics {
	rm := &routeMetrics{latency: m.latency.WithLabelValues(route)}
	for i, c := range codeClasses {
		rm.codes[i] = m.requests.WithLabelValues(route, c)
	}
	return rm
}

func (rm *routeMetrics) observe(status int, d time.Duration) {
	i := 0
	if status >= 100 && status < 600 {
		i = status / 100
	} else if status >= 600 {
		i = 5
	}
	rm.codes[i].Inc()
	rm.latency.Observe(d.Seconds())
}
