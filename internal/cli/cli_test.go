package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/trust"
)

// cheap keeps password hashing fast; it goes through the environment like
// an operator's setting would.
var cheap = []string{"RAMPART_PASSWORD_HASH_MEMORY_KIB=8192", "RAMPART_PASSWORD_HASH_TIME=1"}

// syncBuffer is written by the serve goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run executes the command line and returns the exit code and both streams.
func run(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	code := cli.Run(context.Background(), args, cli.IO{Stdout: &out, Stderr: &errb, Environ: environ})
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rampart.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, "data_dir: "+dir+"\nlisten: 127.0.0.1:8443\npublic_url: https://auth.example.com\nlog:\n  level: warn\n")
	tests := []struct {
		name      string
		args      []string
		environ   []string
		code      int
		stdout    []string
		stderr    []string
		notStdout []string
	}{
		{name: "good file", args: []string{"--config", good}, code: 0,
			stdout: []string{"configuration is valid"}},
		{name: "good file from RAMPART_CONFIG", environ: []string{"RAMPART_CONFIG=" + good}, code: 0,
			stdout: []string{"configuration is valid"}},
		{name: "no file: defaults are valid", args: []string{"--data-dir", dir}, code: 0,
			stdout: []string{"configuration is valid"}},
		{name: "dev warns", args: []string{"--config", good, "--dev"}, code: 0,
			stdout: []string{"warning: dev", "configuration is valid"}},
		{name: "print redacts the database password",
			args:      []string{"--config", good, "--print", "--database", "postgres://rampart:hunter2-secret@db.example.com/rampart"},
			code:      0,
			stdout:    []string{"data_dir: " + dir, "db.example.com", "configuration is valid"},
			notStdout: []string{"hunter2-secret"}},
		{name: "bad values", args: []string{"--config", writeConfig(t, "data_dir: "+dir+"\nlog:\n  level: loud\npassword:\n  min_length: 4\n  hash_memory_kib: 1024\n")},
			code:   1,
			stdout: []string{"configuration is invalid:", "log.level", "password.min_length", "password.hash_memory_kib"},
			stderr: []string{"rampart: invalid configuration"}},
		{name: "bad public url", args: []string{"--data-dir", dir, "--public-url", "http://auth.example.com"},
			code: 1, stdout: []string{"public_url: must use https"}},
		{name: "unknown key", args: []string{"--config", writeConfig(t, "data_dir: "+dir+"\nlisten_addr: :9999\n")},
			code: 1, stderr: []string{"listen_addr"}},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "nope.yaml")},
			code: 1, stderr: []string{"nope.yaml"}},
		{name: "unknown environment variable", args: []string{"--data-dir", dir}, environ: []string{"RAMPART_LISTN=:1"},
			code: 1, stdout: []string{"configuration is invalid:", "RAMPART_LISTN"}},
		{name: "bad flag", args: []string{"--no-such-flag"}, code: 2},
		{name: "stray argument", args: []string{"--data-dir", dir, "extra"}, code: 2, stderr: []string{"unexpected argument"}},
		{name: "help", args: []string{"-h"}, code: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, tc.environ, append([]string{"config", "validate"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notStdout {
				if strings.Contains(out+errs, w) {
					t.Errorf("output shows %q:\n%s", w, out)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if tc.code == 1 && strings.Contains(out, "configuration is valid") {
				t.Errorf("an invalid configuration was called valid")
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no command", nil, 2, "", "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"config without validate", []string{"config"}, 2, "", "usage: rampart config validate"},
		{"config other", []string{"config", "show"}, 2, "", "usage: rampart config validate"},
		{"version", []string{"version"}, 0, "rampart " + cli.Version, ""},
		{"--version", []string{"--version"}, 0, "rampart " + cli.Version, ""},
		{"help", []string{"help"}, 0, "Usage:", ""},
		{"migrate bad flag", []string{"migrate", "--bogus"}, 2, "", "bogus"},
		{"controls bad flag", []string{"controls", "--bogus"}, 2, "", "bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, nil, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			if !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", out, tc.stdout, errs, tc.stderr)
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			args := []string{"migrate", "--data-dir", t.TempDir()}
			if engine == store.EnginePostgres {
				args = append(args, "--database", storetest.DSN(t, engine))
			}
			re := regexp.MustCompile(`^database: ` + engine + `; migrations applied: ([1-9][0-9]*); pending: 0\n$`)
			var applied string
			for i := range 2 { // a second run finds nothing to do
				code, out, errs := run(t, cheap, args...)
				if code != 0 {
					t.Fatalf("run %d: exit %d: %s", i, code, errs)
				}
				m := re.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("run %d: output %q", i, out)
				}
				if i == 1 && m[1] != applied {
					t.Errorf("second run reports %s applied, first %s", m[1], applied)
				}
				applied = m[1]
			}
		})
	}
	t.Run("unreachable database", func(t *testing.T) {
		code, _, errs := run(t, cheap, "migrate", "--data-dir", t.TempDir(), "--database", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
		if code != 1 || !strings.Contains(errs, "rampart:") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		if strings.Contains(errs, "panic") {
			t.Fatalf("stderr: %s", errs)
		}
	})
}

func TestControls(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, cheap, "controls", "--json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		GeneratedAt time.Time      `json:"generated_at"`
		Summary     map[string]int `json:"summary"`
		Controls    []struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Evidence string `json:"evidence"`
		} `json:"controls"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not the trust document: %v\n%s", err, out)
	}
	if len(doc.Controls) != len(trust.Catalog()) {
		t.Errorf("%d controls, catalogue has %d", len(doc.Controls), len(trust.Catalog()))
	}
	status := map[string]string{}
	for _, c := range doc.Controls {
		status[c.ID] = c.Status
	}
	if status["SES-1"] != "passing" || status["OPS-6"] != "passing" || status["BAK-1"] != "planned" {
		t.Errorf("statuses: SES-1 %q, OPS-6 %q, BAK-1 %q", status["SES-1"], status["OPS-6"], status["BAK-1"])
	}
	if doc.Summary["failing"] != 0 {
		t.Errorf("failing controls on a fresh install: %v", doc.Controls)
	}

	t.Run("text", func(t *testing.T) {
		code, out, errs := run(t, cheap, "controls", "--data-dir", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, errs, out)
		}
		if !strings.HasPrefix(out, "ID") || !regexp.MustCompile(`\n\d+ passing, 0 failing, \d+ attested, \d+ planned\n$`).MatchString(out) {
			t.Errorf("output:\n%s", out)
		}
	})
}

func TestServe(t *testing.T) {
	t.Run("invalid config does not start", func(t *testing.T) {
		code, _, errs := run(t, cheap, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
		if code != 1 || !strings.Contains(errs, "public_url") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
	})
	t.Run("runs until the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, []string{"serve", "--dev", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
				"--admin-listen", "127.0.0.1:0", "--public-url", "https://localhost"}, cli.IO{Stdout: &out, Stderr: &errb, Environ: cheap})
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "Rampart is running") {
			select {
			case code := <-done:
				t.Fatalf("serve exited %d: %s", code, errb.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve did not report running: %s", errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
		}
	})
}
