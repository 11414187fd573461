package identity

import (
	"context"
	"time"
)

// User is an account. Email is stored normalized (trimmed, lower-cased).
// TOTPSecret is ciphertext sealed under a key derived from the root key; it
// is never held in plaintext outside a request that needs it.
type User struct {
	ID                  string
	Email               string
	EmailVerifiedAt     time.Time // zero when not verified
	PasswordHash        string    // argon2id PHC string
	PasswordCompromised bool      // found in the breached list at sign-in: a change is required
	TOTPSecret          []byte    // sealed; nil when never enrolled
	TOTPEnabled         bool
	TOTPLastStep        int64 // highest TOTP time step accepted, to refuse replays
	FailedSignins       int
	LockedUntil         time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Session is a server-side session. Only SHA-256 hashes of its tokens are
// stored. PrevTokenHash is the token replaced by the last rotation, still
// accepted until PrevValidUntil so that requests already in flight succeed.
type Session struct {
	ID             string // public identifier, used to list and revoke
	UserID         string
	TokenHash      []byte
	PrevTokenHash  []byte
	PrevValidUntil time.Time
	Pending        bool      // password accepted, MFA still owed: grants nothing else
	MFA            bool      // the session was completed with a second factor
	MFAAt          time.Time // last second-factor check (sign-in or step-up), for sensitive actions
	IP             string
	UserAgent      string
	CreatedAt      time.Time
	LastSeenAt     time.Time
	RotatedAt      time.Time
	ExpiresAt      time.Time // absolute timeout
}

// Token kinds for single-use tokens sent by mail.
const (
	TokenVerifyEmail   = "verify_email"
	TokenPasswordReset = "password_reset"
)

// Token is a single-use token; only its SHA-256 hash is stored.
type Token struct {
	Hash      []byte
	Kind      string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// HashStats counts stored password hashes for the ENC-6 live check.
type HashStats struct {
	Total       int
	NotArgon2id int
}

// Store is the storage identity needs. Methods return fault.ErrNotFound (or an
// error of kind fault.NotFound) when a row does not exist, and an error of
// kind fault.Conflict on a uniqueness violation.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	SetEmailVerified(ctx context.Context, userID string, at time.Time) error
	// SetPassword replaces the hash and the compromised flag.
	SetPassword(ctx context.Context, userID, hash string, compromised bool, now time.Time) error
	SetPasswordCompromised(ctx context.Context, userID string, compromised bool) error
	// AddSigninFailure increments the failure count and returns the new count.
	AddSigninFailure(ctx context.Context, userID string, now time.Time) (int, error)
	// ClearSigninFailures zeroes the count and any lock.
	ClearSigninFailures(ctx context.Context, userID string) error
	LockUser(ctx context.Context, userID string, until time.Time) error

	// SetTOTPSecret stores a pending (not yet enabled) sealed secret.
	SetTOTPSecret(ctx context.Context, userID string, sealed []byte) error
	// EnableTOTP enables TOTP, records the accepted step and replaces the
	// recovery codes, in one transaction.
	EnableTOTP(ctx context.Context, userID string, step int64, codeHashes [][]byte, now time.Time) error
	// DisableTOTP clears the secret, the step and the recovery codes.
	DisableTOTP(ctx context.Context, userID string) error
	// AdvanceTOTPStep sets the last accepted step to step only if it is
	// greater than the stored one; false means the code was already used.
	AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	RecoveryCodeHashes(ctx context.Context, userID string) ([][]byte, error)
	// UseRecoveryCode marks an unused code used; false if already used.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time) (bool, error)

	CreateSession(ctx context.Context, s *Session) error
	// SessionByTokenHash finds the session whose current or previous token
	// hash is h. Callers check PrevValidUntil for the previous one.
	SessionByTokenHash(ctx context.Context, h []byte) (*Session, error)
	// RotateSession replaces the token hash if it is still oldHash
	// (compare-and-swap); false when another request rotated first.
	RotateSession(ctx context.Context, id string, oldHash, newHash []byte, prevValidUntil, now time.Time) (bool, error)
	// CompleteSessionMFA turns a pending session into a full one with a new
	// token hash and a new absolute expiry; it sets MFA and MFAAt (= now).
	CompleteSessionMFA(ctx context.Context, id string, newHash []byte, now, expiresAt time.Time) error
	TouchSession(ctx context.Context, id string, now time.Time) error
	// StepUpSession records a fresh second-factor check on the session
	// (sets MFA and MFAAt).
	StepUpSession(ctx context.Context, id string, at time.Time) error
	ListSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteSession deletes the user's session id; NotFound when the id is
	// not one of the user's.
	DeleteSession(ctx context.Context, userID, id string) error
	// DeleteUserSessions deletes every session of the user except keepID
	// (which may be empty) and returns how many were deleted.
	DeleteUserSessions(ctx context.Context, userID, keepID string) (int, error)
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	CreateToken(ctx context.Context, t *Token) error
	// ConsumeToken marks an unexpired, unused token of the kind used and
	// returns its user; NotFound otherwise (unknown, used or expired alike).
	ConsumeToken(ctx context.Context, kind string, hash []byte, now time.Time) (string, error)
	// DeleteUserTokens removes the user's unused tokens of a kind.
	DeleteUserTokens(ctx context.Context, userID, kind string) error
	// ResetPassword consumes a reset token, sets the new hash, clears
	// failures and locks and deletes every session, in one transaction.
	ResetPassword(ctx context.Context, tokenHash []byte, newHash string, now time.Time) (string, error)

	KnownDevice(ctx context.Context, userID string, deviceHash []byte) (bool, error)
	RememberDevice(ctx context.Context, userID string, deviceHash []byte, now time.Time) error

	PasswordHashStats(ctx context.Context) (HashStats, error)
}
