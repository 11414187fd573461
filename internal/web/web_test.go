package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/web"
)

// checkSecurityHeaders asserts the APP-5 headers with their meaning, not
// just their presence.
func checkSecurityHeaders(t *testing.T, res response) {
	t.Helper()
	h := res.Header
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q lacks default-src 'self' or frame-ancestors 'none'", csp)
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows unsafe script or style", csp)
	}
	hsts := h.Get("Strict-Transport-Security")
	m := regexp.MustCompile(`(?i)max-age=(\d+)`).FindStringSubmatch(hsts)
	if m == nil || !strings.Contains(hsts, "includeSubDomains") {
		t.Errorf("HSTS %q", hsts)
	} else if n, _ := strconv.Atoi(m[1]); n < 31536000 {
		t.Errorf("HSTS max-age %d is under a year", n)
	}
	want := map[string]string{
		"X-Content-Type-Options":       "nosniff",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Referrer-Policy", "Permissions-Policy", "X-Request-Id"} {
		if h.Get(k) == "" {
			t.Errorf("%s missing", k)
		}
	}
	if rp := h.Get("Referrer-Policy"); rp != "" && rp != "no-referrer" && rp != "strict-origin-when-cross-origin" && rp != "same-origin" {
		t.Errorf("Referrer-Policy %q leaks URLs", rp)
	}
	for _, n := range web.SecurityHeaderNames() {
		if h.Get(n) == "" {
			t.Errorf("%s (listed by SecurityHeaderNames) missing", n)
		}
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	a := newApp(t)
	h := a.Handler
	html := []string{"Accept", "text/html"}
	tests := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"api 202", jsonRequest(t, "POST", "/v1/signup", `{"email":"h@example.com","password":"`+testPassword+`"}`), 202},
		{"api 400", jsonRequest(t, "POST", "/v1/signin", `{`), 400},
		{"api 401", newRequest(t, "GET", "/v1/me", nil), 401},
		{"api 404", newRequest(t, "GET", "/v1/nope", nil), 404},
		{"api 405", newRequest(t, "PUT", "/v1/signin", nil), 405},
		{"api 413", jsonRequest(t, "POST", "/v1/signin", `{"email":"`+strings.Repeat("a", 70<<10)+`"}`), 413},
		{"page signin", newRequest(t, "GET", "/signin", nil, html...), 200},
		{"page signup", newRequest(t, "GET", "/signup", nil, html...), 200},
		{"page reset", newRequest(t, "GET", "/reset", nil, html...), 200},
		{"page redirect", newRequest(t, "GET", "/", nil, html...), 303},
		{"page settings redirect", newRequest(t, "GET", "/settings/security", nil, html...), 303},
		{"page form error", formRequest(t, "/signin", "email=x&password=y", html...), 401},
		{"page 404", newRequest(t, "GET", "/nope", nil, html...), 404},
		{"plain 404", newRequest(t, "GET", "/nope", nil), 404},
		{"page 405", newRequest(t, "DELETE", "/signin", nil, html...), 405},
		{"static", newRequest(t, "GET", "/static/style.css", nil), 200},
		{"static 404", newRequest(t, "GET", "/static/missing.css", nil), 404},
		{"trust", newRequest(t, "GET", "/trust", nil, html...), 200},
		{"trust.json", newRequest(t, "GET", "/trust.json", nil), 200},
		{"security.txt", newRequest(t, "GET", "/.well-known/security.txt", nil), 200},
		{"csrf refused", jsonRequest(t, "POST", "/v1/signin", `{}`, "Sec-Fetch-Site", "cross-site"), 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(h, tc.req)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.300s", res.StatusCode, tc.status, res.body)
			}
			checkSecurityHeaders(t, res)
		})
	}
}

func TestCrossOriginRequestsRefused(t *testing.T) {
	a := newApp(t)
	h := a.Handler
	n := 0
	paths := []struct {
		path string
		body func(t *testing.T, kv ...string) *http.Request
	}{
		{"/v1/signin", func(t *testing.T, kv ...string) *http.Request {
			// A new address each time, so failures do not add up to a throttle.
			n++
			return jsonRequest(t, "POST", "/v1/signin", `{"email":"x`+strconv.Itoa(n)+`@example.com","password":"whatever it is"}`, kv...)
		}},
		{"/signup", func(t *testing.T, kv ...string) *http.Request {
			return formRequest(t, "/signup", "email=x%40example.com&password=whatever+it+is", kv...)
		}},
		{"/settings/password", func(t *testing.T, kv ...string) *http.Request {
			return formRequest(t, "/settings/password", "current_password=a&new_password=b", kv...)
		}},
	}
	refused := []struct {
		name string
		hdr  []string
	}{
		{"sec-fetch-site cross-site", []string{"Sec-Fetch-Site", "cross-site"}},
		{"sec-fetch-site same-site", []string{"Sec-Fetch-Site", "same-site"}},
		{"foreign origin", []string{"Origin", "https://attacker.example"}},
		{"foreign origin port", []string{"Origin", "https://localhost:8443"}},
		{"cross-site with own origin", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://localhost"}},
	}
	for _, p := range paths {
		for _, tc := range refused {
			t.Run(p.path+"/"+tc.name, func(t *testing.T) {
				res := serve(h, p.body(t, tc.hdr...))
				if res.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403; body %.200s", res.StatusCode, res.body)
				}
				if e := decodeError(t, res); e.Error.Code != "cross_origin_refused" {
					t.Errorf("code %q", e.Error.Code)
				}
				checkSecurityHeaders(t, res)
			})
		}
	}
	t.Run("browser gets 403 page", func(t *testing.T) {
		res := serve(h, formRequest(t, "/signup", "email=a", "Sec-Fetch-Site", "cross-site", "Accept", "text/html"))
		if res.StatusCode != http.StatusForbidden || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
	})

	// Same-origin and header-less (non-browser) requests reach the handler:
	// the statuses below come from the handlers, not the CSRF guard.
	passes := []struct {
		name string
		hdr  []string
	}{
		{"no headers", nil},
		{"sec-fetch-site same-origin", []string{"Sec-Fetch-Site", "same-origin"}},
		{"sec-fetch-site none", []string{"Sec-Fetch-Site", "none"}},
		{"own origin", []string{"Origin", "https://localhost"}},
	}
	want := map[string]int{"/v1/signin": 401, "/signup": 200, "/settings/password": 303}
	for _, p := range paths {
		for _, tc := range passes {
			t.Run("passes "+p.path+"/"+tc.name, func(t *testing.T) {
				res := serve(h, p.body(t, tc.hdr...))
				if res.StatusCode != want[p.path] {
					t.Fatalf("status %d, want %d; body %.200s", res.StatusCode, want[p.path], res.body)
				}
			})
		}
	}
	t.Run("cross-site GET allowed", func(t *testing.T) {
		res := serve(h, newRequest(t, "GET", "/signin", nil, "Sec-Fetch-Site", "cross-site", "Accept", "text/html"))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}

func TestJSONErrors(t *testing.T) {
	a := newApp(t)
	h := a.Handler
	good := `{"email":"j@example.com","password":"` + testPassword + `"}`
	tests := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"unknown field", jsonRequest(t, "POST", "/v1/signin", `{"email":"a@example.com","password":"x","admin":true}`), 400, "body_invalid"},
		{"malformed", jsonRequest(t, "POST", "/v1/signin", `{"email":`), 400, "body_invalid"},
		{"not an object", jsonRequest(t, "POST", "/v1/signin", `["a"]`), 400, "body_invalid"},
		{"wrong type", jsonRequest(t, "POST", "/v1/signin", `{"email":1,"password":"x"}`), 400, "body_invalid"},
		{"trailing object", jsonRequest(t, "POST", "/v1/signin", good+`{}`), 400, "body_invalid"},
		{"trailing garbage", jsonRequest(t, "POST", "/v1/signin", good+` x`), 400, "body_invalid"},
		{"wrong content type", newRequest(t, "POST", "/v1/signin", []byte(good), "Content-Type", "text/plain"), 400, "unsupported_media_type"},
		{"form content type", newRequest(t, "POST", "/v1/signup", []byte("email=a"), "Content-Type", "application/x-www-form-urlencoded"), 400, "unsupported_media_type"},
		{"bad media type", newRequest(t, "POST", "/v1/signin", []byte(good), "Content-Type", ";;;"), 400, "unsupported_media_type"},
		{"too large", jsonRequest(t, "POST", "/v1/signin", `{"email":"`+strings.Repeat("a", 64<<10)+`"}`), 413, "body_too_large"},
		{"far too large", jsonRequest(t, "POST", "/v1/signup", `{"email":"`+strings.Repeat("a", 2<<20)+`"}`), 413, "body_too_large"},
		{"empty", jsonRequest(t, "POST", "/v1/signin", ``), 400, "body_missing"},
		{"whitespace", jsonRequest(t, "POST", "/v1/password/reset", " \n\t"), 400, "body_missing"},
		{"unknown route", newRequest(t, "GET", "/v1/nope", nil), 404, "route_not_found"},
		{"unknown route browser", newRequest(t, "GET", "/v1/nope", nil, "Accept", "text/html"), 404, "route_not_found"},
		{"unknown route POST", jsonRequest(t, "POST", "/v1/signin/nope", good), 404, "route_not_found"},
		{"not signed in", newRequest(t, "GET", "/v1/me", nil), 401, "unauthenticated"},
		{"wrong password", jsonRequest(t, "POST", "/v1/signin", good), 401, "invalid_credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(h, tc.req)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.300s", res.StatusCode, tc.status, res.body)
			}
			if e := decodeError(t, res); e.Error.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", e.Error.Code, tc.code, e.Error.Message)
			}
		})
	}

	methods := []struct {
		method, path string
		allow        []string
	}{
		{"PUT", "/v1/signin", []string{"POST"}},
		{"GET", "/v1/signup", []string{"POST"}},
		{"DELETE", "/v1/me", []string{"GET"}},
		{"POST", "/v1/sessions", []string{"GET"}},
		{"GET", "/v1/mfa/totp", []string{"POST", "DELETE"}},
	}
	for _, tc := range methods {
		t.Run("405 "+tc.method+" "+tc.path, func(t *testing.T) {
			res := serve(h, newRequest(t, tc.method, tc.path, nil))
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status %d, want 405", res.StatusCode)
			}
			allow := res.Header.Get("Allow")
			for _, m := range tc.allow {
				if !strings.Contains(allow, m) {
					t.Errorf("Allow %q lacks %s", allow, m)
				}
			}
			if strings.Contains(allow, tc.method) {
				t.Errorf("Allow %q lists the refused method", allow)
			}
			if e := decodeError(t, res); e.Error.Code != "method_not_allowed" {
				t.Errorf("code %q", e.Error.Code)
			}
		})
	}

	t.Run("error message does not echo input", func(t *testing.T) {
		secret := "s3cr3t-" + strings.Repeat("z", 20)
		res := serve(h, jsonRequest(t, "POST", "/v1/signin", `{"email":"`+secret+`","password":`))
		if bytes.Contains(res.body, []byte(secret)) {
			t.Errorf("error echoes the body: %s", res.body)
		}
	})
}

// normalized strips the request id from a JSON body so two answers can be
// compared byte for byte otherwise.
func normalized(t *testing.T, body []byte) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %s", body)
	}
	if e, ok := v["error"].(map[string]any); ok {
		delete(e, "request_id")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// headerNames lists the response header names apart from per-request ones.
func headerNames(res response) []string {
	var n []string
	for k := range res.Header {
		if k != "Date" && k != "X-Request-Id" {
			n = append(n, k)
		}
	}
	slices.Sort(n)
	return n
}

func TestNoAccountEnumeration(t *testing.T) {
	a := newApp(t)
	h := a.Handler
	signUp(t, a, "known@example.com")

	tests := []struct {
		name           string
		path           string
		known, unknown string
		status         int
	}{
		{"signin wrong password", "/v1/signin",
			`{"email":"known@example.com","password":"not the right password"}`,
			`{"email":"unknown@example.com","password":"not the right password"}`, 401},
		{"signin wrong password (case)", "/v1/signin",
			`{"email":"KNOWN@example.com","password":"still not the password"}`,
			`{"email":"UNKNOWN@example.com","password":"still not the password"}`, 401},
		{"signup existing", "/v1/signup",
			`{"email":"known@example.com","password":"` + testPassword + ` two"}`,
			`{"email":"new@example.com","password":"` + testPassword + ` two"}`, 202},
		{"signup weak password", "/v1/signup",
			`{"email":"known@example.com","password":"password"}`,
			`{"email":"other@example.com","password":"password"}`, 400},
		{"password reset", "/v1/password/reset",
			`{"email":"known@example.com"}`,
			`{"email":"nobody@example.com"}`, 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := serve(h, jsonRequest(t, "POST", tc.path, tc.known))
			u := serve(h, jsonRequest(t, "POST", tc.path, tc.unknown))
			if k.StatusCode != tc.status || u.StatusCode != tc.status {
				t.Fatalf("status known %d, unknown %d, want %d; bodies %s / %s", k.StatusCode, u.StatusCode, tc.status, k.body, u.body)
			}
			if nk, nu := normalized(t, k.body), normalized(t, u.body); nk != nu {
				t.Errorf("bodies differ:\nknown   %s\nunknown %s", nk, nu)
			}
			if hk, hu := headerNames(k), headerNames(u); !slices.Equal(hk, hu) {
				t.Errorf("headers differ:\nknown   %v\nunknown %v", hk, hu)
			}
		})
	}
	a.Identity.Wait()
}

func TestSessionCookie(t *testing.T) {
	a := newApp(t)
	h := a.Handler
	signUp(t, a, "cookie@example.com")
	const planted = "planted-by-an-attacker-0123456789abcdefghijklmnop"
	creds := `{"email":"cookie@example.com","password":"` + testPassword + `"}`

	check := func(t *testing.T, res response) *http.Cookie {
		t.Helper()
		c := sessionCookie(res)
		if c == nil {
			t.Fatalf("no %s cookie; Set-Cookie %q", web.SessionCookie, res.Header.Values("Set-Cookie"))
		}
		if c.Name != "__Host-rampart_session" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie attributes: %+v", c)
		}
		for _, raw := range res.Header.Values("Set-Cookie") {
			if strings.HasPrefix(raw, web.SessionCookie+"=") && strings.Contains(strings.ToLower(raw), "domain=") {
				t.Errorf("cookie carries a Domain: %q", raw)
			}
		}
		if c.MaxAge <= 0 || c.Expires.Before(time.Now()) {
			t.Errorf("cookie does not live: MaxAge %d, Expires %s", c.MaxAge, c.Expires)
		}
		if c.Value == planted || len(c.Value) < 43 {
			t.Errorf("session token %q: planted value kept or too short", c.Value)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("Cache-Control %q on a response setting the session", cc)
		}
		return c
	}

	t.Run("api", func(t *testing.T) {
		req := jsonRequest(t, "POST", "/v1/signin", creds)
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: planted})
		c := check(t, serve(h, req))

		me := newRequest(t, "GET", "/v1/me", nil)
		me.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: planted})
		if res := serve(h, me); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("planted cookie: /v1/me status %d", res.StatusCode)
		}
		me = newRequest(t, "GET", "/v1/me", nil)
		me.AddCookie(c)
		if res := serve(h, me); res.StatusCode != http.StatusOK {
			t.Errorf("issued cookie: /v1/me status %d: %s", res.StatusCode, res.body)
		}

		// A second sign-in gets a different token, even when it presents the first.
		req = jsonRequest(t, "POST", "/v1/signin", creds)
		req.AddCookie(c)
		if c2 := check(t, serve(h, req)); c2.Value == c.Value {
			t.Error("a second sign-in kept the presented token")
		}
	})
	t.Run("page", func(t *testing.T) {
		req := formRequest(t, "/signin", "email=cookie%40example.com&password="+strings.ReplaceAll(testPassword, " ", "+"), "Accept", "text/html")
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: planted})
		res := serve(h, req)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d: %.300s", res.StatusCode, res.body)
		}
		check(t, res)
	})
	t.Run("signout clears", func(t *testing.T) {
		tok := signIn(t, h, "cookie@example.com")
		req := newRequest(t, "POST", "/v1/signout", nil)
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: tok})
		res := serve(h, req)
		c := sessionCookie(res)
		if res.StatusCode != http.StatusNoContent || c == nil || c.MaxAge >= 0 || c.Value != "" {
			t.Fatalf("status %d, cookie %+v", res.StatusCode, c)
		}
		me := newRequest(t, "GET", "/v1/me", nil)
		me.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: tok})
		if res := serve(h, me); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("signed-out token: /v1/me status %d", res.StatusCode)
		}
	})
}

func TestTrust(t *testing.T) {
	a := newApp(t)
	h := a.Handler

	res := serve(h, newRequest(t, "GET", "/trust.json", nil))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var doc struct {
		GeneratedAt time.Time      `json:"generated_at"`
		Summary     map[string]int `json:"summary"`
		Controls    []struct {
			ID       string `json:"id"`
			Family   string `json:"family"`
			Title    string `json:"title"`
			Status   string `json:"status"`
			Evidence string `json:"evidence"`
		} `json:"controls"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil {
		t.Fatalf("trust.json: %v", err)
	}
	if doc.GeneratedAt.IsZero() {
		t.Error("generated_at is zero")
	}
	got := map[string]int{}
	byID := map[string]string{}
	evidence := map[string]string{}
	for _, c := range doc.Controls {
		got[c.ID]++
		byID[c.ID] = c.Status
		evidence[c.ID] = c.Evidence
		if c.Title == "" || c.Family == "" {
			t.Errorf("%s lacks title or family", c.ID)
		}
	}
	catalog := trust.Catalog()
	for _, d := range catalog {
		if got[d.ID] != 1 {
			t.Errorf("control %s appears %d times", d.ID, got[d.ID])
		}
	}
	if len(doc.Controls) != len(catalog) {
		t.Errorf("%d controls, catalogue has %d", len(doc.Controls), len(catalog))
	}
	sum := 0
	for _, n := range doc.Summary {
		sum += n
	}
	if sum != len(doc.Controls) {
		t.Errorf("summary %v adds up to %d, not %d", doc.Summary, sum, len(doc.Controls))
	}
	for _, id := range []string{"AUTH-1", "AUTH-4", "AUTH-5", "AUTH-6", "AUTH-7", "SES-1", "SES-5", "ENC-6", "APP-5", "APP-6",
		"AC-1", "AC-2", "AC-4", "AC-5", "AC-6", "AC-7", "AUD-1", "AUD-2", "AUD-3", "AUD-4", "AUD-5", "MON-1", "MON-3", "MON-4", "OPS-5", "OPS-6"} {
		if byID[id] != "passing" || strings.TrimSpace(evidence[id]) == "" {
			t.Errorf("%s: status %q, evidence %q", id, byID[id], evidence[id])
		}
	}
	for _, id := range []string{"BAK-1", "AUTH-2"} {
		if byID[id] != "planned" {
			t.Errorf("%s: status %q, want planned", id, byID[id])
		}
	}

	t.Run("page", func(t *testing.T) {
		res := serve(h, newRequest(t, "GET", "/trust", nil, "Accept", "text/html"))
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		for _, want := range []string{"AUTH-1", "AUD-3", "SES-1", "</html>"} {
			if !bytes.Contains(res.body, []byte(want)) {
				t.Errorf("trust page lacks %q", want)
			}
		}
		if bytes.Contains(res.body, []byte("<script")) {
			t.Error("trust page carries a script")
		}
	})

	t.Run("security.txt", func(t *testing.T) {
		res := serve(h, newRequest(t, "GET", "/.well-known/security.txt", nil))
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		var contact, expires string
		for _, line := range strings.Split(string(res.body), "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "Contact: "); ok {
				contact = v
			}
			if v, ok := strings.CutPrefix(line, "Expires: "); ok {
				expires = v
			}
		}
		if contact == "" {
			t.Errorf("no Contact line:\n%s", res.body)
		}
		exp, err := time.Parse(time.RFC3339, expires)
		if err != nil || !exp.After(time.Now()) || exp.After(time.Now().AddDate(1, 0, 1)) {
			t.Errorf("Expires %q: %v (must be in the future and within a year)", expires, err)
		}
	})
}
