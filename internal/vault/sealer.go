package vault

import "context"

// Sealer encrypts and decrypts single values bound to their context. It is
// the one interface the rest of Rampart encrypts through (signing keys,
// secrets, integration tokens, …): ad.Workspace picks the workspace's key
// ("" is Rampart's own, operator-level scope), and the table, column and row
// in ad bind the ciphertext to where it is stored, so a value copied to
// another row or workspace does not decrypt.
type Sealer interface {
	Seal(ctx context.Context, plaintext []byte, ad AD) ([]byte, error)
	Open(ctx context.Context, ciphertext []byte, ad AD) ([]byte, error)
}

// KeyringSealer adapts a single Keyring (one key for every workspace) to
// Sealer. It serves until the per-workspace hierarchy is wired, and in
// tests.
type KeyringSealer struct{ Keyring *Keyring }

// Seal implements Sealer.
func (k KeyringSealer) Seal(_ context.Context, plaintext []byte, ad AD) ([]byte, error) {
	return k.Keyring.Seal(plaintext, ad)
}

// Open implements Sealer.
func (k KeyringSealer) Open(_ context.Context, ciphertext []byte, ad AD) ([]byte, error) {
	return k.Keyring.Open(ciphertext, ad)
}

// MigratingSealer moves stored values from a v1 Keyring to the hierarchy
// lazily: it seals with Next and opens v1 ciphertexts with Legacy, v2 with
// Next. A re-wrap job (or the next write) then replaces the v1 value.
type MigratingSealer struct {
	Next   Sealer
	Legacy *Keyring
}

// Seal implements Sealer.
func (m MigratingSealer) Seal(ctx context.Context, plaintext []byte, ad AD) ([]byte, error) {
	return m.Next.Seal(ctx, plaintext, ad)
}

// Open implements Sealer.
func (m MigratingSealer) Open(ctx context.Context, ciphertext []byte, ad AD) ([]byte, error) {
	if len(ciphertext) > 0 && ciphertext[0] == formatV1 && m.Legacy != nil {
		return m.Legacy.Open(ciphertext, ad)
	}
	return m.Next.Open(ctx, ciphertext, ad)
}

// Background adapts a Sealer to the context-free interface some callers
// (identity's TOTP seeds) declare; key loads run without a deadline, as
// the calls themselves are bounded by the store's own timeouts.
type Background struct{ Sealer Sealer }

// Seal seals with context.Background.
func (b Background) Seal(plaintext []byte, ad AD) ([]byte, error) {
	return b.Sealer.Seal(context.Background(), plaintext, ad)
}

// Open opens with context.Background.
func (b Background) Open(ciphertext []byte, ad AD) ([]byte, error) {
	return b.Sealer.Open(context.Background(), ciphertext, ad)
}
