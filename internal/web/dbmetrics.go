package web

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/fault"
)

// NewQueryMetrics registers the database query metrics (MON-1) on reg and
// returns the observer to pass as store.Options.Observe. It lives beside
// the HTTP metrics so the store stays free of Prometheus:
//
//	rampart_db_query_duration_seconds{op,engine}   histogram of every operation
//	rampart_db_query_errors_total{op,engine,kind}  operations that failed, by fault kind
//
// op is one of the store's constant operation names, so the label set is
// bounded. The kind label separates lookups that found nothing (not_found)
// and refused duplicates (conflict), which are normal answers, from
// internal and unavailable failures, which are worth an alert.
func NewQueryMetrics(reg prometheus.Registerer, engine string) func(op string, d time.Duration, err error) {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rampart_db_query_duration_seconds", Help: "Duration of store operations (a transaction counts once) by operation and engine.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"op", "engine"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_db_query_errors_total", Help: "Store operations that returned an error, by operation, engine and fault kind.",
	}, []string{"op", "engine", "kind"})
	latency = registerOrReuse(reg, latency)
	failures = registerOrReuse(reg, failures)
	return func(op string, d time.Duration, err error) {
		latency.WithLabelValues(op, engine).Observe(d.Seconds())
		if err != nil {
			failures.WithLabelValues(op, engine, fault.KindOf(err).String()).Inc()
		}
	}
}

// registerOrReuse registers c, or returns the collector of the same
// description already on reg (a second store or test on one registry).
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("web: cannot register query metrics: " + err.Error())
	}
	return c
}
