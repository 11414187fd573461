package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// gatewayJSON is the 1 KB JSON body of the POST runs: the shape of an
// ordinary API write (strings, numbers, a nested list), nothing the CRS
// should flag.
var gatewayJSON = func() []byte {
	var b strings.Builder
	b.WriteString(`{"name":"Quarterly report","owner":"team-7","tags":["finance","q3","draft"],"items":[`)
	for i := 0; b.Len() < 980; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"label":"line item %d","amount":%d.50}`, i, i, 100+i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}()

// gatewayTarget is one thing under load: a handler served on loopback.
type gatewayTarget struct {
	name string
	h    http.Handler
}

// gatewayTargets builds the five targets of the comparison, all in
// front of the same upstream: the upstream itself, a bare
// httputil.ReverseProxy, Rampart's gateway with the WAF off and with the
// CRS at paranoia 1, and Coraza's stock http.Handler wrapper with the same
// CRS in front of the bare proxy.
func gatewayTargets(tb testing.TB, upstream *url.URL, upH http.Handler) []gatewayTarget {
	tb.Helper()
	bare := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upstream); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}}
	route := []gateway.Route{{Name: "app", Upstreams: []*url.URL{upstream}, Policy: gateway.PolicyAnonymous}}
	gwOff, err := gateway.New(gateway.Config{Routes: route, MaxInFlight: 4096, MaxInFlightPerUpstream: 4096}, gateway.Deps{})
	if err != nil {
		tb.Fatal(err)
	}
	wcfg := waf.Defaults()
	wcfg.SkipExtensions = waf.DefaultSkipExtensions()
	w, err := waf.New(wcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	hook := func(next http.Handler, o gateway.WAFOptions, block func(http.ResponseWriter, *http.Request, gateway.Block)) http.Handler {
		return w.Handler(next, waf.RouteOptions{Disabled: o.Disabled, ExcludeRules: o.ExcludeRules, Mode: o.Mode},
			func(rw http.ResponseWriter, r *http.Request, in waf.Interruption) {
				block(rw, r, gateway.Block{RuleID: in.RuleID, Status: in.Status})
			}, nil)
	}
	gwCRS, err := gateway.New(gateway.Config{Routes: route, MaxInFlight: 4096, MaxInFlightPerUpstream: 4096}, gateway.Deps{WAF: hook})
	if err != nil {
		tb.Fatal(err)
	}
	stock, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(
		"Include @coraza.conf-recommended\nInclude @crs-setup.conf.example\nInclude @owasp_crs/*.conf\nSecRuleEngine On"))
	if err != nil {
		tb.Fatal(err)
	}
	return []gatewayTarget{
		{"upstream", upH},
		{"bare_proxy", bare},
		{"rampart_waf_off", gwOff},
		{"rampart_crs_pl1", gwCRS},
		{"coraza_stock_crs_pl1", txhttp.WrapHandler(stock, bare)},
	}
}

// loadResult is one closed-loop run.
type loadResult struct {
	n        int
	errs     int64
	elapsed  time.Duration
	lat      []time.Duration
	statuses map[int]int
}

func (r loadResult) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// closedLoop sends n requests from workers goroutines over keep-alive
// loopback connections and records each latency.
func closedLoop(tb testing.TB, base string, post bool, workers, n int) loadResult {
	tb.Helper()
	tr := &http.Transport{MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var errs atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[int]int{}
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				var req *http.Request
				if post {
					req, _ = http.NewRequest("POST", base+"/api/reports?draft=1", bytes.NewReader(gatewayJSON))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequest("GET", base+"/api/reports/42?view=summary&lang=en", nil)
				}
				req.Header.Set("User-Agent", "rampart-bench/1.0")
				req.Header.Set("Accept", "application/json")
				t0 := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					errs.Add(1)
					lat[i] = time.Since(t0)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				local[resp.StatusCode]++
			}
			mu.Lock()
			for k, v := range local {
				statuses[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return loadResult{n: n, errs: errs.Load(), elapsed: time.Since(start), lat: lat, statuses: statuses}
}

// BenchmarkGatewayProxy is the comparison, one harness and one run:
// for GET and for a 1 KB JSON POST it drives each target with the same
// closed-loop load generator (in-process net/http client over loopback,
// keep-alive, 4×GOMAXPROCS workers). The targets are interleaved in five
// rounds (each round runs every target in turn with b.N/5 requests), so a
// burst of load from something else on a shared machine hits all of them
// alike; the ratios are medians of the per-round ratios. Reported per
// target: req/s (median of rounds), p50 and p99 latency over all rounds,
// x-of-bare (req/s ÷ the bare proxy's in the same round) and, for
// Rampart's CRS target, x-of-coraza-stock. Plain HTTP on loopback, so TLS
// is out of the comparison. Run:
//
//	go test -run '^$' -bench GatewayProxy -benchtime 10000x ./bench/
func BenchmarkGatewayProxy(b *testing.B) {
	upH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":42,"title":"Quarterly report","status":"draft"}`)
	})
	up := httptest.NewServer(upH)
	defer up.Close()
	u, _ := url.Parse(up.URL)
	targets := gatewayTargets(b, u, upH)
	urls := make([]string, len(targets))
	for i, tg := range targets {
		if tg.name == "upstream" {
			urls[i] = up.URL
			continue
		}
		srv := httptest.NewServer(tg.h)
		defer srv.Close()
		urls[i] = srv.URL
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	const rounds = 5
	for _, kind := range []string{"GET", "POST_1KB_JSON"} {
		post := kind != "GET"
		b.Run(kind, func(b *testing.B) {
			n := max(b.N/rounds, 50)
			rps := make([][]float64, len(targets))
			lat := make([][]time.Duration, len(targets))
			for i := range targets {
				closedLoop(b, urls[i], post, workers, min(n, 200)) // warm connections and caches
			}
			b.ResetTimer()
			for range rounds {
				for i, tg := range targets {
					r := closedLoop(b, urls[i], post, workers, n)
					if r.errs > 0 || r.statuses[200] != n {
						b.Fatalf("%s: %d errors, statuses %v", tg.name, r.errs, r.statuses)
					}
					rps[i] = append(rps[i], r.rps())
					lat[i] = append(lat[i], r.lat...)
				}
			}
			b.StopTimer()
			idx := map[string]int{}
			for i, tg := range targets {
				idx[tg.name] = i
			}
			ratio := func(a, c int) float64 {
				rs := make([]float64, rounds)
				for k := range rounds {
					rs[k] = rps[a][k] / rps[c][k]
				}
				return median(rs)
			}
			for i, tg := range targets {
				b.ReportMetric(median(rps[i]), tg.name+"_req/s")
				b.ReportMetric(ms(percentile(lat[i], 50)), tg.name+"_p50_ms")
				b.ReportMetric(ms(percentile(lat[i], 99)), tg.name+"_p99_ms")
				if tg.name != "upstream" && tg.name != "bare_proxy" {
					b.ReportMetric(ratio(i, idx["bare_proxy"]), tg.name+"_x-of-bare")
				}
			}
			b.ReportMetric(ratio(idx["rampart_crs_pl1"], idx["coraza_stock_crs_pl1"]), "rampart_crs_x-of-coraza_stock")
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s { // tiny: insertion sort
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// TestGatewayBenchTargetsBlock checks that the WAF targets of the
// benchmark really inspect (an attack is refused by both) and pass the
// benchmark's own requests, so the comparison is like for like.
func TestGatewayBenchTargetsBlock(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	for _, tg := range gatewayTargets(t, u, up.Config.Handler) {
		wantBlock := strings.Contains(tg.name, "crs")
		for _, tc := range []struct {
			path  string
			block bool
		}{{"/api/reports/42?view=summary", false}, {"/api/reports?id=1%27%20OR%20%271%27=%271", wantBlock}} {
			r := httptest.NewRequest("GET", "http://bench"+tc.path, nil)
			r.Header.Set("User-Agent", "rampart-bench/1.0")
			r.Header.Set("Accept", "application/json")
			w := httptest.NewRecorder()
			tg.h.ServeHTTP(w, r)
			if (w.Code == 403) != tc.block {
				t.Errorf("%s %s: status %d", tg.name, tc.path, w.Code)
			}
		}
	}
}
