package config

// RateLimitConfig configures rate-limit policies.
type RateLimitConfig struct{}

func defaultRateLimit() RateLimitConfig { return RateLimitConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s RateLimitConfig) check(p *problems, c Config) {}
