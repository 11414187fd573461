package sink

import (
	"bytes"
	"context"
	"os"
	"sync"

	"github.com/rampartsec/rampart/internal/fault"
)

// WitnessFile appends each signed checkpoint note to a file, notes
// separated by a blank line, fsynced. Point it at storage Rampart's database
// administrators cannot rewrite (another host, a WORM mount) and `rampart
// audit verify` can prove the log was not truncated or rewritten since.
type WitnessFile struct {
	path string
	mu   sync.Mutex
}

// NewWitnessFile returns a witness writing to path; the file is created
// with mode 0600 on first publish.
func NewWitnessFile(path string) *WitnessFile { return &WitnessFile{path: path} }

// maxWitnessFile bounds ReadWitnessFile: a checkpoint note is a few hundred
// bytes, so 256 MiB is over half a million checkpoints.
const maxWitnessFile = 256 << 20

// Publish appends note. The file is opened per call: checkpoints are rare
// (seconds apart) and this way an operator can rotate or move it freely.
func (w *WitnessFile) Publish(_ context.Context, note []byte) error {
	if len(note) == 0 || bytes.Contains(note, []byte("\n\n\n")) {
		return fault.New(fault.Invalid, "witness_note_invalid", "checkpoint note is empty or malformed")
	}
	data := make([]byte, 0, len(note)+2)
	data = append(data, note...)
	if data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fault.Wrap(fault.Unavailable, "witness_write_failed", "could not open the witness file", err)
	}
	err = appendSync(f, data)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fault.Wrap(fault.Unavailable, "witness_write_failed", "could not close the witness file", cerr)
	}
	return err
}

// ReadWitnessFile returns the notes in a witness file, in the order written.
func ReadWitnessFile(path string) ([][]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fault.Wrap(fault.NotFound, "witness_file_unreadable", "could not read the witness file", err)
	}
	if st.Size() > maxWitnessFile {
		return nil, fault.New(fault.Invalid, "witness_file_too_large", "witness file is too large")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.Wrap(fault.NotFound, "witness_file_unreadable", "could not read the witness file", err)
	}
	return splitNotes(data), nil
}

// sigPrefix starts every signature line of a signed note (C2SP
// signed-note): an em dash and a space.
var sigPrefix = []byte("\u2014 ")

// splitNotes splits the content of a witness file into notes. A signed note
// itself holds a blank line (between text and signatures), so blank lines
// alone are ambiguous: a paragraph whose lines are signature lines belongs
// to the note before it; any other paragraph starts a new note. Each note is
// returned as published: text, blank line, signature lines, final newline.
func splitNotes(data []byte) [][]byte {
	var (
		notes [][]byte
		cur   []byte
	)
	flush := func() {
		if cur != nil {
			notes = append(notes, cur)
			cur = nil
		}
	}
	for _, para := range bytes.Split(data, []byte("\n\n")) {
		para = bytes.Trim(para, "\n")
		if len(para) == 0 {
			continue
		}
		if cur != nil && isSigParagraph(para) {
			cur = append(cur, '\n')
			cur = append(cur, para...)
			cur = append(cur, '\n')
			flush()
			continue
		}
		flush()
		cur = append(append([]byte(nil), para...), '\n')
	}
	flush()
	return notes
}

func isSigParagraph(p []byte) bool {
	for _, line := range bytes.Split(p, []byte("\n")) {
		if !bytes.HasPrefix(line, sigPrefix) {
			return false
		}
	}
	return true
}
