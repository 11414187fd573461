package identity

import (
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// The identity errors. Messages are deliberately the same for known and
// unknown accounts (AUTH-7).
var (
	errInvalidEmail       = fault.New(fault.Invalid, "email_invalid", "enter a valid email address")
	errInvalidCredentials = fault.New(fault.Unauthenticated, "invalid_credentials", "email or password is incorrect")
	errNotSignedIn        = fault.New(fault.Unauthenticated, "unauthenticated", "sign in first")
	errMFAPending         = fault.New(fault.Unauthenticated, "mfa_pending", "finish signing in with your second factor")
	errTokenInvalid       = fault.New(fault.Invalid, "token_invalid", "this link is invalid or has expired")
	errMFAInvalid         = fault.New(fault.Unauthenticated, "mfa_code_invalid", "the code is incorrect")
	errMFAReused          = fault.New(fault.Unauthenticated, "mfa_code_reused", "this code was already used; wait for the next one")
	errTOTPEnabled        = fault.New(fault.Conflict, "totp_already_enabled", "two-factor authentication is already on")
	errTOTPNotEnabled     = fault.New(fault.Conflict, "totp_not_enabled", "two-factor authentication is not on")
	errTOTPNotStarted     = fault.New(fault.Conflict, "totp_not_started", "start enrolment first")
	errSessionNotFound    = fault.New(fault.NotFound, "session_not_found", "no such session")
)

func errTooMany(retry time.Duration) error {
	if retry < time.Second {
		retry = time.Second
	}
	return &fault.Error{Kind: fault.RateLimited, Code: "too_many_attempts", Message: "too many attempts; try again later", RetryAfter: retry.Round(time.Second)}
}

func errAudit(err error) error {
	return fault.Wrap(fault.Unavailable, "audit_unavailable", "the request could not be recorded; try again", err)
}
