package config

// IntegrationsConfig configures third-party integration providers.
type IntegrationsConfig struct{}

func defaultIntegrations() IntegrationsConfig { return IntegrationsConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s IntegrationsConfig) check(p *problems, c Config) {}
