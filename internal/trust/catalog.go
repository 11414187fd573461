// Package trust is the controls spine of Rampart: the catalogue of every
// promise in CONTROLS.md, a registry that runs each control's live check and
// reports its state with evidence, and the security.txt document (RFC 9116).
//
// It knows nothing of HTTP, SQL or HTML. Capability packages supply checks;
// the CLI prints reports with WriteText and the web package renders the
// public trust page from the same reports (or the Document type), so the page
// and `rampart controls` can never disagree.
package trust

// Definition is one control of the catalogue: a promise with a stable ID.
type Definition struct {
	ID          string // stable, e.g. "TLS-1"; code, tests and the trust page refer to it
	Family      string // family code, e.g. "TLS"
	FamilyTitle string // e.g. "Encryption in transit"
	Title       string // short title for tables and headings
	Promise     string // the full sentence from CONTROLS.md, shown verbatim
	// Attestable controls are about people and paperwork, not software: no
	// check can verify them, so they are only ever shown as attested by the
	// operator, never as passing.
	Attestable bool
}

// Catalog returns every control of CONTROLS.md, in document order. The slice
// is built afresh on each call so no caller can change another's catalogue.
// Promises are copied verbatim from CONTROLS.md; a test cross-checks them.
func Catalog() []Definition {
	const (
		tls, tlsTitle   = "TLS", "Encryption in transit"
		enc, encTitle   = "ENC", "Encryption at rest and keys"
		sec, secTitle   = "SEC", "Secrets management"
		intg, intTitle  = "INT", "Third-party integrations"
		auth, authTitle = "AUTH", "Authentication"
		ses, sesTitle   = "SES", "Sessions and tokens"
		ac, acTitle     = "AC", "Access control"
		app, appTitle   = "APP", "Application protection"
		aud, audTitle   = "AUD", "Audit trail"
		mon, monTitle   = "MON", "Monitoring"
		bak, bakTitle   = "BAK", "Backup and recovery"
		priv, privTitle = "PRIV", "Privacy and data lifecycle"
		ops, opsTitle   = "OPS", "Security operations and trust"
		org, orgTitle   = "ORG", "Organizational measures (attested)"
	)
	return []Definition{
		// TLS — Encryption in transit
		{ID: "TLS-1", Family: tls, FamilyTitle: tlsTitle, Title: "TLS 1.2+ on every listener",
			Promise: "Every listener serves TLS 1.2 or 1.3 only, forward-secret AEAD suites (Mozilla \"intermediate\"); plain HTTP only redirects. Certificates from files (hot reload) or ACME; a self-signed localhost certificate in dev mode."},
		{ID: "TLS-2", Family: tls, FamilyTitle: tlsTitle, Title: "HSTS on every HTTPS response",
			Promise: "HSTS (max-age >= 1 year, includeSubDomains) on every HTTPS response."},
		{ID: "TLS-3", Family: tls, FamilyTitle: tlsTitle, Title: "Verified TLS on outbound connections",
			Promise: "Outbound connections (database, Redis, SMTP, object storage, webhooks, identity providers) verify TLS when remote; plaintext to a non-loopback host is refused unless explicitly allowed."},
		{ID: "TLS-4", Family: tls, FamilyTitle: tlsTitle, Title: "Clean external TLS scan",
			Promise: "An external scanner (testssl.sh) finds no weak protocol, cipher or known vulnerability."},

		// ENC — Encryption at rest and keys
		{ID: "ENC-1", Family: enc, FamilyTitle: encTitle, Title: "Key hierarchy with wrapped keys",
			Promise: "Key hierarchy: a root key (key file, environment, or external KMS) wraps per-workspace key-encryption keys, which wrap data keys; AES-256-GCM; no key is stored unwrapped."},
		{ID: "ENC-2", Family: enc, FamilyTitle: encTitle, Title: "Field-level encryption bound to its context",
			Promise: "Sensitive fields (MFA secrets, third-party tokens, API secrets, stored secrets, personal data columns, audit payloads) are encrypted field by field, independent of disk encryption; each ciphertext is bound by associated data to its workspace, table, column and row."},
		{ID: "ENC-3", Family: enc, FamilyTitle: encTitle, Title: "Key rotation without downtime",
			Promise: "Key rotation without downtime: new versions encrypt, old versions still decrypt, a background re-wrap moves data forward, rotation runs on a schedule."},
		{ID: "ENC-4", Family: enc, FamilyTitle: encTitle, Title: "Crypto-shredding on workspace deletion",
			Promise: "Crypto-shredding: deleting a workspace destroys its keys, so every copy of its data, backups included, is unreadable at once."},
		{ID: "ENC-5", Family: enc, FamilyTitle: encTitle, Title: "Field-encryption API",
			Promise: "Field-encryption API for the customer's own app: encrypt, decrypt, batch, re-wrap, and a keyed blind index for equality search."},
		{ID: "ENC-6", Family: enc, FamilyTitle: encTitle, Title: "Passwords hashed with argon2id",
			Promise: "Passwords are stored only as argon2id hashes; parameters are upgraded on login."},
		{ID: "ENC-7", Family: enc, FamilyTitle: encTitle, Title: "Logs, audit trail and backups encrypted",
			Promise: "Logs, audit trail and backups are encrypted at rest."},

		// SEC — Secrets management
		{ID: "SEC-1", Family: sec, FamilyTitle: secTitle, Title: "Versioned, audited secrets store",
			Promise: "A secrets store with versions and stages (current, previous, pending); every read is audited."},
		{ID: "SEC-2", Family: sec, FamilyTitle: secTitle, Title: "Automatic secret rotation",
			Promise: "Automatic rotation policies (interval) with rotators: random value, PostgreSQL role password, webhook; a failed rotation rolls back and alerts."},
		{ID: "SEC-3", Family: sec, FamilyTitle: secTitle, Title: "No secrets in source or plain config",
			Promise: "No secret lives in source or plain config: config refers to secrets (env, file, store); production mode refuses built-in development keys; CI scans the repository for committed secrets."},

		// INT — Third-party integrations
		{ID: "INT-1", Family: intg, FamilyTitle: intTitle, Title: "Integration credentials encrypted",
			Promise: "OAuth tokens and API keys of connected services are encrypted with AES-256-GCM before storage."},
		{ID: "INT-2", Family: intg, FamilyTitle: intTitle, Title: "Least-scope integrations",
			Promise: "Least scope: each integration declares the scopes it may hold; a grant or key with broader scope is refused (e.g. a payment-provider key must be read-only)."},
		{ID: "INT-3", Family: intg, FamilyTitle: intTitle, Title: "Credentials deleted and revoked on disconnect",
			Promise: "Disconnecting deletes the stored credentials at once and revokes OAuth tokens at the provider (RFC 7009)."},
		{ID: "INT-4", Family: intg, FamilyTitle: intTitle, Title: "Automatic refresh, audited use",
			Promise: "Token refresh is automatic; each use of a credential is audited."},

		// AUTH — Authentication
		{ID: "AUTH-1", Family: auth, FamilyTitle: authTitle, Title: "Password sign-in per NIST SP 800-63B",
			Promise: "Email and password sign-in; password policy per NIST SP 800-63B (length, breached and common passwords refused, no composition rules)."},
		{ID: "AUTH-2", Family: auth, FamilyTitle: authTitle, Title: "Multi-factor authentication",
			Promise: "Multi-factor: TOTP (RFC 6238), WebAuthn passkeys, single-use recovery codes; a workspace can require MFA; admin and operator access always requires it."},
		{ID: "AUTH-3", Family: auth, FamilyTitle: authTitle, Title: "Single sign-on (OIDC, SAML)",
			Promise: "Single sign-on with external providers: OpenID Connect (e.g. Google) and SAML 2.0; a workspace can enforce SSO; just-in-time provisioning."},
		{ID: "AUTH-4", Family: auth, FamilyTitle: authTitle, Title: "Safe password reset",
			Promise: "Password reset: single-use, hashed, short-lived tokens; all sessions revoked after reset."},
		{ID: "AUTH-5", Family: auth, FamilyTitle: authTitle, Title: "Email verification and new-device notice",
			Promise: "Email verification; notice to the user on sign-in from a new device."},
		{ID: "AUTH-6", Family: auth, FamilyTitle: authTitle, Title: "Account-takeover protection",
			Promise: "Account-takeover protection: throttling per account, IP and network with backoff, credential-stuffing detection, breached-password check at sign-in, alerts."},
		{ID: "AUTH-7", Family: auth, FamilyTitle: authTitle, Title: "No account enumeration",
			Promise: "No account enumeration: sign-in, sign-up and reset answer alike, in alike time, for known and unknown accounts."},

		// SES — Sessions and tokens
		{ID: "SES-1", Family: ses, FamilyTitle: sesTitle, Title: "Hardened server-side sessions",
			Promise: "Server-side sessions, opaque tokens stored hashed, cookies `__Host-`, Secure, HttpOnly, SameSite; idle and absolute timeouts; rotated regularly and on privilege change; users list and revoke them; all revoked on password change or deprovisioning."},
		{ID: "SES-2", Family: ses, FamilyTitle: sesTitle, Title: "Short-lived signed access tokens",
			Promise: "Short-lived signed JWT access tokens (<= 15 min, EdDSA or ES256), validated on every request; keys published as JWKS and rotated with overlap."},
		{ID: "SES-3", Family: ses, FamilyTitle: sesTitle, Title: "Rotating refresh tokens with reuse detection",
			Promise: "Refresh tokens rotate on every use; a reused refresh token revokes its whole family (with a short grace window for concurrent clients)."},
		{ID: "SES-4", Family: ses, FamilyTitle: sesTitle, Title: "OAuth 2.0 / OpenID Connect provider",
			Promise: "OAuth 2.0 / OpenID Connect provider: discovery, authorization code with PKCE, client credentials for services (temporary credentials that expire by themselves), revocation (RFC 7009), introspection (RFC 7662)."},
		{ID: "SES-5", Family: ses, FamilyTitle: sesTitle, Title: "Scoped, expiring, hashed API keys",
			Promise: "API keys: scoped, expiring, stored hashed, last use recorded."},

		// AC — Access control
		{ID: "AC-1", Family: ac, FamilyTitle: acTitle, Title: "Roles and deny by default",
			Promise: "Workspaces with roles Admin (members, billing), Editor (content), ReadOnly (view), plus custom roles built from permissions; deny by default."},
		{ID: "AC-2", Family: ac, FamilyTitle: acTitle, Title: "Separation of duties and step-up MFA",
			Promise: "Separation of duties: read and write are distinct permissions; sensitive actions need a fresh MFA step-up."},
		{ID: "AC-3", Family: ac, FamilyTitle: acTitle, Title: "Row-level workspace isolation",
			Promise: "Workspace isolation in the database: PostgreSQL row-level security on every workspace table, so a query that forgets its filter still sees only its workspace."},
		{ID: "AC-4", Family: ac, FamilyTitle: acTitle, Title: "SCIM provisioning and deprovisioning",
			Promise: "Provisioning and deprovisioning over SCIM 2.0; removing a person revokes their sessions, tokens and keys at once."},
		{ID: "AC-5", Family: ac, FamilyTitle: acTitle, Title: "Access reviews",
			Promise: "Access reviews: who holds which role and when it was last used; stale access flagged; the review and its sign-off recorded."},
		{ID: "AC-6", Family: ac, FamilyTitle: acTitle, Title: "No standing operator access",
			Promise: "Operator staff have no standing access to customer data: support access needs a time-boxed grant from the customer (or a recorded break-glass with reason); every access is logged and shown to that customer."},
		{ID: "AC-7", Family: ac, FamilyTitle: acTitle, Title: "Protected admin and operator interfaces",
			Promise: "Admin console and operator interfaces require MFA and can be limited to listed networks."},

		// APP — Application protection
		{ID: "APP-1", Family: app, FamilyTitle: appTitle, Title: "Web application firewall",
			Promise: "Web application firewall: the OWASP Core Rule Set on every request, paranoia level configurable, blocking mode, per-route exclusions."},
		{ID: "APP-2", Family: app, FamilyTitle: appTitle, Title: "IP filtering",
			Promise: "IP filtering: allow and deny lists (CIDR), global and per route."},
		{ID: "APP-3", Family: app, FamilyTitle: appTitle, Title: "Shared rate limits",
			Promise: "Rate limits per IP, account, API key and workspace, shared across nodes; 429 with Retry-After."},
		{ID: "APP-4", Family: app, FamilyTitle: appTitle, Title: "Denial-of-service hygiene",
			Promise: "Denial-of-service hygiene: header and body size limits, read/write/idle timeouts, connection limits, load shedding."},
		{ID: "APP-5", Family: app, FamilyTitle: appTitle, Title: "Security headers",
			Promise: "Security headers: CSP, HSTS, nosniff, frame-ancestors, Referrer-Policy, Permissions-Policy, COOP/CORP; an A+ on the MDN HTTP Observatory rubric."},
		{ID: "APP-6", Family: app, FamilyTitle: appTitle, Title: "CSRF protection",
			Promise: "CSRF protection on every state-changing request."},
		{ID: "APP-7", Family: app, FamilyTitle: appTitle, Title: "Input validation and parameterized SQL",
			Promise: "Input validated at the edge of every API; output encoded; only parameterized SQL."},
		{ID: "APP-8", Family: app, FamilyTitle: appTitle, Title: "Identity at the edge",
			Promise: "Identity at the edge: the gateway authenticates (session, JWT, API key), enforces route policies (permission, MFA, network), and forwards a short-lived signed identity assertion to the app."},
		{ID: "APP-9", Family: app, FamilyTitle: appTitle, Title: "Safe event ingestion",
			Promise: "Event ingestion endpoint for the customer's client SDK: HTTPS only, schema-checked, personal data scrubbed, rate-limited per workspace."},

		// AUD — Audit trail
		{ID: "AUD-1", Family: aud, FamilyTitle: audTitle, Title: "Complete audit trail",
			Promise: "Every API call, admin action, sign-in and authorization failure is recorded: who, what, when, from where, outcome, request id."},
		{ID: "AUD-2", Family: aud, FamilyTitle: audTitle, Title: "Customer-data access recorded",
			Promise: "Every access to customer data (decrypt, secret read, support access, export) is recorded and visible to that workspace."},
		{ID: "AUD-3", Family: aud, FamilyTitle: audTitle, Title: "Tamper-evident audit log",
			Promise: "Tamper-evident: a Merkle-tree log with signed checkpoints; inclusion and consistency proofs; verification finds any change, deletion or reordering."},
		{ID: "AUD-4", Family: aud, FamilyTitle: audTitle, Title: "Audit payloads encrypted",
			Promise: "Audit payloads are encrypted at rest; sensitive values are stored as keyed hashes."},
		{ID: "AUD-5", Family: aud, FamilyTitle: audTitle, Title: "Audit export and published checkpoints",
			Promise: "Export and streaming to outside systems (webhook, syslog, object storage); checkpoints published for outside witnesses."},

		// MON — Monitoring
		{ID: "MON-1", Family: mon, FamilyTitle: monTitle, Title: "Prometheus metrics",
			Promise: "Prometheus metrics: process CPU and memory, request rate, errors, latency histograms, database pool and query timings."},
		{ID: "MON-2", Family: mon, FamilyTitle: monTitle, Title: "Distributed tracing",
			Promise: "OpenTelemetry tracing across gateway, Rampart and the upstream app (trace context forwarded)."},
		{ID: "MON-3", Family: mon, FamilyTitle: monTitle, Title: "Real-time security alerts",
			Promise: "Real-time security alerts (brute force, credential stuffing, WAF spikes, unusual decrypt volume, new admin, failed rotation) to webhook, email or chat."},
		{ID: "MON-4", Family: mon, FamilyTitle: monTitle, Title: "Logs free of secrets and personal data",
			Promise: "Structured logs that never contain secrets or personal data; panics and errors captured with context."},

		// BAK — Backup and recovery
		{ID: "BAK-1", Family: bak, FamilyTitle: bakTitle, Title: "Scheduled encrypted backups",
			Promise: "Scheduled encrypted backups (default daily, hourly possible) with retention (default 30 days)."},
		{ID: "BAK-2", Family: bak, FamilyTitle: bakTitle, Title: "Point-in-time recovery",
			Promise: "Point-in-time recovery to any moment inside the window (default 35 days)."},
		{ID: "BAK-3", Family: bak, FamilyTitle: bakTitle, Title: "On-demand backups",
			Promise: "On-demand backups."},
		{ID: "BAK-4", Family: bak, FamilyTitle: bakTitle, Title: "Off-site backup copy",
			Promise: "An off-site copy on a second, independent storage target (any S3-compatible store)."},
		{ID: "BAK-5", Family: bak, FamilyTitle: bakTitle, Title: "Automated restore drills",
			Promise: "Automated restore drills: restore into scratch, verify integrity (counts, checksums, audit chain), record time to restore as evidence."},
		{ID: "BAK-6", Family: bak, FamilyTitle: bakTitle, Title: "Deleted data leaves backups",
			Promise: "Deleted data leaves backups: at once by crypto-shredding, physically as snapshots pass retention."},

		// PRIV — Privacy and data lifecycle
		{ID: "PRIV-1", Family: priv, FamilyTitle: privTitle, Title: "Data inventory",
			Promise: "Data inventory: every stored data class declared with purpose, category and retention (the record of processing)."},
		{ID: "PRIV-2", Family: priv, FamilyTitle: privTitle, Title: "Automatic retention",
			Promise: "Automatic retention: behavioural events at most 12 months; account data removed 60 days after a subscription ends (payment and invoice records kept); transient data (e.g. raw synced content) at most 10 minutes."},
		{ID: "PRIV-3", Family: priv, FamilyTitle: privTitle, Title: "Workspace deletion on request",
			Promise: "Workspace deletion on request, immediate, confirmed and audited."},
		{ID: "PRIV-4", Family: priv, FamilyTitle: privTitle, Title: "Data-subject requests",
			Promise: "Data-subject requests: access and export (machine-readable), erasure, rectification; legal deadlines tracked."},
		{ID: "PRIV-5", Family: priv, FamilyTitle: privTitle, Title: "Tracking opt-out",
			Promise: "Per-user opt-out of activity tracking, honoured by ingestion and by every export to third parties."},
		{ID: "PRIV-6", Family: priv, FamilyTitle: privTitle, Title: "Personal-data firewall",
			Promise: "Personal-data firewall for AI and third parties: names, emails, phones, card numbers and other identifiers are replaced by reversible tokens before data leaves; nothing personal is sent."},
		{ID: "PRIV-7", Family: priv, FamilyTitle: privTitle, Title: "Data minimization",
			Promise: "Data minimization: per integration, an allowlist of the fields that may be stored (e.g. only a message id and subject)."},
		{ID: "PRIV-8", Family: priv, FamilyTitle: privTitle, Title: "Data residency",
			Promise: "Data residency: each workspace is pinned to a region and its data is stored only there."},
		{ID: "PAY-1", Family: priv, FamilyTitle: privTitle, Title: "No stored card numbers",
			Promise: "No payment card numbers are stored: detected and refused or redacted in stored fields, events and logs."},

		// OPS — Security operations and trust
		{ID: "OPS-1", Family: ops, FamilyTitle: opsTitle, Title: "Incident management",
			Promise: "Incident management: triage, containment, resolution, post-mortem; a timeline; the 72-hour notification clock; affected workspaces computed from the audit trail; notifications that say what happened, which data, what is being done, what users should do."},
		{ID: "OPS-2", Family: ops, FamilyTitle: opsTitle, Title: "Incident drills",
			Promise: "Incident drills: simulated incidents run and recorded."},
		{ID: "OPS-3", Family: ops, FamilyTitle: opsTitle, Title: "Vulnerability disclosure",
			Promise: "Vulnerability disclosure: `/.well-known/security.txt` (RFC 9116), a report intake, 48-hour acknowledgement tracked, status updates, credit with permission, safe-harbour policy."},
		{ID: "OPS-4", Family: ops, FamilyTitle: opsTitle, Title: "Vendor and subprocessor management",
			Promise: "Vendors and subprocessors: assessments, DPA status, review dates, a public list, notice to customers on change."},
		{ID: "OPS-5", Family: ops, FamilyTitle: opsTitle, Title: "Live trust center",
			Promise: "Trust center: a public page generated from the live control checks, with evidence and last-checked times; attested (organizational) controls shown as attested."},
		{ID: "OPS-6", Family: ops, FamilyTitle: opsTitle, Title: "Validated declarative configuration",
			Promise: "One declarative, validated configuration; secrets only by reference."},
		{ID: "OPS-7", Family: ops, FamilyTitle: opsTitle, Title: "Scanning in CI",
			Promise: "Dependency, code and secret scanning in CI."},

		// ORG — attested, not enforced by software. CONTROLS.md lists these as
		// one paragraph; each gets its own ID so the operator can attest to it
		// separately with its own date and evidence.
		{ID: "ORG-1", Family: org, FamilyTitle: orgTitle, Title: "Hosting provider certifications", Attestable: true,
			Promise: "The hosting provider holds current independent security certifications."},
		{ID: "ORG-2", Family: org, FamilyTitle: orgTitle, Title: "Security team on call", Attestable: true,
			Promise: "A security team is on call to respond to incidents."},
		{ID: "ORG-3", Family: org, FamilyTitle: orgTitle, Title: "Staff security training", Attestable: true,
			Promise: "Staff are trained in security and privacy."},
		{ID: "ORG-4", Family: org, FamilyTitle: orgTitle, Title: "Confidentiality agreements", Attestable: true,
			Promise: "Everyone with access to systems or customer data is bound by a confidentiality agreement."},
		{ID: "ORG-5", Family: org, FamilyTitle: orgTitle, Title: "Physical security", Attestable: true,
			Promise: "Premises and equipment with access to production systems are physically secured."},
		{ID: "ORG-6", Family: org, FamilyTitle: orgTitle, Title: "Yearly outside audits", Attestable: true,
			Promise: "Security is audited by an outside party every year."},
		{ID: "ORG-7", Family: org, FamilyTitle: orgTitle, Title: "Encrypted staff messaging", Attestable: true,
			Promise: "Staff communicate about work over encrypted messaging."},
	}
}
