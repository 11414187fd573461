package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// AuditLog is what the web layer needs of the tamper-evident audit log
// (audit.MerkleLog): filtered reads, the signed checkpoints and proofs.
type AuditLog interface {
	Search(ctx context.Context, q audit.Query) ([]audit.Event, error)
	Latest(ctx context.Context) (*audit.Checkpoint, error)
	VerifierKey() string
	InclusionProof(ctx context.Context, index, size int64) (tlog.Hash, tlog.RecordProof, error)
	ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error)
	// KeyedHash is how a sensitive value (an email) is stored, so it can
	// be searched by exact value without being stored.
	KeyedHash(name, value string) []byte
}

const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
	// maxAuditQuery bounds the raw query string before it is parsed.
	maxAuditQuery = 2048
	// maxAuditFilter bounds actor and action filters; longer values match
	// nothing a Rampart component writes.
	maxAuditFilter = 128
	// exportWriteWindow is how long each exported page may take to reach
	// the client: a long export keeps going while the client reads, instead
	// of dying at the server's write timeout.
	exportWriteWindow = 60 * time.Second
)

// auditParams are the filters every audit listing takes.
var auditParams = []string{"actor", "action", "outcome", "since", "until", "cursor", "limit", "email"}

var (
	errQueryInvalid      = fault.New(fault.Invalid, "query_invalid", "invalid query string")
	errEventNotFound     = fault.New(fault.NotFound, "event_not_found", "no such audit event")
	errCheckpointMissing = fault.New(fault.NotFound, "checkpoint_not_found", "no checkpoint has been signed yet")
	errAuthzUnavailable  = fault.New(fault.Unavailable, "authz_unavailable", "the permission check could not be made; try again")
)

// auditRoutes registers the audit trail API (docs/API.md, "Audit trail").
// A handler built without the log has no audit API at all.
func (s *server) auditRoutes(mux *http.ServeMux) {
	if s.auditLog == nil {
		return
	}
	mux.Handle("GET /v1/workspaces/{ws}/audit", noStore(s.apiWorkspaceAudit))
	mux.Handle("GET /v1/workspaces/{ws}/audit/export", noStore(s.apiWorkspaceAuditExport))
	mux.Handle("GET /v1/operator/audit", noStore(s.apiOperatorAudit))
	mux.Handle("GET /v1/audit/checkpoint", noStore(s.apiAuditCheckpoint))
	mux.HandleFunc("GET /v1/audit/verifier-key", s.apiAuditVerifierKey)
	mux.Handle("GET /v1/audit/proof/consistency", noStore(s.apiAuditConsistency))
	mux.Handle("GET /v1/audit/proof/inclusion", noStore(s.apiAuditInclusion))
}

// AuditEventJSON is the one JSON shape of an audit event, shared by the API
// and `rampart audit export`.
type AuditEventJSON struct {
	ID        int64             `json:"id"`
	Time      time.Time         `json:"time"`
	ActorType string            `json:"actor_type"`
	ActorID   string            `json:"actor_id,omitempty"`
	Workspace string            `json:"workspace,omitempty"`
	Action    string            `json:"action"`
	Target    string            `json:"target,omitempty"`
	Outcome   audit.Outcome     `json:"outcome"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	TraceID   string            `json:"trace_id,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

// ToAuditEventJSON converts an event to its JSON shape.
func ToAuditEventJSON(e audit.Event) AuditEventJSON {
	return AuditEventJSON{ID: e.ID, Time: e.Time.UTC(), ActorType: e.ActorType, ActorID: e.ActorID, Workspace: e.Workspace, Action: e.Action,
		Target: e.Target, Outcome: e.Outcome, IP: e.IP, UserAgent: e.UserAgent, RequestID: e.RequestID, TraceID: e.TraceID, Details: e.Details}
}

// strictQuery parses the query string and refuses what a well-behaved
// client never sends: malformed escapes, names outside allowed, a name
// twice (which value would win is a classic filter bypass), and values that
// are not text (PostgreSQL refuses invalid UTF-8 and NUL, and that must be
// a 400 here, not a 500 there).
func strictQuery(r *http.Request, allowed ...string) (url.Values, error) {
	if len(r.URL.RawQuery) > maxAuditQuery {
		return nil, fault.New(fault.Invalid, "query_invalid", "the query string is too long")
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errQueryInvalid
	}
	for name, vals := range v {
		if !slices.Contains(allowed, name) {
			return nil, fault.New(fault.Invalid, "query_invalid", "unknown query parameter; allowed: "+strings.Join(allowed, ", "))
		}
		if len(vals) != 1 {
			return nil, fault.New(fault.Invalid, "query_invalid", "each query parameter may be given once")
		}
		if !utf8.ValidString(vals[0]) || strings.ContainsRune(vals[0], 0) {
			return nil, errQueryInvalid
		}
	}
	return v, nil
}

// parseCount reads a decimal integer in [lo, hi] in its canonical form
// only ("007", "+7" and " 7" are refused, so one value has one spelling).
func parseCount(v, name string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi || strconv.FormatInt(n, 10) != v {
		return 0, fault.Invalidf("query_invalid", "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// auditFilter reads the common filters: actor, action (exact, or a prefix
// when it ends in "."), outcome, since and until (RFC 3339; since
// inclusive, until exclusive), cursor (the last id seen) and limit.
func (s *server) auditFilter(v url.Values) (audit.Query, error) {
	q := audit.Query{ActorID: v.Get("actor"), Action: v.Get("action"), Outcome: audit.Outcome(v.Get("outcome")), AfterIndex: -1, Limit: defaultAuditLimit}
	switch q.Outcome {
	case "", audit.Success, audit.Failure, audit.Denied:
	default:
		return q, fault.New(fault.Invalid, "query_invalid", "outcome must be success, failure or denied")
	}
	if len(q.ActorID) > maxAuditFilter || len(q.Action) > maxAuditFilter {
		return q, fault.New(fault.Invalid, "query_invalid", "actor and action are at most 128 bytes")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, fault.New(fault.Invalid, "query_invalid", p.name+" must be an RFC 3339 time")
			}
			*p.dst = t.UTC()
		}
	}
	// email: exact search on the keyed hash the log stores instead of the
	// address (AUD-4); the address itself is never stored or compared.
	if e := v.Get("email"); e != "" {
		if len(e) > 254 {
			return q, fault.New(fault.Invalid, "query_invalid", "email is at most 254 bytes")
		}
		q.KeyedName, q.KeyedValue = "email", s.auditLog.KeyedHash("email", strings.ToLower(strings.TrimSpace(e)))
	}
	if s := v.Get("cursor"); s != "" {
		n, err := parseCount(s, "cursor", 0, 1<<62)
		if err != nil {
			return q, err
		}
		q.AfterIndex = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := parseCount(s, "limit", 1, maxAuditLimit)
		if err != nil {
			return q, err
		}
		q.Limit = int(n)
	}
	return q, nil
}

// auditPage is one page of a listing; NextCursor is absent on the last page.
type auditPage struct {
	Events     []AuditEventJSON `json:"events"`
	NextCursor *int64           `json:"next_cursor,omitempty"`
}

func (s *server) writeAuditPage(w http.ResponseWriter, r *http.Request, q audit.Query) {
	events, err := s.auditLog.Search(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page := auditPage{Events: make([]AuditEventJSON, 0, len(events))}
	for _, e := range events {
		page.Events = append(page.Events, ToAuditEventJSON(e))
	}
	if len(events) == q.Limit && len(events) > 0 {
		last := events[len(events)-1].ID
		page.NextCursor = &last
	}
	writeJSON(w, http.StatusOK, page)
}

// workspaceAuditQuery authenticates a workspace audit request, requires
// audit.read there and reads the filters (authorization first, so another
// tenant gets the same 404 whatever it sends).
func (s *server) workspaceAuditQuery(w http.ResponseWriter, r *http.Request, params []string) (audit.Query, bool) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return audit.Query{}, false
	}
	if err := s.ten.Require(r.Context(), p, ws, tenancy.PermAuditRead); err != nil {
		s.writeError(w, r, err)
		return audit.Query{}, false
	}
	v, err := strictQuery(r, params...)
	if err == nil {
		var q audit.Query
		q, err = s.auditFilter(v)
		if err == nil {
			q.Workspace = ws
			return q, true
		}
	}
	s.writeError(w, r, err)
	return audit.Query{}, false
}

// apiWorkspaceAudit lists the workspace's events, operator accesses
// included (they carry the workspace), oldest first, a page at a time.
func (s *server) apiWorkspaceAudit(w http.ResponseWriter, r *http.Request) {
	q, ok := s.workspaceAuditQuery(w, r, auditParams)
	if !ok {
		return
	}
	s.writeAuditPage(w, r, q)
}

// apiWorkspaceAuditExport streams every matching event as JSON Lines,
// paging internally. The range ends when the export began (or at until, if
// earlier), so a busy workspace cannot keep an export running forever. A
// failure after the first line aborts the connection, so a client never
// mistakes a cut stream for a complete one.
func (s *server) apiWorkspaceAuditExport(w http.ResponseWriter, r *http.Request) {
	q, ok := s.workspaceAuditQuery(w, r, slices.DeleteFunc(slices.Clone(auditParams), func(p string) bool { return p == "limit" }))
	if !ok {
		return
	}
	// Event times are stored to the microsecond; include the current one.
	bound := s.now().UTC().Truncate(time.Microsecond).Add(time.Microsecond)
	if q.Until.IsZero() || q.Until.After(bound) {
		q.Until = bound
	}
	q.Limit = maxAuditLimit
	ctx := r.Context()
	events, err := s.auditLog.Search(ctx, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for {
		// A network deadline is wall-clock time, not the app's clock.
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
		for _, e := range events {
			if err := enc.Encode(ToAuditEventJSON(e)); err != nil {
				return // the client went away
			}
		}
		_ = rc.Flush()
		if len(events) < q.Limit {
			return
		}
		q.AfterIndex = events[len(events)-1].ID
		if events, err = s.auditLog.Search(ctx, q); err != nil {
			if ctx.Err() == nil {
				s.log.Error("audit export failed mid-stream", "request_id", requestID(ctx), "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}
}

// apiOperatorAudit is operator staff's view across workspaces. The query
// is itself recorded before it is answered: staff reading customers' trails
// leave a trail (fail closed: no record, no answer).
func (s *server) apiOperatorAudit(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	op, err := s.ten.OperatorPrincipal(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := strictQuery(r, append(slices.Clone(auditParams), "workspace")...)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q, err := s.auditFilter(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q.Workspace = v.Get("workspace")
	if len(q.Workspace) > maxIDLen {
		s.writeError(w, r, fault.New(fault.Invalid, "query_invalid", "workspace is not a workspace id"))
		return
	}
	details := map[string]string{"limit": strconv.Itoa(q.Limit)}
	for _, name := range auditParams {
		if x := v.Get(name); x != "" {
			details[name] = x
		}
	}
	if s.audit == nil {
		s.writeError(w, r, fault.New(fault.Unavailable, "audit_unavailable", "the audit log is unavailable"))
		return
	}
	if err := s.audit.Record(r.Context(), audit.Event{ActorType: audit.ActorOperator, ActorID: op.UserID, Workspace: q.Workspace,
		Action: "audit.operator_query", Target: "audit", Outcome: audit.Success, Details: details}); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAuditPage(w, r, q)
}

// apiAuditCheckpoint publishes the latest signed checkpoint (a C2SP signed
// note) for witnesses and auditors.
func (s *server) apiAuditCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.auditLog.Latest(r.Context())
	if err != nil {
		if fault.Is(err, fault.NotFound) {
			err = errCheckpointMissing
		}
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cp.Note)
}

// apiAuditVerifierKey publishes the key checkpoints are signed with, so a
// checkpoint can be checked without trusting this server's word for it.
func (s *server) apiAuditVerifierKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(s.auditLog.VerifierKey()))
}

func encodeHashes(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// latestSize is the size of the latest signed checkpoint, 0 when none.
func (s *server) latestSize(ctx context.Context) (int64, error) {
	cp, err := s.auditLog.Latest(ctx)
	switch {
	case err == nil:
		return cp.Size, nil
	case fault.Is(err, fault.NotFound):
		return 0, nil
	}
	return 0, err
}

// apiAuditConsistency proves that the signed tree of size from is a prefix
// of the one of size to. It holds hashes only, so it is public.
func (s *server) apiAuditConsistency(w http.ResponseWriter, r *http.Request) {
	v, err := strictQuery(r, "from", "to")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	from, err := parseCount(v.Get("from"), "from", 1, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	to, err := parseCount(v.Get("to"), "to", 1, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	size, err := s.latestSize(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if from > to || to > size {
		s.writeError(w, r, fault.Invalidf("proof_range_invalid", "need 0 < from <= to <= %d (the latest checkpoint's size)", size))
		return
	}
	proof, err := s.auditLog.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		From  int64    `json:"from"`
		To    int64    `json:"to"`
		Proof []string `json:"proof"`
	}{from, to, encodeHashes(proof)})
}

// apiAuditInclusion proves that one event is in the tree of a given size.
// The leaf hash commits to the event, so only a caller who may read the
// event gets it; anyone else gets 404, the answer for an event that does
// not exist.
func (s *server) apiAuditInclusion(w http.ResponseWriter, r *http.Request) {
	p, err := s.principal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := strictQuery(r, "id", "size")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := parseCount(v.Get("id"), "id", 0, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	size, err := parseCount(v.Get("size"), "size", 1, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if id >= size {
		s.writeError(w, r, fault.New(fault.Invalid, "proof_range_invalid", "id must be below size"))
		return
	}
	ctx := r.Context()
	events, err := s.auditLog.Search(ctx, audit.Query{AfterIndex: id - 1, Limit: 1})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(events) == 0 || events[0].ID != id {
		s.writeError(w, r, errEventNotFound)
		return
	}
	ok, err := s.mayReadEvent(ctx, p, events[0])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ok {
		s.writeError(w, r, errEventNotFound)
		return
	}
	leaf, proof, err := s.auditLog.InclusionProof(ctx, id, size)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ID       int64    `json:"id"`
		Size     int64    `json:"size"`
		LeafHash string   `json:"leaf_hash"`
		Proof    []string `json:"proof"`
	}{id, size, base64.StdEncoding.EncodeToString(leaf[:]), encodeHashes(proof)})
}

// mayReadEvent says whether p may read e: in a workspace, whoever holds
// audit.read there; outside one (account-level events), only the account
// that acted; and operator staff (MFA, allowed network) anywhere. The check
// is a quiet Check, not Require: a probe for someone else's event must not
// write "denied" records that confirm it exists.
func (s *server) mayReadEvent(ctx context.Context, p tenancy.Principal, e audit.Event) (bool, error) {
	if e.Workspace != "" {
		if p.APIKey != nil && p.APIKey.WorkspaceID != e.Workspace {
			return false, nil
		}
		d := s.ten.Check(ctx, p, e.Workspace, tenancy.PermAuditRead)
		if d.Allowed {
			return true, nil
		}
		if d.Reason == tenancy.ReasonUnavailable {
			return false, errAuthzUnavailable
		}
	} else if p.APIKey == nil && p.UserID != "" && e.ActorType == audit.ActorUser && e.ActorID == p.UserID {
		return true, nil
	}
	if p.APIKey != nil || p.UserID == "" {
		return false, nil
	}
	_, err := s.ten.OperatorPrincipal(ctx, p)
	return err == nil, nil
}
