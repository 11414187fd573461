package config

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampartsec/rampart/internal/outbound"
)

// SecretsConfig configures the secrets store's rotation (SEC-2) and holds
// what loading learnt about secret references (SEC-3).
type SecretsConfig struct {
	// CheckEvery is how often the rotation job looks for due policies.
	CheckEvery time.Duration `yaml:"check_every"`
	// OverdueGrace is how long past its interval a secret may go before
	// the SEC-2 check counts it overdue.
	OverdueGrace time.Duration `yaml:"overdue_grace"`
	// Policies rotate secrets on an interval. They are read from the file
	// only (a list of records has no environment form), by UnmarshalYAML
	// below, as integration providers are.
	Policies []RotationPolicy `yaml:"-"`

	// refs records, by yaml path, the fields whose value came from a
	// reference and its scheme (env, file, secret); set by Load, nil when
	// there is none.
	refs map[string]string `yaml:"-"`
}

type secretsFields SecretsConfig

type secretsDoc struct {
	secretsFields `yaml:",inline"`
	Policies      []RotationPolicy `yaml:"policies,omitempty"`
}

// UnmarshalYAML decodes the section strictly (unknown keys are errors),
// keeping defaults for absent keys.
func (s *SecretsConfig) UnmarshalYAML(n *yaml.Node) error {
	doc := secretsDoc{secretsFields: secretsFields(*s), Policies: s.Policies}
	if err := decodeStrict(n, "secrets", &doc); err != nil {
		return err
	}
	*s = SecretsConfig(doc.secretsFields)
	s.Policies = doc.Policies
	return nil
}

// MarshalYAML writes the section with its policies (their secret settings
// redacted by RotationPolicy.MarshalYAML).
func (s SecretsConfig) MarshalYAML() (any, error) {
	return secretsDoc{secretsFields: secretsFields(s), Policies: s.Policies}, nil
}

var policiesType = reflect.TypeOf([]RotationPolicy(nil))

// RotationPolicy rotates one secret with one rotator. Settings that are
// secrets (postgres_admin_dsn when it holds a password, webhook_secret)
// should be references: ${env:…}, ${file:…} or ${secret:…}.
type RotationPolicy struct {
	Name string `yaml:"name"`
	// Secret is the secret's name (default: Name); Workspace its
	// workspace id, "" for the operator level.
	Secret     string        `yaml:"secret"`
	Workspace  string        `yaml:"workspace"`
	Interval   time.Duration `yaml:"interval"`
	RetryAfter time.Duration `yaml:"retry_after"`
	// Rotator is random, postgres or webhook.
	Rotator  string `yaml:"rotator"`
	Length   int    `yaml:"length"`   // generated value length (default 32)
	Alphabet string `yaml:"alphabet"` // random only (default letters and digits)
	// postgres: a DSN allowed to ALTER ROLE, the role, and optionally a
	// DSN to test the new password with (default: the admin DSN as role).
	PostgresAdminDSN string `yaml:"postgres_admin_dsn"`
	PostgresRole     string `yaml:"postgres_role"`
	PostgresTestDSN  string `yaml:"postgres_test_dsn"`
	// webhook: the receiver and the whsec_ signing secret.
	WebhookURL     string `yaml:"webhook_url"`
	WebhookSecret  string `yaml:"webhook_secret"`
	WebhookRetries int    `yaml:"webhook_retries"`
	// AllowInsecure permits plaintext (http://, sslmode=disable) to a
	// non-loopback host (TLS-3).
	AllowInsecure bool `yaml:"allow_insecure"`
}

// MarshalYAML prints a policy with its secret settings redacted, so a
// printed configuration never leaks them (config show, support tickets).
func (r RotationPolicy) MarshalYAML() (any, error) {
	type plain RotationPolicy // no MarshalYAML: no recursion
	p := plain(r)
	if p.WebhookSecret != "" {
		p.WebhookSecret = redacted
	}
	p.PostgresAdminDSN = redactDatabase(p.PostgresAdminDSN)
	p.PostgresTestDSN = redactDatabase(p.PostgresTestDSN)
	return p, nil
}

// String prints the policy with its secret settings redacted, so a
// config printed with %v (a log line, a panic) does not leak them.
func (r RotationPolicy) String() string {
	p, _ := r.MarshalYAML()
	return fmt.Sprintf("%+v", p)
}

// SecretName is the policy's secret (Secret, else Name).
func (r RotationPolicy) SecretName() string {
	if r.Secret != "" {
		return r.Secret
	}
	return r.Name
}

func defaultSecrets() SecretsConfig {
	return SecretsConfig{CheckEvery: time.Minute, OverdueGrace: time.Hour}
}

// DevSecrets are values published in Rampart's sources, docs and tests, or
// that are placeholders: outside dev mode a secret setting holding one is
// refused (SEC-3). Compared case-insensitively.
var DevSecrets = []string{
	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             // gitleaks:allow (the Standard Webhooks test vector used in Rampart's tests)
	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZoo9v8X0lSNk0XFRoBeKY=", // gitleaks:allow (the spec's example secret)
	"changeme", "change-me", "change_me", "secret", "password", "example", "test", "dev", "development",
}

// IsDevSecret reports whether v is a built-in development value.
func IsDevSecret(v string) bool {
	for _, d := range DevSecrets {
		if strings.EqualFold(v, d) {
			return true
		}
	}
	return strings.Contains(strings.ToLower(v), "changeme")
}

// SecretField is one configuration setting that holds a secret.
type SecretField struct {
	Path  string // yaml path
	Set   bool
	Ref   string // "env", "file", "secret" when it came from a reference, else ""
	Value string // the value in effect (resolved), for the dev-key check; never print it
}

// SecretFields lists the settings that hold secrets (SEC-3): the database
// URL when it carries a password, and every string setting whose name says
// secret, password, token or key material (*_secret, *password*,
// *_token, *_dsn), policies included.
func (c Config) SecretFields() []SecretField {
	var out []SecretField
	for _, f := range stringFields(&c) {
		name := f.path[len(f.path)-1]
		path := f.yamlPath()
		v := f.value.String()
		isSecret := strings.HasSuffix(name, "_secret") || strings.Contains(name, "password") || strings.HasSuffix(name, "_token") ||
			strings.HasSuffix(name, "_dsn") || name == "slack_webhook_url"
		if path == "database" {
			isSecret = dsnHasPassword(v)
		} else if strings.HasSuffix(name, "_dsn") && c.Secrets.refs[path] == "" {
			isSecret = v != "" && dsnHasPassword(v)
		}
		if !isSecret {
			continue
		}
		out = append(out, SecretField{Path: path, Set: v != "", Ref: c.Secrets.refs[path], Value: v})
	}
	return out
}

func dsnHasPassword(dsn string) bool {
	if dsn == "" {
		return false
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return strings.Contains(dsn, "password=")
	}
	if _, has := u.User.Password(); has {
		return true
	}
	q, _ := url.ParseQuery(u.RawQuery)
	return q.Has("password") || q.Has("sslpassword")
}

// earlyFields are read before the secrets store opens (database, keys,
// logging, mail, audit, alerts, the key hierarchy), so they cannot be
// ${secret:…} references: use ${env:…} or ${file:…} there.
var earlyFields = []string{"data_dir", "database", "root_key.", "log.", "tracing.", "mail.", "audit.", "alerts.", "vault.", "password.", "listen", "admin_listen", "dev"}

// SecretRefAllowed reports whether the setting at yaml path may be a
// ${secret:…} reference.
func SecretRefAllowed(path string) bool {
	for _, e := range earlyFields {
		if path == strings.TrimSuffix(e, ".") || strings.HasSuffix(e, ".") && strings.HasPrefix(path, e) {
			return false
		}
	}
	return true
}

// ResolveSecretRefs replaces every ${secret:name} left by Load with the
// current value of the operator-level secret name, read through resolve
// (the app calls it once the secrets store is open). Any failure is
// returned, naming the setting and the secret, never a value.
func (c *Config) ResolveSecretRefs(resolve func(name string) (string, error)) error {
	var problems []string
	for _, f := range stringFields(c) {
		scheme, arg, ok := parseRef(f.value.String())
		if !ok || scheme != "secret" {
			continue
		}
		path := f.yamlPath()
		if !SecretRefAllowed(path) {
			problems = append(problems, fmt.Sprintf("%s: ${secret:%s}: this setting is read before the secrets store opens; use ${env:…} or ${file:…}", path, arg))
			continue
		}
		v, err := resolve(arg)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: ${secret:%s}: %v", path, arg, err))
			continue
		}
		f.value.SetString(v)
		refs := make(map[string]string, len(c.Secrets.refs)+1) // copies of c may share the map
		for k, v := range c.Secrets.refs {
			refs[k] = v
		}
		refs[path] = "secret"
		c.Secrets.refs = refs
	}
	if len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	return nil
}

// HasSecretRefs reports whether any ${secret:…} reference is still
// unresolved.
func (c Config) HasSecretRefs() bool {
	for _, f := range stringFields(&c) {
		if scheme, _, ok := parseRef(f.value.String()); ok && scheme == "secret" {
			return true
		}
	}
	return false
}

// stringFields is leaves() restricted to strings, also descending into
// slices of structs (the rotation policies), whose elements are named
// "<field>[i]" in the path.
func stringFields(c *Config) []leaf {
	var out []leaf
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if sf.Type == policiesType {
				name = "policies" // read from the file by SecretsConfig.UnmarshalYAML
			}
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			p := append(append([]string(nil), path...), name)
			fv := v.Field(i)
			switch {
			case fv.Kind() == reflect.Struct && fv.Type() != timeType:
				walk(fv, p)
			case fv.Kind() == reflect.String:
				out = append(out, leaf{path: p, value: fv})
			case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
				for j := 0; j < fv.Len(); j++ {
					q := append(append([]string(nil), path...), fmt.Sprintf("%s[%d]", name, j))
					walk(fv.Index(j), q)
				}
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), nil)
	return out
}

// check adds the section's problems; c is the whole (finalized) config.
func (s SecretsConfig) check(p *problems, c Config) {
	positive(p, "secrets.check_every", s.CheckEvery)
	positive(p, "secrets.overdue_grace", s.OverdueGrace)
	seen := map[string]bool{}
	for i, r := range s.Policies {
		f := fmt.Sprintf("secrets.policies[%d]", i)
		if !validSecretName(r.Name) {
			p.add(f+".name", "must be 1 to 128 letters, digits, '.', '_' or '-'")
		}
		if r.Secret != "" && !validSecretName(r.Secret) {
			p.add(f+".secret", "must be 1 to 128 letters, digits, '.', '_' or '-'")
		}
		key := r.Workspace + "/" + r.SecretName()
		if seen[key] {
			p.add(f, "another policy already rotates secret %q", r.SecretName())
		}
		seen[key] = true
		if r.Interval < time.Minute {
			p.add(f+".interval", "must be at least 1m")
		}
		if r.RetryAfter < 0 {
			p.add(f+".retry_after", "must not be negative")
		}
		if r.Length < 0 || r.Length > 4096 {
			p.add(f+".length", "must be 0 (default 32) to 4096")
		}
		switch r.Rotator {
		case "random":
		case "postgres":
			if r.PostgresAdminDSN == "" || r.PostgresRole == "" {
				p.add(f, "the postgres rotator needs postgres_admin_dsn and postgres_role")
			}
			if r.Workspace != "" {
				p.add(f+".workspace", "the postgres rotator rotates operator-level secrets only")
			}
		case "webhook":
			if !hasScheme(r.WebhookURL, "https://", "http://") {
				p.add(f+".webhook_url", "must be an http(s) URL")
			} else if u, err := url.Parse(r.WebhookURL); err != nil || u.Scheme == "http" && !c.Dev && !r.AllowInsecure && !outbound.IsLoopback(u.Hostname()) {
				p.add(f+".webhook_url", "must be https (or set allow_insecure) outside dev mode")
			}
			if v := r.WebhookSecret; !strings.HasPrefix(v, "whsec_") && !strings.HasPrefix(v, "${secret:") {
				p.add(f+".webhook_secret", "needs a signing secret of the form whsec_<base64>")
			}
		default:
			p.add(f+".rotator", "must be random, postgres or webhook")
		}
	}
	// ${secret:…} only where the store is open before the setting is read.
	for _, sf := range stringFields(&c) {
		if scheme, arg, ok := parseRef(sf.value.String()); ok && scheme == "secret" {
			if !SecretRefAllowed(sf.yamlPath()) {
				p.add(sf.yamlPath(), "${secret:%s}: this setting is read before the secrets store opens; use ${env:…} or ${file:…}", arg)
			} else if !validSecretName(arg) {
				p.add(sf.yamlPath(), "${secret:…} needs an operator-level secret name")
			}
		}
	}
	// SEC-3: production refuses the built-in development keys.
	if !c.Dev {
		for _, sf := range c.SecretFields() {
			if sf.Set && IsDevSecret(sf.Value) {
				p.add(sf.Path, "holds a built-in development or example value; production (dev: false) refuses it — generate a real secret")
			}
		}
	}
}

// validSecretName mirrors secrets.ValidName (config does not import the
// capability packages).
func validSecretName(n string) bool {
	if len(n) == 0 || len(n) > 128 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}
