package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/password"
	rmail "github.com/rampartsec/rampart/internal/mail"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/vault"
)

// The service tests run the real Service over the real store (SQLite and
// PostgreSQL through storetest.Each), the real argon2id hasher (with tiny
// parameters so a test run is not dominated by hashing), the real password
// policy and common-password list, a real keyring and the real audit log.
// Only the clock and the mail transport are doubles: the clock so that
// timeouts and backoff can be crossed without sleeping, the mailer so that
// tests can read the links a user would get.

// start is the fake clock's epoch: whole seconds (the store keeps
// microseconds) and on a TOTP step boundary.
var start = time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC)

// fastParams keep argon2id cheap in tests; the production cost is tested in
// package password.
var fastParams = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// clock is a fake time source that only moves when told to. Now is lock-free
// so that it does not serialise the parallel benchmark.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// mailbox records every message the service sends.
type mailbox struct {
	mu   sync.Mutex
	msgs []rmail.Message
}

func (m *mailbox) Send(_ context.Context, msg rmail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

// find returns the messages to the recipient of the kind ("" = any kind).
func (m *mailbox) find(to, kind string) []rmail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []rmail.Message
	for _, msg := range m.msgs {
		if (to == "" || msg.To == to) && (kind == "" || msg.Kind == kind) {
			out = append(out, msg)
		}
	}
	return out
}

func (m *mailbox) all() []rmail.Message { return m.find("", "") }

var linkRE = regexp.MustCompile(`(https://rampart\.test/[a-z/-]+)\?token=([A-Za-z0-9_-]+)`)

// linkToken returns the token in the single link of msg, checking that the
// link points at path.
func linkToken(t testing.TB, msg rmail.Message, path string) string {
	t.Helper()
	m := linkRE.FindAllStringSubmatch(msg.Text, -1)
	if len(m) != 1 {
		t.Fatalf("mail %q: want exactly one link, found %d in %q", msg.Kind, len(m), msg.Text)
	}
	if m[0][1] != "https://rampart.test"+path {
		t.Fatalf("mail %q: link goes to %s, want %s", msg.Kind, m[0][1], path)
	}
	return m[0][2]
}

// lockedBuffer collects log output from concurrent goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testPolicy builds the policy once per test binary: it is read-only after
// construction, and loading the common-password list is the slowest part of
// setting up an env.
var testPolicy = sync.OnceValues(func() (*password.Policy, error) { return password.NewPolicy(0, 0) })

func testConfig() identity.Config {
	return identity.Config{
		PublicURL:       "https://rampart.test/",
		IdleTimeout:     30 * time.Minute,
		AbsoluteTimeout: 12 * time.Hour,
		RotateEvery:     15 * time.Minute,
		RotateGrace:     time.Minute,
		PendingMFATTL:   5 * time.Minute,
		ResetTTL:        time.Hour,
		VerifyTTL:       24 * time.Hour,
		SessionCacheTTL: 10 * time.Second,
		MFAIssuer:       "Rampart",
		Throttle: identity.ThrottleConfig{
			AccountFreeFailures: 3,
			AccountLockAfter:    6,
			AccountLockDuration: 15 * time.Minute,
			IPFreeFailures:      20,
			BaseDelay:           time.Second,
			MaxDelay:            time.Minute,
			StuffingAccounts:    5,
			StuffingWindow:      10 * time.Minute,
			StuffingBlock:       time.Hour,
		},
	}
}

// env is one Service with its collaborators.
type env struct {
	t         testing.TB
	ctx       context.Context
	requestID string // stamped on every audit event this env causes
	cfg       identity.Config
	st        *store.Store
	svc       *identity.Service
	clock     *clock
	mail      *mailbox
	logs      *lockedBuffer
	ring      *vault.Keyring
	audit     *audit.MerkleLog
	hasher    *password.Hasher
	policy    *password.Policy
}

// testMeta is the request the tests pretend to serve; audit events carry it.
// Each env sets its own RequestID, which scopes its audit events when
// several envs share one store.
var testMeta = audit.Meta{IP: "198.51.100.7", UserAgent: "identity-test/1.0"}

func newEnv(t testing.TB, st *store.Store, opts ...func(*identity.Config)) *env {
	t.Helper()
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	policy, err := testPolicy()
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, vault.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	ring := vault.NewKeyring(nil)
	if err := ring.Add(1, key); err != nil {
		t.Fatal(err)
	}
	if err := ring.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	meta := testMeta
	meta.RequestID = "req-" + rand.Text()
	e := &env{
		t: t, ctx: audit.WithMeta(context.Background(), meta), requestID: meta.RequestID, cfg: cfg, st: st,
		clock: newClock(), mail: &mailbox{}, logs: &lockedBuffer{}, ring: ring,
		hasher: password.NewHasher(password.HasherConfig{Params: fastParams}),
		policy: policy,
	}
	e.audit = newAuditLog(t, st, e.clock.Now)
	e.svc = e.service(e.hasher)
	t.Cleanup(e.svc.Wait)
	return e
}

// service returns another Service over the same store, clock, mailbox and
// keyring (another node, or the same node after a configuration change).
func (e *env) service(h *password.Hasher) *identity.Service {
	return identity.New(e.cfg, identity.Deps{
		Store: e.st, Hasher: h, Policy: e.policy, Mailer: e.mail, Sealer: e.ring,
		Audit: e.audit,
		Log:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:   e.clock.Now,
	})
}

// signUp registers and verifies an account and returns its user.
func (e *env) signUp(email, pw string) *identity.User {
	e.t.Helper()
	if err := e.svc.SignUp(e.ctx, email, pw); err != nil {
		e.t.Fatalf("SignUp(%s): %v", email, err)
	}
	msgs := e.mail.find(email, rmail.KindVerifyEmail)
	if len(msgs) == 0 {
		e.t.Fatalf("SignUp(%s): no verification mail", email)
	}
	if err := e.svc.VerifyEmail(e.ctx, linkToken(e.t, msgs[len(msgs)-1], "/verify-email")); err != nil {
		e.t.Fatalf("VerifyEmail(%s): %v", email, err)
	}
	return e.user(email)
}

func (e *env) user(email string) *identity.User {
	e.t.Helper()
	u, err := e.st.UserByEmail(e.ctx, email)
	if err != nil {
		e.t.Fatalf("UserByEmail(%s): %v", email, err)
	}
	return u
}

// signIn signs in with the password and fails the test on any error.
func (e *env) signIn(email, pw, ip string) identity.SignInResult {
	e.t.Helper()
	res, err := e.svc.SignIn(e.ctx, email, pw, identity.Client{IP: ip})
	if err != nil {
		e.t.Fatalf("SignIn(%s from %s): %v", email, ip, err)
	}
	if res.Token == "" {
		e.t.Fatalf("SignIn(%s): empty token", email)
	}
	return res
}

// auth authenticates token and fails the test on any error.
func (e *env) auth(token string) identity.Auth {
	e.t.Helper()
	a, err := e.svc.Authenticate(e.ctx, token)
	if err != nil {
		e.t.Fatalf("Authenticate: %v", err)
	}
	return a
}

// events returns this env's audit events of an action ("" = all), oldest
// first.
func (e *env) events(action string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	var after int64
	for {
		evs, err := e.audit.Query(e.ctx, audit.Filter{Action: action, AfterID: after, Limit: store.MaxAuditLimit})
		if err != nil {
			e.t.Fatalf("audit query (%s): %v", action, err)
		}
		for _, ev := range evs {
			if ev.RequestID == e.requestID {
				out = append(out, ev)
			}
		}
		if len(evs) < store.MaxAuditLimit {
			return out
		}
		after = evs[len(evs)-1].ID
	}
}

// countEvents counts the events of action with outcome.
func (e *env) countEvents(action string, outcome audit.Outcome) int {
	e.t.Helper()
	n := 0
	for _, ev := range e.events(action) {
		if ev.Outcome == outcome {
			n++
		}
	}
	return n
}

// wantFault fails the test unless err is a fault of kind with code.
func wantFault(t testing.TB, err error, kind fault.Kind, code string) *fault.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %s/%s", kind, code)
	}
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v (%T), want a fault %s/%s", err, err, kind, code)
	}
	if fe.Kind != kind || fe.Code != code {
		t.Fatalf("got fault %s/%s (%v), want %s/%s", fe.Kind, fe.Code, err, kind, code)
	}
	return fe
}

// wantUnauthenticated checks that token no longer authenticates.
func (e *env) wantUnauthenticated(token string) {
	e.t.Helper()
	_, err := e.svc.Authenticate(e.ctx, token)
	wantFault(e.t, err, fault.Unauthenticated, "unauthenticated")
}

// emailN returns distinct addresses for loops.
func emailN(prefix string, i int) string { return fmt.Sprintf("%s%d@example.com", prefix, i) }

// noSecretIn fails the test if any secret occurs in text.
func noSecretIn(t testing.TB, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a secret (%q…)", where, s[:min(len(s), 4)])
		}
	}
}

// newAuditLog is the real tamper-evident audit log over the test store,
// with fixed test keys; it closes before the store does.
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
