package mail

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/outbound"
)

// TLS modes for SMTPConfig.TLS.
const (
	TLSStartTLS = "starttls" // STARTTLS is mandatory; refuse a server that does not offer it
	TLSImplicit = "tls"      // TLS from the first byte (submissions, port 465)
	TLSNone     = "none"     // plaintext; loopback only unless AllowInsecure
)

const defaultSMTPTimeout = 15 * time.Second

// SMTPConfig configures the SMTP sender.
type SMTPConfig struct {
	Host string
	// Port defaults to 587 for "starttls", 465 for "tls" and 25 for "none".
	Port               int
	Username, Password string // both empty: no AUTH
	From               string // RFC 5322 address, may carry a display name
	// TLS is "starttls" (default), "tls" or "none". There is deliberately
	// no opportunistic mode: a STARTTLS that an attacker can strip is no
	// protection for reset links.
	TLS string
	// AllowInsecure permits TLS "none" to a host that is not loopback
	// (TLS-3 requires that to be an explicit decision).
	AllowInsecure bool
	// RootCAs overrides the system roots, e.g. for a private relay or tests.
	// Certificates are always verified; there is no skip-verify switch.
	RootCAs *x509.CertPool
	// Timeout bounds the connection and each SMTP command; default 15s.
	Timeout time.Duration

	// Now and Rand feed the Date and Message-ID headers; nil means
	// time.Now and crypto/rand.Reader.
	Now  func() time.Time
	Rand io.Reader
}

// SMTP sends mail through an SMTP relay. It opens one connection per
// message: account mail is low-volume and a fresh connection per message
// keeps failures independent and needs no pool management.
type SMTP struct {
	client *gomail.Client
	b      *builder
	log    *slog.Logger
}

var _ Sender = (*SMTP)(nil)

// NewSMTP validates cfg and returns a sender. It does not connect; the
// first Send does. Configuration errors are fault.Invalid.
func NewSMTP(cfg SMTPConfig, log *slog.Logger) (*SMTP, error) {
	host := strings.TrimSpace(cfg.Host)
	if host == "" || strings.ContainsAny(host, " /\r\n\t") {
		return nil, fault.New(fault.Invalid, "smtp_host_invalid", "SMTP host is empty or malformed")
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		return nil, err
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, fault.New(fault.Invalid, "smtp_auth_incomplete", "SMTP username and password must be set together")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultSMTPTimeout
	}
	if timeout < 0 {
		return nil, fault.New(fault.Invalid, "smtp_timeout_invalid", "SMTP timeout must be positive")
	}

	mode := strings.ToLower(cfg.TLS)
	if mode == "" {
		mode = TLSStartTLS
	}
	port := cfg.Port
	opts := []gomail.Option{
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(outbound.TLSConfig(host, cfg.RootCAs)),
	}
	switch mode {
	case TLSStartTLS:
		if port == 0 {
			port = 587
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		if port == 0 {
			port = 465
		}
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		if port == 0 {
			port = 25
		}
		// TLS-3, checked here so a refused relay fails at start-up, and
		// again by the dialer at every connection.
		if err := outbound.CheckPlaintext(host, cfg.AllowInsecure); err != nil {
			return nil, fault.Wrap(fault.Invalid, "smtp_plaintext_refused",
				"SMTP without TLS is only allowed to a loopback host unless explicitly allowed", err)
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS),
			gomail.WithDialContextFunc(outbound.Dialer{AllowPlaintext: cfg.AllowInsecure, Timeout: timeout}.DialContext))
	default:
		return nil, fault.New(fault.Invalid, "smtp_tls_invalid", `SMTP TLS mode must be "starttls", "tls" or "none"`)
	}
	if port < 1 || port > 65535 {
		return nil, fault.New(fault.Invalid, "smtp_port_invalid", "SMTP port must be 1-65535")
	}
	opts = append(opts, gomail.WithPort(port))
	if cfg.Username != "" {
		// Autodiscover picks the strongest mechanism the server offers and,
		// on an unencrypted connection, never PLAIN or LOGIN, so a password
		// is not sent in the clear even when TLS is "none".
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password),
		)
	}
	client, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "smtp_config_invalid", "SMTP configuration is invalid", err)
	}
	return &SMTP{client: client, b: newBuilder(from, cfg.Now, cfg.Rand), log: orDiscard(log)}, nil
}

// Send delivers m. Invalid messages are fault.Invalid; delivery failures
// are fault.Unavailable with the recipient redacted from the cause. ctx
// bounds connecting; the configured Timeout bounds the rest.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, "mail_canceled", "mail not sent", err)
	}
	msg, id, err := s.b.build(m, s.b.now())
	if err != nil {
		return err
	}
	rcpt := RecipientHash(m.To)
	if err := s.client.DialAndSendWithContext(ctx, msg); err != nil {
		err = redact(err, msg.GetTo()[0].Address)
		s.log.LogAttrs(ctx, slog.LevelWarn, "mail send failed",
			slog.String("sender", "smtp"), slog.String("kind", m.Kind),
			slog.String("rcpt", rcpt), slog.String("message_id", id),
			slog.String("error", err.Error()))
		return fault.Wrap(fault.Unavailable, "mail_unavailable", "mail could not be delivered", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "mail sent",
		slog.String("sender", "smtp"), slog.String("kind", m.Kind),
		slog.String("rcpt", rcpt), slog.String("message_id", id))
	return nil
}
