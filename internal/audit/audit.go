// Package audit is Rampart's tamper-evident audit trail: every event is a
// leaf of an RFC 6962 Merkle tree, committed durably in groups, its details
// encrypted and its sensitive values stored as keyed hashes, with signed
// checkpoints that outside witnesses keep, and inclusion and consistency
// proofs. Callers only see the Recorder; see API.md for the whole contract.
package audit

import (
	"context"
	"time"
)

// Outcome says how an audited action ended.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Denied  Outcome = "denied"
)

// Actor kinds.
const (
	ActorUser      = "user"
	ActorAnonymous = "anonymous"
	ActorSystem    = "system"
	ActorAPIKey    = "apikey"
	ActorOperator  = "operator"
	ActorService   = "service" // an OAuth service client
)

// Event is one audited fact: who did what to what, when, from where, and how
// it ended. Details must never hold secrets (tokens, passwords, codes) or raw
// personal data; callers pass identifiers or keyed hashes instead.
type Event struct {
	// ID is the event's leaf index in the Merkle log (0-based), set when
	// the event is committed.
	ID        int64
	Time      time.Time
	ActorType string
	ActorID   string
	Workspace string
	Action    string // dotted, e.g. "auth.signin"
	Target    string
	Outcome   Outcome
	IP        string
	UserAgent string
	RequestID string
	TraceID   string
	Details   map[string]string
}

// Recorder accepts events. An error means the event was not stored; callers
// of security decisions treat that as a reason to refuse the action.
type Recorder interface {
	Record(ctx context.Context, e Event) error
}

// Filter selects events for listing.
type Filter struct {
	Workspace string // "" = every workspace
	ActorID   string
	Action    string // exact, or a prefix ending in "." ("auth.")
	Outcome   Outcome
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	AfterID   int64     // cursor: events with ID greater than this (-1 = from the first)
	Limit     int       // default 100, at most 1000
}

// Meta carries request facts (address, agent, request id) through a context
// so domain code can record them without knowing about HTTP.
type Meta struct {
	IP        string
	UserAgent string
	RequestID string
	TraceID   string // W3C trace id of the request's span, when traced
}

type metaKey struct{}

// WithMeta returns ctx carrying m.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the request facts in ctx, if any.
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// FromRequest fills the request facts carried by ctx (address, agent,
// request id, trace id) into the fields of e that are still empty.
func FromRequest(ctx context.Context, e Event) Event {
	m := MetaFrom(ctx)
	if e.IP == "" {
		e.IP = m.IP
	}
	if e.UserAgent == "" {
		e.UserAgent = m.UserAgent
	}
	if e.RequestID == "" {
		e.RequestID = m.RequestID
	}
	if e.TraceID == "" {
		e.TraceID = m.TraceID
	}
	return e
}
