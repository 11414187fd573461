package identity

import (
	"context"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// Auth is the result of validating a session token.
type Auth struct {
	Session Session
	// NewToken is set when the session was rotated during validation; the
	// caller must send it to the client (a new cookie).
	NewToken string
}

// touchEvery bounds how often validation writes last-seen to the store: idle
// timeouts are measured to this precision.
const touchEvery = time.Minute

// sessionCache keeps recently validated sessions in memory so that session
// validation does not cost a database round trip on every request. Local
// revocations drop entries at once; on a cluster another node's revocation
// is seen after at most the TTL.
type sessionCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.RWMutex
	m   map[string]cachedSession
}

type cachedSession struct {
	s       Session
	fetched time.Time
}

func newSessionCache(ttl time.Duration, now func() time.Time) *sessionCache {
	return &sessionCache{ttl: ttl, now: now, m: map[string]cachedSession{}}
}

func (c *sessionCache) get(h string) (Session, bool) {
	if c.ttl <= 0 {
		return Session{}, false
	}
	c.mu.RLock()
	e, ok := c.m[h]
	c.mu.RUnlock()
	if !ok || c.now().Sub(e.fetched) > c.ttl {
		return Session{}, false
	}
	return e.s, true
}

func (c *sessionCache) put(h string, s Session) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	if len(c.m) > 100000 {
		for k, e := range c.m {
			if now.Sub(e.fetched) > c.ttl {
				delete(c.m, k)
			}
		}
	}
	c.m[h] = cachedSession{s: s, fetched: now}
	c.mu.Unlock()
}

// dropUser removes every cached session of a user (sessionID "" = all).
func (c *sessionCache) dropUser(userID, sessionID string) {
	c.mu.Lock()
	for k, e := range c.m {
		if e.s.UserID == userID && (sessionID == "" || e.s.ID == sessionID) {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// Authenticate validates a session token: it must exist, be complete (not
// waiting for MFA), within its idle and absolute timeouts. A token replaced
// by rotation is accepted during the grace period. When the session is due
// for rotation a new token is issued in Auth.NewToken.
func (s *Service) Authenticate(ctx context.Context, token string) (Auth, error) {
	sess, err := s.lookupSession(ctx, token)
	if err != nil {
		return Auth{}, err
	}
	if sess.Pending {
		return Auth{}, errMFAPending
	}
	now := s.now()
	a := Auth{Session: *sess}
	h := HashToken(token)
	isCurrent := subtle.ConstantTimeCompare(sess.TokenHash, h) == 1
	rotated := false
	if isCurrent && s.cfg.RotateEvery > 0 && now.Sub(sess.RotatedAt) >= s.cfg.RotateEvery {
		nt, err := s.rotate(ctx, sess, h)
		if err != nil {
			return Auth{}, s.sessionGone(sess, err)
		}
		a.NewToken, rotated = nt, true
	}
	// A rotation already stamped last-seen and left sess stale: caching it
	// would make the old token current again.
	if !rotated && now.Sub(sess.LastSeenAt) >= touchEvery {
		if err := s.store.TouchSession(ctx, sess.ID, now); err != nil {
			return Auth{}, s.sessionGone(sess, err)
		}
		sess.LastSeenAt = now
		s.cache.put(string(h), *sess)
	}
	return a, nil
}

// sessionGone maps a write that found the session deleted (revoked on
// another node while this node had it cached) to "sign in", not a storage
// error, and forgets the cached copy.
func (s *Service) sessionGone(sess *Session, err error) error {
	if fault.Is(err, fault.NotFound) {
		s.cache.dropUser(sess.UserID, sess.ID)
		return errNotSignedIn
	}
	return err
}

// lookupSession finds a live session (pending or not) for token.
func (s *Service) lookupSession(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, errNotSignedIn
	}
	h := HashToken(token)
	key := string(h)
	sess, ok := s.cache.get(key)
	if !ok {
		p, err := s.store.SessionByTokenHash(ctx, h)
		if fault.Is(err, fault.NotFound) {
			return nil, errNotSignedIn
		}
		if err != nil {
			return nil, err
		}
		sess = *p
		s.cache.put(key, sess)
	}
	now := s.now()
	if subtle.ConstantTimeCompare(sess.TokenHash, h) != 1 {
		// Matched the previous token: valid only within the grace period.
		if subtle.ConstantTimeCompare(sess.PrevTokenHash, h) != 1 || !now.Before(sess.PrevValidUntil) {
			return nil, errNotSignedIn
		}
	}
	if !now.Before(sess.ExpiresAt) || (s.cfg.IdleTimeout > 0 && now.Sub(sess.LastSeenAt) >= s.cfg.IdleTimeout) {
		s.cache.dropUser(sess.UserID, sess.ID)
		if err := s.store.DeleteSession(ctx, sess.UserID, sess.ID); err != nil && !fault.Is(err, fault.NotFound) {
			return nil, err
		}
		return nil, errNotSignedIn
	}
	return &sess, nil
}

// rotate replaces a session's token, keeping the old one valid for the grace
// period. If another request rotated first, the caller keeps its token,
// which is now the previous one and still inside the grace period.
func (s *Service) rotate(ctx context.Context, sess *Session, oldHash []byte) (string, error) {
	nt, err := s.randomToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	nh := HashToken(nt)
	ok, err := s.store.RotateSession(ctx, sess.ID, oldHash, nh, now.Add(s.cfg.RotateGrace), now)
	if err != nil {
		return "", err
	}
	s.cache.dropUser(sess.UserID, sess.ID)
	if !ok {
		return "", nil
	}
	return nt, nil
}

// Rotate issues a new token for a session at once, used at privilege changes
// (MFA enrolled, password changed).
func (s *Service) Rotate(ctx context.Context, sess Session) (string, error) {
	nt, err := s.rotate(ctx, &sess, sess.TokenHash)
	if err != nil {
		return "", err
	}
	if nt == "" {
		return "", fault.New(fault.Conflict, "session_changed", "the session changed; try again")
	}
	return nt, nil
}

// newSession creates a session and returns its token.
func (s *Service) newSession(ctx context.Context, userID string, pending, mfa bool) (string, *Session, error) {
	tok, err := s.randomToken()
	if err != nil {
		return "", nil, err
	}
	id, err := s.randomID()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	m := audit.MetaFrom(ctx)
	exp := now.Add(s.cfg.AbsoluteTimeout)
	if pending {
		exp = now.Add(s.cfg.PendingMFATTL)
	}
	sess := &Session{
		ID: id, UserID: userID, TokenHash: HashToken(tok), Pending: pending, MFA: mfa,
		IP: m.IP, UserAgent: truncate(m.UserAgent, 256),
		CreatedAt: now, LastSeenAt: now, RotatedAt: now, ExpiresAt: exp,
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", nil, err
	}
	return tok, sess, nil
}

// SignOut ends the session of token. Unknown tokens are not an error.
func (s *Service) SignOut(ctx context.Context, token string) error {
	sess, err := s.lookupSession(ctx, token)
	if err != nil {
		return nil
	}
	s.cache.dropUser(sess.UserID, sess.ID)
	if err := s.store.DeleteSession(ctx, sess.UserID, sess.ID); err != nil && !fault.Is(err, fault.NotFound) {
		return err
	}
	return s.record(ctx, audit.Event{ActorID: sess.UserID, Action: "auth.signout", Target: "session:" + sess.ID, Outcome: audit.Success})
}

// Sessions lists the user's sessions.
func (s *Service) Sessions(ctx context.Context, userID string) ([]Session, error) {
	return s.store.ListSessions(ctx, userID)
}

// RevokeSession ends one of the user's sessions.
func (s *Service) RevokeSession(ctx context.Context, userID, id string) error {
	err := s.store.DeleteSession(ctx, userID, id)
	if fault.Is(err, fault.NotFound) {
		return errSessionNotFound
	}
	if err != nil {
		return err
	}
	s.cache.dropUser(userID, id)
	return s.record(ctx, audit.Event{ActorID: userID, Action: "session.revoke", Target: "session:" + id, Outcome: audit.Success})
}

// RevokeAllSessions ends every session of the user except keepID. It is the
// seam deprovisioning (SCIM) and password changes use.
func (s *Service) RevokeAllSessions(ctx context.Context, userID, keepID string) (int, error) {
	n, err := s.store.DeleteUserSessions(ctx, userID, keepID)
	s.cache.dropUser(userID, "")
	if err != nil {
		return 0, err
	}
	return n, nil
}

// SweepExpired deletes sessions past their absolute expiry.
func (s *Service) SweepExpired(ctx context.Context) (int, error) {
	return s.store.DeleteExpiredSessions(ctx, s.now())
}

func truncate(v string, n int) string {
	if len(v) <= n {
		return v
	}
	return v[:n]
}
