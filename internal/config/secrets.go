package config

// SecretsConfig configures the secrets store and rotation.
type SecretsConfig struct{}

func defaultSecrets() SecretsConfig { return SecretsConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s SecretsConfig) check(p *problems, c Config) {}
