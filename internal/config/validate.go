package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ValidationError lists every configuration problem at once, each prefixed
// with the yaml path of the field, so an operator fixes the file in one pass
// instead of one restart per mistake.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Password policy bounds. NIST SP 800-63B requires a minimum of at least 8
// and that at least 64 characters be accepted; a minimum above 64 would
// contradict the maximum guarantee.
const (
	minPasswordMin   = 8
	maxPasswordMin   = 64
	minPasswordMax   = 64
	minHashMemoryKiB = 8192
	maxTCPPort       = 65535
)

// problems accumulates messages; add is the only way in so every message
// carries its field path.
type problems []string

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, field+": "+fmt.Sprintf(format, args...))
}

// Validate checks c (as it would be after Finalize) and returns a
// *ValidationError listing all problems, or nil.
func (c Config) Validate() error {
	c.Finalize() // c is a copy; validate the values that will be used
	var p problems

	if c.DataDir == "" {
		p.add("data_dir", "must not be empty")
	}
	checkAddr(&p, "listen", c.Listen)
	checkAddr(&p, "admin_listen", c.AdminListen)
	c.checkPublicURL(&p)
	checkDatabase(&p, c.Database)

	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.add("tls", "set both cert_file and key_file, or neither for a self-signed certificate")
	}
	if c.RootKey.File != "" && c.RootKey.Env != "" {
		p.add("root_key", "set file or env, not both")
	}
	if c.RootKey.Env != "" && (strings.ContainsAny(c.RootKey.Env, "= \t") || strings.HasPrefix(c.RootKey.Env, "${")) {
		p.add("root_key.env", "must be the name of an environment variable")
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		p.add("log.level", "must be debug, info, warn or error")
	}
	if !oneOf(c.Log.Format, "json", "text") {
		p.add("log.format", "must be json or text")
	}

	c.checkPassword(&p)
	c.checkSession(&p)
	positive(&p, "tokens.reset_ttl", c.Tokens.ResetTTL)
	positive(&p, "tokens.verify_ttl", c.Tokens.VerifyTTL)
	c.checkThrottle(&p)

	if c.MFA.Issuer == "" {
		p.add("mfa.issuer", "must not be empty")
	} else if strings.Contains(c.MFA.Issuer, ":") {
		// The otpauth label is "issuer:account"; a colon corrupts it.
		p.add("mfa.issuer", "must not contain ':'")
	}
	c.checkMail(&p)
	c.checkSecurityTxt(&p)
	positive(&p, "trust.cache_ttl", c.Trust.CacheTTL)
	c.checkTenancy(&p)
	c.checkAudit(&p)
	c.Signing.check(&p, c)
	c.OAuth.check(&p, c)
	c.Vault.check(&p, c)
	c.Secrets.check(&p, c)
	c.Integrations.check(&p, c)
	c.WAF.check(&p, c)
	c.Redis.check(&p, c)
	c.RateLimit.check(&p, c)
	c.IPFilter.check(&p, c)
	c.Gateway.check(&p, c)
	c.Ingest.check(&p, c)

	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

func positive(p *problems, field string, d time.Duration) {
	if d <= 0 {
		p.add(field, "must be a positive duration")
	}
}

func checkAddr(p *problems, field, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(field, "must be host:port or :port")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > maxTCPPort {
		p.add(field, "port must be a number from 0 to %d", maxTCPPort)
	}
}

func (c Config) checkPublicURL(p *problems) {
	if c.PublicURL == "" {
		// Only empty after Finalize when listen is unusable, which is
		// reported there; or listen uses port 0.
		if _, port, err := net.SplitHostPort(c.Listen); err == nil && port == "0" {
			p.add("public_url", "must be set when listen uses port 0")
		}
		return
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Host == "" || u.Opaque != "" {
		p.add("public_url", "must be an absolute URL such as https://auth.example.com")
		return
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.Dev:
	case u.Scheme == "http":
		p.add("public_url", "must use https outside dev mode")
	default:
		p.add("public_url", "must use https")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		p.add("public_url", "must not contain credentials, a query or a fragment")
	}
}

func checkDatabase(p *problems, db string) {
	if db == "" {
		return
	}
	u, err := url.Parse(db)
	// The URL may hold a password: never include db in the message.
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		p.add("database", `must be empty (SQLite in data_dir) or a postgres:// URL`)
	}
}

func (c Config) checkPassword(p *problems) {
	pw := c.Password
	if pw.MinLength < minPasswordMin || pw.MinLength > maxPasswordMin {
		p.add("password.min_length", "must be between %d and %d", minPasswordMin, maxPasswordMin)
	}
	if pw.MaxLength < minPasswordMax {
		p.add("password.max_length", "must be at least %d (NIST SP 800-63B)", minPasswordMax)
	}
	if pw.MinLength > pw.MaxLength {
		p.add("password.min_length", "must not exceed password.max_length")
	}
	if pw.HashMemoryKiB < minHashMemoryKiB {
		p.add("password.hash_memory_kib", "must be at least %d", minHashMemoryKiB)
	}
	if pw.HashTime < 1 {
		p.add("password.hash_time", "must be at least 1")
	}
	if pw.HashThreads < 1 {
		p.add("password.hash_threads", "must be at least 1")
	}
	if pw.HashConcurrency < 0 {
		p.add("password.hash_concurrency", "must be 0 (number of CPUs) or more")
	}
	if pw.HashMaxQueue < 0 {
		p.add("password.hash_max_queue", "must be 0 (automatic) or more")
	}
	positive(p, "password.hash_max_wait", pw.HashMaxWait)
}

func (c Config) checkSession(p *problems) {
	s := c.Session
	positive(p, "session.idle_timeout", s.IdleTimeout)
	positive(p, "session.absolute_timeout", s.AbsoluteTimeout)
	positive(p, "session.rotate_every", s.RotateEvery)
	positive(p, "session.rotate_grace", s.RotateGrace)
	if s.IdleTimeout > s.AbsoluteTimeout {
		p.add("session.idle_timeout", "must not exceed session.absolute_timeout")
	}
	if s.RotateGrace >= s.RotateEvery {
		p.add("session.rotate_grace", "must be shorter than session.rotate_every")
	}
}

func (c Config) checkThrottle(p *problems) {
	t := c.Throttle
	if t.AccountFreeFailures < 0 {
		p.add("throttle.account_free_failures", "must not be negative")
	}
	if t.AccountLockAfter <= t.AccountFreeFailures {
		p.add("throttle.account_lock_after", "must be greater than throttle.account_free_failures")
	}
	positive(p, "throttle.account_lock_duration", t.AccountLockDuration)
	if t.IPFreeFailures < 0 {
		p.add("throttle.ip_free_failures", "must not be negative")
	}
	positive(p, "throttle.base_delay", t.BaseDelay)
	positive(p, "throttle.max_delay", t.MaxDelay)
	if t.MaxDelay < t.BaseDelay {
		p.add("throttle.max_delay", "must not be less than throttle.base_delay")
	}
	if t.StuffingAccounts < 2 {
		p.add("throttle.stuffing_accounts", "must be at least 2")
	}
	positive(p, "throttle.stuffing_window", t.StuffingWindow)
	positive(p, "throttle.stuffing_block", t.StuffingBlock)
}

func (c Config) checkMail(p *problems) {
	if _, err := mail.ParseAddress(c.Mail.From); err != nil {
		p.add("mail.from", "must be an address such as Rampart <no-reply@example.com>")
	}
	s := c.Mail.SMTP
	if !oneOf(s.TLS, "starttls", "tls", "none") {
		p.add("mail.smtp.tls", "must be starttls, tls or none")
	}
	if s.Port < 1 || s.Port > maxTCPPort {
		p.add("mail.smtp.port", "must be from 1 to %d", maxTCPPort)
	}
	if s.Host != "" && s.TLS == "none" && !c.Dev && !s.AllowInsecure {
		p.add("mail.smtp.tls", "none sends credentials and reset links in clear; set mail.smtp.allow_insecure to accept that outside dev mode")
	}
	if s.Password != "" && s.Username == "" {
		p.add("mail.smtp.username", "must be set when mail.smtp.password is")
	}
}

func (c Config) checkSecurityTxt(p *problems) {
	st := c.SecurityTxt
	for i, contact := range st.Contact {
		if !hasScheme(contact, "mailto:", "https://", "tel:") {
			p.add(fmt.Sprintf("security_txt.contact[%d]", i), "must start with mailto:, https:// or tel:")
		}
	}
	if st.Policy != "" && !hasScheme(st.Policy, "https://") {
		p.add("security_txt.policy", "must be an https:// URL")
	}
	if st.Acknowledgments != "" && !hasScheme(st.Acknowledgments, "https://") {
		p.add("security_txt.acknowledgments", "must be an https:// URL")
	}
	if st.Encryption != "" && !hasScheme(st.Encryption, "https://", "dns:", "openpgp4fpr:") {
		p.add("security_txt.encryption", "must be an https://, dns: or openpgp4fpr: URI")
	}
	for i, lang := range st.PreferredLanguages {
		if lang == "" || strings.ContainsAny(lang, ", \t") {
			p.add(fmt.Sprintf("security_txt.preferred_languages[%d]", i), "must be a language tag such as en")
		}
	}
}

// hasScheme reports whether s starts with one of the prefixes and has
// something after it; RFC 9116 allows only these URI forms.
func hasScheme(s string, prefixes ...string) bool {
	for _, pre := range prefixes {
		if len(s) > len(pre) && strings.EqualFold(s[:len(pre)], pre) {
			return true
		}
	}
	return false
}

// Warnings lists settings that are valid but unwise in production. In dev
// mode only the reminder that dev mode is on is returned.
func (c Config) Warnings() []string {
	c.Finalize()
	if c.Dev {
		return []string{"dev: development mode is on; never use it in production"}
	}
	var w []string
	if c.RootKey.Env == "" {
		w = append(w, "root_key.file: the root key is read from a file; prefer root_key.env (or a secret manager) in production")
	}
	if c.Mail.SMTP.Host == "" {
		w = append(w, "mail.smtp.host: no SMTP relay configured; mail goes to the outbox and is not delivered")
	}
	if len(c.SecurityTxt.Contact) == 0 {
		w = append(w, "security_txt.contact: no contact configured; security.txt names mailto:security@<public host>, which may not be read by anyone")
	}
	if c.Alerts.WebhookURL == "" && c.Alerts.SlackWebhookURL == "" && len(c.Alerts.Email) == 0 {
		w = append(w, "alerts: no webhook, chat or mail channel configured; security alerts go only to Rampart's log")
	}
	if c.TLS.CertFile == "" {
		w = append(w, "tls: no certificate configured; a self-signed localhost certificate is used")
	}
	if u, err := url.Parse(c.PublicURL); err == nil && u.Hostname() == "localhost" {
		w = append(w, "public_url: points at localhost; links in mail will not work for users")
	}
	return w
}

var permissionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$`)

func (c Config) checkTenancy(p *problems) {
	t := c.Tenancy
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"tenancy.invitation_ttl", t.InvitationTTL}, {"tenancy.api_key_default_ttl", t.APIKeyDefaultTTL},
		{"tenancy.api_key_max_ttl", t.APIKeyMaxTTL}, {"tenancy.step_up_window", t.StepUpWindow},
		{"tenancy.stale_after", t.StaleAfter}, {"tenancy.review_every", t.ReviewEvery},
		{"tenancy.support_grant_max_ttl", t.SupportGrantMaxTTL},
	} {
		positive(p, f.name, f.d)
	}
	if t.APIKeyDefaultTTL > t.APIKeyMaxTTL {
		p.add("tenancy.api_key_default_ttl", "must not exceed api_key_max_ttl")
	}
	known := map[string]bool{}
	for _, n := range t.Permissions {
		if !permissionName.MatchString(n) {
			p.add("tenancy.permissions", "%q is not of the form resource.action (lowercase)", n)
		}
		known[n] = true
	}
	for _, n := range t.SensitivePermissions {
		if !known[n] {
			p.add("tenancy.sensitive_permissions", "%q is not listed in tenancy.permissions", n)
		}
	}
}

func (c Config) checkAudit(p *problems) {
	a := c.Audit
	positive(p, "audit.checkpoint_every", a.CheckpointEvery)
	if a.CheckpointEvents < 1 {
		p.add("audit.checkpoint_events", "must be at least 1")
	}
	for _, f := range []struct{ name, url, secret string }{
		{"audit.witness_webhook", a.WitnessWebhook, a.WitnessWebhookSecret},
		{"audit.webhook_url", a.WebhookURL, a.WebhookSecret},
		{"alerts.webhook_url", c.Alerts.WebhookURL, c.Alerts.WebhookSecret},
	} {
		if f.url == "" {
			continue
		}
		if !hasScheme(f.url, "https://", "http://") {
			p.add(f.name, "must be an http(s) URL")
		}
		if !strings.HasPrefix(f.secret, "whsec_") {
			p.add(f.name, "needs a signing secret of the form whsec_<base64> (the *_secret setting)")
		}
	}
	if c.Alerts.SlackWebhookURL != "" && !hasScheme(c.Alerts.SlackWebhookURL, "https://") {
		p.add("alerts.slack_webhook_url", "must be an https URL")
	}
	for _, e := range c.Alerts.Email {
		if _, err := mail.ParseAddress(e); err != nil {
			p.add("alerts.email", "%q is not an email address", e)
		}
	}
	if c.Alerts.FailedSignins < 1 {
		p.add("alerts.failed_signins", "must be at least 1")
	}
	positive(p, "alerts.window", c.Alerts.Window)
	if c.Alerts.PerMinute < 1 {
		p.add("alerts.per_minute", "must be at least 1")
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		p.add("tracing.sample_ratio", "must be between 0 and 1")
	}
	if e := c.Tracing.OTLPEndpoint; e != "" && !hasScheme(e, "https://", "http://") {
		p.add("tracing.otlp_endpoint", "must be an http(s) URL")
	}
}
