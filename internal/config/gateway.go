package config

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampartsec/rampart/internal/outbound"
)

// GatewayConfig configures the security gateway: the listener limits every
// request meets (Rampart's own pages included), the routes that send
// requests on to the customer's app, and the identity assertion they carry.
type GatewayConfig struct {
	// Upstream is the shortcut for one app behind Rampart (`--upstream`):
	// every request that is not for Rampart itself goes to this URL with
	// policy "anonymous". Routes give finer control.
	Upstream string `yaml:"upstream"`
	// UpstreamPolicy is the policy of the Upstream shortcut route.
	UpstreamPolicy string `yaml:"upstream_policy"`
	// Routes are matched by host and longest path prefix; a request that
	// matches none is served by Rampart itself. They are read from the
	// file only (a list of records has no sensible environment form), by
	// UnmarshalYAML below.
	Routes []GatewayRoute `yaml:"-"`
	// HTTPRedirectListen, when set, is a plain-HTTP listener that only
	// redirects to HTTPS (TLS-1); it serves nothing else.
	HTTPRedirectListen string `yaml:"http_redirect_listen"`

	// Timeouts of the HTTPS listener (APP-4). ReadHeaderTimeout is what
	// cuts off a slowloris client.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// UpstreamTimeout bounds the wait for an upstream's response headers.
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// MaxHeaderBytes bounds request line and headers; MaxBodyBytes bounds
	// a request body (routes may lower or raise it).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	MaxBodyBytes   int `yaml:"max_body_bytes"`
	// MaxConnections and MaxConnectionsPerIP cap open connections on the
	// HTTPS listener; 0 means no cap.
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxInFlight (whole process) and MaxInFlightPerUpstream bound the
	// requests being served at once: beyond them the gateway sheds load
	// with 503 and Retry-After instead of queueing without end.
	MaxInFlight            int `yaml:"max_in_flight"`
	MaxInFlightPerUpstream int `yaml:"max_in_flight_per_upstream"`
	// AllowPlaintextUpstreams permits http:// upstreams on non-loopback
	// hosts (a private network the operator vouches for). Loopback is
	// always allowed (TLS-3).
	AllowPlaintextUpstreams bool `yaml:"allow_plaintext_upstreams"`
	// CSRF turns the cross-origin check for state-changing requests to
	// upstream routes on (default) or off for all routes.
	CSRF bool `yaml:"csrf"`
	// Assertion configures the signed identity assertion (APP-8).
	Assertion AssertionConfig `yaml:"assertion"`
	// TicketKeyRotation is how often TLS session-ticket keys rotate; the
	// previous key still resumes sessions for one more period.
	TicketKeyRotation time.Duration `yaml:"ticket_key_rotation"`
}

// AssertionConfig sets the Rampart-Assertion JWT's lifetime. Its issuer is
// public_url; its audience is each route's.
type AssertionConfig struct {
	// TTL is the assertion lifetime, at most 60 s: it travels one hop.
	TTL time.Duration `yaml:"ttl"`
}

// GatewayRoute sends requests for Host (empty: any) and PathPrefix to
// Upstreams after the route's policy admits them.
type GatewayRoute struct {
	Name       string `yaml:"name"`
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	// StripPrefix removes PathPrefix before forwarding.
	StripPrefix bool `yaml:"strip_prefix"`
	// Upstreams are base URLs, used round-robin.
	Upstreams []string `yaml:"upstreams"`
	// Audience is the assertion's aud; default the first upstream's origin.
	Audience string `yaml:"audience"`
	// Policy is anonymous, authenticated or permission.
	Policy string `yaml:"policy"`
	// Permission is required in the route's workspace (policy permission).
	Permission string `yaml:"permission"`
	// Workspace says where the workspace id is found: "path:N" (the Nth
	// path segment after the prefix, from 1), "header:Name" or
	// "subdomain" (the left-most label of the host).
	Workspace string `yaml:"workspace"`
	// MFA requires a session that passed a second factor.
	MFA bool `yaml:"mfa"`
	// Networks, when set, admit only clients in these CIDRs.
	Networks []string `yaml:"networks"`
	// IPAllow and IPDeny are the route's own IP filter (APP-2).
	IPAllow []string `yaml:"ip_allow"`
	IPDeny  []string `yaml:"ip_deny"`
	// MaxBodyBytes overrides gateway.max_body_bytes for this route.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// WAF tunes the firewall for this route.
	WAF GatewayRouteWAF `yaml:"waf"`
	// RateLimit names rate_limit policies applied per key kind.
	RateLimit GatewayRouteLimits `yaml:"rate_limit"`
	// Headers is the header policy for upstream responses: "add" (set
	// the security headers the app did not set; default), "override"
	// (always Rampart's) or "hsts" (HSTS only). CSP replaces the default
	// Content-Security-Policy.
	Headers string `yaml:"headers"`
	CSP     string `yaml:"csp"`
	// CSRFOff disables the cross-origin check for this route only.
	CSRFOff bool `yaml:"csrf_off"`
	// AllowPlaintext permits an http:// upstream on a non-loopback host.
	AllowPlaintext bool `yaml:"allow_plaintext"`
}

// GatewayRouteWAF are a route's WAF options.
type GatewayRouteWAF struct {
	Disabled     bool   `yaml:"disabled"`
	ExcludeRules []int  `yaml:"exclude_rules"`
	Mode         string `yaml:"mode"`
}

// GatewayRouteLimits name the rate-limit policies of a route by key kind.
type GatewayRouteLimits struct {
	IP        string `yaml:"ip"`
	Account   string `yaml:"account"`
	APIKey    string `yaml:"api_key"`
	Workspace string `yaml:"workspace"`
}

// Route policies.
const (
	PolicyAnonymous     = "anonymous"
	PolicyAuthenticated = "authenticated"
	PolicyPermission    = "permission"
)

// MaxAssertionTTL bounds the assertion's lifetime (APP-8).
const MaxAssertionTTL = 60 * time.Second

func defaultGateway() GatewayConfig {
	return GatewayConfig{
		UpstreamPolicy:         PolicyAnonymous,
		ReadHeaderTimeout:      10 * time.Second,
		ReadTimeout:            30 * time.Second,
		WriteTimeout:           60 * time.Second,
		IdleTimeout:            120 * time.Second,
		UpstreamTimeout:        30 * time.Second,
		MaxHeaderBytes:         64 << 10,
		MaxBodyBytes:           10 << 20,
		MaxConnections:         10000,
		MaxConnectionsPerIP:    256,
		MaxInFlight:            4096,
		MaxInFlightPerUpstream: 1024,
		CSRF:                   true,
		Assertion:              AssertionConfig{TTL: 30 * time.Second},
		TicketKeyRotation:      24 * time.Hour,
	}
}

// AllRoutes returns the configured routes with the Upstream shortcut last
// (it matches any host and path, so it is the least specific).
func (s GatewayConfig) AllRoutes() []GatewayRoute {
	out := append([]GatewayRoute(nil), s.Routes...)
	if s.Upstream != "" {
		out = append(out, GatewayRoute{Name: "upstream", Upstreams: []string{s.Upstream}, Policy: s.UpstreamPolicy, PathPrefix: "/"})
	}
	return out
}

// check adds the section's problems; c is the whole (finalized) config.
func (s GatewayConfig) check(p *problems, c Config) {
	if s.HTTPRedirectListen != "" {
		checkAddr(p, "gateway.http_redirect_listen", s.HTTPRedirectListen)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read_header_timeout", s.ReadHeaderTimeout}, {"read_timeout", s.ReadTimeout}, {"write_timeout", s.WriteTimeout},
		{"idle_timeout", s.IdleTimeout}, {"upstream_timeout", s.UpstreamTimeout}, {"ticket_key_rotation", s.TicketKeyRotation}} {
		positive(p, "gateway."+d.name, d.v)
	}
	if s.MaxHeaderBytes < 4096 || s.MaxHeaderBytes > 1<<20 {
		p.add("gateway.max_header_bytes", "must be between 4096 and 1048576")
	}
	if s.MaxBodyBytes < 1 {
		p.add("gateway.max_body_bytes", "must be positive")
	}
	for name, v := range map[string]int{"max_connections": s.MaxConnections, "max_connections_per_ip": s.MaxConnectionsPerIP,
		"max_in_flight": s.MaxInFlight, "max_in_flight_per_upstream": s.MaxInFlightPerUpstream} {
		if v < 0 {
			p.add("gateway."+name, "must not be negative")
		}
	}
	if s.Assertion.TTL <= 0 || s.Assertion.TTL > MaxAssertionTTL {
		p.add("gateway.assertion.ttl", "must be positive and at most %s", MaxAssertionTTL)
	}
	if s.Upstream != "" {
		checkUpstream(p, "gateway.upstream", s.Upstream, s.AllowPlaintextUpstreams)
		checkPolicy(p, "gateway.upstream_policy", s.UpstreamPolicy)
	}
	names := map[string]bool{}
	for i, r := range s.Routes {
		f := "gateway.routes[" + strconv.Itoa(i) + "]"
		if r.Name != "" {
			if names[r.Name] {
				p.add(f+".name", "duplicate route name %q", r.Name)
			}
			names[r.Name] = true
		}
		if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
			p.add(f+".path_prefix", "must start with /")
		}
		if len(r.Upstreams) == 0 {
			p.add(f+".upstreams", "name at least one upstream URL")
		}
		for _, u := range r.Upstreams {
			checkUpstream(p, f+".upstreams", u, s.AllowPlaintextUpstreams || r.AllowPlaintext)
		}
		checkPolicy(p, f+".policy", r.Policy)
		if r.Policy == PolicyPermission {
			if r.Permission == "" {
				p.add(f+".permission", "policy permission needs a permission")
			}
			if r.Workspace == "" {
				p.add(f+".workspace", "policy permission needs a workspace source (path:N, header:Name or subdomain)")
			}
		}
		if r.Workspace != "" && !validWorkspaceSource(r.Workspace) {
			p.add(f+".workspace", "must be path:N (N >= 1), header:Name or subdomain")
		}
		for field, list := range map[string][]string{"networks": r.Networks, "ip_allow": r.IPAllow, "ip_deny": r.IPDeny} {
			for _, cidr := range list {
				if _, err := parseGatewayPrefix(cidr); err != nil {
					p.add(f+"."+field, "%q is not an address or CIDR", cidr)
				}
			}
		}
		if r.MaxBodyBytes < 0 {
			p.add(f+".max_body_bytes", "must not be negative")
		}
		switch r.Headers {
		case "", "add", "override", "hsts":
		default:
			p.add(f+".headers", "must be add, override or hsts")
		}
		switch r.WAF.Mode {
		case "", "block", "detect":
		default:
			p.add(f+".waf.mode", "must be block or detect")
		}
	}
}

func checkPolicy(p *problems, field, v string) {
	switch v {
	case "", PolicyAnonymous, PolicyAuthenticated, PolicyPermission:
	default:
		p.add(field, "must be anonymous, authenticated or permission")
	}
}

// checkUpstream requires an absolute http(s) URL; plaintext to a host that
// is not loopback needs an explicit allowance (TLS-3).
func checkUpstream(p *problems, field, raw string, allowPlain bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		p.add(field, "%q must be an absolute http or https URL without credentials", raw)
		return
	}
	if u.Scheme == "http" && !allowPlain && !outbound.IsLoopback(u.Hostname()) {
		p.add(field, "%q is plaintext to a non-loopback host; use https or set allow_plaintext", raw)
	}
}

// parseGatewayPrefix accepts a CIDR or a single address (as a /32 or /128).
func parseGatewayPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		return pfx.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func validWorkspaceSource(v string) bool {
	if v == "subdomain" {
		return true
	}
	kind, arg, ok := strings.Cut(v, ":")
	if !ok || arg == "" {
		return false
	}
	switch kind {
	case "header":
		return true
	case "path":
		n := 0
		for _, r := range arg {
			if r < '0' || r > '9' {
				return false
			}
			n = n*10 + int(r-'0')
			if n > 64 {
				return false
			}
		}
		return n >= 1
	}
	return false
}

// gatewayFields is GatewayConfig without its methods, and gatewayDoc adds
// the routes back for YAML: the config's environment mapping walks every
// field and cannot express a list of records, so Routes is hidden from it
// (yaml:"-") and read here instead.
type gatewayFields GatewayConfig

type gatewayDoc struct {
	gatewayFields `yaml:",inline"`
	Routes        []GatewayRoute `yaml:"routes,omitempty"`
}

// UnmarshalYAML decodes the section strictly (unknown keys are errors, as
// in the rest of the file), keeping defaults for absent keys.
func (s *GatewayConfig) UnmarshalYAML(n *yaml.Node) error {
	doc := gatewayDoc{gatewayFields: gatewayFields(*s), Routes: s.Routes}
	if err := decodeStrict(n, "gateway", &doc); err != nil {
		return err
	}
	*s = GatewayConfig(doc.gatewayFields)
	s.Routes = doc.Routes
	return nil
}

// MarshalYAML writes the section with its routes.
func (s GatewayConfig) MarshalYAML() (any, error) {
	return gatewayDoc{gatewayFields: gatewayFields(s), Routes: s.Routes}, nil
}
