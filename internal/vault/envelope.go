package vault

import (
	"crypto/cipher"
	"crypto/hkdf"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Ciphertext format v2, produced by Vault.Seal:
//
//	byte 0       format version (formatV2)
//	bytes 1..4   KEK version, uint32 big-endian
//	bytes 5..12  data-key id: 8 random bytes naming the data key
//	bytes 13..24 random 96-bit GCM nonce
//	bytes 25..   AES-256-GCM ciphertext followed by the 16-byte tag
//
// The data key is HKDF-SHA256(KEK, salt = data-key id, info = scope), so it
// is never stored: whoever holds the workspace's KEK version can re-derive
// it, and nobody else can. Bytes 0..12 are part of the GCM associated data
// (after the same domain tag and length-prefixed AD fields as v1), so the
// header cannot be altered to steer a ciphertext to another key. v1
// (Keyring) ciphertexts stay readable through Keyring and MigratingSealer.
const (
	formatV2     = 2
	dekIDSize    = 8
	headerSizeV2 = 1 + 4 + dekIDSize
	// OverheadV2 is the number of bytes Vault.Seal adds to a plaintext.
	OverheadV2 = headerSizeV2 + nonceSize + tagSize
)

// dekInfo domain-separates data-key derivation from every other HKDF use.
const dekInfo = "rampart/vault/dek/v1|"

func defaultRand() io.Reader { return cryptorand.Reader }

// dek is one data key: cached with its cipher.AEAD (built once), its
// creation time and, for the encrypting key, a use count, so the cache
// limits (age, uses) are enforced without a lock on the hot path.
type dek struct {
	version uint32
	id      [dekIDSize]byte
	aead    cipher.AEAD
	created time.Time
	uses    atomic.Int64
}

type dekKey struct {
	version uint32
	id      [dekIDSize]byte
}

// deriveDEK builds the data key (and its AEAD) named by id under kek.
func deriveDEK(kek []byte, scope string, version uint32, id [dekIDSize]byte, now time.Time) (*dek, error) {
	k, err := hkdf.Key(sha256.New, kek, id[:], dekInfo+scope, KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(k)
	clear(k)
	if err != nil {
		return nil, err
	}
	return &dek{version: version, id: id, aead: aead, created: now}, nil
}

// adPool recycles associated-data buffers: building the AD is on every
// Seal and Open, and a fresh slice each time is most of the overhead over
// raw GCM for small values.
var adPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// parseV2 splits a v2 ciphertext. It checks only the shape; the tag check
// in Open authenticates everything.
func parseV2(ct []byte) (version uint32, id [dekIDSize]byte, ok bool) {
	if len(ct) < OverheadV2 || ct[0] != formatV2 {
		return 0, id, false
	}
	version = binary.BigEndian.Uint32(ct[1:5])
	copy(id[:], ct[5:headerSizeV2])
	return version, id, true
}

// CiphertextVersion reports the format and key version a stored ciphertext
// names, without decrypting it: (1, v) for Keyring ciphertexts, (2, v) for
// Vault ones. The values are unauthenticated until Open succeeds; they are
// for routing and for the re-wrap job's "is this current", never for trust.
func CiphertextVersion(ct []byte) (format byte, version uint32, err error) {
	switch {
	case len(ct) >= Overhead && ct[0] == formatV1:
		return formatV1, binary.BigEndian.Uint32(ct[1:headerSize]), nil
	case len(ct) >= OverheadV2 && ct[0] == formatV2:
		return formatV2, binary.BigEndian.Uint32(ct[1:5]), nil
	}
	return 0, 0, errDecrypt()
}

type atomicDEK = atomic.Pointer[dek]
