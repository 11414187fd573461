package identity

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	rmail "github.com/rampartsec/rampart/internal/mail"
)

// Client describes where a sign-in comes from.
type Client struct {
	IP       string
	DeviceID string // long-lived random id from the device cookie ("" = none)
}

// SignInResult is what a successful password step yields.
type SignInResult struct {
	Token                  string // session token for the cookie
	Session                Session
	MFARequired            bool // the session is pending until SignInMFA
	PasswordChangeRequired bool // the password is in the breached list
}

// contextWords are words a password must not equal (NIST 800-63B
// "context-specific words").
func contextWords(email string) []string {
	w := []string{email, "rampart"}
	if i := strings.IndexByte(email, '@'); i > 0 {
		w = append(w, email[:i])
	}
	return w
}

// SignUp registers an account and mails a verification link. An email that
// already has an account gets a notice mail instead, and the caller sees the
// same answer either way (AUTH-7). Both paths spend one password hash.
func (s *Service) SignUp(ctx context.Context, rawEmail, password string) error {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return err
	}
	if err := s.policy.Check(password, contextWords(email)...); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	existing, err := s.store.UserByEmail(ctx, email)
	if err != nil && !fault.Is(err, fault.NotFound) {
		return err
	}
	if existing != nil {
		return s.signupExisting(ctx, existing)
	}
	id, err := s.randomID()
	if err != nil {
		return err
	}
	now := s.now()
	u := &User{ID: id, Email: email, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if fault.Is(err, fault.Conflict) { // a concurrent sign-up won
			if existing, err2 := s.store.UserByEmail(ctx, email); err2 == nil {
				return s.signupExisting(ctx, existing)
			}
		}
		return err
	}
	if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.signup", Target: "user:" + u.ID, Outcome: audit.Success}); err != nil {
		return err
	}
	return s.sendVerification(ctx, u)
}

func (s *Service) signupExisting(ctx context.Context, u *User) error {
	if err := s.record(ctx, audit.Event{Action: "auth.signup", Target: "user:" + u.ID, Outcome: audit.Failure, Details: map[string]string{"reason": "email_exists"}}); err != nil {
		return err
	}
	s.send(ctx, rmail.Message{To: u.Email, Kind: "signup_existing", Subject: "Someone tried to sign up with your email",
		Text: "Someone tried to create a new account with this email address, which already has an account.\n\n" +
			"If it was you, sign in instead, or reset your password at " + strings.TrimRight(s.cfg.PublicURL, "/") + "/reset\n\nIf it was not you, you can ignore this message.\n"})
	return nil
}

func (s *Service) sendVerification(ctx context.Context, u *User) error {
	tok, err := s.issueToken(ctx, u.ID, TokenVerifyEmail, s.cfg.VerifyTTL)
	if err != nil {
		return err
	}
	s.send(ctx, rmail.Message{To: u.Email, Kind: "verify_email", Subject: "Confirm your email address",
		Text: "Confirm your email address by opening this link:\n\n" + s.link("/verify-email", tok) + "\n\nThe link works once and expires in " + s.cfg.VerifyTTL.String() + ".\n"})
	return nil
}

// ResendVerification mails a new verification link to a signed-in user whose
// address is not verified yet.
func (s *Service) ResendVerification(ctx context.Context, userID string) error {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if !u.EmailVerifiedAt.IsZero() {
		return fault.New(fault.Conflict, "email_already_verified", "the email address is already verified")
	}
	if err := s.store.DeleteUserTokens(ctx, u.ID, TokenVerifyEmail); err != nil {
		return err
	}
	return s.sendVerification(ctx, u)
}

func (s *Service) issueToken(ctx context.Context, userID, kind string, ttl time.Duration) (string, error) {
	tok, err := s.randomToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	if err := s.store.CreateToken(ctx, &Token{Hash: HashToken(tok), Kind: kind, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return "", err
	}
	return tok, nil
}

// VerifyEmail consumes a verification token.
func (s *Service) VerifyEmail(ctx context.Context, token string) error {
	if token == "" || len(token) > 128 {
		return errTokenInvalid
	}
	uid, err := s.store.ConsumeToken(ctx, TokenVerifyEmail, HashToken(token), s.now())
	if fault.Is(err, fault.NotFound) {
		_ = s.record(ctx, audit.Event{Action: "auth.verify_email", Outcome: audit.Failure})
		return errTokenInvalid
	}
	if err != nil {
		return err
	}
	if err := s.store.SetEmailVerified(ctx, uid, s.now()); err != nil {
		return err
	}
	return s.record(ctx, audit.Event{ActorID: uid, Action: "auth.verify_email", Target: "user:" + uid, Outcome: audit.Success})
}

// SignIn checks an email and password. Throttling applies per account (known
// or not, so a lock does not reveal that an account exists), per source
// address, and against credential stuffing from one source.
func (s *Service) SignIn(ctx context.Context, rawEmail, password string, c Client) (SignInResult, error) {
	ikey := "i:" + c.IP
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		// Malformed input cannot be an account; answer as for a wrong
		// password, and count it against the source like one.
		if d := s.throttle.wait(ikey); d > 0 {
			return SignInResult{}, errTooMany(d)
		}
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			return SignInResult{}, err
		}
		s.throttle.fail(ikey, s.cfg.Throttle.IPFreeFailures)
		return SignInResult{}, errInvalidCredentials
	}
	akey := "a:" + accountKey(email)
	if d := s.throttle.stuffingBlocked(c.IP); d > 0 {
		return SignInResult{}, s.refuse(ctx, "", "source_blocked", errTooMany(d))
	}
	if d := max(s.throttle.wait(akey), s.throttle.wait(ikey)); d > 0 {
		return SignInResult{}, s.refuse(ctx, "", "backoff", errTooMany(d))
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !fault.Is(err, fault.NotFound) {
		return SignInResult{}, err
	}
	now := s.now()
	if u != nil && now.Before(u.LockedUntil) {
		_ = s.hasher.VerifyDummy(ctx, password)
		return SignInResult{}, s.refuse(ctx, u.ID, "locked", errTooMany(u.LockedUntil.Sub(now)))
	}
	ok, rehash := false, false
	if u == nil {
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			return SignInResult{}, err
		}
	} else {
		if u.PasswordHash == "" { // provisioned account without a password
			if err := s.hasher.VerifyDummy(ctx, password); err != nil {
				return SignInResult{}, err
			}
		} else if ok, rehash, err = s.hasher.Verify(ctx, u.PasswordHash, password); err != nil {
			return SignInResult{}, err
		}
	}
	if !ok {
		return SignInResult{}, s.signInFailed(ctx, u, email, akey, ikey, c.IP)
	}
	// Each write is a durable transaction; skip the one that would change
	// nothing (the common case).
	if u.FailedSignins > 0 || !u.LockedUntil.IsZero() {
		if err := s.store.ClearSigninFailures(ctx, u.ID); err != nil {
			return SignInResult{}, err
		}
	}
	s.throttle.reset(akey)
	res := SignInResult{}
	if rehash {
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			if err := s.store.SetPassword(ctx, u.ID, h, u.PasswordCompromised, now); err != nil {
				return SignInResult{}, err
			}
		}
	}
	if s.policy.IsCommon(password) {
		res.PasswordChangeRequired = true
		if !u.PasswordCompromised {
			if err := s.store.SetPasswordCompromised(ctx, u.ID, true); err != nil {
				return SignInResult{}, err
			}
			if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.password_breached", Target: "user:" + u.ID, Outcome: audit.Success}); err != nil {
				return SignInResult{}, err
			}
		}
	} else if u.PasswordCompromised {
		res.PasswordChangeRequired = true
	}
	tok, sess, err := s.newSession(ctx, u.ID, u.TOTPEnabled, false)
	if err != nil {
		return SignInResult{}, err
	}
	res.Token, res.Session, res.MFARequired = tok, *sess, u.TOTPEnabled
	details := map[string]string{"session": sess.ID, "mfa_required": boolString(u.TOTPEnabled)}
	if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.signin", Target: "user:" + u.ID, Outcome: audit.Success, Details: details}); err != nil {
		return SignInResult{}, err
	}
	if !u.TOTPEnabled {
		s.noticeNewDevice(ctx, u, c)
	}
	return res, nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// refuse audits a throttled attempt and returns err.
func (s *Service) refuse(ctx context.Context, userID, reason string, err error) error {
	e := audit.Event{Action: "auth.signin", Outcome: audit.Denied, Details: map[string]string{"reason": reason}}
	if userID != "" {
		e.Target = "user:" + userID
	}
	if aerr := s.record(ctx, e); aerr != nil {
		return aerr
	}
	return err
}

// signInFailed counts a failure everywhere it matters and locks the account
// (with a notice to its owner) once it passes the limit.
func (s *Service) signInFailed(ctx context.Context, u *User, email, akey, ikey, ip string) error {
	cfg := s.cfg.Throttle
	n := s.throttle.fail(akey, cfg.AccountFreeFailures)
	s.throttle.fail(ikey, cfg.IPFreeFailures)
	// "email" is stored by the audit log only as a keyed hash: an
	// investigator can search for an address without the log holding it.
	e := audit.Event{Action: "auth.signin", Outcome: audit.Failure, Details: map[string]string{"reason": "invalid_credentials", "email": email}}
	if u != nil {
		e.Target = "user:" + u.ID
		dbn, err := s.store.AddSigninFailure(ctx, u.ID, s.now())
		if err != nil {
			return err
		}
		n = max(n, dbn)
	}
	if err := s.record(ctx, e); err != nil {
		return err
	}
	// Lock at every AccountLockAfter-th consecutive failure, so that after a
	// lock expires the account gets a fresh allowance (under backoff) rather
	// than re-locking, and mailing its owner, at the next mistake.
	if cfg.AccountLockAfter > 0 && n >= cfg.AccountLockAfter && n%cfg.AccountLockAfter == 0 {
		s.throttle.block(akey, cfg.AccountLockDuration)
		if u != nil && !s.now().Before(u.LockedUntil) {
			until := s.now().Add(cfg.AccountLockDuration)
			if err := s.store.LockUser(ctx, u.ID, until); err != nil {
				return err
			}
			if err := s.record(ctx, audit.Event{ActorType: audit.ActorSystem, Action: "auth.account_locked", Target: "user:" + u.ID, Outcome: audit.Success, Details: map[string]string{"until": until.UTC().Format(time.RFC3339)}}); err != nil {
				return err
			}
			s.send(ctx, rmail.Message{To: u.Email, Kind: "account_locked", Subject: "Your account was locked after failed sign-ins",
				Text: "There were too many failed sign-in attempts on your account, so it is locked until " + until.UTC().Format(time.RFC1123) + ".\n\n" +
					"If this was not you, someone may be guessing your password. You can reset it at " + strings.TrimRight(s.cfg.PublicURL, "/") + "/reset\n"})
		}
	}
	if s.throttle.failAccountFrom(ip, akey) {
		if err := s.record(ctx, audit.Event{ActorType: audit.ActorSystem, Action: "auth.credential_stuffing", Target: "ip:" + ip, Outcome: audit.Denied,
			Details: map[string]string{"blocked_for": s.cfg.Throttle.StuffingBlock.String()}}); err != nil {
			return err
		}
		s.log.Warn("credential stuffing detected; source blocked", "ip", ip, "for", cfg.StuffingBlock.String())
	}
	return errInvalidCredentials
}

// noticeNewDevice mails the owner when a sign-in completes from a device the
// account has not used before.
func (s *Service) noticeNewDevice(ctx context.Context, u *User, c Client) {
	if c.DeviceID == "" {
		return
	}
	dh := sha256.Sum256([]byte("rampart-device:" + c.DeviceID))
	known, err := s.store.KnownDevice(ctx, u.ID, dh[:])
	if err != nil {
		s.log.Error("device lookup failed", "err", err)
		return
	}
	if known {
		return
	}
	if err := s.store.RememberDevice(ctx, u.ID, dh[:], s.now()); err != nil {
		s.log.Error("device remember failed", "err", err)
		return
	}
	m := audit.MetaFrom(ctx)
	_ = s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.new_device", Target: "user:" + u.ID, Outcome: audit.Success})
	s.send(ctx, rmail.Message{To: u.Email, Kind: "new_device", Subject: "New sign-in to your account",
		Text: "Your account was just signed in to from a new device.\n\nAddress: " + c.IP + "\nBrowser: " + truncate(m.UserAgent, 200) + "\nTime: " + s.now().UTC().Format(time.RFC1123) + "\n\n" +
			"If this was you, there is nothing to do. If not, change your password at once and sign out your other sessions at " + strings.TrimRight(s.cfg.PublicURL, "/") + "/settings/security\n"})
}

// User returns the account of a user id.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	return s.store.UserByID(ctx, id)
}

// ChangePassword sets a new password after checking the current one. Every
// other session is revoked; the caller's own session gets a new token.
func (s *Service) ChangePassword(ctx context.Context, sess Session, current, next string) (string, error) {
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil {
		return "", err
	}
	if err := s.checkPassword(ctx, u, current, "auth.password_change"); err != nil {
		return "", err
	}
	if err := s.policy.Check(next, contextWords(u.Email)...); err != nil {
		return "", err
	}
	h, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return "", err
	}
	if err := s.store.SetPassword(ctx, u.ID, h, false, s.now()); err != nil {
		return "", err
	}
	if _, err := s.RevokeAllSessions(ctx, u.ID, sess.ID); err != nil {
		return "", err
	}
	tok, err := s.Rotate(ctx, sess)
	if err != nil {
		return "", err
	}
	if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.password_change", Target: "user:" + u.ID, Outcome: audit.Success}); err != nil {
		return "", err
	}
	s.send(ctx, rmail.Message{To: u.Email, Kind: "password_changed", Subject: "Your password was changed",
		Text: "The password of your account was just changed and your other sessions were signed out.\n\nIf this was not you, reset your password at once: " + strings.TrimRight(s.cfg.PublicURL, "/") + "/reset\n"})
	return tok, nil
}

// RequestReset mails a reset link when the email has an account. The caller
// always gets the same answer; the work for a known account runs in the
// background so that the answer also takes alike time (AUTH-7).
func (s *Service) RequestReset(ctx context.Context, rawEmail string) error {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return err
	}
	if d := s.throttle.wait("r:" + accountKey(email)); d > 0 {
		return errTooMany(d)
	}
	// Allow a burst of a few requests, then back off, so the mailbox of a
	// real account cannot be flooded.
	s.throttle.fail("r:"+accountKey(email), 3)
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !fault.Is(err, fault.NotFound) {
		return err
	}
	if u == nil {
		return s.record(ctx, audit.Event{Action: "auth.password_reset_request", Outcome: audit.Failure, Details: map[string]string{"reason": "unknown_email", "email": email}})
	}
	if err := s.record(ctx, audit.Event{Action: "auth.password_reset_request", Target: "user:" + u.ID, Outcome: audit.Success}); err != nil {
		return err
	}
	s.background(ctx, "password_reset_mail", func(ctx context.Context) error {
		if err := s.store.DeleteUserTokens(ctx, u.ID, TokenPasswordReset); err != nil {
			return err
		}
		tok, err := s.issueToken(ctx, u.ID, TokenPasswordReset, s.cfg.ResetTTL)
		if err != nil {
			return err
		}
		s.send(ctx, rmail.Message{To: u.Email, Kind: "password_reset", Subject: "Reset your password",
			Text: "Someone asked to reset the password of your account. To choose a new password, open:\n\n" + s.link("/reset/confirm", tok) +
				"\n\nThe link works once and expires in " + s.cfg.ResetTTL.String() + ". If you did not ask for this, ignore this message; your password stays as it is.\n"})
		return nil
	})
	return nil
}

// ConfirmReset sets a new password with a reset token. The token is single
// use; every session of the account is revoked and any lock lifted.
func (s *Service) ConfirmReset(ctx context.Context, token, next string) error {
	if token == "" || len(token) > 128 {
		return errTokenInvalid
	}
	if err := s.policy.Check(next); err != nil {
		return err
	}
	h, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	uid, err := s.store.ResetPassword(ctx, HashToken(token), h, s.now())
	if fault.Is(err, fault.NotFound) {
		_ = s.record(ctx, audit.Event{Action: "auth.password_reset", Outcome: audit.Failure, Details: map[string]string{"reason": "token_invalid"}})
		return errTokenInvalid
	}
	if err != nil {
		return err
	}
	s.cache.dropUser(uid, "")
	u, err := s.store.UserByID(ctx, uid)
	if err != nil {
		return err
	}
	s.throttle.reset("a:" + accountKey(u.Email))
	if err := s.record(ctx, audit.Event{ActorID: uid, Action: "auth.password_reset", Target: "user:" + uid, Outcome: audit.Success}); err != nil {
		return err
	}
	s.send(ctx, rmail.Message{To: u.Email, Kind: "password_changed", Subject: "Your password was reset",
		Text: "The password of your account was just reset and every session was signed out.\n\nIf this was not you, reset it again at once: " + strings.TrimRight(s.cfg.PublicURL, "/") + "/reset\n"})
	return nil
}

// checkPassword re-checks the password of a signed-in user (before a
// sensitive change). Wrong guesses count toward the account's throttle, so
// a stolen session cannot be used to guess the password without limit.
func (s *Service) checkPassword(ctx context.Context, u *User, pw, action string) error {
	akey := "a:" + accountKey(u.Email)
	if d := s.throttle.wait(akey); d > 0 {
		return s.refuse(ctx, u.ID, "backoff", errTooMany(d))
	}
	ok := false
	if u.PasswordHash != "" {
		var err error
		if ok, _, err = s.hasher.Verify(ctx, u.PasswordHash, pw); err != nil {
			return err
		}
	}
	if !ok {
		s.throttle.fail(akey, s.cfg.Throttle.AccountFreeFailures)
		_ = s.record(ctx, audit.Event{ActorID: u.ID, Action: action, Target: "user:" + u.ID, Outcome: audit.Failure, Details: map[string]string{"reason": "password"}})
		return fault.New(fault.Forbidden, "current_password_invalid", "the current password is incorrect")
	}
	return nil
}

// UserByEmail returns the account of an email address.
func (s *Service) UserByEmail(ctx context.Context, rawEmail string) (*User, error) {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return nil, err
	}
	return s.store.UserByEmail(ctx, email)
}

// ProvisionUser creates an account for an address asserted by the
// customer's identity provider (SCIM, SSO). The address counts as verified;
// the account has no password (sign-in by password fails until the owner
// sets one through a reset). An existing account is returned as it is.
func (s *Service) ProvisionUser(ctx context.Context, rawEmail string) (*User, bool, error) {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return nil, false, err
	}
	if u, err := s.store.UserByEmail(ctx, email); err == nil {
		return u, false, nil
	} else if !fault.Is(err, fault.NotFound) {
		return nil, false, err
	}
	id, err := s.randomID()
	if err != nil {
		return nil, false, err
	}
	now := s.now()
	u := &User{ID: id, Email: email, EmailVerifiedAt: now, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if fault.Is(err, fault.Conflict) {
			u, err := s.store.UserByEmail(ctx, email)
			return u, false, err
		}
		return nil, false, err
	}
	if err := s.record(ctx, audit.Event{ActorType: audit.ActorSystem, Action: "auth.provision", Target: "user:" + u.ID, Outcome: audit.Success}); err != nil {
		return nil, false, err
	}
	return u, true, nil
}
