package vault

import (
	"crypto/aes"
	"crypto/cipher"
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/rampartsec/rampart/internal/fault"
)

// Ciphertext layout (all produced by Keyring.Seal):
//
//	byte 0      format version (formatV1)
//	bytes 1..4  key version, uint32 big-endian
//	bytes 5..16 random 96-bit GCM nonce
//	bytes 17..  AES-256-GCM ciphertext followed by the 16-byte tag
//
// The header (bytes 0..4) is part of the GCM associated data, so changing the
// key version or format byte makes the tag check fail instead of, say,
// steering a ciphertext to another key.
const (
	formatV1   = 1
	headerSize = 1 + 4
	nonceSize  = 12
	tagSize    = 16
	// Overhead is the number of bytes Seal adds to a plaintext.
	Overhead = headerSize + nonceSize + tagSize
)

// KeySize is the size of every key a Keyring holds (AES-256).
const KeySize = 32

// adDomain tags the associated data so these ciphertexts can never be
// confused with another use of the same key that also uses GCM AD.
const adDomain = "rampart/vault/field-ad/v1"

// ErrDecrypt is the cause of every failure to open a stored ciphertext:
// malformed, truncated, tampered, or opened with the wrong associated data.
// It deliberately does not say which: a decryption oracle that explains
// itself helps an attacker, and for stored data every case means the same
// thing to the caller, an integrity problem. Test with errors.Is.
var ErrDecrypt = errors.New("vault: decryption failed")

// ErrUnknownKeyVersion is the cause when a ciphertext names a key version the
// keyring does not hold (never added, or destroyed by crypto-shredding). It is
// separate from ErrDecrypt so callers can tell "key gone" from "data bad";
// the public message is the same.
var ErrUnknownKeyVersion = errors.New("vault: unknown key version")

func errDecrypt() error {
	return fault.Wrap(fault.Internal, "decryption_failed", "decryption failed", ErrDecrypt)
}

// AD is the context a ciphertext is bound to. A ciphertext copied to another
// workspace, table, column or row fails to decrypt, which stops an attacker
// with database write access from moving someone else's secret into a field
// they can read back. Row should be the row's stable primary key.
type AD struct {
	Workspace, Table, Column, Row string
}

// appendAD appends the GCM associated data for header and a to dst: the
// domain tag, the ciphertext header, then each field with a 4-byte length
// prefix, so no two distinct (header, AD) pairs encode to the same bytes.
func appendAD(dst, header []byte, a AD) []byte {
	dst = append(dst, adDomain...)
	dst = append(dst, header...)
	for _, f := range [...]string{a.Workspace, a.Table, a.Column, a.Row} {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

func (a AD) encodedLen() int {
	return len(adDomain) + headerSize + 4*4 + len(a.Workspace) + len(a.Table) + len(a.Column) + len(a.Row)
}

// newAEAD returns AES-256-GCM with the standard 96-bit nonce and 128-bit tag
// for a 32-byte key. Only this shape is ever used.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fault.Invalidf("key_size", "key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "cipher_init", "could not initialise cipher", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "cipher_init", "could not initialise cipher", err)
	}
	return aead, nil
}

// sealWith is the single low-level encryption step: it appends the GCM
// ciphertext and tag of plaintext to dst. The Wycheproof tests drive this same
// function, so the vectors exercise the code path Keyring uses.
func sealWith(dst []byte, aead cipher.AEAD, nonce, plaintext, ad []byte) []byte {
	if len(nonce) != aead.NonceSize() {
		// Unreachable from Keyring; a wrong nonce size would be a bug, and
		// cipher.AEAD would panic anyway.
		panic("vault: sealWith: wrong nonce size")
	}
	return aead.Seal(dst, nonce, plaintext, ad)
}

// openWith is the single low-level decryption step. Every failure is
// ErrDecrypt, with no detail.
func openWith(aead cipher.AEAD, nonce, ciphertext, ad []byte) ([]byte, error) {
	return openAppendWith(nil, aead, nonce, ciphertext, ad)
}

// openAppendWith is openWith appending the plaintext to dst; Vault.Open
// uses it, so the Wycheproof vectors cover that path too.
func openAppendWith(dst []byte, aead cipher.AEAD, nonce, ciphertext, ad []byte) ([]byte, error) {
	if len(nonce) != aead.NonceSize() || len(ciphertext) < aead.Overhead() {
		return nil, errDecrypt()
	}
	pt, err := aead.Open(dst, nonce, ciphertext, ad)
	if err != nil {
		return nil, errDecrypt()
	}
	return pt, nil
}

// Keyring holds versioned AES-256-GCM keys: the primary version encrypts, and
// any held version decrypts, which is what lets rotation be lazy. One
// cipher.AEAD is built per version when it is added, not per call. A Keyring
// is safe for concurrent use.
type Keyring struct {
	rand io.Reader

	mu         sync.RWMutex
	aeads      map[uint32]cipher.AEAD
	primary    uint32
	hasPrimary bool
}

// NewKeyring returns an empty keyring. rand supplies nonces (crypto/rand.Reader
// when nil); it must be safe for concurrent use if the keyring is.
func NewKeyring(rand io.Reader) *Keyring {
	if rand == nil {
		rand = cryptorand.Reader
	}
	return &Keyring{rand: rand, aeads: make(map[uint32]cipher.AEAD)}
}

// Add makes key available under version. Keys must be 32 bytes. A version can
// be added only once: silently replacing a key would make everything sealed
// under the old one unreadable.
func (r *Keyring) Add(version uint32, key []byte) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.aeads[version]; ok {
		return fault.Conflictf("key_version_exists", "key version %d is already in the keyring", version)
	}
	r.aeads[version] = aead
	return nil
}

// SetPrimary selects the version Seal uses. The version must already be held.
func (r *Keyring) SetPrimary(version uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.aeads[version]; !ok {
		return fault.NotFoundf("key_version_unknown", "key version %d is not in the keyring", version)
	}
	r.primary, r.hasPrimary = version, true
	return nil
}

// Primary returns the version Seal uses, and false if none is set yet. A
// re-wrap job compares it with KeyVersion to find ciphertexts to move forward.
func (r *Keyring) Primary() (uint32, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.primary, r.hasPrimary
}

// Seal encrypts plaintext under the primary key, bound to ad, with a fresh
// random nonce. Random 96-bit nonces are safe up to about 2^32 messages per
// key version, far beyond what one version will see between rotations.
func (r *Keyring) Seal(plaintext []byte, ad AD) ([]byte, error) {
	r.mu.RLock()
	version, ok := r.primary, r.hasPrimary
	aead := r.aeads[version]
	r.mu.RUnlock()
	if !ok {
		return nil, fault.New(fault.Internal, "no_primary_key", "keyring has no primary key")
	}

	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(plaintext)+tagSize)
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:headerSize], version)
	nonce := out[headerSize : headerSize+nonceSize]
	if _, err := io.ReadFull(r.rand, nonce); err != nil {
		return nil, fault.Wrap(fault.Internal, "nonce", "could not generate nonce", err)
	}
	adBytes := appendAD(make([]byte, 0, ad.encodedLen()), out[:headerSize], ad)
	return sealWith(out, aead, nonce, plaintext, adBytes), nil
}

// Open decrypts a ciphertext from Seal, using the key version named in its
// header. It fails with ErrDecrypt (as fault.Internal) if the ciphertext is
// malformed, altered, or bound to a different AD, and with
// ErrUnknownKeyVersion if the keyring does not hold that version.
func (r *Keyring) Open(ciphertext []byte, ad AD) ([]byte, error) {
	version, err := r.KeyVersion(ciphertext)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	aead, ok := r.aeads[version]
	r.mu.RUnlock()
	if !ok {
		return nil, fault.Wrap(fault.Internal, "unknown_key_version", "decryption failed", ErrUnknownKeyVersion)
	}
	adBytes := appendAD(make([]byte, 0, ad.encodedLen()), ciphertext[:headerSize], ad)
	return openWith(aead, ciphertext[headerSize:headerSize+nonceSize], ciphertext[headerSize+nonceSize:], adBytes)
}

// KeyVersion returns the key version named in a ciphertext's header without
// decrypting it. The value is unauthenticated until Open succeeds; it is for
// routing (which key, does it need re-wrapping), not for trust decisions.
func (r *Keyring) KeyVersion(ciphertext []byte) (uint32, error) {
	if len(ciphertext) < Overhead || ciphertext[0] != formatV1 {
		return 0, errDecrypt()
	}
	return binary.BigEndian.Uint32(ciphertext[1:headerSize]), nil
}
