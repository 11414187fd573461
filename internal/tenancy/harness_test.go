package tenancy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"regexp"
	"slices"
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
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/vault"
)

// The service tests run the real tenancy Service over the real store
// (SQLite and PostgreSQL through storetest.Each, PostgreSQL with row-level
// security), with a real identity Service (tiny argon2id parameters, the
// real password policy, a real keyring) and the real audit log. Only the
// clock and the mail transport are doubles.

var start = time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC)

var fastParams = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const goodPW = "correct horse battery staple"

// clock only moves when told to; Now is lock-free for the parallel benchmark.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

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

var linkRE = regexp.MustCompile(`https://rampart\.test(/[a-z/-]+)\?token=([A-Za-z0-9_-]+)`)

// linkToken returns the token of the single link in msg, checking its path.
func linkToken(t testing.TB, msg rmail.Message, path string) string {
	t.Helper()
	m := linkRE.FindAllStringSubmatch(msg.Text, -1)
	if len(m) != 1 || m[0][1] != path {
		t.Fatalf("mail %q: want one link to %s, got %q", msg.Kind, path, msg.Text)
	}
	return m[0][2]
}

var testPolicy = sync.OnceValues(func() (*password.Policy, error) { return password.NewPolicy(0, 0) })

func identityConfig() identity.Config {
	return identity.Config{
		PublicURL: "https://rampart.test/", IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour,
		RotateEvery: 15 * time.Minute, RotateGrace: time.Minute, PendingMFATTL: 5 * time.Minute,
		ResetTTL: time.Hour, VerifyTTL: 24 * time.Hour, SessionCacheTTL: 10 * time.Second, MFAIssuer: "Rampart",
		Throttle: identity.ThrottleConfig{
			AccountFreeFailures: 3, AccountLockAfter: 6, AccountLockDuration: 15 * time.Minute, IPFreeFailures: 20,
			BaseDelay: time.Second, MaxDelay: time.Minute, StuffingAccounts: 5, StuffingWindow: 10 * time.Minute, StuffingBlock: time.Hour,
		},
	}
}

func tenancyConfig() tenancy.Config {
	return tenancy.Config{PublicURL: "https://rampart.test/", DecisionCacheTTL: 2 * time.Second}
}

type env struct {
	t         testing.TB
	ctx       context.Context
	requestID string
	st        *store.Store
	audit     *audit.MerkleLog
	id        *identity.Service
	svc       *tenancy.Service
	cfg       tenancy.Config
	clock     *clock
	mail      *mailbox

	mu      sync.Mutex
	alerts  []audit.Event
	deleted []string
}

var testMeta = audit.Meta{IP: "198.51.100.7", UserAgent: "tenancy-test/1.0"}

func newEnv(t testing.TB, st *store.Store, opts ...func(*tenancy.Config)) *env {
	t.Helper()
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
	e := &env{t: t, ctx: audit.WithMeta(context.Background(), meta), requestID: meta.RequestID, st: st, clock: newClock(), mail: &mailbox{}}
	e.audit = newAuditLog(t, st, e.clock.Now)
	e.id = identity.New(identityConfig(), identity.Deps{
		Store: st, Hasher: password.NewHasher(password.HasherConfig{Params: fastParams}), Policy: policy,
		Mailer: e.mail, Sealer: ring, Audit: e.audit, Now: e.clock.Now,
	})
	t.Cleanup(e.id.Wait)
	e.cfg = tenancyConfig()
	for _, o := range opts {
		o(&e.cfg)
	}
	e.svc = e.service()
	return e
}

// service returns another tenancy Service over the same store and clock:
// another node of the cluster.
func (e *env) service() *tenancy.Service {
	return tenancy.New(e.cfg, tenancy.Deps{
		Store: e.st, Accounts: e.id, Mailer: e.mail, Audit: e.audit,
		OnWorkspaceDelete: func(_ context.Context, ws string) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.deleted = append(e.deleted, ws)
			return nil
		},
		Alert: func(_ context.Context, ev audit.Event) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.alerts = append(e.alerts, ev)
		},
		Log: slog.New(slog.DiscardHandler),
		Now: e.clock.Now,
	})
}

// signUp registers and verifies an account.
func (e *env) signUp(email string) *identity.User {
	e.t.Helper()
	if err := e.id.SignUp(e.ctx, email, goodPW); err != nil {
		e.t.Fatalf("SignUp(%s): %v", email, err)
	}
	msgs := e.mail.find(email, rmail.KindVerifyEmail)
	if len(msgs) == 0 {
		e.t.Fatalf("SignUp(%s): no verification mail", email)
	}
	if err := e.id.VerifyEmail(e.ctx, linkToken(e.t, msgs[len(msgs)-1], "/verify-email")); err != nil {
		e.t.Fatalf("VerifyEmail(%s): %v", email, err)
	}
	u, err := e.st.UserByEmail(e.ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// person is a signed-up user with principals for their sessions.
type person struct {
	*identity.User
	e *env
}

func (e *env) person(email string) person { return person{e.signUp(email), e} }

// mfa is a session that passed a second factor just now.
func (p person) mfa() tenancy.Principal {
	return tenancy.Principal{UserID: p.ID, SessionID: "s-" + p.ID, MFA: true, MFAAt: p.e.clock.Now()}
}

// plain is a password-only session.
func (p person) plain() tenancy.Principal {
	return tenancy.Principal{UserID: p.ID, SessionID: "s-" + p.ID}
}

// workspace creates a workspace owned by admin.
func (e *env) workspace(admin person, name string) string {
	e.t.Helper()
	w, err := e.svc.CreateWorkspace(e.ctx, admin.plain(), name)
	if err != nil {
		e.t.Fatalf("CreateWorkspace: %v", err)
	}
	return w.ID
}

// join adds p to ws with roles through an invitation, as a real user would.
func (e *env) join(admin person, ws string, p person, roles ...string) {
	e.t.Helper()
	if _, err := e.svc.Invite(e.ctx, admin.mfa(), ws, p.Email, roles[0]); err != nil {
		e.t.Fatalf("Invite: %v", err)
	}
	msgs := e.mail.find(p.Email, tenancy.KindInvitation)
	if _, err := e.svc.AcceptInvitation(e.ctx, p.plain(), linkToken(e.t, msgs[len(msgs)-1], "/invitations/accept")); err != nil {
		e.t.Fatalf("AcceptInvitation: %v", err)
	}
	if len(roles) > 1 {
		if err := e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, p.ID, roles); err != nil {
			e.t.Fatalf("SetMemberRoles: %v", err)
		}
	}
}

func (e *env) check(p tenancy.Principal, ws, perm string) tenancy.Decision {
	return e.svc.Check(e.ctx, p, ws, perm)
}

// wantDecision fails unless Check answers reason ("allowed" = allowed).
func (e *env) wantDecision(p tenancy.Principal, ws, perm, reason string) {
	e.t.Helper()
	d := e.check(p, ws, perm)
	if d.Reason != reason || d.Allowed != (reason == tenancy.ReasonAllowed) || d.Permission != perm {
		e.t.Fatalf("Check(%s) = %+v, want %s", perm, d, reason)
	}
}

// events returns this env's audit events of an action, oldest first.
func (e *env) events(action string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	var after int64
	for {
		evs, err := e.audit.Query(e.ctx, audit.Filter{Action: action, AfterID: after, Limit: store.MaxAuditLimit})
		if err != nil {
			e.t.Fatalf("audit query: %v", err)
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

// wantEvent fails unless an event of action in ws by actor exists.
func (e *env) wantEvent(action, ws, actorType, actorID string) audit.Event {
	e.t.Helper()
	evs := e.events(action)
	for _, ev := range slices.Backward(evs) {
		if ev.Workspace == ws && ev.ActorType == actorType && ev.ActorID == actorID {
			return ev
		}
	}
	e.t.Fatalf("no %s event in %s by %s:%s (have %d of that action)", action, ws, actorType, actorID, len(evs))
	return audit.Event{}
}

func wantFault(t testing.TB, err error, kind fault.Kind, code string) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want fault %s/%s", err, kind, code)
	}
	if fe.Kind != kind || fe.Code != code {
		t.Fatalf("got fault %s/%s (%v), want %s/%s", fe.Kind, fe.Code, err, kind, code)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
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
