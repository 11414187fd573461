package sink

import (
	"bytes"
	"context"
	"os"
	"sync"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// File appends events as JSON Lines (one event object per line, the same
// document the other targets send) and fsyncs once per batch, so a batch
// the runner counts as delivered survives a crash. The file is mode 0600:
// it holds the whole trail in clear.
//
// A failed write is rolled back by truncating to the size before the
// batch, so a retry does not leave half a line behind; only a crash in the
// middle of a write can leave a torn last line, which readers should skip.
type File struct {
	name string
	mu   sync.Mutex
	f    *os.File
}

// NewFile opens (creating if needed) path for appending. An existing file
// is brought to mode 0600, because it is about to receive audit data.
func NewFile(name, path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "sink_file_open_failed", "could not open the audit export file", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fault.Wrap(fault.Unavailable, "sink_file_open_failed", "could not restrict the audit export file", err)
	}
	if name == "" {
		name = "file"
	}
	return &File{name: name, f: f}, nil
}

func (t *File) Name() string { return t.name }

// Deliver appends the batch and fsyncs.
func (t *File) Deliver(_ context.Context, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	var b bytes.Buffer
	for _, e := range events {
		j, err := marshalEvent(e)
		if err != nil {
			return fault.Wrap(fault.Internal, "event_encode_failed", "could not encode event", err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return appendSync(t.f, b.Bytes())
}

// Close closes the file.
func (t *File) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.Close()
}

// appendSync writes data at the end of f (opened O_APPEND) and fsyncs,
// truncating back to the previous size on failure.
func appendSync(f *os.File, data []byte) error {
	st, err := f.Stat()
	if err != nil {
		return fault.Wrap(fault.Unavailable, "sink_file_write_failed", "could not write the export file", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Truncate(st.Size())
		return fault.Wrap(fault.Unavailable, "sink_file_write_failed", "could not write the export file", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Truncate(st.Size())
		return fault.Wrap(fault.Unavailable, "sink_file_write_failed", "could not sync the export file", err)
	}
	return nil
}
