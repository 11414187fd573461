package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RateLimitConfig configures rate limits (APP-3): which backend keeps the
// counters, the named policies routes can use, and the default policy for
// each kind of key the gateway limits by.
type RateLimitConfig struct {
	// Backend is local (in process), redis (shared by a cluster) or empty:
	// redis when redis.url is set, local otherwise.
	Backend string `yaml:"backend"`
	// MaxKeys bounds the memory of the local limiter (also used as the
	// fallback while Redis is down); 0 means about a million keys.
	MaxKeys int `yaml:"max_keys"`
	// Policies are named limits, each "name: LIMIT/PERIOD [burst N]", for
	// example "login: 10/1m burst 5". In YAML each may also be written as
	// a mapping {name, rate, per, burst}.
	Policies RatePolicies `yaml:"policies,omitempty"`
	// Defaults apply to every request by key kind; routes may add their
	// own policy on top.
	Defaults RateLimitDefaults `yaml:"defaults"`
}

// RateLimitDefaults names, per key kind, a policy from rate_limit.policies
// or an inline "LIMIT/PERIOD [burst N]"; "off" (or empty) means no default
// limit of that kind.
type RateLimitDefaults struct {
	IP        string `yaml:"ip"`
	Account   string `yaml:"account"`
	APIKey    string `yaml:"api_key"`
	Workspace string `yaml:"workspace"`
	Route     string `yaml:"route"`
}

// RatePolicies is a list of "name: LIMIT/PERIOD [burst N]". It is a string
// list so the environment can set it (comma-separated), and accepts the
// mapping form in YAML.
type RatePolicies []string

// UnmarshalYAML accepts each item as a string or as a mapping with name,
// rate, per and burst.
func (rp *RatePolicies) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: rate_limit.policies must be a list", n.Line)
	}
	out := make(RatePolicies, 0, len(n.Content))
	for _, item := range n.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			out = append(out, item.Value)
		case yaml.MappingNode:
			var m struct {
				Name  string `yaml:"name"`
				Rate  int    `yaml:"rate"`
				Per   string `yaml:"per"`
				Burst int    `yaml:"burst"`
			}
			if err := item.Decode(&m); err != nil {
				return err
			}
			s := fmt.Sprintf("%s: %d/%s", m.Name, m.Rate, m.Per)
			if m.Burst != 0 {
				s += " burst " + strconv.Itoa(m.Burst)
			}
			out = append(out, s)
		default:
			return fmt.Errorf("line %d: a rate limit policy is a string or a mapping", item.Line)
		}
	}
	*rp = out
	return nil
}

// RatePolicy is one parsed policy: Limit requests per Per, Burst back to
// back (0 = Limit).
type RatePolicy struct {
	Name  string
	Limit int
	Per   time.Duration
	Burst int
}

var (
	policyName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	policySpec = regexp.MustCompile(`^(\d{1,10})\s*/\s*([0-9a-zµ.]+)(?:\s+burst\s+(\d{1,10}))?$`)
)

// Bounds shared with the limiter (internal/gateway/ratelimit.Policy).
const (
	maxRateLimit  = 1_000_000_000
	maxRatePeriod = 366 * 24 * time.Hour
)

// ParseRatePolicy parses "[name:] LIMIT/PERIOD [burst N]". PERIOD is a Go
// duration ("1m", "10s") or a bare unit ("s", "m", "h" for one of it).
func ParseRatePolicy(s string) (RatePolicy, error) {
	var rp RatePolicy
	spec := strings.TrimSpace(s)
	if name, rest, ok := strings.Cut(spec, ":"); ok {
		rp.Name, spec = strings.TrimSpace(name), strings.TrimSpace(rest)
		if !policyName.MatchString(rp.Name) {
			return rp, fmt.Errorf("policy name must be lowercase letters, digits, '_', '.' or '-'")
		}
	}
	m := policySpec.FindStringSubmatch(strings.ToLower(spec))
	if m == nil {
		return rp, fmt.Errorf(`must look like "100/1m" or "10/1s burst 20"`)
	}
	rp.Limit, _ = strconv.Atoi(m[1])
	switch m[2] {
	case "s", "m", "h":
		m[2] = "1" + m[2]
	}
	per, err := time.ParseDuration(m[2])
	if err != nil {
		return rp, fmt.Errorf("period %q is not a duration such as 1s, 1m or 1h", m[2])
	}
	rp.Per = per
	if m[3] != "" {
		rp.Burst, _ = strconv.Atoi(m[3])
		if rp.Burst < 1 {
			return rp, fmt.Errorf("burst must be at least 1")
		}
	}
	if rp.Limit < 1 || rp.Limit > maxRateLimit {
		return rp, fmt.Errorf("limit must be from 1 to %d", maxRateLimit)
	}
	if rp.Per <= 0 || rp.Per > maxRatePeriod {
		return rp, fmt.Errorf("period must be positive and at most 366 days")
	}
	if rp.Burst > maxRateLimit {
		return rp, fmt.Errorf("burst must be at most %d", maxRateLimit)
	}
	return rp, nil
}

// Policy returns the named policy from Policies.
func (s RateLimitConfig) Policy(name string) (RatePolicy, bool) {
	for _, spec := range s.Policies {
		if rp, err := ParseRatePolicy(spec); err == nil && rp.Name == name {
			return rp, true
		}
	}
	return RatePolicy{}, false
}

// Resolve turns a reference (a policy name, an inline spec, or "off"/"")
// into a policy; ok is false for "off". An inline spec is named after
// fallbackName (e.g. "ip"), so its counters stay apart from others.
func (s RateLimitConfig) Resolve(ref, fallbackName string) (rp RatePolicy, ok bool, err error) {
	ref = strings.TrimSpace(ref)
	if ref == "" || ref == "off" {
		return RatePolicy{}, false, nil
	}
	if rp, found := s.Policy(ref); found {
		return rp, true, nil
	}
	if strings.Contains(ref, "/") {
		rp, err := ParseRatePolicy(ref)
		if err != nil {
			return rp, false, err
		}
		if rp.Name == "" {
			rp.Name = fallbackName
		}
		return rp, true, nil
	}
	return RatePolicy{}, false, fmt.Errorf("%q is neither a policy in rate_limit.policies nor LIMIT/PERIOD", ref)
}

// EffectiveBackend is the backend in use: Backend, or redis when
// redis.url is set and local otherwise.
func (c Config) EffectiveRateLimitBackend() string {
	if c.RateLimit.Backend != "" {
		return c.RateLimit.Backend
	}
	if c.Redis.URL != "" {
		return "redis"
	}
	return "local"
}

func defaultRateLimit() RateLimitConfig {
	// Inline specs rather than named policies, so an operator who sets
	// their own policies does not leave the defaults dangling.
	return RateLimitConfig{
		Defaults: RateLimitDefaults{
			IP: "600/1m burst 120", Account: "1200/1m burst 200", APIKey: "3000/1m burst 500",
			Workspace: "6000/1m burst 1000", Route: "off",
		},
	}
}

// check adds the section's problems; c is the whole (finalized) config.
func (s RateLimitConfig) check(p *problems, c Config) {
	switch s.Backend {
	case "", "local":
	case "redis":
		if c.Redis.URL == "" {
			p.add("rate_limit.backend", "redis needs redis.url")
		}
	default:
		p.add("rate_limit.backend", "must be local, redis or empty (redis when redis.url is set)")
	}
	if s.MaxKeys < 0 {
		p.add("rate_limit.max_keys", "must be 0 (default) or more")
	}
	seen := map[string]bool{}
	for i, spec := range s.Policies {
		field := fmt.Sprintf("rate_limit.policies[%d]", i)
		rp, err := ParseRatePolicy(spec)
		switch {
		case err != nil:
			p.add(field, "%v", err)
		case rp.Name == "":
			p.add(field, `needs a name: "name: LIMIT/PERIOD"`)
		case seen[rp.Name]:
			p.add(field, "policy %q is defined twice", rp.Name)
		}
		seen[rp.Name] = true
	}
	d := s.Defaults
	for _, f := range []struct{ field, kind, ref string }{
		{"rate_limit.defaults.ip", "ip", d.IP}, {"rate_limit.defaults.account", "account", d.Account},
		{"rate_limit.defaults.api_key", "api_key", d.APIKey}, {"rate_limit.defaults.workspace", "workspace", d.Workspace},
		{"rate_limit.defaults.route", "route", d.Route},
	} {
		if _, _, err := s.Resolve(f.ref, f.kind); err != nil {
			p.add(f.field, "%v", err)
		}
	}
}
