package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// writeFile writes content into a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c.Finalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("finalized default invalid: %v", err)
	}
	if c.RootKey.File != filepath.Join("rampart-data", "root.key") {
		t.Errorf("RootKey.File = %q", c.RootKey.File)
	}
	if c.PublicURL != "https://localhost:8443" {
		t.Errorf("PublicURL = %q", c.PublicURL)
	}
	if got := c.SQLitePath(); got != filepath.Join("rampart-data", "rampart.db") {
		t.Errorf("SQLitePath = %q", got)
	}
	if Default().Dev {
		t.Error("default must be production mode")
	}
}

func TestFinalize(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*Config)
		wantKey   string
		wantURL   string
		wantSQLDB string
	}{
		{"data dir moves derived paths", func(c *Config) { c.DataDir = "/var/lib/r" }, "/var/lib/r/root.key", "https://localhost:8443", "/var/lib/r/rampart.db"},
		{"port 443 omitted", func(c *Config) { c.Listen = "0.0.0.0:443" }, "rampart-data/root.key", "https://localhost", "rampart-data/rampart.db"},
		{"root key from env leaves file empty", func(c *Config) { c.RootKey.Env = "RAMPART_ROOT_KEY" }, "", "https://localhost:8443", "rampart-data/rampart.db"},
		{"explicit values kept", func(c *Config) {
			c.RootKey.File = "/k"
			c.PublicURL = "https://auth.example.com"
			c.Database = "postgres://h/db"
		}, "/k", "https://auth.example.com", ""},
		{"port 0 gives no public url", func(c *Config) { c.Listen = ":0" }, "rampart-data/root.key", "", "rampart-data/rampart.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			c.Finalize()
			c.Finalize() // idempotent
			if c.RootKey.File != filepath.FromSlash(tt.wantKey) {
				t.Errorf("RootKey.File = %q, want %q", c.RootKey.File, tt.wantKey)
			}
			if c.PublicURL != tt.wantURL {
				t.Errorf("PublicURL = %q, want %q", c.PublicURL, tt.wantURL)
			}
			if c.SQLitePath() != filepath.FromSlash(tt.wantSQLDB) {
				t.Errorf("SQLitePath = %q, want %q", c.SQLitePath(), tt.wantSQLDB)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c Config)
	}{
		{"empty file keeps defaults", "", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("got %+v", c)
			}
		}},
		{"comment only keeps defaults", "# nothing\n", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("got %+v", c)
			}
		}},
		{"top level", "data_dir: /srv/r\ndev: true\nlisten: \":9443\"\n", func(t *testing.T, c Config) {
			if c.DataDir != "/srv/r" || !c.Dev || c.Listen != ":9443" {
				t.Errorf("got %+v", c)
			}
		}},
		{"nested durations decode natively", "session:\n  idle_timeout: 45m\n  absolute_timeout: 8h\npassword:\n  hash_max_wait: 1500ms\n", func(t *testing.T, c Config) {
			if c.Session.IdleTimeout != 45*time.Minute || c.Session.AbsoluteTimeout != 8*time.Hour || c.Password.HashMaxWait != 1500*time.Millisecond {
				t.Errorf("got %+v %+v", c.Session, c.Password)
			}
			if c.Session.RotateEvery != 15*time.Minute {
				t.Errorf("unset sibling lost its default: %v", c.Session.RotateEvery)
			}
		}},
		{"ints, uints and deep nesting", "password:\n  min_length: 12\n  hash_threads: 4\n  hash_memory_kib: 65536\nmail:\n  smtp:\n    host: smtp.example.com\n    port: 465\n    tls: tls\n", func(t *testing.T, c Config) {
			if c.Password.MinLength != 12 || c.Password.HashThreads != 4 || c.Password.HashMemoryKiB != 65536 {
				t.Errorf("password %+v", c.Password)
			}
			if c.Mail.SMTP.Host != "smtp.example.com" || c.Mail.SMTP.Port != 465 || c.Mail.SMTP.TLS != "tls" {
				t.Errorf("smtp %+v", c.Mail.SMTP)
			}
			if c.Mail.From != Default().Mail.From {
				t.Errorf("mail.from default lost: %q", c.Mail.From)
			}
		}},
		{"lists and time", "security_txt:\n  contact: [\"mailto:sec@example.com\", \"https://example.com/sec\"]\n  expires: 2030-01-02T03:04:05Z\n  preferred_languages: [en, de]\n", func(t *testing.T, c Config) {
			if !slices.Equal(c.SecurityTxt.Contact, []string{"mailto:sec@example.com", "https://example.com/sec"}) {
				t.Errorf("contact %q", c.SecurityTxt.Contact)
			}
			if !c.SecurityTxt.Expires.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("expires %v", c.SecurityTxt.Expires)
			}
			if !slices.Equal(c.SecurityTxt.PreferredLanguages, []string{"en", "de"}) {
				t.Errorf("languages %q", c.SecurityTxt.PreferredLanguages)
			}
		}},
		{"tls and root key", "tls:\n  cert_file: /c.pem\n  key_file: /k.pem\nroot_key:\n  env: MY_KEY\n", func(t *testing.T, c Config) {
			if c.TLS.CertFile != "/c.pem" || c.TLS.KeyFile != "/k.pem" || c.RootKey.Env != "MY_KEY" {
				t.Errorf("got %+v %+v", c.TLS, c.RootKey)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, "rampart.yaml", tt.yaml), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "data_dri: /x\n", "data_dri"},
		{"unknown nested key", "session:\n  idle_timout: 5m\n", "idle_timout"},
		{"bad duration", "session:\n  idle_timeout: soon\n", "line 2"},
		{"bare int is not a duration", "session:\n  idle_timeout: 30\n", "cannot unmarshal"},
		{"uint8 overflow", "password:\n  hash_threads: 300\n", "cannot unmarshal"},
		{"wrong shape", "session: 5\n", "cannot unmarshal"},
		{"two documents", "dev: true\n---\ndev: false\n", "exactly one YAML document"},
		{"syntax error", "dev: [\n", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "rampart.yaml", tt.yaml), nil)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if !fault.Is(err, fault.Invalid) {
				t.Errorf("kind = %v, want invalid", fault.KindOf(err))
			}
		})
	}
	t.Run("missing explicit file", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no path means defaults", func(t *testing.T) {
		c, err := Load("", nil)
		if err != nil || !reflect.DeepEqual(c, Default()) {
			t.Fatalf("Load(\"\") = %+v, %v", c, err)
		}
	})
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		check func(t *testing.T, c Config)
	}{
		{"string and bool", []string{"RAMPART_DATA_DIR=/d", "RAMPART_DEV=true"}, func(t *testing.T, c Config) {
			if c.DataDir != "/d" || !c.Dev {
				t.Errorf("got %q %v", c.DataDir, c.Dev)
			}
		}},
		{"nested duration", []string{"RAMPART_SESSION_IDLE_TIMEOUT=10m", "RAMPART_THROTTLE_STUFFING_BLOCK=2h"}, func(t *testing.T, c Config) {
			if c.Session.IdleTimeout != 10*time.Minute || c.Throttle.StuffingBlock != 2*time.Hour {
				t.Errorf("got %v %v", c.Session.IdleTimeout, c.Throttle.StuffingBlock)
			}
		}},
		{"ints and uints", []string{"RAMPART_PASSWORD_MIN_LENGTH=10", "RAMPART_PASSWORD_HASH_MEMORY_KIB=32768", "RAMPART_PASSWORD_HASH_THREADS=2", "RAMPART_MAIL_SMTP_PORT=25"}, func(t *testing.T, c Config) {
			if c.Password.MinLength != 10 || c.Password.HashMemoryKiB != 32768 || c.Password.HashThreads != 2 || c.Mail.SMTP.Port != 25 {
				t.Errorf("got %+v port %d", c.Password, c.Mail.SMTP.Port)
			}
		}},
		{"deep nested string and bool", []string{"RAMPART_MAIL_SMTP_PASSWORD=pw", "RAMPART_MAIL_SMTP_ALLOW_INSECURE=1"}, func(t *testing.T, c Config) {
			if c.Mail.SMTP.Password != "pw" || !c.Mail.SMTP.AllowInsecure {
				t.Errorf("got %+v", c.Mail.SMTP)
			}
		}},
		{"list is comma separated and trimmed", []string{"RAMPART_SECURITY_TXT_CONTACT=mailto:a@example.com, https://example.com/s ,"}, func(t *testing.T, c Config) {
			if !slices.Equal(c.SecurityTxt.Contact, []string{"mailto:a@example.com", "https://example.com/s"}) {
				t.Errorf("got %q", c.SecurityTxt.Contact)
			}
		}},
		{"empty list clears default", []string{"RAMPART_SECURITY_TXT_PREFERRED_LANGUAGES="}, func(t *testing.T, c Config) {
			if len(c.SecurityTxt.PreferredLanguages) != 0 {
				t.Errorf("got %q", c.SecurityTxt.PreferredLanguages)
			}
		}},
		{"time", []string{"RAMPART_SECURITY_TXT_EXPIRES=2031-05-06T07:08:09Z"}, func(t *testing.T, c Config) {
			if !c.SecurityTxt.Expires.Equal(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)) {
				t.Errorf("got %v", c.SecurityTxt.Expires)
			}
		}},
		{"first occurrence wins like os.Getenv", []string{"RAMPART_LISTEN=:1", "RAMPART_LISTEN=:2"}, func(t *testing.T, c Config) {
			if c.Listen != ":1" {
				t.Errorf("got %q", c.Listen)
			}
		}},
		{"vars read elsewhere and non-RAMPART vars are ignored", []string{"RAMPART_CONFIG=/x", "RAMPART_ROOT_KEY=k", "RAMPART_TEST_POSTGRES=postgres://", "HOME=/root", "rampart_dev=true"}, func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("config changed: %+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestEnvErrors(t *testing.T) {
	const secret = "hunter2-do-not-print"
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"unknown variables listed", []string{"RAMPART_SESION_IDLE_TIMEOUT=5m", "RAMPART_DATADIR=/x"}, []string{"RAMPART_DATADIR", "RAMPART_SESION_IDLE_TIMEOUT", "unknown"}},
		{"struct name is not a field", []string{"RAMPART_SESSION=x"}, []string{"RAMPART_SESSION"}},
		{"bad int does not echo value", []string{"RAMPART_PASSWORD_MIN_LENGTH=" + secret}, []string{"RAMPART_PASSWORD_MIN_LENGTH", "password.min_length", "integer"}},
		{"bad duration", []string{"RAMPART_SESSION_ROTATE_GRACE=" + secret}, []string{"session.rotate_grace", "duration"}},
		{"bad bool", []string{"RAMPART_DEV=" + secret}, []string{"RAMPART_DEV", "boolean"}},
		{"uint overflow", []string{"RAMPART_PASSWORD_HASH_THREADS=256"}, []string{"password.hash_threads", "uint8"}},
		{"negative uint", []string{"RAMPART_PASSWORD_HASH_TIME=-1"}, []string{"password.hash_time"}},
		{"bad time", []string{"RAMPART_SECURITY_TXT_EXPIRES=" + secret}, []string{"security_txt.expires", "RFC 3339"}},
		{"all problems together", []string{"RAMPART_DEV=x", "RAMPART_NOPE=1"}, []string{"RAMPART_DEV", "RAMPART_NOPE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", tt.env)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the value: %q", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("error is not a ValidationError: %T", err)
			}
		})
	}
}

// TestEnvMappingComplete guards the reflection: every field has a yaml tag,
// a unique variable that does not collide with the read-elsewhere list, and
// a type the environment parser supports.
func TestEnvMappingComplete(t *testing.T) {
	var c Config
	seen := map[string]string{}
	var check func(rt reflect.Type)
	check = func(rt reflect.Type) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			if f.Tag.Get("yaml") == "" {
				t.Errorf("%s.%s has no yaml tag", rt.Name(), f.Name)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != timeType {
				check(f.Type)
			}
		}
	}
	check(reflect.TypeOf(c))
	samples := map[reflect.Kind]string{reflect.String: "x", reflect.Bool: "true", reflect.Int: "1", reflect.Uint8: "1", reflect.Uint32: "1", reflect.Slice: "a,b", reflect.Int64: "1s", reflect.Float64: "0.5", reflect.Struct: "2030-01-01T00:00:00Z"}
	ls := leaves(&c)
	if len(ls) < 50 {
		t.Fatalf("only %d leaves found", len(ls))
	}
	for _, l := range ls {
		name := l.envName()
		if prev, dup := seen[name]; dup {
			t.Errorf("%s maps from both %s and %s", name, prev, l.yamlPath())
		}
		seen[name] = l.yamlPath()
		if readElsewhere(name) {
			t.Errorf("%s collides with a variable read elsewhere", name)
		}
		sample, ok := samples[l.value.Kind()]
		if !ok {
			t.Errorf("%s: no sample for kind %s", l.yamlPath(), l.value.Kind())
			continue
		}
		if err := setFromString(l.value, sample); err != nil {
			t.Errorf("%s: %v", l.yamlPath(), err)
		}
	}
	for _, want := range []string{"RAMPART_DATA_DIR", "RAMPART_SESSION_IDLE_TIMEOUT", "RAMPART_MAIL_SMTP_PASSWORD", "RAMPART_SECURITY_TXT_CONTACT", "RAMPART_ROOT_KEY_FILE", "RAMPART_PASSWORD_HASH_MEMORY_KIB"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no field for %s", want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "rampart.yaml", "listen: \":1001\"\nadmin_listen: \"127.0.0.1:1002\"\ndata_dir: /file\npublic_url: https://file.example.com\n")
	env := []string{"RAMPART_CONFIG=" + file, "RAMPART_ADMIN_LISTEN=127.0.0.1:2002", "RAMPART_DATA_DIR=/env", "RAMPART_DEV=false"}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := BindFlags(fs)
	if err := fs.Parse([]string{"--data-dir", "/flag", "--dev"}); err != nil {
		t.Fatal(err)
	}
	c, err := FromFlags(fs, f, env)
	if err != nil {
		t.Fatalf("FromFlags: %v", err)
	}
	checks := []struct{ field, got, want string }{
		{"listen (file only)", c.Listen, ":1001"},
		{"admin_listen (env over file)", c.AdminListen, "127.0.0.1:2002"},
		{"data_dir (flag over env over file)", c.DataDir, "/flag"},
		{"public_url (file)", c.PublicURL, "https://file.example.com"},
		{"root key derived from final data dir", c.RootKey.File, filepath.Join("/flag", "root.key")},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.field, ch.got, ch.want)
		}
	}
	if !c.Dev {
		t.Error("--dev flag did not override RAMPART_DEV=false")
	}
}

func TestFlagsApplyOnlySetFlags(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := BindFlags(fs)
	args := []string{"--listen=:7443", "--admin-listen=:7090", "--database=postgres://h/db", "--public-url=https://x.example.com", "--data-dir="}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Dev = true
	f.Apply(&c)
	if c.Listen != ":7443" || c.AdminListen != ":7090" || c.Database != "postgres://h/db" || c.PublicURL != "https://x.example.com" {
		t.Errorf("flags not applied: %+v", c)
	}
	if c.DataDir != "" {
		t.Errorf("explicit empty --data-dir not applied: %q", c.DataDir)
	}
	if !c.Dev {
		t.Error("unset --dev flag overrode dev with its zero value")
	}
}

func TestConfigPath(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"flag wins", []string{"--config", "/a.yaml"}, []string{"RAMPART_CONFIG=/b.yaml"}, "/a.yaml"},
		{"env fallback", nil, []string{"RAMPART_CONFIG=/b.yaml"}, "/b.yaml"},
		{"none", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			f := BindFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got := f.ConfigPath(tt.env); got != tt.want {
				t.Errorf("ConfigPath = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFromFlagsErrors(t *testing.T) {
	t.Run("not parsed", func(t *testing.T) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		if _, err := FromFlags(fs, BindFlags(fs), nil); err == nil {
			t.Fatal("want error for unparsed flag set")
		}
	})
	t.Run("validation runs", func(t *testing.T) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		f := BindFlags(fs)
		if err := fs.Parse([]string{"--listen", "nonsense"}); err != nil {
			t.Fatal(err)
		}
		_, err := FromFlags(fs, f, nil)
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), "listen:") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing config file", func(t *testing.T) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		f := BindFlags(fs)
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := FromFlags(fs, f, []string{"RAMPART_CONFIG=" + filepath.Join(t.TempDir(), "x.yaml")}); err == nil {
			t.Fatal("want error for missing RAMPART_CONFIG file")
		}
	})
}

func TestSecretReferences(t *testing.T) {
	const secret = "s3cr3t-VALUE-never-printed"
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "smtp-pass")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	crlfFile := filepath.Join(dir, "crlf")
	if err := os.WriteFile(crlfFile, []byte(secret+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbURL := "postgres://rampart:" + secret + "@db:5432/rampart"

	ok := []struct {
		name  string
		yaml  string
		env   []string
		check func(c Config) bool
	}{
		{"env ref in file", "database: ${env:DB_URL}\n", []string{"DB_URL=" + dbURL}, func(c Config) bool { return c.Database == dbURL }},
		{"file ref trims one newline", "mail:\n  smtp:\n    password: ${file:" + secretFile + "}\n", nil, func(c Config) bool { return c.Mail.SMTP.Password == secret }},
		{"file ref trims CRLF", "mail:\n  smtp:\n    password: ${file:" + crlfFile + "}\n", nil, func(c Config) bool { return c.Mail.SMTP.Password == secret }},
		{"ref given through env override", "", []string{"RAMPART_MAIL_SMTP_PASSWORD=${env:SMTP_PW}", "SMTP_PW=" + secret}, func(c Config) bool { return c.Mail.SMTP.Password == secret }},
		{"partial reference is a literal", "mail:\n  smtp:\n    password: a${env:X}\n", nil, func(c Config) bool { return c.Mail.SMTP.Password == "a${env:X}" }},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, "c.yaml", tt.yaml), tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("reference not resolved as expected: %+v", c.Redacted())
			}
		})
	}

	bad := []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"missing env var", "database: ${env:NOPE}\n", []string{"OTHER=" + secret}, []string{"database", "NOPE", "not set"}},
		{"empty env var", "database: ${env:EMPTY}\n", []string{"EMPTY="}, []string{"database", "empty"}},
		{"missing file", "mail:\n  smtp:\n    password: ${file:/nonexistent/" + "pw}\n", nil, []string{"mail.smtp.password", "/nonexistent/pw", "no such file"}},
		{"empty file", "mail:\n  smtp:\n    password: ${file:" + emptyFile + "}\n", nil, []string{"mail.smtp.password", "empty"}},
		{"bad secret name", "database: ${secret:db/url}\n", nil, []string{"database", "not a secret name"}},
		{"unknown scheme", "database: ${vault:x}\n", nil, []string{"database", "unknown reference scheme"}},
		{"no variable name", "database: ${env:}\n", nil, []string{"database", "variable name"}},
		{"all reported", "database: ${env:A}\nmfa:\n  issuer: ${env:B}\n", nil, []string{"database", "mfa.issuer"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", tt.yaml), tt.env)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}

	t.Run("flag value may be a reference", func(t *testing.T) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		f := BindFlags(fs)
		if err := fs.Parse([]string{"--database", "${env:DB_URL}"}); err != nil {
			t.Fatal(err)
		}
		c, err := FromFlags(fs, f, []string{"DB_URL=" + dbURL})
		if err != nil {
			t.Fatalf("FromFlags: %v", err)
		}
		if c.Database != dbURL {
			t.Errorf("database reference from flag not resolved")
		}
	})
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		field  string // problem prefix expected
		want   string // and a fragment of its message
	}{
		{"data dir empty", func(c *Config) { c.DataDir = "" }, "data_dir", "empty"},
		{"listen unparsable", func(c *Config) { c.Listen = "8443" }, "listen", "host:port"},
		{"listen port out of range", func(c *Config) { c.Listen = ":99999" }, "listen", "port"},
		{"listen port not numeric", func(c *Config) { c.Listen = ":https" }, "listen", "port"},
		{"admin listen unparsable", func(c *Config) { c.AdminListen = "localhost" }, "admin_listen", "host:port"},
		{"public url http outside dev", func(c *Config) { c.PublicURL = "http://auth.example.com" }, "public_url", "https outside dev"},
		{"public url other scheme", func(c *Config) { c.PublicURL = "ftp://auth.example.com" }, "public_url", "https"},
		{"public url relative", func(c *Config) { c.PublicURL = "/auth" }, "public_url", "absolute"},
		{"public url with query", func(c *Config) { c.PublicURL = "https://a.example.com/?x=1" }, "public_url", "query"},
		{"public url needed for port 0", func(c *Config) { c.Listen = ":0" }, "public_url", "port 0"},
		{"database not postgres", func(c *Config) { c.Database = "mysql://u:p@h/db" }, "database", "postgres://"},
		{"database not a url", func(c *Config) { c.Database = "host=db password=x" }, "database", "postgres://"},
		{"tls cert without key", func(c *Config) { c.TLS.CertFile = "/c.pem" }, "tls", "both"},
		{"tls key without cert", func(c *Config) { c.TLS.KeyFile = "/k.pem" }, "tls", "both"},
		{"root key file and env", func(c *Config) { c.RootKey.File = "/k"; c.RootKey.Env = "K" }, "root_key", "not both"},
		{"root key env not a name", func(c *Config) { c.RootKey.Env = "K=v" }, "root_key.env", "name"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", "debug"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", "json"},
		{"password min below NIST", func(c *Config) { c.Password.MinLength = 7 }, "password.min_length", "between 8 and 64"},
		{"password min above 64", func(c *Config) { c.Password.MinLength = 65 }, "password.min_length", "between 8 and 64"},
		{"password max below 64", func(c *Config) { c.Password.MaxLength = 63 }, "password.max_length", "at least 64"},
		{"password min above max", func(c *Config) { c.Password.MinLength = 60; c.Password.MaxLength = 50 }, "password.min_length", "must not exceed"},
		{"hash memory", func(c *Config) { c.Password.HashMemoryKiB = 8191 }, "password.hash_memory_kib", "8192"},
		{"hash time", func(c *Config) { c.Password.HashTime = 0 }, "password.hash_time", "at least 1"},
		{"hash threads", func(c *Config) { c.Password.HashThreads = 0 }, "password.hash_threads", "at least 1"},
		{"hash concurrency", func(c *Config) { c.Password.HashConcurrency = -1 }, "password.hash_concurrency", "0"},
		{"hash max queue", func(c *Config) { c.Password.HashMaxQueue = -1 }, "password.hash_max_queue", "0"},
		{"hash max wait", func(c *Config) { c.Password.HashMaxWait = 0 }, "password.hash_max_wait", "positive"},
		{"session idle zero", func(c *Config) { c.Session.IdleTimeout = 0 }, "session.idle_timeout", "positive"},
		{"session absolute negative", func(c *Config) { c.Session.AbsoluteTimeout = -time.Hour }, "session.absolute_timeout", "positive"},
		{"session rotate every zero", func(c *Config) { c.Session.RotateEvery = 0 }, "session.rotate_every", "positive"},
		{"session rotate grace zero", func(c *Config) { c.Session.RotateGrace = 0 }, "session.rotate_grace", "positive"},
		{"session idle above absolute", func(c *Config) { c.Session.IdleTimeout = 13 * time.Hour }, "session.idle_timeout", "absolute_timeout"},
		{"session grace not below rotate", func(c *Config) { c.Session.RotateGrace = 15 * time.Minute }, "session.rotate_grace", "shorter"},
		{"reset ttl", func(c *Config) { c.Tokens.ResetTTL = 0 }, "tokens.reset_ttl", "positive"},
		{"verify ttl", func(c *Config) { c.Tokens.VerifyTTL = 0 }, "tokens.verify_ttl", "positive"},
		{"account free failures", func(c *Config) { c.Throttle.AccountFreeFailures = -1 }, "throttle.account_free_failures", "negative"},
		{"lock before backoff", func(c *Config) { c.Throttle.AccountLockAfter = 3 }, "throttle.account_lock_after", "greater"},
		{"lock duration", func(c *Config) { c.Throttle.AccountLockDuration = 0 }, "throttle.account_lock_duration", "positive"},
		{"ip free failures", func(c *Config) { c.Throttle.IPFreeFailures = -1 }, "throttle.ip_free_failures", "negative"},
		{"base delay", func(c *Config) { c.Throttle.BaseDelay = 0 }, "throttle.base_delay", "positive"},
		{"max delay zero", func(c *Config) { c.Throttle.MaxDelay = 0 }, "throttle.max_delay", "positive"},
		{"max below base", func(c *Config) { c.Throttle.MaxDelay = 500 * time.Millisecond }, "throttle.max_delay", "base_delay"},
		{"stuffing accounts", func(c *Config) { c.Throttle.StuffingAccounts = 1 }, "throttle.stuffing_accounts", "at least 2"},
		{"stuffing window", func(c *Config) { c.Throttle.StuffingWindow = 0 }, "throttle.stuffing_window", "positive"},
		{"stuffing block", func(c *Config) { c.Throttle.StuffingBlock = 0 }, "throttle.stuffing_block", "positive"},
		{"mfa issuer empty", func(c *Config) { c.MFA.Issuer = "" }, "mfa.issuer", "empty"},
		{"mfa issuer colon", func(c *Config) { c.MFA.Issuer = "Acme:Prod" }, "mfa.issuer", "':'"},
		{"mail from", func(c *Config) { c.Mail.From = "not an address" }, "mail.from", "address"},
		{"smtp tls mode", func(c *Config) { c.Mail.SMTP.TLS = "ssl" }, "mail.smtp.tls", "starttls, tls or none"},
		{"smtp port", func(c *Config) { c.Mail.SMTP.Port = 0 }, "mail.smtp.port", "1 to"},
		{"smtp plaintext in production", func(c *Config) { c.Mail.SMTP.Host = "mx"; c.Mail.SMTP.TLS = "none" }, "mail.smtp.tls", "allow_insecure"},
		{"smtp password without username", func(c *Config) { c.Mail.SMTP.Password = "pw" }, "mail.smtp.username", "password"},
		{"security contact scheme", func(c *Config) { c.SecurityTxt.Contact = []string{"mailto:a@example.com", "sec@example.com"} }, "security_txt.contact[1]", "mailto:"},
		{"security contact bare scheme", func(c *Config) { c.SecurityTxt.Contact = []string{"https://"} }, "security_txt.contact[0]", "mailto:"},
		{"security policy", func(c *Config) { c.SecurityTxt.Policy = "http://example.com/p" }, "security_txt.policy", "https"},
		{"security acknowledgments", func(c *Config) { c.SecurityTxt.Acknowledgments = "example.com" }, "security_txt.acknowledgments", "https"},
		{"security encryption", func(c *Config) { c.SecurityTxt.Encryption = "ftp://x" }, "security_txt.encryption", "openpgp4fpr"},
		{"security language", func(c *Config) { c.SecurityTxt.PreferredLanguages = []string{"en", ""} }, "security_txt.preferred_languages[1]", "language"},
		{"trust cache ttl", func(c *Config) { c.Trust.CacheTTL = 0 }, "trust.cache_ttl", "positive"},
		{"tenancy step-up window", func(c *Config) { c.Tenancy.StepUpWindow = 0 }, "tenancy.step_up_window", "positive"},
		{"tenancy key default over max", func(c *Config) { c.Tenancy.APIKeyDefaultTTL = 2 * c.Tenancy.APIKeyMaxTTL }, "tenancy.api_key_default_ttl", "api_key_max_ttl"},
		{"tenancy permission name", func(c *Config) { c.Tenancy.Permissions = []string{"Reports"} }, "tenancy.permissions", "resource.action"},
		{"tenancy sensitive not listed", func(c *Config) { c.Tenancy.SensitivePermissions = []string{"reports.export"} }, "tenancy.sensitive_permissions", "not listed"},
		{"audit checkpoint events", func(c *Config) { c.Audit.CheckpointEvents = 0 }, "audit.checkpoint_events", "at least 1"},
		{"audit webhook without secret", func(c *Config) { c.Audit.WebhookURL = "https://siem.example.com/in" }, "audit.webhook_url", "whsec_"},
		{"alerts slack http", func(c *Config) { c.Alerts.SlackWebhookURL = "http://hooks.example.com/x" }, "alerts.slack_webhook_url", "https"},
		{"alerts email", func(c *Config) { c.Alerts.Email = []string{"not an address"} }, "alerts.email", "not an email"},
		{"tracing sample ratio", func(c *Config) { c.Tracing.SampleRatio = 2 }, "tracing.sample_ratio", "between 0 and 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			found := false
			for _, p := range ve.Problems {
				if strings.HasPrefix(p, tt.field+": ") && strings.Contains(p, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem %q containing %q in:\n%v", tt.field, tt.want, err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"http public url in dev", func(c *Config) { c.Dev = true; c.PublicURL = "http://localhost:8080" }},
		{"plaintext smtp in dev", func(c *Config) { c.Dev = true; c.Mail.SMTP.Host = "localhost"; c.Mail.SMTP.TLS = "none" }},
		{"plaintext smtp explicitly allowed", func(c *Config) { c.Mail.SMTP.Host = "mx"; c.Mail.SMTP.TLS = "none"; c.Mail.SMTP.AllowInsecure = true }},
		{"postgresql scheme", func(c *Config) { c.Database = "postgresql://u:p@db/rampart?sslmode=verify-full" }},
		{"full production setup", func(c *Config) {
			c.PublicURL = "https://auth.example.com"
			c.TLS = TLSConfig{CertFile: "/c.pem", KeyFile: "/k.pem"}
			c.RootKey.Env = "RAMPART_ROOT_KEY"
			c.Mail.SMTP = SMTPConfig{Host: "smtp.example.com", Port: 465, Username: "u", Password: "p", TLS: "tls"}
			c.SecurityTxt.Contact = []string{"mailto:security@example.com", "tel:+1-555-0100"}
			c.SecurityTxt.Encryption = "openpgp4fpr:ABCDEF"
			c.SecurityTxt.Policy = "https://example.com/policy"
		}},
		{"boundary values", func(c *Config) {
			c.Password.MinLength, c.Password.MaxLength = 64, 64
			c.Password.HashMemoryKiB = 8192
			c.Session.IdleTimeout = c.Session.AbsoluteTimeout
			c.Throttle.MaxDelay = c.Throttle.BaseDelay
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := Default()
	c.Listen = "bad"
	c.Log.Level = "loud"
	c.Database = "postgres\x7f://user:topsecret@h"
	err := c.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 4 {
		t.Errorf("Error() should be a heading plus one line per problem:\n%s", err)
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("validation error leaks database password: %s", err)
	}
}

func TestWarnings(t *testing.T) {
	has := func(ws []string, prefix string) bool {
		for _, w := range ws {
			if strings.HasPrefix(w, prefix) {
				return true
			}
		}
		return false
	}
	prod := Default().Warnings()
	for _, want := range []string{"root_key.file", "mail.smtp.host", "security_txt.contact", "tls", "public_url", "alerts"} {
		if !has(prod, want) {
			t.Errorf("default production config lacks warning %q: %q", want, prod)
		}
	}

	c := Default()
	c.PublicURL = "https://auth.example.com"
	c.TLS = TLSConfig{CertFile: "/c", KeyFile: "/k"}
	c.RootKey.Env = "RAMPART_ROOT_KEY"
	c.Mail.SMTP.Host = "smtp.example.com"
	c.SecurityTxt.Contact = []string{"mailto:s@example.com"}
	c.Alerts.Email = []string{"security@example.com"}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("fully configured production config warns: %q", w)
	}

	dev := Default()
	dev.Dev = true
	if w := dev.Warnings(); len(w) != 1 || !has(w, "dev") {
		t.Errorf("dev warnings = %q", w)
	}
}

func TestRedacted(t *testing.T) {
	const secret = "pa55-w0rd"
	tests := []struct {
		name, db, want string
	}{
		{"userinfo password", "postgres://rampart:" + secret + "@db:5432/rampart?sslmode=require", "postgres://rampart:REDACTED@db:5432/rampart?sslmode=require"},
		{"query password", "postgres://db/rampart?password=" + secret + "&user=r", "postgres://db/rampart?password=REDACTED&user=r"},
		{"sslpassword", "postgres://db/rampart?sslpassword=" + secret, "postgres://db/rampart?sslpassword=REDACTED"},
		{"no password untouched", "postgres://rampart@db/rampart", "postgres://rampart@db/rampart"},
		{"empty stays empty", "", ""},
		{"unparseable hidden whole", "postgres://u:" + secret + "@db/%zz", "REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Database = tt.db
			c.Mail.SMTP.Password = secret
			r := c.Redacted()
			if r.Database != tt.want {
				t.Errorf("Database = %q, want %q", r.Database, tt.want)
			}
			if r.Mail.SMTP.Password != "REDACTED" {
				t.Errorf("SMTP password = %q", r.Mail.SMTP.Password)
			}
			if c.Database != tt.db || c.Mail.SMTP.Password != secret {
				t.Error("Redacted modified the original")
			}
		})
	}
	t.Run("no smtp password stays empty", func(t *testing.T) {
		if got := Default().Redacted().Mail.SMTP.Password; got != "" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("slices are copies", func(t *testing.T) {
		c := Default()
		r := c.Redacted()
		r.SecurityTxt.PreferredLanguages[0] = "xx"
		if c.SecurityTxt.PreferredLanguages[0] != "en" {
			t.Error("Redacted shares slices with the original")
		}
	})
}

func TestWriteYAML(t *testing.T) {
	const secret = "pa55-w0rd"
	c := Default()
	c.Database = "postgres://rampart:" + secret + "@db/rampart"
	c.Mail.SMTP.Username = "u"
	c.Mail.SMTP.Password = secret
	c.SecurityTxt.Contact = []string{"mailto:s@example.com"}
	c.SecurityTxt.Expires = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	if err := WriteYAML(&buf, c); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("WriteYAML leaks a secret:\n%s", out)
	}
	for _, want := range []string{"idle_timeout: 30m0s", "hash_memory_kib: 19456", "REDACTED"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The output is a valid config file that reproduces the (redacted) config.
	back, err := Load(writeFile(t, "out.yaml", out), nil)
	if err != nil {
		t.Fatalf("reloading WriteYAML output: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c.Redacted()) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, c.Redacted())
	}
	// A zero Expires is omitted rather than written as year 1.
	buf.Reset()
	if err := WriteYAML(&buf, Default()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "expires") {
		t.Errorf("zero expires written:\n%s", buf.String())
	}
}

// BenchmarkFromFile measures a full load (file, environment, secret
// resolution, Finalize, Validate); it runs once per process start, so this
// only guards against accidental blow-ups in the reflection walk.
func BenchmarkFromFile(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "rampart.yaml")
	yml := "data_dir: /srv\nsession:\n  idle_timeout: 20m\nmail:\n  smtp:\n    host: mx\n    username: u\n    password: ${env:PW}\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		b.Fatal(err)
	}
	env := []string{"PW=x", "RAMPART_LOG_LEVEL=debug", "RAMPART_SECURITY_TXT_CONTACT=mailto:a@example.com", "HOME=/root"}
	for b.Loop() {
		c, err := Load(path, env)
		if err != nil {
			b.Fatal(err)
		}
		c.Finalize()
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
