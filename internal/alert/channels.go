package alert

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	netmail "net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit/sink"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/mail"
)

// MailKind is the mail.Message kind of alert mail.
const MailKind = "security_alert"

// Text renders the alert for people (email body, chat message): one fact a
// line, so it reads the same in a mail client and in a chat window.
func (a Alert) Text() string {
	var b strings.Builder
	b.WriteString("Rampart security alert (" + a.Severity + "): " + a.Summary + "\n")
	b.WriteString("Rule: " + a.Rule + "\n")
	b.WriteString("Key (" + a.KeyKind + "): " + a.Key + "\n")
	if a.Workspace != "" {
		b.WriteString("Workspace: " + a.Workspace + "\n")
	}
	b.WriteString("Time: " + a.Time.UTC().Format(time.RFC3339) + "\n")
	if a.EventID >= 0 {
		b.WriteString("Audit event: #" + strconv.FormatInt(a.EventID, 10) + "\n")
	}
	if a.Suppressed > 0 {
		b.WriteString(strconv.Itoa(a.Suppressed) + " further alerts were held back by the rate limit; see the audit trail.\n")
	}
	b.WriteString("Alert id: " + a.ID + "\n")
	return b.String()
}

// WebhookChannel posts {"type":"alert.raised","timestamp":…,"data":alert}
// signed per Standard Webhooks with the same signer as the audit sinks, so
// one receiver verifies both.
type WebhookChannel struct {
	name   string
	ep     *sink.Endpoint
	signer *sink.Signer
	now    func() time.Time
}

// NewWebhookChannel validates URL (TLS-3) and Secret; cfg.Name defaults to
// "webhook".
func NewWebhookChannel(cfg sink.WebhookConfig) (*WebhookChannel, error) {
	ep, err := sink.NewEndpoint(cfg.URL, cfg.HTTP)
	if err != nil {
		return nil, err
	}
	s, err := sink.NewSigner(cfg.Secret)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &WebhookChannel{name: orName(cfg.Name, "webhook"), ep: ep, signer: s, now: now}, nil
}

func (w *WebhookChannel) Name() string { return w.name }

func (w *WebhookChannel) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      Alert     `json:"data"`
	}{"alert.raised", a.Time.UTC(), a})
	if err != nil {
		return fault.Wrap(fault.Internal, "alert_encode_failed", "could not encode alert", err)
	}
	return w.ep.Post(ctx, "application/json", body, func(h http.Header) {
		w.signer.SetHeaders(h, a.ID, w.now(), body)
	})
}

// SlackChannel posts {"text": …} to a Slack-compatible incoming webhook
// (Slack, Mattermost, Rocket.Chat, …). The URL is the credential: it is
// never logged and errors never quote it.
type SlackChannel struct {
	name string
	ep   *sink.Endpoint
}

// NewSlackChannel validates url (TLS-3); name defaults to "slack".
func NewSlackChannel(name, url string, o sink.HTTPOptions) (*SlackChannel, error) {
	ep, err := sink.NewEndpoint(url, o)
	if err != nil {
		return nil, err
	}
	return &SlackChannel{name: orName(name, "slack"), ep: ep}, nil
}

func (s *SlackChannel) Name() string { return s.name }

// slackEscape escapes the three characters Slack's message format treats
// as markup, so a key cannot smuggle in a link or a mention.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func (s *SlackChannel) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(map[string]string{"text": slackEscape.Replace(a.Text())})
	if err != nil {
		return fault.Wrap(fault.Internal, "alert_encode_failed", "could not encode alert", err)
	}
	return s.ep.Post(ctx, "application/json", body, nil)
}

// EmailChannel mails each alert to a fixed list of addresses, one message
// per recipient so one bad address does not stop the others.
type EmailChannel struct {
	sender mail.Sender
	to     []string
}

// NewEmailChannel checks the addresses up front, so a typo is a startup
// error instead of a silent gap in alerting.
func NewEmailChannel(s mail.Sender, to []string) (*EmailChannel, error) {
	if s == nil || len(to) == 0 {
		return nil, fault.New(fault.Invalid, "alert_email_invalid", "alert email needs a sender and at least one recipient")
	}
	for _, addr := range to {
		if _, err := netmail.ParseAddress(addr); err != nil {
			return nil, fault.New(fault.Invalid, "alert_email_invalid", "an alert recipient is not a valid address")
		}
	}
	return &EmailChannel{sender: s, to: append([]string(nil), to...)}, nil
}

func (c *EmailChannel) Name() string { return "email" }

func (c *EmailChannel) Send(ctx context.Context, a Alert) error {
	var errs []error
	for _, to := range c.to {
		err := c.sender.Send(ctx, mail.Message{
			To: to, Kind: MailKind, Text: a.Text(),
			Subject: "Rampart security alert: " + a.Rule + " (" + a.Severity + ")",
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fault.Wrap(fault.Unavailable, "alert_email_failed",
			strconv.Itoa(len(errs))+" of "+strconv.Itoa(len(c.to))+" alert mails failed", errors.Join(errs...))
	}
	return nil
}

func orName(name, def string) string {
	if name == "" {
		return def
	}
	return name
}
