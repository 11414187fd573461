package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/pkcs11"
)

type vaultStatusJSON struct {
	RootSource string `json:"root_source"`
	RootID     string `json:"root_id"`
	Scopes     []struct {
		Scope          string `json:"scope"`
		CurrentVersion uint32 `json:"current_version"`
	} `json:"scopes"`
	Rewrap []struct {
		Source string `json:"source"`
	} `json:"rewrap"`
}

func TestVaultCLI(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			common := []string{"--data-dir", dir}
			if engine == store.EnginePostgres {
				common = append(common, "--database", storetest.DSN(t, engine))
			}
			cmd := func(env []string, args ...string) (int, string, string) {
				return run(t, append(append([]string{}, cheap...), env...), append(args, common...)...)
			}
			code, out, errs := cmd(nil, "vault", "status")
			if code != 0 || !strings.Contains(out, "root key: file") || !strings.Contains(out, "operator") || !strings.Contains(out, "users.totp_secret") {
				t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
			}
			if code, out, errs = cmd(nil, "vault", "rotate-workspace", "operator"); code != 0 || !strings.Contains(out, "rotated to v2") {
				t.Fatalf("rotate-workspace: exit %d\n%s\n%s", code, out, errs)
			}
			var st vaultStatusJSON
			code, out, _ = cmd(nil, "vault", "status", "--json")
			if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Scopes) != 1 || st.Scopes[0].CurrentVersion != 2 {
				t.Fatalf("status --json: exit %d %s", code, out)
			}
			if code, out, errs = cmd(nil, "vault", "rewrap"); code != 0 || !strings.Contains(out, "users.totp_secret: scanned 0") {
				t.Fatalf("rewrap: exit %d\n%s\n%s", code, out, errs)
			}
			// Root rotation to a new key file; the old file is refused from
			// then on, the new one opens everything.
			newKey := filepath.Join(t.TempDir(), "new.key")
			if code, out, errs = cmd(nil, "vault", "rotate-root", "--new-key-file", newKey); code != 0 || !strings.Contains(out, "re-wrapped 2 key-encryption keys") {
				t.Fatalf("rotate-root: exit %d\n%s\n%s", code, out, errs)
			}
			if code, _, errs = cmd(nil, "vault", "status"); code != 1 || !strings.Contains(errs, "does not match") {
				t.Fatalf("old root after rotation: exit %d %s", code, errs)
			}
			code, out, errs = cmd([]string{"RAMPART_ROOT_KEY_FILE=" + newKey}, "vault", "status", "--json")
			if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Scopes[0].CurrentVersion != 2 {
				t.Fatalf("new root: exit %d %s %s", code, out, errs)
			}
			if code, _, _ = cmd([]string{"RAMPART_ROOT_KEY_FILE=" + newKey}, "vault", "rotate-root"); code != 2 {
				t.Fatalf("rotate-root without a target: exit %d", code)
			}
			if code, _, _ = cmd(nil, "vault", "nope"); code != 2 {
				t.Fatalf("unknown subcommand: exit %d", code)
			}
		})
	}
}

// TestVaultCLIPKCS11 starts Rampart with its root key in SoftHSM2: the key
// never leaves the token; a wrong PIN or another key is refused.
func TestVaultCLIPKCS11(t *testing.T) {
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
			t.Fatal("softhsm2 is not installed (apt-get install -y softhsm2)")
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
	if out, err := exec.Command(util, "--init-token", "--free", "--label", "rampart-cli", "--so-pin", "5678", "--pin", "1234").CombinedOutput(); err != nil { // gitleaks:allow
		t.Fatalf("softhsm2-util: %v %s", err, out)
	}
	pc := pkcs11.Config{Module: module, TokenLabel: "rampart-cli", PIN: "1234", KeyLabel: "root-a"} // gitleaks:allow
	if err := pkcs11.GenerateKey(pc); err != nil {
		t.Fatal(err)
	}
	pc.KeyLabel = "root-b"
	if err := pkcs11.GenerateKey(pc); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	env := func(label, pin string) []string {
		return append(append([]string{}, cheap...), "SOFTHSM2_CONF="+conf, "RAMPART_VAULT_ROOT_SOURCE=pkcs11", "RAMPART_VAULT_PKCS11_MODULE="+module,
			"RAMPART_VAULT_PKCS11_TOKEN_LABEL=rampart-cli", "RAMPART_VAULT_PKCS11_PIN=${env:HSM_PIN}", "HSM_PIN="+pin, "RAMPART_VAULT_PKCS11_KEY_LABEL="+label)
	}
	code, out, errs := run(t, env("root-a", "1234"), "vault", "status", "--data-dir", data)
	if code != 0 || !strings.Contains(out, "root key: pkcs11 (id pkcs11:") {
		t.Fatalf("pkcs11 status: exit %d\n%s\n%s", code, out, errs)
	}
	// No root key file was created: the root lives only in the HSM.
	if _, err := os.Stat(filepath.Join(data, "root.key")); !os.IsNotExist(err) {
		t.Fatalf("a root key file exists in PKCS#11 mode: %v", err)
	}
	if code, _, errs = run(t, env("root-a", "0000"), "vault", "status", "--data-dir", data); code != 1 || !strings.Contains(errs, "PKCS#11") {
		t.Fatalf("wrong PIN: exit %d %s", code, errs)
	}
	if code, _, errs = run(t, env("root-b", "1234"), "vault", "status", "--data-dir", data); code != 1 || !strings.Contains(errs, "does not match") {
		t.Fatalf("other HSM key: exit %d %s", code, errs)
	}
	// Rotate the root to the other HSM key; then only root-b opens.
	if code, out, errs = run(t, env("root-a", "1234"), "vault", "rotate-root", "--new-pkcs11-label", "root-b", "--data-dir", data); code != 0 {
		t.Fatalf("rotate-root to root-b: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs = run(t, env("root-b", "1234"), "vault", "status", "--data-dir", data); code != 0 {
		t.Fatalf("after rotation: exit %d\n%s\n%s", code, out, errs)
	}
}
