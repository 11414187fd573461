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
