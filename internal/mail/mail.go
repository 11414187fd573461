// Package mail sends Rampart's account mail: verification and reset links,
// lock notices and new-device notices (AUTH-4, AUTH-5).
//
// Two senders share one message builder so that what is written to the dev
// outbox is byte-for-byte what would go over SMTP: an outbox file is a
// faithful preview, not an approximation.
//
// Bodies carry single-use links and codes, so neither sender ever logs a
// subject or a body, and recipients appear in logs and errors only as a short
// hash (MON-4).
package mail

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"

	"github.com/rampartsec/rampart/internal/fault"
)

// Well-known message kinds. Kind is free-form within [a-z][a-z0-9_]{0,31} so
// callers can add kinds without touching this package, but these are the
// ones Rampart itself sends.
const (
	KindVerifyEmail    = "verify_email"
	KindPasswordReset  = "password_reset"
	KindAccountLocked  = "account_locked"
	KindNewDevice      = "new_device"
	KindSignupExisting = "signup_existing"
)

// Limits on a message. They are generous for account mail and exist so a
// bug upstream cannot turn the mailer into a bulk-data channel.
const (
	maxAddrLen    = 254 // RFC 5321 path limit
	maxSubjectLen = 512
	maxTextLen    = 256 << 10
)

// Message is one plain-text account mail to one recipient.
type Message struct {
	To      string // a single RFC 5322 address; only its addr-spec is used
	Subject string
	Text    string // text/plain body, UTF-8
	// Kind names the purpose (see the Kind constants). It is what logs and
	// outbox file names show instead of the subject.
	Kind string
}

// Sender delivers a Message. Implementations must not log the recipient,
// subject or body.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

var (
	kindRE          = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	newlineReplacer = strings.NewReplacer("\r\n", "\n", "\r", "\n")
)

// RecipientHash returns a short, stable pseudonym for a recipient address so
// that log lines about the same recipient can be correlated without the log
// holding the address. It is the first 12 hex digits (48 bits) of a
// domain-separated SHA-256 of the trimmed, lowercased address: enough to
// tell recipients apart in practice, short enough that it is not a durable
// global identifier. It is a correlation aid, not anonymisation: anyone who
// already has a candidate address can compute it.
func RecipientHash(addr string) string {
	h := sha256.New()
	h.Write([]byte("rampart/mail/recipient\x00"))
	h.Write([]byte(strings.ToLower(strings.TrimSpace(addr))))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// parseFrom validates a configured From address. The domain is needed for
// Message-IDs, so a bare local part is refused.
func parseFrom(from string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "mail_from_invalid", "mail From address is not a valid address", err)
	}
	if domainOf(a.Address) == "" {
		return nil, fault.New(fault.Invalid, "mail_from_invalid", "mail From address has no domain")
	}
	return a, nil
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 || i == len(addr)-1 {
		return ""
	}
	return addr[i+1:]
}

// validate checks m and returns the parsed recipient. Control characters in
// the subject are refused rather than stripped: a CR or LF there means the
// caller is building headers from untrusted input, which is a bug to surface.
func validate(m Message) (*netmail.Address, error) {
	if !kindRE.MatchString(m.Kind) {
		return nil, fault.Invalidf("mail_kind_invalid", "mail kind must match %s", kindRE)
	}
	if len(m.To) > maxAddrLen || strings.ContainsAny(m.To, "\r\n") {
		return nil, fault.New(fault.Invalid, "mail_to_invalid", "recipient is not a valid address")
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil || domainOf(to.Address) == "" {
		// err would quote the address back; drop it.
		return nil, fault.New(fault.Invalid, "mail_to_invalid", "recipient is not a valid address")
	}
	if m.Subject == "" || len(m.Subject) > maxSubjectLen || !utf8.ValidString(m.Subject) || hasControl(m.Subject) {
		return nil, fault.New(fault.Invalid, "mail_subject_invalid", "subject must be non-empty UTF-8 without control characters")
	}
	if m.Text == "" || len(m.Text) > maxTextLen || !utf8.ValidString(m.Text) {
		return nil, fault.New(fault.Invalid, "mail_text_invalid", "text must be non-empty UTF-8 of bounded size")
	}
	return to, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// builder turns a Message into a go-mail Msg. Date and Message-ID come from
// the injected clock and randomness (go-mail would otherwise use time.Now,
// os.Hostname and its own entropy), so output is reproducible in tests and
// identical across senders.
type builder struct {
	from *netmail.Address
	now  func() time.Time

	mu   sync.Mutex // an injected io.Reader need not be safe for concurrent use
	rand io.Reader
}

func newBuilder(from *netmail.Address, now func() time.Time, rnd io.Reader) *builder {
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	return &builder{from: from, now: now, rand: rnd}
}

func (b *builder) random(n int) ([]byte, error) {
	p := make([]byte, n)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := io.ReadFull(b.rand, p); err != nil {
		return nil, fault.Wrap(fault.Internal, "mail_rand", "mail: randomness unavailable", err)
	}
	return p, nil
}

// build validates m and returns the message and its Message-ID (without
// angle brackets). now is passed in so the outbox file name and the Date
// header agree.
func (b *builder) build(m Message, now time.Time) (*gomail.Msg, string, error) {
	to, err := validate(m)
	if err != nil {
		return nil, "", err
	}
	r, err := b.random(16)
	if err != nil {
		return nil, "", err
	}
	id := hex.EncodeToString(r) + "@" + domainOf(b.from.Address)

	// No default User-Agent: it would advertise the library version to
	// every recipient for no benefit.
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(b.from)
	msg.ToMailAddress(&netmail.Address{Address: to.Address})
	msg.Subject(m.Subject)
	msg.SetDateWithValue(now)
	msg.SetMessageIDWithValue(id)
	// RFC 3834: tells auto-responders (out-of-office etc.) not to reply.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	// Line breaks become CRLF on the wire either way; normalising first
	// makes a lone CR (which go-mail would also turn into a break) explicit.
	msg.SetBodyString(gomail.TypeTextPlain, newlineReplacer.Replace(m.Text))
	return msg, id, nil
}

// render returns the RFC 5322 bytes of msg.
func render(msg *gomail.Msg) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fault.Wrap(fault.Internal, "mail_render", "mail: could not render message", err)
	}
	return buf.Bytes(), nil
}

// redactedError hides the recipient address inside a lower-level error's
// text (go-mail's SendError lists "affected recipient(s)") so that an
// error which ends up in a log carries the hash instead. Unwrap still gives
// programmatic access to the cause.
type redactedError struct {
	err  error
	addr string
}

func (e *redactedError) Error() string {
	s := e.err.Error()
	if e.addr == "" {
		return s
	}
	re := regexp.MustCompile(`(?i)` + regexp.QuoteMeta(e.addr))
	return re.ReplaceAllLiteralString(s, "rcpt:"+RecipientHash(e.addr))
}

func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, addr string) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, addr: addr}
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// String keeps a Message's secrets out of any accidental %v or slog.Any.
func (m Message) String() string {
	return fmt.Sprintf("mail.Message{Kind:%q To:rcpt:%s}", m.Kind, RecipientHash(m.To))
}

// LogValue implements slog.LogValuer for the same reason as String.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", m.Kind), slog.String("rcpt", RecipientHash(m.To)))
}
