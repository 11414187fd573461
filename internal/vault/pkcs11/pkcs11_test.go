//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/vault"
)

// softHSM initialises a fresh SoftHSM2 token in a temporary directory and
// returns a Config for it. Without softhsm2 installed the test is skipped
// locally and fails under CI=true (the CI image installs the Debian
// package "softhsm2").
func softHSM(t *testing.T) Config {
	t.Helper()
	module := ""
	for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("softhsm2 is not installed (apt-get install -y softhsm2); the PKCS#11 root key cannot be tested")
		}
		t.Skip("softhsm2 not installed")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "rampart-test", "--so-pin", "5678", "--pin", "1234").CombinedOutput() // gitleaks:allow
	if err != nil {
		t.Fatalf("softhsm2-util: %v: %s", err, out)
	}
	return Config{Module: module, TokenLabel: "rampart-test", PIN: "1234", KeyLabel: "rampart-root"} // gitleaks:allow
}

func TestSoftHSMRoot(t *testing.T) {
	c := softHSM(t)
	if _, err := Open(c); err == nil {
		t.Fatal("opened without a key on the token")
	}
	if err := GenerateKey(c); err != nil {
		t.Fatal(err)
	}
	if err := GenerateKey(c); err == nil {
		t.Fatal("second key with the same label was created")
	}
	// Fail closed: wrong PIN, wrong token, wrong module, wrong label.
	for name, bad := range map[string]Config{
		"pin":    {Module: c.Module, TokenLabel: c.TokenLabel, PIN: "0000", KeyLabel: c.KeyLabel},
		"token":  {Module: c.Module, TokenLabel: "nope", PIN: c.PIN, KeyLabel: c.KeyLabel},
		"module": {Module: "/nonexistent.so", TokenLabel: c.TokenLabel, PIN: c.PIN, KeyLabel: c.KeyLabel},
		"label":  {Module: c.Module, TokenLabel: c.TokenLabel, PIN: c.PIN, KeyLabel: "missing"},
	} {
		if r, err := Open(bad); err == nil {
			r.Close()
			t.Errorf("%s: opened", name)
		}
	}
	r, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	kek := bytes.Repeat([]byte{0x42}, 32)
	ad := []byte("scope ws_1 v1")
	w, err := r.Wrap(ctx, kek, ad)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 12+32+16 || bytes.Contains(w, kek[:8]) {
		t.Fatalf("wrapped form looks wrong (%d bytes)", len(w))
	}
	got, err := r.Unwrap(ctx, w, ad)
	if err != nil || !bytes.Equal(got, kek) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := r.Unwrap(ctx, w, []byte("scope ws_2 v1")); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("unwrap under other AD: %v", err)
	}
	bad := bytes.Clone(w)
	bad[20] ^= 1
	if _, err := r.Unwrap(ctx, bad, ad); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("tampered unwrap: %v", err)
	}
	// The key check value is stable across sessions and differs per key.
	r2, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if r2.ID() != r.ID() || len(r.ID()) != len("pkcs11:")+16 {
		t.Fatalf("ids %q %q", r.ID(), r2.ID())
	}
	r2.Close()
	c2 := c
	c2.KeyLabel = "other"
	if err := GenerateKey(c2); err != nil {
		t.Fatal(err)
	}
	r3, err := Open(c2)
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if r3.ID() == r.ID() {
		t.Fatal("two keys share a check value")
	}
	if _, err := r3.Unwrap(ctx, w, ad); err == nil {
		t.Fatal("another HSM key unwrapped the KEK")
	}
}
