package config

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// IngestConfig configures event ingestion from the customer's client SDK
// (APP-9): POST /v1/ingest/events.
type IngestConfig struct {
	// Enabled turns the ingestion endpoints on.
	Enabled bool `yaml:"enabled"`
	// MaxBatchEvents and MaxBatchBytes bound one request. The web layer
	// caps every body at 1 MiB, so MaxBatchBytes cannot exceed that.
	MaxBatchEvents int `yaml:"max_batch_events"`
	MaxBatchBytes  int `yaml:"max_batch_bytes"`
	// RatePerSecond and Burst are each workspace's budget in events
	// (GCRA): a batch of n events spends n.
	RatePerSecond int `yaml:"rate_per_second"`
	Burst         int `yaml:"burst"`
	// DefaultRetention names the class events are kept under unless their
	// publishable key names another.
	DefaultRetention string `yaml:"default_retention"`
	// RetentionClasses are "name=duration" entries; durations take Go's
	// units plus "d" for days, e.g. "30d=720h", "12mo=365d".
	RetentionClasses []string `yaml:"retention_classes"`
	// EventNamePattern is the regular expression (matched whole) event
	// names must match.
	EventNamePattern string `yaml:"event_name_pattern"`
	// Property limits, across one event's whole properties tree.
	MaxProperties     int `yaml:"max_properties"`
	MaxPropertyDepth  int `yaml:"max_property_depth"`
	MaxPropertyKeyLen int `yaml:"max_property_key_len"`
	MaxStringLen      int `yaml:"max_string_len"`
	MaxEventBytes     int `yaml:"max_event_bytes"`
	// SweepInterval is how often expired events are deleted.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

func defaultIngest() IngestConfig {
	return IngestConfig{
		Enabled: true, MaxBatchEvents: 500, MaxBatchBytes: 512 << 10, RatePerSecond: 1000, Burst: 5000,
		DefaultRetention: "12mo", RetentionClasses: []string{"30d=30d", "90d=90d", "12mo=365d", "25mo=760d"},
		EventNamePattern: `[a-z][a-z0-9_.:-]*`, MaxProperties: 100, MaxPropertyDepth: 5, MaxPropertyKeyLen: 128,
		MaxStringLen: 1024, MaxEventBytes: 16 << 10, SweepInterval: time.Hour,
	}
}

// maxIngestBody is the web layer's cap on any request body.
const maxIngestBody = 1 << 20

// ParseRetentionDuration parses a duration with an optional "d" (days) unit.
func ParseRetentionDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 100*366 {
			return 0, strconv.ErrSyntax
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Classes returns the retention classes by name.
func (s IngestConfig) Classes() (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, e := range s.RetentionClasses {
		name, dur, ok := strings.Cut(e, "=")
		name = strings.TrimSpace(name)
		if !ok || !retentionName.MatchString(name) {
			return nil, strconv.ErrSyntax
		}
		d, err := ParseRetentionDuration(dur)
		if err != nil || d < time.Hour {
			return nil, strconv.ErrSyntax
		}
		out[name] = d
	}
	return out, nil
}

var retentionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// NamePattern compiles EventNamePattern anchored at both ends.
func (s IngestConfig) NamePattern() (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + s.EventNamePattern + `)$`)
}

// check adds the section's problems; c is the whole (finalized) config.
func (s IngestConfig) check(p *problems, c Config) {
	positive := []struct {
		field string
		v     int
	}{
		{"ingest.max_batch_events", s.MaxBatchEvents}, {"ingest.max_batch_bytes", s.MaxBatchBytes},
		{"ingest.rate_per_second", s.RatePerSecond}, {"ingest.burst", s.Burst},
		{"ingest.max_properties", s.MaxProperties}, {"ingest.max_property_depth", s.MaxPropertyDepth},
		{"ingest.max_property_key_len", s.MaxPropertyKeyLen}, {"ingest.max_string_len", s.MaxStringLen},
		{"ingest.max_event_bytes", s.MaxEventBytes},
	}
	for _, f := range positive {
		if f.v <= 0 {
			p.add(f.field, "must be positive")
		}
	}
	if s.MaxBatchBytes > maxIngestBody {
		p.add("ingest.max_batch_bytes", "must be at most %d (the request body limit)", maxIngestBody)
	}
	if s.MaxBatchEvents > 10000 {
		p.add("ingest.max_batch_events", "must be at most 10000")
	}
	if s.MaxPropertyDepth > 32 {
		p.add("ingest.max_property_depth", "must be at most 32")
	}
	if s.SweepInterval < time.Second {
		p.add("ingest.sweep_interval", "must be at least 1s")
	}
	if _, err := s.NamePattern(); err != nil || s.EventNamePattern == "" {
		p.add("ingest.event_name_pattern", "must be a valid regular expression")
	}
	classes, err := s.Classes()
	switch {
	case err != nil:
		p.add("ingest.retention_classes", `entries are "name=duration" (lowercase name, duration of at least 1h, e.g. "12mo=365d")`)
	case len(classes) == 0:
		p.add("ingest.retention_classes", "define at least one class")
	default:
		if _, ok := classes[s.DefaultRetention]; !ok {
			p.add("ingest.default_retention", "must name one of retention_classes")
		}
	}
}
