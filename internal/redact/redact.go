// Package redact keeps personal data and secrets out of logs (MON-4). Code
// already avoids logging them; this slog handler is the second line of
// defence: any string attribute that looks like an email address, a bearer
// token or a card number is replaced before the record is written, and the
// replacements are counted so a live check can report them.
package redact

import (
	"context"
	"log/slog"
	"regexp"
	"sync/atomic"
)

var (
	emailRE  = regexp.MustCompile(`[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,255}\.[A-Za-z]{2,}`)
	bearerRE = regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/\-]+=*`)
	cardRE   = regexp.MustCompile(`\b(?:\d[ -]?){13,19}\b`)
)

// Counter counts redactions; it is shared by every handler derived from one
// New call.
type Counter struct{ n atomic.Int64 }

// Count returns how many values have been redacted.
func (c *Counter) Count() int64 { return c.n.Load() }

// Handler wraps another slog.Handler.
type Handler struct {
	next    slog.Handler
	counter *Counter
}

// New returns a redacting handler in front of next, with its counter.
func New(next slog.Handler) (*Handler, *Counter) {
	c := &Counter{}
	return &Handler{next: next, counter: c}, c
}

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return &Handler{next: h.next.WithAttrs(clean), counter: h.counter}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), counter: h.counter}
}

func (h *Handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, x := range g {
			clean[i] = h.attr(x)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.String(err.Error()))
		}
		return a
	default:
		return a
	}
}

// String returns s with emails, bearer tokens and card-like digit runs
// replaced, counting each replacement.
func (h *Handler) String(s string) string {
	if len(s) < 6 {
		return s
	}
	for _, re := range []*regexp.Regexp{bearerRE, emailRE, cardRE} {
		s = re.ReplaceAllStringFunc(s, func(string) string {
			h.counter.n.Add(1)
			return "[REDACTED]"
		})
	}
	return s
}
