package audit

import (
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestParseCheckpointBody(t *testing.T) {
	root := tlog.RecordHash([]byte("x"))
	good := checkpointBody("example.com/log", 42, root)
	tests := []struct {
		name string
		text string
		ok   bool
	}{
		{"ours", good, true},
		{"with extension line", good + "ext\n", true},
		{"missing final newline", strings.TrimSuffix(good, "\n"), false},
		{"empty origin", "\n42\n" + strings.SplitN(good, "\n", 3)[2], false},
		{"leading zero size", strings.Replace(good, "\n42\n", "\n042\n", 1), false},
		{"plus size", strings.Replace(good, "\n42\n", "\n+42\n", 1), false},
		{"negative size", strings.Replace(good, "\n42\n", "\n-42\n", 1), false},
		{"short root", "example.com/log\n42\nAAAA\n", false},
		{"carriage return inside root", strings.Replace(good, "\n42\n", "\n42\n\r", 1), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin, size, got, ok := parseCheckpointBody(tt.text)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (origin != "example.com/log" || size != 42 || got != root) {
				t.Fatalf("parsed %q %d %s", origin, size, got)
			}
		})
	}
}

// FuzzParseCheckpointBody: whatever parses re-encodes to the text's first
// three lines exactly, so a body has one reading.
func FuzzParseCheckpointBody(f *testing.F) {
	f.Add(checkpointBody("example.com/log", 42, tlog.RecordHash(nil)))
	f.Add("a\n0\n" + strings.Repeat("A", 43) + "=\nextra\n")
	f.Add("a\n1\nnot base64\n")
	f.Fuzz(func(t *testing.T, text string) {
		origin, size, root, ok := parseCheckpointBody(text)
		if !ok {
			return
		}
		if body := checkpointBody(origin, size, root); !strings.HasPrefix(text, body) {
			t.Fatalf("re-encoded %q is not a prefix of %q", body, text)
		}
	})
}
