package identity_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	rmail "github.com/rampartsec/rampart/internal/mail"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestAuditTrail walks an account through its life, then checks that each
// key action left the right event and that no event or log line holds a
// password, a token, the TOTP secret or a code.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		const email = "journey@example.com"
		const newPW = "a second strong passphrase"
		var secrets []string
		keep := func(s ...string) { secrets = append(secrets, s...) }
		keep(goodPW, newPW, "wrong password guess")
		c := identity.Client{IP: "192.0.2.1", DeviceID: "device-cookie-value"}
		keep(c.DeviceID)

		if err := e.svc.SignUp(e.ctx, email, goodPW); err != nil {
			t.Fatal(err)
		}
		_ = e.svc.SignUp(e.ctx, email, goodPW) // existing
		vtok := linkToken(t, e.mail.find(email, rmail.KindVerifyEmail)[0], "/verify-email")
		keep(vtok)
		if err := e.svc.VerifyEmail(e.ctx, vtok); err != nil {
			t.Fatal(err)
		}
		_ = e.svc.VerifyEmail(e.ctx, vtok) // used

		e.failSignIn(email, c.IP)
		res, err := e.svc.SignIn(e.ctx, email, goodPW, c)
		if err != nil {
			t.Fatal(err)
		}
		keep(res.Token)
		u := e.user(email)

		enr, err := e.svc.BeginTOTP(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		keep(enr.Secret, enr.URI)
		code := e.code(enr.Secret)
		keep(code)
		recovery, err := e.svc.ConfirmTOTP(e.ctx, u.ID, code)
		if err != nil {
			t.Fatal(err)
		}
		keep(recovery...)
		e.nextStep()

		pend := e.pending(email)
		keep(pend.Token)
		bad := e.wrongCode(enr.Secret)
		keep(bad)
		if _, err := e.svc.SignInMFA(e.ctx, pend.Token, bad, c); err == nil {
			t.Fatal("wrong code accepted")
		}
		code = e.code(enr.Secret)
		keep(code)
		done, err := e.svc.SignInMFA(e.ctx, pend.Token, code, c)
		if err != nil {
			t.Fatal(err)
		}
		keep(done.Token)

		if _, err := e.svc.ChangePassword(e.ctx, done.Session, "wrong password guess", newPW); err == nil {
			t.Fatal("change with a wrong password accepted")
		}
		changed, err := e.svc.ChangePassword(e.ctx, done.Session, goodPW, newPW)
		if err != nil {
			t.Fatal(err)
		}
		keep(changed)
		if err := e.svc.RevokeSession(e.ctx, u.ID, res.Session.ID); err == nil {
			t.Fatal("session revoked twice (the password change ended it)")
		}
		other, err := e.svc.SignIn(e.ctx, email, newPW, c)
		if err != nil || !other.MFARequired {
			t.Fatalf("sign-in with the new password: %+v, %v", other, err)
		}
		keep(other.Token)
		if err := e.svc.SignOut(e.ctx, other.Token); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DisableTOTP(e.ctx, u.ID, newPW, recovery[0]); err != nil {
			t.Fatal(err)
		}

		if err := e.svc.RequestReset(e.ctx, email); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RequestReset(e.ctx, "stranger@example.com"); err != nil {
			t.Fatal(err)
		}
		e.svc.Wait()
		rtok := linkToken(t, e.mail.find(email, rmail.KindPasswordReset)[0], "/reset/confirm")
		keep(rtok)
		_ = e.svc.ConfirmReset(e.ctx, vtok, "a third strong passphrase")
		if err := e.svc.ConfirmReset(e.ctx, rtok, "a third strong passphrase"); err != nil {
			t.Fatal(err)
		}
		keep("a third strong passphrase")

		for _, tc := range []struct {
			action  string
			outcome audit.Outcome
			want    int
		}{
			{"auth.signup", audit.Success, 1},
			{"auth.signup", audit.Failure, 1},
			{"auth.verify_email", audit.Success, 1},
			{"auth.verify_email", audit.Failure, 1},
			{"auth.signin", audit.Failure, 1},
			{"auth.signin", audit.Success, 3},
			{"auth.new_device", audit.Success, 1},
			{"mfa.totp_begin", audit.Success, 1},
			{"mfa.totp_enable", audit.Success, 1},
			{"auth.signin_mfa", audit.Failure, 1},
			{"auth.signin_mfa", audit.Success, 1},
			{"auth.password_change", audit.Failure, 1},
			{"auth.password_change", audit.Success, 1},
			{"auth.signout", audit.Success, 1},
			{"mfa.totp_disable", audit.Success, 1},
			{"auth.password_reset_request", audit.Success, 1},
			{"auth.password_reset_request", audit.Failure, 1},
			{"auth.password_reset", audit.Failure, 1},
			{"auth.password_reset", audit.Success, 1},
		} {
			if got := e.countEvents(tc.action, tc.outcome); got != tc.want {
				t.Errorf("%s/%s events = %d, want %d", tc.action, tc.outcome, got, tc.want)
			}
		}

		all := e.events("")
		if len(all) < 20 {
			t.Fatalf("only %d events", len(all))
		}
		for _, ev := range all {
			if ev.IP != testMeta.IP || ev.UserAgent != testMeta.UserAgent || ev.Time.IsZero() {
				t.Errorf("%s: request facts missing: ip %q agent %q time %v", ev.Action, ev.IP, ev.UserAgent, ev.Time)
			}
			switch ev.ActorType {
			case audit.ActorUser:
				if ev.ActorID != u.ID {
					t.Errorf("%s: actor %q, want %q", ev.Action, ev.ActorID, u.ID)
				}
			case audit.ActorAnonymous, audit.ActorSystem:
			default:
				t.Errorf("%s: actor type %q", ev.Action, ev.ActorType)
			}
			if strings.Contains(ev.Target, "@") {
				t.Errorf("%s: target %q holds an email address", ev.Action, ev.Target)
			}
			noSecretIn(t, "audit event "+ev.Action, fmt.Sprintf("%+v", ev), secrets)
			for k, v := range ev.Details {
				noSecretIn(t, "audit details of "+ev.Action, k+"="+v, secrets)
				if strings.Contains(v, "@") {
					t.Errorf("%s: detail %s holds an email address", ev.Action, k)
				}
			}
		}
		logs := e.logs.String()
		noSecretIn(t, "logs", logs, secrets)
		noSecretIn(t, "logs", logs, []string{email})
	})
}
