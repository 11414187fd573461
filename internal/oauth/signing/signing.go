// Package signing holds Rampart's signing keys: the keys that sign OAuth
// access tokens, ID tokens and the gateway's identity assertions (SES-2).
//
// A key goes through three states, decided by its timestamps alone so every
// node of a cluster agrees without talking to the others:
//
//	created ─ published (in the JWKS) ─ active_from ─ signs ─ retired_at ─ still published ─ delete_after
//
// A new key is published PublishAhead before it signs, longer than any
// node takes to reload the key set (ReloadEvery), so a verifier that caches
// the JWKS already knows the key when the first token signed with it
// arrives. An old key stays published MaxTokenTTL (plus ReloadEvery and
// clock skew) after it stopped signing, so every token it signed expires
// before its key disappears. Private keys are stored only sealed through
// vault.Sealer; the package knows nothing of SQL or HTTP.
package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// Algorithm is a JWS algorithm Rampart signs with.
type Algorithm string

// The supported algorithms. EdDSA is Ed25519 (RFC 8037); ES256 is ECDSA on
// P-256 with SHA-256 (RFC 7518), for relying parties without Ed25519.
const (
	EdDSA Algorithm = "EdDSA"
	ES256 Algorithm = "ES256"
)

// Key states as KeyInfo reports them.
const (
	StatePending = "pending" // published, not yet signing
	StateActive  = "active"  // signing (the newest active key signs)
	StateRetired = "retired" // no longer signing, published until DeleteAfter
)

// Defaults for zero Config fields.
const (
	DefaultRotateEvery  = 30 * 24 * time.Hour
	DefaultPublishAhead = time.Hour
	DefaultMaxTokenTTL  = 15 * time.Minute
	DefaultReloadEvery  = time.Minute
)

// ClockSkew is added to every overlap: nodes' clocks and verifiers'
// clocks disagree a little, and a token must not outlive its key by that.
const ClockSkew = time.Minute

// unknownKidReloadEvery bounds the reloads an unknown kid triggers: a token
// signed by a key another node just created is accepted after one store
// read, and a stream of made-up kids costs at most one read per interval.
const unknownKidReloadEvery = time.Second

// Config configures key lifetimes.
type Config struct {
	Algorithm    Algorithm     // "EdDSA" (default) or "ES256"
	RotateEvery  time.Duration // scheduled rotation (default 30 days)
	PublishAhead time.Duration // a new key is published this long before it signs (default 1h; must exceed ReloadEvery)
	MaxTokenTTL  time.Duration // longest lifetime of anything signed; an old key stays published at least this long after its last signature
	ReloadEvery  time.Duration // how often a node re-reads the key set (default 1 min)
}

// withDefaults fills zero fields and checks the relations between them.
func (c Config) withDefaults() (Config, error) {
	if c.Algorithm == "" {
		c.Algorithm = EdDSA
	}
	if c.RotateEvery == 0 {
		c.RotateEvery = DefaultRotateEvery
	}
	if c.PublishAhead == 0 {
		c.PublishAhead = DefaultPublishAhead
	}
	if c.MaxTokenTTL == 0 {
		c.MaxTokenTTL = DefaultMaxTokenTTL
	}
	if c.ReloadEvery == 0 {
		c.ReloadEvery = DefaultReloadEvery
	}
	switch {
	case c.Algorithm != EdDSA && c.Algorithm != ES256:
		return c, fmt.Errorf("signing: algorithm %q is not EdDSA or ES256", c.Algorithm)
	case c.RotateEvery < 0 || c.PublishAhead < 0 || c.MaxTokenTTL < 0 || c.ReloadEvery < 0:
		return c, errors.New("signing: durations must be positive")
	case c.PublishAhead <= c.ReloadEvery:
		return c, errors.New("signing: publish_ahead must exceed reload_every, or a node could meet a token signed by a key it has not loaded")
	case c.RotateEvery <= c.PublishAhead:
		return c, errors.New("signing: rotate_every must exceed publish_ahead")
	}
	return c, nil
}

// Store is the persistence the Manager needs; internal/store implements it.
type Store interface {
	// SigningKeys returns every stored key.
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	// CreateSigningKey inserts k. With a non-nil unlessSignsAfter the
	// insert is skipped (false) when an unretired key has active_from
	// after *unlessSignsAfter: checked and inserted atomically, and
	// serialized across nodes, so concurrent Maintain runs create one key.
	CreateSigningKey(ctx context.Context, k StoredKey, unlessSignsAfter *time.Time) (bool, error)
	// RetireSigningKey sets retired_at and delete_after if the key is not
	// retired yet; false if it was (another node did it).
	RetireSigningKey(ctx context.Context, id string, retiredAt, deleteAfter time.Time) (bool, error)
	// RevokeSigningKey sets retired_at and delete_after unconditionally;
	// fault.ErrNotFound for an unknown id.
	RevokeSigningKey(ctx context.Context, id string, retiredAt, deleteAfter time.Time) error
	// DeleteSigningKey removes the key; false if it was already gone.
	DeleteSigningKey(ctx context.Context, id string) (bool, error)
}

// StoredKey is a key as stored: public key in PKIX DER, private key sealed.
type StoredKey struct {
	ID          string
	Algorithm   Algorithm
	PublicKey   []byte // PKIX DER
	PrivateKey  []byte // vault.Sealer ciphertext of the PKCS #8 DER
	CreatedAt   time.Time
	ActiveFrom  time.Time
	RetiredAt   time.Time // zero: not retired
	DeleteAfter time.Time // zero: not scheduled
}

// Deps are the Manager's collaborators.
type Deps struct {
	Store  Store
	Sealer vault.Sealer
	Audit  audit.Recorder
	Log    *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// KeyInfo describes a key for listings and checks; it holds no secret.
type KeyInfo struct {
	ID          string
	Algorithm   Algorithm
	State       string // pending | active | retired
	CreatedAt   time.Time
	ActiveFrom  time.Time
	RetiredAt   time.Time
	DeleteAfter time.Time
}

// key is a loaded key.
type key struct {
	StoredKey
	pub     crypto.PublicKey
	edPub   ed25519.PublicKey // set for EdDSA
	ecPub   *ecdsa.PublicKey  // set for ES256
	private crypto.Signer     // nil for retired keys (never unsealed)
	sealed  []byte            // the ciphertext private was opened from
}

// published reports whether the key verifies tokens at t.
func (k *key) published(t time.Time) bool {
	return k.DeleteAfter.IsZero() || t.Before(k.DeleteAfter)
}

// canSign reports whether the key may sign at t (it is active and not
// retired); the newest such key is the signer.
func (k *key) canSign(t time.Time) bool {
	return !t.Before(k.ActiveFrom) && (k.RetiredAt.IsZero() || t.Before(k.RetiredAt))
}

func (k *key) state(t time.Time, signer *key) string {
	switch {
	case t.Before(k.ActiveFrom):
		return StatePending
	case k == signer:
		return StateActive
	}
	return StateRetired
}

// keySet is an immutable snapshot of the loaded keys, swapped atomically.
type keySet struct {
	byID map[string]*key
	list []*key // by ActiveFrom, oldest first
}

// signer returns the key that signs at t: the newest that can. A key
// whose private half could not be opened never signs (it still verifies).
func (s *keySet) signer(t time.Time) *key {
	for i := len(s.list) - 1; i >= 0; i-- {
		if s.list[i].canSign(t) && s.list[i].private != nil {
			return s.list[i]
		}
	}
	return nil
}

// jwksCache is the JWKS document and until when it is right: publication
// changes only when a key passes its DeleteAfter or the set is reloaded.
type jwksCache struct {
	set   *keySet
	doc   []byte
	until time.Time // zero: no change scheduled
}

// Manager loads, rotates and uses the signing keys. It is safe for
// concurrent use; Sign and Verify take no lock.
type Manager struct {
	cfg  Config
	d    Deps
	keys atomic.Pointer[keySet]
	jwks atomic.Pointer[jwksCache]

	mu         sync.Mutex // serializes reloads and rotations on this node
	lastReload atomic.Int64
	hdrs       sync.Map // headerKey → []byte: encoded headers of Sign

	// hdrCache maps encoded protected headers Verify has parsed to their
	// contents (copy on write, bounded by maxCachedHeaders).
	hdrCache atomic.Pointer[map[string]header]
	hdrMu    sync.Mutex
}

// Errors of this package. Every refusal of a token is Unauthenticated with
// code "invalid_token", so a caller cannot learn which check failed.
var (
	ErrNoKey = fault.New(fault.Unavailable, "no_signing_key", "no signing key is active")
)

// New loads the stored keys and, when there is none that can sign (a fresh
// install), creates one that signs at once.
func New(ctx context.Context, cfg Config, d Deps) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if d.Store == nil || d.Sealer == nil || d.Audit == nil {
		return nil, errors.New("signing: store, sealer and audit are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		return nil, errors.New("signing: a random source is required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, d: d}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reloadLocked(ctx); err != nil {
		return nil, err
	}
	if m.keys.Load().signer(d.Now()) == nil {
		// Only if no unretired key exists at all: two nodes starting on a
		// fresh database create one key between them.
		epoch := time.Unix(0, 0)
		if _, err := m.createLocked(ctx, d.Now(), &epoch, "first"); err != nil {
			return nil, err
		}
		if err := m.reloadLocked(ctx); err != nil {
			return nil, err
		}
		if m.keys.Load().signer(d.Now()) == nil {
			return nil, ErrNoKey
		}
	}
	return m, nil
}

// Config returns the effective configuration (defaults applied).
func (m *Manager) Config() Config { return m.cfg }

// reloadLocked reads the key set from the store and swaps it in. Private
// keys are opened only for keys that may still sign, and reused from the
// previous snapshot when their ciphertext is unchanged.
func (m *Manager) reloadLocked(ctx context.Context) error {
	stored, err := m.d.Store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := m.d.Now()
	old := m.keys.Load()
	set := &keySet{byID: make(map[string]*key, len(stored))}
	for _, sk := range stored {
		k := &key{StoredKey: sk}
		if err := k.parsePublic(); err != nil {
			m.d.Log.Error("signing key unreadable, skipped", "kid", sk.ID, "err", err)
			continue
		}
		if sk.RetiredAt.IsZero() || now.Before(sk.RetiredAt) {
			if old != nil {
				if prev := old.byID[sk.ID]; prev != nil && prev.private != nil && string(prev.sealed) == string(sk.PrivateKey) {
					k.private, k.sealed = prev.private, prev.sealed
				}
			}
			if k.private == nil {
				if err := m.openPrivate(ctx, k); err != nil {
					// A key that cannot be opened cannot sign; it still
					// verifies. Loud: this is a broken key store or root key.
					m.d.Log.Error("signing key cannot be opened", "kid", sk.ID, "err", err)
				}
			}
		}
		set.byID[k.ID] = k
		set.list = append(set.list, k)
	}
	slices.SortStableFunc(set.list, func(a, b *key) int { return a.ActiveFrom.Compare(b.ActiveFrom) })
	m.keys.Store(set)
	m.jwks.Store(nil)
	m.lastReload.Store(now.UnixNano())
	return nil
}

func (k *key) parsePublic() error {
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return err
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if k.Algorithm != EdDSA {
			return errors.New("algorithm does not match the key")
		}
		k.edPub = p
	case *ecdsa.PublicKey:
		if k.Algorithm != ES256 || p.Curve != elliptic.P256() {
			return errors.New("algorithm does not match the key")
		}
		k.ecPub = p
	default:
		return errors.New("unsupported key type")
	}
	k.pub = pub
	return nil
}

func sealAD(kid string) vault.AD {
	return vault.AD{Workspace: "", Table: "signing_keys", Column: "private_key", Row: kid}
}

func (m *Manager) openPrivate(ctx context.Context, k *key) error {
	der, err := m.d.Sealer.Open(ctx, k.PrivateKey, sealAD(k.ID))
	if err != nil {
		return err
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return err
	}
	var s crypto.Signer
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		if !k.edPub.Equal(p.Public()) {
			return errors.New("private key does not match the public key")
		}
		s = p
	case *ecdsa.PrivateKey:
		if k.ecPub == nil || !k.ecPub.Equal(p.Public()) {
			return errors.New("private key does not match the public key")
		}
		s = p
	default:
		return errors.New("unsupported private key type")
	}
	k.private, k.sealed = s, k.PrivateKey
	return nil
}

// generate makes a new key pair of the configured algorithm and returns it
// ready to store (private key sealed, bound to its kid).
func (m *Manager) generate(ctx context.Context, now, activeFrom time.Time) (StoredKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch m.cfg.Algorithm {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), m.d.Rand)
	default:
		_, priv, err = ed25519.GenerateKey(m.d.Rand)
	}
	if err != nil {
		return StoredKey{}, fmt.Errorf("signing: generate key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return StoredKey{}, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return StoredKey{}, err
	}
	defer clear(privDER)
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return StoredKey{}, err
	}
	sealed, err := m.d.Sealer.Seal(ctx, privDER, sealAD(kid))
	if err != nil {
		return StoredKey{}, fmt.Errorf("signing: seal key: %w", err)
	}
	return StoredKey{ID: kid, Algorithm: m.cfg.Algorithm, PublicKey: pubDER, PrivateKey: sealed,
		CreatedAt: now, ActiveFrom: activeFrom}, nil
}

// createLocked generates and stores a key signing from activeFrom, audited
// as keys.rotate with the reason. It returns the zero KeyInfo and no error
// when the guard found the work already done by another node.
func (m *Manager) createLocked(ctx context.Context, activeFrom time.Time, guard *time.Time, reason string) (KeyInfo, error) {
	now := m.d.Now()
	sk, err := m.generate(ctx, now, activeFrom)
	if err != nil {
		return KeyInfo{}, err
	}
	created, err := m.d.Store.CreateSigningKey(ctx, sk, guard)
	if err != nil {
		return KeyInfo{}, err
	}
	if !created {
		return KeyInfo{}, nil
	}
	info := KeyInfo{ID: sk.ID, Algorithm: sk.Algorithm, State: StatePending, CreatedAt: sk.CreatedAt, ActiveFrom: sk.ActiveFrom}
	if !now.Before(activeFrom) {
		info.State = StateActive
	}
	m.d.Log.Info("signing key created", "kid", sk.ID, "alg", string(sk.Algorithm), "active_from", activeFrom, "reason", reason)
	if err := m.record(ctx, "keys.rotate", sk.ID, map[string]string{
		"alg": string(sk.Algorithm), "active_from": activeFrom.UTC().Format(time.RFC3339), "reason": reason}); err != nil {
		return info, err
	}
	return info, nil
}

func (m *Manager) record(ctx context.Context, action, kid string, details map[string]string) error {
	e := audit.FromRequest(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: "rampart", Action: action,
		Target: "signing_key:" + kid, Outcome: audit.Success, Details: details})
	if err := m.d.Audit.Record(ctx, e); err != nil {
		return fmt.Errorf("signing: audit %s: %w", action, err)
	}
	return nil
}

// overlap is how long a key stays published after it stopped signing: the
// longest token it can have signed, plus the time another node may have
// kept signing with it before reloading, plus clock skew.
func (m *Manager) overlap() time.Duration {
	return m.cfg.MaxTokenTTL + m.cfg.ReloadEvery + ClockSkew
}

// Keys lists the loaded keys, oldest first.
func (m *Manager) Keys() []KeyInfo {
	set := m.keys.Load()
	now := m.d.Now()
	signer := set.signer(now)
	out := make([]KeyInfo, 0, len(set.list))
	for _, k := range set.list {
		out = append(out, KeyInfo{ID: k.ID, Algorithm: k.Algorithm, State: k.state(now, signer), CreatedAt: k.CreatedAt,
			ActiveFrom: k.ActiveFrom, RetiredAt: k.RetiredAt, DeleteAfter: k.DeleteAfter})
	}
	return out
}

// PublicKey returns the published key kid.
func (m *Manager) PublicKey(kid string) (crypto.PublicKey, Algorithm, bool) {
	k := m.keys.Load().byID[kid]
	if k == nil || !k.published(m.d.Now()) {
		return nil, "", false
	}
	return k.pub, k.Algorithm, true
}

// SignerFor returns the key that signs now, for adapters that sign through
// another library (fosite's jwt.Signer). Use the kid in the JWS header.
func (m *Manager) SignerFor(ctx context.Context) (kid string, alg Algorithm, key crypto.Signer, err error) {
	k := m.keys.Load().signer(m.d.Now())
	if k == nil || k.private == nil {
		return "", "", nil, ErrNoKey
	}
	return k.ID, k.Algorithm, k.private, nil
}
