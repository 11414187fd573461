package config

// WAFConfig configures the web application firewall (Coraza + OWASP CRS).
type WAFConfig struct{}

func defaultWAF() WAFConfig { return WAFConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s WAFConfig) check(p *problems, c Config) {}
