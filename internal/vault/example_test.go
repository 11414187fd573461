package vault_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rampartsec/rampart/internal/vault"
)

// The pieces compose: a root key from the key file, a purpose-specific key
// derived from it, and a keyring that seals a field bound to its row.
func Example() {
	dir, _ := os.MkdirTemp("", "vault-example")
	defer os.RemoveAll(dir)

	root, created, err := vault.LoadOrCreateKeyFile(filepath.Join(dir, "root.key"), nil)
	if err != nil {
		panic(err)
	}
	ring := vault.NewKeyring(nil)
	if err := ring.Add(1, root.Derive("totp-secrets/v1", vault.KeySize)); err != nil {
		panic(err)
	}
	if err := ring.SetPrimary(1); err != nil {
		panic(err)
	}

	ad := vault.AD{Workspace: "ws_1", Table: "mfa_factors", Column: "secret", Row: "f_9"}
	ct, _ := ring.Seal([]byte("JBSWY3DPEHPK3PXP"), ad)
	pt, _ := ring.Open(ct, ad)
	_, err = ring.Open(ct, vault.AD{Workspace: "ws_1", Table: "mfa_factors", Column: "secret", Row: "f_10"})

	fmt.Println(created, len(ct)-len(pt) == vault.Overhead, string(pt))
	fmt.Println(err)
	// Output:
	// true true JBSWY3DPEHPK3PXP
	// internal: decryption failed: vault: decryption failed
}
