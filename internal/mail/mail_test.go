package mail

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// parsed is an RFC 5322 message reduced to what the tests check.
type parsed struct {
	From, To, Subject, Body string
	Header                  netmail.Header
}

func parseEML(t testing.TB, data []byte) parsed {
	t.Helper()
	p, err := parseEMLErr(data)
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, data)
	}
	return p
}

func parseEMLErr(data []byte) (parsed, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return parsed{}, err
	}
	var p parsed
	p.Header = msg.Header
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 {
		return p, fmt.Errorf("From: %v %v", from, err)
	}
	p.From = from[0].Address
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 1 {
		return p, fmt.Errorf("To: %v %v", to, err)
	}
	p.To = to[0].Address
	// A decoding failure leaves the raw value, which then fails any test
	// comparing it (callers that expect that, like FuzzBuild, skip it).
	raw := msg.Header.Get("Subject")
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(raw); err != nil {
		p.Subject = raw
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return p, fmt.Errorf("body: %w", err)
	}
	p.Body = string(b)
	return p, nil
}

// norm makes line endings comparable: the wire format is CRLF and a lone
// CR in the input is a line break.
func norm(s string) string { return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s) }

// fixedClock and counterRand make builds reproducible.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

type counterRand struct{ n byte }

func (r *counterRand) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

func TestRecipientHash(t *testing.T) {
	a := RecipientHash("Alice@Example.org")
	tests := []struct {
		name string
		in   string
		same bool
	}{
		{"case-insensitive", "alice@example.org", true},
		{"trimmed", "  ALICE@EXAMPLE.ORG\n", true},
		{"different recipient", "alice2@example.org", false},
		{"empty", "", false},
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(a) {
		t.Fatalf("RecipientHash = %q, want 12 hex digits", a)
	}
	if strings.Contains(a, "alice") {
		t.Fatal("hash contains the address")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RecipientHash(tt.in) == a; got != tt.same {
				t.Fatalf("RecipientHash(%q)==RecipientHash(Alice@Example.org) is %v, want %v", tt.in, got, tt.same)
			}
		})
	}
}

func TestMessageValidation(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*Message)
		wantCode string
	}{
		{"ok", func(m *Message) {}, ""},
		{"display name ignored", func(m *Message) { m.To = "Alice <alice@example.org>" }, ""},
		{"unicode subject", func(m *Message) { m.Subject = "Vérifiez votre adresse ✉" }, ""},
		{"custom kind", func(m *Message) { m.Kind = "mfa_disabled" }, ""},
		{"empty kind", func(m *Message) { m.Kind = "" }, "mail_kind_invalid"},
		{"kind with path", func(m *Message) { m.Kind = "../x" }, "mail_kind_invalid"},
		{"kind upper", func(m *Message) { m.Kind = "Verify" }, "mail_kind_invalid"},
		{"kind too long", func(m *Message) { m.Kind = strings.Repeat("a", 33) }, "mail_kind_invalid"},
		{"to empty", func(m *Message) { m.To = "" }, "mail_to_invalid"},
		{"to two addresses", func(m *Message) { m.To = "a@example.org, b@example.org" }, "mail_to_invalid"},
		{"to header injection", func(m *Message) { m.To = "a@example.org\r\nBcc: b@example.org" }, "mail_to_invalid"},
		{"to without domain", func(m *Message) { m.To = "alice" }, "mail_to_invalid"},
		{"to too long", func(m *Message) { m.To = strings.Repeat("a", 250) + "@example.org" }, "mail_to_invalid"},
		{"subject injection", func(m *Message) { m.Subject = "Hi\r\nBcc: evil@example.org" }, "mail_subject_invalid"},
		{"subject empty", func(m *Message) { m.Subject = "" }, "mail_subject_invalid"},
		{"subject bad utf8", func(m *Message) { m.Subject = "\xff" }, "mail_subject_invalid"},
		{"text empty", func(m *Message) { m.Text = "" }, "mail_text_invalid"},
		{"text too large", func(m *Message) { m.Text = strings.Repeat("x", maxTextLen+1) }, "mail_text_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o, err := NewOutbox(dir, testFrom, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := testMessage()
			tt.mod(&m)
			err = o.Send(context.Background(), m)
			files, _ := os.ReadDir(dir)
			if tt.wantCode == "" {
				if err != nil || len(files) != 1 {
					t.Fatalf("Send = %v, %d files; want success, 1 file", err, len(files))
				}
				return
			}
			if !fault.Is(err, fault.Invalid) || fault.As(err).Code != tt.wantCode {
				t.Fatalf("Send error = %v, want invalid %s", err, tt.wantCode)
			}
			if len(files) != 0 {
				t.Fatalf("invalid message wrote %d files", len(files))
			}
			if strings.Contains(err.Error(), "example.org") {
				t.Errorf("error echoes the recipient: %v", err)
			}
		})
	}
}

// The outbox must be a faithful preview: with the same clock and
// randomness, the file holds exactly the bytes the SMTP peer receives.
func TestOutboxAndSMTPProduceSameBytes(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ts := startServer(t, serverOpts{})
	cfg := smtpConfig(ts, TLSNone)
	cfg.Now, cfg.Rand = fixedClock(now), &counterRand{}
	s, err := NewSMTP(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOutbox(t.TempDir(), testFrom, fixedClock(now), &counterRand{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage()
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	files := outboxFiles(t, o.Dir())
	file, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	wire := ts.messages()[0].Data
	if !bytes.Equal(file, wire) {
		t.Fatalf("outbox and SMTP bytes differ:\n--- outbox\n%s\n--- smtp\n%s", file, wire)
	}
	p := parseEML(t, file)
	if got := p.Header.Get("Date"); got != now.Format(time.RFC1123Z) {
		t.Errorf("Date = %q", got)
	}
	if got := p.Header.Get("Message-Id"); !regexp.MustCompile(`^<[0-9a-f]{32}@rampart\.test>$`).MatchString(got) {
		t.Errorf("Message-Id = %q", got)
	}
	if got := p.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if got := p.Header.Get("User-Agent") + p.Header.Get("X-Mailer"); got != "" {
		t.Errorf("mailer header leaked: %q", got)
	}
}

func TestMessageFormattingHidesSecrets(t *testing.T) {
	m := testMessage()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("oops", "msg", m)
	out := fmt.Sprintf("%v %s %+v", m, m, m) + buf.String()
	assertNoSecrets(t, out, m)
	if !strings.Contains(out, RecipientHash(m.To)) {
		t.Errorf("formatted message should carry the hash: %s", out)
	}
}

// allowedHeaders is every header the builder may emit; anything else in the
// output means input leaked into the header section.
var allowedHeaders = []string{
	"Auto-Submitted", "Content-Transfer-Encoding", "Content-Type", "Date",
	"From", "Message-Id", "Mime-Version", "Subject", "To",
}

// FuzzBuild feeds arbitrary messages through validation and rendering:
// whatever is accepted must render to a message that net/mail parses back
// to the same recipient, subject and body, with no extra headers.
func FuzzBuild(f *testing.F) {
	m := testMessage()
	f.Add(m.To, m.Subject, m.Text, m.Kind)
	f.Add("Bob <bob@example.org>", "Hi\r\nBcc: x@y.z", "body", "verify_email")
	f.Add("a@b.c", "=?utf-8?q?x?=", "line\r\n.\r\nafter dot", "new_device")
	f.Add("\"quoted local\"@example.org", strings.Repeat("long subject ", 40), strings.Repeat("é", 500), "account_locked")
	f.Add("a@b.c", "cr", "lone\rcr and trailing\r", "verify_email")
	f.Add("a@b.c\nTo: d@e.f", "s", "From: evil@example.org\n\nx", "signup_existing")
	from, err := parseFrom(testFrom)
	if err != nil {
		f.Fatal(err)
	}
	b := newBuilder(from, fixedClock(time.Unix(1e9, 0)), &counterRand{})
	f.Fuzz(func(t *testing.T, to, subject, text, kind string) {
		msg, _, err := b.build(Message{To: to, Subject: subject, Text: text, Kind: kind}, b.now())
		if err != nil {
			if !fault.Is(err, fault.Invalid) && !fault.Is(err, fault.Internal) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		data, err := render(msg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseEMLErr(data)
		if err != nil {
			t.Fatalf("accepted message does not parse: %v\n%q", err, data)
		}
		want, _ := netmail.ParseAddress(to)
		if p.To != want.Address {
			t.Fatalf("To = %q, want %q", p.To, want.Address)
		}
		// A subject that itself looks like an RFC 2047 encoded-word is sent
		// verbatim and decodes differently; that is cosmetic, not injection.
		if !strings.Contains(subject, "=?") && strings.Join(strings.Fields(p.Subject), " ") != strings.Join(strings.Fields(subject), " ") {
			t.Fatalf("Subject = %q, want %q", p.Subject, subject)
		}
		if norm(p.Body) != norm(text) {
			t.Fatalf("body = %q, want %q", p.Body, text)
		}
		var keys []string
		for k := range p.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if i := sort.SearchStrings(allowedHeaders, k); i == len(allowedHeaders) || allowedHeaders[i] != k {
				t.Fatalf("unexpected header %q in %v", k, keys)
			}
		}
	})
}

func BenchmarkBuildAndRender(b *testing.B) {
	from, _ := parseFrom(testFrom)
	bl := newBuilder(from, nil, nil)
	m := testMessage()
	for b.Loop() {
		msg, _, err := bl.build(m, bl.now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := render(msg); err != nil {
			b.Fatal(err)
		}
	}
}
