package vault

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// KEK is a stored key-encryption key: only ever the wrapped form, with the
// fingerprint of the root that wrapped it.
type KEK struct {
	Scope     string // workspace id; "" is Rampart's operator scope
	Version   uint32
	Wrapped   []byte
	RootID    string
	CreatedAt time.Time
}

// Scope is a workspace's key state as stored: its blind-index key (wrapped
// like a KEK), the lowest KEK version that may still decrypt, and whether
// it was destroyed (crypto-shredded).
type Scope struct {
	Scope        string
	MinVersion   uint32
	BlindWrapped []byte
	RootID       string
	CreatedAt    time.Time
	ShreddedAt   time.Time // zero while alive
}

// KeyStore is what the hierarchy needs of storage (internal/store
// implements it). Methods report fault.ErrNotFound for an unknown scope
// and fault.Conflict when a row exists already.
type KeyStore interface {
	// VaultScope returns the scope and its KEKs, lowest version first.
	VaultScope(ctx context.Context, scope string) (*Scope, []KEK, error)
	// VaultCreateScope stores a new scope with its first KEK.
	VaultCreateScope(ctx context.Context, s Scope, first KEK) error
	// VaultAddKEK stores a new KEK version (rotation).
	VaultAddKEK(ctx context.Context, k KEK) error
	// VaultSetMinVersion raises the scope's minimum decryption version.
	VaultSetMinVersion(ctx context.Context, scope string, min uint32) error
	// VaultAll lists every live scope and KEK (root rotation, status).
	VaultAll(ctx context.Context) ([]Scope, []KEK, error)
	// VaultRewrapRoot replaces the wrapped form of every given KEK and
	// blind key, all in one transaction, pins newRootID and stores the
	// derivation root wrapped under the new root (see WrapDerivationRoot).
	VaultRewrapRoot(ctx context.Context, scopes []Scope, keks []KEK, newRootID string, derivation []byte) error
	// VaultDestroyScope deletes the scope's KEKs and blind key and marks it
	// shredded, so it can never get keys again; it returns how many KEKs
	// were destroyed.
	VaultDestroyScope(ctx context.Context, scope string, at time.Time) (int, error)
}

// Policy bounds key lifetimes. Zero fields get the defaults.
type Policy struct {
	// RotateEvery is the age at which a scope's current KEK is rotated by
	// the scheduled job (default 90 days).
	RotateEvery time.Duration
	// DataKeyMaxAge and DataKeyMaxUses bound an encrypting data key:
	// after either, a fresh one (new random id) is derived. They also bound
	// how long a cached KEK list is trusted before it is re-read, so a
	// rotation or a shred on another node is seen within DataKeyMaxAge.
	DataKeyMaxAge  time.Duration
	DataKeyMaxUses int64
	// DecryptCacheSize bounds the cached decrypting data keys per scope.
	DecryptCacheSize int
}

func (p Policy) withDefaults() Policy {
	if p.RotateEvery <= 0 {
		p.RotateEvery = 90 * 24 * time.Hour
	}
	if p.DataKeyMaxAge <= 0 {
		p.DataKeyMaxAge = 5 * time.Minute
	}
	if p.DataKeyMaxUses <= 0 {
		p.DataKeyMaxUses = 1 << 24
	}
	if p.DecryptCacheSize <= 0 {
		p.DecryptCacheSize = 1024
	}
	return p
}

// ErrScopeDestroyed is the cause when a scope's keys were crypto-shredded:
// nothing under it opens and nothing new can be sealed under it.
var ErrScopeDestroyed = errors.New("vault: the workspace's keys were destroyed")

// Vault is the key hierarchy: root → per-workspace KEKs (versioned, stored
// only wrapped) → data keys derived per KEK version and cached within the
// policy's limits. It implements Sealer; ad.Workspace picks the scope. It
// is safe for concurrent use.
type Vault struct {
	store  KeyStore
	root   RootWrapper
	rand   io.Reader
	now    func() time.Time
	policy Policy

	randPool sync.Pool // *randBuf

	mu     sync.RWMutex
	scopes map[string]*scopeKeys
	loadMu sync.Mutex // one store round trip at a time fills the cache
}

// scopeKeys is an immutable snapshot of one scope's unwrapped keys plus
// its mutable data-key caches.
type scopeKeys struct {
	name       string
	loaded     time.Time
	primary    uint32
	minVersion uint32
	keks       map[uint32][]byte
	created    map[uint32]time.Time
	blindKey   []byte

	active  atomicDEK
	dekMu   sync.RWMutex
	decrypt map[dekKey]*dek
}

// NewVault returns the hierarchy over store, wrapped by root.
func NewVault(store KeyStore, root RootWrapper, policy Policy, now func() time.Time, rand io.Reader) *Vault {
	if now == nil {
		now = time.Now
	}
	if rand == nil {
		rand = defaultRand()
	}
	return &Vault{store: store, root: root, rand: rand, now: now, policy: policy.withDefaults(), scopes: make(map[string]*scopeKeys)}
}

// Root returns the root wrapper (for status and checks).
func (v *Vault) Root() RootWrapper {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.root
}

// Policy returns the effective policy.
func (v *Vault) Policy() Policy { return v.policy }

const (
	purposeKEK   = "kek"
	purposeBlind = "blind-index"
)

// scope returns the cached keys of name, loading (and with create, making)
// them when missing or older than DataKeyMaxAge.
func (v *Vault) scope(ctx context.Context, name string, create bool) (*scopeKeys, error) {
	v.mu.RLock()
	s := v.scopes[name]
	v.mu.RUnlock()
	if s != nil && v.now().Sub(s.loaded) < v.policy.DataKeyMaxAge {
		return s, nil
	}
	return v.reload(ctx, name, create, s, false)
}

// reload reads name's keys from the store. stale is the snapshot the
// caller saw; unless force, if another goroutine replaced it meanwhile,
// that one is used.
func (v *Vault) reload(ctx context.Context, name string, create bool, stale *scopeKeys, force bool) (*scopeKeys, error) {
	v.loadMu.Lock()
	defer v.loadMu.Unlock()
	v.mu.RLock()
	cur := v.scopes[name]
	v.mu.RUnlock()
	if !force && cur != nil && cur != stale && v.now().Sub(cur.loaded) < v.policy.DataKeyMaxAge {
		return cur, nil
	}
	sc, keks, err := v.store.VaultScope(ctx, name)
	if fault.Is(err, fault.NotFound) && create {
		if err := v.createScope(ctx, name); err != nil && !fault.Is(err, fault.Conflict) {
			return nil, err
		}
		sc, keks, err = v.store.VaultScope(ctx, name)
	}
	if fault.Is(err, fault.NotFound) {
		v.forget(name)
		return nil, fault.Wrap(fault.Internal, "unknown_key_version", "decryption failed", ErrUnknownKeyVersion)
	}
	if err != nil {
		return nil, err
	}
	if !sc.ShreddedAt.IsZero() {
		v.forget(name)
		return nil, fault.Wrap(fault.NotFound, "keys_destroyed", "the workspace's keys were destroyed", ErrScopeDestroyed)
	}
	s, err := v.unwrapScope(ctx, sc, keks)
	if err != nil {
		return nil, err
	}
	// Keep warm data keys across a reload when the KEK is unchanged.
	if cur != nil {
		if d := cur.active.Load(); d != nil && s.keks[d.version] != nil && d.version == s.primary {
			s.active.Store(d)
		}
	}
	v.mu.Lock()
	v.scopes[name] = s
	v.mu.Unlock()
	return s, nil
}

func (v *Vault) forget(name string) {
	v.mu.Lock()
	if s := v.scopes[name]; s != nil {
		s.wipe()
	}
	delete(v.scopes, name)
	v.mu.Unlock()
}

func (s *scopeKeys) wipe() {
	for _, k := range s.keks {
		clear(k)
	}
	clear(s.blindKey)
}

func (v *Vault) unwrapScope(ctx context.Context, sc *Scope, keks []KEK) (*scopeKeys, error) {
	s := &scopeKeys{name: sc.Scope, loaded: v.now(), minVersion: sc.MinVersion, keks: make(map[uint32][]byte, len(keks)),
		created: make(map[uint32]time.Time, len(keks)), decrypt: make(map[dekKey]*dek)}
	for _, k := range keks {
		raw, err := v.Root().Unwrap(ctx, k.Wrapped, kekAD(sc.Scope, k.Version, purposeKEK))
		if err != nil {
			return nil, fault.Wrap(fault.Internal, "kek_unwrap", "a key-encryption key does not unwrap under the root key", err)
		}
		s.keks[k.Version] = raw
		s.created[k.Version] = k.CreatedAt
		if k.Version > s.primary {
			s.primary = k.Version
		}
	}
	if len(s.keks) == 0 {
		return nil, fault.New(fault.Internal, "kek_missing", "the workspace has no key-encryption key")
	}
	bk, err := v.Root().Unwrap(ctx, sc.BlindWrapped, kekAD(sc.Scope, 0, purposeBlind))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "blind_unwrap", "the blind-index key does not unwrap under the root key", err)
	}
	s.blindKey = bk
	return s, nil
}

// newKey returns 32 random bytes.
func (v *Vault) newKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(v.rand, k); err != nil {
		return nil, fault.Wrap(fault.Internal, "key_generate", "could not generate a key", err)
	}
	return k, nil
}

func (v *Vault) createScope(ctx context.Context, name string) error {
	kek, err := v.newKey()
	if err != nil {
		return err
	}
	defer clear(kek)
	blind, err := v.newKey()
	if err != nil {
		return err
	}
	defer clear(blind)
	root := v.Root()
	wk, err := root.Wrap(ctx, kek, kekAD(name, 1, purposeKEK))
	if err != nil {
		return err
	}
	wb, err := root.Wrap(ctx, blind, kekAD(name, 0, purposeBlind))
	if err != nil {
		return err
	}
	now := v.now().UTC()
	return v.store.VaultCreateScope(ctx, Scope{Scope: name, MinVersion: 1, BlindWrapped: wb, RootID: root.ID(), CreatedAt: now},
		KEK{Scope: name, Version: 1, Wrapped: wk, RootID: root.ID(), CreatedAt: now})
}

// encryptDEK returns the scope's current encrypting data key, deriving a
// new one when the cached one reached its age or use limit.
func (v *Vault) encryptDEK(s *scopeKeys) (*dek, error) {
	d := s.active.Load()
	if d != nil {
		// The age is read every 64th use: a clock read per seal is a
		// measurable share of a small value's cost, and the age limit
		// is minutes, not nanoseconds.
		if n := d.uses.Add(1); n <= v.policy.DataKeyMaxUses && (n&63 != 0 || v.now().Sub(d.created) < v.policy.DataKeyMaxAge) {
			return d, nil
		}
	}
	s.dekMu.Lock()
	defer s.dekMu.Unlock()
	if d2 := s.active.Load(); d2 != d && d2 != nil {
		d2.uses.Add(1)
		return d2, nil
	}
	var id [dekIDSize]byte
	if _, err := io.ReadFull(v.rand, id[:]); err != nil {
		return nil, fault.Wrap(fault.Internal, "key_generate", "could not generate a data key id", err)
	}
	nd, err := deriveDEK(s.keks[s.primary], s.name, s.primary, id, v.now())
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "key_derive", "could not derive a data key", err)
	}
	nd.uses.Store(1)
	s.active.Store(nd)
	s.putDecrypt(nd, v.policy.DecryptCacheSize)
	return nd, nil
}

func (s *scopeKeys) putDecrypt(d *dek, limit int) {
	if len(s.decrypt) >= limit {
		for k := range s.decrypt { // evict an arbitrary entry
			delete(s.decrypt, k)
			break
		}
	}
	s.decrypt[dekKey{d.version, d.id}] = d
}

// decryptDEK finds (or derives) the data key a ciphertext names.
func (v *Vault) decryptDEK(s *scopeKeys, version uint32, id [dekIDSize]byte) (*dek, error) {
	if d := s.active.Load(); d != nil && d.version == version && d.id == id {
		return d, nil
	}
	now := v.now()
	s.dekMu.RLock()
	d := s.decrypt[dekKey{version, id}]
	s.dekMu.RUnlock()
	if d != nil && now.Sub(d.created) < v.policy.DataKeyMaxAge {
		return d, nil
	}
	kek := s.keks[version]
	if kek == nil {
		return nil, fault.Wrap(fault.Internal, "unknown_key_version", "decryption failed", ErrUnknownKeyVersion)
	}
	d, err := deriveDEK(kek, s.name, version, id, now)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "key_derive", "could not derive a data key", err)
	}
	s.dekMu.Lock()
	s.putDecrypt(d, v.policy.DecryptCacheSize)
	s.dekMu.Unlock()
	return d, nil
}

// Seal implements Sealer: it encrypts plaintext under the current KEK
// version of ad.Workspace's scope (creating the scope's first KEK on first
// use), bound to ad.
func (v *Vault) Seal(ctx context.Context, plaintext []byte, ad AD) ([]byte, error) {
	return v.SealAppend(ctx, nil, plaintext, ad)
}

// SealAppend is Seal appending to dst (which may be nil), for callers that
// encrypt many values into one buffer.
func (v *Vault) SealAppend(ctx context.Context, dst, plaintext []byte, ad AD) ([]byte, error) {
	s, err := v.scope(ctx, ad.Workspace, true)
	if err != nil {
		return nil, err
	}
	d, err := v.encryptDEK(s)
	if err != nil {
		return nil, err
	}
	n := len(dst)
	need := OverheadV2 + len(plaintext)
	dst = slices.Grow(dst, need)[:n+headerSizeV2+nonceSize]
	out := dst[n:]
	out[0] = formatV2
	binary.BigEndian.PutUint32(out[1:5], d.version)
	copy(out[5:headerSizeV2], d.id[:])
	nonce := out[headerSizeV2 : headerSizeV2+nonceSize]
	if err := v.nonce(nonce); err != nil {
		return nil, err
	}
	bp := adPool.Get().(*[]byte)
	adb := appendAD((*bp)[:0], out[:headerSizeV2], ad)
	dst = sealWith(dst, d.aead, nonce, plaintext, adb)
	*bp = adb
	adPool.Put(bp)
	return dst, nil
}

// Open implements Sealer. It fails with ErrDecrypt when the ciphertext is
// malformed, tampered or bound to another context, with
// ErrUnknownKeyVersion when its KEK version is unknown or retired, and
// with ErrScopeDestroyed after crypto-shredding — all fault.Internal except
// the last, and all with the public message "decryption failed".
func (v *Vault) Open(ctx context.Context, ciphertext []byte, ad AD) ([]byte, error) {
	return v.OpenAppend(ctx, nil, ciphertext, ad)
}

// OpenAppend is Open appending the plaintext to dst.
func (v *Vault) OpenAppend(ctx context.Context, dst, ciphertext []byte, ad AD) ([]byte, error) {
	version, id, ok := parseV2(ciphertext)
	if !ok {
		return nil, errDecrypt()
	}
	s, err := v.scope(ctx, ad.Workspace, false)
	if err != nil {
		return nil, err
	}
	if s.keks[version] == nil && version > s.primary {
		// Rotated on another node since we loaded: look once more.
		if s, err = v.reload(ctx, ad.Workspace, false, s, false); err != nil {
			return nil, err
		}
	}
	if version < s.minVersion {
		return nil, fault.Wrap(fault.Internal, "key_version_retired", "decryption failed", ErrUnknownKeyVersion)
	}
	d, err := v.decryptDEK(s, version, id)
	if err != nil {
		return nil, err
	}
	bp := adPool.Get().(*[]byte)
	adb := appendAD((*bp)[:0], ciphertext[:headerSizeV2], ad)
	body := ciphertext[headerSizeV2+nonceSize:]
	pt, err := openAppendWith(dst, d.aead, ciphertext[headerSizeV2:headerSizeV2+nonceSize], body, adb)
	*bp = adb
	adPool.Put(bp)
	return pt, err
}

// Rewrap re-encrypts ciphertext under the scope's current KEK version. It
// reports false (and returns ciphertext unchanged) when it already is.
func (v *Vault) Rewrap(ctx context.Context, ciphertext []byte, ad AD) ([]byte, bool, error) {
	pt, err := v.Open(ctx, ciphertext, ad)
	if err != nil {
		return nil, false, err
	}
	defer clear(pt)
	s, err := v.scope(ctx, ad.Workspace, false)
	if err != nil {
		return nil, false, err
	}
	if version, _, _ := parseV2(ciphertext); version == s.primary {
		return ciphertext, false, nil
	}
	out, err := v.Seal(ctx, pt, ad)
	return out, err == nil, err
}

// BlindIndex returns HMAC-SHA256 of value under the scope's blind-index key,
// domain-separated by column: equal values in one column of one workspace
// give equal indexes, so an app can search by equality without storing the
// value; the key never leaves Rampart and differs per workspace. It is
// stable across KEK rotations.
func (v *Vault) BlindIndex(ctx context.Context, workspace, column string, value []byte) ([]byte, error) {
	s, err := v.scope(ctx, workspace, true)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, s.blindKey)
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(column)))
	m.Write(l[:])
	m.Write([]byte(column))
	m.Write(value)
	return m.Sum(nil), nil
}

// CurrentVersion returns the scope's current KEK version and its creation
// time, creating the scope if needed.
func (v *Vault) CurrentVersion(ctx context.Context, workspace string) (uint32, time.Time, error) {
	s, err := v.scope(ctx, workspace, true)
	if err != nil {
		return 0, time.Time{}, err
	}
	return s.primary, s.created[s.primary], nil
}

// Rotate adds a new KEK version to workspace's scope and makes it current:
// new seals use it at once on this node (other nodes within DataKeyMaxAge),
// while older versions still decrypt. It returns the new version.
func (v *Vault) Rotate(ctx context.Context, workspace string) (uint32, error) {
	s, err := v.reload(ctx, workspace, true, nil, true)
	if err != nil {
		return 0, err
	}
	next := s.primary + 1
	kek, err := v.newKey()
	if err != nil {
		return 0, err
	}
	defer clear(kek)
	root := v.Root()
	w, err := root.Wrap(ctx, kek, kekAD(workspace, next, purposeKEK))
	if err != nil {
		return 0, err
	}
	if err := v.store.VaultAddKEK(ctx, KEK{Scope: workspace, Version: next, Wrapped: w, RootID: root.ID(), CreatedAt: v.now().UTC()}); err != nil {
		return 0, err
	}
	if _, err := v.reload(ctx, workspace, false, nil, true); err != nil {
		return 0, err
	}
	return next, nil
}

// Retire raises workspace's minimum decryption version: ciphertexts under
// older KEK versions stop opening. It refuses to retire the current version.
func (v *Vault) Retire(ctx context.Context, workspace string, min uint32) error {
	s, err := v.reload(ctx, workspace, false, nil, true)
	if err != nil {
		return err
	}
	if min > s.primary {
		return fault.Invalidf("min_version_invalid", "the minimum version %d is above the current version %d", min, s.primary)
	}
	if min <= s.minVersion {
		return nil
	}
	if err := v.store.VaultSetMinVersion(ctx, workspace, min); err != nil {
		return err
	}
	_, err = v.reload(ctx, workspace, false, nil, true)
	return err
}

// Destroy crypto-shreds workspace: its KEKs and blind-index key are
// deleted, the scope is marked so it never gets keys again, and this
// node's cache is wiped. Every ciphertext under the scope is unreadable
// from then on, wherever it was copied. It returns the number of KEK
// versions destroyed.
func (v *Vault) Destroy(ctx context.Context, workspace string) (int, error) {
	// Under loadMu no reload can read the keys before the delete and
	// cache them after it.
	v.loadMu.Lock()
	defer v.loadMu.Unlock()
	n, err := v.store.VaultDestroyScope(ctx, workspace, v.now().UTC())
	v.forget(workspace)
	return n, err
}

// RotateRoot re-wraps every KEK and blind-index key from the current root
// to next, in one transaction, and pins next's fingerprint. Data
// ciphertexts are untouched: only the KEK layer changes. derivation is the
// key Rampart's other subsystems derive from (the original root key); it is
// stored wrapped under next so those derived keys survive the rotation.
// The Vault uses next from then on.
func (v *Vault) RotateRoot(ctx context.Context, next RootWrapper, derivation RootKey) (int, error) {
	// No scope is created or loaded on this node meanwhile; a KEK added
	// by another node makes the store refuse (vault_rewrap_raced).
	v.loadMu.Lock()
	defer v.loadMu.Unlock()
	scopes, keks, err := v.store.VaultAll(ctx)
	if err != nil {
		return 0, err
	}
	for i := range keks {
		k := &keks[i]
		raw, err := v.root.Unwrap(ctx, k.Wrapped, kekAD(k.Scope, k.Version, purposeKEK))
		if err != nil {
			return 0, fault.Wrap(fault.Internal, "kek_unwrap", "a key-encryption key does not unwrap under the current root key", err)
		}
		k.Wrapped, err = next.Wrap(ctx, raw, kekAD(k.Scope, k.Version, purposeKEK))
		clear(raw)
		if err != nil {
			return 0, err
		}
		k.RootID = next.ID()
	}
	for i := range scopes {
		sc := &scopes[i]
		raw, err := v.root.Unwrap(ctx, sc.BlindWrapped, kekAD(sc.Scope, 0, purposeBlind))
		if err != nil {
			return 0, fault.Wrap(fault.Internal, "blind_unwrap", "a blind-index key does not unwrap under the current root key", err)
		}
		sc.BlindWrapped, err = next.Wrap(ctx, raw, kekAD(sc.Scope, 0, purposeBlind))
		clear(raw)
		if err != nil {
			return 0, err
		}
		sc.RootID = next.ID()
	}
	dw, err := WrapDerivationRoot(ctx, next, derivation)
	if err != nil {
		return 0, err
	}
	if err := v.store.VaultRewrapRoot(ctx, scopes, keks, next.ID(), dw); err != nil {
		return 0, err
	}
	v.mu.Lock()
	v.root = next
	v.mu.Unlock()
	return len(keks), nil
}

// ScopeStatus is one scope's key state for status pages and checks.
type ScopeStatus struct {
	Scope          string    `json:"scope"`
	CurrentVersion uint32    `json:"current_version"`
	MinVersion     uint32    `json:"min_version"`
	Versions       int       `json:"versions"`
	CurrentSince   time.Time `json:"current_since"`
	RootID         string    `json:"root_id"`
	RotationDue    bool      `json:"rotation_due"`
}

// Status lists every live scope's key state.
func (v *Vault) Status(ctx context.Context) ([]ScopeStatus, error) {
	scopes, keks, err := v.store.VaultAll(ctx)
	if err != nil {
		return nil, err
	}
	by := make(map[string]*ScopeStatus, len(scopes))
	out := make([]ScopeStatus, len(scopes))
	for i, sc := range scopes {
		out[i] = ScopeStatus{Scope: sc.Scope, MinVersion: sc.MinVersion}
		by[sc.Scope] = &out[i]
	}
	for _, k := range keks {
		st := by[k.Scope]
		if st == nil {
			continue
		}
		st.Versions++
		if k.Version >= st.CurrentVersion {
			st.CurrentVersion, st.CurrentSince, st.RootID = k.Version, k.CreatedAt, k.RootID
		}
	}
	now := v.now()
	for i := range out {
		out[i].RotationDue = now.Sub(out[i].CurrentSince) >= v.policy.RotateEvery
	}
	return out, nil
}

// RotateDue rotates every scope whose current KEK is older than
// RotateEvery; it returns the rotated scopes and the first error (it
// carries on past failures so one bad scope does not stall the rest).
func (v *Vault) RotateDue(ctx context.Context) (rotated []string, failed map[string]error, err error) {
	st, err := v.Status(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range st {
		if !s.RotationDue {
			continue
		}
		if _, err := v.Rotate(ctx, s.Scope); err != nil {
			if failed == nil {
				failed = map[string]error{}
			}
			failed[s.Scope] = err
			continue
		}
		rotated = append(rotated, s.Scope)
	}
	return rotated, failed, nil
}

// WrapDerivationRoot wraps k (the key other subsystems derive their keys
// from) under w. After a root rotation, or with an HSM root, the
// derivation root lives only in this wrapped form in the database.
func WrapDerivationRoot(ctx context.Context, w RootWrapper, k RootKey) ([]byte, error) {
	return w.Wrap(ctx, k.k[:], kekAD("", 0, "root-derive"))
}

// UnwrapDerivationRoot reverses WrapDerivationRoot.
func UnwrapDerivationRoot(ctx context.Context, w RootWrapper, wrapped []byte) (RootKey, error) {
	raw, err := w.Unwrap(ctx, wrapped, kekAD("", 0, "root-derive"))
	if err != nil {
		return RootKey{}, err
	}
	defer clear(raw)
	if len(raw) != RootKeySize {
		return RootKey{}, errDecrypt()
	}
	var k RootKey
	copy(k.k[:], raw)
	return k, nil
}

// randBuf holds random bytes read ahead from the Vault's rand, so a nonce
// costs a copy rather than a getrandom call. Every byte is used once and
// wiped; buffers live in a sync.Pool (per CPU, no lock contention).
type randBuf struct {
	b   [512]byte
	off int
}

// nonce fills dst with fresh random bytes.
func (v *Vault) nonce(dst []byte) error {
	rb, _ := v.randPool.Get().(*randBuf)
	if rb == nil {
		rb = &randBuf{off: len(randBuf{}.b)}
	}
	if rb.off+len(dst) > len(rb.b) {
		if _, err := io.ReadFull(v.rand, rb.b[:]); err != nil {
			return fault.Wrap(fault.Internal, "nonce", "could not generate nonce", err)
		}
		rb.off = 0
	}
	copy(dst, rb.b[rb.off:rb.off+len(dst)])
	clear(rb.b[rb.off : rb.off+len(dst)])
	rb.off += len(dst)
	v.randPool.Put(rb)
	return nil
}
