package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

type ctxKey int

const requestIDKey ctxKey = iota

func requestID(ctx context.Context) string {
	v, _ := ctx.Value(requestIDKey).(string)
	return v
}

// contentSecurityPolicy allows nothing but Rampart's own origin and no
// script at all: the pages work without JavaScript. QR codes are data: URIs.
const contentSecurityPolicy = "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests"

// SecurityHeaders are set on every response of Rampart's own (APP-5, TLS-2).
var securityHeaders = [][2]string{
	{"Content-Security-Policy", contentSecurityPolicy},
	{"Strict-Transport-Security", "max-age=63072000; includeSubDomains"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Permissions-Policy", "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Cross-Origin-Embedder-Policy", "require-corp"},
}

// SecurityHeaderNames lists the headers the APP-5 check expects.
func SecurityHeaderNames() []string {
	n := make([]string, len(securityHeaders))
	for i, h := range securityHeaders {
		n[i] = h[0]
	}
	return n
}

// statusWriter remembers the status for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outer is the middleware every request passes: request id, security
// headers, panic capture, body limit, CSRF, request facts for the audit
// trail, metrics, and the request's trace span (tracing.go).
func (s *server) outer(next http.Handler) http.Handler {
	csrf := http.NewCrossOriginProtection()
	// The SDK ingestion endpoints are called cross-origin from customers'
	// pages and authenticate with a bearer key, never a cookie: there is no
	// ambient credential for a forged request to ride on.
	csrf.AddInsecureBypassPattern("POST /v1/ingest/events")
	csrf.AddInsecureBypassPattern("POST /v1/ingest/opt-out")
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = s.audit.Record(r.Context(), audit.Event{ActorType: audit.ActorAnonymous, Action: "http.csrf_refused", Target: r.URL.Path, Outcome: audit.Denied,
			IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context()), Time: s.now().UTC()})
		s.fail(w, r, fault.New(fault.Forbidden, "cross_origin_refused", "cross-origin request refused"))
	}))
	guarded := csrf.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		id := newRequestID(s.rand)
		ctx, span := s.traces.start(r)
		ctx = context.WithValue(ctx, requestIDKey, id)
		ctx = audit.WithMeta(ctx, audit.Meta{IP: clientIP(r), UserAgent: truncate(r.UserAgent(), 512), RequestID: id, TraceID: traceID(span)})
		var slot *actorSlot
		if s.recordAPI && isAPICall(r) {
			ctx, slot = withActorSlot(ctx)
		}
		r = r.WithContext(ctx)
		h := w.Header()
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
		h.Set("X-Request-Id", id)
		if tid := traceID(span); tid != "" {
			h.Set("X-Trace-Id", tid)
		}
		sw := &statusWriter{ResponseWriter: w}
		defer s.traces.end(span, r, sw) // runs after the recover below, with the final status
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "route", r.Pattern, "request_id", id, "panic", truncate(strings.TrimSpace(sprint(v)), 300))
				if !sw.wrote {
					s.fail(sw, r, fault.New(fault.Internal, "internal", "internal error"))
				}
			}
			s.metrics.observe(r.Method, routeLabel(r), sw.status, s.now().Sub(start))
			if slot != nil {
				s.recordAPICall(r, slot, sw.status)
			}
		}()
		r.Body = http.MaxBytesReader(sw, r.Body, 1<<20)
		guarded.ServeHTTP(sw, r)
	})
}

func routeLabel(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.Pattern
}

// fail writes an error as JSON for the API and as a page for browsers.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasSuffix(r.URL.Path, ".json") || !acceptsHTML(r) {
		s.writeError(w, r, err)
		return
	}
	s.errorPage(w, r, err)
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func newRequestID(r io.Reader) string {
	b := make([]byte, 12)
	if _, err := io.ReadFull(r, b); err != nil {
		_, _ = rand.Read(b)
	}
	return hex.EncodeToString(b)
}

// clientIP is the peer address. Forwarded headers are not trusted here; the
// gateway's trusted-proxy list decides that (APP-2).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(v string, n int) string {
	if len(v) <= n {
		return v
	}
	return v[:n]
}

// sprint renders a panic value for the log. The value comes from our own
// code, not from request data.
func sprint(v any) string { return fmt.Sprint(v) }
