// Package password hashes and verifies passwords with argon2id (ENC-6),
// bounds how many hashes run at once so a flood of sign-ins cannot exhaust
// memory or CPU, and checks new passwords against a NIST SP 800-63B policy
// (AUTH-1): length, common/breached passwords and context words, with no
// composition rules.
package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2 cost parameters and output sizes. They are stored in
// every encoded hash, so changing the configured Params only affects new
// hashes; old ones are upgraded on the next successful sign-in (Verify
// reports needsRehash).
type Params struct {
	MemoryKiB uint32 // m: memory in KiB
	Time      uint32 // t: number of passes
	Threads   uint8  // p: lanes (parallelism)
	SaltLen   uint32 // bytes of random salt
	KeyLen    uint32 // bytes of derived key
}

// DefaultParams returns the OWASP Password Storage Cheat Sheet minimum for
// argon2id (m=19 MiB, t=2, p=1): it costs an attacker enough per guess while
// keeping a sign-in around tens of milliseconds of one core.
func DefaultParams() Params {
	return Params{MemoryKiB: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on parameters, whether configured or read back from a stored hash.
// Stored hashes come from the database, which we do not fully trust: without
// upper bounds one hostile row could make a single verification allocate
// gigabytes or burn seconds of CPU. The lower bounds refuse hashes too weak
// to mean anything (a 4-byte key matches one password in 2^32).
const (
	maxMemoryKiB = 256 * 1024 // 256 MiB, well above any recommended setting we would use
	maxTime      = 16
	maxThreads   = 16
	minSaltLen   = 8 // PHC string format minimum
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
	// maxEncodedLen bounds the whole string before any splitting or decoding.
	maxEncodedLen = 256
)

// ErrMalformed is wrapped by every error Parse returns.
var ErrMalformed = errors.New("password: malformed argon2 hash")

// Validate reports whether p is within the bounds this package accepts.
// NewHasher panics on Params that fail it, so configuration loaders should
// call it first to report a readable error.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("password: threads %d out of range [1,%d]", p.Threads, maxThreads)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("password: time %d out of range [1,%d]", p.Time, maxTime)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		// argon2 needs at least 8 KiB per lane.
		return fmt.Errorf("password: memory %d KiB out of range [%d,%d]", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("password: salt length %d out of range [%d,%d]", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("password: key length %d out of range [%d,%d]", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// variant is the argon2 flavour named in an encoded hash.
type variant uint8

const (
	argon2id variant = iota
	// argon2i is accepted by Verify only so that a hash imported from
	// elsewhere can be checked once and upgraded; Hash never produces it.
	argon2i
)

// Parse decodes an argon2id hash in PHC string format,
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key> with unpadded
// standard base64. It is strict: one canonical spelling only (no leading
// zeros, no optional fields, no padding or stray bits), version 19 only, and
// every parameter within the bounds of Params.Validate. The returned Params
// carry the actual salt and key lengths.
func Parse(encoded string) (p Params, salt, key []byte, err error) {
	v, p, salt, key, err := parse(encoded)
	if err != nil {
		return Params{}, nil, nil, err
	}
	if v != argon2id {
		return Params{}, nil, nil, fmt.Errorf("%w: not argon2id", ErrMalformed)
	}
	return p, salt, key, nil
}

// IsArgon2id reports whether encoded is a well-formed argon2id hash. It is
// cheap (no hashing), for the live ENC-6 check counting stored hashes that
// still need upgrading.
func IsArgon2id(encoded string) bool {
	_, _, _, err := Parse(encoded)
	return err == nil
}

func parse(encoded string) (v variant, p Params, salt, key []byte, err error) {
	fail := func(why string) (variant, Params, []byte, []byte, error) {
		return 0, Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	if len(encoded) > maxEncodedLen {
		return fail("too long")
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("wrong number of fields")
	}
	switch parts[1] {
	case "argon2id":
		v = argon2id
	case "argon2i":
		v = argon2i
	default:
		return fail("unsupported algorithm")
	}
	if parts[2] != "v=19" {
		return fail("unsupported version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("wrong parameter list")
	}
	m, err1 := parseParam(kv[0], "m=", maxMemoryKiB)
	t, err2 := parseParam(kv[1], "t=", maxTime)
	th, err3 := parseParam(kv[2], "p=", maxThreads)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fail(err.Error())
	}
	if salt, err = decodeB64(parts[4], maxSaltLen); err != nil {
		return fail("salt: " + err.Error())
	}
	if key, err = decodeB64(parts[5], maxKeyLen); err != nil {
		return fail("key: " + err.Error())
	}
	p = Params{MemoryKiB: m, Time: t, Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.Validate(); err != nil {
		return fail(err.Error())
	}
	return v, p, salt, key, nil
}

// parseParam reads "<name><decimal>" with no sign, no leading zero and a
// value of at most max.
func parseParam(s, name string, max uint64) (uint32, error) {
	d, ok := strings.CutPrefix(s, name)
	if !ok || d == "" || len(d) > 10 || (d[0] == '0' && len(d) > 1) {
		return 0, fmt.Errorf("bad %s", strings.TrimSuffix(name, "="))
	}
	n, err := strconv.ParseUint(d, 10, 32)
	if err != nil || n > max {
		return 0, fmt.Errorf("bad %s", strings.TrimSuffix(name, "="))
	}
	return uint32(n), nil
}

var b64 = base64.RawStdEncoding.Strict()

// decodeB64 decodes canonical unpadded base64 of at most max bytes. The
// length check also rejects CR and LF, which encoding/base64 silently skips.
func decodeB64(s string, max int) ([]byte, error) {
	if len(s) > b64.EncodedLen(max) {
		return nil, errors.New("too long")
	}
	b, err := b64.DecodeString(s)
	if err != nil || b64.EncodedLen(len(b)) != len(s) {
		return nil, errors.New("bad base64")
	}
	return b, nil
}

// encode formats an argon2id hash in PHC string format.
func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// derive runs the argon2 function named by v.
func derive(v variant, pw, salt []byte, p Params) []byte {
	if v == argon2i {
		return argon2.Key(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	}
	return argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
}
