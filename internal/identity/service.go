// Package identity holds accounts, passwords, sessions, MFA, password reset,
// email verification and account-takeover protection. It knows nothing of
// HTTP or SQL: the web package calls it, the store package implements Store.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	rmail "github.com/rampartsec/rampart/internal/mail"
	"github.com/rampartsec/rampart/internal/vault"
)

// PasswordHasher computes and verifies password hashes through a bounded
// pool (see package password).
type PasswordHasher interface {
	Hash(ctx context.Context, pw string) (string, error)
	Verify(ctx context.Context, encoded, pw string) (ok, needsRehash bool, err error)
	// VerifyDummy spends the same effort as Verify for an unknown account;
	// it fails only when the pool is saturated, as Verify would.
	VerifyDummy(ctx context.Context, pw string) error
}

// PasswordPolicy decides which passwords are acceptable (NIST SP 800-63B).
type PasswordPolicy interface {
	Check(pw string, context ...string) error
	IsCommon(pw string) bool
}

// Mailer sends account mail.
type Mailer interface {
	Send(ctx context.Context, m rmail.Message) error
}

// Sealer encrypts small secrets (the TOTP seed) bound to their row.
type Sealer interface {
	Seal(plaintext []byte, ad vault.AD) ([]byte, error)
	Open(ciphertext []byte, ad vault.AD) ([]byte, error)
}

// Config holds the identity settings; the app fills it from config.Config.
type Config struct {
	PublicURL       string
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	RotateEvery     time.Duration
	RotateGrace     time.Duration
	PendingMFATTL   time.Duration // life of a half-finished (password only) sign-in
	ResetTTL        time.Duration
	VerifyTTL       time.Duration
	SessionCacheTTL time.Duration // how long a validated session may be served from memory
	MFAIssuer       string
	Throttle        ThrottleConfig
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store  Store
	Hasher PasswordHasher
	Policy PasswordPolicy
	Mailer Mailer
	Sealer Sealer
	Audit  audit.Recorder
	Log    *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// Service implements the account and session use cases.
type Service struct {
	cfg      Config
	store    Store
	hasher   PasswordHasher
	policy   PasswordPolicy
	mailer   Mailer
	sealer   Sealer
	audit    audit.Recorder
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader
	throttle *throttle
	cache    *sessionCache

	// background work (mail for reset requests) runs detached from the
	// request so that known and unknown emails answer in alike time.
	bg    sync.WaitGroup
	bgSem chan struct{}
}

// New returns a Service.
func New(cfg Config, d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PendingMFATTL == 0 {
		cfg.PendingMFATTL = 5 * time.Minute
	}
	return &Service{
		cfg: cfg, store: d.Store, hasher: d.Hasher, policy: d.Policy, mailer: d.Mailer,
		sealer: d.Sealer, audit: d.Audit, log: d.Log, now: d.Now, rand: d.Rand,
		throttle: newThrottle(cfg.Throttle, d.Now),
		cache:    newSessionCache(cfg.SessionCacheTTL, d.Now),
		bgSem:    make(chan struct{}, 64),
	}
}

// Wait blocks until background work started by earlier calls is done.
// Tests and shutdown use it.
func (s *Service) Wait() { s.bg.Wait() }

// background runs fn detached from the request context, bounded in number.
func (s *Service) background(ctx context.Context, name string, fn func(ctx context.Context) error) {
	select {
	case s.bgSem <- struct{}{}:
	default:
		s.log.Warn("background queue full; work dropped", "work", name)
		return
	}
	s.bg.Add(1)
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer s.bg.Done()
		defer func() { <-s.bgSem }()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := fn(ctx); err != nil {
			s.log.Error("background work failed", "work", name, "err", err)
		}
	}()
}

// NormalizeEmail trims and lower-cases an address and checks its form. The
// error is the same for every malformed input.
func NormalizeEmail(raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	if len(e) < 3 || len(e) > 254 {
		return "", errInvalidEmail
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") && !strings.HasSuffix(e, "@localhost") {
		return "", errInvalidEmail
	}
	return e, nil
}

// randomToken returns a 256-bit random token, URL-safe.
func (s *Service) randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomID returns a 128-bit random identifier.
func (s *Service) randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", err
	}
	return idEncoding.EncodeToString(b), nil
}

// HashToken is the SHA-256 of a token as stored. Tokens carry 256 bits of
// entropy, so a fast hash is enough: there is nothing to brute-force.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// accountKey names an email for the in-memory throttle without keeping the
// address itself in memory tables or logs.
func accountKey(email string) string {
	h := sha256.Sum256([]byte("rampart-account:" + email))
	return hex.EncodeToString(h[:12])
}

// record writes an audit event, carrying the request facts from ctx.
func (s *Service) record(ctx context.Context, e audit.Event) error {
	if s.audit == nil {
		return nil
	}
	e = audit.FromRequest(ctx, e)
	if e.ActorType == "" {
		if e.ActorID != "" {
			e.ActorType = audit.ActorUser
		} else {
			e.ActorType = audit.ActorAnonymous
		}
	}
	e.Time = s.now().UTC()
	if err := s.audit.Record(ctx, e); err != nil {
		s.log.Error("audit record failed", "action", e.Action, "err", err)
		return errAudit(err)
	}
	return nil
}

func (s *Service) link(path, token string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + path + "?token=" + token
}

func (s *Service) send(ctx context.Context, m rmail.Message) {
	if s.mailer == nil {
		return
	}
	if err := s.mailer.Send(ctx, m); err != nil {
		s.log.Error("mail send failed", "kind", m.Kind, "err", err)
	}
}
