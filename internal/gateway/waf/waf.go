// Package waf is Rampart's web application firewall: Coraza running the
// OWASP Core Rule Set (CRS v4, embedded), compiled once per process and
// shared by every route of the gateway (control APP-1).
//
// Per-route differences (disabled, rules excluded, detect instead of block)
// are applied per transaction on the one compiled rule set, so adding a
// route or a site costs a few hundred bytes, not another copy of the CRS.
package waf

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/rampartsec/rampart/internal/fault"
)

// Modes of the WAF: block interrupts requests whose anomaly score reaches the
// threshold; detect only reports what would have been blocked.
const (
	ModeBlock  = "block"
	ModeDetect = "detect"
)

// Body-limit actions: reject answers 413 (the CRS default, fail closed);
// partial inspects the first RequestBodyLimit bytes and lets the rest through.
const (
	BodyLimitReject  = "reject"
	BodyLimitPartial = "partial"
)

// Config is the process-wide WAF configuration. The zero value is not
// usable; Defaults fills the CRS defaults.
type Config struct {
	Enabled       bool
	Mode          string // "block" | "detect"
	ParanoiaLevel int    // 1–4
	// Anomaly score thresholds (CRS defaults 5 inbound, 4 outbound).
	InboundThreshold, OutboundThreshold int
	// RequestBodyLimit is the largest body inspected; what happens beyond it
	// is BodyLimitAction. RequestBodyInMemoryLimit is how much of it is kept
	// in memory before Coraza spills to a temporary file.
	RequestBodyLimit, RequestBodyInMemoryLimit int64
	BodyLimitAction                            string // "reject" (default) | "partial"
	// InspectResponses turns on phase 3/4 (response headers and bodies of
	// text/plain, text/html, text/xml and application/json responses, up to
	// ResponseBodyLimit). Streaming responses (text/event-stream) and
	// upgrades (WebSocket) are never buffered.
	InspectResponses  bool
	ResponseBodyLimit int64
	// ExcludeRules are CRS rule ids removed for every route (SecRuleRemoveById
	// at compile time).
	ExcludeRules []int
	// SkipExtensions lists path extensions (".css", ".png", …) for which a
	// bodiless GET or HEAD with no query string and a plain path is not
	// inspected at all. Nil or empty inspects everything.
	SkipExtensions []string
	// AllowedMethods replaces the CRS's allowed HTTP methods (rule 911100;
	// the CRS default is GET HEAD POST OPTIONS, which blocks every PUT,
	// PATCH and DELETE of a REST API). Nil keeps the CRS default.
	AllowedMethods []string
	// Directives is extra SecLang appended after the CRS.
	Directives string
}

// Defaults returns the CRS defaults: enabled, blocking, paranoia level 1,
// thresholds 5/4, 13 MiB body limit with 128 KiB in memory (the values of
// Coraza's recommended configuration), responses not inspected.
func Defaults() Config {
	return Config{
		Enabled:                  true,
		Mode:                     ModeBlock,
		ParanoiaLevel:            1,
		InboundThreshold:         5,
		OutboundThreshold:        4,
		RequestBodyLimit:         13 << 20,
		RequestBodyInMemoryLimit: 128 << 10,
		BodyLimitAction:          BodyLimitReject,
		ResponseBodyLimit:        512 << 10,
	}
}

// DefaultSkipExtensions are the static-asset extensions a configuration
// usually skips; see Config.SkipExtensions.
func DefaultSkipExtensions() []string {
	return []string{".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif",
		".ico", ".svg", ".woff", ".woff2", ".ttf", ".otf"}
}

// RouteOptions are one route's differences from the process-wide WAF.
type RouteOptions struct {
	Disabled     bool
	ExcludeRules []int
	Mode         string // "" inherits the process mode
}

// Validate reports a route option that the gateway's config check should
// refuse; Handler itself fails closed (an unknown mode blocks).
func (ro RouteOptions) Validate() error {
	if ro.Mode != "" && ro.Mode != ModeBlock && ro.Mode != ModeDetect {
		return fault.Invalidf("waf_route_mode", "waf mode must be block or detect")
	}
	for _, id := range ro.ExcludeRules {
		if id <= 0 {
			return fault.Invalidf("waf_route_exclude", "waf rule ids must be positive")
		}
	}
	return nil
}

// Interruption describes why a request was (or in detect mode would have
// been) stopped. It never carries request data: Message is the rule's
// message template with its macros masked.
type Interruption struct {
	RuleID  int
	Status  int    // HTTP status to answer with (403, or 413 for a body over the limit, 400 for an unreadable body)
	Action  string // "deny", "drop", "redirect"
	Message string
	Matched []int // ids of the rules that matched and carry a message, in order
	Phase   int   // 1–2 request, 3–4 response
}

// Info is what the APP-1 live check shows.
type Info struct {
	Enabled           bool
	Mode              string
	ParanoiaLevel     int
	RulesLoaded       int
	CRSVersion        string
	InboundThreshold  int
	OutboundThreshold int
	InspectResponses  bool
	RequestBodyLimit  int64
	BodyLimitAction   string
	ExcludedRules     []int
}

// WAF is the compiled rule set; it is safe for concurrent use and shared by
// every route.
type WAF struct {
	cfg      Config
	waf      coraza.WAF
	withOpts experimental.WAFWithOptions
	log      *slog.Logger
	rules    int
	crsVer   string
	block    bool
	skipExt  map[string]struct{}
	ids      atomic.Uint64 // transaction ids for Coraza's debug log; cheaper than its random ones

	// observe, when set (tests only), receives every finished transaction's
	// matched rules before the transaction is closed.
	observe func(r *http.Request, matched []types.MatchedRule)
}

// ruleRemover and detectionInterrupter are the per-transaction Coraza APIs
// (present on Coraza's transaction, not yet on its public interface) that let
// one compiled WAF serve routes with different exclusions and modes.
type ruleRemover interface{ RemoveRuleByID(id int) }

type detectionInterrupter interface {
	DetectionOnlyInterruption() *types.Interruption
}

var crsVersionRx = regexp.MustCompile(`OWASP_CRS/(\d+\.\d+\.\d+)`)

// New checks cfg and compiles the CRS once. A disabled config returns a WAF
// whose handlers pass requests straight through.
func New(cfg Config, log *slog.Logger) (*WAF, error) {
	return newWAF(cfg, log, "")
}

// newWAF is New with directives inserted before the CRS setup, which is
// where the CRS regression suite's test settings (rule 900005) belong.
func newWAF(cfg Config, log *slog.Logger, preCRS string) (*WAF, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.BodyLimitAction == "" {
		cfg.BodyLimitAction = BodyLimitReject
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeBlock
	}
	w := &WAF{cfg: cfg, log: log, block: cfg.Mode == ModeBlock}
	if !cfg.Enabled {
		return w, nil
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w.skipExt = make(map[string]struct{}, len(cfg.SkipExtensions))
	for _, e := range cfg.SkipExtensions {
		e = strings.ToLower(e)
		if !strings.HasPrefix(e, ".") {
			e = "." + e
		}
		w.skipExt[e] = struct{}{}
	}
	if setup, err := fs.ReadFile(coreruleset.FS, "@crs-setup.conf.example"); err == nil {
		if m := crsVersionRx.FindSubmatch(setup); m != nil {
			w.crsVer = string(m[1])
		}
	}
	wc := coraza.NewWAFConfig().
		WithRootFS(coreruleset.FS).
		WithDirectives(cfg.directives(preCRS))
	cw, err := coraza.NewWAF(wc)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "waf_compile", "the WAF rules do not compile", err)
	}
	opts, ok := cw.(experimental.WAFWithOptions)
	if !ok {
		return nil, fault.New(fault.Internal, "waf_api", "coraza lacks transaction options")
	}
	probe := cw.NewTransaction()
	_, canRemove := probe.(ruleRemover)
	_, canDetect := probe.(detectionInterrupter)
	_ = probe.Close()
	if !canRemove || !canDetect {
		// Without these the per-route options cannot be honoured on a shared
		// rule set; refuse to start rather than silently ignore them.
		return nil, fault.New(fault.Internal, "waf_api", "coraza lacks per-transaction rule removal")
	}
	w.waf, w.withOpts = cw, opts
	if rc, ok := cw.(experimental.WAFWithRules); ok {
		w.rules = rc.RulesCount()
	}
	return w, nil
}

// validMethod reports whether m is an HTTP method name SecLang can hold
// as is: 1 to 20 upper-case letters.
func validMethod(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

func (c Config) validate() error {
	var p []string
	if c.Mode != ModeBlock && c.Mode != ModeDetect {
		p = append(p, "mode must be block or detect")
	}
	if c.ParanoiaLevel < 1 || c.ParanoiaLevel > 4 {
		p = append(p, "paranoia level must be 1 to 4")
	}
	if c.InboundThreshold < 1 || c.OutboundThreshold < 1 {
		p = append(p, "anomaly thresholds must be at least 1")
	}
	if c.RequestBodyLimit < 1 || c.RequestBodyInMemoryLimit < 1 || c.RequestBodyInMemoryLimit > c.RequestBodyLimit {
		p = append(p, "body limits must be positive and the in-memory limit at most the body limit")
	}
	if c.InspectResponses && c.ResponseBodyLimit < 1 {
		p = append(p, "response body limit must be positive")
	}
	if c.BodyLimitAction != BodyLimitReject && c.BodyLimitAction != BodyLimitPartial {
		p = append(p, "body limit action must be reject or partial")
	}
	for _, m := range c.AllowedMethods {
		if !validMethod(m) {
			p = append(p, "allowed methods must be HTTP method names (A-Z, at most 20)")
			break
		}
	}
	for _, id := range c.ExcludeRules {
		if id <= 0 {
			p = append(p, "excluded rule ids must be positive")
			break
		}
	}
	if len(p) > 0 {
		return fault.Invalidf("waf_config", "%s", strings.Join(p, "; "))
	}
	return nil
}

// directives renders the SecLang the WAF compiles: Coraza's recommended
// engine settings (minus its audit log), the configured limits and scores,
// the CRS setup and rules, global exclusions and the operator's extras.
func (c Config) directives(preCRS string) string {
	var b strings.Builder
	engine := "On"
	if c.Mode == ModeDetect {
		engine = "DetectionOnly"
	}
	action := "Reject"
	if c.BodyLimitAction == BodyLimitPartial {
		action = "ProcessPartial"
	}
	resp := "Off"
	if c.InspectResponses {
		resp = "On"
	}
	respLimit := c.ResponseBodyLimit
	if respLimit < 1 {
		respLimit = 512 << 10
	}
	inMem := c.RequestBodyInMemoryLimit
	// Coraza rejects a body whose length equals its limit; one more byte
	// makes "limit" mean "largest accepted body".
	fmt.Fprintf(&b, `SecRuleEngine %s
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyJsonDepthLimit 1024
SecRequestBodyLimit %d
SecRequestBodyInMemoryLimit %d
SecRequestBodyLimitAction %s
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"
SecResponseBodyAccess %s
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecResponseBodyLimit %d
SecResponseBodyLimitAction ProcessPartial
SecAuditEngine Off
`, engine, c.RequestBodyLimit+1, inMem, action, resp, respLimit)
	if preCRS != "" {
		b.WriteString(preCRS)
		b.WriteByte('\n')
	}
	if len(c.AllowedMethods) > 0 {
		// Validated (A-Z only), so the list cannot break out of the quotes.
		fmt.Fprintf(&b, "SecAction \"id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=%s'\"\n", strings.Join(c.AllowedMethods, " "))
	}
	fmt.Fprintf(&b, `SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d"
SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=%d"
Include @crs-setup.conf.example
Include @owasp_crs/*.conf
`, c.ParanoiaLevel, c.InboundThreshold, c.OutboundThreshold)
	if len(c.ExcludeRules) > 0 {
		ids := slices.Clone(c.ExcludeRules)
		slices.Sort(ids)
		b.WriteString("SecRuleRemoveById")
		for _, id := range slices.Compact(ids) {
			b.WriteString(" " + strconv.Itoa(id))
		}
		b.WriteByte('\n')
	}
	if c.Directives != "" {
		b.WriteString(c.Directives)
		b.WriteByte('\n')
	}
	return b.String()
}

// Info reports the loaded configuration for the APP-1 live check.
func (w *WAF) Info() Info {
	if w == nil {
		return Info{}
	}
	return Info{
		Enabled:           w.cfg.Enabled && w.waf != nil,
		Mode:              w.cfg.Mode,
		ParanoiaLevel:     w.cfg.ParanoiaLevel,
		RulesLoaded:       w.rules,
		CRSVersion:        w.crsVer,
		InboundThreshold:  w.cfg.InboundThreshold,
		OutboundThreshold: w.cfg.OutboundThreshold,
		InspectResponses:  w.cfg.InspectResponses,
		RequestBodyLimit:  w.cfg.RequestBodyLimit,
		BodyLimitAction:   w.cfg.BodyLimitAction,
		ExcludedRules:     slices.Clone(w.cfg.ExcludeRules),
	}
}
