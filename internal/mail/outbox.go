package mail

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// Outbox "sends" mail by writing each message as an .eml file. It is the
// sender in development and whenever SMTP is not configured, so that
// sign-up and reset flows still work and the operator can read the links.
// Files hold live secrets, hence the 0700 directory and 0600 files.
type Outbox struct {
	dir string
	b   *builder
	log *slog.Logger
}

var _ Sender = (*Outbox)(nil)

// NewOutbox creates dir (0700) if needed and returns an outbox writing to
// it. An existing dir keeps its mode: it may be shared (e.g. a temp dir)
// and chmod-ing it could break other users of it; each file is 0600, which
// is what keeps message contents private, and a loose dir is logged as a
// warning. now and rand default to time.Now and crypto/rand.Reader.
func NewOutbox(dir, from string, now func() time.Time, rand io.Reader, log *slog.Logger) (*Outbox, error) {
	if dir == "" {
		return nil, fault.New(fault.Invalid, "outbox_dir_invalid", "outbox directory is empty")
	}
	f, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	log = orDiscard(log)
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fault.New(fault.Invalid, "outbox_dir_invalid", "outbox path is not a directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fault.Wrap(fault.Internal, "outbox_dir", "outbox directory could not be created", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "outbox_dir", "outbox directory could not be read", err)
	}
	if !fi.IsDir() {
		return nil, fault.New(fault.Invalid, "outbox_dir_invalid", "outbox path is not a directory")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		log.Warn("mail outbox directory is accessible to other users; message names are visible, contents are not",
			slog.String("path", dir), slog.String("mode", perm.String()))
	}
	return &Outbox{dir: dir, b: newBuilder(f, now, rand), log: log}, nil
}

// Dir returns the directory messages are written to.
func (o *Outbox) Dir() string { return o.dir }

// Send writes m to a new file named
// <UTC timestamp>-<random>-<kind>.eml, so a directory listing sorts by
// time. The file is written under a temporary name and renamed, so a
// reader never sees a partial message.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, "mail_canceled", "mail not sent", err)
	}
	now := o.b.now()
	msg, id, err := o.b.build(m, now)
	if err != nil {
		return err
	}
	data, err := render(msg)
	if err != nil {
		return err
	}
	suffix, err := o.b.random(8)
	if err != nil {
		return err
	}
	name := now.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(suffix) + "-" + m.Kind + ".eml"
	path := filepath.Join(o.dir, name)
	if err := writeFileAtomic(path, data); err != nil {
		o.log.LogAttrs(ctx, slog.LevelWarn, "mail send failed",
			slog.String("sender", "outbox"), slog.String("kind", m.Kind),
			slog.String("rcpt", RecipientHash(m.To)), slog.String("path", path),
			slog.String("error", err.Error()))
		return fault.Wrap(fault.Unavailable, "outbox_write", "mail could not be written to the outbox", err)
	}
	o.log.LogAttrs(ctx, slog.LevelInfo, "mail sent",
		slog.String("sender", "outbox"), slog.String("kind", m.Kind),
		slog.String("rcpt", RecipientHash(m.To)), slog.String("message_id", id),
		slog.String("path", path))
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
