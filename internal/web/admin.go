package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminDeps are what the admin listener needs.
type AdminDeps struct {
	Ready    func(ctx context.Context) error
	Gatherer prometheus.Gatherer
	Log      *slog.Logger
}

// NewAdminHandler serves /healthz (the process is up), /readyz (the
// database answers) and /metrics (Prometheus). It listens on loopback by
// default because it carries no authentication.
func NewAdminHandler(d AdminDeps) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := d.Ready(ctx); err != nil {
			if d.Log != nil {
				d.Log.Warn("not ready", "err", err)
			}
			writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable", Message: "database unreachable"})
			return
		}
		writeJSON(w, http.StatusOK, statusBody{Status: "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	return mux
}

// ProbeSessionCookie returns the Set-Cookie header that the server's own
// cookie writer emits for a session, so the SES-1 check reports the
// attributes as sent, not as configured.
func ProbeSessionCookie(now func() time.Time) *http.Cookie {
	s := &server{now: now}
	rec := &headerRecorder{h: http.Header{}}
	s.setSessionCookie(rec, "probe", now().Add(time.Hour))
	resp := http.Response{Header: rec.h}
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	return nil
}

type headerRecorder struct {
	h http.Header
}

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(int)             {}
