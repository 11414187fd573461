package sink

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// Standard Webhooks header names (https://www.standardwebhooks.com).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

const secretPrefix = "whsec_"

// The spec asks for a random secret of 24 to 64 bytes. Shorter keys are
// refused so a typo or a placeholder cannot end up as a guessable key.
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// Signer signs webhook requests per the Standard Webhooks spec (symmetric
// "v1": HMAC-SHA256 over "id.timestamp.body"), so any of the spec's receiver
// libraries can verify what Rampart sends.
type Signer struct {
	key []byte
}

// NewSigner parses a "whsec_<base64>" secret (the prefix is optional, as in
// the reference libraries). The error never quotes the secret.
func NewSigner(secret string) (*Signer, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return nil, fault.New(fault.Invalid, "webhook_secret_invalid", "webhook secret must be whsec_ followed by base64")
	}
	if len(key) < minSecretLen || len(key) > maxSecretLen {
		return nil, fault.Invalidf("webhook_secret_invalid", "webhook secret must decode to %d to %d bytes", minSecretLen, maxSecretLen)
	}
	return &Signer{key: key}, nil
}

// GenerateSecret returns a fresh "whsec_" secret of 32 random bytes, for
// operators setting up a receiver. rnd defaults to crypto/rand.
func GenerateSecret(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fault.Wrap(fault.Internal, "random_failed", "could not generate a secret", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// Sign returns the webhook-signature value "v1,<base64 MAC>" for a message.
// The id must not contain '.', or the signed string would be ambiguous; our
// ids are generated here and never do.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(s.mac(id, strconv.FormatInt(ts.Unix(), 10), body))
}

func (s *Signer) mac(id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SetHeaders signs body and sets the three Standard Webhooks headers on h.
func (s *Signer) SetHeaders(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderWebhookSignature, s.Sign(id, ts, body))
}

// Verify checks the headers of a received webhook against body: one of the
// space-separated "v1," signatures must match (compared in constant time)
// and the timestamp must be within tolerance of now, which stops replays.
// Rampart does not receive webhooks itself; Verify exists for receivers
// written in Go and for tests.
func (s *Signer) Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration) bool {
	id, tsText, sigs := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	if id == "" || tsText == "" || sigs == "" {
		return false
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return false
	}
	want := s.mac(id, tsText, body)
	ok := 0
	for _, sig := range strings.Fields(sigs) {
		v, b64, found := strings.Cut(sig, ",")
		if !found || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		ok |= subtle.ConstantTimeCompare(got, want)
	}
	return ok == 1
}
