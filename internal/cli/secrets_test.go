package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsCommands walks the operator-level secrets through the CLI:
// put from a file and from a generator, CAS conflict, get by stage,
// promote, rotate (no policy), delete, restore, destroy.
func TestSecretsCommands(t *testing.T) {
	dir := t.TempDir()
	common := []string{"--dev", "--data-dir", dir}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(args, common...)...)
	}
	valueFile := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(valueFile, []byte("first-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run("secrets", "put", "api-key", "--from-file", valueFile, "--cas", "0"); code != 0 || !strings.Contains(out, "wrote version 1 (current)") {
		t.Fatalf("put: %d %q %q", code, out, errs)
	}
	if code, _, errs := run("secrets", "put", "api-key", "--generate", "20", "--cas", "0"); code != 1 || !strings.Contains(errs, "changed since") {
		t.Fatalf("stale cas: %d %q", code, errs)
	}
	if code, out, _ := run("secrets", "put", "api-key", "--generate", "20", "--pending"); code != 0 || !strings.Contains(out, "version 2 (pending)") {
		t.Fatalf("put pending: %d %q", code, out)
	}
	if code, out, _ := run("secrets", "get", "api-key"); code != 0 || out != "first-value\n" {
		t.Fatalf("get: %d %q", code, out)
	}
	code, out, _ := run("secrets", "get", "api-key", "--stage", "pending")
	if code != 0 || len(strings.TrimSpace(out)) != 20 {
		t.Fatalf("get pending: %d %q", code, out)
	}
	if code, _, _ := run("secrets", "promote", "api-key", "--version", "2"); code != 0 {
		t.Fatal("promote failed")
	}
	if code, got, _ := run("secrets", "get", "api-key"); code != 0 || got != out {
		t.Fatalf("after promote: %q, want %q", got, out)
	}
	if code, out, _ := run("secrets", "list"); code != 0 || !strings.Contains(out, "api-key  current v2  latest v2") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, errs := run("secrets", "rotate", "api-key"); code != 1 || !strings.Contains(errs, "no rotation policy") {
		t.Fatalf("rotate without policy: %d %q", code, errs)
	}
	if code, _, _ := run("secrets", "delete", "api-key"); code != 0 {
		t.Fatal("delete failed")
	}
	if code, _, errs := run("secrets", "get", "api-key"); code != 1 || !strings.Contains(errs, "deleted") {
		t.Fatalf("get deleted: %d %q", code, errs)
	}
	if code, _, _ := run("secrets", "restore", "api-key"); code != 0 {
		t.Fatal("restore failed")
	}
	if code, _, errs := run("secrets", "destroy", "api-key"); code != 1 || !strings.Contains(errs, "--confirm") {
		t.Fatalf("destroy without confirm: %d %q", code, errs)
	}
	if code, _, _ := run("secrets", "destroy", "api-key", "--confirm", "api-key"); code != 0 {
		t.Fatal("destroy failed")
	}
	if code, _, _ := run("secrets", "get", "api-key"); code != 1 {
		t.Fatal("a destroyed secret was read")
	}
	// Usage errors.
	for _, args := range [][]string{{"secrets"}, {"secrets", "get"}, {"secrets", "nope", "x"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: code %d, want 2", args, code)
		}
	}
	if code, _, _ := run("secrets", "put", "x", "--generate", "8", "--from-env", "HOME"); code != 1 {
		t.Error("two value sources accepted")
	}
	if code, _, _ := run("secrets", "get", "../etc"); code != 1 {
		t.Error("a bad name was accepted")
	}
}
