// Package tracing sets up OpenTelemetry tracing for Rampart (MON-2): a
// tracer provider, the W3C trace-context and baggage propagator, and, when a
// collector is configured, an OTLP/HTTP exporter. Nothing here touches the
// otel globals: the app passes the provider and propagator explicitly, so
// tests and several instances in one process never share tracing state.
package tracing

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/outbound"
)

// Config selects where spans go and how many are kept.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP URL, e.g.
	// https://otel-collector:4318. A URL without a path gets the standard
	// /v1/traces. Empty means no export: spans still get valid ids, so
	// logs, the audit trail and the upstream app can correlate requests.
	Endpoint string
	// ServiceName is the resource's service.name; "rampart" when empty.
	ServiceName string
	// Version is the resource's service.version; the module version from
	// the build info when empty.
	Version string
	// SampleRatio is the share of new traces recorded (0..1). A request
	// that arrives with a parent follows the parent's decision, so one
	// trace is kept or dropped whole across gateway, Rampart and upstream.
	SampleRatio float64
	// Insecure permits plaintext http:// to a non-loopback collector
	// (TLS-3). Spans carry routes and ids an eavesdropper should not see.
	Insecure bool
}

// Tracing owns the tracer provider; Shutdown flushes what is buffered.
type Tracing struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// Setup builds the tracer provider described by cfg. It does not contact
// the collector: an unreachable collector must not stop Rampart starting,
// and export failures are logged as they happen.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (*Tracing, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fault.Invalidf("invalid_sample_ratio", "the trace sample ratio must be between 0 and 1")
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "rampart"
	}
	if cfg.Version == "" {
		cfg.Version = buildVersion()
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.Version))
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	}
	if cfg.Endpoint != "" {
		exp, err := newExporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(loggingExporter{SpanExporter: exp, log: log}))
		log.Info("trace export enabled", "collector", redactedEndpoint(cfg.Endpoint), "sample_ratio", cfg.SampleRatio)
	}
	return &Tracing{
		tp:   sdktrace.NewTracerProvider(opts...),
		prop: Propagator(),
	}, nil
}

// Propagator is the W3C TraceContext and Baggage propagator, the one
// format the gateway, Rampart and the upstream app agree on.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TracerProvider returns the provider to pass to instrumented code.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.tp }

// Propagator returns the propagator to read and write trace context with.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.prop }

// Shutdown exports what is buffered and stops the provider; spans started
// afterwards are dropped. Call it once, on the way out, with a deadline.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.tp.Shutdown(ctx); err != nil {
		return fault.Wrap(fault.Unavailable, "trace_export_failed", "could not flush traces", err)
	}
	return nil
}

// newExporter checks the endpoint against TLS-3 and builds the OTLP/HTTP
// exporter for it.
func newExporter(ctx context.Context, cfg Config) (*otlptrace.Exporter, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fault.Invalidf("invalid_otlp_endpoint", "the OTLP endpoint must be an http(s) URL with a host")
	}
	if u.User != nil {
		// Config holds secrets only by reference (SEC-3), and the URL is logged.
		return nil, fault.Invalidf("invalid_otlp_endpoint", "the OTLP endpoint must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fault.Invalidf("invalid_otlp_endpoint", "the OTLP endpoint must not have a query or fragment")
	}
	if u.Scheme == "http" && !cfg.Insecure && !outbound.IsLoopback(u.Hostname()) {
		return nil, fault.Invalidf("insecure_otlp_transport",
			"refusing plaintext trace export to the non-loopback host %q: use https, or allow insecure transport explicitly", u.Hostname())
	}
	path := u.Path
	if path == "" || path == "/" {
		path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "internal", "cannot create the trace exporter", err)
	}
	return exp, nil
}

// redactedEndpoint is the endpoint as it may be logged: scheme and host.
func redactedEndpoint(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(invalid)"
	}
	return u.Scheme + "://" + u.Host
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

// loggingExporter reports export failures to Rampart's logger; otherwise
// they would only reach the otel global error handler, which we leave
// alone.
type loggingExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger
}

func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil && !errors.Is(err, context.Canceled) {
		e.log.Warn("trace export failed", "spans", len(spans), "err", err)
	}
	return err
}

// InjectOutbound writes ctx's trace context into req's headers
// (traceparent, tracestate, baggage), so the upstream app joins the trace
// (MON-2). Any such headers already on req — copied from the client by a
// proxy — are removed first: the upstream must see the caller's span as its
// parent, not whatever the client sent. It lives here rather than in web so
// the gateway, a capability that may not import web, can use it.
func InjectOutbound(ctx context.Context, req *http.Request) {
	prop := Propagator()
	for _, f := range prop.Fields() {
		req.Header.Del(f)
	}
	prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
}
