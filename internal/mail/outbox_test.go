package mail

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// outboxFiles lists the .eml files in dir in name order and fails on any
// stray file (e.g. a temporary file left behind).
func outboxFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".eml") || strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("stray file in outbox: %s", e.Name())
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

func TestOutboxWritesMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox", "nested")
	var logs bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	o, err := NewOutbox(dir, testFrom, fixedClock(now), nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if o.Dir() != dir {
		t.Fatalf("Dir = %q, want %q", o.Dir(), dir)
	}
	m := testMessage()
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode = %o, want 700", perm)
	}
	files := outboxFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("got %d files, want 1", len(files))
	}
	fi, err = os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
	name := filepath.Base(files[0])
	if !regexp.MustCompile(`^20260102T020405\.000000006Z-[0-9a-f]{16}-password_reset\.eml$`).MatchString(name) {
		t.Errorf("file name = %q", name)
	}

	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	p := parseEML(t, data)
	if p.To != m.To || p.From != "no-reply@rampart.test" || p.Subject != m.Subject {
		t.Errorf("headers: from %q to %q subject %q", p.From, p.To, p.Subject)
	}
	if norm(p.Body) != norm(m.Text) {
		t.Errorf("body = %q, want %q", p.Body, m.Text)
	}

	out := logs.String()
	if n := strings.Count(out, "\n"); n != 1 {
		t.Fatalf("want one log line, got %d:\n%s", n, out)
	}
	assertNoSecrets(t, out, m)
	for _, want := range []string{`"level":"INFO"`, `"kind":"password_reset"`, RecipientHash(m.To), name, `"sender":"outbox"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// Names sort by time, whatever the random suffix and kind.
func TestOutboxNamesSortByTime(t *testing.T) {
	base := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	var step time.Duration
	clock := func() time.Time { step += 999 * time.Millisecond; return base.Add(step) }
	o, err := NewOutbox(t.TempDir(), testFrom, clock, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{KindVerifyEmail, KindAccountLocked, KindNewDevice, KindSignupExisting, KindPasswordReset}
	for _, k := range kinds {
		m := testMessage()
		m.Kind = k
		if err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	files := outboxFiles(t, o.Dir())
	if len(files) != len(kinds) {
		t.Fatalf("got %d files", len(files))
	}
	if !slices.IsSorted(files) {
		t.Fatalf("not sorted: %v", files)
	}
	for i, f := range files {
		if !strings.HasSuffix(f, "-"+kinds[i]+".eml") {
			t.Errorf("file %d = %s, want kind %s (send order)", i, f, kinds[i])
		}
	}
}

func TestNewOutboxRefuses(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T) string
		from     string
		wantKind fault.Kind
	}{
		{"path is a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, testFrom, fault.Invalid},
		{"empty dir", func(t *testing.T) string { return "" }, testFrom, fault.Invalid},
		{"bad from", func(t *testing.T) string { return t.TempDir() }, "nobody", fault.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := NewOutbox(tt.setup(t), tt.from, nil, nil, nil)
			if err == nil || fault.KindOf(err) != tt.wantKind {
				t.Fatalf("NewOutbox = %v, %v; want %s error", o, err, tt.wantKind)
			}
		})
	}
}

func TestOutboxWriteFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "o")
	o, err := NewOutbox(dir, testFrom, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := o.Send(context.Background(), testMessage()); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("Send error = %v, want unavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := o.Send(ctx, testMessage()); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("Send with canceled ctx = %v, want unavailable", err)
	}
}

// A pre-existing dir that others can read is left alone (it may be shared)
// but warned about; the files themselves are still 0600.
func TestOutboxLooseExistingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "o")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	o, err := NewOutbox(dir, testFrom, nil, nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Errorf("no warning for a loose dir:\n%s", logs.String())
	}
	if err := o.Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(outboxFiles(t, dir)[0])
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
}

func BenchmarkOutboxSend(b *testing.B) {
	o, err := NewOutbox(b.TempDir(), testFrom, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := testMessage()
	ctx := context.Background()
	for b.Loop() {
		if err := o.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
