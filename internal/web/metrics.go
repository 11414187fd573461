package web

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	apiAuditDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rampart_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	m.apiAuditDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rampart_audit_api_events_dropped_total", Help: "API-call audit events not recorded (queue full or log unavailable; they fail open).",
	})
	if err := reg.Register(m.apiAuditDropped); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.apiAuditDropped = are.ExistingCollector.(prometheus.Counter)
		}
	}
	// A second registration (tests building several servers on one
	// registry) reuses the collectors already registered.
	if err := reg.Register(m.requests); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.requests = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	if err := reg.Register(m.latency); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.latency = are.ExistingCollector.(*prometheus.HistogramVec)
		}
	}
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	if status == 0 {
		status = 200
	}
	method = methodLabel(method) // client input: bound the label set
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}
