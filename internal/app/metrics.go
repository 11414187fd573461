package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// registerAuditMetrics exports the audit log's, the sinks' and the alert
// engine's counters (MON-1: audit lag and sink lag among them).
func (a *App) registerAuditMetrics() {
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	a.Metrics.MustRegister(
		counter("rampart_audit_events_committed_total", "Audit events durably appended.", func() float64 { return float64(a.AuditLog.Stats().Committed) }),
		counter("rampart_audit_batches_total", "Audit group commits (transactions).", func() float64 { return float64(a.AuditLog.Stats().Batches) }),
		counter("rampart_audit_events_failed_total", "Audit events whose group failed to commit.", func() float64 { return float64(a.AuditLog.Stats().Failed) }),
		counter("rampart_audit_witness_failures_total", "Checkpoint publications to a witness that failed (retried).", func() float64 { return float64(a.AuditLog.Stats().WitnessFailures) }),
		counter("rampart_alerts_raised_total", "Security alerts raised.", func() float64 { return float64(a.alertEngine.Stats().Raised) }),
		counter("rampart_alerts_delivery_failures_total", "Failed alert deliveries.", func() float64 { return float64(a.alertEngine.Stats().DeliveryFailures) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_audit_checkpoint_lag_events", Help: "Audit events not yet covered by a signed checkpoint."},
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				size, err := a.Store.AuditSize(ctx)
				if err != nil {
					return -1
				}
				cp, err := a.AuditLog.Latest(ctx)
				if err != nil || cp == nil {
					return float64(size)
				}
				return float64(size - cp.Size)
			}),
	)
	for i, r := range a.sinks {
		a.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rampart_audit_sink_lag_events", Help: "Audit events committed but not yet delivered to a sink.",
			ConstLabels: prometheus.Labels{"sink": a.sinkNames[i]},
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			lag, err := r.Lag(ctx)
			if err != nil {
				return -1
			}
			return float64(lag)
		}))
	}
}
