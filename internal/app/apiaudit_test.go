package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestEveryAPICallIsRecorded: an API call (here an anonymous, refused one)
// becomes an "api.request" event in the Merkle log with its route pattern,
// status and outcome (AUD-1), on both engines.
func TestEveryAPICallIsRecorded(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine)
			}
			a, err := app.New(context.Background(), testConfig(t, db), app.Options{Log: testLog(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for range 3 {
				req := httptest.NewRequest(http.MethodGet, "https://localhost/v1/me", nil)
				req.RemoteAddr = "192.0.2.7:1234"
				rec := httptest.NewRecorder()
				a.Handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("GET /v1/me = %d", rec.Code)
				}
			}
			a.Handler.Drain()
			deadline := time.Now().Add(10 * time.Second)
			for {
				evs, err := a.AuditLog.Query(context.Background(), audit.Filter{Action: "api.request", AfterID: -1, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == 3 {
					e := evs[0]
					if e.Target != "GET /v1/me" || e.Outcome != audit.Denied || e.Details["status"] != "401" || e.RequestID == "" || e.ActorType != audit.ActorAnonymous {
						t.Fatalf("api.request event = %+v", e)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d api.request events recorded, want 3", len(evs))
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
