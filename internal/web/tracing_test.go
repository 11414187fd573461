package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tracing"
	"github.com/rampartsec/rampart/internal/tracing/tracingtest"
)

const (
	inTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	inSpanID  = "00f067aa0ba902b7"
	inParent  = "00-" + inTraceID + "-" + inSpanID + "-01"
)

var hexTraceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// tracedHandler is outer around a small mux, so the test sees exactly what
// outer does: the handlers report the trace id they found in the audit
// request facts.
func tracedHandler(t testing.TB, tr Tracing) (http.Handler, *[]string) {
	t.Helper()
	var metaIDs []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		metaIDs = append(metaIDs, audit.MetaFrom(r.Context()).TraceID)
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("POST /boom", func(w http.ResponseWriter, r *http.Request) {
		metaIDs = append(metaIDs, audit.MetaFrom(r.Context()).TraceID)
		panic("handler failure")
	})
	s := newServer(Deps{Tracing: tr, Metrics: prometheus.NewRegistry()})
	return s.outer(mux), &metaIDs
}

func TestTracingExportsServerSpans(t *testing.T) {
	rc := tracingtest.NewReceiver(t)
	tr, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: rc.URL, ServiceName: "rampart", SampleRatio: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, metaIDs := tracedHandler(t, tr)

	tests := []struct {
		name        string
		method      string
		path        string
		traceparent string
		wantStatus  int
		wantName    string
		wantRoute   string // "" = no http.route attribute
		wantError   bool
	}{
		{"continues the caller's trace", "GET", "/items/42", inParent, 201, "GET /items/{id}", "/items/{id}", false},
		{"starts a trace without a parent", "GET", "/items/7", "", 201, "GET /items/{id}", "/items/{id}", false},
		{"malformed parent starts a new trace", "GET", "/items/7", "00-zz-zz-01", 201, "GET /items/{id}", "/items/{id}", false},
		{"panic is a 500 error span", "POST", "/boom", inParent, 500, "POST /boom", "/boom", true},
		{"unmatched route is named by method", "GET", "/nowhere", "", 404, "GET", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			*metaIDs = nil
			r := httptest.NewRequest(tt.method, "https://localhost"+tt.path, nil)
			if tt.traceparent != "" {
				r.Header.Set("Traceparent", tt.traceparent)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			tid := w.Header().Get("X-Trace-Id")
			if !hexTraceID.MatchString(tid) {
				t.Fatalf("X-Trace-Id = %q, want 32 hex digits", tid)
			}
			if tt.traceparent == inParent && tid != inTraceID {
				t.Errorf("X-Trace-Id = %s, want the caller's %s", tid, inTraceID)
			}
			if tt.traceparent != inParent && tid == inTraceID {
				t.Errorf("X-Trace-Id reuses the other test's trace id")
			}
			if len(*metaIDs) > 0 && (*metaIDs)[0] != tid {
				t.Errorf("audit.Meta.TraceID = %q, want %s", (*metaIDs)[0], tid)
			}
			// Export what is buffered: ForceFlush is not part of the web
			// contract, so flush through the provider's own interface.
			if f, ok := tr.TracerProvider().(interface{ ForceFlush(context.Context) error }); !ok || f.ForceFlush(context.Background()) != nil {
				t.Fatal("cannot flush the tracer provider")
			}
			var got []tracingtest.Span
			for _, s := range rc.ByTraceID(tid) {
				if s.GetName() == tt.wantName {
					got = append(got, s)
				}
			}
			if len(got) != 1 {
				t.Fatalf("received %d spans named %q in trace %s, want 1", len(got), tt.wantName, tid)
			}
			s := got[0]
			wantParent := ""
			if tt.traceparent == inParent {
				wantParent = inSpanID
			}
			if s.ParentID() != wantParent {
				t.Errorf("parent span id = %q, want %q", s.ParentID(), wantParent)
			}
			if s.GetKind().String() != "SPAN_KIND_SERVER" {
				t.Errorf("kind = %s, want server", s.GetKind())
			}
			if v, _ := s.Attr("http.response.status_code"); v != strconv.Itoa(tt.wantStatus) {
				t.Errorf("http.response.status_code = %q, want %d", v, tt.wantStatus)
			}
			if v, ok := s.Attr("http.route"); v != tt.wantRoute || ok != (tt.wantRoute != "") {
				t.Errorf("http.route = %q (present %v), want %q", v, ok, tt.wantRoute)
			}
			if v, _ := s.Attr("rampart.request_id"); v == "" || v != w.Header().Get("X-Request-Id") {
				t.Errorf("rampart.request_id = %q, want the X-Request-Id %q", v, w.Header().Get("X-Request-Id"))
			}
			if isErr := s.GetStatus().GetCode().String() == "STATUS_CODE_ERROR"; isErr != tt.wantError {
				t.Errorf("span status %s, want error %v", s.GetStatus().GetCode(), tt.wantError)
			}
			for _, kv := range s.GetAttributes() {
				if strings.Contains(kv.GetKey(), "client") || strings.Contains(kv.GetKey(), "user_agent") || strings.Contains(kv.GetKey(), "url") {
					t.Errorf("span carries personal or URL data: %s", kv.GetKey())
				}
			}
		})
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Without a collector the ids still exist: support quotes X-Trace-Id and
// finds the request in the logs and the audit trail.
func TestTracingWithoutCollector(t *testing.T) {
	tr, err := tracing.Setup(context.Background(), tracing.Config{SampleRatio: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background()) //nolint:errcheck // nothing to flush
	tests := []struct {
		name        string
		tracing     Tracing
		traceparent string
		want        string // "any" = fresh 32-hex id, "" = no header
	}{
		{"fresh trace id", tr, "", "any"},
		{"caller's trace id", tr, inParent, inTraceID},
		{"tracing off: no header", nil, inParent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, metaIDs := tracedHandler(t, tt.tracing)
			r := httptest.NewRequest("GET", "https://localhost/items/1", nil)
			if tt.traceparent != "" {
				r.Header.Set("Traceparent", tt.traceparent)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get("X-Trace-Id")
			switch tt.want {
			case "any":
				if !hexTraceID.MatchString(got) || got == strings.Repeat("0", 32) {
					t.Errorf("X-Trace-Id = %q, want a trace id", got)
				}
			default:
				if got != tt.want {
					t.Errorf("X-Trace-Id = %q, want %q", got, tt.want)
				}
			}
			if len(*metaIDs) != 1 || (*metaIDs)[0] != got {
				t.Errorf("audit.Meta.TraceID = %v, want [%q]", *metaIDs, got)
			}
		})
	}
}

// FuzzTraceHeaders feeds arbitrary trace-context headers, which are
// client input, through outer: it must never panic, and the request always
// gets a well-formed trace id that the audit facts agree with.
func FuzzTraceHeaders(f *testing.F) {
	f.Add(inParent, "", "")
	f.Add("00-"+inTraceID+"-"+inSpanID+"-00", "vendor=x", "user=alice")
	f.Add("00-00000000000000000000000000000000-"+inSpanID+"-01", "", "")
	f.Add("ff-"+inTraceID+"-"+inSpanID+"-01", "", "")
	f.Add("01-"+inTraceID+"-"+inSpanID+"-01-future", ",,,=", "k=v;p=1,%zz")
	f.Add(strings.Repeat("0", 4096), strings.Repeat("a=b,", 100), strings.Repeat("k=v,", 200))
	tr, err := tracing.Setup(context.Background(), tracing.Config{SampleRatio: 1}, nil)
	if err != nil {
		f.Fatal(err)
	}
	h, metaIDs := tracedHandler(f, tr)
	f.Fuzz(func(t *testing.T, traceparent, tracestate, baggage string) {
		*metaIDs = nil
		r := httptest.NewRequest("GET", "https://localhost/items/1", nil)
		r.Header["Traceparent"] = []string{traceparent}
		r.Header["Tracestate"] = []string{tracestate}
		r.Header["Baggage"] = []string{baggage}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d", w.Code)
		}
		tid := w.Header().Get("X-Trace-Id")
		if !hexTraceID.MatchString(tid) || tid == strings.Repeat("0", 32) {
			t.Fatalf("X-Trace-Id = %q", tid)
		}
		if len(*metaIDs) != 1 || (*metaIDs)[0] != tid {
			t.Fatalf("audit.Meta.TraceID = %v, want [%s]", *metaIDs, tid)
		}
	})
}

func TestNewQueryMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	observe := NewQueryMetrics(reg, "sqlite")
	again := NewQueryMetrics(reg, "postgres") // a second registration reuses the collectors
	observe("create user", 3*time.Millisecond, nil)
	observe("create user", 2*time.Millisecond, fault.New(fault.Conflict, "conflict", "already exists"))
	observe("user by id", time.Millisecond, errors.New("driver exploded"))
	again("create user", time.Millisecond, nil)

	tests := []struct {
		metric, labels string
		want           float64 // sample count for histograms, value for counters
	}{
		{"rampart_db_query_duration_seconds", "engine=sqlite,op=create user", 2},
		{"rampart_db_query_duration_seconds", "engine=sqlite,op=user by id", 1},
		{"rampart_db_query_duration_seconds", "engine=postgres,op=create user", 1},
		{"rampart_db_query_errors_total", "engine=sqlite,kind=conflict,op=create user", 1},
		{"rampart_db_query_errors_total", "engine=sqlite,kind=internal,op=user by id", 1},
		{"rampart_db_query_errors_total", "engine=postgres,kind=conflict,op=create user", 0},
	}
	got := gather(t, reg)
	for _, tt := range tests {
		if v := got[tt.metric+"{"+tt.labels+"}"]; v != tt.want {
			t.Errorf("%s{%s} = %v, want %v", tt.metric, tt.labels, v, tt.want)
		}
	}
	series := 0
	for k := range got {
		if strings.HasPrefix(k, "rampart_db_query_duration_seconds{") {
			series++
		}
	}
	if series != 3 {
		t.Errorf("%d duration series, want 3", series)
	}
}

// gather flattens reg into "name{k=v,...}" → counter value or histogram
// sample count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() { // sorted by name
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName() + "{" + strings.Join(kv, ",") + "}"
			if h := m.GetHistogram(); h != nil {
				out[key] = float64(h.GetSampleCount())
			} else {
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// BenchmarkOuterTracing is the per-request cost of outer with tracing off
// and with a provider that has no exporter (ids only).
func BenchmarkOuterTracing(b *testing.B) {
	tr, err := tracing.Setup(context.Background(), tracing.Config{SampleRatio: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		tr   Tracing
	}{{"off", nil}, {"ids only", tr}} {
		b.Run(bc.name, func(b *testing.B) {
			h, metaIDs := tracedHandler(b, bc.tr)
			r := httptest.NewRequest("GET", "https://localhost/items/1", nil)
			r.Header.Set("Traceparent", inParent)
			b.ReportAllocs()
			for b.Loop() {
				*metaIDs = (*metaIDs)[:0]
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
