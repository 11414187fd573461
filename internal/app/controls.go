package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity/totp"
	"github.com/rampartsec/rampart/internal/redact"
	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/web"
)

// registerControls wires the live checks of the controls this build
// implements. Each check measures something now; none returns a constant.
// Controls without a check show as planned.
func (a *App) registerControls() error {
	checks := map[string]trust.Check{
		"AUTH-1": a.checkPasswordPolicy,
		"AUTH-2": a.checkMFA,
		"AUTH-4": a.checkReset,
		"AUTH-5": a.checkVerification,
		"AUTH-6": a.checkTakeover,
		"AUTH-7": a.checkEnumeration,
		"SES-1":  a.checkSessions,
		"ENC-6":  a.checkPasswordHashes,
		"APP-5":  a.checkHeaders,
		"APP-6":  a.checkCSRF,
		"MON-4":  a.checkLogs,
		"OPS-5":  nil, // set below: it reports the number of checks
		"OPS-6":  a.checkConfig,
	}
	for _, more := range []map[string]trust.Check{a.tenancyChecks(), a.auditChecks(),
		a.signingChecks(), a.oauthChecks(), a.vaultChecks(), a.secretsChecks(), a.integrationChecks(), a.gatewayChecks(), a.ingestChecks()} {
		for id, c := range more {
			checks[id] = c
		}
	}
	n := len(checks)
	checks["OPS-5"] = func(ctx context.Context) trust.Result {
		return trust.Result{Status: trust.Passing,
			Evidence: fmt.Sprintf("/trust and /trust.json publish %d live checks (a check reports planned where only part of its control is built); every other control shows as planned or attested", n),
			Data:     map[string]any{"live_checks": n}}
	}
	ids := make([]string, 0, len(checks))
	for id := range checks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := a.Trust.Register(id, checks[id]); err != nil {
			return fmt.Errorf("register control %s: %w", id, err)
		}
	}
	return nil
}

func failing(format string, args ...any) trust.Result {
	return trust.Result{Status: trust.Failing, Evidence: fmt.Sprintf(format, args...)}
}

// countEvents counts audit events of an action since a time (capped).
func (a *App) countEvents(ctx context.Context, action string, outcome audit.Outcome, since time.Time) (int, error) {
	evs, err := a.AuditLog.Query(ctx, audit.Filter{Action: action, Outcome: outcome, Since: since, AfterID: -1, Limit: 1000})
	return len(evs), err
}

func randomPassphrase() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return "probe " + base64.RawURLEncoding.EncodeToString(b) + " passphrase"
}

// AUTH-1: the policy refuses short and common passwords and accepts a long
// passphrase, measured by running it.
func (a *App) checkPasswordPolicy(ctx context.Context) trust.Result {
	minLen := a.Config.Password.MinLength
	short := strings.Repeat("x", minLen-1)
	probes := []struct {
		pw     string
		accept bool
		label  string
	}{
		{"password", false, "common 'password'"},
		{"iloveyou", false, "common 'iloveyou'"},
		{short, false, fmt.Sprintf("%d characters", minLen-1)},
		{randomPassphrase(), true, "a random passphrase with spaces"},
	}
	for _, p := range probes {
		err := a.Policy.Check(p.pw)
		if (err == nil) != p.accept {
			return failing("policy probe failed: %s was %s", p.label, map[bool]string{true: "accepted", false: "refused"}[err == nil])
		}
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("policy probe: common and %d-character passwords refused, a passphrase with spaces accepted; minimum %d, maximum %d characters; no composition rules",
			minLen-1, minLen, a.Config.Password.MaxLength),
		Data: map[string]any{"min_length": minLen, "max_length": a.Config.Password.MaxLength}}
}

// AUTH-2: TOTP works (a self-test of generate, validate and replay refusal);
// passkeys and the workspace MFA policy are not built yet, so the control
// as a whole is planned.
func (a *App) checkMFA(ctx context.Context) trust.Result {
	cfg := totp.Config{Issuer: a.Config.MFA.Issuer}
	key, err := totp.Generate(cfg, "probe@localhost", rand.Reader)
	if err != nil {
		return failing("TOTP self-test: generate failed")
	}
	now := a.now()
	code, err := totp.Code(cfg, key.Secret, now)
	if err != nil {
		return failing("TOTP self-test: code failed")
	}
	step, err := totp.Validate(cfg, key.Secret, code, now, 0)
	if err != nil {
		return failing("TOTP self-test: a fresh code was refused")
	}
	if _, err := totp.Validate(cfg, key.Secret, code, now, step); err == nil {
		return failing("TOTP self-test: a replayed code was accepted")
	}
	enabled, err := a.countEvents(ctx, "mfa.totp_enable", audit.Success, time.Time{})
	if err != nil {
		return failing("could not read the audit trail")
	}
	return trust.Result{Status: trust.Planned,
		Evidence: fmt.Sprintf("TOTP (RFC 6238) and single-use recovery codes are live: self-test passed, replay refused; %d TOTP enrolments recorded. Passkeys and workspace-required MFA are not built yet", enabled),
		Data:     map[string]any{"totp_self_test": "passed", "totp_enrolments": enabled}}
}

// AUTH-4: reset tokens are short-lived; resets recorded in the last 30 days.
func (a *App) checkReset(ctx context.Context) trust.Result {
	ttl := a.Config.Tokens.ResetTTL
	n, err := a.countEvents(ctx, "auth.password_reset", audit.Success, a.now().Add(-30*24*time.Hour))
	if err != nil {
		return failing("could not read the audit trail")
	}
	if ttl <= 0 || ttl > time.Hour {
		return failing("reset token lifetime is %s (must be at most 1h)", ttl)
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("reset tokens: 256-bit, stored as SHA-256, single use, %s lifetime, every session revoked on reset; %d resets in the last 30 days", ttl, n),
		Data:     map[string]any{"reset_ttl_seconds": ttl.Seconds(), "resets_30d": n}}
}

// AUTH-5: verification mail and new-device notices go out through a
// configured transport; counts from the audit trail.
func (a *App) checkVerification(ctx context.Context) trust.Result {
	since := a.now().Add(-30 * 24 * time.Hour)
	verified, err1 := a.countEvents(ctx, "auth.verify_email", audit.Success, since)
	notices, err2 := a.countEvents(ctx, "auth.new_device", audit.Success, since)
	if err1 != nil || err2 != nil {
		return failing("could not read the audit trail")
	}
	transport := "SMTP"
	if a.Outbox != "" {
		transport = "the outbox directory (no SMTP configured)"
	}
	if a.Mailer == nil {
		return failing("no mail transport")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("mail goes through %s; in the last 30 days %d addresses verified and %d new-device notices sent", transport, verified, notices),
		Data:     map[string]any{"verified_30d": verified, "new_device_notices_30d": notices, "outbox": a.Outbox != ""}}
}

// AUTH-6: throttling and stuffing detection are on; how often they fired.
func (a *App) checkTakeover(ctx context.Context) trust.Result {
	t := a.Config.Throttle
	since := a.now().Add(-30 * 24 * time.Hour)
	locks, err1 := a.countEvents(ctx, "auth.account_locked", "", since)
	stuffing, err2 := a.countEvents(ctx, "auth.credential_stuffing", "", since)
	failures, err3 := a.countEvents(ctx, "auth.signin", audit.Failure, since)
	if err1 != nil || err2 != nil || err3 != nil {
		return failing("could not read the audit trail")
	}
	if t.AccountLockAfter <= 0 || t.StuffingAccounts <= 0 || t.BaseDelay <= 0 {
		return failing("throttling is switched off in the configuration")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("backoff after %d failures per account and %d per address, lock after %d for %s, a source failing on %d accounts in %s is blocked for %s; last 30 days: %d failed sign-ins, %d locks, %d stuffing blocks",
			t.AccountFreeFailures, t.IPFreeFailures, t.AccountLockAfter, t.AccountLockDuration, t.StuffingAccounts, t.StuffingWindow, t.StuffingBlock, failures, locks, stuffing),
		Data: map[string]any{"failed_signins_30d": failures, "locks_30d": locks, "stuffing_blocks_30d": stuffing}}
}

// AUTH-7: an unknown account costs the same password-hash work as a known
// one; measured by timing a real verification against the dummy one.
func (a *App) checkEnumeration(ctx context.Context) trust.Result {
	pw := randomPassphrase()
	h, err := a.Hasher.Hash(ctx, pw)
	if err != nil {
		return failing("probe hash failed: pool busy")
	}
	// The fastest of several interleaved runs: load from other work only
	// ever adds time, so the minimum measures the hash itself. A ratio out
	// of range is measured again (up to three rounds, keeping the minima)
	// before it counts, so a burst of load on a shared host does not fail
	// the control while a real difference of work still does.
	k, u := time.Duration(1<<62), time.Duration(1<<62)
	for round := 0; round < 3; round++ {
		for range 5 {
			t0 := time.Now()
			if _, _, err := a.Hasher.Verify(ctx, h, "wrong "+pw); err != nil {
				return failing("probe verify failed: pool busy")
			}
			k = min(k, time.Since(t0))
			t0 = time.Now()
			if err := a.Hasher.VerifyDummy(ctx, "wrong "+pw); err != nil {
				return failing("probe verify failed: pool busy")
			}
			u = min(u, time.Since(t0))
		}
		if r := float64(u) / float64(k); r >= 0.5 && r <= 2 {
			break
		}
	}
	ratio := float64(u) / float64(k)
	res := trust.Result{
		Evidence: fmt.Sprintf("fastest wrong-password check %s for a known account, %s for an unknown one (ratio %.2f); sign-in, sign-up and reset give the same answer for both",
			k.Round(time.Millisecond), u.Round(time.Millisecond), ratio),
		Data: map[string]any{"known_ms": float64(k.Microseconds()) / 1000, "unknown_ms": float64(u.Microseconds()) / 1000, "ratio": ratio},
	}
	res.Status = trust.Passing
	if ratio < 0.5 || ratio > 2 {
		res.Status = trust.Failing
	}
	return res
}

// SES-1: the attributes of the session cookie as the server writes it, and
// the configured timeouts.
func (a *App) checkSessions(ctx context.Context) trust.Result {
	c := web.ProbeSessionCookie(a.now)
	if c == nil {
		return failing("the server set no session cookie")
	}
	var problems []string
	if !strings.HasPrefix(c.Name, "__Host-") {
		problems = append(problems, "no __Host- prefix")
	}
	if !c.Secure {
		problems = append(problems, "not Secure")
	}
	if !c.HttpOnly {
		problems = append(problems, "not HttpOnly")
	}
	if c.SameSite != http.SameSiteLaxMode && c.SameSite != http.SameSiteStrictMode {
		problems = append(problems, "no SameSite")
	}
	if c.Path != "/" || c.Domain != "" {
		problems = append(problems, "path or domain wrong")
	}
	s := a.Config.Session
	attrs := fmt.Sprintf("%s; Path=%s; Secure=%t; HttpOnly=%t; SameSite=%s", c.Name, c.Path, c.Secure, c.HttpOnly, sameSite(c.SameSite))
	if len(problems) > 0 {
		return failing("session cookie %s: %s", attrs, strings.Join(problems, ", "))
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("cookie as set: %s; tokens 256-bit, stored as SHA-256; idle timeout %s, absolute %s, rotated every %s and at sign-in, MFA and password change",
			attrs, s.IdleTimeout, s.AbsoluteTimeout, s.RotateEvery),
		Data: map[string]any{"cookie": attrs, "idle_timeout_s": s.IdleTimeout.Seconds(), "absolute_timeout_s": s.AbsoluteTimeout.Seconds()}}
}

func sameSite(s http.SameSite) string {
	switch s {
	case http.SameSiteLaxMode:
		return "Lax"
	case http.SameSiteStrictMode:
		return "Strict"
	case http.SameSiteNoneMode:
		return "None"
	}
	return "unset"
}

// ENC-6: every stored password hash is argon2id.
func (a *App) checkPasswordHashes(ctx context.Context) trust.Result {
	st, err := a.Store.PasswordHashStats(ctx)
	if err != nil {
		return failing("could not count password hashes")
	}
	p := a.Config.Password
	res := trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("%d of %d stored password hashes are not argon2id; new hashes use m=%d KiB, t=%d, p=%d and older parameters are upgraded at sign-in",
			st.NotArgon2id, st.Total, p.HashMemoryKiB, p.HashTime, p.HashThreads),
		Data: map[string]any{"total": st.Total, "not_argon2id": st.NotArgon2id}}
	if st.NotArgon2id > 0 {
		res.Status = trust.Failing
	}
	return res
}

// probe sends one request through the real handler in-process.
func (a *App) probe(method, path string, hdr map[string]string) *http.Response {
	req := httptest.NewRequest(method, "https://localhost"+path, nil)
	req.RemoteAddr = "127.0.0.1:0"
	req.Header.Set("User-Agent", "rampart-controls-probe")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, req)
	return rec.Result()
}

// APP-5: the security headers of a real response of Rampart's own pages.
func (a *App) checkHeaders(ctx context.Context) trust.Result {
	resp := a.probe(http.MethodGet, "/signin", map[string]string{"Accept": "text/html"})
	defer resp.Body.Close()
	var missing []string
	for _, h := range web.SecurityHeaderNames() {
		if resp.Header.Get(h) == "" {
			missing = append(missing, h)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	hsts := resp.Header.Get("Strict-Transport-Security")
	if len(missing) > 0 {
		return failing("GET /signin lacks %s", strings.Join(missing, ", "))
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "default-src 'self'") {
		return failing("CSP too weak: %s", csp)
	}
	if !strings.Contains(hsts, "includeSubDomains") || !hstsAtLeastYear(hsts) {
		return failing("HSTS too weak: %s", hsts)
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("GET /signin (status %d) carried all %d security headers; CSP %q; HSTS %q. Upstream routes: the gateway is not built yet",
			resp.StatusCode, len(web.SecurityHeaderNames()), csp, hsts),
		Data: map[string]any{"status": resp.StatusCode, "csp": csp, "hsts": hsts}}
}

func hstsAtLeastYear(h string) bool {
	for _, part := range strings.Split(h, ";") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(part), "max-age=%d", &n); err == nil {
			return n >= 31536000
		}
	}
	return false
}

// APP-6: a cross-site POST is refused.
func (a *App) checkCSRF(ctx context.Context) trust.Result {
	resp := a.probe(http.MethodPost, "/v1/signout", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.invalid"})
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		return failing("a cross-site POST to /v1/signout got %d, not 403", resp.StatusCode)
	}
	return trust.Result{Status: trust.Passing,
		Evidence: "a cross-site POST to /v1/signout was refused with 403 (Sec-Fetch-Site/Origin check on every state-changing request). Upstream routes: the gateway is not built yet",
		Data:     map[string]any{"status": resp.StatusCode}}
}

// MON-4: logs are structured and pass through the redaction filter; a
// planted email is redacted in a self-test.
func (a *App) checkLogs(ctx context.Context) trust.Result {
	var buf bytes.Buffer
	h, n := redact.New(slog.NewJSONHandler(&buf, nil))
	slog.New(h).Info("probe", "to", "probe.user@example.com")
	if n.Count() != 1 || strings.Contains(buf.String(), "probe.user@example.com") {
		return failing("redaction self-test failed")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("structured %s logs; emails, bearer tokens and card numbers are redacted (self-test passed); %d values redacted since start; panics captured with request id",
			a.Config.Log.Format, a.redactions.Count()),
		Data: map[string]any{"format": a.Config.Log.Format, "redactions": a.redactions.Count()}}
}

// OPS-6: the configuration was validated at start.
func (a *App) checkConfig(ctx context.Context) trust.Result {
	if err := a.Config.Validate(); err != nil {
		return failing("configuration invalid: %v", err)
	}
	ev := fmt.Sprintf("configuration validated at %s with no problems and %d warning(s)", a.started.UTC().Format(time.RFC3339), len(a.warnings))
	if len(a.warnings) > 0 {
		ev += ": " + strings.Join(a.warnings, "; ")
	}
	return trust.Result{Status: trust.Passing, Evidence: ev, Data: map[string]any{"warnings": len(a.warnings)}}
}
