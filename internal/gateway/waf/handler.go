package waf

import (
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"
)

// handler is one route's view of the shared WAF: a few words of state, no
// rules of its own.
type handler struct {
	w        *WAF
	next     http.Handler
	block    bool
	exclude  []int
	onBlock  func(http.ResponseWriter, *http.Request, Interruption)
	onDetect func(*http.Request, Interruption)
}

// Handler inspects requests (and responses when configured) for one route.
// On a blocking interruption it calls onBlock instead of next (onBlock writes
// the response and records the audit event); in detect mode it calls
// onDetect and continues. A nil onBlock answers a plain status; a nil
// onDetect only logs.
func (w *WAF) Handler(next http.Handler, ro RouteOptions, onBlock func(http.ResponseWriter, *http.Request, Interruption), onDetect func(*http.Request, Interruption)) http.Handler {
	if w == nil || w.waf == nil || ro.Disabled {
		return next
	}
	block := w.block
	switch ro.Mode {
	case "":
	case ModeDetect:
		block = false
	default: // block, or an unknown mode: fail closed
		block = true
	}
	ex := slices.Clone(ro.ExcludeRules)
	slices.Sort(ex)
	h := &handler{w: w, next: next, block: block, exclude: slices.Compact(ex), onBlock: onBlock, onDetect: onDetect}
	if h.onBlock == nil {
		h.onBlock = plainBlock
	}
	return h
}

func plainBlock(rw http.ResponseWriter, _ *http.Request, it Interruption) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(it.Status)
	_, _ = io.WriteString(rw, http.StatusText(it.Status)+"\n")
}

// skippable is true for a request in which the CRS cannot find anything the
// upstream would act on: a bodiless GET/HEAD of a static asset with no query
// and a path of plain characters only (no escapes, no dot segments).
func (w *WAF) skippable(r *http.Request) bool {
	if len(w.skipExt) == 0 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || r.URL.RawQuery != "" || r.URL.ForceQuery {
		return false
	}
	p := r.RequestURI
	if p == "" {
		p = r.URL.Path
	}
	dot := -1
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '/', c == '-', c == '_':
		case c == '.':
			if i > 0 && p[i-1] == '.' {
				return false // ".." anywhere
			}
			dot = i
		default:
			return false
		}
	}
	if dot < 0 || p[0] != '/' || strings.Contains(p, "//") || strings.Contains(p, "/.") {
		return false
	}
	ext := p[dot:]
	if strings.IndexByte(ext, '/') >= 0 {
		return false
	}
	_, ok := w.skipExt[strings.ToLower(ext)]
	return ok
}

func (h *handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := h.w
	if w.skippable(r) {
		h.next.ServeHTTP(rw, r)
		return
	}
	// Fail closed before reading anything: a declared body over the limit
	// cannot pass in reject mode.
	// (Detect routes go on to Coraza, which reports the limit and passes the
	// whole body on.)
	if h.block && w.cfg.BodyLimitAction == BodyLimitReject && r.ContentLength > w.cfg.RequestBodyLimit {
		h.interrupted(rw, r, Interruption{Status: http.StatusRequestEntityTooLarge, Action: "deny", Message: "request body over the limit", Phase: 2}, true)
		return
	}
	id := strconv.FormatUint(w.ids.Add(1), 36)
	tx := w.withOpts.NewTransactionWithOptions(experimental.Options{ID: id, Context: r.Context()})
	s := &txState{h: h, tx: tx, r: r}
	defer s.close()
	for _, ruleID := range h.exclude {
		tx.(ruleRemover).RemoveRuleByID(ruleID)
	}
	if tx.IsRuleEngineOff() {
		h.next.ServeHTTP(rw, r)
		return
	}
	it, err := s.processRequest()
	if err != nil {
		st := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			st = http.StatusRequestEntityTooLarge
		}
		// The body could not be read: nothing sensible can be forwarded.
		h.interrupted(rw, r, Interruption{Status: st, Action: "deny", Message: "request body unreadable", Phase: 2}, true)
		return
	}
	if it == nil {
		it = tx.(detectionInterrupter).DetectionOnlyInterruption()
	}
	if it != nil {
		s.reported = true
		if h.interrupted(rw, r, s.convert(it, 2), h.block) {
			return
		}
		if tx.IsInterrupted() {
			// A detect route on a blocking WAF: Coraza stopped evaluating,
			// so the response is not inspected.
			h.next.ServeHTTP(rw, r)
			return
		}
	}
	if !w.cfg.InspectResponses || isStreamingRequest(r) {
		h.next.ServeHTTP(rw, r)
		return
	}
	ri := &respInterceptor{s: s, rw: rw, status: http.StatusOK}
	h.next.ServeHTTP(wrapWriter(ri), r)
	ri.finish()
}

// interrupted reports it and, when blocking, answers through onBlock.
func (h *handler) interrupted(rw http.ResponseWriter, r *http.Request, it Interruption, block bool) bool {
	if block {
		h.w.log.Warn("waf blocked a request", "rule", it.RuleID, "status", it.Status, "matched", it.Matched, "phase", it.Phase)
		h.onBlock(rw, r, it)
		return true
	}
	h.w.log.Info("waf would have blocked a request", "rule", it.RuleID, "status", it.Status, "matched", it.Matched, "phase", it.Phase)
	if h.onDetect != nil {
		h.onDetect(r, it)
	}
	return false
}

// isStreamingRequest is true for requests whose response must never be
// buffered: protocol upgrades (WebSocket) and server-sent event streams.
func isStreamingRequest(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" || r.Method == http.MethodConnect {
		return true
	}
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// txState is one request's transaction.
type txState struct {
	h        *handler
	tx       types.Transaction
	r        *http.Request
	reported bool // an interruption was already reported for this request
	logged   bool // phase 5 ran
}

func (s *txState) close() {
	if s.h.w.observe != nil {
		if !s.logged && s.h.w.cfg.InspectResponses {
			s.tx.ProcessLogging()
		}
		s.h.w.observe(s.r, s.tx.MatchedRules())
	}
	_ = s.tx.Close()
}

// processRequest runs phases 1 and 2. The request body is read through
// Coraza's buffer and handed on intact (buffer first, then the unread rest).
func (s *txState) processRequest() (*types.Interruption, error) {
	tx, r := s.tx, s.r
	client, cport := splitHostPort(r.RemoteAddr)
	server, sport := "", 0
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		server, sport = splitHostPort(la.String())
	}
	tx.ProcessConnection(client, cport, server, sport)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(r.Host)
	}
	// net/http moves Transfer-Encoding out of the headers; CRS checks it
	// (request smuggling, 920171 and friends).
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil
	}
	if tx.IsRequestBodyAccessible() && r.Body != nil && r.Body != http.NoBody {
		it, _, err := tx.ReadRequestBodyFrom(r.Body)
		if err != nil {
			return nil, err
		}
		rbr, rerr := tx.RequestBodyReader()
		if rerr != nil {
			return nil, rerr
		}
		r.Body = &body{Reader: io.MultiReader(rbr, r.Body), Closer: r.Body}
		if it != nil {
			return it, nil
		}
	}
	return tx.ProcessRequestBody()
}

type body struct {
	io.Reader
	io.Closer
}

func splitHostPort(addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, 0
	}
	p, _ := strconv.Atoi(addr[i+1:])
	return strings.Trim(addr[:i], "[]"), p
}

var msgRx = regexp.MustCompile(`msg:'([^']*)'`)
var macroRx = regexp.MustCompile(`%\{[^}]*\}`)

// convert turns Coraza's interruption into ours. The message comes from the
// rule's source with macros masked, so no request data can ride along.
func (s *txState) convert(it *types.Interruption, phase int) Interruption {
	out := Interruption{RuleID: it.RuleID, Action: it.Action, Status: it.Status, Phase: phase}
	if out.Status == 0 || out.Action != "deny" {
		out.Status = http.StatusForbidden
	}
	if out.Action == "" {
		out.Action = "deny"
	}
	for _, m := range s.tx.MatchedRules() {
		md := m.Rule()
		if md == nil {
			continue
		}
		if md.ID() == it.RuleID && out.Message == "" {
			if sm := msgRx.FindStringSubmatch(md.Raw()); sm != nil {
				out.Message = macroRx.ReplaceAllString(sm[1], "*")
			}
		}
		if lr, ok := m.(interface{ Log() bool }); ok && !lr.Log() {
			continue // nolog bookkeeping rules (initialisation, score updates)
		}
		if md.ID() != 0 && !slices.Contains(out.Matched, md.ID()) {
			out.Matched = append(out.Matched, md.ID())
		}
	}
	if it.RuleID == 0 && it.Status == http.StatusRequestEntityTooLarge {
		out.Status, out.Message = http.StatusRequestEntityTooLarge, "request body over the limit"
	}
	return out
}
