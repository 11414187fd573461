package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHandlerRedacts(t *testing.T) {
	cases := []struct {
		name   string
		log    func(l *slog.Logger)
		secret string
	}{
		{"email attr", func(l *slog.Logger) { l.Info("x", "to", "alice@example.com") }, "alice@example.com"},
		{"email in message", func(l *slog.Logger) { l.Info("mail to bob@corp.example failed") }, "bob@corp.example"},
		{"bearer in error", func(l *slog.Logger) { l.Error("x", "err", errors.New("got Bearer abc.def.ghi")) }, "abc.def.ghi"},
		{"card", func(l *slog.Logger) { l.Info("x", "v", "card 4111 1111 1111 1111 ok") }, "4111 1111 1111 1111"},
		{"group", func(l *slog.Logger) { l.Info("x", slog.Group("g", "e", "carol@example.org")) }, "carol@example.org"},
		{"with attrs", func(l *slog.Logger) { l.With("e", "dave@example.net").Info("x") }, "dave@example.net"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			h, n := New(slog.NewJSONHandler(&buf, nil))
			c.log(slog.New(h))
			if strings.Contains(buf.String(), c.secret) {
				t.Fatalf("secret leaked: %s", buf.String())
			}
			if !strings.Contains(buf.String(), "[REDACTED]") || n.Count() == 0 {
				t.Fatalf("no redaction recorded: %s", buf.String())
			}
		})
	}
}

func TestHandlerKeepsOrdinaryValues(t *testing.T) {
	var buf bytes.Buffer
	h, n := New(slog.NewJSONHandler(&buf, nil))
	slog.New(h).Info("request", "route", "POST /v1/signin", "status", 401, "request_id", "5f2a9c")
	if n.Count() != 0 || !strings.Contains(buf.String(), "POST /v1/signin") {
		t.Fatalf("ordinary values changed: %s (count %d)", buf.String(), n.Count())
	}
}
