package secrets_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	log   *audit.MerkleLog
	svc   *secrets.Service
	clock *clock
}

var op = secrets.Actor{Type: audit.ActorOperator, ID: "op-1"}

func newEnv(t *testing.T, st *store.Store) *env {
	c := &clock{t: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	ring := vault.NewKeyring(rand.Reader)
	must(t, ring.Add(1, bytes.Repeat([]byte{7}, 32)))
	must(t, ring.SetPrimary(1))
	l, err := audit.NewMerkleLog(audit.LogConfig{Origin: "test.example/audit"}, audit.LogDeps{
		Store: st, Sealer: ring, IndexKey: bytes.Repeat([]byte{8}, 32), SignerKey: bytes.Repeat([]byte{9}, 32), Now: c.now,
	})
	must(t, err)
	l.Start(context.Background())
	t.Cleanup(func() { l.Close() })
	svc := secrets.New(secrets.Deps{Store: st, Sealer: vault.KeyringSealer{Keyring: ring}, Audit: l, Now: c.now, Rand: rand.Reader})
	return &env{t: t, ctx: context.Background(), st: st, log: l, svc: svc, clock: c}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t testing.TB, err error, k fault.Kind, code string) {
	t.Helper()
	if fe := fault.As(err); fe == nil || fe.Kind != k || fe.Code != code {
		t.Fatalf("error = %v, want %s %q", err, k, code)
	}
}

func (e *env) events(action string) []audit.Event {
	e.t.Helper()
	evs, err := e.log.Query(e.ctx, audit.Filter{Action: action, AfterID: -1, Limit: 1000})
	must(e.t, err)
	return evs
}

func (e *env) get(ws, name string, sel secrets.Selector) string {
	e.t.Helper()
	v, err := e.svc.Get(e.ctx, op, ws, name, sel)
	must(e.t, err)
	return string(v.Value)
}

func intp(i int) *int { return &i }

func TestPutGetStagesAndCAS(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		_, v, err := e.svc.Put(e.ctx, op, "", "api-token", []byte("one"), secrets.PutOptions{CAS: intp(0)})
		must(t, err)
		if v != 1 {
			t.Fatalf("first version = %d", v)
		}
		_, _, err = e.svc.Put(e.ctx, op, "", "api-token", []byte("stale"), secrets.PutOptions{CAS: intp(0)})
		wantCode(t, err, fault.Conflict, "cas_mismatch")
		_, v, err = e.svc.Put(e.ctx, op, "", "api-token", []byte("two"), secrets.PutOptions{CAS: intp(1)})
		must(t, err)
		_, _, err = e.svc.Put(e.ctx, op, "", "api-token", []byte("stale"), secrets.PutOptions{CAS: intp(1)})
		wantCode(t, err, fault.Conflict, "cas_mismatch")
		_, _, err = e.svc.Put(e.ctx, op, "", "api-token", []byte("three"), secrets.PutOptions{Stage: secrets.StagePending})
		must(t, err)

		for _, c := range []struct {
			sel  secrets.Selector
			want string
		}{
			{secrets.Selector{}, "two"},
			{secrets.Selector{Stage: secrets.StageCurrent}, "two"},
			{secrets.Selector{Stage: secrets.StagePrevious}, "one"},
			{secrets.Selector{Stage: secrets.StagePending}, "three"},
			{secrets.Selector{Version: 1}, "one"},
		} {
			if got := e.get("", "api-token", c.sel); got != c.want {
				t.Errorf("Get(%+v) = %q, want %q", c.sel, got, c.want)
			}
		}
		must(t, e.svc.Promote(e.ctx, op, "", "api-token", 3))
		if got := e.get("", "api-token", secrets.Selector{}); got != "three" {
			t.Fatalf("after promote current = %q", got)
		}
		if got := e.get("", "api-token", secrets.Selector{Stage: secrets.StagePrevious}); got != "two" {
			t.Fatalf("after promote previous = %q", got)
		}

		// Every read is audited with name and version, never the value.
		reads := e.events("secrets.read")
		if len(reads) != 7 {
			t.Fatalf("%d read events, want 7", len(reads))
		}
		last := reads[len(reads)-1]
		if last.Target != "secret:api-token" || last.Details["version"] != "2" || last.ActorID != "op-1" || last.Outcome != audit.Success {
			t.Fatalf("read event = %+v", last)
		}
		for _, ev := range append(reads, e.events("secrets.write")...) {
			for _, d := range ev.Details {
				if d == "one" || d == "two" || d == "three" {
					t.Fatalf("a value reached the audit trail: %+v", ev)
				}
			}
		}

		// Invalid input.
		_, _, err = e.svc.Put(e.ctx, op, "", "../x", []byte("v"), secrets.PutOptions{})
		wantCode(t, err, fault.Invalid, "secret_name_invalid")
		_, _, err = e.svc.Put(e.ctx, op, "", "x", nil, secrets.PutOptions{})
		wantCode(t, err, fault.Invalid, "secret_value_invalid")
		_, _, err = e.svc.Put(e.ctx, op, "", "x", make([]byte, secrets.MaxValueSize+1), secrets.PutOptions{})
		wantCode(t, err, fault.Invalid, "secret_value_invalid")
		_, err = e.svc.Get(e.ctx, op, "", "nope", secrets.Selector{})
		wantCode(t, err, fault.NotFound, "secret_not_found")

		// Soft delete, restore, destroy.
		must(t, e.svc.Delete(e.ctx, op, "", "api-token"))
		_, err = e.svc.Get(e.ctx, op, "", "api-token", secrets.Selector{})
		wantCode(t, err, fault.Conflict, "secret_deleted")
		_, _, err = e.svc.Put(e.ctx, op, "", "api-token", []byte("x"), secrets.PutOptions{})
		wantCode(t, err, fault.Conflict, "secret_deleted")
		must(t, e.svc.Restore(e.ctx, op, "", "api-token"))
		if got := e.get("", "api-token", secrets.Selector{}); got != "three" {
			t.Fatalf("after restore = %q", got)
		}
		sec, _, err := e.svc.Describe(e.ctx, "", "api-token")
		must(t, err)
		must(t, e.svc.Destroy(e.ctx, op, "", "api-token"))
		_, err = e.svc.Get(e.ctx, op, "", "api-token", secrets.Selector{})
		wantCode(t, err, fault.NotFound, "secret_not_found")
		for i := 1; i <= 3; i++ {
			_, sealed, err := st.SecretVersion(e.ctx, "", sec.ID, i)
			must(t, err)
			if sealed != nil {
				t.Fatalf("version %d kept its value after destroy", i)
			}
		}
		for _, a := range []string{"secrets.delete", "secrets.restore", "secrets.destroy", "secrets.promote"} {
			if len(e.events(a)) != 1 {
				t.Errorf("no %s event", a)
			}
		}
	})
}

// TestSealedBoundToRow: a value copied to another version's row does not
// open (the associated data names secret and version).
func TestSealedBoundToRow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		sec, _, err := e.svc.Put(e.ctx, op, "", "k", []byte("first"), secrets.PutOptions{})
		must(t, err)
		_, _, err = e.svc.Put(e.ctx, op, "", "k", []byte("second"), secrets.PutOptions{})
		must(t, err)
		_, v1, err := st.SecretVersion(e.ctx, "", sec.ID, 1)
		must(t, err)
		if bytes.Contains(v1, []byte("first")) {
			t.Fatal("value stored in plaintext")
		}
		// Write version 1's ciphertext as version 3.
		must(t, st.AddSecretVersion(e.ctx, "", sec.ID, 2, secrets.Version{Version: 3, Stage: secrets.StageCurrent, CreatedAt: e.clock.now()}, v1, e.clock.now()))
		_, err = e.svc.Get(e.ctx, op, "", "k", secrets.Selector{})
		wantCode(t, err, fault.Internal, "secret_unreadable")
	})
}

// testRotator records its calls and fails where told.
type testRotator struct {
	mu        sync.Mutex
	failSet   bool
	failTest  bool
	generated int
	set       []string
	rolled    []string
	live      string // the value the "system" accepts
}

func (r *testRotator) Kind() string { return "test" }
func (r *testRotator) Generate(context.Context) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.generated++
	return []byte("gen-" + string(rune('0'+r.generated))), nil
}
func (r *testRotator) Set(_ context.Context, c secrets.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set = append(r.set, string(c.Value))
	r.live = string(c.Value)
	if r.failSet {
		return errors.New("set refused")
	}
	return nil
}
func (r *testRotator) Test(_ context.Context, c secrets.Change) error {
	if r.failTest {
		return errors.New("test failed")
	}
	if r.live != string(c.Value) {
		return errors.New("not live")
	}
	return nil
}
func (r *testRotator) Rollback(_ context.Context, c secrets.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rolled = append(r.rolled, string(c.Previous))
	r.live = string(c.Previous)
	return nil
}

func TestRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		rot := &testRotator{}
		p := secrets.Policy{Name: "db", Secret: "db-password", Interval: time.Hour, Rotator: rot}
		sys := secrets.Actor{Type: audit.ActorSystem, ID: "rotation"}

		due, err := e.svc.Due(e.ctx, p)
		must(t, err)
		if !due {
			t.Fatal("a secret that does not exist yet should be due")
		}
		v, err := e.svc.Rotate(e.ctx, sys, p)
		must(t, err)
		if v != 1 || e.get("", "db-password", secrets.Selector{}) != "gen-1" {
			t.Fatalf("first rotation: v%d", v)
		}
		if due, _ := e.svc.Due(e.ctx, p); due {
			t.Fatal("due right after a rotation")
		}
		e.clock.add(time.Hour)
		if due, _ := e.svc.Due(e.ctx, p); !due {
			t.Fatal("not due after the interval")
		}
		v, err = e.svc.Rotate(e.ctx, sys, p)
		must(t, err)
		if v != 2 || e.get("", "db-password", secrets.Selector{}) != "gen-2" || e.get("", "db-password", secrets.Selector{Stage: secrets.StagePrevious}) != "gen-1" {
			t.Fatal("second rotation did not move the stages")
		}

		// A failed test rolls back, keeps the current version, discards
		// the pending one, marks the attempt, audits and alerts.
		e.clock.add(time.Hour)
		rot.failTest = true
		_, err = e.svc.Rotate(e.ctx, sys, p)
		var re *secrets.RotationError
		if !errors.As(err, &re) || re.Step != "test" || !re.RolledBack {
			t.Fatalf("failed rotation error = %v", err)
		}
		if rot.live != "gen-2" || len(rot.rolled) != 1 || rot.rolled[0] != "gen-2" {
			t.Fatalf("rollback: live %q rolled %v", rot.live, rot.rolled)
		}
		if got := e.get("", "db-password", secrets.Selector{}); got != "gen-2" {
			t.Fatalf("current after a failed rotation = %q", got)
		}
		_, err = e.svc.Get(e.ctx, op, "", "db-password", secrets.Selector{Stage: secrets.StagePending})
		wantCode(t, err, fault.NotFound, "secret_version_not_found")
		sec, _, err := e.svc.Describe(e.ctx, "", "db-password")
		must(t, err)
		if sec.Rotation.Status != "failed" || sec.Rotation.Error != "test" || sec.Current != 2 {
			t.Fatalf("rotation state = %+v", sec)
		}
		alerts := e.events("secret.rotation_failed")
		if len(alerts) != 1 || alerts[0].Target != "secret:db-password" || alerts[0].Outcome != audit.Failure {
			t.Fatalf("alert events = %+v", alerts)
		}
		fails := 0
		for _, ev := range e.events("secrets.rotate") {
			if ev.Outcome == audit.Failure {
				fails++
			}
		}
		if fails != 1 {
			t.Fatalf("%d failed secrets.rotate events", fails)
		}
		// Not retried at once, but after RetryAfter.
		if due, _ := e.svc.Due(e.ctx, p); due {
			t.Fatal("a failed rotation is retried at once")
		}
		e.clock.add(10 * time.Minute)
		if due, _ := e.svc.Due(e.ctx, p); !due {
			t.Fatal("a failed rotation is not retried")
		}
		// A failure at Set rolls back too.
		rot.failTest, rot.failSet = false, true
		_, err = e.svc.Rotate(e.ctx, sys, p)
		if !errors.As(err, &re) || re.Step != "set" {
			t.Fatalf("set failure = %v", err)
		}
		if rot.live != "gen-2" {
			t.Fatalf("live after set failure = %q", rot.live)
		}
		rot.failSet = false
		e.clock.add(10 * time.Minute) // past RetryAfter

		// Resume: a run interrupted after its pending version was written
		// (here: written by hand, as the crashed run would have) is
		// completed with the same value, not a new one.
		_, pv, err := e.svc.Put(e.ctx, sys, "", "db-password", []byte("half-done"), secrets.PutOptions{Stage: secrets.StagePending})
		must(t, err)
		if due, _ := e.svc.Due(e.ctx, p); !due {
			t.Fatal("a pending version does not make the policy due")
		}
		gen := rot.generated
		v, err = e.svc.Rotate(e.ctx, sys, p)
		must(t, err)
		if v != pv || rot.generated != gen || rot.live != "half-done" || e.get("", "db-password", secrets.Selector{}) != "half-done" {
			t.Fatalf("resume: v%d (pending v%d), generated %d→%d, live %q", v, pv, gen, rot.generated, rot.live)
		}
		// And running it again is harmless: nothing pending, not due.
		if due, _ := e.svc.Due(e.ctx, p); due {
			t.Fatal("due after the resumed rotation")
		}

		// Status for SEC-2.
		s, err := e.svc.PolicyStatus(e.ctx, p, time.Minute)
		must(t, err)
		if s.Overdue || s.State.Status != "ok" || s.LastRotated.IsZero() {
			t.Fatalf("status = %+v", s)
		}
		e.clock.add(2 * time.Hour)
		s, err = e.svc.PolicyStatus(e.ctx, p, time.Minute)
		must(t, err)
		if !s.Overdue {
			t.Fatalf("status after 2 intervals = %+v", s)
		}
	})
}

func TestWorkspaceScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		// The operator's secret and an unknown workspace's do not mix; a
		// workspace that does not exist cannot hold secrets.
		_, _, err := e.svc.Put(e.ctx, op, "", "shared", []byte("operator"), secrets.PutOptions{})
		must(t, err)
		_, _, err = e.svc.Put(e.ctx, op, "no-such-workspace", "shared", []byte("x"), secrets.PutOptions{})
		if err == nil {
			t.Fatal("a secret was written into a workspace that does not exist")
		}
		_, err = e.svc.Get(e.ctx, op, "no-such-workspace", "shared", secrets.Selector{})
		wantCode(t, err, fault.NotFound, "secret_not_found")
	})
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"db", "a.b-c_d", "", "-x", "a/b", "ü", "a b", "..", "x\x00", string(make([]byte, 200))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !secrets.ValidName(s) {
			return
		}
		if len(s) == 0 || len(s) > secrets.MaxNameLen {
			t.Fatalf("accepted length %d", len(s))
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '/' || c < '-' || c > 'z' || c == '%' || c == '?' || c == '#' {
				t.Fatalf("accepted %q", s)
			}
		}
		if s[0] == '.' || s[0] == '-' || s[0] == '_' {
			t.Fatalf("accepted leading punctuation %q", s)
		}
	})
}
