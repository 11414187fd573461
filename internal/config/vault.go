package config

import (
	"slices"
	"time"
)

// VaultConfig configures the key hierarchy and field encryption (ENC-1..5).
// The root key's file and environment variable stay in root_key (file,
// env); root_source picks between them and an HSM.
type VaultConfig struct {
	// RootSource is where the root key lives: "file", "env" or "pkcs11".
	// Empty means env when root_key.env is set, else file.
	RootSource string       `yaml:"root_source"`
	PKCS11     PKCS11Config `yaml:"pkcs11"`
	// RotateEvery is the age at which a workspace's current key-encryption
	// key is rotated by the scheduled job (default 90 days).
	RotateEvery time.Duration `yaml:"rotate_every"`
	// DataKeyMaxAge and DataKeyMaxUses bound how long, and for how many
	// encryptions, an in-memory data key is used before a fresh one is
	// derived (defaults 5m and 16,777,216). DataKeyMaxAge also bounds how
	// long a node trusts its cached key list (rotations and shredding on
	// other nodes are seen within it).
	DataKeyMaxAge  time.Duration `yaml:"data_key_max_age"`
	DataKeyMaxUses int           `yaml:"data_key_max_uses"`
	// RetireAfter is the minimum-decryption-version policy: a key version
	// superseded longer ago than this stops decrypting (0, the default,
	// keeps every version until retired by hand with the API or CLI).
	RetireAfter time.Duration `yaml:"retire_after"`
	// RewrapEvery is how often the background re-wrap of Rampart's own
	// stored ciphertexts runs (default 1h).
	RewrapEvery time.Duration `yaml:"rewrap_every"`
	// MaxBatch bounds the values of one batch API call (default 1000).
	MaxBatch int `yaml:"max_batch"`
}

// PKCS11Config locates the root key in an HSM. The PIN is given by
// reference (pin: ${env:HSM_PIN}), never written in the file.
type PKCS11Config struct {
	Module     string `yaml:"module"`
	TokenLabel string `yaml:"token_label"`
	PIN        string `yaml:"pin"`
	KeyLabel   string `yaml:"key_label"`
}

func defaultVault() VaultConfig {
	return VaultConfig{RotateEvery: 90 * 24 * time.Hour, DataKeyMaxAge: 5 * time.Minute, DataKeyMaxUses: 1 << 24,
		RewrapEvery: time.Hour, MaxBatch: 1000}
}

// Source returns the effective root source.
func (s VaultConfig) Source(c Config) string {
	if s.RootSource != "" {
		return s.RootSource
	}
	if c.RootKey.Env != "" {
		return "env"
	}
	return "file"
}

// check adds the section's problems; c is the whole (finalized) config.
func (s VaultConfig) check(p *problems, c Config) {
	src := s.Source(c)
	if !slices.Contains([]string{"file", "env", "pkcs11"}, src) {
		p.add("vault.root_source", "must be file, env or pkcs11")
	}
	if src == "env" && c.RootKey.Env == "" {
		p.add("vault.root_source", "env needs root_key.env (the variable's name)")
	}
	if src == "pkcs11" {
		if s.PKCS11.Module == "" {
			p.add("vault.pkcs11.module", "must name the PKCS#11 module (.so) path")
		}
		if s.PKCS11.TokenLabel == "" {
			p.add("vault.pkcs11.token_label", "must not be empty")
		}
		if s.PKCS11.KeyLabel == "" {
			p.add("vault.pkcs11.key_label", "must not be empty")
		}
		if s.PKCS11.PIN == "" {
			p.add("vault.pkcs11.pin", "must be given, by reference: ${env:NAME} or ${file:PATH}")
		}
	}
	if s.RotateEvery < time.Hour {
		p.add("vault.rotate_every", "must be at least 1h")
	}
	if s.DataKeyMaxAge < time.Second || s.DataKeyMaxAge > 24*time.Hour {
		p.add("vault.data_key_max_age", "must be between 1s and 24h")
	}
	if s.DataKeyMaxUses < 1 || s.DataKeyMaxUses > 1<<32 {
		p.add("vault.data_key_max_uses", "must be between 1 and 4294967296 (random 96-bit nonces stay safe below 2^32 uses)")
	}
	if s.RetireAfter != 0 && s.RetireAfter < s.RotateEvery {
		p.add("vault.retire_after", "must be 0 (never) or at least vault.rotate_every")
	}
	if s.RewrapEvery < time.Minute {
		p.add("vault.rewrap_every", "must be at least 1m")
	}
	if s.MaxBatch < 1 || s.MaxBatch > 10000 {
		p.add("vault.max_batch", "must be between 1 and 10000")
	}
}
