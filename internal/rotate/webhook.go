package rotate

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/outbound"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

// Webhook hands the new value to a receiver that applies it (an app's own
// endpoint, a serverless function). Each step is one signed POST of JSON:
//
//	{"type":"secret.rotation","phase":"set","workspace":"","secret":"name","version":4,"value":"…"}
//
// with phase "set" (apply value), "test" (prove the value works; no value
// sent) and "rollback" (make the previous value, sent in "value", valid
// again). The receiver answers 2xx when done. Requests are signed like
// Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>"); the webhook-id is
// "<secret>-v<version>-<phase>", the same on every retry, so a receiver
// can de-duplicate. Non-2xx answers and transport errors are retried with
// backoff; 4xx other than 408 and 429 are final.
//
// The signer duplicates internal/audit/sink's (a dozen lines): rotate must
// not reach into the audit package's internals.
type Webhook struct {
	URL string
	// Secret is "whsec_<base64>" (24 to 64 bytes), as for the audit webhook.
	Secret string
	// Client posts to URL; nil means internal/outbound's client with
	// plaintext refused to non-loopback hosts (TLS-3). A caller whose
	// configuration allows plaintext builds its own with outbound.Client.
	Client  *http.Client
	Retries int           // extra attempts, default 3
	Backoff time.Duration // first retry delay, doubled each time; default 1s
	Length  int           // generated value length, default 32
	Rand    io.Reader
	Now     func() time.Time
}

var _ secrets.Rotator = (*Webhook)(nil)

// Kind implements secrets.Rotator.
func (w *Webhook) Kind() string { return "webhook" }

// Generate implements secrets.Rotator.
func (w *Webhook) Generate(context.Context) ([]byte, error) {
	return randomString(w.Rand, w.Length, AlphanumAlphabet)
}

// Set implements secrets.Rotator.
func (w *Webhook) Set(ctx context.Context, c secrets.Change) error {
	return w.send(ctx, c, "set", c.Version, c.Value)
}

// Test implements secrets.Rotator.
func (w *Webhook) Test(ctx context.Context, c secrets.Change) error {
	return w.send(ctx, c, "test", c.Version, nil)
}

// Rollback implements secrets.Rotator.
func (w *Webhook) Rollback(ctx context.Context, c secrets.Change) error {
	return w.send(ctx, c, "rollback", c.PreviousVersion, c.Previous)
}

// WebhookMessage is the JSON body the receiver gets.
type WebhookMessage struct {
	Type      string `json:"type"`
	Phase     string `json:"phase"`
	Workspace string `json:"workspace"`
	Secret    string `json:"secret"`
	Version   int    `json:"version"`
	Value     string `json:"value,omitempty"`
}

// NewWebhookKey decodes a "whsec_<base64>" secret (24 to 64 bytes).
func NewWebhookKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, errors.New("webhook secret must be whsec_ followed by the base64 of 24 to 64 bytes")
	}
	return key, nil
}

// SignWebhook returns the webhook-signature value for a message.
func SignWebhook(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (w *Webhook) send(ctx context.Context, c secrets.Change, phase string, version int, value []byte) error {
	key, err := NewWebhookKey(w.Secret)
	if err != nil {
		return err
	}
	body, err := json.Marshal(WebhookMessage{Type: "secret.rotation", Phase: phase, Workspace: c.Workspace, Secret: c.Secret, Version: version, Value: string(value)})
	if err != nil {
		return err
	}
	client := w.Client
	if client == nil {
		client = outbound.Client(outbound.Options{EnvironmentProxy: true}, 15*time.Second)
		defer client.CloseIdleConnections()
	}
	now := w.Now
	if now == nil {
		now = time.Now
	}
	retries, backoff := w.Retries, w.Backoff
	if retries <= 0 {
		retries = 3
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	id := c.Secret + "-v" + strconv.Itoa(version) + "-" + phase
	var last error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(backoff << (attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(last, ctx.Err())
			case <-t.C:
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
		if err != nil {
			return errors.New("webhook rotator: invalid URL")
		}
		ts := now().Unix()
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("webhook-signature", SignWebhook(key, id, ts, body))
		resp, err := client.Do(req)
		if errors.Is(err, outbound.ErrPlaintextRefused) {
			// Final: retrying cannot change the rule. The message, like
			// the others here, does not quote the URL.
			return fmt.Errorf("webhook rotator: %s: plaintext http to a non-loopback host is refused (TLS-3); use https or allow_insecure", phase)
		}
		if err != nil {
			last = fmt.Errorf("webhook rotator: %s: request failed", phase)
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return nil
		case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
			return fmt.Errorf("webhook rotator: %s: receiver refused with HTTP %d", phase, resp.StatusCode)
		}
		last = fmt.Errorf("webhook rotator: %s: receiver answered HTTP %d", phase, resp.StatusCode)
	}
	return last
}
