package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

type listedKey struct {
	ID    string `json:"kid"`
	Alg   string `json:"alg"`
	State string `json:"state"`
}

func listKeys(t *testing.T, dir string) []listedKey {
	t.Helper()
	code, out, errs := runCLI(t, "keys", "list", "--json", "--dev", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("keys list: exit %d: %s", code, errs)
	}
	var keys []listedKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("keys list --json: %v: %q", err, out)
	}
	return keys
}

func states(keys []listedKey) string {
	var s []string
	for _, k := range keys {
		s = append(s, k.State)
	}
	return strings.Join(s, ",")
}

func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	keys := listKeys(t, dir)
	if len(keys) != 1 || keys[0].State != "active" || keys[0].Alg != "EdDSA" {
		t.Fatalf("fresh install: %+v", keys)
	}
	first := keys[0].ID

	code, out, errs := runCLI(t, "keys", "rotate", "--dev", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "is published and signs from") {
		t.Fatalf("keys rotate: exit %d: %q %s", code, out, errs)
	}
	if got := states(listKeys(t, dir)); got != "active,pending" {
		t.Fatalf("after rotate: %s", got)
	}
	// A second scheduled rotation while one is pending is refused.
	if code, _, errs := runCLI(t, "keys", "rotate", "--dev", "--data-dir", dir); code != 1 || !strings.Contains(errs, "is published and starts signing") {
		t.Fatalf("second rotate: exit %d: %s", code, errs)
	}

	code, out, errs = runCLI(t, "keys", "rotate", "--immediate", "--revoke", "--dev", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "signs now") || !strings.Contains(out, "key "+first+" revoked") {
		t.Fatalf("rotate --immediate --revoke: exit %d: %q %s", code, out, errs)
	}
	keys = listKeys(t, dir)
	for _, k := range keys {
		if k.ID == first && k.State != "retired" {
			t.Fatalf("the revoked key is %s", k.State)
		}
	}
	if got := states(keys); got != "retired,active,pending" {
		t.Fatalf("after immediate rotation: %s", got)
	}

	if code, _, _ := runCLI(t, "keys", "rotate", "--revoke", "--dev", "--data-dir", dir); code != 2 {
		t.Fatalf("--revoke without --immediate: exit %d, want 2", code)
	}
	if code, _, errs := runCLI(t, "keys", "revoke", "--kid", "nope", "--dev", "--data-dir", dir); code != 1 || !strings.Contains(errs, "no signing key") {
		t.Fatalf("revoke unknown: exit %d: %s", code, errs)
	}
	if code, _, _ := runCLI(t, "keys"); code != 2 {
		t.Fatalf("keys without a subcommand: exit %d", code)
	}
	if code, out, _ := runCLI(t, "keys", "list", "--dev", "--data-dir", dir); code != 0 || !strings.HasPrefix(out, "KID") {
		t.Fatalf("keys list: %d %q", code, out)
	}
}
