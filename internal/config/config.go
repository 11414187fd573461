// Package config is Rampart's one declarative, validated configuration
// (control OPS-6).
//
// A Config is built in layers, each overriding the one before:
//
//  1. Default() — safe built-in values, so an empty config file is valid;
//  2. a YAML file (unknown keys are errors, so a typo never silently falls
//     back to a default);
//  3. RAMPART_* environment variables, one per field, named after the YAML
//     path: RAMPART_SESSION_IDLE_TIMEOUT overrides session.idle_timeout, and
//     lists are comma-separated (RAMPART_SECURITY_TXT_CONTACT);
//  4. command-line flags, for the handful of settings an operator changes
//     per invocation (BindFlags).
//
// The environment mapping is derived by reflection from the yaml tags, so a
// new field gets its variable without extra code. A RAMPART_ variable that
// matches no field is an error (typo protection), except for the variables
// that other parts of Rampart read themselves:
//
//	RAMPART_CONFIG         path of the config file (see Flags.ConfigPath)
//	RAMPART_ROOT_KEY       the root key itself (conventional root_key.env)
//	RAMPART_TEST_POSTGRES  PostgreSQL URL used by integration tests
//
// Secrets are never meant to be written into the file (SEC-3). Any string
// field may instead hold a reference that Load resolves after the
// environment overrides:
//
//	${env:NAME}    the value of environment variable NAME
//	${file:/path}  the contents of a file, one trailing newline trimmed
//	${secret:…}    the current value of the operator-level secret NAME, resolved at start (docs/SECRETS.md)
//
// A reference is recognised only when it is the whole value. Errors name the
// field and the reference, never the resolved value.
package config

import (
	"net"
	"path/filepath"
	"time"
)

// Config is the whole of Rampart's configuration. Every field carries a yaml
// tag; the tag path also names the field's environment variable and appears
// in validation messages, so the operator sees one name everywhere.
type Config struct {
	// DataDir holds the SQLite database, the root key file and the
	// self-signed certificate when those are not configured elsewhere.
	DataDir string `yaml:"data_dir"`
	// Dev relaxes production-only rules (http public URL, plaintext SMTP)
	// and silences the production warnings.
	Dev bool `yaml:"dev"`
	// Listen is the HTTPS listener address.
	Listen string `yaml:"listen"`
	// AdminListen serves metrics and health checks; it defaults to loopback
	// because it is unauthenticated.
	AdminListen string `yaml:"admin_listen"`
	// PublicURL is the externally visible base URL used in links and
	// WebAuthn/TOTP origins; empty means "https://localhost:<listen port>".
	PublicURL string `yaml:"public_url"`
	// Database is "" for SQLite at <data_dir>/rampart.db, or a postgres://
	// URL. It is a secret: the URL may carry a password.
	Database    string            `yaml:"database"`
	TLS         TLSConfig         `yaml:"tls"`
	RootKey     RootKeyConfig     `yaml:"root_key"`
	Log         LogConfig         `yaml:"log"`
	Password    PasswordConfig    `yaml:"password"`
	Session     SessionConfig     `yaml:"session"`
	Tokens      TokensConfig      `yaml:"tokens"`
	Throttle    ThrottleConfig    `yaml:"throttle"`
	MFA         MFAConfig         `yaml:"mfa"`
	Mail        MailConfig        `yaml:"mail"`
	SecurityTxt SecurityTxtConfig `yaml:"security_txt"`
	Trust       TrustConfig       `yaml:"trust"`
	Tenancy     TenancyConfig     `yaml:"tenancy"`
	Audit       AuditConfig       `yaml:"audit"`
	Alerts      AlertsConfig      `yaml:"alerts"`
	Tracing     TracingConfig     `yaml:"tracing"`
	// The sections below each live in their own file (oauth.go, vault.go,
	// secrets.go, integrations.go, waf.go, ratelimit.go, gateway.go,
	// ingest.go) with their defaults and validation.
	Signing      SigningConfig      `yaml:"signing"`
	OAuth        OAuthConfig        `yaml:"oauth"`
	Vault        VaultConfig        `yaml:"vault"`
	Secrets      SecretsConfig      `yaml:"secrets"`
	Integrations IntegrationsConfig `yaml:"integrations"`
	WAF          WAFConfig          `yaml:"waf"`
	Redis        RedisConfig        `yaml:"redis"`
	RateLimit    RateLimitConfig    `yaml:"rate_limit"`
	IPFilter     IPFilterConfig     `yaml:"ip_filter"`
	Gateway      GatewayConfig      `yaml:"gateway"`
	Ingest       IngestConfig       `yaml:"ingest"`
}

// TLSConfig names the listener certificate. Both or neither must be set;
// neither means a self-signed localhost certificate kept in the data dir.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RootKeyConfig says where the root key (which wraps all other keys) comes
// from: a file (default <data_dir>/root.key) or, preferably in production,
// an environment variable named by Env.
type RootKeyConfig struct {
	File string `yaml:"file"`
	Env  string `yaml:"env"`
}

// LogConfig sets the log level (debug|info|warn|error) and format (json|text).
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// PasswordConfig holds the password policy and the Argon2id parameters.
type PasswordConfig struct {
	MinLength     int    `yaml:"min_length"`
	MaxLength     int    `yaml:"max_length"`
	HashMemoryKiB uint32 `yaml:"hash_memory_kib"`
	HashTime      uint32 `yaml:"hash_time"`
	HashThreads   uint8  `yaml:"hash_threads"`
	// HashConcurrency bounds simultaneous hashes; 0 means the number of CPUs.
	HashConcurrency int `yaml:"hash_concurrency"`
	// HashMaxWait is how long a request may queue for a hashing slot before
	// it is refused as unavailable.
	HashMaxWait time.Duration `yaml:"hash_max_wait"`
	// HashMaxQueue bounds waiting requests; 0 means derived automatically.
	HashMaxQueue int `yaml:"hash_max_queue"`
}

// SessionConfig sets session lifetimes and identifier rotation.
type SessionConfig struct {
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	RotateEvery     time.Duration `yaml:"rotate_every"`
	// RotateGrace keeps the previous identifier valid briefly so that
	// concurrent requests racing a rotation are not logged out.
	RotateGrace time.Duration `yaml:"rotate_grace"`
}

// TokensConfig sets the lifetimes of single-use e-mailed tokens.
type TokensConfig struct {
	ResetTTL  time.Duration `yaml:"reset_ttl"`
	VerifyTTL time.Duration `yaml:"verify_ttl"`
}

// ThrottleConfig tunes sign-in throttling and credential-stuffing detection.
type ThrottleConfig struct {
	// AccountFreeFailures is how many failures an account gets before
	// backoff starts.
	AccountFreeFailures int           `yaml:"account_free_failures"`
	AccountLockAfter    int           `yaml:"account_lock_after"`
	AccountLockDuration time.Duration `yaml:"account_lock_duration"`
	IPFreeFailures      int           `yaml:"ip_free_failures"`
	BaseDelay           time.Duration `yaml:"base_delay"`
	MaxDelay            time.Duration `yaml:"max_delay"`
	// StuffingAccounts distinct accounts failing from one source within
	// StuffingWindow block that source for StuffingBlock.
	StuffingAccounts int           `yaml:"stuffing_accounts"`
	StuffingWindow   time.Duration `yaml:"stuffing_window"`
	StuffingBlock    time.Duration `yaml:"stuffing_block"`
}

// MFAConfig holds the TOTP issuer shown in authenticator apps.
type MFAConfig struct {
	Issuer string `yaml:"issuer"`
}

// MailConfig configures outgoing mail. Without an SMTP host, mail is kept in
// the outbox (useful in development, a warning in production).
type MailConfig struct {
	From string     `yaml:"from"`
	SMTP SMTPConfig `yaml:"smtp"`
}

// SMTPConfig is the relay. TLS is starttls, tls (implicit) or none; none is
// refused outside dev mode unless AllowInsecure is set, because mail carries
// reset links and the SMTP credentials themselves.
type SMTPConfig struct {
	Host          string `yaml:"host"`
	Port          int    `yaml:"port"`
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	TLS           string `yaml:"tls"`
	AllowInsecure bool   `yaml:"allow_insecure"`
}

// SecurityTxtConfig is served as /.well-known/security.txt (RFC 9116).
type SecurityTxtConfig struct {
	Contact []string `yaml:"contact"`
	// Expires zero means "now + 180 days", computed at serve time so the
	// file never goes stale on a long-running server.
	Expires            time.Time `yaml:"expires,omitempty"`
	Policy             string    `yaml:"policy"`
	PreferredLanguages []string  `yaml:"preferred_languages"`
	Acknowledgments    string    `yaml:"acknowledgments"`
	Encryption         string    `yaml:"encryption"`
}

// TenancyConfig sets workspace rules: credential lifetimes, the MFA and
// step-up rules for sensitive permissions, access-review cadence, support
// grants, and the app's own permissions.
type TenancyConfig struct {
	InvitationTTL    time.Duration `yaml:"invitation_ttl"`
	APIKeyDefaultTTL time.Duration `yaml:"api_key_default_ttl"`
	// APIKeyMaxTTL is the longest life an API key may have; every key expires.
	APIKeyMaxTTL time.Duration `yaml:"api_key_max_ttl"`
	// StepUpWindow is how recent an MFA check must be for a sensitive permission.
	StepUpWindow time.Duration `yaml:"step_up_window"`
	// AdminMFAOptional lets admin permissions be used from sessions without
	// MFA. Off by default: admin access always requires MFA (AUTH-2, AC-7).
	AdminMFAOptional bool `yaml:"admin_mfa_optional"`
	// StaleAfter flags access unused this long in access reviews.
	StaleAfter time.Duration `yaml:"stale_after"`
	// ReviewEvery is the access-review cadence; Admins are reminded when due.
	ReviewEvery        time.Duration `yaml:"review_every"`
	SupportGrantMaxTTL time.Duration `yaml:"support_grant_max_ttl"`
	// Permissions are the app's own permissions ("resource.action"), usable
	// in custom roles; SensitivePermissions (a subset) need a fresh step-up.
	Permissions          []string `yaml:"permissions,omitempty"`
	SensitivePermissions []string `yaml:"sensitive_permissions,omitempty"`
}

// AuditConfig tunes the tamper-evident audit log, where its signed
// checkpoints are witnessed, and where the trail is streamed.
type AuditConfig struct {
	// Origin names the log in its checkpoints; empty = "<public host>/audit".
	Origin           string        `yaml:"origin"`
	CheckpointEvery  time.Duration `yaml:"checkpoint_every"`
	CheckpointEvents int           `yaml:"checkpoint_events"`
	// HashIPs stores client addresses only as keyed hashes (still searchable
	// by exact value).
	HashIPs bool `yaml:"hash_ips"`
	// FailOpen lists action prefixes whose recording may fail without
	// refusing the action (the per-request "api." events by default);
	// every other action is refused when it cannot be recorded.
	FailOpen []string `yaml:"fail_open"`
	// WitnessFile receives every signed checkpoint; keep it on storage the
	// database's administrators cannot rewrite. Empty = <data_dir>/audit-witness.log.
	WitnessFile          string `yaml:"witness_file"`
	WitnessWebhook       string `yaml:"witness_webhook"`
	WitnessWebhookSecret string `yaml:"witness_webhook_secret"`
	// Streaming sinks (AUD-5): a signed webhook, syslog over TLS, a file.
	WebhookURL          string `yaml:"webhook_url"`
	WebhookSecret       string `yaml:"webhook_secret"`
	SyslogAddress       string `yaml:"syslog_address"`
	SyslogCAFile        string `yaml:"syslog_ca_file"`
	SyslogAllowInsecure bool   `yaml:"syslog_allow_insecure"`
	FilePath            string `yaml:"file_path"`
}

// AlertsConfig routes real-time security alerts (MON-3).
type AlertsConfig struct {
	WebhookURL      string        `yaml:"webhook_url"`
	WebhookSecret   string        `yaml:"webhook_secret"`
	SlackWebhookURL string        `yaml:"slack_webhook_url"`
	Email           []string      `yaml:"email,omitempty"`
	FailedSignins   int           `yaml:"failed_signins"` // per account or address within the window
	Window          time.Duration `yaml:"window"`
	PerMinute       int           `yaml:"per_minute"` // alerts sent at most, per minute
}

// TracingConfig sets up OpenTelemetry tracing (MON-2). W3C trace context is
// read and passed on even when no exporter is configured.
type TracingConfig struct {
	OTLPEndpoint string  `yaml:"otlp_endpoint"` // e.g. https://otel-collector:4318; empty = no export
	ServiceName  string  `yaml:"service_name"`
	SampleRatio  float64 `yaml:"sample_ratio"`
	Insecure     bool    `yaml:"insecure"` // allow http:// to a non-loopback collector
}

// TrustConfig tunes the public trust page.
type TrustConfig struct {
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// Default returns the built-in configuration. It is valid on its own (after
// Finalize), so a fresh install needs no config file.
func Default() Config {
	return Config{
		DataDir:     "./rampart-data",
		Listen:      ":8443",
		AdminListen: "127.0.0.1:9090",
		Log:         LogConfig{Level: "info", Format: "json"},
		Password: PasswordConfig{
			MinLength:     8,
			MaxLength:     256,
			HashMemoryKiB: 19456, // OWASP Argon2id baseline: 19 MiB, t=2, p=1
			HashTime:      2,
			HashThreads:   1,
			HashMaxWait:   2 * time.Second,
		},
		Session: SessionConfig{
			IdleTimeout:     30 * time.Minute,
			AbsoluteTimeout: 12 * time.Hour,
			RotateEvery:     15 * time.Minute,
			RotateGrace:     30 * time.Second,
		},
		Tokens: TokensConfig{ResetTTL: 30 * time.Minute, VerifyTTL: 24 * time.Hour},
		Throttle: ThrottleConfig{
			AccountFreeFailures: 3,
			AccountLockAfter:    10,
			AccountLockDuration: 15 * time.Minute,
			IPFreeFailures:      10,
			BaseDelay:           time.Second,
			MaxDelay:            5 * time.Minute,
			StuffingAccounts:    10,
			StuffingWindow:      10 * time.Minute,
			StuffingBlock:       time.Hour,
		},
		MFA: MFAConfig{Issuer: "Rampart"},
		Mail: MailConfig{
			From: "Rampart <no-reply@localhost>",
			SMTP: SMTPConfig{Port: 587, TLS: "starttls"},
		},
		SecurityTxt: SecurityTxtConfig{PreferredLanguages: []string{"en"}},
		Trust:       TrustConfig{CacheTTL: 30 * time.Second},
		Tenancy: TenancyConfig{
			InvitationTTL:      7 * 24 * time.Hour,
			APIKeyDefaultTTL:   90 * 24 * time.Hour,
			APIKeyMaxTTL:       365 * 24 * time.Hour,
			StepUpWindow:       10 * time.Minute,
			StaleAfter:         90 * 24 * time.Hour,
			ReviewEvery:        90 * 24 * time.Hour,
			SupportGrantMaxTTL: 72 * time.Hour,
		},
		Audit:   AuditConfig{CheckpointEvery: 5 * time.Second, CheckpointEvents: 1000, FailOpen: []string{"api."}},
		Alerts:  AlertsConfig{FailedSignins: 20, Window: 5 * time.Minute, PerMinute: 10},
		Tracing: TracingConfig{ServiceName: "rampart", SampleRatio: 1},

		Signing:      defaultSigning(),
		OAuth:        defaultOAuth(),
		Vault:        defaultVault(),
		Secrets:      defaultSecrets(),
		Integrations: defaultIntegrations(),
		WAF:          defaultWAF(),
		Redis:        defaultRedis(),
		RateLimit:    defaultRateLimit(),
		IPFilter:     defaultIPFilter(),
		Gateway:      defaultGateway(),
		Ingest:       defaultIngest(),
	}
}

// Finalize fills the defaults that derive from other fields. It runs after
// all layers (including flags) so that, for example, --data-dir moves the
// root key file too. Finalize is idempotent.
func (c *Config) Finalize() {
	if c.RootKey.File == "" && c.RootKey.Env == "" && c.DataDir != "" {
		c.RootKey.File = filepath.Join(c.DataDir, "root.key")
	}
	if c.Audit.WitnessFile == "" && c.DataDir != "" {
		c.Audit.WitnessFile = filepath.Join(c.DataDir, "audit-witness.log")
	}
	if c.PublicURL == "" {
		if _, port, err := net.SplitHostPort(c.Listen); err == nil && port != "" && port != "0" {
			if port == "443" {
				c.PublicURL = "https://localhost"
			} else {
				c.PublicURL = "https://localhost:" + port
			}
		}
	}
}

// SQLitePath is the SQLite database file used when Database is empty, and ""
// when PostgreSQL is configured. It is derived rather than stored so that
// Database keeps its simple "" or postgres:// contract.
func (c Config) SQLitePath() string {
	if c.Database != "" {
		return ""
	}
	return filepath.Join(c.DataDir, "rampart.db")
}
