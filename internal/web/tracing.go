package web

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is what the web layer needs of OpenTelemetry (MON-2);
// *tracing.Tracing satisfies it. A nil Tracing turns request tracing off.
type Tracing interface {
	TracerProvider() trace.TracerProvider
	Propagator() propagation.TextMapPropagator
}

// tracerName names the instrumentation scope of Rampart's server spans.
const tracerName = "github.com/rampartsec/rampart/internal/web"

// httpTracer starts one server span per request. It is written here rather
// than taken from otelhttp for two reasons: otelhttp records the client
// address, user agent and full URL, which are personal data or may carry
// tokens (MON-4), and it hands the next handler a copy of the request, so
// the route pattern the mux sets would not reach outer's metrics and logs.
type httpTracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func newHTTPTracer(t Tracing) *httpTracer {
	if t == nil {
		return nil
	}
	return &httpTracer{tracer: t.TracerProvider().Tracer(tracerName), prop: t.Propagator()}
}

// start continues the caller's W3C trace (traceparent, tracestate,
// baggage) when there is one and opens the request's server span. The span
// is named after the method only until routing has found the pattern; end
// renames it. A nil tracer returns ctx unchanged and a no-op span.
func (t *httpTracer) start(r *http.Request) (context.Context, trace.Span) {
	if t == nil {
		return r.Context(), trace.SpanFromContext(r.Context())
	}
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.tracer.Start(ctx, spanMethod(r.Method), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", spanMethod(r.Method))))
}

// end names the span after the route pattern, records the status and ends
// it. r must be the request the mux saw, so that r.Pattern is set; a zero
// status means the handler wrote nothing, which net/http sends as 200.
func (t *httpTracer) end(span trace.Span, r *http.Request, sw *statusWriter) {
	if t == nil {
		return
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	if r.Pattern != "" {
		span.SetName(spanName(r.Method, r.Pattern))
		span.SetAttributes(attribute.String("http.route", routePath(r.Pattern)))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String("rampart.request_id", requestID(r.Context())))
	// A server span is an error only for 5xx: a 4xx is the client's
	// mistake, handled as designed (OpenTelemetry HTTP semantic conventions).
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// traceID is the hex trace id of the span, or "" when there is none
// (tracing off and no incoming trace).
func traceID(span trace.Span) string {
	if sc := span.SpanContext(); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// spanMethod bounds the method, which is client input, the way the
// semantic conventions ask.
func spanMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "_OTHER"
}

// spanName is "{method} {route}". Patterns that already start with the
// method ("GET /v1/me") are used as they are.
func spanName(method, pattern string) string {
	if strings.ContainsRune(pattern, ' ') {
		return pattern
	}
	return spanMethod(method) + " " + pattern
}

// routePath is the path part of a mux pattern: "GET /v1/me" → "/v1/me".
func routePath(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return strings.TrimLeft(pattern[i+1:], " \t")
	}
	return pattern
}
