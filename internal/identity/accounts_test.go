package identity_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/password"
	rmail "github.com/rampartsec/rampart/internal/mail"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

const goodPW = "correct horse battery staple"

func TestSignUp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Run("new account gets a verification mail", func(t *testing.T) {
			e := newEnv(t, st)
			if err := e.svc.SignUp(e.ctx, "  New.User@Example.COM ", goodPW); err != nil {
				t.Fatal(err)
			}
			u := e.user("new.user@example.com") // stored normalized
			if !u.EmailVerifiedAt.IsZero() {
				t.Error("a new account must not start verified")
			}
			if !password.IsArgon2id(u.PasswordHash) || strings.Contains(u.PasswordHash, goodPW) {
				t.Errorf("stored password is not an argon2id hash: %q", u.PasswordHash)
			}
			msgs := e.mail.all()
			if len(msgs) != 1 || msgs[0].Kind != rmail.KindVerifyEmail || msgs[0].To != "new.user@example.com" {
				t.Fatalf("mail = %+v, want one verify_email to the normalized address", msgs)
			}
			linkToken(t, msgs[0], "/verify-email")
			if n := e.countEvents("auth.signup", audit.Success); n != 1 {
				t.Errorf("auth.signup success events = %d, want 1", n)
			}
		})

		t.Run("existing email answers alike and mails the owner", func(t *testing.T) {
			e := newEnv(t, st)
			orig := e.signUp("taken@example.com", goodPW)
			before := len(e.mail.all())
			err := e.svc.SignUp(e.ctx, "TAKEN@example.com", "a different long passphrase")
			if err != nil {
				t.Fatalf("SignUp(existing) = %v, want nil (the same answer as for a new email)", err)
			}
			msgs := e.mail.all()[before:]
			if len(msgs) != 1 || msgs[0].Kind != rmail.KindSignupExisting || msgs[0].To != "taken@example.com" {
				t.Fatalf("mail = %+v, want one signup_existing notice", msgs)
			}
			if strings.Contains(msgs[0].Text, "?token=") {
				t.Error("the notice must not carry a token")
			}
			after := e.user("taken@example.com")
			if after.ID != orig.ID || after.PasswordHash != orig.PasswordHash {
				t.Fatal("sign-up with a taken email changed the existing account")
			}
			if _, err := e.svc.SignIn(e.ctx, "taken@example.com", "a different long passphrase", identity.Client{IP: "192.0.2.1"}); err == nil {
				t.Fatal("the second sign-up's password must not work")
			}
			e.signIn("taken@example.com", goodPW, "192.0.2.1")
			if n := e.countEvents("auth.signup", audit.Failure); n != 1 {
				t.Errorf("auth.signup failure events = %d, want 1", n)
			}
		})

		t.Run("invalid email", func(t *testing.T) {
			e := newEnv(t, st)
			for _, email := range []string{"", "   ", "no-at-sign", "a@b", "Alice <alice@example.com>", "alice@example.com, bob@example.com",
				"alice@@example.com", "@example.com", strings.Repeat("a", 250) + "@example.com"} {
				err := e.svc.SignUp(e.ctx, email, goodPW)
				wantFault(t, err, fault.Invalid, "email_invalid")
			}
			if n := len(e.mail.all()); n != 0 {
				t.Errorf("%d mails sent for invalid addresses", n)
			}
		})

		t.Run("password policy", func(t *testing.T) {
			e := newEnv(t, st)
			if !e.policy.IsCommon("password") || !e.policy.IsCommon("qwertyuiop") {
				t.Fatal("test premise: the common list must hold these passwords")
			}
			for _, tc := range []struct {
				name, email, pw, code string
			}{
				{"short", "p1@example.com", "short1", "password_too_short"},
				{"seven", "p2@example.com", "1234567", "password_too_short"},
				{"too long", "p3@example.com", strings.Repeat("x", password.DefaultMaxLength+1), "password_too_long"},
				{"common", "p4@example.com", "password", "password_common"},
				{"common upper", "p5@example.com", "QWERTYUIOP", "password_common"},
				{"email", "alice.smith@example.com", "alice.smith@example.com", "password_contextual"},
				{"local part", "alice.smith@example.com", "Alice.Smith", "password_contextual"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					wantFault(t, e.svc.SignUp(e.ctx, tc.email, tc.pw), fault.Invalid, tc.code)
					if _, err := st.UserByEmail(e.ctx, tc.email); !fault.Is(err, fault.NotFound) {
						t.Errorf("refused sign-up created a user (err %v)", err)
					}
				})
			}
			if n := len(e.mail.all()); n != 0 {
				t.Errorf("%d mails sent for refused passwords", n)
			}
		})

		t.Run("concurrent duplicate sign-up", func(t *testing.T) {
			e := newEnv(t, st)
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { errs[i] = e.svc.SignUp(e.ctx, "race@example.com", goodPW) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("sign-up %d: %v", i, err)
				}
			}
			if got := len(e.mail.find("race@example.com", rmail.KindVerifyEmail)); got != 1 {
				t.Errorf("verify mails = %d, want 1", got)
			}
			if got := len(e.mail.find("race@example.com", rmail.KindSignupExisting)); got != n-1 {
				t.Errorf("signup_existing mails = %d, want %d", got, n-1)
			}
			if got := e.countEvents("auth.signup", audit.Success); got != 1 {
				t.Errorf("accounts created = %d, want 1", got)
			}
		})
	})
}

func TestVerifyEmail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		signUp := func(e *env, email string) string {
			t.Helper()
			if err := e.svc.SignUp(e.ctx, email, goodPW); err != nil {
				t.Fatal(err)
			}
			msgs := e.mail.find(email, rmail.KindVerifyEmail)
			return linkToken(t, msgs[len(msgs)-1], "/verify-email")
		}

		t.Run("works once", func(t *testing.T) {
			e := newEnv(t, st)
			tok := signUp(e, "once@example.com")
			e.clock.Advance(time.Hour)
			if err := e.svc.VerifyEmail(e.ctx, tok); err != nil {
				t.Fatal(err)
			}
			if got := e.user("once@example.com").EmailVerifiedAt; !got.Equal(e.clock.Now()) {
				t.Errorf("EmailVerifiedAt = %v, want %v", got, e.clock.Now())
			}
			wantFault(t, e.svc.VerifyEmail(e.ctx, tok), fault.Invalid, "token_invalid")
			if e.countEvents("auth.verify_email", audit.Success) != 1 || e.countEvents("auth.verify_email", audit.Failure) != 1 {
				t.Error("want one success and one failure auth.verify_email event")
			}
		})

		t.Run("expired", func(t *testing.T) {
			e := newEnv(t, st)
			tok := signUp(e, "late@example.com")
			e.clock.Advance(e.cfg.VerifyTTL + time.Second)
			wantFault(t, e.svc.VerifyEmail(e.ctx, tok), fault.Invalid, "token_invalid")
			if !e.user("late@example.com").EmailVerifiedAt.IsZero() {
				t.Error("an expired token verified the email")
			}
		})

		t.Run("just before expiry", func(t *testing.T) {
			e := newEnv(t, st)
			tok := signUp(e, "intime@example.com")
			e.clock.Advance(e.cfg.VerifyTTL - time.Second)
			if err := e.svc.VerifyEmail(e.ctx, tok); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("a reset token is not a verification token", func(t *testing.T) {
			e := newEnv(t, st)
			signUp(e, "kind@example.com")
			if err := e.svc.RequestReset(e.ctx, "kind@example.com"); err != nil {
				t.Fatal(err)
			}
			e.svc.Wait()
			resetTok := linkToken(t, e.mail.find("kind@example.com", rmail.KindPasswordReset)[0], "/reset/confirm")
			wantFault(t, e.svc.VerifyEmail(e.ctx, resetTok), fault.Invalid, "token_invalid")
			if !e.user("kind@example.com").EmailVerifiedAt.IsZero() {
				t.Error("a reset token verified the email")
			}
			// The refused attempt did not consume the reset token.
			if err := e.svc.ConfirmReset(e.ctx, resetTok, "another fine passphrase"); err != nil {
				t.Fatalf("reset token unusable after a wrong-kind attempt: %v", err)
			}
		})

		t.Run("malformed tokens", func(t *testing.T) {
			e := newEnv(t, st)
			for _, tok := range []string{"", "x", strings.Repeat("a", 129), "' OR 1=1 --"} {
				wantFault(t, e.svc.VerifyEmail(e.ctx, tok), fault.Invalid, "token_invalid")
			}
		})

		t.Run("resend replaces the old link", func(t *testing.T) {
			e := newEnv(t, st)
			old := signUp(e, "resend@example.com")
			u := e.user("resend@example.com")
			if err := e.svc.ResendVerification(e.ctx, u.ID); err != nil {
				t.Fatal(err)
			}
			msgs := e.mail.find("resend@example.com", rmail.KindVerifyEmail)
			if len(msgs) != 2 {
				t.Fatalf("verify mails = %d, want 2", len(msgs))
			}
			fresh := linkToken(t, msgs[1], "/verify-email")
			wantFault(t, e.svc.VerifyEmail(e.ctx, old), fault.Invalid, "token_invalid")
			if err := e.svc.VerifyEmail(e.ctx, fresh); err != nil {
				t.Fatal(err)
			}
			wantFault(t, e.svc.ResendVerification(e.ctx, u.ID), fault.Conflict, "email_already_verified")
		})
	})
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Run("success stores only the token hash", func(t *testing.T) {
			e := newEnv(t, st)
			u := e.signUp("ok@example.com", goodPW)
			res := e.signIn(" OK@Example.com ", goodPW, "192.0.2.1")
			if res.MFARequired || res.PasswordChangeRequired {
				t.Errorf("res = %+v, want a plain full session", res)
			}
			if res.Session.UserID != u.ID || res.Session.Pending || res.Session.MFA {
				t.Errorf("session = %+v", res.Session)
			}
			if len(res.Token) < 43 {
				t.Errorf("token %d chars, want >= 43 (256 bits)", len(res.Token))
			}
			sessions, err := e.svc.Sessions(e.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(sessions) != 1 {
				t.Fatalf("sessions = %d, want 1", len(sessions))
			}
			s := sessions[0]
			if !bytes.Equal(s.TokenHash, identity.HashToken(res.Token)) {
				t.Error("stored token hash is not SHA-256 of the token")
			}
			if bytes.Contains(s.TokenHash, []byte(res.Token)) || strings.Contains(s.ID, res.Token) {
				t.Error("the raw token is stored")
			}
			if s.IP != testMeta.IP || s.UserAgent != testMeta.UserAgent {
				t.Errorf("session IP/agent = %q/%q, want the request's", s.IP, s.UserAgent)
			}
			if want := e.clock.Now().Add(e.cfg.AbsoluteTimeout); !s.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v", s.ExpiresAt, want)
			}
			if got := e.auth(res.Token).Session.ID; got != s.ID {
				t.Errorf("Authenticate gave session %s, want %s", got, s.ID)
			}
		})

		t.Run("every sign-in gets a fresh token", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("fix@example.com", goodPW)
			seen := map[string]bool{}
			ids := map[string]bool{}
			for range 3 {
				res := e.signIn("fix@example.com", goodPW, "192.0.2.1")
				if seen[res.Token] || ids[res.Session.ID] {
					t.Fatal("a sign-in reused a token or session id")
				}
				seen[res.Token], ids[res.Session.ID] = true, true
			}
		})

		t.Run("unknown email answers like a wrong password", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("known@example.com", goodPW)
			c := identity.Client{IP: "192.0.2.1"}
			_, errWrong := e.svc.SignIn(e.ctx, "known@example.com", "not the password at all", c)
			_, errUnknown := e.svc.SignIn(e.ctx, "nobody@example.com", "not the password at all", c)
			_, errMalformed := e.svc.SignIn(e.ctx, "not-an-email", "not the password at all", c)
			_, errEmpty := e.svc.SignIn(e.ctx, "known@example.com", "", c)
			want := wantFault(t, errWrong, fault.Unauthenticated, "invalid_credentials")
			for name, err := range map[string]error{"unknown": errUnknown, "malformed": errMalformed, "empty password": errEmpty} {
				got := wantFault(t, err, fault.Unauthenticated, "invalid_credentials")
				if got.Message != want.Message || got.Error() != want.Error() {
					t.Errorf("%s: %q differs from the wrong-password answer %q", name, got.Error(), want.Error())
				}
			}
			if n := e.countEvents("auth.signin", audit.Failure); n != 3 {
				t.Errorf("auth.signin failure events = %d, want 3", n)
			}
		})

		t.Run("rehash when the parameters change", func(t *testing.T) {
			e := newEnv(t, st)
			u := e.signUp("rehash@example.com", goodPW)
			if p, _, _, err := password.Parse(u.PasswordHash); err != nil || p != fastParams {
				t.Fatalf("initial params = %+v (%v), want %+v", p, err, fastParams)
			}
			stronger := fastParams
			stronger.MemoryKiB, stronger.Time = 128, 2
			svc2 := e.service(password.NewHasher(password.HasherConfig{Params: stronger}))
			if _, err := svc2.SignIn(e.ctx, "rehash@example.com", goodPW, identity.Client{IP: "192.0.2.1"}); err != nil {
				t.Fatal(err)
			}
			after := e.user("rehash@example.com").PasswordHash
			if after == u.PasswordHash {
				t.Fatal("hash not upgraded on sign-in")
			}
			if p, _, _, err := password.Parse(after); err != nil || p != stronger {
				t.Fatalf("upgraded params = %+v (%v), want %+v", p, err, stronger)
			}
			if ok, _, err := e.hasher.Verify(e.ctx, after, goodPW); err != nil || !ok {
				t.Fatalf("upgraded hash does not verify: %v %v", ok, err)
			}
			// Signing in again with the new parameters leaves the hash alone.
			if _, err := svc2.SignIn(e.ctx, "rehash@example.com", goodPW, identity.Client{IP: "192.0.2.1"}); err != nil {
				t.Fatal(err)
			}
			if e.user("rehash@example.com").PasswordHash != after {
				t.Error("hash rewritten although the parameters match")
			}
		})

		t.Run("breached password is flagged", func(t *testing.T) {
			e := newEnv(t, st)
			const weak = "iloveyou"
			if !e.policy.IsCommon(weak) {
				t.Fatal("test premise: iloveyou must be on the common list")
			}
			h, err := e.hasher.Hash(e.ctx, weak)
			if err != nil {
				t.Fatal(err)
			}
			// An account from before the policy existed: written straight to the store.
			u := &identity.User{ID: "legacyuser", Email: "legacy@example.com", PasswordHash: h, CreatedAt: start, UpdatedAt: start}
			if err := st.CreateUser(e.ctx, u); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				res := e.signIn("legacy@example.com", weak, "192.0.2.1")
				if !res.PasswordChangeRequired {
					t.Fatal("PasswordChangeRequired = false for a breached password")
				}
				if !e.user("legacy@example.com").PasswordCompromised {
					t.Fatal("compromised flag not stored")
				}
			}
			if n := e.countEvents("auth.password_breached", audit.Success); n != 1 {
				t.Errorf("auth.password_breached events = %d, want 1 (not repeated)", n)
			}
			// Changing the password clears the flag.
			res := e.signIn("legacy@example.com", weak, "192.0.2.1")
			if _, err := e.svc.ChangePassword(e.ctx, res.Session, weak, goodPW); err != nil {
				t.Fatal(err)
			}
			if e.user("legacy@example.com").PasswordCompromised {
				t.Error("flag kept after a password change")
			}
			if res := e.signIn("legacy@example.com", goodPW, "192.0.2.1"); res.PasswordChangeRequired {
				t.Error("PasswordChangeRequired after the change")
			}
		})

		t.Run("new device notice", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("device@example.com", goodPW)
			for _, tc := range []struct {
				device string
				mails  int
			}{{"", 0}, {"device-a", 1}, {"device-a", 1}, {"device-b", 2}} {
				if _, err := e.svc.SignIn(e.ctx, "device@example.com", goodPW, identity.Client{IP: "192.0.2.1", DeviceID: tc.device}); err != nil {
					t.Fatal(err)
				}
				if got := len(e.mail.find("device@example.com", rmail.KindNewDevice)); got != tc.mails {
					t.Fatalf("after device %q: %d new-device mails, want %d", tc.device, got, tc.mails)
				}
			}
		})
	})
}

// failSignIn makes one failed attempt and requires invalid_credentials.
func (e *env) failSignIn(email, ip string) {
	e.t.Helper()
	_, err := e.svc.SignIn(e.ctx, email, "wrong password guess", identity.Client{IP: ip})
	wantFault(e.t, err, fault.Unauthenticated, "invalid_credentials")
}

// wantThrottled requires a RateLimited answer and returns its RetryAfter.
func wantThrottled(t testing.TB, err error) time.Duration {
	t.Helper()
	fe := wantFault(t, err, fault.RateLimited, "too_many_attempts")
	if fe.RetryAfter <= 0 {
		t.Fatalf("RetryAfter = %v, want > 0", fe.RetryAfter)
	}
	return fe.RetryAfter
}

func TestSignInThrottling(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Run("account backoff", func(t *testing.T) {
			// The answers for a known and an unknown email must match at every
			// step, or a lock would reveal which accounts exist.
			type step struct {
				err   error
				retry time.Duration
			}
			run := func(email string, known bool) []step {
				e := newEnv(t, st)
				if known {
					e.signUp(email, goodPW)
				}
				for range e.cfg.Throttle.AccountFreeFailures {
					e.failSignIn(email, "192.0.2.1")
				}
				var steps []step
				// After the free failures even the right password waits; the wait
				// doubles with each further failure.
				for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
					_, err := e.svc.SignIn(e.ctx, email, goodPW, identity.Client{IP: "192.0.2.1"})
					retry := wantThrottled(t, err)
					if retry != want {
						t.Errorf("wait %d = %v, want %v", i, retry, want)
					}
					steps = append(steps, step{err, retry})
					e.clock.Advance(retry)
					if i < 2 {
						e.failSignIn(email, "192.0.2.1")
					}
				}
				if known {
					res := e.signIn(email, goodPW, "192.0.2.1")
					if res.Token == "" {
						t.Fatal("no session after the backoff")
					}
					if n := e.user(email).FailedSignins; n != 0 {
						t.Errorf("FailedSignins = %d after success, want 0", n)
					}
					// The success reset the backoff.
					e.failSignIn(email, "192.0.2.1")
					e.signIn(email, goodPW, "192.0.2.1")
				}
				if n := e.countEvents("auth.signin", audit.Denied); n != 3 {
					t.Errorf("denied auth.signin events = %d, want 3", n)
				}
				return steps
			}
			known := run("backoff@example.com", true)
			unknown := run("ghost@example.com", false)
			for i := range known {
				if known[i].err.Error() != unknown[i].err.Error() || known[i].retry != unknown[i].retry {
					t.Errorf("step %d: known %v/%v, unknown %v/%v", i, known[i].err, known[i].retry, unknown[i].err, unknown[i].retry)
				}
			}
		})

		t.Run("lock", func(t *testing.T) {
			type outcome struct {
				msg   string
				retry time.Duration
			}
			run := func(email string, known bool) outcome {
				e := newEnv(t, st)
				if known {
					e.signUp(email, goodPW)
				}
				lockAfter := e.cfg.Throttle.AccountLockAfter
				for range lockAfter {
					e.clock.Advance(e.cfg.Throttle.MaxDelay) // past any backoff
					e.failSignIn(email, "192.0.2.1")
				}
				lockedAt := e.clock.Now()
				e.clock.Advance(e.cfg.Throttle.MaxDelay)
				_, err := e.svc.SignIn(e.ctx, email, goodPW, identity.Client{IP: "192.0.2.1"})
				retry := wantThrottled(t, err)
				if want := e.cfg.Throttle.AccountLockDuration - e.cfg.Throttle.MaxDelay; retry != want {
					t.Errorf("RetryAfter = %v, want the rest of the lock %v", retry, want)
				}
				// More attempts while locked change nothing.
				for range 3 {
					e.clock.Advance(time.Minute)
					_, err := e.svc.SignIn(e.ctx, email, goodPW, identity.Client{IP: "192.0.2.1"})
					wantThrottled(t, err)
				}
				locks := e.mail.find(email, rmail.KindAccountLocked)
				if known {
					if len(locks) != 1 {
						t.Fatalf("account_locked mails = %d, want 1", len(locks))
					}
					if strings.Contains(locks[0].Text, "?token=") {
						t.Error("the lock notice must not carry a token")
					}
					if got, want := e.user(email).LockedUntil, lockedAt.Add(e.cfg.Throttle.AccountLockDuration); !got.Equal(want) {
						t.Errorf("LockedUntil = %v, want %v", got, want)
					}
					if n := e.countEvents("auth.account_locked", audit.Success); n != 1 {
						t.Errorf("auth.account_locked events = %d, want 1", n)
					}
					e.clock.Advance(lockedAt.Add(e.cfg.Throttle.AccountLockDuration).Sub(e.clock.Now()))
					res := e.signIn(email, goodPW, "192.0.2.1")
					if res.Token == "" || !e.user(email).LockedUntil.IsZero() {
						t.Error("lock not lifted by a successful sign-in after it expired")
					}
				} else if len(locks) != 0 || len(e.mail.all()) != 0 {
					t.Errorf("mail sent for an unknown account: %+v", e.mail.all())
				}
				return outcome{err.Error(), retry}
			}
			known := run("lockme@example.com", true)
			unknown := run("nosuch@example.com", false)
			if known != unknown {
				t.Errorf("locked known account answers %+v, unknown %+v", known, unknown)
			}
		})

		t.Run("per-address backoff", func(t *testing.T) {
			e := newEnv(t, st, func(c *identity.Config) {
				c.Throttle.IPFreeFailures = 4
				c.Throttle.StuffingAccounts = 100
			})
			e.signUp("victim@example.com", goodPW)
			for i := range 4 {
				e.failSignIn(emailN("spray", i), "203.0.113.9")
			}
			_, err := e.svc.SignIn(e.ctx, "victim@example.com", goodPW, identity.Client{IP: "203.0.113.9"})
			retry := wantThrottled(t, err)
			e.signIn("victim@example.com", goodPW, "192.0.2.1") // other sources are unaffected
			e.clock.Advance(retry)
			e.signIn("victim@example.com", goodPW, "203.0.113.9")
		})

		t.Run("credential stuffing", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("real1@example.com", goodPW)
			e.signUp("fresh@example.com", goodPW)
			const ip = "203.0.113.66"
			targets := []string{"real1@example.com", "ghost1@example.com", "ghost2@example.com", "ghost3@example.com", "ghost4@example.com"}
			if len(targets) != e.cfg.Throttle.StuffingAccounts {
				t.Fatal("test premise: one target per stuffing account")
			}
			for _, email := range targets {
				e.failSignIn(email, ip)
			}
			_, err := e.svc.SignIn(e.ctx, "fresh@example.com", goodPW, identity.Client{IP: ip})
			if retry := wantThrottled(t, err); retry != e.cfg.Throttle.StuffingBlock {
				t.Errorf("RetryAfter = %v, want %v", retry, e.cfg.Throttle.StuffingBlock)
			}
			evs := e.events("auth.credential_stuffing")
			if len(evs) != 1 || evs[0].Outcome != audit.Denied || evs[0].Target != "ip:"+ip || evs[0].ActorType != audit.ActorSystem {
				t.Fatalf("credential_stuffing events = %+v, want one denied for ip:%s", evs, ip)
			}
			e.signIn("fresh@example.com", goodPW, "192.0.2.1") // other sources are unaffected
			e.clock.Advance(e.cfg.Throttle.StuffingBlock)
			e.signIn("fresh@example.com", goodPW, ip)
		})

		t.Run("slow spray stays below the stuffing window", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("fresh2@example.com", goodPW)
			const ip = "203.0.113.67"
			for i := range 2 * e.cfg.Throttle.StuffingAccounts {
				e.failSignIn(emailN("slow", i), ip)
				// Just over window/(accounts-1) apart: never StuffingAccounts in one window.
				e.clock.Advance(e.cfg.Throttle.StuffingWindow/time.Duration(e.cfg.Throttle.StuffingAccounts-1) + time.Second)
			}
			e.signIn("fresh2@example.com", goodPW, ip)
			if n := len(e.events("auth.credential_stuffing")); n != 0 {
				t.Errorf("credential_stuffing events = %d, want 0", n)
			}
		})
	})
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		u := e.signUp("change@example.com", goodPW)
		cur := e.signIn("change@example.com", goodPW, "192.0.2.1")
		other := e.signIn("change@example.com", goodPW, "192.0.2.2")
		e.auth(other.Token) // warm the cache

		sess := e.auth(cur.Token).Session
		_, err := e.svc.ChangePassword(e.ctx, sess, "not my password", "brand new passphrase")
		wantFault(t, err, fault.Forbidden, "current_password_invalid")
		_, err = e.svc.ChangePassword(e.ctx, sess, goodPW, "password")
		wantFault(t, err, fault.Invalid, "password_common")
		e.auth(other.Token) // refusals revoke nothing

		tok, err := e.svc.ChangePassword(e.ctx, sess, goodPW, "brand new passphrase")
		if err != nil {
			t.Fatal(err)
		}
		if tok == "" || tok == cur.Token {
			t.Fatal("ChangePassword must return a new token for the current session")
		}
		if got := e.auth(tok).Session.ID; got != cur.Session.ID {
			t.Errorf("new token belongs to session %s, want %s", got, cur.Session.ID)
		}
		e.wantUnauthenticated(other.Token)
		list, err := e.svc.Sessions(e.ctx, u.ID)
		if err != nil || len(list) != 1 || list[0].ID != cur.Session.ID {
			t.Fatalf("sessions after change = %+v (%v), want only the current one", list, err)
		}
		e.clock.Advance(e.cfg.RotateGrace)
		e.wantUnauthenticated(cur.Token)
		e.auth(tok)

		_, err = e.svc.SignIn(e.ctx, "change@example.com", goodPW, identity.Client{IP: "192.0.2.1"})
		wantFault(t, err, fault.Unauthenticated, "invalid_credentials")
		e.signIn("change@example.com", "brand new passphrase", "192.0.2.1")
		if len(e.mail.find("change@example.com", "password_changed")) != 1 {
			t.Error("no password_changed notice")
		}
		if e.countEvents("auth.password_change", audit.Failure) != 1 || e.countEvents("auth.password_change", audit.Success) != 1 {
			t.Error("want one failed and one successful auth.password_change event")
		}
	})
}

// TestChangePasswordGuessingIsThrottled: a stolen session cannot be used to
// guess the password without limit.
func TestChangePasswordGuessingIsThrottled(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		e.signUp("guessme@example.com", goodPW)
		sess := e.auth(e.signIn("guessme@example.com", goodPW, "192.0.2.1").Token).Session
		for range e.cfg.Throttle.AccountFreeFailures {
			_, err := e.svc.ChangePassword(e.ctx, sess, "a wrong guess", "brand new passphrase")
			wantFault(t, err, fault.Forbidden, "current_password_invalid")
		}
		_, err := e.svc.ChangePassword(e.ctx, sess, goodPW, "brand new passphrase")
		wantFault(t, err, fault.RateLimited, "too_many_attempts")
		e.clock.Advance(e.cfg.Throttle.MaxDelay)
		if _, err := e.svc.ChangePassword(e.ctx, sess, goodPW, "brand new passphrase"); err != nil {
			t.Fatalf("after the backoff: %v", err)
		}
	})
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		request := func(e *env, email string) string {
			t.Helper()
			if err := e.svc.RequestReset(e.ctx, email); err != nil {
				t.Fatal(err)
			}
			e.svc.Wait()
			msgs := e.mail.find(strings.ToLower(email), rmail.KindPasswordReset)
			if len(msgs) == 0 {
				t.Fatal("no reset mail")
			}
			return linkToken(t, msgs[len(msgs)-1], "/reset/confirm")
		}

		t.Run("unknown email", func(t *testing.T) {
			e := newEnv(t, st)
			if err := e.svc.RequestReset(e.ctx, "nobody@example.com"); err != nil {
				t.Fatalf("RequestReset(unknown) = %v, want nil", err)
			}
			e.svc.Wait()
			if n := len(e.mail.all()); n != 0 {
				t.Errorf("%d mails for an unknown email", n)
			}
			if n := e.countEvents("auth.password_reset_request", audit.Failure); n != 1 {
				t.Errorf("reset request failure events = %d, want 1", n)
			}
			wantFault(t, e.svc.RequestReset(e.ctx, "not an email"), fault.Invalid, "email_invalid")
		})

		t.Run("confirm", func(t *testing.T) {
			e := newEnv(t, st)
			u := e.signUp("reset@example.com", goodPW)
			s1 := e.signIn("reset@example.com", goodPW, "192.0.2.1")
			s2 := e.signIn("reset@example.com", goodPW, "192.0.2.2")
			e.auth(s1.Token) // warm the cache
			// Lock the account: the reset must lift it.
			for range e.cfg.Throttle.AccountLockAfter {
				e.clock.Advance(e.cfg.Throttle.MaxDelay)
				e.failSignIn("reset@example.com", "192.0.2.1")
			}
			if e.user("reset@example.com").LockedUntil.IsZero() {
				t.Fatal("test premise: the account should be locked")
			}

			tok := request(e, "REset@example.com")
			if err := e.svc.ConfirmReset(e.ctx, tok, "short"); !fault.Is(err, fault.Invalid) {
				t.Fatalf("weak new password: %v", err)
			}
			if err := e.svc.ConfirmReset(e.ctx, tok, "my recovered passphrase"); err != nil {
				t.Fatal(err)
			}
			after := e.user("reset@example.com")
			if !after.LockedUntil.IsZero() || after.FailedSignins != 0 {
				t.Errorf("lock not cleared: %+v", after)
			}
			e.wantUnauthenticated(s1.Token)
			e.wantUnauthenticated(s2.Token)
			if list, _ := e.svc.Sessions(e.ctx, u.ID); len(list) != 0 {
				t.Errorf("%d sessions left after reset", len(list))
			}
			res := e.signIn("reset@example.com", "my recovered passphrase", "192.0.2.1")
			if res.Token == "" {
				t.Fatal("no session after reset")
			}
			_, err := e.svc.SignIn(e.ctx, "reset@example.com", goodPW, identity.Client{IP: "192.0.2.1"})
			wantFault(t, err, fault.Unauthenticated, "invalid_credentials")
			// Single use.
			wantFault(t, e.svc.ConfirmReset(e.ctx, tok, "yet another passphrase"), fault.Invalid, "token_invalid")
			if len(e.mail.find("reset@example.com", "password_changed")) != 1 {
				t.Error("no password_changed notice")
			}
			if e.countEvents("auth.password_reset", audit.Success) != 1 || e.countEvents("auth.password_reset", audit.Failure) != 1 {
				t.Error("want one successful and one failed auth.password_reset event")
			}
		})

		t.Run("a new request replaces the old link", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("twice@example.com", goodPW)
			first := request(e, "twice@example.com")
			second := request(e, "twice@example.com")
			wantFault(t, e.svc.ConfirmReset(e.ctx, first, "my recovered passphrase"), fault.Invalid, "token_invalid")
			if err := e.svc.ConfirmReset(e.ctx, second, "my recovered passphrase"); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("expired", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("expired@example.com", goodPW)
			tok := request(e, "expired@example.com")
			e.clock.Advance(e.cfg.ResetTTL + time.Second)
			wantFault(t, e.svc.ConfirmReset(e.ctx, tok, "my recovered passphrase"), fault.Invalid, "token_invalid")
			e.signIn("expired@example.com", goodPW, "192.0.2.1")
		})

		t.Run("a verification token is not a reset token", func(t *testing.T) {
			e := newEnv(t, st)
			if err := e.svc.SignUp(e.ctx, "vkind@example.com", goodPW); err != nil {
				t.Fatal(err)
			}
			vtok := linkToken(t, e.mail.find("vkind@example.com", rmail.KindVerifyEmail)[0], "/verify-email")
			wantFault(t, e.svc.ConfirmReset(e.ctx, vtok, "my recovered passphrase"), fault.Invalid, "token_invalid")
			e.signIn("vkind@example.com", goodPW, "192.0.2.1")
		})

		t.Run("requests are throttled per email", func(t *testing.T) {
			e := newEnv(t, st)
			e.signUp("flood@example.com", goodPW)
			n := 0
			for {
				err := e.svc.RequestReset(e.ctx, "flood@example.com")
				if err != nil {
					wantThrottled(t, err)
					break
				}
				if n++; n > 10 {
					t.Fatal("reset requests never throttled")
				}
			}
			e.svc.Wait()
			if got := len(e.mail.find("flood@example.com", rmail.KindPasswordReset)); got != n {
				t.Errorf("reset mails = %d, want %d", got, n)
			}
		})
	})
}
