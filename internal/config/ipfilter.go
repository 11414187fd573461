package config

// IPFilterConfig configures IP allow and deny lists and trusted proxies.
type IPFilterConfig struct{}

func defaultIPFilter() IPFilterConfig { return IPFilterConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s IPFilterConfig) check(p *problems, c Config) {}
