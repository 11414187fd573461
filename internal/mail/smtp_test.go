package mail

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

const testFrom = "Rampart <no-reply@rampart.test>"

// testMessage carries a body with a long secret link, which also forces
// quoted-printable soft line breaks.
func testMessage() Message {
	return Message{
		To:      "Alice.Example@example.org",
		Subject: "Reset your password — Rampart",
		Text:    "Hello,\n\nReset your password here:\nhttps://rampart.test/reset?token=S3CR3T-tok3n-0123456789abcdef0123456789abcdef0123456789abcdef\n\nThis link expires in 30 minutes.\n", // gitleaks:allow (test fixture)
		Kind:    KindPasswordReset,
	}
}

func smtpConfig(ts *testServer, mode string) SMTPConfig {
	return SMTPConfig{
		Host:    ts.host,
		Port:    ts.port,
		From:    testFrom,
		TLS:     mode,
		Timeout: 5 * time.Second,
	}
}

// checkDelivered asserts the peer got exactly m, from testFrom.
func checkDelivered(t *testing.T, got received, m Message) {
	t.Helper()
	if got.From != "no-reply@rampart.test" {
		t.Errorf("MAIL FROM = %q", got.From)
	}
	if !strings.EqualFold(got.To, m.To) {
		t.Errorf("RCPT TO = %q, want %q", got.To, m.To)
	}
	p := parseEML(t, got.Data)
	if p.Subject != m.Subject {
		t.Errorf("Subject = %q, want %q", p.Subject, m.Subject)
	}
	if p.To != m.To {
		t.Errorf("To header = %q, want %q", p.To, m.To)
	}
	if p.From != "no-reply@rampart.test" {
		t.Errorf("From header = %q", p.From)
	}
	if norm(p.Body) != norm(m.Text) {
		t.Errorf("body = %q, want %q", p.Body, m.Text)
	}
}

func TestSMTPSendDelivers(t *testing.T) {
	cert, pool := testCert(t, true, "localhost")
	tests := []struct {
		name    string
		server  serverOpts
		mode    string
		host    string // overrides the dialled host name
		auth    bool
		wantTLS bool
	}{
		{name: "starttls no auth", server: serverOpts{cert: &cert}, mode: "", wantTLS: true},
		{name: "starttls auth plain", server: serverOpts{cert: &cert, user: "relay", pass: "hunter2-relay"}, mode: TLSStartTLS, auth: true, wantTLS: true},
		{name: "starttls by name", server: serverOpts{cert: &cert}, mode: TLSStartTLS, host: "localhost", wantTLS: true},
		{name: "implicit tls auth plain", server: serverOpts{cert: &cert, implicit: true, user: "relay", pass: "hunter2-relay"}, mode: TLSImplicit, auth: true, wantTLS: true},
		{name: "none to loopback", server: serverOpts{}, mode: TLSNone, wantTLS: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.server)
			cfg := smtpConfig(ts, tt.mode)
			cfg.RootCAs = pool
			if tt.host != "" {
				cfg.Host = tt.host
			}
			if tt.auth {
				cfg.Username, cfg.Password = tt.server.user, tt.server.pass
			}
			s, err := NewSMTP(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := testMessage()
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := ts.messages()
			if len(msgs) != 1 {
				t.Fatalf("server received %d messages, want 1", len(msgs))
			}
			checkDelivered(t, msgs[0], m)
			if msgs[0].TLS != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", msgs[0].TLS, tt.wantTLS)
			}
			if want := map[bool]string{true: tt.server.user}[tt.auth]; msgs[0].User != want {
				t.Errorf("authenticated as %q, want %q", msgs[0].User, want)
			}
		})
	}
}

// Each case must fail to deliver: a TLS or auth problem is never worked
// around by falling back to something weaker.
func TestSMTPSendRefuses(t *testing.T) {
	cert, pool := testCert(t, true, "localhost")
	otherCert, otherPool := testCert(t, false, "mail.example.org") // trusted, but for another name
	tests := []struct {
		name   string
		server serverOpts
		mode   string
		cfg    func(*SMTPConfig)
	}{
		{name: "untrusted cert starttls", server: serverOpts{cert: &cert}, mode: TLSStartTLS, cfg: func(c *SMTPConfig) { c.RootCAs = otherPool }},
		{name: "untrusted cert implicit", server: serverOpts{cert: &cert, implicit: true}, mode: TLSImplicit, cfg: func(c *SMTPConfig) { c.RootCAs = otherPool }},
		{name: "system roots do not trust self-signed", server: serverOpts{cert: &cert}, mode: TLSStartTLS, cfg: func(c *SMTPConfig) { c.RootCAs = nil }},
		{name: "cert for another name", server: serverOpts{cert: &otherCert}, mode: TLSStartTLS, cfg: func(c *SMTPConfig) { c.RootCAs = otherPool }},
		{name: "no starttls offered", server: serverOpts{}, mode: TLSStartTLS, cfg: func(c *SMTPConfig) { c.RootCAs = pool }},
		{name: "wrong password", server: serverOpts{cert: &cert, user: "relay", pass: "right"}, mode: TLSStartTLS, cfg: func(c *SMTPConfig) {
			c.RootCAs, c.Username, c.Password = pool, "relay", "wrong"
		}},
		{name: "auth required but not configured", server: serverOpts{cert: &cert, user: "relay", pass: "right"}, mode: TLSStartTLS, cfg: func(c *SMTPConfig) { c.RootCAs = pool }},
		// PLAIN is the only mechanism offered; over plaintext it must not be used.
		{name: "no plaintext password", server: serverOpts{user: "relay", pass: "right", insecureAuth: true}, mode: TLSNone, cfg: func(c *SMTPConfig) { c.Username, c.Password = "relay", "right" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.server)
			cfg := smtpConfig(ts, tt.mode)
			tt.cfg(&cfg)
			s, err := NewSMTP(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), testMessage())
			t.Logf("refused with: %v", err)
			if !fault.Is(err, fault.Unavailable) {
				t.Fatalf("Send error = %v, want kind unavailable", err)
			}
			if n := len(ts.messages()); n != 0 {
				t.Fatalf("server received %d messages, want 0", n)
			}
		})
	}
}

func TestNewSMTPConfig(t *testing.T) {
	base := SMTPConfig{Host: "mail.example.org", From: testFrom}
	tests := []struct {
		name     string
		mod      func(*SMTPConfig)
		wantCode string // "" means success
	}{
		{name: "defaults", mod: func(c *SMTPConfig) {}},
		{name: "implicit tls", mod: func(c *SMTPConfig) { c.TLS = "TLS" }},
		{name: "none to remote name refused", mod: func(c *SMTPConfig) { c.TLS = TLSNone }, wantCode: "smtp_plaintext_refused"},
		{name: "none to remote ip refused", mod: func(c *SMTPConfig) { c.TLS, c.Host = TLSNone, "10.0.0.25" }, wantCode: "smtp_plaintext_refused"},
		{name: "none to look-alike refused", mod: func(c *SMTPConfig) { c.TLS, c.Host = TLSNone, "localhost.example.org" }, wantCode: "smtp_plaintext_refused"},
		{name: "none to remote allowed explicitly", mod: func(c *SMTPConfig) { c.TLS, c.AllowInsecure = TLSNone, true }},
		{name: "none to localhost", mod: func(c *SMTPConfig) { c.TLS, c.Host = TLSNone, "localhost" }},
		{name: "none to 127.0.0.2", mod: func(c *SMTPConfig) { c.TLS, c.Host = TLSNone, "127.0.0.2" }},
		{name: "none to ::1", mod: func(c *SMTPConfig) { c.TLS, c.Host = TLSNone, "::1" }},
		{name: "opportunistic is not a mode", mod: func(c *SMTPConfig) { c.TLS = "opportunistic" }, wantCode: "smtp_tls_invalid"},
		{name: "empty host", mod: func(c *SMTPConfig) { c.Host = "" }, wantCode: "smtp_host_invalid"},
		{name: "bad from", mod: func(c *SMTPConfig) { c.From = "not an address" }, wantCode: "mail_from_invalid"},
		{name: "from without domain", mod: func(c *SMTPConfig) { c.From = "root@" }, wantCode: "mail_from_invalid"},
		{name: "username without password", mod: func(c *SMTPConfig) { c.Username = "u" }, wantCode: "smtp_auth_incomplete"},
		{name: "port out of range", mod: func(c *SMTPConfig) { c.Port = 70000 }, wantCode: "smtp_port_invalid"},
		{name: "negative timeout", mod: func(c *SMTPConfig) { c.Timeout = -time.Second }, wantCode: "smtp_timeout_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mod(&cfg)
			s, err := NewSMTP(cfg, nil)
			if tt.wantCode == "" {
				if err != nil || s == nil {
					t.Fatalf("NewSMTP: %v", err)
				}
				return
			}
			if !fault.Is(err, fault.Invalid) || fault.As(err).Code != tt.wantCode {
				t.Fatalf("NewSMTP error = %v, want invalid %s", err, tt.wantCode)
			}
		})
	}
}

// The log line and any returned error identify the recipient only by hash.
func TestSMTPLogAndErrorsCarryNoSecrets(t *testing.T) {
	cert, pool := testCert(t, true)
	m := testMessage()
	rejected := m
	rejected.To = "bob.rejected@example.org"
	ts := startServer(t, serverOpts{cert: &cert, rejectTo: rejected.To})
	cfg := smtpConfig(ts, TLSStartTLS)
	cfg.RootCAs = pool
	var buf bytes.Buffer
	s, err := NewSMTP(cfg, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	sendErr := s.Send(context.Background(), rejected)
	if !fault.Is(sendErr, fault.Unavailable) {
		t.Fatalf("rejected send error = %v, want unavailable", sendErr)
	}
	if strings.Contains(strings.ToLower(sendErr.Error()), "bob.rejected") {
		t.Errorf("error leaks the recipient: %v", sendErr)
	}
	if !strings.Contains(sendErr.Error(), RecipientHash(rejected.To)) {
		t.Errorf("error should name the recipient by hash: %v", sendErr)
	}

	logs := buf.String()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one log line per message, got %d:\n%s", len(lines), logs)
	}
	assertNoSecrets(t, logs, m, rejected)
	for _, want := range []string{`"kind":"password_reset"`, RecipientHash(m.To), RecipientHash(rejected.To), `"sender":"smtp"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func assertNoSecrets(t *testing.T, logs string, msgs ...Message) {
	t.Helper()
	low := strings.ToLower(logs)
	for _, m := range msgs {
		for _, secret := range []string{m.To, strings.SplitN(m.To, "@", 2)[0], m.Subject, "S3CR3T", "reset?token", "Hello"} {
			if strings.Contains(low, strings.ToLower(secret)) {
				t.Errorf("log contains %q:\n%s", secret, logs)
			}
		}
	}
}

// Concurrent sends share one SMTP value; run with -race.
func TestSMTPConcurrentSends(t *testing.T) {
	cert, pool := testCert(t, true)
	ts := startServer(t, serverOpts{cert: &cert, user: "relay", pass: "pw"})
	cfg := smtpConfig(ts, TLSStartTLS)
	cfg.RootCAs, cfg.Username, cfg.Password = pool, "relay", "pw"
	s, err := NewSMTP(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			m := testMessage()
			m.To = fmt.Sprintf("user%d@example.org", i)
			errs <- s.Send(context.Background(), m)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := len(ts.messages()); got != n {
		t.Fatalf("server received %d messages, want %d", got, n)
	}
}

func TestSMTPCanceledContext(t *testing.T) {
	ts := startServer(t, serverOpts{})
	s, err := NewSMTP(smtpConfig(ts, TLSNone), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, testMessage()); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("Send error = %v, want unavailable", err)
	}
	if n := len(ts.messages()); n != 0 {
		t.Fatalf("server received %d messages, want 0", n)
	}
}

func BenchmarkSMTPSendStartTLS(b *testing.B) {
	cert, pool := testCert(b, true)
	ts := startServer(b, serverOpts{cert: &cert, user: "relay", pass: "pw"})
	cfg := smtpConfig(ts, TLSStartTLS)
	cfg.RootCAs, cfg.Username, cfg.Password = pool, "relay", "pw"
	s, err := NewSMTP(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := testMessage()
	ctx := context.Background()
	for b.Loop() {
		if err := s.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
