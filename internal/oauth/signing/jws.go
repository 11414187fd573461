package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/internal/fault"
)

// The compact JWS (RFC 7515) is produced and checked here with the standard
// library rather than go-jose: the token check runs on every API request,
// and go-jose's general parser (any algorithm, JSON serialization, header
// maps) costs several times the signature check itself. go-jose still
// builds the JWKS and the thumbprints, and the tests cross-check both
// directions against it.

// b64 is the JWS base64url: no padding, and strict, so a token has one
// encoding only (no malleable trailing bits).
var b64 = base64.RawURLEncoding.Strict()

// MaxTokenLen bounds a token before any work is done on it.
const MaxTokenLen = 16 << 10

// maxHeaderLen bounds the encoded protected header.
const maxHeaderLen = 1024

// sigLen is the raw signature length of both algorithms (Ed25519; P-256
// R||S as RFC 7518 §3.4 fixes it), encodedSigLen its base64url length.
const (
	sigLen        = 64
	encodedSigLen = 86
)

// invalid builds a token refusal. Every refusal has the same public code
// and message; the cause (for logs and tests) says which check failed.
func invalid(cause string) *fault.Error {
	return fault.Wrap(fault.Unauthenticated, "invalid_token", "the token is invalid", errors.New("jws: "+cause))
}

// The refusals, allocated once: Verify's failure path allocates nothing.
var (
	ErrMalformed  = invalid("malformed")
	ErrUnknownKey = invalid("unknown or unpublished key")
	ErrAlgorithm  = invalid("algorithm does not match the key")
	ErrType       = invalid("wrong typ")
	ErrCritical   = invalid("critical header not understood")
	ErrSignature  = invalid("bad signature")
	ErrClaims     = invalid("claims do not decode")
)

// header is the JWS protected header Rampart writes and reads. Field order
// is the order written.
type header struct {
	Alg  Algorithm       `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ,omitempty"`
	Crit json.RawMessage `json:"crit,omitempty"`
}

type headerKey struct{ kid, typ string }

// encodedHeader returns the base64url header for k and typ, cached: a
// process signs with a handful of (key, typ) pairs.
func (m *Manager) encodedHeader(k *key, typ string) ([]byte, error) {
	hk := headerKey{k.ID, typ}
	if v, ok := m.hdrs.Load(hk); ok {
		return v.([]byte), nil
	}
	raw, err := json.Marshal(header{Alg: k.Algorithm, Kid: k.ID, Typ: typ})
	if err != nil {
		return nil, err
	}
	enc := b64.AppendEncode(nil, raw)
	m.hdrs.Store(hk, enc)
	return enc, nil
}

// Sign returns a compact JWS of claims (JSON-encoded) signed by the active
// key, with the protected header {alg, kid, typ}. typ names what the token
// is ("at+jwt" for access tokens, "JWT" for ID tokens,
// "rampart-assertion+jwt" for gateway assertions) so one kind cannot be
// replayed as another.
func (m *Manager) Sign(typ string, claims any) (string, error) {
	k := m.keys.Load().signer(m.d.Now())
	if k == nil {
		return "", ErrNoKey
	}
	hdr, err := m.encodedHeader(k, typ)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fault.Wrap(fault.Internal, "internal", "cannot encode claims", err)
	}
	buf := make([]byte, 0, len(hdr)+2+b64.EncodedLen(len(payload))+encodedSigLen)
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	var sig [sigLen]byte
	if err := m.signRaw(k, buf, &sig); err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig[:])
	return string(buf), nil
}

func (m *Manager) signRaw(k *key, input []byte, out *[sigLen]byte) error {
	switch p := k.private.(type) {
	case ed25519.PrivateKey:
		copy(out[:], ed25519.Sign(p, input))
		return nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(m.d.Rand, p, h[:])
		if err != nil {
			return fault.Wrap(fault.Internal, "internal", "cannot sign", err)
		}
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return nil
	}
	return ErrNoKey
}

// Verify checks a compact JWS: the key (by kid) must be known and
// published, the header's alg must be that key's algorithm (so "none",
// HS256 with the public key as secret, or a switch between EdDSA and ES256
// are all refused), typ must match, no critical header may be present, and
// the signature must hold. Only then are the claims decoded into claims
// (which may be nil to skip decoding). Expiry, audience and issuer are the
// caller's: they differ by token kind. Every refusal is fault
// Unauthenticated "invalid_token".
func (m *Manager) Verify(token string, typ string, claims any) error {
	if len(token) > MaxTokenLen {
		return ErrMalformed
	}
	i := strings.IndexByte(token, '.')
	if i <= 0 || i > maxHeaderLen {
		return ErrMalformed
	}
	j := strings.IndexByte(token[i+1:], '.')
	if j < 0 {
		return ErrMalformed
	}
	j += i + 1
	if len(token)-j-1 != encodedSigLen {
		return ErrMalformed
	}
	h, err := m.parseHeader(token[:i])
	if err != nil {
		return err
	}
	now := m.d.Now()
	k := m.keys.Load().byID[h.Kid]
	if k == nil {
		// A key created by another node moments ago: look once.
		if m.reloadForUnknownKid(now) {
			k = m.keys.Load().byID[h.Kid]
		}
		if k == nil {
			return ErrUnknownKey
		}
	}
	if !k.published(now) {
		return ErrUnknownKey
	}
	if h.Alg != k.Algorithm {
		return ErrAlgorithm
	}
	if !typMatches(h.Typ, typ) {
		return ErrType
	}
	b := []byte(token) // the one copy: the segments below are views of it
	var sig [sigLen]byte
	if n, err := b64.Decode(sig[:], b[j+1:]); err != nil || n != sigLen {
		return ErrMalformed
	}
	input := b[:j]
	switch k.Algorithm {
	case EdDSA:
		if !ed25519.Verify(k.edPub, input, sig[:]) {
			return ErrSignature
		}
	case ES256:
		d := sha256.Sum256(input)
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k.ecPub, d[:], r, s) {
			return ErrSignature
		}
	default:
		return ErrAlgorithm
	}
	if claims == nil {
		return nil
	}
	seg := b[i+1 : j]
	payload := make([]byte, b64.DecodedLen(len(seg)))
	n, err := b64.Decode(payload, seg)
	if err != nil {
		return ErrMalformed
	}
	if err := json.Unmarshal(payload[:n], claims); err != nil {
		return ErrClaims
	}
	return nil
}

// parseHeader decodes the protected header. Headers already seen with a
// valid signature are served from a small cache keyed by their encoded
// form, so the common case parses no JSON.
func (m *Manager) parseHeader(seg string) (header, error) {
	if c := m.hdrCache.Load(); c != nil {
		if h, ok := (*c)[seg]; ok {
			return h, nil
		}
	}
	var raw [maxHeaderLen]byte
	n, err := b64.Decode(raw[:], []byte(seg))
	if err != nil {
		return header{}, ErrMalformed
	}
	var h header
	if err := json.Unmarshal(raw[:n], &h); err != nil || h.Kid == "" || h.Alg == "" {
		return header{}, ErrMalformed
	}
	if len(h.Crit) > 0 {
		return header{}, ErrCritical
	}
	m.rememberHeader(seg, h)
	return h, nil
}

// maxCachedHeaders bounds the header cache; on overflow it starts over.
// Headers are cached whether or not the token's signature turns out to
// hold, but only when their kid names a loaded key, so a flood of made-up
// headers cannot grow it past the bound and costs a reset at worst.
const maxCachedHeaders = 64

func (m *Manager) rememberHeader(seg string, h header) {
	if m.keys.Load().byID[h.Kid] == nil {
		return
	}
	m.hdrMu.Lock()
	defer m.hdrMu.Unlock()
	old := m.hdrCache.Load()
	next := make(map[string]header, 8)
	if old != nil && len(*old) < maxCachedHeaders {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[strings.Clone(seg)] = h
	m.hdrCache.Store(&next)
}

// typMatches compares JWS typ values as RFC 7515 §4.1.9 says: media types,
// case-insensitive, "application/" optional.
func typMatches(got, want string) bool {
	return strings.EqualFold(trimApplication(got), trimApplication(want))
}

func trimApplication(s string) string {
	const p = "application/"
	if len(s) > len(p) && strings.EqualFold(s[:len(p)], p) {
		return s[len(p):]
	}
	return s
}

// reloadForUnknownKid re-reads the key set when the last reload is older
// than unknownKidReloadEvery and no other reload is running; it reports
// whether it reloaded.
func (m *Manager) reloadForUnknownKid(now time.Time) bool {
	if now.UnixNano()-m.lastReload.Load() < int64(unknownKidReloadEvery) || !m.mu.TryLock() {
		return false
	}
	defer m.mu.Unlock()
	m.lastReload.Store(now.UnixNano()) // even if the read fails: keep the bound
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := m.reloadLocked(ctx); err != nil {
		m.d.Log.Warn("signing key reload failed", "err", err)
		return false
	}
	return true
}

// JWKS returns the RFC 7517 key set of every published key, as JSON. The
// bytes are cached and shared: callers must not modify them.
func (m *Manager) JWKS() []byte {
	now := m.d.Now()
	set := m.keys.Load()
	if c := m.jwks.Load(); c != nil && c.set == set && (c.until.IsZero() || now.Before(c.until)) {
		return c.doc
	}
	var (
		ks    jose.JSONWebKeySet
		until time.Time
	)
	for _, k := range set.list {
		if !k.published(now) {
			continue
		}
		if !k.DeleteAfter.IsZero() && (until.IsZero() || k.DeleteAfter.Before(until)) {
			until = k.DeleteAfter
		}
		ks.Keys = append(ks.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"})
	}
	if ks.Keys == nil {
		ks.Keys = []jose.JSONWebKey{}
	}
	doc, err := json.Marshal(ks)
	if err != nil {
		m.d.Log.Error("jwks encoding failed", "err", err)
		return []byte(`{"keys":[]}`)
	}
	m.jwks.Store(&jwksCache{set: set, doc: doc, until: until})
	return doc
}

// thumbprint is the RFC 7638 SHA-256 JWK thumbprint, base64url: the kid.
// It names the key by its content, so a kid can never point at two keys.
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
