package vault

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"io"

	"github.com/rampartsec/rampart/internal/fault"
)

// RootWrapper is the top of the hierarchy as the rest of the vault sees it:
// something that wraps and unwraps key-encryption keys. The key-file and
// environment sources hold the root key in memory (LocalRoot); the PKCS#11
// source (package vault/pkcs11) keeps it inside the HSM, so the root key
// itself never reaches Rampart's memory.
type RootWrapper interface {
	// ID is a non-secret fingerprint (or key check value) of the root
	// key, pinned in the database on first start so a different key is
	// refused rather than used.
	ID() string
	// Source names where the root key lives ("file", "env", "pkcs11"), for
	// status and the ENC-1 evidence.
	Source() string
	// Wrap encrypts a key under the root, bound to ad.
	Wrap(ctx context.Context, key, ad []byte) ([]byte, error)
	// Unwrap reverses Wrap; any failure is ErrDecrypt.
	Unwrap(ctx context.Context, wrapped, ad []byte) ([]byte, error)
}

// kekWrapPurpose derives the AES-256-GCM key that wraps KEKs from a local
// root key. Wrapping with a derived key rather than the root itself keeps
// the root's other derivations (TOTP v1, audit keys) independent.
const kekWrapPurpose = "rampart/vault/kek-wrap/v1"

// LocalRoot wraps KEKs with AES-256-GCM under a key derived from a RootKey
// held in memory (key file or environment).
type LocalRoot struct {
	key    RootKey
	source string
	aead   cipher.AEAD
	rand   io.Reader
}

// NewLocalRoot returns the wrapper for root; source is "file" or "env".
// rand supplies nonces (crypto/rand when nil).
func NewLocalRoot(root RootKey, source string, rand io.Reader) (*LocalRoot, error) {
	if rand == nil {
		rand = defaultRand()
	}
	k := root.Derive(kekWrapPurpose, KeySize)
	defer clear(k)
	aead, err := newAEAD(k)
	if err != nil {
		return nil, err
	}
	return &LocalRoot{key: root, source: source, aead: aead, rand: rand}, nil
}

// ID implements RootWrapper: the root key's fingerprint (RootKey.ID).
func (l *LocalRoot) ID() string { return l.key.ID() }

// Source implements RootWrapper.
func (l *LocalRoot) Source() string { return l.source }

// Wrap implements RootWrapper: nonce || GCM(key) with ad.
func (l *LocalRoot) Wrap(_ context.Context, key, ad []byte) ([]byte, error) {
	out := make([]byte, nonceSize, nonceSize+len(key)+tagSize)
	if _, err := io.ReadFull(l.rand, out); err != nil {
		return nil, fault.Wrap(fault.Internal, "nonce", "could not generate nonce", err)
	}
	return sealWith(out, l.aead, out[:nonceSize], key, ad), nil
}

// Unwrap implements RootWrapper.
func (l *LocalRoot) Unwrap(_ context.Context, wrapped, ad []byte) ([]byte, error) {
	if len(wrapped) < nonceSize+tagSize {
		return nil, errDecrypt()
	}
	return openWith(l.aead, wrapped[:nonceSize], wrapped[nonceSize:], ad)
}

// kekAD is the associated data a KEK is wrapped with: it binds the wrapped
// bytes to their scope and version, so a wrapped KEK copied to another
// workspace's row (or another version) does not unwrap.
func kekAD(scope string, version uint32, purpose string) []byte {
	b := make([]byte, 0, 32+len(scope)+len(purpose))
	b = append(b, "rampart/vault/kek/v1"...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(purpose)))
	b = append(b, purpose...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(scope)))
	b = append(b, scope...)
	return binary.BigEndian.AppendUint32(b, version)
}
