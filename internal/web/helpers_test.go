package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/web"
)

// testPassword passes the password policy.
const testPassword = "correct horse battery staple"

// newApp wires a real Rampart (SQLite in a temp data dir, outbox mail, cheap
// Argon2 parameters) through the composition root, so the web layer is
// tested with the real store and identity service behind it.
func newApp(t testing.TB, mutate ...func(*config.Config)) *app.App {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Dev = true
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.PublicURL = "https://localhost"
	cfg.Password.HashMemoryKiB = 8192 // the configuration's minimum
	cfg.Password.HashTime = 1
	for _, m := range mutate {
		m(&cfg)
	}
	cfg.Finalize()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close app: %v", err)
		}
	})
	return a
}

// newRequest builds a request to the handler as it arrives over TLS at
// https://localhost. kv are header name/value pairs.
func newRequest(t testing.TB, method, target string, body []byte, kv ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, "https://localhost"+target, rd)
	r.RemoteAddr = "192.0.2.10:40000"
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	return r
}

// jsonRequest is newRequest with a JSON body and content type.
func jsonRequest(t testing.TB, method, target, body string, kv ...string) *http.Request {
	t.Helper()
	return newRequest(t, method, target, []byte(body), append([]string{"Content-Type", "application/json"}, kv...)...)
}

// formRequest is newRequest with a form body.
func formRequest(t testing.TB, target, form string, kv ...string) *http.Request {
	t.Helper()
	return newRequest(t, http.MethodPost, target, []byte(form), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, kv...)...)
}

// response is a fully read response.
type response struct {
	*http.Response
	body []byte
}

func serve(h http.Handler, r *http.Request) response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return response{Response: res, body: b}
}

// apiError is the one JSON error shape.
type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// decodeError asserts the response is the JSON error shape, strictly (no
// other fields), with the request id of the response header, and returns it.
func decodeError(t testing.TB, res response) apiError {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d: content type %q, want JSON; body %.200q", res.StatusCode, ct, res.body)
	}
	var e apiError
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("status %d: body is not the error shape: %v; body %.200q", res.StatusCode, err, res.body)
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error shape lacks code or message: %s", res.body)
	}
	if id := res.Header.Get("X-Request-Id"); e.Error.RequestID == "" || e.Error.RequestID != id {
		t.Fatalf("request_id %q, X-Request-Id %q", e.Error.RequestID, id)
	}
	return e
}

// signUp creates an account directly through the identity service.
func signUp(t testing.TB, a *app.App, email string) {
	t.Helper()
	if err := a.Identity.SignUp(context.Background(), email, testPassword); err != nil {
		t.Fatalf("sign up %s: %v", email, err)
	}
}

// signIn signs in through the API and returns the session cookie value.
func signIn(t testing.TB, h http.Handler, email string) string {
	t.Helper()
	res := serve(h, jsonRequest(t, http.MethodPost, "/v1/signin", `{"email":"`+email+`","password":"`+testPassword+`"}`))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sign in: status %d: %s", res.StatusCode, res.body)
	}
	c := sessionCookie(res)
	if c == nil || c.Value == "" {
		t.Fatalf("sign in set no session cookie")
	}
	return c.Value
}

func sessionCookie(res response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == web.SessionCookie {
			return c
		}
	}
	return nil
}
