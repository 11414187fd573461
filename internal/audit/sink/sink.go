// Package sink streams the committed audit trail to outside systems (AUD-5):
// a signed webhook, RFC 5425 syslog over TLS and a JSON Lines file, each
// driven by a Runner that keeps a durable cursor so delivery is at-least-once
// with no gaps. It also publishes signed checkpoints to outside witnesses, so
// that a rewrite of the log is detectable by someone Rampart does not control.
//
// Outside systems are reached only through NewHTTPClient or the syslog
// dialer, which verify TLS and refuse plaintext to a non-loopback host unless
// explicitly allowed (TLS-3). Nothing in this package logs event contents or
// secrets: a log line names the target and the kind of failure, never the
// events, the URL or the signing key.
package sink

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
)

// Source reads committed events: those with ID > index, in ID order, at most
// limit. The app adapts MerkleLog.Query (AfterID) to it.
type Source interface {
	After(ctx context.Context, index int64, limit int) ([]audit.Event, error)
}

// Cursor persists, per sink name, the ID of the last event delivered (-1
// when none). The store implements it; it survives restarts so a restarted
// runner resumes where it stopped instead of replaying the whole log.
type Cursor interface {
	SinkCursor(ctx context.Context, name string) (int64, error)
	SetSinkCursor(ctx context.Context, name string, index int64) error
}

// Head reports the number of committed events (the newest index is size-1);
// the store's AuditSize implements it. Runner.Lag needs it.
type Head interface {
	AuditSize(ctx context.Context) (int64, error)
}

// Target delivers a batch of events to one outside system. Deliver returns
// nil only when the whole batch is accepted; on error the runner retries the
// same batch, so a target must tolerate seeing a batch twice.
type Target interface {
	Name() string
	Deliver(ctx context.Context, events []audit.Event) error
}

// Witness keeps signed checkpoint notes outside Rampart's control.
type Witness interface {
	Publish(ctx context.Context, note []byte) error
}

// wireEvent is the exported JSON shape of an event, shared by every target
// so that a receiver sees the same document whichever way it is fed. Field
// names are snake_case and stable: they are a public format.
type wireEvent struct {
	ID        int64             `json:"id"`
	Time      time.Time         `json:"time"`
	ActorType string            `json:"actor_type,omitempty"`
	ActorID   string            `json:"actor_id,omitempty"`
	Workspace string            `json:"workspace,omitempty"`
	Action    string            `json:"action"`
	Target    string            `json:"target,omitempty"`
	Outcome   string            `json:"outcome"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	TraceID   string            `json:"trace_id,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

func toWire(e audit.Event) wireEvent {
	return wireEvent{
		ID: e.ID, Time: e.Time.UTC(), ActorType: e.ActorType, ActorID: e.ActorID,
		Workspace: e.Workspace, Action: e.Action, Target: e.Target, Outcome: string(e.Outcome),
		IP: e.IP, UserAgent: e.UserAgent, RequestID: e.RequestID, TraceID: e.TraceID, Details: e.Details,
	}
}

// marshalEvent is the JSON of one event (no trailing newline). json.Marshal
// sorts map keys, so the encoding is deterministic and a retried batch is
// byte-identical to the first attempt.
func marshalEvent(e audit.Event) ([]byte, error) {
	return json.Marshal(toWire(e))
}
