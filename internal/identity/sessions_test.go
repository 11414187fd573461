package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Run("authenticate", func(t *testing.T) {
			e := newEnv(t, st)
			u := e.signUp("auth@example.com", goodPW)
			res := e.signIn("auth@example.com", goodPW, "192.0.2.1")
			for range 3 { // from the store, then from the cache
				a := e.auth(res.Token)
				if a.Session.ID != res.Session.ID || a.Session.UserID != u.ID || a.NewToken != "" {
					t.Fatalf("Auth = %+v", a)
				}
			}
			for _, bad := range []string{"", "nope", strings.Repeat("a", 129), res.Token + "x", strings.ToUpper(res.Token)} {
				e.wantUnauthenticated(bad)
			}
		})

		t.Run("idle timeout", func(t *testing.T) {
			e := newEnv(t, st, func(c *identity.Config) { c.RotateEvery = 0 })
			e.signUp("idle@example.com", goodPW)
			res := e.signIn("idle@example.com", goodPW, "192.0.2.1")
			// Activity keeps the session alive well past one idle timeout…
			for range 4 {
				e.clock.Advance(e.cfg.IdleTimeout - time.Minute)
				e.auth(res.Token)
			}
			// …and inactivity ends it.
			e.clock.Advance(e.cfg.IdleTimeout)
			e.wantUnauthenticated(res.Token)
			if list, _ := e.svc.Sessions(e.ctx, res.Session.UserID); len(list) != 0 {
				t.Errorf("idle session not deleted: %d left", len(list))
			}
		})

		t.Run("absolute timeout", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("absolute@example.com", goodPW)
			res := e.signIn("absolute@example.com", goodPW, "192.0.2.1")
			tok, step := res.Token, 20*time.Minute
			end := e.clock.Now().Add(e.cfg.AbsoluteTimeout)
			rotations := 0
			for e.clock.Now().Add(step).Before(end) {
				e.clock.Advance(step)
				if a := e.auth(tok); a.NewToken != "" {
					tok, rotations = a.NewToken, rotations+1
				}
			}
			if rotations == 0 {
				t.Error("an active session was never rotated")
			}
			e.clock.Advance(end.Sub(e.clock.Now()) - time.Second)
			if a := e.auth(tok); a.NewToken != "" {
				tok = a.NewToken
			}
			e.clock.Advance(time.Second)
			e.wantUnauthenticated(tok)
		})

		t.Run("rotation", func(t *testing.T) {
			for _, tc := range []struct {
				name     string
				cacheTTL time.Duration
			}{
				{"cache shorter than grace", 10 * time.Second},
				{"cache longer than grace", 5 * time.Minute},
				{"no cache", 0},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, st, func(c *identity.Config) { c.SessionCacheTTL = tc.cacheTTL })
					email := strings.ReplaceAll(tc.name, " ", "-") + "@example.com"
					e.signUp(email, goodPW)
					// rotated signs in, uses the session until just before
					// RotateEvery, then once more to get it rotated.
					rotated := func() (id, old, fresh string) {
						t.Helper()
						res := e.signIn(email, goodPW, "192.0.2.1")
						e.clock.Advance(e.cfg.RotateEvery - 2*time.Minute)
						if a := e.auth(res.Token); a.NewToken != "" {
							t.Fatal("rotated before RotateEvery")
						}
						e.clock.Advance(2 * time.Minute)
						a := e.auth(res.Token)
						if a.NewToken == "" || a.NewToken == res.Token {
							t.Fatalf("no rotation after RotateEvery: %+v", a)
						}
						return res.Session.ID, res.Token, a.NewToken
					}

					// A request in flight with the old token is accepted during
					// the grace period, and is not rotated again.
					id, old, fresh := rotated()
					e.clock.Advance(e.cfg.RotateGrace - time.Second)
					if a := e.auth(old); a.NewToken != "" || a.Session.ID != id {
						t.Fatalf("old token within grace: %+v", a)
					}
					e.auth(fresh)
					e.clock.Advance(time.Second)
					e.wantUnauthenticated(old)
					if a := e.auth(fresh); a.Session.ID != id || a.NewToken != "" {
						t.Fatalf("new token: %+v", a)
					}

					// Unused during the grace period, the old token is refused
					// after it, whatever the cache remembers.
					id, old, fresh = rotated()
					e.clock.Advance(e.cfg.RotateGrace)
					e.wantUnauthenticated(old)
					if a := e.auth(fresh); a.Session.ID != id {
						t.Fatalf("new token: %+v", a)
					}
				})
			}
		})

		t.Run("explicit rotate", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("rotate@example.com", goodPW)
			res := e.signIn("rotate@example.com", goodPW, "192.0.2.1")
			nt, err := e.svc.Rotate(e.ctx, res.Session)
			if err != nil || nt == "" || nt == res.Token {
				t.Fatalf("Rotate = %q, %v", nt, err)
			}
			e.auth(nt)
			// The caller's view of the session is stale now: a second rotation
			// from it loses the compare-and-swap.
			_, err = e.svc.Rotate(e.ctx, res.Session)
			wantFault(t, err, fault.Conflict, "session_changed")
		})

		t.Run("sign out", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("signout@example.com", goodPW)
			res := e.signIn("signout@example.com", goodPW, "192.0.2.1")
			keep := e.signIn("signout@example.com", goodPW, "192.0.2.1")
			e.auth(res.Token) // warm the cache
			if err := e.svc.SignOut(e.ctx, res.Token); err != nil {
				t.Fatal(err)
			}
			e.wantUnauthenticated(res.Token)
			e.auth(keep.Token)
			for _, tok := range []string{res.Token, "", "unknown"} {
				if err := e.svc.SignOut(e.ctx, tok); err != nil {
					t.Errorf("SignOut(%q) = %v, want nil", tok, err)
				}
			}
			if n := e.countEvents("auth.signout", audit.Success); n != 1 {
				t.Errorf("auth.signout events = %d, want 1", n)
			}
		})

		t.Run("revoke", func(t *testing.T) {
			e := newEnv(t, st)
			alice := e.signUp("alice@example.com", goodPW)
			bob := e.signUp("bob@example.com", goodPW)
			a1 := e.signIn("alice@example.com", goodPW, "192.0.2.1")
			a2 := e.signIn("alice@example.com", goodPW, "192.0.2.2")
			b1 := e.signIn("bob@example.com", goodPW, "192.0.2.3")
			for _, tok := range []string{a1.Token, a2.Token, b1.Token} {
				e.auth(tok) // warm the cache
			}

			list, err := e.svc.Sessions(e.ctx, alice.ID)
			if err != nil || len(list) != 2 {
				t.Fatalf("alice's sessions = %d (%v), want 2", len(list), err)
			}
			for _, s := range list {
				if s.UserID != alice.ID {
					t.Errorf("listed someone else's session %+v", s)
				}
			}

			// Bob cannot revoke (or learn about) Alice's session.
			wantFault(t, e.svc.RevokeSession(e.ctx, bob.ID, a1.Session.ID), fault.NotFound, "session_not_found")
			wantFault(t, e.svc.RevokeSession(e.ctx, bob.ID, "no-such-session"), fault.NotFound, "session_not_found")
			e.auth(a1.Token)

			// Revocation takes effect at once, cache or not.
			if err := e.svc.RevokeSession(e.ctx, alice.ID, a1.Session.ID); err != nil {
				t.Fatal(err)
			}
			e.wantUnauthenticated(a1.Token)
			e.auth(a2.Token)
			wantFault(t, e.svc.RevokeSession(e.ctx, alice.ID, a1.Session.ID), fault.NotFound, "session_not_found")
			if n := e.countEvents("session.revoke", audit.Success); n != 1 {
				t.Errorf("session.revoke events = %d, want 1", n)
			}

			a3 := e.signIn("alice@example.com", goodPW, "192.0.2.4")
			e.auth(a3.Token)
			n, err := e.svc.RevokeAllSessions(e.ctx, alice.ID, a3.Session.ID)
			if err != nil || n != 1 {
				t.Fatalf("RevokeAllSessions(keep) = %d, %v; want 1", n, err)
			}
			e.wantUnauthenticated(a2.Token)
			e.auth(a3.Token)
			n, err = e.svc.RevokeAllSessions(e.ctx, alice.ID, "")
			if err != nil || n != 1 {
				t.Fatalf("RevokeAllSessions(all) = %d, %v; want 1", n, err)
			}
			e.wantUnauthenticated(a3.Token)
			e.auth(b1.Token) // Bob is untouched
		})

		t.Run("revocation on another node is seen within the cache TTL", func(t *testing.T) {
			e := newEnv(t, st)
			u := e.signUp("cluster@example.com", goodPW)
			res := e.signIn("cluster@example.com", goodPW, "192.0.2.1")
			e.auth(res.Token) // cached on this node
			other := e.service(e.hasher)
			if _, err := other.RevokeAllSessions(e.ctx, u.ID, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Authenticate(e.ctx, res.Token); !fault.Is(err, fault.Unauthenticated) {
				t.Fatalf("revoking node still accepts the token: %v", err)
			}
			e.auth(res.Token) // the documented window: served from this node's cache
			e.clock.Advance(e.cfg.SessionCacheTTL + time.Second)
			e.wantUnauthenticated(res.Token)
		})

		t.Run("revoked on another node while a write is due", func(t *testing.T) {
			// The cached copy is fresh but the session is gone from the store
			// when Authenticate goes to touch or rotate it: the answer must
			// still be "sign in", not a storage error.
			for _, tc := range []struct {
				name  string
				setup func(e *env)
			}{
				{"touch", func(e *env) { e.clock.Advance(time.Minute - time.Second) }},
				{"rotate", func(e *env) {
					e.clock.Advance(e.cfg.RotateEvery - 2*time.Second)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, st)
					u := e.signUp("gone-"+tc.name+"@example.com", goodPW)
					res := e.signIn("gone-"+tc.name+"@example.com", goodPW, "192.0.2.1")
					tc.setup(e)
					if a := e.auth(res.Token); a.NewToken != "" { // cached now, no write yet
						t.Fatal("test premise: no rotation yet")
					}
					if _, err := e.service(e.hasher).RevokeAllSessions(e.ctx, u.ID, ""); err != nil {
						t.Fatal(err)
					}
					e.clock.Advance(2 * time.Second) // still cached; the write is due
					if _, err := e.svc.Authenticate(e.ctx, res.Token); err != nil && !fault.Is(err, fault.Unauthenticated) {
						t.Fatalf("Authenticate = %v, want success from the cache or unauthenticated", err)
					}
					e.clock.Advance(e.cfg.SessionCacheTTL)
					e.wantUnauthenticated(res.Token)
				})
			}
		})

		t.Run("sweep", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("sweep@example.com", goodPW)
			e.signIn("sweep@example.com", goodPW, "192.0.2.1")
			e.clock.Advance(e.cfg.AbsoluteTimeout)
			n, err := e.svc.SweepExpired(e.ctx)
			if err != nil || n < 1 {
				t.Fatalf("SweepExpired = %d, %v; want >= 1", n, err)
			}
		})
	})
}
