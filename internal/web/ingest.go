package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
	"github.com/rampartsec/rampart/internal/privacy/ingest"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// IngestDeps are the web layer's dependencies for event ingestion (APP-9).
type IngestDeps struct {
	// Ingest is the service; nil leaves the routes out.
	Ingest *ingest.Service
	// Limiter and Rate enforce each workspace's event budget: a batch of
	// n events spends n cells under the key "ingest|<workspace>".
	Limiter ratelimit.Limiter
	Rate    ratelimit.Policy
	// MaxBodyBytes bounds a batch's body.
	MaxBodyBytes int
}

// ingestWeb is this feature's part of the server.
type ingestWeb struct {
	ingest       *ingest.Service
	ingestLimit  ratelimit.Limiter
	ingestRate   ratelimit.Policy
	ingestMaxBdy int64
}

func newIngestWeb(d IngestDeps) ingestWeb {
	return ingestWeb{ingest: d.Ingest, ingestLimit: d.Limiter, ingestRate: d.Rate, ingestMaxBdy: int64(d.MaxBodyBytes)}
}

// ActorPublishableKey is the audit actor type of a publishable key.
const ActorPublishableKey = "publishable_key"

var (
	errHTTPSRequired = fault.New(fault.Forbidden, "https_required",
		"event ingestion is only served over HTTPS; resend the request to the https:// address")
	errIngestCredential = fault.New(fault.Unauthenticated, "ingest_key_invalid",
		"send a publishable key (rpk_…) or an API key (rmp_…) with events.ingest as Authorization: Bearer")
	errIngestRateLimited = fault.New(fault.RateLimited, "ingest_rate_limited", "the workspace's event rate limit is exceeded")
)

// ingestRoutes registers the ingestion API (docs/INGEST.md).
func (s *server) ingestRoutes(mux *http.ServeMux) {
	if s.ingest == nil {
		return
	}
	for _, rt := range []route{
		{"POST /v1/ingest/events", s.apiIngestEvents},
		{"OPTIONS /v1/ingest/events", s.apiIngestPreflight},
		{"POST /v1/ingest/opt-out", s.apiIngestOptOut},
		{"OPTIONS /v1/ingest/opt-out", s.apiIngestPreflight},
		{"POST /v1/workspaces/{ws}/ingest/keys", s.apiIngestCreateKey},
		{"GET /v1/workspaces/{ws}/ingest/keys", s.apiIngestKeys},
		{"DELETE /v1/workspaces/{ws}/ingest/keys/{id}", s.apiIngestRevokeKey},
		{"POST /v1/workspaces/{ws}/ingest/opt-outs/{subject}", s.apiIngestAdminOptOut},
		{"DELETE /v1/workspaces/{ws}/ingest/opt-outs/{subject}", s.apiIngestAdminOptIn},
		{"GET /v1/workspaces/{ws}/ingest/events", s.apiIngestReadEvents},
	} {
		mux.Handle(rt.pattern, noStore(rt.handler))
	}
}

// sdkCORS lets browser SDKs on any origin call the two SDK endpoints. It
// is safe because they authenticate by a bearer key, never by cookies:
// credentials are not allowed, so a page can only spend a key it holds.
func sdkCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Retry-After, RateLimit, RateLimit-Policy, X-Request-Id")
}

func (s *server) apiIngestPreflight(w http.ResponseWriter, r *http.Request) {
	sdkCORS(w)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// ingestCaller authenticates an SDK request: a publishable key, or an API
// key holding events.ingest. Sessions are not accepted here: the SDK
// endpoints take no cookies.
func (s *server) ingestCaller(w http.ResponseWriter, r *http.Request) (ws string, src ingest.Source, actor ingest.Actor, err error) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" || len(cred) > maxBearerLen {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return "", src, actor, errIngestCredential
	}
	switch {
	case ingest.LooksLikeKey(cred):
		k, err := s.ingest.AuthenticateKey(r.Context(), cred)
		if err != nil {
			if fault.Is(err, fault.Unauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			return "", src, actor, err
		}
		noteActor(r.Context(), ActorPublishableKey, k.ID)
		return k.Workspace, ingest.Source{Class: k.Class}, ingest.Actor{Type: ActorPublishableKey, ID: k.ID}, nil
	case strings.HasPrefix(cred, apiKeyPrefix):
		p, err := s.ten.AuthenticateAPIKey(r.Context(), cred, clientIP(r))
		if err != nil {
			if fault.Is(err, fault.Unauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			return "", src, actor, err
		}
		noteActor(r.Context(), audit.ActorAPIKey, p.APIKey.ID)
		ws := p.APIKey.WorkspaceID
		if err := s.ten.Require(r.Context(), p, ws, ingest.PermIngest); err != nil {
			return "", src, actor, err
		}
		return ws, ingest.Source{}, ingest.Actor{Type: audit.ActorAPIKey, ID: p.APIKey.ID}, nil
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	return "", src, actor, errIngestCredential
}

// readIngestBody reads a JSON body of at most limit bytes.
func readIngestBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, fault.New(fault.Invalid, "unsupported_media_type", "send a JSON body with Content-Type: application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, fault.Wrap(fault.Invalid, "body_unreadable", "the request body could not be read", err)
	}
	return body, nil
}

// apiIngestEvents is the SDK's endpoint: HTTPS only, authenticated,
// schema-checked, rate-limited per workspace, scrubbed, opt-outs dropped,
// sealed and stored. It answers {"accepted":n,"dropped":m,"scrubbed":k}.
func (s *server) apiIngestEvents(w http.ResponseWriter, r *http.Request) {
	sdkCORS(w)
	if r.TLS == nil {
		s.writeError(w, r, errHTTPSRequired)
		return
	}
	ws, src, _, err := s.ingestCaller(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := readIngestBody(w, r, s.ingestMaxBdy)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	events, err := s.ingest.Decode(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.spendIngestBudget(w, r, ws, len(events)); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.ingest.Accept(r.Context(), ws, src, events)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// spendIngestBudget takes n cells from the workspace's GCRA budget. The
// limiter admits one cell per call, so a batch asks n times; a batch
// refused part-way has spent what it took, which only shortens the wait of
// a client already over its rate. A limiter error refuses (fail closed).
func (s *server) spendIngestBudget(w http.ResponseWriter, r *http.Request, ws string, n int) error {
	if s.ingestLimit == nil {
		return nil
	}
	key := "ingest|" + ws
	var res ratelimit.Result
	for range n {
		var err error
		res, err = s.ingestLimit.Allow(r.Context(), key, s.ingestRate)
		if err != nil {
			return fault.Wrap(fault.Unavailable, "rate_limiter_unavailable", "the rate limiter is unavailable", err)
		}
		if !res.Allowed {
			ratelimit.WriteHeaders(w.Header(), s.ingestRate, res)
			e := *errIngestRateLimited
			e.RetryAfter = res.RetryAfter
			return &e
		}
	}
	ratelimit.WriteHeaders(w.Header(), s.ingestRate, res)
	return nil
}

// apiIngestOptOut records a subject's opt-out from the SDK: with the
// publishable key (or an API key with events.ingest). It can only add an
// opt-out, never remove one, so the public key cannot turn tracking back on.
func (s *server) apiIngestOptOut(w http.ResponseWriter, r *http.Request) {
	sdkCORS(w)
	if r.TLS == nil {
		s.writeError(w, r, errHTTPSRequired)
		return
	}
	ws, _, actor, err := s.ingestCaller(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[struct {
		UserID      string `json:"user_id"`
		AnonymousID string `json:"anonymous_id"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	kind, id := ingest.SubjectUser, in.UserID
	switch {
	case in.UserID != "" && in.AnonymousID != "":
		s.writeError(w, r, fault.Invalidf("subject_invalid", "give user_id or anonymous_id, not both"))
		return
	case in.AnonymousID != "":
		kind, id = ingest.SubjectAnonymous, in.AnonymousID
	}
	if err := s.ingest.OptOut(r.Context(), actor, ws, kind, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OptedOut bool `json:"opted_out"`
	}{true})
}

// ingestActor is who acts on the admin endpoints.
func ingestActor(p tenancy.Principal) ingest.Actor {
	switch {
	case p.APIKey != nil:
		return ingest.Actor{Type: audit.ActorAPIKey, ID: p.APIKey.ID}
	case p.OperatorID != "":
		return ingest.Actor{Type: audit.ActorOperator, ID: p.OperatorID}
	}
	return ingest.Actor{Type: audit.ActorUser, ID: p.UserID}
}

// wsIngest authenticates an admin request, resolves {ws} and requires
// ingest.manage (held by Admins).
func (s *server) wsIngest(w http.ResponseWriter, r *http.Request) (ingest.Actor, string, bool) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return ingest.Actor{}, "", false
	}
	if err := s.ten.Require(r.Context(), p, ws, ingest.PermManage); err != nil {
		s.writeError(w, r, err)
		return ingest.Actor{}, "", false
	}
	return ingestActor(p), ws, true
}

type publishableKeyJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Retention string `json:"retention,omitempty"`
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"`
	RevokedAt string `json:"revoked_at,omitempty"`
}

func toPublishableKeyJSON(k ingest.PublishableKey) publishableKeyJSON {
	return publishableKeyJSON{ID: k.ID, Name: k.Name, Retention: k.Class, CreatedBy: k.CreatedBy,
		CreatedAt: rfc3339(k.CreatedAt), RevokedAt: rfc3339(k.RevokedAt)}
}

func (s *server) apiIngestCreateKey(w http.ResponseWriter, r *http.Request) {
	actor, ws, ok := s.wsIngest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Name      string `json:"name"`
		Retention string `json:"retention"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	k, text, err := s.ingest.CreateKey(r.Context(), actor, ws, in.Name, in.Retention)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		publishableKeyJSON
		Key string `json:"key"`
	}{toPublishableKeyJSON(*k), text})
}

func (s *server) apiIngestKeys(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.wsIngest(w, r)
	if !ok {
		return
	}
	keys, err := s.ingest.Keys(r.Context(), ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Keys []publishableKeyJSON `json:"keys"`
	}{Keys: []publishableKeyJSON{}}
	for _, k := range keys {
		out.Keys = append(out.Keys, toPublishableKeyJSON(k))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) apiIngestRevokeKey(w http.ResponseWriter, r *http.Request) {
	actor, ws, ok := s.wsIngest(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "publishable_key_not_found")
	if !ok {
		return
	}
	if err := s.ingest.RevokeKey(r.Context(), actor, ws, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// subjectKind reads ?kind= (user_id, the default, or anonymous_id).
func subjectKind(r *http.Request) string {
	if k := r.URL.Query().Get("kind"); k != "" {
		return k
	}
	return ingest.SubjectUser
}

func (s *server) apiIngestAdminOptOut(w http.ResponseWriter, r *http.Request) {
	actor, ws, ok := s.wsIngest(w, r)
	if !ok {
		return
	}
	if err := s.ingest.OptOut(r.Context(), actor, ws, subjectKind(r), r.PathValue("subject")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiIngestAdminOptIn(w http.ResponseWriter, r *http.Request) {
	actor, ws, ok := s.wsIngest(w, r)
	if !ok {
		return
	}
	if err := s.ingest.OptIn(r.Context(), actor, ws, subjectKind(r), r.PathValue("subject")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type storedEventJSON struct {
	ID          string         `json:"id"`
	ReceivedAt  string         `json:"received_at"`
	Retention   string         `json:"retention"`
	ExpiresAt   string         `json:"expires_at"`
	Name        string         `json:"name"`
	Time        string         `json:"time"`
	UserID      string         `json:"user_id,omitempty"`
	AnonymousID string         `json:"anonymous_id,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
}

// apiIngestReadEvents decrypts a page of the workspace's events for its
// Admins; the service audits every read.
func (s *server) apiIngestReadEvents(w http.ResponseWriter, r *http.Request) {
	actor, ws, ok := s.wsIngest(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.writeError(w, r, fault.Invalidf("limit_invalid", "limit is 1 to %d", ingest.MaxPage))
			return
		}
		limit = n
	}
	page, err := s.ingest.Events(r.Context(), actor, ws, q.Get("after"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Events []storedEventJSON `json:"events"`
		Next   string            `json:"next,omitempty"`
	}{Events: []storedEventJSON{}, Next: page.Next}
	for _, e := range page.Events {
		out.Events = append(out.Events, storedEventJSON{ID: e.ID, ReceivedAt: rfc3339(e.ReceivedAt), Retention: e.Class,
			ExpiresAt: rfc3339(e.ExpiresAt), Name: e.Event.Name, Time: e.Event.Time.Format("2006-01-02T15:04:05.999999999Z07:00"),
			UserID: e.Event.UserID, AnonymousID: e.Event.AnonymousID, Properties: e.Event.Properties})
	}
	writeJSON(w, http.StatusOK, out)
}
