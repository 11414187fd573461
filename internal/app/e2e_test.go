package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/gateway/tlsconf"
	"github.com/rampartsec/rampart/internal/identity/totp"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

const (
	firstPassword = "correct horse battery staple"
	resetPassword = "a completely different passphrase"
)

// clock is the app's injected time, moved by the test (TOTP steps).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testConfig is a valid configuration for a test: temp data dir, ephemeral
// ports, cheap Argon2 parameters, database "" (SQLite) or a PostgreSQL URL.
func testConfig(t testing.TB, database string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Dev = true
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.PublicURL = "https://localhost"
	cfg.Database = database
	cfg.Password.HashMemoryKiB = 8192
	cfg.Password.HashTime = 1
	cfg.Finalize()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// testLog sends the app's log to the test log while the test runs.
func testLog(t testing.TB) *slog.Logger {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Log(strings.TrimSpace(string(p)))
		}
		return len(p), nil
	}), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// server is a running Rampart.
type server struct {
	app   *app.App
	clock *clock
	base  string // https://127.0.0.1:port
	admin string // http://127.0.0.1:port
	tls   *tls.Config
}

// start runs app.New and Serve on ephemeral ports and stops it at cleanup.
func start(t *testing.T, cfg config.Config) *server {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Now: clk.Now, Log: testLog(t)})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan app.Listening, 1)
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, func(l app.Listening) { ready <- l }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var l app.Listening
	select {
	case l = <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}

	// Trust the certificate the server generated, and nothing else.
	certPEM, err := os.ReadFile(filepath.Join(cfg.DataDir, tlsconf.SelfSignedCertFile))
	if err != nil {
		t.Fatalf("self-signed certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		blk, _ := pem.Decode(certPEM)
		t.Fatalf("certificate file holds no certificate (%v)", blk != nil)
	}
	return &server{app: a, clock: clk, base: "https://" + l.HTTPS, admin: "http://" + l.Admin,
		tls: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}
}

// client returns an HTTPS client with its own cookie jar, or none.
func (s *server) client(t *testing.T, withJar bool) *http.Client {
	t.Helper()
	c := &http.Client{
		Transport: &http.Transport{TLSClientConfig: s.tls.Clone(), ForceAttemptHTTP2: true},
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	if withJar {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Jar = jar
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// call sends a request and decodes a JSON answer into out (if non-nil).
// wantStatus -4 accepts any 4xx.
func call(t *testing.T, c *http.Client, method, url string, body any, wantStatus int, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if wantStatus == -4 { // any client error
		if res.StatusCode < 400 || res.StatusCode >= 500 {
			t.Fatalf("%s %s: status %d, want 4xx: %s", method, url, res.StatusCode, data)
		}
	} else if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, res.StatusCode, wantStatus, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return res
}

// mailToken waits for the newest outbox mail of kind and returns the token
// of its link, checking the link points at the public URL and path.
func mailToken(t *testing.T, s *server, kind, linkPath string, after int) string {
	t.Helper()
	dir := s.app.Outbox
	if dir == "" {
		t.Fatal("no outbox configured")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		files := outboxFiles(t, dir, kind)
		if len(files) > after {
			return linkToken(t, files[len(files)-1], linkPath, s.app.Config.PublicURL)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s mail in %s after %d", kind, dir, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func outboxFiles(t *testing.T, dir, kind string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "-"+kind+".eml") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

var linkRE = regexp.MustCompile(`https?://\S+`)

func linkToken(t *testing.T, path, linkPath, publicURL string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if mt, _, err := mime.ParseMediaType(m.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		t.Fatalf("%s: content type %q", path, m.Header.Get("Content-Type"))
	}
	var body io.Reader = m.Body
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(m.Body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, m.Body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range linkRE.FindAllString(string(text), -1) {
		prefix := strings.TrimRight(publicURL, "/") + linkPath + "?token="
		if tok, ok := strings.CutPrefix(l, prefix); ok && tok != "" {
			return tok
		}
	}
	t.Fatalf("%s: no %s link in:\n%s", path, linkPath, text)
	return ""
}

type meJSON struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	MFAEnabled    bool   `json:"mfa_enabled"`
	Session       struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
		MFA     bool   `json:"mfa"`
	} `json:"session"`
}

type signInJSON struct {
	MFARequired bool `json:"mfa_required"`
	Session     *struct {
		ID  string `json:"id"`
		MFA bool   `json:"mfa"`
	} `json:"session"`
}

type errJSON struct {
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

func TestEndToEnd(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine) // skipped locally without RAMPART_TEST_POSTGRES, fails under CI
			}
			s := start(t, testConfig(t, db))
			if got := s.app.Store.Engine(); got != engine {
				t.Fatalf("engine %q, want %q", got, engine)
			}
			walk(t, s)
			checkAdmin(t, s)
		})
	}
}

// walk is the user's whole journey through the public API.
func walk(t *testing.T, s *server) {
	const email = "walker@example.com"
	c := s.client(t, true)
	bare := s.client(t, false)
	u := func(p string) string { return s.base + p }
	creds := map[string]string{"email": email, "password": firstPassword}
	totpCfg := totp.Config{Issuer: s.app.Config.MFA.Issuer}

	// Sign up and verify the address with the mailed link.
	call(t, c, "POST", u("/v1/signup"), creds, http.StatusAccepted, nil)
	verify := mailToken(t, s, "verify_email", "/verify-email", 0)
	call(t, c, "GET", u("/v1/me"), nil, http.StatusUnauthorized, nil)
	call(t, c, "POST", u("/v1/verify-email"), map[string]string{"token": verify}, http.StatusOK, nil)
	var e errJSON
	call(t, c, "POST", u("/v1/verify-email"), map[string]string{"token": verify}, http.StatusBadRequest, &e) // single use
	if e.Error.Code != "token_invalid" {
		t.Errorf("reused verification token: code %q", e.Error.Code)
	}

	// Sign in.
	var si signInJSON
	call(t, c, "POST", u("/v1/signin"), creds, http.StatusOK, &si)
	if si.MFARequired || si.Session == nil {
		t.Fatalf("first sign-in: %+v", si)
	}
	var me meJSON
	call(t, c, "GET", u("/v1/me"), nil, http.StatusOK, &me)
	if me.Email != email || !me.EmailVerified || me.MFAEnabled {
		t.Fatalf("me after verification: %+v", me)
	}

	// Enrol TOTP.
	var en struct {
		Secret string `json:"secret"`
		URI    string `json:"otpauth_uri"`
		QR     string `json:"qr_png_base64"`
	}
	call(t, c, "POST", u("/v1/mfa/totp"), nil, http.StatusOK, &en)
	if png, err := base64.StdEncoding.DecodeString(en.QR); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("QR is not a base64 PNG (%v)", err)
	}
	if !strings.HasPrefix(en.URI, "otpauth://totp/") || !strings.Contains(en.URI, "secret="+en.Secret) {
		t.Errorf("otpauth URI %q", en.URI)
	}
	call(t, c, "POST", u("/v1/mfa/totp/confirm"), map[string]string{"code": "000000x"}, http.StatusBadRequest, nil)
	enrolCode, err := totp.Code(totpCfg, en.Secret, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	call(t, c, "POST", u("/v1/mfa/totp/confirm"), map[string]string{"code": enrolCode}, http.StatusOK, &rc)
	if len(rc.RecoveryCodes) == 0 {
		t.Error("no recovery codes")
	}
	call(t, c, "GET", u("/v1/me"), nil, http.StatusOK, &me)
	if !me.MFAEnabled {
		t.Fatalf("mfa not enabled after confirm: %+v", me)
	}

	// Sign out; sign in again: the password alone leaves the session pending.
	call(t, c, "POST", u("/v1/signout"), nil, http.StatusNoContent, nil)
	call(t, c, "GET", u("/v1/me"), nil, http.StatusUnauthorized, nil)
	si = signInJSON{}
	res := call(t, c, "POST", u("/v1/signin"), creds, http.StatusOK, &si)
	if !si.MFARequired || si.Session != nil {
		t.Fatalf("sign-in with TOTP on: %+v", si)
	}
	pending := cookieValue(t, res)
	// The pending token is no session yet. (Asked with a separate client,
	// because the 401 also clears the cookie in the caller's jar.)
	meWith(t, bare, s, pending, http.StatusUnauthorized)

	// The enrolment code's time step is spent: replay is refused.
	e = errJSON{}
	res = call(t, c, "POST", u("/v1/signin/mfa"), map[string]string{"code": enrolCode}, -4, &e)
	if e.Error.Code != totp.CodeReused {
		t.Errorf("replayed code: %d %q, want %q", res.StatusCode, e.Error.Code, totp.CodeReused)
	}
	s.clock.Advance(30 * time.Second)
	code, err := totp.Code(totpCfg, en.Secret, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	si = signInJSON{}
	res = call(t, c, "POST", u("/v1/signin/mfa"), map[string]string{"code": code}, http.StatusOK, &si)
	if si.Session == nil || !si.Session.MFA {
		t.Fatalf("after MFA: %+v", si)
	}
	if full := cookieValue(t, res); full == pending {
		t.Error("the session token did not change at the MFA step")
	}
	meWith(t, bare, s, pending, http.StatusUnauthorized) // the pending token is gone
	call(t, c, "GET", u("/v1/me"), nil, http.StatusOK, &me)
	if !me.MFAEnabled || !me.Session.MFA || me.Session.ID != si.Session.ID {
		t.Fatalf("me after MFA sign-in: %+v", me)
	}

	var list struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
			MFA     bool   `json:"mfa"`
		} `json:"sessions"`
	}
	call(t, c, "GET", u("/v1/sessions"), nil, http.StatusOK, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != me.Session.ID || !list.Sessions[0].Current || !list.Sessions[0].MFA {
		t.Fatalf("sessions: %+v (want only %s)", list, me.Session.ID)
	}

	// Password reset through the mailed link ends every session.
	call(t, bare, "POST", u("/v1/password/reset"), map[string]string{"email": email}, http.StatusAccepted, nil)
	s.app.Identity.Wait() // the reset mail is sent in the background
	reset := mailToken(t, s, "password_reset", "/reset/confirm", 0)
	call(t, bare, "POST", u("/v1/password/reset/confirm"), map[string]string{"token": reset, "new_password": resetPassword}, http.StatusOK, nil)
	call(t, bare, "POST", u("/v1/password/reset/confirm"), map[string]string{"token": reset, "new_password": resetPassword + " again"}, http.StatusBadRequest, nil)
	call(t, c, "GET", u("/v1/me"), nil, http.StatusUnauthorized, nil)
	call(t, c, "POST", u("/v1/signin"), creds, http.StatusUnauthorized, nil)
	si = signInJSON{}
	call(t, c, "POST", u("/v1/signin"), map[string]string{"email": email, "password": resetPassword}, http.StatusOK, &si)
	if !si.MFARequired {
		t.Error("reset turned MFA off")
	}
}

func cookieValue(t *testing.T, res *http.Response) string {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == "__Host-rampart_session" {
			if !c.Secure || !c.HttpOnly {
				t.Errorf("session cookie attributes: %+v", c)
			}
			return c.Value
		}
	}
	t.Fatal("no session cookie set")
	return ""
}

func meWith(t *testing.T, c *http.Client, s *server, token string, want int) {
	t.Helper()
	req, err := http.NewRequest("GET", s.base+"/v1/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "__Host-rampart_session", Value: token})
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != want {
		t.Fatalf("/v1/me with token: status %d, want %d", res.StatusCode, want)
	}
}

// checkAdmin covers the admin listener: health, readiness and metrics that
// counted the walk's requests.
func checkAdmin(t *testing.T, s *server) {
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(p string) (int, string) {
		res, err := c.Get(s.admin + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, body := get("/healthz"); st != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %s", st, body)
	}
	if st, body := get("/readyz"); st != 200 || !strings.Contains(body, `"ready"`) {
		t.Errorf("/readyz: %d %s", st, body)
	}
	st, body := get("/metrics")
	if st != 200 {
		t.Fatalf("/metrics: %d", st)
	}
	for _, want := range []string{
		`rampart_http_requests_total{method="POST",route="POST /v1/signin",status="200"}`,
		`rampart_http_requests_total{method="GET",route="GET /v1/me",status="401"}`,
		"rampart_http_request_duration_seconds_bucket",
		"rampart_password_hash_in_flight",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The admin listener is plain HTTP and serves nothing of the public API.
	if st, _ := get("/v1/me"); st != http.StatusNotFound {
		t.Errorf("admin /v1/me: %d", st)
	}
}
