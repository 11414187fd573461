package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
)

var _ identity.Store = (*Store)(nil)

const userColumns = `id, email, email_verified_at, password_hash, password_compromised,
	totp_secret, totp_enabled, totp_last_step, failed_signins, locked_until, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (*identity.User, error) {
	var u identity.User
	var verified, locked sql.NullInt64
	var created, updated int64
	err := row.Scan(&u.ID, &u.Email, &verified, &u.PasswordHash, &u.PasswordCompromised,
		&u.TOTPSecret, &u.TOTPEnabled, &u.TOTPLastStep, &u.FailedSignins, &locked, &created, &updated)
	if err != nil {
		return nil, err
	}
	u.EmailVerifiedAt = fromMicros(verified)
	u.LockedUntil = fromMicros(locked)
	u.CreatedAt = time.UnixMicro(created).UTC()
	u.UpdatedAt = time.UnixMicro(updated).UTC()
	return &u, nil
}

// CreateUser inserts u. An empty ID is generated and zero CreatedAt and
// UpdatedAt are stamped, and written back to u. A taken email or id is a
// fault.Conflict.
func (s *Store) CreateUser(ctx context.Context, u *identity.User) error {
	if u.Email == "" {
		return fault.Invalidf("invalid_user", "a user needs an email")
	}
	if u.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		u.ID = id
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now().UTC()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	_, err := s.exec(ctx, s.db, "create user", `INSERT INTO users (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, micros(u.EmailVerifiedAt), u.PasswordHash, u.PasswordCompromised,
		blob(u.TOTPSecret), u.TOTPEnabled, u.TOTPLastStep, u.FailedSignins, micros(u.LockedUntil),
		u.CreatedAt.UnixMicro(), u.UpdatedAt.UnixMicro())
	return err
}

// UserByID returns the user; fault.ErrNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, id string) (*identity.User, error) {
	u, err := scanUser(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
	if err != nil {
		return nil, s.fail("user by id", err)
	}
	return u, nil
}

// UserByEmail returns the user with exactly this (already normalized)
// email; fault.ErrNotFound if there is none.
func (s *Store) UserByEmail(ctx context.Context, email string) (*identity.User, error) {
	u, err := scanUser(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE email = ?`), email))
	if err != nil {
		return nil, s.fail("user by email", err)
	}
	return u, nil
}

// SetEmailVerified records when the email was verified.
func (s *Store) SetEmailVerified(ctx context.Context, userID string, at time.Time) error {
	return s.execOne(ctx, "set email verified",
		`UPDATE users SET email_verified_at = ?, updated_at = ? WHERE id = ?`,
		micros(at), at.UnixMicro(), userID)
}

// SetPassword replaces the hash and the compromised flag.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, compromised bool, now time.Time) error {
	return s.execOne(ctx, "set password",
		`UPDATE users SET password_hash = ?, password_compromised = ?, updated_at = ? WHERE id = ?`,
		hash, compromised, now.UnixMicro(), userID)
}

// SetPasswordCompromised sets the flag that forces a password change.
func (s *Store) SetPasswordCompromised(ctx context.Context, userID string, compromised bool) error {
	return s.execOne(ctx, "set password compromised",
		`UPDATE users SET password_compromised = ? WHERE id = ?`, compromised, userID)
}

// AddSigninFailure increments the failure count in one statement, so
// concurrent failures are all counted, and returns the new count.
func (s *Store) AddSigninFailure(ctx context.Context, userID string, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`UPDATE users SET failed_signins = failed_signins + 1, updated_at = ?
		WHERE id = ? RETURNING failed_signins`), now.UnixMicro(), userID).Scan(&n)
	if err != nil {
		return 0, s.fail("add signin failure", err)
	}
	return n, nil
}

// ClearSigninFailures zeroes the count and any lock.
func (s *Store) ClearSigninFailures(ctx context.Context, userID string) error {
	return s.execOne(ctx, "clear signin failures",
		`UPDATE users SET failed_signins = 0, locked_until = NULL WHERE id = ?`, userID)
}

// LockUser refuses sign-in until the given time.
func (s *Store) LockUser(ctx context.Context, userID string, until time.Time) error {
	return s.execOne(ctx, "lock user", `UPDATE users SET locked_until = ? WHERE id = ?`, micros(until), userID)
}

// SetTOTPSecret stores a pending sealed secret. While TOTP is enabled it
// refuses with fault.Conflict: silently swapping the secret of an active
// second factor for an unconfirmed one would lock the user out or hand the
// factor to whoever started the enrolment. Disable first.
func (s *Store) SetTOTPSecret(ctx context.Context, userID string, sealed []byte) error {
	n, err := s.exec(ctx, s.db, "set totp secret",
		`UPDATE users SET totp_secret = ? WHERE id = ? AND totp_enabled = ?`, blob(sealed), userID, false)
	if err != nil || n == 1 {
		return err
	}
	found, err := s.exists(ctx, s.db, "set totp secret", `SELECT 1 FROM users WHERE id = ?`, userID)
	if err != nil {
		return err
	}
	if !found {
		return fault.ErrNotFound
	}
	return fault.Conflictf("totp_enabled", "two-factor authentication is already enabled")
}

// EnableTOTP enables TOTP, records the accepted step and replaces the
// recovery codes, in one transaction.
func (s *Store) EnableTOTP(ctx context.Context, userID string, step int64, codeHashes [][]byte, now time.Time) error {
	return s.withTx(ctx, "enable totp", func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "enable totp",
			`UPDATE users SET totp_enabled = ?, totp_last_step = ?, updated_at = ? WHERE id = ?`,
			true, step, now.UnixMicro(), userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fault.ErrNotFound
		}
		return s.replaceRecoveryCodes(ctx, tx, userID, codeHashes)
	})
}

func (s *Store) replaceRecoveryCodes(ctx context.Context, tx *sql.Tx, userID string, codeHashes [][]byte) error {
	if _, err := s.exec(ctx, tx, "replace recovery codes", `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, h := range codeHashes {
		if _, err := s.exec(ctx, tx, "replace recovery codes",
			`INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`, userID, h); err != nil {
			return err
		}
	}
	return nil
}

// DisableTOTP clears the secret, the step and the recovery codes.
func (s *Store) DisableTOTP(ctx context.Context, userID string) error {
	return s.withTx(ctx, "disable totp", func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "disable totp",
			`UPDATE users SET totp_secret = NULL, totp_enabled = ?, totp_last_step = 0 WHERE id = ?`, false, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fault.ErrNotFound
		}
		_, err = s.exec(ctx, tx, "disable totp", `DELETE FROM recovery_codes WHERE user_id = ?`, userID)
		return err
	})
}

// AdvanceTOTPStep sets the last accepted step to step only if it is greater
// than the stored one, as a single conditional UPDATE: of two requests
// presenting the same code at once exactly one gets true. false means the
// code was already used; fault.ErrNotFound means no such user.
func (s *Store) AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	n, err := s.exec(ctx, s.db, "advance totp step",
		`UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, userID, step)
	if err != nil {
		return false, err
	}
	if n == 1 {
		return true, nil
	}
	found, err := s.exists(ctx, s.rdb, "advance totp step", `SELECT 1 FROM users WHERE id = ?`, userID)
	if err != nil {
		return false, err
	}
	if !found {
		return false, fault.ErrNotFound
	}
	return false, nil
}

// RecoveryCodeHashes returns the hashes of the user's unused recovery codes.
func (s *Store) RecoveryCodeHashes(ctx context.Context, userID string) ([][]byte, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL ORDER BY hash`), userID)
	if err != nil {
		return nil, s.fail("recovery code hashes", err)
	}
	defer rows.Close()
	var hs [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, s.fail("recovery code hashes", err)
		}
		hs = append(hs, h)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("recovery code hashes", err)
	}
	return hs, nil
}

// UseRecoveryCode marks an unused code used in one conditional UPDATE;
// false if it was already used or is not one of the user's codes.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time) (bool, error) {
	n, err := s.exec(ctx, s.db, "use recovery code",
		`UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`,
		now.UnixMicro(), userID, hash)
	return n == 1, err
}

const sessionColumns = `id, user_id, token_hash, prev_token_hash, prev_valid_until, pending, mfa,
	ip, user_agent, created_at, last_seen_at, rotated_at, expires_at, mfa_at`

func scanSession(row interface{ Scan(...any) error }) (*identity.Session, error) {
	var ss identity.Session
	var prevValid, lastSeen, rotated, mfaAt sql.NullInt64
	var created, expires int64
	err := row.Scan(&ss.ID, &ss.UserID, &ss.TokenHash, &ss.PrevTokenHash, &prevValid, &ss.Pending, &ss.MFA,
		&ss.IP, &ss.UserAgent, &created, &lastSeen, &rotated, &expires, &mfaAt)
	if err != nil {
		return nil, err
	}
	ss.PrevValidUntil = fromMicros(prevValid)
	ss.LastSeenAt = fromMicros(lastSeen)
	ss.RotatedAt = fromMicros(rotated)
	ss.MFAAt = fromMicros(mfaAt)
	ss.CreatedAt = time.UnixMicro(created).UTC()
	ss.ExpiresAt = time.UnixMicro(expires).UTC()
	return &ss, nil
}

// CreateSession inserts a session. An empty ID is generated, a zero
// CreatedAt stamped and a zero LastSeenAt set to CreatedAt, and written
// back to ss. A session needs a user, a token hash and an expiry.
func (s *Store) CreateSession(ctx context.Context, ss *identity.Session) error {
	if ss.UserID == "" || len(ss.TokenHash) == 0 || ss.ExpiresAt.IsZero() {
		return fault.Invalidf("invalid_session", "a session needs a user, a token hash and an expiry")
	}
	if ss.ID == "" {
		id, err := s.newID()
		if err != nil {
			return err
		}
		ss.ID = id
	}
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = s.now().UTC()
	}
	if ss.LastSeenAt.IsZero() {
		ss.LastSeenAt = ss.CreatedAt
	}
	_, err := s.exec(ctx, s.db, "create session", `INSERT INTO sessions (`+sessionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ss.ID, ss.UserID, ss.TokenHash, blob(ss.PrevTokenHash), micros(ss.PrevValidUntil), ss.Pending, ss.MFA,
		ss.IP, ss.UserAgent, ss.CreatedAt.UnixMicro(), micros(ss.LastSeenAt), micros(ss.RotatedAt), ss.ExpiresAt.UnixMicro(), micros(ss.MFAAt))
	return err
}

// SessionByTokenHash finds the session whose current or previous token
// hash is h. Callers check PrevValidUntil for the previous one.
func (s *Store) SessionByTokenHash(ctx context.Context, h []byte) (*identity.Session, error) {
	if len(h) == 0 {
		return nil, fault.ErrNotFound
	}
	ss, err := scanSession(s.rdb.QueryRowContext(ctx,
		s.q(`SELECT `+sessionColumns+` FROM sessions WHERE token_hash = ? OR prev_token_hash = ? LIMIT 1`), h, h))
	if err != nil {
		return nil, s.fail("session by token hash", err)
	}
	return ss, nil
}

// RotateSession replaces the token hash if it is still oldHash, keeping
// oldHash as the previous hash until prevValidUntil. The condition and the
// write are one statement, so of two concurrent rotations exactly one
// returns true. fault.ErrNotFound means the session is gone.
func (s *Store) RotateSession(ctx context.Context, id string, oldHash, newHash []byte, prevValidUntil, now time.Time) (bool, error) {
	n, err := s.exec(ctx, s.db, "rotate session",
		`UPDATE sessions SET token_hash = ?, prev_token_hash = token_hash, prev_valid_until = ?,
			rotated_at = ?, last_seen_at = ?
		WHERE id = ? AND token_hash = ?`,
		newHash, micros(prevValidUntil), now.UnixMicro(), now.UnixMicro(), id, oldHash)
	if err != nil {
		return false, err
	}
	if n == 1 {
		return true, nil
	}
	found, err := s.exists(ctx, s.rdb, "rotate session", `SELECT 1 FROM sessions WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	if !found {
		return false, fault.ErrNotFound
	}
	return false, nil
}

// CompleteSessionMFA turns a pending session into a full one with a new
// token hash and a new absolute expiry. The previous hash is dropped: the
// token that only proved a password must not keep working next to the
// upgraded one.
func (s *Store) CompleteSessionMFA(ctx context.Context, id string, newHash []byte, now, expiresAt time.Time) error {
	return s.execOne(ctx, "complete session mfa",
		`UPDATE sessions SET token_hash = ?, prev_token_hash = NULL, prev_valid_until = NULL,
			pending = ?, mfa = ?, mfa_at = ?, rotated_at = ?, last_seen_at = ?, expires_at = ?
		WHERE id = ?`,
		newHash, false, true, now.UnixMicro(), now.UnixMicro(), now.UnixMicro(), expiresAt.UnixMicro(), id)
}

// StepUpSession records a fresh second-factor check on a session.
func (s *Store) StepUpSession(ctx context.Context, id string, at time.Time) error {
	return s.execOne(ctx, "step up session", `UPDATE sessions SET mfa = ?, mfa_at = ? WHERE id = ?`, true, at.UnixMicro(), id)
}

// TouchSession records activity for the idle timeout.
func (s *Store) TouchSession(ctx context.Context, id string, now time.Time) error {
	return s.execOne(ctx, "touch session", `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, now.UnixMicro(), id)
}

// ListSessions returns the user's sessions, newest first, expired ones
// included (the sweep removes those).
func (s *Store) ListSessions(ctx context.Context, userID string) ([]identity.Session, error) {
	rows, err := s.rdb.QueryContext(ctx,
		s.q(`SELECT `+sessionColumns+` FROM sessions WHERE user_id = ? ORDER BY created_at DESC, id`), userID)
	if err != nil {
		return nil, s.fail("list sessions", err)
	}
	defer rows.Close()
	var out []identity.Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, s.fail("list sessions", err)
		}
		out = append(out, *ss)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list sessions", err)
	}
	return out, nil
}

// DeleteSession deletes the user's session id; fault.ErrNotFound when the
// id is not one of the user's, so a user cannot probe or revoke others'.
func (s *Store) DeleteSession(ctx context.Context, userID, id string) error {
	return s.execOne(ctx, "delete session", `DELETE FROM sessions WHERE id = ? AND user_id = ?`, id, userID)
}

// DeleteUserSessions deletes every session of the user except keepID
// (which may be empty) and returns how many were deleted.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, keepID string) (int, error) {
	n, err := s.exec(ctx, s.db, "delete user sessions", `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, keepID)
	return int(n), err
}

// DeleteExpiredSessions removes sessions past their absolute expiry.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.db, "delete expired sessions", `DELETE FROM sessions WHERE expires_at <= ?`, now.UnixMicro())
	return int(n), err
}

// CreateToken stores a single-use token. A zero CreatedAt is stamped.
func (s *Store) CreateToken(ctx context.Context, t *identity.Token) error {
	if len(t.Hash) == 0 || t.Kind == "" || t.UserID == "" || t.ExpiresAt.IsZero() {
		return fault.Invalidf("invalid_token", "a token needs a hash, a kind, a user and an expiry")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now().UTC()
	}
	_, err := s.exec(ctx, s.db, "create token",
		`INSERT INTO tokens (hash, kind, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		t.Hash, t.Kind, t.UserID, t.CreatedAt.UnixMicro(), t.ExpiresAt.UnixMicro())
	return err
}

// ConsumeToken marks an unexpired, unused token of the kind used and
// returns its user; fault.ErrNotFound otherwise (unknown, used, expired or
// of another kind alike). The check and the mark are one statement, so a
// token is consumed at most once even under concurrent use.
func (s *Store) ConsumeToken(ctx context.Context, kind string, hash []byte, now time.Time) (string, error) {
	return s.consumeToken(ctx, s.db, kind, hash, now)
}

func (s *Store) consumeToken(ctx context.Context, x querier, kind string, hash []byte, now time.Time) (string, error) {
	var userID string
	err := x.QueryRowContext(ctx, s.q(`UPDATE tokens SET used_at = ?
		WHERE hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?
		RETURNING user_id`), now.UnixMicro(), hash, kind, now.UnixMicro()).Scan(&userID)
	if err != nil {
		return "", s.fail("consume token", err)
	}
	return userID, nil
}

// DeleteUserTokens removes the user's unused tokens of a kind.
func (s *Store) DeleteUserTokens(ctx context.Context, userID, kind string) error {
	_, err := s.exec(ctx, s.db, "delete user tokens",
		`DELETE FROM tokens WHERE user_id = ? AND kind = ? AND used_at IS NULL`, userID, kind)
	return err
}

// ResetPassword consumes a password-reset token, sets the new hash, clears
// the compromised flag, failures and lock, deletes every session and every
// other unused reset token of the user, in one transaction: either all of
// it happens or none. fault.ErrNotFound when the token is not usable.
func (s *Store) ResetPassword(ctx context.Context, tokenHash []byte, newHash string, now time.Time) (string, error) {
	var userID string
	err := s.withTx(ctx, "reset password", func(tx *sql.Tx) error {
		var err error
		userID, err = s.consumeToken(ctx, tx, identity.TokenPasswordReset, tokenHash, now)
		if err != nil {
			return err
		}
		n, err := s.exec(ctx, tx, "reset password",
			`UPDATE users SET password_hash = ?, password_compromised = ?, failed_signins = 0,
				locked_until = NULL, updated_at = ? WHERE id = ?`,
			newHash, false, now.UnixMicro(), userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fault.ErrNotFound
		}
		if _, err := s.exec(ctx, tx, "reset password", `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, "reset password",
			`DELETE FROM tokens WHERE user_id = ? AND kind = ? AND used_at IS NULL`, userID, identity.TokenPasswordReset)
		return err
	})
	if err != nil {
		return "", err
	}
	return userID, nil
}

// KnownDevice reports whether the user has signed in from this device.
func (s *Store) KnownDevice(ctx context.Context, userID string, deviceHash []byte) (bool, error) {
	return s.exists(ctx, s.rdb, "known device",
		`SELECT 1 FROM known_devices WHERE user_id = ? AND device_hash = ?`, userID, deviceHash)
}

// RememberDevice records a sign-in from the device, keeping its first
// sighting. fault.NotFound if the user does not exist.
func (s *Store) RememberDevice(ctx context.Context, userID string, deviceHash []byte, now time.Time) error {
	_, err := s.exec(ctx, s.db, "remember device",
		`INSERT INTO known_devices (user_id, device_hash, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, device_hash) DO UPDATE SET last_seen_at = excluded.last_seen_at`,
		userID, deviceHash, now.UnixMicro(), now.UnixMicro())
	return err
}

// PasswordHashStats counts stored password hashes and those not in the
// argon2id PHC format (ENC-6). Users without a password are not counted.
// substr, not LIKE: SQLite's LIKE ignores case.
func (s *Store) PasswordHashStats(ctx context.Context) (identity.HashStats, error) {
	var st identity.HashStats
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*),
			COALESCE(SUM(CASE WHEN substr(password_hash, 1, 10) <> '$argon2id$' THEN 1 ELSE 0 END), 0)
		FROM users WHERE password_hash <> ''`).Scan(&st.Total, &st.NotArgon2id)
	if err != nil {
		return st, s.fail("password hash stats", err)
	}
	return st, nil
}
