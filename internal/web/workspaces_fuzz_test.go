package web_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/web"
)

// FuzzAuthzCheck sends arbitrary bodies and Authorization headers to
// POST /v1/authz/check, the endpoint apps call most, through the real
// handler: whatever arrives, the answer is a 2xx with one result per check
// or a 4xx in the error shape — never a 5xx.
func FuzzAuthzCheck(f *testing.F) {
	e := newTenv(f, store.EngineSQLite)
	admin := newPerson(f, e, "fuzz@example.com")
	admin.enrolMFA(f)
	ws := admin.createWorkspace(f, "Fuzz").ID
	_, key := admin.createKey(f, ws, []string{"workspace.read"}, 1)

	f.Add(`{"workspace":"`+ws+`","permission":"workspace.read"}`, "")
	f.Add(`{"checks":[{"workspace":"`+ws+`","permission":"members.manage","user":"`+admin.id+`"}]}`, "")
	f.Add(`{"checks":[{"workspace":"`+ws+`","permission":"workspace.read"},{"workspace":"x","permission":"y"}]}`, "Bearer "+key)
	f.Add(`{"workspace":"`+ws+`","permission":"workspace.read","checks":[]}`, "")
	f.Add(`{"checks":null,"workspace":"","permission":""}`, "Bearer rmp_")
	f.Add(`{"workspace":1}`, "Basic x")
	f.Add(`[]`, "Bearer rmp_a_b")
	f.Add(`{"checks":[{"user":"\u0000","workspace":"\ud800","permission":"a.b"}]}`, "bearer  "+key)
	f.Fuzz(func(t *testing.T, body, authz string) {
		kv := []string{"Content-Type", "application/json", "Cookie", web.SessionCookie + "=" + admin.cookie}
		if authz != "" {
			kv = append(kv, "Authorization", authz)
		}
		r := newRequest(t, "POST", "/v1/authz/check", []byte(body), kv...)
		res := serve(e.h, r)
		switch {
		case res.StatusCode == http.StatusOK:
			var out struct {
				Results []struct {
					Allowed bool   `json:"allowed"`
					Reason  string `json:"reason"`
				} `json:"results"`
			}
			if err := json.Unmarshal(res.body, &out); err != nil || len(out.Results) == 0 || len(out.Results) > 100 {
				t.Fatalf("200 with %d results: %s", len(out.Results), res.body)
			}
			for _, x := range out.Results {
				if x.Reason == "" || x.Allowed != (x.Reason == "allowed") {
					t.Fatalf("result %+v", x)
				}
			}
		case res.StatusCode >= 400 && res.StatusCode < 500:
			decodeError(t, res)
		default:
			t.Fatalf("status %d for body %q authz %q: %s", res.StatusCode, body, authz, res.body)
		}
	})
}
