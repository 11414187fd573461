package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tracing"
	"github.com/rampartsec/rampart/internal/tracing/tracingtest"
)

func shutdown(t *testing.T, tr *tracing.Tracing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestSetupExportsToOTLPReceiver(t *testing.T) {
	tests := []struct {
		name     string
		path     string // appended to the receiver URL
		wantPath string
	}{
		{"no path gets the standard one", "", "/v1/traces"},
		{"root path gets the standard one", "/", "/v1/traces"},
		{"explicit path is kept", "/collector/traces", "/collector/traces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := tracingtest.NewReceiver(t)
			tr, err := tracing.Setup(context.Background(), tracing.Config{
				Endpoint: rc.URL + tt.path, ServiceName: "rampart-test", Version: "1.2.3", SampleRatio: 1,
			}, nil)
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "work")
			want := span.SpanContext()
			span.End()
			shutdown(t, tr)

			got := rc.ByTraceID(want.TraceID().String())
			if len(got) != 1 {
				t.Fatalf("received %d spans of trace %s, want 1 (all: %d)", len(got), want.TraceID(), len(rc.Spans()))
			}
			s := got[0]
			if s.GetName() != "work" || s.SpanID() != want.SpanID().String() {
				t.Errorf("span = %q %s, want work %s", s.GetName(), s.SpanID(), want.SpanID())
			}
			if s.Resource["service.name"] != "rampart-test" || s.Resource["service.version"] != "1.2.3" {
				t.Errorf("resource = %v, want service.name rampart-test and service.version 1.2.3", s.Resource)
			}
			if p := rc.Paths(); len(p) == 0 || p[0] != tt.wantPath {
				t.Errorf("export paths = %v, want %s", p, tt.wantPath)
			}
		})
	}
}

func TestSetupEndpointRules(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		insecure bool
		ratio    float64
		wantCode string // "" = accepted
	}{
		{"https remote", "https://otel-collector.example:4318", false, 1, ""},
		{"http loopback v4", "http://127.0.0.1:4318", false, 1, ""},
		{"http loopback v4 range", "http://127.0.0.2:4318", false, 1, ""},
		{"http loopback v6", "http://[::1]:4318", false, 1, ""},
		{"http localhost", "http://LocalHost:4318", false, 1, ""},
		{"http remote refused (TLS-3)", "http://otel-collector.example:4318", false, 1, "insecure_otlp_transport"},
		{"http remote ip refused (TLS-3)", "http://10.0.0.7:4318", false, 1, "insecure_otlp_transport"},
		{"http remote allowed when insecure", "http://otel-collector.example:4318", true, 1, ""},
		{"localhost lookalike refused", "http://localhost.evil.example:4318", false, 1, "insecure_otlp_transport"},
		{"no scheme", "otel-collector:4318", false, 1, "invalid_otlp_endpoint"},
		{"grpc scheme", "grpc://otel-collector:4317", false, 1, "invalid_otlp_endpoint"},
		{"no host", "https:///v1/traces", false, 1, "invalid_otlp_endpoint"},
		{"credentials in url", "https://user:secret@otel-collector.example:4318", false, 1, "invalid_otlp_endpoint"},
		{"query", "https://otel-collector.example:4318/v1/traces?x=1", false, 1, "invalid_otlp_endpoint"},
		{"ratio above 1", "", false, 1.5, "invalid_sample_ratio"},
		{"negative ratio", "https://otel-collector.example:4318", false, -0.1, "invalid_sample_ratio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			tr, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: tt.endpoint, SampleRatio: tt.ratio, Insecure: tt.insecure},
				slog.New(slog.NewTextHandler(&logs, nil)))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Setup(%q) = %v, want success", tt.endpoint, err)
				}
				shutdown(t, tr)
				if strings.Contains(logs.String(), "secret") {
					t.Errorf("log leaks the endpoint credentials: %s", logs.String())
				}
				return
			}
			fe := fault.As(err)
			if fe == nil || fe.Kind != fault.Invalid || fe.Code != tt.wantCode {
				t.Fatalf("Setup(%q) = %v, want invalid %s", tt.endpoint, err, tt.wantCode)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the endpoint credentials: %v", err)
			}
		})
	}
}

// Without a collector, spans still get ids (for X-Trace-Id, logs and the
// audit trail), and the sampler follows the parent.
func TestSetupWithoutEndpoint(t *testing.T) {
	parentSampled := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	parentUnsampled := parentSampled.WithTraceFlags(0)
	tests := []struct {
		name        string
		ratio       float64
		parent      trace.SpanContext
		wantSampled bool
	}{
		{"root, ratio 1", 1, trace.SpanContext{}, true},
		{"root, ratio 0", 0, trace.SpanContext{}, false},
		{"sampled parent beats ratio 0", 0, parentSampled, true},
		{"unsampled parent beats ratio 1", 1, parentUnsampled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := tracing.Setup(context.Background(), tracing.Config{SampleRatio: tt.ratio}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer shutdown(t, tr)
			ctx := context.Background()
			if tt.parent.IsValid() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, tt.parent)
			}
			_, span := tr.TracerProvider().Tracer("test").Start(ctx, "work")
			defer span.End()
			sc := span.SpanContext()
			if !sc.IsValid() {
				t.Fatalf("span context %v is not valid", sc)
			}
			if tt.parent.IsValid() && sc.TraceID() != tt.parent.TraceID() {
				t.Errorf("trace id %s, want the parent's %s", sc.TraceID(), tt.parent.TraceID())
			}
			if sc.IsSampled() != tt.wantSampled {
				t.Errorf("sampled = %v, want %v", sc.IsSampled(), tt.wantSampled)
			}
		})
	}
}

func TestExportFailureIsLogged(t *testing.T) {
	rc := tracingtest.NewReceiver(t)
	rc.FailWith(http.StatusBadRequest) // not retryable: the export fails at once
	var logs bytes.Buffer
	tr, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: rc.URL, SampleRatio: 1},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "work")
	span.End()
	_ = tr.Shutdown(context.Background())
	if !strings.Contains(logs.String(), "trace export failed") {
		t.Errorf("log = %q, want the export failure", logs.String())
	}
}

func TestPropagatorIsW3C(t *testing.T) {
	fields := strings.Join(tracing.Propagator().Fields(), ",")
	for _, f := range []string{"traceparent", "tracestate", "baggage"} {
		if !strings.Contains(fields, f) {
			t.Errorf("propagator fields %q lack %s", fields, f)
		}
	}
}

func TestInjectOutbound(t *testing.T) {
	tr, err := tracing.Setup(context.Background(), tracing.Config{SampleRatio: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, tr)
	ctx, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "proxy")
	defer span.End()
	sc := span.SpanContext()
	const forged = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"

	tests := []struct {
		name string
		ctx  context.Context
		want string // traceparent the upstream sees; "" = none
	}{
		{"span context replaces the client's header", ctx, "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"},
		{"no span context drops the client's header", context.Background(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://upstream.internal/", nil)
			req.Header.Set("Traceparent", forged)
			req.Header.Set("Tracestate", "vendor=forged")
			tracing.InjectOutbound(tt.ctx, req)
			if got := req.Header.Get("Traceparent"); got != tt.want {
				t.Errorf("traceparent = %q, want %q", got, tt.want)
			}
			if got := req.Header.Get("Tracestate"); got != "" {
				t.Errorf("tracestate = %q, want the client's removed", got)
			}
		})
	}
}
