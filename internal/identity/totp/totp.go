// Package totp implements time-based one-time passwords (RFC 6238) and
// single-use recovery codes for Rampart's multi-factor sign-in (AUTH-2).
//
// The HOTP arithmetic (HMAC, dynamic truncation) comes from
// github.com/pquerna/otp; this package adds what that library leaves to the
// caller: a validation window that reports which time step matched, so the
// caller can refuse a code that has already been used (replay), strict
// parsing of what the user typed, constant-time comparison across the whole
// window, and recovery codes.
//
// The package holds no state. The caller stores the secret (encrypted, per
// ENC-2), the last accepted step and the recovery-code hashes, and is
// responsible for throttling attempts: a 6-digit code has only 10^6 values,
// so without a rate limit it can be guessed.
package totp

import (
	"bytes"
	cryptorand "crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"image"
	"image/draw"
	"image/png"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/fault"
)

// Error codes returned by Validate. Both are fault.Invalid.
const (
	CodeInvalid = "mfa_code_invalid"
	CodeReused  = "mfa_code_reused"
)

// Algorithm is the HMAC hash used to derive codes.
type Algorithm int

// SHA1 is the zero value because it is the only algorithm every
// authenticator app supports; many silently ignore the algorithm parameter
// of the URI and would then show wrong codes for SHA256/SHA512.
const (
	SHA1 Algorithm = iota
	SHA256
	SHA512
)

const (
	defaultDigits = 6
	defaultPeriod = 30 * time.Second
	defaultSkew   = 1
	// maxSkew bounds the window: every extra step either side accepts two
	// more codes, raising a guesser's odds, so a large value is a
	// misconfiguration rather than a convenience.
	maxSkew = 5
	// secretSize is 160 bits, the length RFC 4226 recommends and the size of
	// a SHA-1 block output.
	secretSize = 20
	// minSecretSize is RFC 4226's hard minimum (128 bits); a shorter stored
	// secret (in particular an empty one, which HMAC would happily accept)
	// is treated as corruption rather than used.
	minSecretSize = 16
	// maxCodeInput caps how much user input is examined, so a megabyte of
	// whitespace costs nothing.
	maxCodeInput = 64
)

// Config describes how codes are derived. The zero value of every field
// except Issuer means the authenticator-app default.
type Config struct {
	// Issuer is shown above the account in the authenticator app and
	// namespaces the entry there (for example "Rampart" or a workspace
	// name). Required by Generate.
	Issuer string
	// Digits per code: 6 (default) to 8.
	Digits int
	// Period is the length of one time step, a whole number of seconds;
	// default 30s.
	Period time.Duration
	// Skew is how many steps either side of the current one are accepted,
	// to tolerate phone clock drift and typing time. 0 means the default of
	// 1; at most 5.
	Skew uint
	// Algorithm defaults to SHA1 (see the constant for why).
	Algorithm Algorithm
}

// Key is a freshly enrolled TOTP secret.
type Key struct {
	// Secret is the base32 (RFC 4648, unpadded) encoding of a random
	// 160-bit key. It must be stored encrypted; it is shown to the user
	// only during enrolment, for manual entry.
	Secret string
	// URI is the otpauth://totp/... key URI that authenticator apps import,
	// usually through QRCodePNG. It contains the secret.
	URI string
}

// resolved is a Config with defaults applied and checked, in the forms
// pquerna/otp wants.
type resolved struct {
	digits otp.Digits
	period int64 // seconds
	skew   int64
	alg    otp.Algorithm
}

// resolve applies defaults and rejects configurations that would produce
// codes no authenticator shows. A bad Config is a programming error, so it
// is reported as fault.Internal.
func (c Config) resolve() (resolved, error) {
	r := resolved{digits: defaultDigits, period: int64(defaultPeriod / time.Second), skew: defaultSkew}
	if c.Digits != 0 {
		if c.Digits < 6 || c.Digits > 8 {
			return r, fault.New(fault.Internal, "totp_config", "totp: digits must be 6 to 8")
		}
		r.digits = otp.Digits(c.Digits)
	}
	if c.Period != 0 {
		if c.Period < time.Second || c.Period%time.Second != 0 {
			return r, fault.New(fault.Internal, "totp_config", "totp: period must be a whole number of seconds")
		}
		r.period = int64(c.Period / time.Second)
	}
	if c.Skew != 0 {
		if c.Skew > maxSkew {
			return r, fault.New(fault.Internal, "totp_config", "totp: skew too large")
		}
		r.skew = int64(c.Skew)
	}
	switch c.Algorithm {
	case SHA1:
		r.alg = otp.AlgorithmSHA1
	case SHA256:
		r.alg = otp.AlgorithmSHA256
	case SHA512:
		r.alg = otp.AlgorithmSHA512
	default:
		return r, fault.New(fault.Internal, "totp_config", "totp: unknown algorithm")
	}
	return r, nil
}

// Generate creates a new random secret and its otpauth URI. account is the
// label the user sees in the authenticator app (the caller passes the
// email). rand defaults to crypto/rand when nil.
func Generate(cfg Config, account string, rand io.Reader) (Key, error) {
	r, err := cfg.resolve()
	if err != nil {
		return Key{}, err
	}
	// The key URI format separates issuer and account with a colon, so a
	// colon in either would make apps show the wrong names.
	if cfg.Issuer == "" || strings.ContainsRune(cfg.Issuer, ':') || hasControl(cfg.Issuer) {
		return Key{}, fault.New(fault.Internal, "totp_config", "totp: issuer must be set and contain no colon")
	}
	if account == "" || strings.ContainsRune(account, ':') || hasControl(account) {
		return Key{}, fault.Invalidf("mfa_account_invalid", "The account name cannot be used in an authenticator app.")
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	k, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer:      cfg.Issuer,
		AccountName: account,
		Period:      uint(r.period),
		SecretSize:  secretSize,
		Digits:      r.digits,
		Algorithm:   r.alg,
		Rand:        rand,
	})
	if err != nil {
		return Key{}, fault.Wrap(fault.Internal, "internal", "could not create an MFA secret", err)
	}
	return Key{Secret: k.Secret(), URI: k.URL()}, nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// maxQRSize bounds QRCodePNG's output so a caller-supplied size cannot make
// the server allocate an enormous image.
const maxQRSize = 2048

// QRCodePNG renders uri (an otpauth URI from Generate) as a square PNG of
// size×size pixels for the enrolment page. The size must be at least the
// QR symbol's module count (about 50 for a typical URI); 256 is a good
// choice. The PNG contains the secret: serve it with no-store caching.
func QRCodePNG(uri string, size int) ([]byte, error) {
	if !strings.HasPrefix(uri, "otpauth://") {
		return nil, fault.New(fault.Internal, "totp_qr", "totp: not an otpauth URI")
	}
	if size <= 0 || size > maxQRSize {
		return nil, fault.New(fault.Internal, "totp_qr", "totp: QR size out of range")
	}
	k, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "totp_qr", "could not render the QR code", err)
	}
	img, err := k.Image(size, size)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "totp_qr", "could not render the QR code", err)
	}
	// The barcode image computes every pixel through interface calls;
	// copying it once into a plain grayscale image makes encoding several
	// times cheaper and the PNG smaller (one byte per pixel).
	gray := image.NewGray(img.Bounds())
	draw.Draw(gray, gray.Bounds(), img, img.Bounds().Min, draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, gray); err != nil {
		return nil, fault.Wrap(fault.Internal, "totp_qr", "could not render the QR code", err)
	}
	return buf.Bytes(), nil
}

// step returns the RFC 6238 time-step counter for t, floor(unix / period).
func (r resolved) step(t time.Time) (int64, error) {
	u := t.Unix()
	if u < 0 {
		// A clock before 1970 is broken; refuse rather than wrap the
		// counter around to a huge unsigned value.
		return 0, fault.New(fault.Internal, "totp_clock", "totp: time before the Unix epoch")
	}
	return u / r.period, nil
}

// Code returns the code for secret at time t. It is the exact derivation
// Validate uses, exposed for the RFC test vectors and for tests elsewhere
// that need to produce a valid code.
func Code(cfg Config, secret string, t time.Time) (string, error) {
	r, err := cfg.resolve()
	if err != nil {
		return "", err
	}
	if err := checkSecret(secret); err != nil {
		return "", err
	}
	s, err := r.step(t)
	if err != nil {
		return "", err
	}
	return r.code(secret, s)
}

// code derives the code for one step. The secret must have passed
// checkSecret.
func (r resolved) code(secret string, step int64) (string, error) {
	c, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: r.digits, Algorithm: r.alg})
	if err != nil {
		return "", fault.Wrap(fault.Internal, "mfa_secret_corrupt", "stored MFA secret is unusable", err)
	}
	return c, nil
}

// checkSecret decodes secret the way pquerna/otp does (trimmed, upper-cased,
// padding optional) and insists on at least 128 bits, so a truncated or
// empty stored secret fails closed instead of producing guessable codes.
// The secret comes from storage, not the user, so failure is Internal.
func checkSecret(secret string) error {
	s := strings.ToUpper(strings.TrimSpace(secret))
	s = strings.TrimRight(s, "=")
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil || len(b) < minSecretSize {
		return fault.New(fault.Internal, "mfa_secret_corrupt", "stored MFA secret is unusable")
	}
	return nil
}

// parseCode normalises what the user typed: whitespace anywhere is dropped
// (apps display "123 456"), and the rest must be exactly Digits ASCII
// digits. Anything else is rejected before any HMAC is computed.
func parseCode(code string, digits int) (string, bool) {
	if len(code) > maxCodeInput {
		return "", false
	}
	var b strings.Builder
	b.Grow(digits)
	for _, c := range code {
		switch {
		case unicode.IsSpace(c):
			continue
		case c >= '0' && c <= '9':
			if b.Len() == digits {
				return "", false
			}
			b.WriteRune(c)
		default:
			return "", false
		}
	}
	if b.Len() != digits {
		return "", false
	}
	return b.String(), true
}

// Validate checks code against secret at time now, accepting the steps
// within cfg.Skew either side of now's step. On success it returns the
// matched step; the caller must store it and pass it back as lastStep next
// time (0 before the first use). A code whose step is not greater than
// lastStep is rejected with CodeReused: this is what stops a code that was
// observed (shoulder-surfed, phished, logged by a proxy) from being replayed
// while it is still inside its window, and it also forbids using an older
// code after a newer one.
//
// Every step in the window is computed and compared in constant time, and
// the comparison never stops early, so timing does not reveal which step
// (if any) matched. Errors: fault.Invalid with CodeInvalid or CodeReused;
// fault.Internal for a bad Config, clock or stored secret.
func Validate(cfg Config, secret, code string, now time.Time, lastStep int64) (int64, error) {
	r, err := cfg.resolve()
	if err != nil {
		return 0, err
	}
	if err := checkSecret(secret); err != nil {
		return 0, err
	}
	cur, err := r.step(now)
	if err != nil {
		return 0, err
	}
	in, ok := parseCode(code, int(r.digits))
	if !ok {
		return 0, invalid()
	}

	// fresh: the smallest matching step after lastStep, if any. stale: 1 if
	// some step at or before lastStep matched. The selection is branch-free
	// in the comparison result and always covers the whole window.
	var fresh int64
	haveFresh, stale := 0, 0
	for s := max(cur-r.skew, 0); s <= cur+r.skew; s++ {
		want, err := r.code(secret, s)
		if err != nil {
			return 0, err
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(in))
		// Whether s is after lastStep depends only on the clock and the
		// stored step, not on the code, so an ordinary branch is fine.
		after := 0
		if s > lastStep {
			after = 1
		}
		take := eq & after & (1 ^ haveFresh)
		mask := -int64(take) // all ones when take == 1
		fresh = s&mask | fresh&^mask
		haveFresh |= take
		stale |= eq & (1 ^ after)
	}
	switch {
	case haveFresh == 1:
		return fresh, nil
	case stale == 1:
		return 0, fault.Invalidf(CodeReused, "This code has already been used. Wait for the next one.")
	default:
		return 0, invalid()
	}
}

func invalid() error {
	return fault.Invalidf(CodeInvalid, "The code is not valid.")
}
