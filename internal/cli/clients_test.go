package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestClientsCommand(t *testing.T) {
	dir := t.TempDir()
	common := []string{"--dev", "--data-dir", dir}
	args := func(a ...string) []string { return append(a, common...) }

	// A confidential service client: the secret is printed once.
	code, out, errs := run(t, nil, args("clients", "create", "--name", "Worker", "--grant", "client_credentials", "--scope", "jobs", "--json")...)
	if code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	var created struct {
		Client struct {
			ID         string   `json:"id"`
			GrantTypes []string `json:"grant_types"`
		} `json:"client"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Client.ID, "rc_") ||
		!strings.HasPrefix(created.Secret, "rcs_") || created.Client.GrantTypes[0] != "client_credentials" {
		t.Fatalf("create output %q (%v)", out, err)
	}

	// A public app client, in table form.
	code, out, errs = run(t, nil, args("clients", "create", "--name", "SPA", "--public", "--redirect-uri", "https://app.example/cb")...)
	if code != 0 || !strings.Contains(out, "client_id:") || strings.Contains(out, "client_secret:") {
		t.Fatalf("create public: %d %q %s", code, out, errs)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no subcommand", []string{"clients"}, 2, "usage"},
		{"no name", args("clients", "create", "--redirect-uri", "https://a.example/cb"), 1, "name"},
		{"http redirect", args("clients", "create", "--name", "x", "--redirect-uri", "http://evil.example/cb"), 1, "https"},
		{"public service client", args("clients", "create", "--name", "x", "--public", "--grant", "client_credentials"), 1, "public"},
		{"bad grant", args("clients", "create", "--name", "x", "--grant", "password"), 1, "grant"},
		{"delete without id", args("clients", "delete"), 2, "--id"},
		{"delete unknown", args("clients", "delete", "--id", "rc_nope"), 1, "no such client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.err) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errs, tc.err)
			}
		})
	}

	// The provider's settings are validated with the rest of the config.
	for _, env := range []string{"RAMPART_OAUTH_ACCESS_TOKEN_TTL=16m", "RAMPART_OAUTH_REFRESH_GRACE=-1s", "RAMPART_OAUTH_AUTH_CODE_TTL=1h"} {
		if code, _, errs := run(t, []string{env}, args("clients", "list")...); code == 0 || !strings.Contains(errs, "oauth.") {
			t.Fatalf("%s accepted: %d %s", env, code, errs)
		}
	}

	code, out, _ = run(t, nil, args("clients", "list", "--json")...)
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || strings.Contains(out, created.Secret) {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, errs = run(t, nil, args("clients", "delete", "--id", created.Client.ID)...); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %d %q %s", code, out, errs)
	}
	if code, out, _ = run(t, nil, args("clients", "list")...); code != 0 || strings.Contains(out, created.Client.ID) || !strings.Contains(out, "SPA") {
		t.Fatalf("list after delete: %d %q", code, out)
	}
}
