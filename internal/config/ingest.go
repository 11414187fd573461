package config

// IngestConfig configures event ingestion.
type IngestConfig struct{}

func defaultIngest() IngestConfig { return IngestConfig{} }

// check adds the section's problems; c is the whole (finalized) config.
func (s IngestConfig) check(p *problems, c Config) {}
