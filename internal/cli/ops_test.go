package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, IO{Stdout: &out, Stderr: &errb, Environ: []string{"RAMPART_PASSWORD_HASH_MEMORY_KIB=8192", "RAMPART_PASSWORD_HASH_TIME=1"}})
	return code, out.String(), errb.String()
}

func TestAccessReviewAndOperatorsCommands(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := runCLI(t, "access-review", "--dev", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "0 workspaces, 0 with a review overdue") {
		t.Fatalf("access-review on an empty install: code %d, output %q", code, out)
	}
	code, _, errs := runCLI(t, "operators", "add", "nobody@example.com", "--dev", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "no account") {
		t.Fatalf("operators add for an unknown account: code %d, stderr %q", code, errs)
	}
	if code, _, _ := runCLI(t, "operators", "add"); code != 2 {
		t.Fatalf("operators add without an email: code %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "operators"); code != 2 {
		t.Fatalf("operators without a subcommand: code %d, want 2", code)
	}
}

func TestOperatorsAddExistingAccount(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.Dev = dir, true
	cfg.Password.HashMemoryKiB, cfg.Password.HashTime = 8192, 1
	cfg.Finalize()
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Identity.ProvisionUser(context.Background(), "ops@example.com"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	code, out, errs := runCLI(t, "operators", "add", "ops@example.com", "--network", "10.0.0.0/8", "--dev", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "operator staff") || !strings.Contains(out, "10.0.0.0/8") {
		t.Fatalf("operators add: code %d, out %q, err %q", code, out, errs)
	}
	if code, _, _ := runCLI(t, "operators", "add", "ops@example.com", "--network", "not-a-cidr", "--dev", "--data-dir", dir); code == 0 {
		t.Fatal("a malformed network was accepted")
	}
}
