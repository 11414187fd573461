package store

import (
	"context"
	"encoding/json"
	"strings"

	"database/sql"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

var _ audit.Store = (*Store)(nil)

// Audit list limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AppendAuditEvent stores e and sets e.ID. A zero Time is stamped (and
// written back). Details are stored as JSON text; an empty map as NULL.
func (s *Store) AppendAuditEvent(ctx context.Context, e *audit.Event) error {
	if e.Action == "" || e.Outcome == "" {
		return fault.Invalidf("invalid_audit_event", "an audit event needs an action and an outcome")
	}
	if e.Time.IsZero() {
		e.Time = s.now().UTC()
	}
	var details any
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fault.Wrap(fault.Internal, "internal", "cannot encode audit details", err)
		}
		details = string(b)
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO audit_events
		(time, actor_type, actor_id, workspace, action, target, outcome, ip, user_agent, request_id, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		e.Time.UnixMicro(), e.ActorType, e.ActorID, e.Workspace, e.Action, e.Target, string(e.Outcome),
		e.IP, e.UserAgent, e.RequestID, details).Scan(&e.ID)
	if err != nil {
		return s.fail("append audit event", err)
	}
	return nil
}

// ListAuditEvents returns the events matching every set field of f, by id
// ascending. Since is inclusive and Until exclusive; AfterID is a cursor
// (pass the last id of the previous page). Limit defaults to 100 and is
// capped at 1000.
func (s *Store) ListAuditEvents(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	// Only fixed fragments are concatenated; every value is a parameter.
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.ActorID != "" {
		add("actor_id = ?", f.ActorID)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Outcome != "" {
		add("outcome = ?", string(f.Outcome))
	}
	if !f.Since.IsZero() {
		add("time >= ?", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add("time < ?", f.Until.UnixMicro())
	}
	if f.AfterID > 0 {
		add("id > ?", f.AfterID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	query := `SELECT id, time, actor_type, actor_id, workspace, action, target, outcome, ip, user_agent, request_id, details
		FROM audit_events`
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += " ORDER BY id LIMIT ?"
	args = append(args, limit)

	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.fail("list audit events", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var e audit.Event
		var at int64
		var outcome string
		var details sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.ActorType, &e.ActorID, &e.Workspace, &e.Action, &e.Target,
			&outcome, &e.IP, &e.UserAgent, &e.RequestID, &details); err != nil {
			return nil, s.fail("list audit events", err)
		}
		e.Time = fromMicros(sql.NullInt64{Int64: at, Valid: true})
		e.Outcome = audit.Outcome(outcome)
		if details.Valid && details.String != "" {
			if err := json.Unmarshal([]byte(details.String), &e.Details); err != nil {
				return nil, fault.Wrap(fault.Internal, "internal", "cannot decode audit details", err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list audit events", err)
	}
	return out, nil
}
