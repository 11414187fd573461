package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"
)

// benchJSON is a 1 KiB JSON document of the kind an API receives.
var benchJSON = func() string {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":"A-1000","name":"Blue widget","qty":3,"note":"leave at door"}`)
	}
	b.WriteString(`]}`)
	return b.String()
}()

func benchRequest(method string) *http.Request {
	var r *http.Request
	if method == http.MethodPost {
		r = httptest.NewRequest(method, "/api/orders?store=12", strings.NewReader(benchJSON))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, "/api/items?id=42&sort=name", nil)
	}
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Accept-Language", "en-GB,en;q=0.8")
	r.Header.Set("Cookie", "sid=0123456789abcdef")
	return r
}

// upstream reads the body and answers a small JSON document.
var benchUpstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
})

func serveN(b *testing.B, h http.Handler, method string) time.Duration {
	b.ReportAllocs()
	for b.Loop() {
		r := benchRequest(method)
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, r)
		if rw.Code != http.StatusOK {
			b.Fatalf("status %d", rw.Code)
		}
	}
	return b.Elapsed() / time.Duration(b.N)
}

// BenchmarkHandler compares, on the same requests in one run, a bare
// handler, Coraza's stock http.Handler wrapper and Rampart's WAF handler,
// both with the same compiled directives (CRS v4, paranoia 1, blocking).
// The rampart rows report x-of-stock (ours ÷ stock; below 1 is faster).
func BenchmarkHandler(b *testing.B) {
	cfg := Defaults()
	ours, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	stockWAF, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(cfg.directives("")))
	if err != nil {
		b.Fatal(err)
	}
	stock := txhttp.WrapHandler(stockWAF, benchUpstream)
	rampart := ours.Handler(benchUpstream, RouteOptions{}, nil, nil)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var bare, stockT time.Duration
		b.Run(method+"/bare", func(b *testing.B) { bare = serveN(b, benchUpstream, method) })
		b.Run(method+"/coraza-stock", func(b *testing.B) {
			stockT = serveN(b, stock, method)
			b.ReportMetric(float64(stockT)/float64(bare), "x-of-bare")
		})
		b.Run(method+"/rampart", func(b *testing.B) {
			t := serveN(b, rampart, method)
			b.ReportMetric(float64(t)/float64(stockT), "x-of-stock")
			b.ReportMetric(float64(t)/float64(bare), "x-of-bare")
		})
	}
}

// BenchmarkStaticSkip shows the cost of a skipped static-asset request
// against the same request fully inspected.
func BenchmarkStaticSkip(b *testing.B) {
	inspect, err := New(Defaults(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := Defaults()
	cfg.SkipExtensions = DefaultSkipExtensions()
	skip, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, h http.Handler) time.Duration {
		for b.Loop() {
			r := httptest.NewRequest("GET", "/static/app.3f2a.css", nil)
			r.Header.Set("User-Agent", "Mozilla/5.0")
			r.Header.Set("Accept", "text/css")
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
		return b.Elapsed() / time.Duration(b.N)
	}
	var full time.Duration
	b.Run("inspected", func(b *testing.B) { full = run(b, inspect.Handler(benchUpstream, RouteOptions{}, nil, nil)) })
	b.Run("skipped", func(b *testing.B) {
		t := run(b, skip.Handler(benchUpstream, RouteOptions{}, nil, nil))
		b.ReportMetric(float64(t)/float64(full), "x-of-inspected")
	})
}

// BenchmarkPaired alternates stock and Rampart request by request, so load
// from other processes on a shared machine hits both alike; it reports the
// mean of each and their ratio (x-of-stock below 1: Rampart is faster).
func BenchmarkPaired(b *testing.B) {
	cfg := Defaults()
	ours, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	stockWAF, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(cfg.directives("")))
	if err != nil {
		b.Fatal(err)
	}
	stock := txhttp.WrapHandler(stockWAF, benchUpstream)
	rampart := ours.Handler(benchUpstream, RouteOptions{}, nil, nil)
	once := func(h http.Handler, method string) time.Duration {
		r := benchRequest(method)
		rw := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rw, r)
		d := time.Since(start)
		if rw.Code != http.StatusOK {
			b.Fatalf("status %d", rw.Code)
		}
		return d
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		b.Run(method, func(b *testing.B) {
			var s, o, bare time.Duration
			n := 0
			for b.Loop() {
				bare += once(benchUpstream, method)
				s += once(stock, method)
				o += once(rampart, method)
				n++
			}
			b.ReportMetric(float64(bare)/float64(n), "ns-bare")
			b.ReportMetric(float64(s)/float64(n), "ns-stock")
			b.ReportMetric(float64(o)/float64(n), "ns-rampart")
			b.ReportMetric(float64(o)/float64(s), "x-of-stock")
		})
	}
}
