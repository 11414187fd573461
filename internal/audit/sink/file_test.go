package sink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileTarget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	// A pre-existing, too-open file is tightened.
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ft, err := NewFile("archive", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	log := newMemLog(7)
	sl := &recSleep{poll: 3 * time.Millisecond}
	r := NewRunner(ft, log, log, RunnerConfig{Batch: 3, Poll: sl.poll, Sleep: sl.sleep})
	runUntil(t, r, 6)

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var n int64
	for sc.Scan() {
		var w wireEvent
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		e := log.events[n]
		if w.ID != n || w.Action != e.Action || w.Outcome != string(e.Outcome) || !w.Time.Equal(e.Time) || w.Details["n"] != e.Details["n"] || w.UserAgent != e.UserAgent {
			t.Fatalf("line %d: %+v", n, w)
		}
		n++
	}
	if n != 7 {
		t.Fatalf("%d lines, want 7", n)
	}
	if ft.Name() != "archive" {
		t.Fatal(ft.Name())
	}
}

func TestFileTargetCreatesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.jsonl")
	ft, err := NewFile("", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	if err := ft.Deliver(context.Background(), newMemLog(1).events); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 || ft.Name() != "file" {
		t.Fatalf("mode %v name %q", st.Mode().Perm(), ft.Name())
	}
}

// A real signed checkpoint note has a blank line inside it, so the file
// format must still split notes correctly.
const (
	note1 = "rampart.example/audit\n10\nq3VYJ4pfcuVfVyO6FxTbbVYX9n0bOSvOSPOJWJ2IMMk=\n\n\u2014 rampart.example/audit Az3grlJ0KbkU0QlwdWUhZQ2J5G1P+pBM8hW2E3VgZ7JfVtc9e0xIh/0=\n"
	note2 = "rampart.example/audit\n25\nJ5tdJKlq6u5Gq0ZYBd0yKxVqJDvSU0vJjh4FZVvLTQY=\n\n\u2014 rampart.example/audit Az3grlgwm2T6SxkMpqOiGE4CmI0/g+Qm0SLx8JHoVmLRnhGbRfBLNtE=\n\u2014 witness.example BwTzm0WJWrbWbw2UwVO4ueBgdHSCqBvmZXK1TxVXRZ3zrzYHvKTi+bA=\n"
	note3 = "rampart.example/audit\n26\nHeQrHqJ1bmIyo66TIx1JdxTcF3lTuuLLn3I1yJc6kN0=\n\n\u2014 rampart.example/audit Az3grjBDCB6JPQnO7uM1HAZVF7aF7Q+tD8PJ/zvT4p86LnqdqHtk+bQ=\n"
)

func TestWitnessFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "witness")
	w := NewWitnessFile(path)
	for _, n := range []string{note1, note2, note3} {
		if err := w.Publish(context.Background(), []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadWitnessFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{note1, note2, note3}
	if len(got) != len(want) {
		t.Fatalf("%d notes, want 3: %q", len(got), got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("note %d = %q, want %q", i, got[i], want[i])
		}
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	if err := w.Publish(context.Background(), nil); err == nil {
		t.Fatal("published an empty note")
	}
	if _, err := ReadWitnessFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("read a missing file")
	}
}

func TestWitnessWebhook(t *testing.T) {
	signer, _ := NewSigner(testSecret)
	var got []byte
	var verified bool
	var ids []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		verified = signer.Verify(r.Header, got, time.Now(), time.Minute)
		ids = append(ids, r.Header.Get(HeaderWebhookID))
		if r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			w.WriteHeader(415)
		}
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ww, err := NewWitnessWebhook(WebhookConfig{URL: srv.URL, Secret: testSecret, HTTP: HTTPOptions{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ww.Publish(context.Background(), []byte(note1)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, []byte(note1)) || !verified {
		t.Fatalf("witness got %q verified=%v", got, verified)
	}
	if ids[0] != ids[1] || ids[0] == "" {
		t.Fatalf("ids %v: a re-published note must keep its id", ids)
	}
}

// FuzzSplitNotes checks the witness-file decoder: it never panics, and notes
// written by Publish come back exactly.
func FuzzSplitNotes(f *testing.F) {
	f.Add([]byte(note1+"\n"+note2+"\n"), "origin\n5\nroot=", "\u2014 k sig")
	f.Add([]byte("\n\n\n\u2014 x\n\n"), "a", "\u2014 b")
	f.Add([]byte(""), "o\n1", "\u2014 s\n\u2014 t")
	f.Fuzz(func(t *testing.T, raw []byte, body, sigs string) {
		_ = splitNotes(raw)
		// A well-formed note: non-empty body lines, none a signature line,
		// then signature lines.
		lines := bytes.Split([]byte(body), []byte("\n"))
		for _, l := range lines {
			if len(l) == 0 || bytes.HasPrefix(l, sigPrefix) {
				return
			}
		}
		sl := bytes.Split([]byte(sigs), []byte("\n"))
		for _, l := range sl {
			if !bytes.HasPrefix(l, sigPrefix) {
				return
			}
		}
		note := body + "\n\n" + sigs + "\n"
		path := filepath.Join(t.TempDir(), "w")
		w := NewWitnessFile(path)
		for range 2 {
			if err := w.Publish(context.Background(), []byte(note)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := ReadWitnessFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || string(got[0]) != note || string(got[1]) != note {
			t.Fatalf("got %q, want twice %q", got, note)
		}
	})
}
