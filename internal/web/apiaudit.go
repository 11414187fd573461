package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/audit"
)

// actorSlot is filled by the authentication helpers during a request so
// that the API-call record (AUD-1) names who made the call.
type actorSlot struct {
	actorType string
	actorID   string
}

type actorKey struct{}

func withActorSlot(ctx context.Context) (context.Context, *actorSlot) {
	a := &actorSlot{}
	return context.WithValue(ctx, actorKey{}, a), a
}

// noteActor records the authenticated actor of the request, if the request
// carries a slot.
func noteActor(ctx context.Context, actorType, actorID string) {
	if a, ok := ctx.Value(actorKey{}).(*actorSlot); ok {
		a.actorType, a.actorID = actorType, actorID
	}
}

// isAPICall says which requests are API calls to record: the JSON API and
// SCIM. Pages and static files are not (their actions are recorded by the
// domain code they call).
func isAPICall(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/scim/")
}

// recordAPICall writes one "api.request" event per API call: who, which
// route (the pattern, never the raw path with its identifiers or query),
// the status and the outcome. It runs after the handler; "api." events are
// fail-open by default (the domain events of the call are the ones that
// fail closed), so an error here is logged, not returned.
func (s *server) recordAPICall(r *http.Request, slot *actorSlot, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	outcome := audit.Success
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		outcome = audit.Denied
	case status >= 400:
		outcome = audit.Failure
	}
	e := audit.Event{
		ActorType: audit.ActorAnonymous, Action: "api.request", Target: routeLabel(r), Outcome: outcome,
		Workspace: r.PathValue("ws"), IP: clientIP(r), UserAgent: truncate(r.UserAgent(), 512), RequestID: requestID(r.Context()),
		Details: map[string]string{"method": methodLabel(r.Method), "status": strconv.Itoa(status)},
	}
	e = audit.FromRequest(r.Context(), e)
	if slot.actorID != "" {
		e.ActorType, e.ActorID = slot.actorType, slot.actorID
	}
	// The response does not wait for the group commit: API-call events fail
	// open, so they are recorded behind the request, bounded in number; an
	// event that finds no room is dropped and counted (the domain events of
	// the call itself are recorded, and fail closed, in the handler).
	select {
	case s.apiAudit <- struct{}{}:
	default:
		s.metrics.apiAuditDropped.Inc()
		s.log.Warn("api call not recorded: audit queue full", "route", e.Target, "request_id", e.RequestID)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	s.apiAuditWG.Add(1)
	go func() {
		defer func() { <-s.apiAudit; s.apiAuditWG.Done() }()
		if err := s.audit.Record(ctx, e); err != nil {
			s.metrics.apiAuditDropped.Inc()
			s.log.Warn("api call not recorded", "route", e.Target, "request_id", e.RequestID, "err", err)
		}
	}()
}

// maxAPIAuditInFlight bounds API-call events waiting for their group commit.
const maxAPIAuditInFlight = 8192

// methodLabel bounds the method to the known set (it is client input).
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "OTHER"
}
