package identity

import (
	"context"
	"strings"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity/totp"
	"github.com/rampartsec/rampart/internal/vault"
)

// RecoveryCodeCount is how many single-use recovery codes an enrolment gives.
const RecoveryCodeCount = 10

// TOTPEnrolment is what a user needs to add Rampart to an authenticator app.
type TOTPEnrolment struct {
	Secret string // base32, for manual entry
	URI    string // otpauth:// URI
	QRPNG  []byte // the URI as a QR code
}

func (s *Service) totpConfig() totp.Config {
	return totp.Config{Issuer: s.cfg.MFAIssuer}
}

func totpAD(userID string) vault.AD {
	return vault.AD{Table: "users", Column: "totp_secret", Row: userID}
}

// BeginTOTP creates a new TOTP secret for the user, stored sealed and not yet
// enabled until ConfirmTOTP proves the app has it.
func (s *Service) BeginTOTP(ctx context.Context, userID string) (TOTPEnrolment, error) {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if u.TOTPEnabled {
		return TOTPEnrolment{}, errTOTPEnabled
	}
	key, err := totp.Generate(s.totpConfig(), u.Email, s.rand)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	sealed, err := s.sealer.Seal([]byte(key.Secret), totpAD(u.ID))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if err := s.store.SetTOTPSecret(ctx, u.ID, sealed); err != nil {
		return TOTPEnrolment{}, err
	}
	png, err := totp.QRCodePNG(key.URI, 256)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "mfa.totp_begin", Target: "user:" + u.ID, Outcome: audit.Success}); err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{Secret: key.Secret, URI: key.URI, QRPNG: png}, nil
}

// ConfirmTOTP enables TOTP once the user proves the app produces codes, and
// returns the recovery codes (shown once; stored only as hashes).
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string) ([]string, error) {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.TOTPEnabled {
		return nil, errTOTPEnabled
	}
	if len(u.TOTPSecret) == 0 {
		return nil, errTOTPNotStarted
	}
	secret, err := s.sealer.Open(u.TOTPSecret, totpAD(u.ID))
	if err != nil {
		return nil, err
	}
	step, err := totp.Validate(s.totpConfig(), string(secret), code, s.now(), u.TOTPLastStep)
	if err != nil {
		_ = s.record(ctx, audit.Event{ActorID: u.ID, Action: "mfa.totp_confirm", Target: "user:" + u.ID, Outcome: audit.Failure})
		return nil, err
	}
	codes, err := totp.NewRecoveryCodes(s.rand, RecoveryCodeCount)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = totp.HashRecoveryCode(c)
	}
	if err := s.store.EnableTOTP(ctx, u.ID, step, hashes, s.now()); err != nil {
		return nil, err
	}
	if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "mfa.totp_enable", Target: "user:" + u.ID, Outcome: audit.Success}); err != nil {
		return nil, err
	}
	return codes, nil
}

// checkSecondFactor accepts a current TOTP code (never one already used) or
// an unused recovery code, and reports which.
func (s *Service) checkSecondFactor(ctx context.Context, u *User, code string) (method string, err error) {
	code = strings.TrimSpace(code)
	if len(code) > 64 || code == "" {
		return "", errMFAInvalid
	}
	if isDigits(strings.ReplaceAll(code, " ", "")) {
		secret, err := s.sealer.Open(u.TOTPSecret, totpAD(u.ID))
		if err != nil {
			return "", err
		}
		step, err := totp.Validate(s.totpConfig(), string(secret), code, s.now(), u.TOTPLastStep)
		if err != nil {
			// A wrong or reused code at sign-in is a failed authentication
			// (401), whatever kind the TOTP package gives it.
			if fault.KindOf(err) == fault.Invalid {
				if fault.As(err).Code == totp.CodeReused {
					return "", errMFAReused
				}
				return "", errMFAInvalid
			}
			return "", err
		}
		ok, err := s.store.AdvanceTOTPStep(ctx, u.ID, step)
		if err != nil {
			return "", err
		}
		if !ok { // a concurrent request used the same code first
			return "", errMFAReused
		}
		return "totp", nil
	}
	hashes, err := s.store.RecoveryCodeHashes(ctx, u.ID)
	if err != nil {
		return "", err
	}
	i, ok := totp.MatchRecoveryCode(code, hashes)
	if !ok {
		return "", errMFAInvalid
	}
	used, err := s.store.UseRecoveryCode(ctx, u.ID, hashes[i], s.now())
	if err != nil {
		return "", err
	}
	if !used {
		return "", errMFAInvalid
	}
	return "recovery_code", nil
}

func isDigits(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// SignInMFA completes a pending sign-in with a second factor. The session
// gets a new token (no fixation across the privilege change). Failures count
// toward the account's throttle like password failures.
func (s *Service) SignInMFA(ctx context.Context, pendingToken, code string, c Client) (SignInResult, error) {
	sess, err := s.lookupSession(ctx, pendingToken)
	if err != nil {
		return SignInResult{}, err
	}
	if !sess.Pending {
		return SignInResult{}, fault.New(fault.Conflict, "mfa_not_pending", "this sign-in does not need a code")
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil {
		return SignInResult{}, err
	}
	akey := "a:" + accountKey(u.Email)
	if d := s.throttle.wait(akey); d > 0 {
		return SignInResult{}, s.refuse(ctx, u.ID, "backoff", errTooMany(d))
	}
	method, err := s.checkSecondFactor(ctx, u, code)
	if err != nil {
		if fault.KindOf(err) == fault.Unauthenticated || fault.KindOf(err) == fault.Invalid {
			s.throttle.fail(akey, s.cfg.Throttle.AccountFreeFailures)
			if _, ferr := s.store.AddSigninFailure(ctx, u.ID, s.now()); ferr != nil {
				return SignInResult{}, ferr
			}
			_ = s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.signin_mfa", Target: "user:" + u.ID, Outcome: audit.Failure})
		}
		return SignInResult{}, err
	}
	tok, err := s.randomToken()
	if err != nil {
		return SignInResult{}, err
	}
	now := s.now()
	nh := HashToken(tok)
	exp := now.Add(s.cfg.AbsoluteTimeout)
	if err := s.store.CompleteSessionMFA(ctx, sess.ID, nh, now, exp); err != nil {
		return SignInResult{}, err
	}
	s.cache.dropUser(u.ID, sess.ID)
	if err := s.store.ClearSigninFailures(ctx, u.ID); err != nil {
		return SignInResult{}, err
	}
	s.throttle.reset(akey)
	if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.signin_mfa", Target: "user:" + u.ID, Outcome: audit.Success,
		Details: map[string]string{"method": method, "session": sess.ID}}); err != nil {
		return SignInResult{}, err
	}
	s.noticeNewDevice(ctx, u, c)
	sess.TokenHash, sess.Pending, sess.MFA, sess.MFAAt, sess.ExpiresAt, sess.RotatedAt = nh, false, true, now, exp, now
	return SignInResult{Token: tok, Session: *sess, PasswordChangeRequired: u.PasswordCompromised}, nil
}

// DisableTOTP turns TOTP off; it needs the password and a current code (or
// a recovery code), so a stolen session alone cannot remove the factor.
func (s *Service) DisableTOTP(ctx context.Context, userID, password, code string) error {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if !u.TOTPEnabled {
		return errTOTPNotEnabled
	}
	if err := s.checkPassword(ctx, u, password, "mfa.totp_disable"); err != nil {
		return err
	}
	if _, err := s.checkSecondFactor(ctx, u, code); err != nil {
		if k := fault.KindOf(err); k == fault.Unauthenticated || k == fault.Invalid {
			s.throttle.fail("a:"+accountKey(u.Email), s.cfg.Throttle.AccountFreeFailures)
		}
		_ = s.record(ctx, audit.Event{ActorID: u.ID, Action: "mfa.totp_disable", Target: "user:" + u.ID, Outcome: audit.Failure, Details: map[string]string{"reason": "code"}})
		return err
	}
	if err := s.store.DisableTOTP(ctx, u.ID); err != nil {
		return err
	}
	return s.record(ctx, audit.Event{ActorID: u.ID, Action: "mfa.totp_disable", Target: "user:" + u.ID, Outcome: audit.Success})
}

// StepUp records a fresh second-factor check on a signed-in session, which
// sensitive actions require within a window (AC-2). Wrong codes count
// toward the account's throttle.
func (s *Service) StepUp(ctx context.Context, sess Session, code string) (Session, error) {
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil {
		return Session{}, err
	}
	if !u.TOTPEnabled {
		return Session{}, fault.New(fault.Conflict, "totp_not_enabled", "set up two-factor authentication first")
	}
	akey := "a:" + accountKey(u.Email)
	if d := s.throttle.wait(akey); d > 0 {
		return Session{}, s.refuse(ctx, u.ID, "backoff", errTooMany(d))
	}
	method, err := s.checkSecondFactor(ctx, u, code)
	if err != nil {
		if k := fault.KindOf(err); k == fault.Unauthenticated || k == fault.Invalid {
			s.throttle.fail(akey, s.cfg.Throttle.AccountFreeFailures)
			_ = s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.step_up", Target: "session:" + sess.ID, Outcome: audit.Failure})
		}
		return Session{}, err
	}
	now := s.now()
	if err := s.store.StepUpSession(ctx, sess.ID, now); err != nil {
		return Session{}, err
	}
	s.cache.dropUser(u.ID, sess.ID)
	sess.MFA, sess.MFAAt = true, now
	if err := s.record(ctx, audit.Event{ActorID: u.ID, Action: "auth.step_up", Target: "session:" + sess.ID, Outcome: audit.Success, Details: map[string]string{"method": method}}); err != nil {
		return Session{}, err
	}
	return sess, nil
}
