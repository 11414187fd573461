package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/web"
)

type secretsEnv struct {
	a                    *app.App
	ws, other            string
	rw, reader, foreign  string // API keys
	noPerm               string
	opCookie, userCookie string
}

func newSecretsEnv(t *testing.T) secretsEnv {
	t.Helper()
	a := newApp(t, func(c *config.Config) {
		c.Secrets.Policies = []config.RotationPolicy{{Name: "ws-token", Workspace: "", Secret: "rotated", Interval: time.Hour, Rotator: "random", Length: 40}}
	})
	ctx := context.Background()
	signUp(t, a, "secrets-admin@example.com")
	u, err := a.Identity.UserByEmail(ctx, "secrets-admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	p := tenancy.Principal{UserID: u.ID, MFA: true, MFAAt: time.Now()}
	ws, err := a.Tenancy.CreateWorkspace(ctx, p, "Secrets Co")
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.Tenancy.CreateWorkspace(ctx, p, "Other Co")
	if err != nil {
		t.Fatal(err)
	}
	key := func(ws string, perms ...string) string {
		_, k, err := a.Tenancy.CreateAPIKey(ctx, p, ws, "k", perms, 0)
		if err != nil {
			t.Fatalf("create key %v: %v", perms, err)
		}
		return k
	}
	return secretsEnv{a: a, ws: ws.ID, other: other.ID,
		rw:      key(ws.ID, web.PermSecretsRead, web.PermSecretsWrite),
		reader:  key(ws.ID, web.PermSecretsRead),
		noPerm:  key(ws.ID, tenancy.PermWorkspaceRead),
		foreign: key(other.ID, web.PermSecretsRead, web.PermSecretsWrite),
		// A signed-in person who is not operator staff.
		userCookie: signIn(t, a.Handler, "secrets-admin@example.com"),
	}
}

func (e secretsEnv) call(t *testing.T, key, method, path, body string) response {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return serve(e.a.Handler, newRequest(t, method, "/v1/workspaces/"+e.ws+"/secrets"+path, b, "Authorization", "Bearer "+key, "Content-Type", "application/json"))
}

func wantStatus(t *testing.T, res response, status int, code string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.body)
	}
	if code != "" {
		if e := decodeError(t, res); e.Error.Code != code {
			t.Fatalf("code %q, want %q", e.Error.Code, code)
		}
	}
}

func TestSecretsAPI(t *testing.T) {
	e := newSecretsEnv(t)

	res := e.call(t, e.rw, "PUT", "/db-url", `{"value":"postgres://a","cas":0}`)
	wantStatus(t, res, http.StatusCreated, "")
	wantStatus(t, e.call(t, e.rw, "PUT", "/db-url", `{"value":"postgres://stale","cas":0}`), http.StatusConflict, "cas_mismatch")
	wantStatus(t, e.call(t, e.rw, "PUT", "/db-url", `{"value":"postgres://b","cas":1}`), http.StatusOK, "")
	wantStatus(t, e.call(t, e.rw, "PUT", "/db-url", `{"value":"postgres://c","stage":"pending"}`), http.StatusOK, "")

	var v struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
		Stage   string `json:"stage"`
		Value   string `json:"value"`
	}
	for _, c := range []struct{ query, value, stage string }{
		{"", "postgres://b", "current"}, {"?stage=previous", "postgres://a", "previous"},
		{"?stage=pending", "postgres://c", "pending"}, {"?version=1", "postgres://a", "previous"},
	} {
		res := e.call(t, e.reader, "GET", "/db-url/value"+c.query, "")
		wantStatus(t, res, http.StatusOK, "")
		if err := json.Unmarshal(res.body, &v); err != nil || v.Value != c.value || v.Stage != c.stage {
			t.Fatalf("value%s = %s", c.query, res.body)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Fatal("a secret value may be cached")
		}
	}
	wantStatus(t, e.call(t, e.rw, "POST", "/db-url/promote", `{"version":3}`), http.StatusNoContent, "")
	res = e.call(t, e.reader, "GET", "/db-url", "")
	wantStatus(t, res, http.StatusOK, "")
	var d struct {
		Current  int `json:"current_version"`
		Versions []struct {
			Version int    `json:"version"`
			Stage   string `json:"stage"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(res.body, &d); err != nil || d.Current != 3 || len(d.Versions) != 3 || d.Versions[0].Stage != "current" || d.Versions[1].Stage != "previous" {
		t.Fatalf("describe = %s", res.body)
	}
	if strings.Contains(string(res.body), "postgres://") {
		t.Fatal("describe leaks values")
	}
	res = e.call(t, e.reader, "GET", "", "")
	wantStatus(t, res, http.StatusOK, "")
	if !strings.Contains(string(res.body), `"name":"db-url"`) || strings.Contains(string(res.body), "postgres://") {
		t.Fatalf("list = %s", res.body)
	}

	// Permissions: read-only cannot write; no permission cannot read;
	// another workspace's key sees nothing.
	wantStatus(t, e.call(t, e.reader, "PUT", "/db-url", `{"value":"x"}`), http.StatusForbidden, "permission_denied")
	wantStatus(t, e.call(t, e.noPerm, "GET", "/db-url/value", ""), http.StatusForbidden, "permission_denied")
	wantStatus(t, e.call(t, e.foreign, "GET", "/db-url/value", ""), http.StatusNotFound, "workspace_not_found")
	res = serve(e.a.Handler, newRequest(t, "GET", "/v1/workspaces/"+e.other+"/secrets/db-url/value", nil, "Authorization", "Bearer "+e.foreign))
	wantStatus(t, res, http.StatusNotFound, "secret_not_found")

	// Hostile input: never a 500.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/db-url", `{"value":""}`}, {"PUT", "/db-url", `{"value":"x","stage":"previous"}`},
		{"PUT", "/db-url", `{"value":"x","cas":-1}`}, {"PUT", "/db-url", `{"value":1}`}, {"PUT", "/db-url", `{"value":"x","extra":1}`},
		{"PUT", "/db-url", `[]`}, {"PUT", "/.x", `{"value":"x"}`}, {"PUT", "/a%2Fb", `{"value":"x"}`}, {"GET", "/db-url/value?version=0", ""},
		{"GET", "/db-url/value?version=01", ""}, {"GET", "/db-url/value?stage=old", ""}, {"GET", "/db-url/value?x=1", ""},
		{"POST", "/db-url/promote", `{"version":0}`}, {"POST", "/db-url/promote", `{"version":1}`},
		{"GET", "/" + strings.Repeat("a", 200) + "/value", ""}, {"POST", "/db-url/destroy", `{"confirm":"nope"}`},
	} {
		res := e.call(t, e.rw, c.method, c.path, c.body)
		if res.StatusCode < 400 || res.StatusCode >= 500 {
			t.Errorf("%s %s %s: status %d: %s", c.method, c.path, c.body, res.StatusCode, res.body)
		}
	}

	// Lifecycle.
	wantStatus(t, e.call(t, e.rw, "DELETE", "/db-url", ""), http.StatusNoContent, "")
	wantStatus(t, e.call(t, e.reader, "GET", "/db-url/value", ""), http.StatusConflict, "secret_deleted")
	wantStatus(t, e.call(t, e.rw, "POST", "/db-url/restore", ""), http.StatusNoContent, "")
	wantStatus(t, e.call(t, e.rw, "POST", "/db-url/destroy", `{"confirm":"db-url"}`), http.StatusNoContent, "")
	wantStatus(t, e.call(t, e.reader, "GET", "/db-url/value", ""), http.StatusNotFound, "secret_not_found")
	// No policy rotates this workspace secret.
	wantStatus(t, e.call(t, e.rw, "POST", "/db-url/rotate", ""), http.StatusNotFound, "rotation_policy_not_found")

	// Every value read is in the workspace's audit trail, by the key.
	evs, err := e.a.AuditLog.Query(context.Background(), audit.Filter{Workspace: e.ws, Action: "secrets.read", AfterID: -1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || evs[0].ActorType != audit.ActorAPIKey || evs[0].Target != "secret:db-url" || evs[0].Details["version"] != "2" {
		t.Fatalf("read events = %+v", evs)
	}

	// Operator routes: a person who is not operator staff is refused; an
	// API key is never an operator.
	res = serve(e.a.Handler, newRequest(t, "GET", "/v1/operator/secrets", nil, "Cookie", web.SessionCookie+"="+e.userCookie))
	wantStatus(t, res, http.StatusForbidden, "")
	res = serve(e.a.Handler, newRequest(t, "GET", "/v1/operator/secrets", nil, "Authorization", "Bearer "+e.rw))
	wantStatus(t, res, http.StatusForbidden, "session_required")
}

func FuzzSecretPutBody(f *testing.F) {
	for _, s := range []string{`{"value":"x"}`, `{"value":"x","cas":0,"stage":"pending"}`, `{"cas":1e99}`, `{"value":"\u0000"}`, `{`, `null`, `{"stage":"current","value":"` + strings.Repeat("a", 100) + `"}`} {
		f.Add(s)
	}
	e := newSecretsEnvF(f)
	f.Fuzz(func(t *testing.T, body string) {
		res := serve(e.a.Handler, newRequest(t, "PUT", "/v1/workspaces/"+e.ws+"/secrets/fuzzed", []byte(body), "Authorization", "Bearer "+e.rw, "Content-Type", "application/json"))
		if res.StatusCode >= 500 {
			t.Fatalf("body %q: status %d: %s", body, res.StatusCode, res.body)
		}
	})
}

// newSecretsEnvF is newSecretsEnv for a fuzz target (no sign-in cookie).
func newSecretsEnvF(f *testing.F) secretsEnv {
	a := newApp(f)
	ctx := context.Background()
	signUp(f, a, "fuzz@example.com")
	u, err := a.Identity.UserByEmail(ctx, "fuzz@example.com")
	if err != nil {
		f.Fatal(err)
	}
	p := tenancy.Principal{UserID: u.ID, MFA: true, MFAAt: time.Now()}
	ws, err := a.Tenancy.CreateWorkspace(ctx, p, "Fuzz Co")
	if err != nil {
		f.Fatal(err)
	}
	_, k, err := a.Tenancy.CreateAPIKey(ctx, p, ws.ID, "k", []string{web.PermSecretsRead, web.PermSecretsWrite}, 0)
	if err != nil {
		f.Fatal(err)
	}
	return secretsEnv{a: a, ws: ws.ID, rw: k}
}
