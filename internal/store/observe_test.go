package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

type observation struct {
	op   string
	d    time.Duration
	kind fault.Kind
	err  bool
}

type observer struct {
	mu  sync.Mutex
	got []observation
}

func (o *observer) observe(op string, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observation{op: op, d: d, kind: fault.KindOf(err), err: err != nil})
}

func (o *observer) take() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := o.got
	o.got = nil
	return got
}

// TestObserve checks that every kind of store operation reaches
// Options.Observe once, under its op name, with its duration and outcome,
// on both engines. It opens its stores like storetest.Each, but through
// Options.Observe, which Each does not set.
func TestObserve(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			obs := &observer{}
			dsn := storetest.DSN(t, engine)
			s, err := store.Open(ctx, store.Options{DSN: dsn, Observe: obs.observe})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if s.Engine() != engine || store.EngineFor(dsn) != engine {
				t.Fatalf("engine %s / EngineFor %s, want %s", s.Engine(), store.EngineFor(dsn), engine)
			}
			u := newUser(t, s, "observed@example.com")
			obs.take()

			tests := []struct {
				name   string
				run    func() error
				wantOp string
				// wantKind is the fault kind observed when wantErr.
				wantErr  bool
				wantKind fault.Kind
			}{
				{"statement on the pool", func() error { return newUserErr(s, "second@example.com") }, "create user", false, 0},
				{"conflict reaches the observer", func() error { return newUserErr(s, "observed@example.com") }, "create user", true, fault.Conflict},
				{"transaction counts once, not per statement", func() error {
					return s.EnableTOTP(ctx, u.ID, 7, [][]byte{hash("a"), hash("b")}, t0)
				}, "enable totp", false, 0},
				{"failed transaction", func() error {
					return s.EnableTOTP(ctx, "no-such-user", 7, nil, t0)
				}, "enable totp", true, fault.NotFound},
				{"read", func() error { _, err := s.Workspace(ctx, "no-such-workspace"); return err }, "workspace", true, fault.NotFound},
				{"existence check on the pool", func() error {
					_, err := s.KnownDevice(ctx, u.ID, hash("device"))
					return err
				}, "known device", false, 0},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := tt.run()
					if (err != nil) != tt.wantErr {
						t.Fatalf("operation error = %v, want error %v", err, tt.wantErr)
					}
					got := obs.take()
					if len(got) != 1 {
						t.Fatalf("observed %+v, want exactly one %q", got, tt.wantOp)
					}
					o := got[0]
					if o.op != tt.wantOp || o.err != tt.wantErr || (tt.wantErr && o.kind != tt.wantKind) {
						t.Errorf("observed %+v, want op %q error %v kind %v", o, tt.wantOp, tt.wantErr, tt.wantKind)
					}
					if o.d <= 0 || o.d > time.Minute {
						t.Errorf("duration %v is not a measured time", o.d)
					}
				})
			}
		})
	}
}

func newUserErr(s *store.Store, email string) error {
	return s.CreateUser(context.Background(), &identity.User{Email: email, PasswordHash: "x", CreatedAt: t0, UpdatedAt: t0})
}
