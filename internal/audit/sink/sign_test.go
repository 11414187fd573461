package sink

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The published vector of the Standard Webhooks reference libraries
// (standard-webhooks/standard-webhooks, libraries/go/webhook_test.go,
// TestWebhookSign): matching it proves receivers using those libraries
// accept our signatures.
func TestSignerSpecVector(t *testing.T) {
	s, err := NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	// The prefix is optional, as in the reference libraries.
	s2, err := NewSigner("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	if s2.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)) != got {
		t.Fatal("unprefixed secret signs differently")
	}
}

func TestNewSignerRejects(t *testing.T) {
	for _, tc := range []struct{ name, secret string }{
		{"empty", ""},
		{"not base64", "whsec_!!!!"},
		{"too short", "whsec_c2hvcnQ="},
		{"too long", "whsec_" + strings.Repeat("QUFB", 22)}, // 66 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSigner(tc.secret)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.secret != "" && strings.Contains(err.Error(), strings.TrimPrefix(tc.secret, "whsec_")) {
				t.Fatal("error quotes the secret")
			}
		})
	}
}

func TestSignerVerify(t *testing.T) {
	secret, err := GenerateSecret(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	body := []byte(`{"a":1}`)
	now := time.Unix(1_700_000_000, 0)
	signed := func() http.Header {
		h := http.Header{}
		s.SetHeaders(h, "audit_1_2", now, body)
		return h
	}
	for _, tc := range []struct {
		name   string
		mutate func(h http.Header) ([]byte, time.Time)
		ok     bool
	}{
		{"valid", func(h http.Header) ([]byte, time.Time) { return body, now }, true},
		{"valid among others", func(h http.Header) ([]byte, time.Time) {
			h.Set(HeaderWebhookSignature, "v1a,abc v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+h.Get(HeaderWebhookSignature))
			return body, now
		}, true},
		{"body changed", func(h http.Header) ([]byte, time.Time) { return []byte(`{"a":2}`), now }, false},
		{"id changed", func(h http.Header) ([]byte, time.Time) { h.Set(HeaderWebhookID, "audit_1_3"); return body, now }, false},
		{"timestamp changed", func(h http.Header) ([]byte, time.Time) {
			h.Set(HeaderWebhookTimestamp, "1700000001")
			return body, now
		}, false},
		{"too old", func(h http.Header) ([]byte, time.Time) { return body, now.Add(6 * time.Minute) }, false},
		{"missing signature", func(h http.Header) ([]byte, time.Time) { h.Del(HeaderWebhookSignature); return body, now }, false},
		{"other key", func(h http.Header) ([]byte, time.Time) {
			other.SetHeaders(h, "audit_1_2", now, body)
			return body, now
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := signed()
			b, at := tc.mutate(h)
			if got := s.Verify(h, b, at, 5*time.Minute); got != tc.ok {
				t.Fatalf("Verify = %v, want %v", got, tc.ok)
			}
		})
	}
}
