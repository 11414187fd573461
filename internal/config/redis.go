package config

// RedisConfig configures the Redis connection shared by a cluster.
type RedisConfig struct{}

func defaultRedis() RedisConfig { return RedisConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s RedisConfig) check(p *problems, c Config) {}
