package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// IPFilterConfig configures IP filtering (APP-2): global allow and deny
// lists (deny wins; an empty allow list admits everyone not denied), the
// proxies whose X-Forwarded-For is believed, and named lists that gateway
// routes reference for their own allow and deny rules.
type IPFilterConfig struct {
	Allow []string `yaml:"allow,omitempty"`
	Deny  []string `yaml:"deny,omitempty"`
	// TrustedProxies are the load balancers and proxies in front of
	// Rampart. Only when the TCP peer is one of them is X-Forwarded-For
	// read, right to left, up to the first address that is not.
	TrustedProxies []string `yaml:"trusted_proxies,omitempty"`
	// Lists are named CIDR lists, each "name: CIDR CIDR …". In YAML they
	// may also be written as a mapping from name to a list of CIDRs.
	Lists IPLists `yaml:"lists,omitempty"`
}

// IPLists is a list of "name: CIDR CIDR …", a string list so the
// environment can set it (comma-separated).
type IPLists []string

// UnmarshalYAML accepts a sequence of "name: CIDR …" strings or a mapping
// from name to a list of CIDRs.
func (l *IPLists) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = s
		return nil
	case yaml.MappingNode:
		out := make(IPLists, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			var cidrs []string
			if err := n.Content[i+1].Decode(&cidrs); err != nil {
				return fmt.Errorf("line %d: ip_filter.lists.%s must be a list of CIDRs", n.Content[i+1].Line, n.Content[i].Value)
			}
			out = append(out, n.Content[i].Value+": "+strings.Join(cidrs, " "))
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: ip_filter.lists must be a mapping or a list", n.Line)
}

var ipListName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// parseIPList splits "name: CIDR CIDR …".
func parseIPList(s string) (name string, cidrs []string, err error) {
	name, rest, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || !ipListName.MatchString(name) {
		return "", nil, fmt.Errorf(`must be "name: CIDR CIDR …" with a lowercase name`)
	}
	return name, strings.Fields(rest), nil
}

// List returns the CIDRs of the named list.
func (s IPFilterConfig) List(name string) ([]string, bool) {
	for _, item := range s.Lists {
		if n, cidrs, err := parseIPList(item); err == nil && n == name {
			return cidrs, true
		}
	}
	return nil, false
}

func defaultIPFilter() IPFilterConfig { return IPFilterConfig{} }

// checkCIDRs mirrors internal/gateway/ipfilter.ParseList's rules, so a bad
// entry is reported with all other problems at load time.
func checkCIDRs(p *problems, field string, entries []string) {
	for i, raw := range entries {
		e := strings.TrimSpace(raw)
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case e == "":
			p.add(f, "must not be empty")
		case strings.Contains(e, "%"):
			p.add(f, "zoned addresses are not supported")
		case strings.Contains(e, "/"):
			pr, err := netip.ParsePrefix(e)
			if err != nil {
				p.add(f, "%q is not a CIDR such as 192.0.2.0/24 or 2001:db8::/32", clipValue(e))
			} else if pr.Masked() != pr {
				p.add(f, "%q has host bits set; did you mean %s?", e, pr.Masked())
			}
		default:
			if _, err := netip.ParseAddr(e); err != nil {
				p.add(f, "%q is not an IP address or CIDR", clipValue(e))
			}
		}
	}
}

func clipValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// check adds the section's problems; c is the whole (finalized) config.
func (s IPFilterConfig) check(p *problems, c Config) {
	checkCIDRs(p, "ip_filter.allow", s.Allow)
	checkCIDRs(p, "ip_filter.deny", s.Deny)
	checkCIDRs(p, "ip_filter.trusted_proxies", s.TrustedProxies)
	seen := map[string]bool{}
	for i, item := range s.Lists {
		field := fmt.Sprintf("ip_filter.lists[%d]", i)
		name, cidrs, err := parseIPList(item)
		if err != nil {
			p.add(field, "%v", err)
			continue
		}
		if seen[name] {
			p.add(field, "list %q is defined twice", name)
		}
		seen[name] = true
		if len(cidrs) == 0 {
			p.add(field, "list %q is empty", name)
		}
		checkCIDRs(p, "ip_filter.lists."+name, cidrs)
	}
}
