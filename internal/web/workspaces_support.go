package web

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// ---- access reviews (AC-5) ----

func (s *server) apiReviewReport(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	rep, err := s.ten.ReviewReport(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toReviewReportJSON(*rep, s.now()))
}

// maxDecisions bounds one recorded review; a workspace with more members
// records its review in parts.
const maxDecisions = 1000

func (s *server) apiRecordReview(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Decisions []reviewDecisionJSON `json:"decisions"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(in.Decisions) == 0 || len(in.Decisions) > maxDecisions {
		s.writeError(w, r, fault.New(fault.Invalid, "decisions_invalid", "send between 1 and 1000 decisions"))
		return
	}
	ds := make([]tenancy.ReviewDecision, len(in.Decisions))
	for i, d := range in.Decisions {
		ds[i] = tenancy.ReviewDecision{UserID: d.User, Decision: d.Decision, Roles: d.Roles, Note: d.Note}
	}
	rev, err := s.ten.RecordReview(r.Context(), p, ws, ds)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toAccessReviewJSON(*rev))
}

// ---- support access (AC-6, AC-7) ----

// maxGrantHours bounds hours before the multiplication; the service
// applies the configured maximum.
const maxGrantHours = 24 * 365

func (s *server) apiGrantSupport(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Operator string   `json:"operator"`
		Scope    []string `json:"scope"`
		Hours    int      `json:"hours"`
		Reason   string   `json:"reason"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A grant is always time-boxed: there is no default to fall back on.
	if in.Hours < 1 || in.Hours > maxGrantHours {
		s.writeError(w, r, fault.New(fault.Invalid, "hours_invalid", "hours must be at least 1 and within the configured maximum"))
		return
	}
	if len(in.Operator) > maxIDLen {
		s.writeError(w, r, fault.New(fault.Invalid, "operator_invalid", "no such operator"))
		return
	}
	g, err := s.ten.GrantSupport(r.Context(), p, ws, in.Operator, nonNil(in.Scope), time.Duration(in.Hours)*time.Hour, in.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toSupportGrantJSON(*g, s.now()))
}

func (s *server) apiSupportGrants(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	list, err := s.ten.SupportGrants(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	out := make([]supportGrantJSON, 0, len(list))
	for _, g := range list {
		out = append(out, toSupportGrantJSON(g, now))
	}
	writeJSON(w, http.StatusOK, struct {
		SupportGrants []supportGrantJSON `json:"support_grants"`
	}{out})
}

func (s *server) apiRevokeSupportGrant(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "support_grant_not_found")
	if !ok {
		return
	}
	if err := s.ten.RevokeSupportGrant(r.Context(), p, ws, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiSupportAccess(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	list, err := s.ten.SupportAccessLog(r.Context(), p, ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]supportAccessJSON, 0, len(list))
	for _, a := range list {
		out = append(out, toSupportAccessJSON(a))
	}
	writeJSON(w, http.StatusOK, struct {
		SupportAccess []supportAccessJSON `json:"support_access"`
	}{out})
}

type operatorAccessJSON struct {
	Workspace   string            `json:"workspace"`
	Operator    string            `json:"operator"`
	Mode        string            `json:"mode"` // "grant" or "break_glass"
	Grant       *supportGrantJSON `json:"grant,omitempty"`
	Permissions []string          `json:"permissions"`
}

// apiOperatorEnter opens an operator's access to a workspace: under the
// customer's support grant, or as recorded break-glass with a reason.
// It answers with what the access allows, computed by the same Check
// every later request will meet, so the answer cannot drift from the rule.
func (s *server) apiOperatorEnter(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ws := r.PathValue("ws")
	if ws == "" || len(ws) > maxIDLen {
		s.writeError(w, r, errWorkspaceNotFound)
		return
	}
	in, err := decodeOptionalJSON[struct {
		Reason string `json:"reason"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	op, err := s.ten.EnterWorkspace(r.Context(), p, ws, in.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	perms, err := s.ten.Permissions(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	names := make([]string, len(perms))
	for i, x := range perms {
		names[i] = x.Name
	}
	out := operatorAccessJSON{Workspace: ws, Operator: op.OperatorID, Mode: "break_glass", Permissions: []string{}}
	if op.SupportGrant != nil {
		g := toSupportGrantJSON(*op.SupportGrant, s.now())
		out.Mode, out.Grant = "grant", &g
	}
	for _, d := range s.ten.CheckBatch(r.Context(), op, ws, names) {
		if d.Allowed {
			out.Permissions = append(out.Permissions, d.Permission)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
