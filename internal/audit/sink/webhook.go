package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// WebhookConfig configures a Webhook target or a WitnessWebhook.
type WebhookConfig struct {
	Name   string // sink name, the cursor key; default "webhook"
	URL    string
	Secret string // "whsec_<base64>", 24 to 64 bytes
	HTTP   HTTPOptions
	Now    func() time.Time
}

// Webhook delivers each batch as one POST whose body is the Standard
// Webhooks envelope
//
//	{"type":"audit.events","data":[event, …]}
//
// with events in ID order. One request per batch rather than per event keeps
// a busy log from turning into thousands of requests a second; the envelope
// lets one receiver tell audit batches from alerts and checkpoints. The
// webhook-id is "audit_<first>_<last>", the same on every retry of a batch,
// so the receiver can use it as an idempotency key.
type Webhook struct {
	name   string
	ep     *Endpoint
	signer *Signer
	now    func() time.Time
}

// NewWebhook validates the URL (TLS-3) and the secret.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	ep, err := NewEndpoint(cfg.URL, cfg.HTTP)
	if err != nil {
		return nil, err
	}
	s, err := NewSigner(cfg.Secret)
	if err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = "webhook"
	}
	return &Webhook{name: name, ep: ep, signer: s, now: orNow(cfg.Now)}, nil
}

func (w *Webhook) Name() string { return w.name }

// Deliver posts the batch; 2xx means delivered, anything else is an error.
func (w *Webhook) Deliver(ctx context.Context, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(`{"type":"audit.events","data":[`)
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		j, err := marshalEvent(e)
		if err != nil {
			return fault.Wrap(fault.Internal, "event_encode_failed", "could not encode event", err)
		}
		b.Write(j)
	}
	b.WriteString("]}")
	id := "audit_" + strconv.FormatInt(events[0].ID, 10) + "_" + strconv.FormatInt(events[len(events)-1].ID, 10)
	body := b.Bytes()
	return w.ep.Post(ctx, "application/json", body, func(h http.Header) {
		w.signer.SetHeaders(h, id, w.now(), body)
	})
}

// WitnessWebhook posts each signed checkpoint note (text/plain, the note
// verbatim) to an outside witness, signed like the audit webhook. The
// webhook-id is derived from the note, so a re-published note has the same
// id and the witness can ignore the duplicate.
type WitnessWebhook struct {
	ep     *Endpoint
	signer *Signer
	now    func() time.Time
}

// NewWitnessWebhook validates the URL (TLS-3) and the secret; Name is unused.
func NewWitnessWebhook(cfg WebhookConfig) (*WitnessWebhook, error) {
	ep, err := NewEndpoint(cfg.URL, cfg.HTTP)
	if err != nil {
		return nil, err
	}
	s, err := NewSigner(cfg.Secret)
	if err != nil {
		return nil, err
	}
	return &WitnessWebhook{ep: ep, signer: s, now: orNow(cfg.Now)}, nil
}

// Publish posts note; 2xx means the witness has it.
func (w *WitnessWebhook) Publish(ctx context.Context, note []byte) error {
	sum := sha256.Sum256(note)
	id := "checkpoint_" + hex.EncodeToString(sum[:16])
	return w.ep.Post(ctx, "text/plain; charset=utf-8", note, func(h http.Header) {
		w.signer.SetHeaders(h, id, w.now(), note)
	})
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
