package web_test

import (
	"net/http"
	"testing"

	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/web"
)

// FuzzSignInHandler sends arbitrary bodies, content types and cookies to
// POST /v1/signin through the whole stack (middleware, decoder, identity,
// store). No input may cause a server error, and a 200 only ever comes with
// the right password.
func FuzzSignInHandler(f *testing.F) {
	a := newApp(f, func(c *config.Config) {
		c.Throttle.IPFreeFailures = 1 << 20
		c.Throttle.AccountFreeFailures = 1 << 20
		c.Throttle.AccountLockAfter = 1<<20 + 1
		c.Throttle.StuffingAccounts = 1 << 20
	})
	signUp(f, a, "fuzz@example.com")
	h := a.Handler
	f.Add(`{"email":"fuzz@example.com","password":"`+testPassword+`"}`, "application/json", "")
	f.Add(`{"email":"fuzz@example.com","password":"wrong"}`, "application/json", "x")
	f.Add(`{"email":"FUZZ@example.com ","password":"`+testPassword+`"}`, "", "")
	f.Add(`{"email":"\u0000","password":""}`, "application/json; charset=utf-8", "\x00")
	f.Add(`[`, "text/plain", "")
	f.Fuzz(func(t *testing.T, body, ctype, cookie string) {
		r := newRequest(t, http.MethodPost, "/v1/signin", []byte(body), "Content-Type", ctype)
		if cookie != "" {
			r.Header.Set("Cookie", web.SessionCookie+"="+cookie)
		}
		res := serve(h, r)
		if res.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", res.StatusCode, body, res.body)
		}
		if res.StatusCode >= 400 {
			decodeError(t, res)
			return
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		c := sessionCookie(res)
		if c == nil || c.Value == cookie {
			t.Fatalf("sign-in accepted %q without a fresh session cookie", body)
		}
	})
}
