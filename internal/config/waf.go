package config

import (
	"strconv"
	"strings"
)

// WAFConfig configures the web application firewall (Coraza + OWASP CRS).
// Per-route options (disabled, excluded rules, mode) live in the gateway's
// route config.
type WAFConfig struct {
	Enabled       bool   `yaml:"enabled"`
	Mode          string `yaml:"mode"`           // block | detect
	ParanoiaLevel int    `yaml:"paranoia_level"` // 1–4
	// CRS anomaly score thresholds.
	InboundThreshold  int `yaml:"inbound_threshold"`
	OutboundThreshold int `yaml:"outbound_threshold"`
	// Request bodies: the largest inspected (bytes), how much stays in memory,
	// and what happens beyond the limit: reject (413) or partial (inspect the
	// first request_body_limit bytes, pass the rest).
	RequestBodyLimit         int    `yaml:"request_body_limit"`
	RequestBodyInMemoryLimit int    `yaml:"request_body_in_memory_limit"`
	BodyLimitAction          string `yaml:"body_limit_action"`
	// Response inspection (text, HTML, XML, JSON bodies up to
	// response_body_limit); streams and upgrades are never buffered.
	InspectResponses  bool `yaml:"inspect_responses"`
	ResponseBodyLimit int  `yaml:"response_body_limit"`
	// ExcludeRules are CRS rule ids removed for every route.
	ExcludeRules []string `yaml:"exclude_rules"`
	// SkipExtensions: bodiless GET/HEAD requests with no query for paths with
	// these extensions are not inspected. Empty inspects everything.
	SkipExtensions []string `yaml:"skip_extensions"`
	// AllowedMethods are the HTTP methods the CRS lets through (rule
	// 911100). The CRS's own default (GET HEAD POST OPTIONS) would block
	// the PUT, PATCH and DELETE of Rampart's API and of most apps.
	AllowedMethods []string `yaml:"allowed_methods"`
	// Directives is extra SecLang appended after the CRS.
	Directives string `yaml:"directives"`
}

func defaultWAF() WAFConfig {
	return WAFConfig{
		Enabled:                  true,
		Mode:                     "block",
		ParanoiaLevel:            1,
		InboundThreshold:         5,
		OutboundThreshold:        4,
		RequestBodyLimit:         13 << 20,
		RequestBodyInMemoryLimit: 128 << 10,
		BodyLimitAction:          "reject",
		ResponseBodyLimit:        512 << 10,
		ExcludeRules:             []string{},
		AllowedMethods:           []string{"GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"},
		SkipExtensions: []string{".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif",
			".ico", ".svg", ".woff", ".woff2", ".ttf", ".otf"},
	}
}

// RuleIDs returns ExcludeRules as integers; entries that are not positive
// integers are dropped (check reports them).
func (s WAFConfig) RuleIDs() []int {
	var out []int
	for _, r := range s.ExcludeRules {
		if n, err := strconv.Atoi(strings.TrimSpace(r)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// check adds the section's problems; c is the whole (finalized) config.
func (s WAFConfig) check(p *problems, c Config) {
	if !s.Enabled {
		return
	}
	if !oneOf(s.Mode, "block", "detect") {
		p.add("waf.mode", "must be block or detect")
	}
	if s.ParanoiaLevel < 1 || s.ParanoiaLevel > 4 {
		p.add("waf.paranoia_level", "must be 1, 2, 3 or 4")
	}
	if s.InboundThreshold < 1 {
		p.add("waf.inbound_threshold", "must be at least 1")
	}
	if s.OutboundThreshold < 1 {
		p.add("waf.outbound_threshold", "must be at least 1")
	}
	if s.RequestBodyLimit < 1 {
		p.add("waf.request_body_limit", "must be a positive number of bytes")
	}
	if s.RequestBodyInMemoryLimit < 1 || s.RequestBodyInMemoryLimit > s.RequestBodyLimit {
		p.add("waf.request_body_in_memory_limit", "must be positive and at most request_body_limit")
	}
	if !oneOf(s.BodyLimitAction, "reject", "partial") {
		p.add("waf.body_limit_action", "must be reject or partial")
	}
	if s.InspectResponses && s.ResponseBodyLimit < 1 {
		p.add("waf.response_body_limit", "must be a positive number of bytes")
	}
	for _, r := range s.ExcludeRules {
		if n, err := strconv.Atoi(strings.TrimSpace(r)); err != nil || n <= 0 {
			p.add("waf.exclude_rules", "%q is not a rule id", r)
		}
	}
	for _, m := range s.AllowedMethods {
		if m == "" || len(m) > 20 || strings.ToUpper(m) != m || strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			p.add("waf.allowed_methods", "%q is not an HTTP method name (upper-case letters)", m)
		}
	}
	for _, e := range s.SkipExtensions {
		if !strings.HasPrefix(e, ".") || len(e) < 2 || strings.ContainsAny(e, "/ ") {
			p.add("waf.skip_extensions", "%q must look like .ext", e)
		}
	}
}
