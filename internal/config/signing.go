package config

// SigningConfig configures the signing keys of access tokens, ID tokens and gateway assertions.
type SigningConfig struct{}

func defaultSigning() SigningConfig { return SigningConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s SigningConfig) check(p *problems, c Config) {}
