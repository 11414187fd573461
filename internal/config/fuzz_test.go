package config

import (
	"strings"
	"testing"
)

// FuzzLoadYAML feeds arbitrary bytes as the config file: decoding, then
// finalizing, validating, warning and redacting must never panic, and a
// failed decode must not be half-applied silently (it returns an error).
func FuzzLoadYAML(f *testing.F) {
	seeds := []string{
		"",
		"dev: true\n",
		"session:\n  idle_timeout: 5m\n  absolute_timeout: 1h\n",
		"password:\n  hash_threads: 300\n",
		"security_txt:\n  contact: [mailto:a@b]\n  expires: 2030-01-01T00:00:00Z\n",
		"database: ${env:DB}\nmail:\n  smtp:\n    password: ${file:/nonexistent}\n",
		"a: &a [*a]\n",
		"---\n---\n",
		"listen: [\n",
		"tls: {cert_file: x}\nunknown: 1\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if err := decodeYAML(data, &c); err != nil {
			return
		}
		if err := resolveSecrets(&c, []string{"DB=postgres://u:p@h/db"}); err != nil {
			// Resolution errors must not contain resolved values.
			if strings.Contains(err.Error(), "postgres://u:p@h/db") {
				t.Fatalf("secret leaked: %v", err)
			}
			return
		}
		c.Finalize()
		_ = c.Validate()
		_ = c.Warnings()
		r := c.Redacted()
		if c.Mail.SMTP.Password != "" && r.Mail.SMTP.Password != "REDACTED" {
			t.Fatalf("smtp password not redacted")
		}
	})
}
