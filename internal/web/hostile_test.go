package web_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/web"
)

// route is one entry of routes.go; {id} is filled in per request.
type route struct {
	method, path string
	form         bool // a page taking a form body
}

var allRoutes = []route{
	{"POST", "/v1/signup", false},
	{"POST", "/v1/signin", false},
	{"POST", "/v1/signin/mfa", false},
	{"GET", "/v1/me", false},
	{"POST", "/v1/verify-email", false},
	{"POST", "/v1/verify-email/resend", false},
	{"POST", "/v1/password", false},
	{"POST", "/v1/password/reset", false},
	{"POST", "/v1/password/reset/confirm", false},
	{"GET", "/v1/sessions", false},
	{"DELETE", "/v1/sessions/{id}", false},
	{"POST", "/v1/mfa/totp", false},
	{"POST", "/v1/mfa/totp/confirm", false},
	{"DELETE", "/v1/mfa/totp", false},
	{"GET", "/", false},
	{"GET", "/signup", false},
	{"POST", "/signup", true},
	{"GET", "/signin", false},
	{"POST", "/signin", true},
	{"GET", "/signin/mfa", false},
	{"POST", "/signin/mfa", true},
	{"GET", "/verify-email", false},
	{"POST", "/verify-email", true},
	{"GET", "/reset", false},
	{"POST", "/reset", true},
	{"GET", "/reset/confirm", false},
	{"POST", "/reset/confirm", true},
	{"GET", "/settings/security", false},
	{"POST", "/settings/password", true},
	{"POST", "/settings/sessions/{id}/revoke", true},
	{"POST", "/settings/totp/begin", true},
	{"POST", "/settings/totp/confirm", true},
	{"POST", "/settings/totp/disable", true},
	{"POST", "/settings/verify-email/resend", true},
	{"GET", "/trust", false},
	{"GET", "/trust.json", false},
	{"GET", "/.well-known/security.txt", false},
	{"GET", "/static/style.css", false},
	{"POST", "/v1/signout", false}, // last: it ends the session
	{"POST", "/signout", true},
}

// hostile JSON bodies. Each also goes, url-encoded, into every form field
// and query parameter.
var hostileValues = []string{
	strings.Repeat("A", 60<<10),
	strings.Repeat("é", 20<<10),
	"a\x00b@example.com",
	"\x00",
	"\xff\xfe\xfd",
	"\xed\xa0\x80", // a UTF-16 surrogate encoded as UTF-8
	"user@example.com\r\nBcc: victim@example.com",
	"<script>alert(1)</script>",
	"../../../../etc/passwd",
	"' OR 1=1 --",
	"%00%ff",
	"",
	" ",
	"💥" + strings.Repeat("\u202e", 100),
}

func hostileJSON() []string {
	out := []string{
		`null`, `[]`, `{}`, `""`, `0`, `true`, `{"email":null}`,
		`{"email":1e999,"password":-0}`,
		`{"email":[],"password":{}}`,
		`{"email":{"$ne":null},"password":{"$gt":""}}`,
		`{"code":123456}`, `{"code":["123456"]}`, `{"token":false}`,
		`{"email":"a@example.com","email":"b@example.com"}`,
		`{"current_password":1,"new_password":[1,2]}`,
		strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		`{"email":"` + strings.Repeat(`\u0000`, 5000) + `"}`,
		`{"email":"\ud800","password":"\udfff"}`,
		"{\"email\":\"\xff\xfe\",\"password\":\"\xc0\xaf\"}",
		`{"` + strings.Repeat("k", 60<<10) + `":1}`,
		"\xef\xbb\xbf{}", // byte order mark
		"{\"email\":\"a\"}\x00",
	}
	for _, v := range hostileValues {
		for _, f := range []string{"email", "password", "code", "token", "new_password", "current_password"} {
			out = append(out, `{"`+f+`":"`+jsonEscape(v)+`"}`)
			out = append(out, "{\""+f+"\":\""+v+"\"}") // raw: NUL and invalid UTF-8 unescaped
		}
	}
	return out
}

func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range []byte(s) {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteByte(r)
		}
	}
	return b.String()
}

func hostileForms() []string {
	out := []string{"", "=", "&&&", "email=%zz", "%", strings.Repeat("a=b&", 5000), "email=" + strings.Repeat("%00", 10000)}
	for _, v := range hostileValues {
		q := url.QueryEscape(v)
		out = append(out, "email="+q+"&password="+q+"&code="+q+"&token="+q+"&new_password="+q+"&current_password="+q+"&return_to="+q)
		out = append(out, "email="+v+"&password="+v) // raw, not encoded
	}
	return out
}

// hostileCookies are session cookie values that are not tokens.
var hostileCookies = []string{
	strings.Repeat("x", 8000),
	strings.Repeat("A", 129),
	"%00",
	"..%2f..",
	"\"quoted\"",
	"a b",
}

func needsSession(path string) bool {
	for _, p := range []string{"/v1/me", "/v1/verify-email/resend", "/v1/sessions", "/v1/mfa/", "/settings/", "/v1/signout", "/signout"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return path == "/v1/password" || path == "/v1/mfa/totp"
}

// assertNo500 fails on a server error and on an error status that is not
// the error shape (JSON) or a page (HTML).
func assertNo500(t *testing.T, what string, res response) {
	t.Helper()
	if res.StatusCode >= 500 {
		t.Errorf("%s: status %d: %.300s", what, res.StatusCode, res.body)
		return
	}
	if res.StatusCode >= 400 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		decodeError(t, res)
	}
	// The error message never reflects a large piece of the input.
	if res.StatusCode >= 400 && len(res.body) > 16<<10 && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: %d-byte error body", what, len(res.body))
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("%s: no security headers", what)
	}
}

func TestHostileInputsNever500(t *testing.T) {
	a := newApp(t, func(c *config.Config) {
		// Hostile requests fail sign-ins by the hundred; keep the answers
		// meaningful (not all 429) so the handlers behind are exercised.
		c.Throttle.IPFreeFailures = 1 << 20
		c.Throttle.AccountFreeFailures = 1 << 20
		c.Throttle.AccountLockAfter = 1<<20 + 1
		c.Throttle.StuffingAccounts = 1 << 20
	})
	h := a.Handler
	signUp(t, a, "hostile@example.com")
	jsonBodies, formBodies := hostileJSON(), hostileForms()

	for _, rt := range allRoutes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			// One fresh session per route, so a route that ends it does not
			// take the authenticated half away from the others.
			tok := signIn(t, h, "hostile@example.com")
			path := strings.ReplaceAll(rt.path, "{id}", "abc")
			var bodies []string
			var ctype string
			switch {
			case rt.form:
				bodies, ctype = formBodies, "application/x-www-form-urlencoded"
			case rt.method == "POST" || rt.method == "DELETE":
				bodies, ctype = jsonBodies, "application/json"
			default:
				bodies = []string{""}
			}
			// Routes that authenticate also get every body with a valid
			// session, so the input reaches the code behind the check.
			variants := []bool{false}
			if needsSession(rt.path) {
				variants = append(variants, true)
			}
			for i, b := range bodies {
				for _, authed := range variants {
					r := newRequest(t, rt.method, path, []byte(b), "Content-Type", ctype, "Accept", "text/html")
					if !rt.form {
						r.Header.Del("Accept")
					}
					if authed {
						r.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: tok})
					}
					assertNo500(t, rt.method+" "+path+" body #"+strconv.Itoa(i), serve(h, r))
				}
			}
			for i, c := range hostileCookies {
				r := newRequest(t, rt.method, path, []byte("{}"), "Content-Type", "application/json")
				r.Header.Set("Cookie", web.SessionCookie+"="+c+"; "+web.DeviceCookie+"="+c)
				assertNo500(t, "cookie #"+strconv.Itoa(i), serve(h, r))
			}
			for i, v := range hostileValues {
				q := url.QueryEscape(v)
				r := newRequest(t, rt.method, path+"?token="+q+"&return_to="+q+"&done="+q, nil, "Accept", "text/html")
				assertNo500(t, "query #"+strconv.Itoa(i), serve(h, r))
			}
		})
	}

	paths := []string{
		"/static/../../../../etc/passwd",
		"/static/..%2f..%2f..%2fgo.mod",
		"/static/%2e%2e/%2e%2e/pages.go",
		"/static/..\\..\\pages.go",
		"/static/%00",
		"/static/style.css%00.html",
		"/static/",
		"/static//etc/passwd",
		"/static/" + strings.Repeat("a/", 2000),
		"/v1/sessions/" + strings.Repeat("x", 5000),
		"/v1/sessions/%00",
		"/v1/sessions/..%2f..%2fme",
		"/settings/sessions/" + strings.Repeat("%ff", 500) + "/revoke",
		"/" + strings.Repeat("%e2%80%ae", 300),
		"/trust.json/..",
		"//evil.example/%2e%2e",
	}
	for _, p := range paths {
		for _, m := range []string{"GET", "POST", "DELETE", "OPTIONS", "HEAD", "PROPFIND"} {
			r := newRequest(t, m, p, nil, "Accept", "text/html")
			res := serve(h, r)
			assertNo500(t, m+" "+p, res)
			if bytes.Contains(res.body, []byte("package web")) || bytes.Contains(res.body, []byte("root:")) || bytes.Contains(res.body, []byte("module github.com")) {
				t.Errorf("%s %s: served a file outside /static: %.200s", m, p, res.body)
			}
		}
	}
}
