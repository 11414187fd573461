package config

import (
	"errors"
	"flag"
)

// Flags holds the command-line settings. Only flags the user actually gave
// are applied, so an unset flag never overrides the file or environment with
// its zero value.
type Flags struct {
	fs          *flag.FlagSet
	config      string
	dataDir     string
	listen      string
	adminListen string
	database    string
	upstream    string
	publicURL   string
	dev         bool
}

// BindFlags registers --config, --data-dir, --listen, --admin-listen,
// --database, --dev and --public-url on fs.
func BindFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.config, "config", "", "config file (YAML); default $RAMPART_CONFIG")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory (overrides data_dir)")
	fs.StringVar(&f.listen, "listen", "", "HTTPS listen address (overrides listen)")
	fs.StringVar(&f.adminListen, "admin-listen", "", "metrics and health listen address (overrides admin_listen)")
	fs.StringVar(&f.database, "database", "", "postgres:// URL; prefer ${env:NAME} so no password shows in the process list")
	fs.StringVar(&f.upstream, "upstream", "", "send every request that is not Rampart's own to this app URL through the gateway (overrides gateway.upstream)")
	fs.BoolVar(&f.dev, "dev", false, "development mode (overrides dev)")
	fs.StringVar(&f.publicURL, "public-url", "", "external base URL (overrides public_url)")
	return f
}

// ConfigPath is the config file to load: --config if given, else
// RAMPART_CONFIG from environ, else "" (defaults and environment only).
func (f *Flags) ConfigPath(environ []string) string {
	if f.config != "" {
		return f.config
	}
	v, _ := lookupEnv(environ, "RAMPART_CONFIG")
	return v
}

// Apply copies the explicitly set flags into c. It must run after fs.Parse.
func (f *Flags) Apply(c *Config) {
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "data-dir":
			c.DataDir = f.dataDir
		case "listen":
			c.Listen = f.listen
		case "admin-listen":
			c.AdminListen = f.adminListen
		case "database":
			c.Database = f.database
		case "upstream":
			c.Gateway.Upstream = f.upstream
		case "dev":
			c.Dev = f.dev
		case "public-url":
			c.PublicURL = f.publicURL
		}
	})
}

// FromFlags is the usual entry point for a command: Load (file from
// ConfigPath, then environ), Apply flags, resolve secret references (flags
// may use them too), Finalize and Validate. fs must already be parsed.
func FromFlags(fs *flag.FlagSet, f *Flags, environ []string) (Config, error) {
	if !fs.Parsed() {
		return Config{}, errors.New("config: FromFlags called before the flag set was parsed")
	}
	c, err := loadUnresolved(f.ConfigPath(environ), environ)
	if err != nil {
		return Config{}, err
	}
	f.Apply(&c)
	if err := resolveSecrets(&c, environ); err != nil {
		return Config{}, err
	}
	c.Finalize()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
