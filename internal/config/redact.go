package config

import (
	"io"
	"net/url"

	"gopkg.in/yaml.v3"
)

// redacted replaces secret values in printed configuration.
const redacted = "REDACTED"

// Redacted returns a copy of c that is safe to print or log: the database
// password (in the URL's user info or its password/sslpassword query
// parameters) and the SMTP password are replaced. Slices are copied so the
// result shares nothing mutable with c.
func (c Config) Redacted() Config {
	c.Database = redactDatabase(c.Database)
	c.Redis.URL = redactDatabase(c.Redis.URL) // the same URL shape: user-info password hidden
	if c.Mail.SMTP.Password != "" {
		c.Mail.SMTP.Password = redacted
	}
	c.SecurityTxt.Contact = append([]string(nil), c.SecurityTxt.Contact...)
	c.SecurityTxt.PreferredLanguages = append([]string(nil), c.SecurityTxt.PreferredLanguages...)
	for _, v := range []*string{&c.Audit.WitnessWebhookSecret, &c.Audit.WebhookSecret, &c.Alerts.WebhookSecret, &c.Alerts.SlackWebhookURL} {
		if *v != "" {
			*v = redacted
		}
	}
	c.Audit.FailOpen = append([]string(nil), c.Audit.FailOpen...)
	c.Alerts.Email = append([]string(nil), c.Alerts.Email...)
	c.Tenancy.Permissions = append([]string(nil), c.Tenancy.Permissions...)
	c.Tenancy.SensitivePermissions = append([]string(nil), c.Tenancy.SensitivePermissions...)
	return c
}

func redactDatabase(db string) string {
	if db == "" {
		return ""
	}
	u, err := url.Parse(db)
	if err != nil {
		return redacted // unparseable: cannot tell where a password is, hide it all
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return redacted
		}
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, redacted)
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// WriteYAML writes c as YAML, always redacted: printing the configuration
// (for `rampart config show` or a support ticket) must never leak secrets.
// The output loads back with Load.
func WriteYAML(w io.Writer, c Config) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(c.Redacted()); err != nil {
		return err
	}
	return enc.Close()
}
