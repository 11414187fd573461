package signing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth/signing"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

// The tests run the Manager over the real store (SQLite and PostgreSQL),
// a real keyring sealer and the real audit log. Only the clock is a
// double, so rotation schedules can be crossed without sleeping.

var start = time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type env struct {
	t      testing.TB
	ctx    context.Context
	st     *store.Store
	clock  *clock
	sealer vault.Sealer
	log    *audit.MerkleLog
	cfg    signing.Config
}

var testCfg = signing.Config{
	RotateEvery:  30 * 24 * time.Hour,
	PublishAhead: time.Hour,
	MaxTokenTTL:  15 * time.Minute,
	ReloadEvery:  time.Minute,
}

func newEnv(t testing.TB, st *store.Store) *env {
	t.Helper()
	ring := vault.NewKeyring(nil)
	key := make([]byte, vault.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	if err := ring.Add(1, key); err != nil {
		t.Fatal(err)
	}
	if err := ring.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), st: st, clock: newClock(), sealer: vault.KeyringSealer{Keyring: ring}, cfg: testCfg}
	e.log = newAuditLog(t, st, e.clock.Now)
	return e
}

func sqliteEnv(t testing.TB) *env { return newEnv(t, storetest.Open(t, store.EngineSQLite)) }

// manager starts a node on the env's store (several may share it).
func (e *env) manager(opts ...func(*signing.Config)) *signing.Manager {
	e.t.Helper()
	cfg := e.cfg
	for _, o := range opts {
		o(&cfg)
	}
	m, err := signing.New(e.ctx, cfg, signing.Deps{Store: e.st, Sealer: e.sealer, Audit: e.log, Now: e.clock.Now, Rand: rand.Reader})
	if err != nil {
		e.t.Fatalf("signing.New: %v", err)
	}
	return m
}

// events returns the audit events of action, oldest first.
func (e *env) events(action string) []audit.Event {
	e.t.Helper()
	evs, err := e.log.Query(e.ctx, audit.Filter{Action: action, AfterID: -1, Limit: 1000})
	if err != nil {
		e.t.Fatalf("audit query: %v", err)
	}
	return evs
}

func newAuditLog(t testing.TB, st *store.Store, now func() time.Time) *audit.MerkleLog {
	t.Helper()
	ring := vault.NewKeyring(nil)
	if err := ring.Add(1, bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := ring.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	l, err := audit.NewMerkleLog(audit.LogConfig{Origin: "test.example/audit"}, audit.LogDeps{
		Store: st, Sealer: ring, IndexKey: bytes.Repeat([]byte{8}, 32), SignerKey: bytes.Repeat([]byte{9}, 32), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Start(context.Background())
	t.Cleanup(func() { l.Close() })
	return l
}

// claims is an access token's claim set as the tests use it.
type claims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud []string `json:"aud"`
	Exp int64    `json:"exp"`
	Iat int64    `json:"iat"`
	Jti string   `json:"jti"`
}

func (e *env) claims() claims {
	now := e.clock.Now()
	return claims{Iss: "https://rampart.test", Sub: "user-1", Aud: []string{"https://rampart.test"},
		Exp: now.Add(5 * time.Minute).Unix(), Iat: now.Unix(), Jti: rand.Text()}
}

func sign(t testing.TB, m *signing.Manager, typ string, c any) string {
	t.Helper()
	tok, err := m.Sign(typ, c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

// wantInvalid fails unless err is the token refusal.
func wantInvalid(t testing.TB, err error) {
	t.Helper()
	fe := fault.As(err)
	if fe == nil || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" {
		t.Fatalf("want invalid_token, got %v", err)
	}
}
