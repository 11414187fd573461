package config

import "time"

// SigningConfig configures the signing keys of access tokens, ID tokens and
// gateway assertions (SES-2). See docs/SIGNING.md.
type SigningConfig struct {
	// Algorithm is "EdDSA" (Ed25519, the default) or "ES256" (ECDSA P-256)
	// for relying parties without Ed25519. It applies to keys created from
	// now on; existing keys keep theirs until rotated out.
	Algorithm string `yaml:"algorithm"`
	// RotateEvery is the scheduled rotation interval.
	RotateEvery time.Duration `yaml:"rotate_every"`
	// PublishAhead is how long a new key is in the JWKS before it signs, so
	// verifiers that cache the JWKS know it first. It must exceed
	// ReloadEvery: every node must have loaded a key before any signs with it.
	PublishAhead time.Duration `yaml:"publish_ahead"`
	// MaxTokenTTL is the longest lifetime of anything signed (access
	// tokens, ID tokens, assertions). A retired key stays published at
	// least this long after its last signature.
	MaxTokenTTL time.Duration `yaml:"max_token_ttl"`
	// ReloadEvery is how often each node re-reads the key set from the
	// database, so a cluster converges.
	ReloadEvery time.Duration `yaml:"reload_every"`
}

func defaultSigning() SigningConfig {
	return SigningConfig{Algorithm: "EdDSA", RotateEvery: 30 * 24 * time.Hour, PublishAhead: time.Hour,
		MaxTokenTTL: 15 * time.Minute, ReloadEvery: time.Minute}
}

// maxSignedTTL bounds signing.max_token_ttl: a key compromise is contained
// only once every token it signed has expired.
const maxSignedTTL = 24 * time.Hour

// check adds the section's problems; c is the whole (finalized) config.
func (s SigningConfig) check(p *problems, c Config) {
	if !oneOf(s.Algorithm, "EdDSA", "ES256") {
		p.add("signing.algorithm", "must be EdDSA or ES256")
	}
	positive(p, "signing.rotate_every", s.RotateEvery)
	positive(p, "signing.publish_ahead", s.PublishAhead)
	positive(p, "signing.max_token_ttl", s.MaxTokenTTL)
	positive(p, "signing.reload_every", s.ReloadEvery)
	if s.MaxTokenTTL > maxSignedTTL {
		p.add("signing.max_token_ttl", "must be at most %s", maxSignedTTL)
	}
	if s.ReloadEvery > 0 && s.PublishAhead <= s.ReloadEvery {
		p.add("signing.publish_ahead", "must exceed signing.reload_every, or a node could meet a token signed by a key it has not loaded yet")
	}
	if s.PublishAhead > 0 && s.RotateEvery <= s.PublishAhead {
		p.add("signing.rotate_every", "must exceed signing.publish_ahead")
	}
}
