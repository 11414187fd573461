package totp

import (
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"io"
	"strings"

	"github.com/rampartsec/rampart/internal/fault"
)

// Recovery codes are 16 characters of Crockford's base32 alphabet in
// lowercase, shown as four groups of four ("7k2m-q9xa-..."): exactly 80
// random bits, which is what makes a fast unsalted hash acceptable (see
// HashRecoveryCode). The alphabet has no i, l, o or u, so nothing on the
// printed sheet can be misread; NormalizeRecoveryCode maps the look-alikes a
// user might still type (o→0, i/l→1) back onto it.
const (
	recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	recoveryBytes    = 10 // 80 bits = 16 base32 characters, no padding
	recoveryChars    = 16
	recoveryGroup    = 4
	// maxRecoveryCodes bounds n; a sheet of more than this is a bug.
	maxRecoveryCodes = 100
)

var recoveryEncoding = base32.NewEncoding(recoveryAlphabet).WithPadding(base32.NoPadding)

// NewRecoveryCodes returns n distinct single-use recovery codes in display
// form. rand defaults to crypto/rand when nil. Only their hashes
// (HashRecoveryCode) should be stored; the plain codes are shown once.
//
// A duplicate among n codes of 80 bits means the random source is broken,
// so it is an error rather than something to retry around.
func NewRecoveryCodes(rand io.Reader, n int) ([]string, error) {
	if n <= 0 || n > maxRecoveryCodes {
		return nil, fault.New(fault.Internal, "recovery_config", "totp: recovery code count out of range")
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	codes := make([]string, 0, n)
	seen := make(map[string]bool, n)
	buf := make([]byte, recoveryBytes)
	for range n {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fault.Wrap(fault.Internal, "internal", "could not create recovery codes", err)
		}
		raw := recoveryEncoding.EncodeToString(buf)
		if seen[raw] {
			return nil, fault.New(fault.Internal, "internal", "totp: random source repeated a recovery code")
		}
		seen[raw] = true
		codes = append(codes, group(raw))
	}
	return codes, nil
}

// group inserts a dash every recoveryGroup characters for display.
func group(raw string) string {
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/recoveryGroup)
	for i := 0; i < len(raw); i += recoveryGroup {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(raw[i:min(i+recoveryGroup, len(raw))])
	}
	return b.String()
}

// NormalizeRecoveryCode turns what a user typed into the canonical form
// that is hashed: lowercase, with whitespace and dashes removed and the
// look-alike letters o, i and l read as 0, 1 and 1. It does not validate;
// MatchRecoveryCode rejects anything that is not then a well-formed code.
func NormalizeRecoveryCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t', '\n', '\r', '\u00a0':
			return -1
		case 'o', 'O':
			return '0'
		case 'i', 'I', 'l', 'L':
			return '1'
		}
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// wellFormed reports whether a normalized code has the right length and
// alphabet.
func wellFormed(norm string) bool {
	if len(norm) != recoveryChars {
		return false
	}
	for i := 0; i < len(norm); i++ {
		if strings.IndexByte(recoveryAlphabet, norm[i]) < 0 {
			return false
		}
	}
	return true
}

// HashRecoveryCode returns the value to store for a recovery code: SHA-256
// of its normalized form. A plain, unsalted fast hash is deliberate and
// safe here, unlike for passwords, because each code carries 80 bits of
// uniform randomness: a stolen hash table cannot be brute-forced or
// precomputed against, and a password KDF would only make every sign-in
// with a recovery code slower.
func HashRecoveryCode(code string) []byte {
	sum := sha256.Sum256([]byte(NormalizeRecoveryCode(code)))
	return sum[:]
}

// maxRecoveryInput caps the user input examined by MatchRecoveryCode.
const maxRecoveryInput = 64

// MatchRecoveryCode reports which stored hash, if any, the typed code
// matches. The caller must then delete or mark that hash used, since each
// code is single-use. Every hash is compared in constant time and the loop
// never stops early, so timing does not reveal the position of a match.
// Entries the caller has cleared (nil) never match.
func MatchRecoveryCode(code string, hashes [][]byte) (index int, ok bool) {
	if len(code) > maxRecoveryInput {
		return -1, false
	}
	norm := NormalizeRecoveryCode(code)
	if !wellFormed(norm) {
		return -1, false
	}
	sum := sha256.Sum256([]byte(norm))
	index, found := -1, 0
	for i, h := range hashes {
		eq := subtle.ConstantTimeCompare(sum[:], h)
		first := eq & (1 ^ found)
		index = subtle.ConstantTimeSelect(first, i, index)
		found |= eq
	}
	return index, found == 1
}
