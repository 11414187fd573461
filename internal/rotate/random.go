// Package rotate holds the rotators that move a secret's users to a new
// value (SEC-2): a random value kept only in the secrets store, a
// PostgreSQL role password, and a signed webhook to a receiver that applies
// the value itself. Each implements secrets.Rotator; every step is
// idempotent so an interrupted rotation can be resumed with the same value.
package rotate

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"math/big"

	"github.com/rampartsec/rampart/internal/vault/secrets"
)

// AlphanumAlphabet is the default alphabet: no character a shell, a URL
// or a connection string needs escaped.
const AlphanumAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Random generates a uniformly random value; Set, Test and Rollback have
// nothing to do (the store is the only place the value lives).
type Random struct {
	Length   int    // default 32
	Alphabet string // default AlphanumAlphabet; 2 to 256 distinct bytes
	Rand     io.Reader
}

var _ secrets.Rotator = (*Random)(nil)

// Kind implements secrets.Rotator.
func (r *Random) Kind() string { return "random" }

// Generate implements secrets.Rotator.
func (r *Random) Generate(context.Context) ([]byte, error) {
	return randomString(r.Rand, r.Length, r.Alphabet)
}

// Set implements secrets.Rotator.
func (r *Random) Set(context.Context, secrets.Change) error { return nil }

// Test implements secrets.Rotator.
func (r *Random) Test(context.Context, secrets.Change) error { return nil }

// Rollback implements secrets.Rotator.
func (r *Random) Rollback(context.Context, secrets.Change) error { return nil }

// randomString draws n characters uniformly from alphabet (rejection-free
// through crypto/rand.Int, so there is no modulo bias).
func randomString(rnd io.Reader, n int, alphabet string) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if n <= 0 {
		n = 32
	}
	if alphabet == "" {
		alphabet = AlphanumAlphabet
	}
	if err := ValidAlphabet(alphabet); err != nil {
		return nil, err
	}
	if n > secrets.MaxValueSize {
		return nil, errors.New("length too large")
	}
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		k, err := rand.Int(rnd, max)
		if err != nil {
			return nil, err
		}
		out[i] = alphabet[k.Int64()]
	}
	return out, nil
}

// ValidAlphabet checks an alphabet: 2 to 256 distinct bytes.
func ValidAlphabet(a string) error {
	if len(a) < 2 || len(a) > 256 {
		return errors.New("an alphabet has 2 to 256 characters")
	}
	var seen [256]bool
	for i := 0; i < len(a); i++ {
		if seen[a[i]] {
			return errors.New("an alphabet repeats a character")
		}
		seen[a[i]] = true
	}
	return nil
}
