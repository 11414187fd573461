package config

// VaultConfig configures the key hierarchy and field encryption.
type VaultConfig struct{}

func defaultVault() VaultConfig { return VaultConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s VaultConfig) check(p *problems, c Config) {}
