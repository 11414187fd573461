package config

// GatewayConfig configures the gateway routes and upstreams.
type GatewayConfig struct{}

func defaultGateway() GatewayConfig { return GatewayConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s GatewayConfig) check(p *problems, c Config) {}
