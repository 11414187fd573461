package identity_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/totp"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

var totpCfg = totp.Config{Issuer: "Rampart"}

// code is what the authenticator app shows now.
func (e *env) code(secret string) string {
	e.t.Helper()
	c, err := totp.Code(totpCfg, secret, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// wrongCode returns a well-formed code that no step in the window accepts.
func (e *env) wrongCode(secret string) string {
	e.t.Helper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, err := totp.Code(totpCfg, secret, e.clock.Now().Add(d))
		if err != nil {
			e.t.Fatal(err)
		}
		valid[c] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !valid[c] {
			return c
		}
	}
	e.t.Fatal("no wrong code found")
	return ""
}

// nextStep moves the clock to the next TOTP step, so a fresh code exists.
func (e *env) nextStep() { e.clock.Advance(30 * time.Second) }

// enrol signs up a user with TOTP enabled and returns the secret and the
// recovery codes.
func (e *env) enrol(email string) (*identity.User, string, []string) {
	e.t.Helper()
	u := e.signUp(email, goodPW)
	enr, err := e.svc.BeginTOTP(e.ctx, u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	codes, err := e.svc.ConfirmTOTP(e.ctx, u.ID, e.code(enr.Secret))
	if err != nil {
		e.t.Fatal(err)
	}
	e.nextStep()
	return u, enr.Secret, codes
}

// pending signs in with the password and checks that MFA is owed.
func (e *env) pending(email string) identity.SignInResult {
	e.t.Helper()
	res := e.signIn(email, goodPW, "192.0.2.1")
	if !res.MFARequired || !res.Session.Pending {
		e.t.Fatalf("sign-in of an MFA account: %+v, want MFA required", res)
	}
	return res
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Run("enrolment", func(t *testing.T) {
			e := newEnv(t, st)
			u := e.signUp("enrol@example.com", goodPW)
			_, err := e.svc.ConfirmTOTP(e.ctx, u.ID, "123456")
			wantFault(t, err, fault.Conflict, "totp_not_started")

			enr, err := e.svc.BeginTOTP(e.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(enr.Secret) < 32 || !strings.HasPrefix(enr.URI, "otpauth://totp/") || !bytes.HasPrefix(enr.QRPNG, []byte("\x89PNG")) {
				t.Fatalf("enrolment = %q %q %d bytes", enr.Secret, enr.URI, len(enr.QRPNG))
			}
			stored := e.user("enrol@example.com")
			if stored.TOTPEnabled {
				t.Fatal("enabled before confirmation")
			}
			if len(stored.TOTPSecret) == 0 || bytes.Contains(stored.TOTPSecret, []byte(enr.Secret)) {
				t.Fatal("the TOTP secret is stored in plaintext")
			}
			// Sealed, and bound to this user's row.
			ad := vault.AD{Table: "users", Column: "totp_secret", Row: u.ID}
			if pt, err := e.ring.Open(stored.TOTPSecret, ad); err != nil || string(pt) != enr.Secret {
				t.Fatalf("stored secret does not open to the secret: %v", err)
			}
			ad.Row = "someone-else"
			if _, err := e.ring.Open(stored.TOTPSecret, ad); err == nil {
				t.Fatal("sealed secret opens for another row")
			}
			// Enrolment alone changes nothing at sign-in.
			if res := e.signIn("enrol@example.com", goodPW, "192.0.2.1"); res.MFARequired {
				t.Fatal("MFA required before confirmation")
			}

			_, err = e.svc.ConfirmTOTP(e.ctx, u.ID, e.wrongCode(enr.Secret))
			wantFault(t, err, fault.Invalid, totp.CodeInvalid)
			codes, err := e.svc.ConfirmTOTP(e.ctx, u.ID, e.code(enr.Secret))
			if err != nil {
				t.Fatal(err)
			}
			if len(codes) != identity.RecoveryCodeCount || identity.RecoveryCodeCount != 10 {
				t.Fatalf("%d recovery codes, want 10", len(codes))
			}
			seen := map[string]bool{}
			for _, c := range codes {
				if seen[c] || totp.NormalizeRecoveryCode(c) == "" {
					t.Fatalf("bad or repeated recovery code %q", c)
				}
				seen[c] = true
			}
			if hashes, err := st.RecoveryCodeHashes(e.ctx, u.ID); err != nil || len(hashes) != 10 {
				t.Fatalf("stored recovery codes = %d (%v)", len(hashes), err)
			}
			if !e.user("enrol@example.com").TOTPEnabled {
				t.Fatal("not enabled after confirmation")
			}
			_, err = e.svc.BeginTOTP(e.ctx, u.ID)
			wantFault(t, err, fault.Conflict, "totp_already_enabled")
			_, err = e.svc.ConfirmTOTP(e.ctx, u.ID, e.code(enr.Secret))
			wantFault(t, err, fault.Conflict, "totp_already_enabled")
			if e.countEvents("mfa.totp_begin", audit.Success) != 1 || e.countEvents("mfa.totp_enable", audit.Success) != 1 ||
				e.countEvents("mfa.totp_confirm", audit.Failure) != 1 {
				t.Error("missing mfa.totp_begin / mfa.totp_enable / failed mfa.totp_confirm events")
			}
		})

		t.Run("sign-in with a code", func(t *testing.T) {
			e := newEnv(t, st)
			u, secret, _ := e.enrol("mfa@example.com")
			res := e.pending("mfa@example.com")
			// A pending session grants nothing, and says why.
			_, err := e.svc.Authenticate(e.ctx, res.Token)
			wantFault(t, err, fault.Unauthenticated, "mfa_pending")

			code := e.code(secret)
			done, err := e.svc.SignInMFA(e.ctx, res.Token, code, identity.Client{IP: "192.0.2.1"})
			if err != nil {
				t.Fatal(err)
			}
			if done.Token == "" || done.Token == res.Token {
				t.Fatal("MFA completion must issue a new token")
			}
			if done.Session.ID != res.Session.ID || done.Session.Pending || !done.Session.MFA || done.Session.UserID != u.ID {
				t.Fatalf("completed session = %+v", done.Session)
			}
			if got := e.auth(done.Token).Session; !got.MFA || got.Pending {
				t.Fatalf("authenticated session = %+v", got)
			}
			// The password-only token is dead: no fixation across the upgrade.
			e.wantUnauthenticated(res.Token)
			_, err = e.svc.SignInMFA(e.ctx, res.Token, e.code(secret), identity.Client{IP: "192.0.2.1"})
			wantFault(t, err, fault.Unauthenticated, "unauthenticated")
			_, err = e.svc.SignInMFA(e.ctx, done.Token, code, identity.Client{IP: "192.0.2.1"})
			wantFault(t, err, fault.Conflict, "mfa_not_pending")

			// Replay: the same code, still inside its window, on a new sign-in.
			again := e.pending("mfa@example.com")
			_, err = e.svc.SignInMFA(e.ctx, again.Token, code, identity.Client{IP: "192.0.2.1"})
			wantFault(t, err, fault.Unauthenticated, totp.CodeReused)
			_, err = e.svc.Authenticate(e.ctx, again.Token)
			wantFault(t, err, fault.Unauthenticated, "mfa_pending")
			e.nextStep()
			if _, err := e.svc.SignInMFA(e.ctx, again.Token, e.code(secret), identity.Client{IP: "192.0.2.1"}); err != nil {
				t.Fatalf("next code refused: %v", err)
			}
			if e.countEvents("auth.signin_mfa", audit.Success) != 2 || e.countEvents("auth.signin_mfa", audit.Failure) != 1 {
				t.Error("want two successful and one failed auth.signin_mfa event")
			}
		})

		t.Run("pending sign-in expires", func(t *testing.T) {
			e := newEnv(t, st)
			_, secret, _ := e.enrol("slowmfa@example.com")
			res := e.pending("slowmfa@example.com")
			if want := e.clock.Now().Add(e.cfg.PendingMFATTL); !res.Session.ExpiresAt.Equal(want) {
				t.Errorf("pending ExpiresAt = %v, want %v", res.Session.ExpiresAt, want)
			}
			e.clock.Advance(e.cfg.PendingMFATTL)
			_, err := e.svc.SignInMFA(e.ctx, res.Token, e.code(secret), identity.Client{IP: "192.0.2.1"})
			wantFault(t, err, fault.Unauthenticated, "unauthenticated")
		})

		t.Run("recovery code works once", func(t *testing.T) {
			e := newEnv(t, st)
			u, _, codes := e.enrol("recover@example.com")
			res := e.pending("recover@example.com")
			typed := strings.ToUpper(strings.ReplaceAll(codes[3], "-", " ")) // as a user might type it
			done, err := e.svc.SignInMFA(e.ctx, res.Token, typed, identity.Client{IP: "192.0.2.1"})
			if err != nil {
				t.Fatal(err)
			}
			e.auth(done.Token)
			again := e.pending("recover@example.com")
			_, err = e.svc.SignInMFA(e.ctx, again.Token, codes[3], identity.Client{IP: "192.0.2.1"})
			wantFault(t, err, fault.Unauthenticated, "mfa_code_invalid")
			if _, err := e.svc.SignInMFA(e.ctx, again.Token, codes[4], identity.Client{IP: "192.0.2.1"}); err != nil {
				t.Fatalf("another recovery code refused: %v", err)
			}
			if hashes, _ := st.RecoveryCodeHashes(e.ctx, u.ID); len(hashes) != 8 {
				t.Errorf("unused recovery codes = %d, want 8", len(hashes))
			}
			evs := e.events("auth.signin_mfa")
			if len(evs) == 0 || evs[0].Details["method"] != "recovery_code" {
				t.Errorf("auth.signin_mfa events = %+v, want method recovery_code", evs)
			}
		})

		t.Run("wrong codes are throttled", func(t *testing.T) {
			e := newEnv(t, st)
			_, secret, _ := e.enrol("guess@example.com")
			res := e.pending("guess@example.com")
			for range e.cfg.Throttle.AccountFreeFailures {
				_, err := e.svc.SignInMFA(e.ctx, res.Token, e.wrongCode(secret), identity.Client{IP: "192.0.2.1"})
				wantFault(t, err, fault.Unauthenticated, totp.CodeInvalid)
			}
			_, err := e.svc.SignInMFA(e.ctx, res.Token, e.code(secret), identity.Client{IP: "192.0.2.1"})
			retry := wantThrottled(t, err)
			if n := e.user("guess@example.com").FailedSignins; n != e.cfg.Throttle.AccountFreeFailures {
				t.Errorf("FailedSignins = %d, want %d", n, e.cfg.Throttle.AccountFreeFailures)
			}
			// The password step of the same account is held back too.
			_, err = e.svc.SignIn(e.ctx, "guess@example.com", goodPW, identity.Client{IP: "192.0.2.9"})
			wantThrottled(t, err)
			e.clock.Advance(retry)
			done, err := e.svc.SignInMFA(e.ctx, res.Token, e.code(secret), identity.Client{IP: "192.0.2.1"})
			if err != nil {
				t.Fatal(err)
			}
			e.auth(done.Token)
			if n := e.user("guess@example.com").FailedSignins; n != 0 {
				t.Errorf("FailedSignins = %d after success, want 0", n)
			}
		})

		t.Run("disable", func(t *testing.T) {
			e := newEnv(t, st)
			u, secret, codes := e.enrol("disable@example.com")
			err := e.svc.DisableTOTP(e.ctx, u.ID, "not my password", e.code(secret))
			wantFault(t, err, fault.Forbidden, "current_password_invalid")
			err = e.svc.DisableTOTP(e.ctx, u.ID, goodPW, e.wrongCode(secret))
			wantFault(t, err, fault.Unauthenticated, totp.CodeInvalid)
			err = e.svc.DisableTOTP(e.ctx, u.ID, goodPW, "")
			wantFault(t, err, fault.Unauthenticated, "mfa_code_invalid")
			if !e.user("disable@example.com").TOTPEnabled {
				t.Fatal("disabled without proof")
			}
			// Three wrong proofs put the account under backoff: guessing
			// through a stolen session is throttled too.
			err = e.svc.DisableTOTP(e.ctx, u.ID, goodPW, codes[0])
			wantFault(t, err, fault.RateLimited, "too_many_attempts")
			e.clock.Advance(e.cfg.Throttle.MaxDelay)
			if err := e.svc.DisableTOTP(e.ctx, u.ID, goodPW, codes[0]); err != nil {
				t.Fatalf("disable with a recovery code: %v", err)
			}
			after := e.user("disable@example.com")
			if after.TOTPEnabled || after.TOTPSecret != nil || after.TOTPLastStep != 0 {
				t.Fatalf("after disable: %+v", after)
			}
			if hashes, _ := st.RecoveryCodeHashes(e.ctx, u.ID); len(hashes) != 0 {
				t.Errorf("%d recovery codes left", len(hashes))
			}
			if res := e.signIn("disable@example.com", goodPW, "192.0.2.1"); res.MFARequired {
				t.Fatal("MFA still required after disable")
			}
			wantFault(t, e.svc.DisableTOTP(e.ctx, u.ID, goodPW, "123456"), fault.Conflict, "totp_not_enabled")
			if e.countEvents("mfa.totp_disable", audit.Failure) != 3 || e.countEvents("mfa.totp_disable", audit.Success) != 1 {
				t.Error("want three failed and one successful mfa.totp_disable event")
			}

			// Re-enrolment works, with a TOTP code this time.
			enr, err := e.svc.BeginTOTP(e.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if enr.Secret == secret {
				t.Fatal("re-enrolment reused the old secret")
			}
			if _, err := e.svc.ConfirmTOTP(e.ctx, u.ID, e.code(enr.Secret)); err != nil {
				t.Fatal(err)
			}
			e.nextStep()
			if err := e.svc.DisableTOTP(e.ctx, u.ID, goodPW, e.code(enr.Secret)); err != nil {
				t.Fatalf("disable with a TOTP code: %v", err)
			}
		})
	})
}
