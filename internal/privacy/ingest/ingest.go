// Package ingest receives events from the customer's client SDK (control
// APP-9): it checks each batch against a strict schema, scrubs personal
// data (emails, phone numbers, card numbers) from every string, drops the
// events of users who opted out, and stores what is left sealed with the
// vault under a retention class; a sweep deletes expired events.
//
// It also owns publishable keys ("rpk_…"): per-workspace credentials safe
// to embed in a browser or mobile app because they can do nothing but
// ingest events and record opt-outs.
//
// The package knows nothing of HTTP or SQL: the web layer authenticates
// and rate-limits, the store implements Store.
package ingest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// Permissions the app registers with tenancy.
const (
	// PermIngest lets an API key send events (the backend's SDK).
	PermIngest = "events.ingest"
	// PermManage lets an Admin manage publishable keys and opt-outs and
	// read the stored events.
	PermManage = "ingest.manage"
)

// Table and column the payload ciphertext is bound to.
const (
	Table  = "ingest_events"
	Column = "payload"
)

// Stored is one event as the store keeps it: the sealed payload and the
// facts the retention sweep and the read API need in the clear.
type Stored struct {
	ID         string // time-ordered: the read API pages by it
	Workspace  string
	ReceivedAt time.Time
	Class      string
	ExpiresAt  time.Time
	Payload    []byte // vault.Sealer ciphertext of the scrubbed Event as JSON
}

// PublishableKey is a workspace's SDK credential. Only the SHA-256 of its
// secret is stored.
type PublishableKey struct {
	ID         string
	Workspace  string
	Name       string
	Class      string // retention class of the events it sends ("" = default)
	SecretHash []byte
	CreatedBy  string
	CreatedAt  time.Time
	RevokedAt  time.Time
}

// Store is the storage ingestion needs. Workspace methods touch only that
// workspace's rows; missing rows are fault.NotFound.
type Store interface {
	CreatePublishableKey(ctx context.Context, k *PublishableKey) error
	PublishableKeyByID(ctx context.Context, id string) (*PublishableKey, error)
	PublishableKeys(ctx context.Context, ws string) ([]PublishableKey, error)
	RevokePublishableKey(ctx context.Context, ws, id string, at time.Time) error

	// AddOptOut records a subject's opt-out (idempotent); RemoveOptOut
	// deletes it (fault.NotFound when absent). OptedOut returns which of
	// hashes are opted out, as hex.
	AddOptOut(ctx context.Context, ws string, hash []byte, at time.Time) error
	RemoveOptOut(ctx context.Context, ws string, hash []byte) error
	OptedOut(ctx context.Context, ws string, hashes [][]byte) (map[string]bool, error)

	InsertEvents(ctx context.Context, ws string, events []Stored) error
	Events(ctx context.Context, ws, after string, limit int) ([]Stored, error)
	// RawEventPayload returns the stored bytes of one event as they are in
	// the database, for the live check that they are not plaintext.
	RawEventPayload(ctx context.Context, ws, id string) ([]byte, error)
	// DeleteExpiredEvents deletes at most limit events across workspaces
	// whose expiry is at or before now.
	DeleteExpiredEvents(ctx context.Context, now time.Time, limit int) (int, error)
}

// Config is the service's configuration.
type Config struct {
	Limits       Limits
	Classes      map[string]time.Duration // retention classes
	DefaultClass string
	// OptOutKey keys the hash under which opt-outs are stored, so the list
	// holds no user id in the clear.
	OptOutKey []byte
}

// Deps are the service's collaborators.
type Deps struct {
	Store  Store
	Sealer vault.Sealer
	Audit  audit.Recorder
	Log    *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// Service is event ingestion.
type Service struct {
	cfg Config
	d   Deps

	keys keyCache

	accepted, dropped, scrubbed, rejected, swept atomic.Uint64
}

// New checks cfg and returns the service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Sealer == nil || d.Audit == nil {
		return nil, fmt.Errorf("ingest: store, sealer and audit are required")
	}
	if _, ok := cfg.Classes[cfg.DefaultClass]; !ok {
		return nil, fmt.Errorf("ingest: default retention class %q is not defined", cfg.DefaultClass)
	}
	if len(cfg.OptOutKey) < 32 {
		return nil, fmt.Errorf("ingest: opt-out key must be at least 32 bytes")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, d: d, keys: keyCache{m: map[string]cachedKey{}}}, nil
}

// Limits are the configured limits (the web layer bounds the body by them).
func (s *Service) Limits() Limits { return s.cfg.Limits }

// Classes are the configured retention classes.
func (s *Service) Classes() map[string]time.Duration { return s.cfg.Classes }

// Actor is who acts, for the audit trail.
type Actor struct {
	Type, ID string
}

func (s *Service) record(ctx context.Context, a Actor, ws, action, target string, outcome audit.Outcome, details map[string]string) error {
	return s.d.Audit.Record(ctx, audit.Event{ActorType: a.Type, ActorID: a.ID, Workspace: ws,
		Action: action, Target: target, Outcome: outcome, Details: details})
}

// Result is what a batch came to.
type Result struct {
	Accepted int `json:"accepted"`
	Dropped  int `json:"dropped"`
	Scrubbed int `json:"scrubbed"`
	// IDs of the stored events, in batch order (not sent to the client).
	IDs []string `json:"-"`
}

// Decode checks a batch against the schema (see Decode), counting refusals.
func (s *Service) Decode(body []byte) ([]Event, error) {
	ev, err := Decode(body, s.cfg.Limits, s.d.Now())
	if err != nil {
		s.rejected.Add(1)
	}
	return ev, err
}

// Source says where a batch came from: the retention class of its key.
type Source struct {
	Class string // "" = the default class
}

// Accept drops opted-out subjects' events, scrubs the rest, seals and
// stores them. The opt-out check runs on the ids as sent, before the
// scrubber may have replaced them.
func (s *Service) Accept(ctx context.Context, ws string, src Source, events []Event) (Result, error) {
	class := src.Class
	if class == "" {
		class = s.cfg.DefaultClass
	}
	ttl, ok := s.cfg.Classes[class]
	if !ok {
		// A key's class was removed from the configuration: fall back to
		// the default rather than keep data longer than anything defined.
		class, ttl = s.cfg.DefaultClass, s.cfg.Classes[s.cfg.DefaultClass]
	}
	out, err := s.optedOutMask(ctx, ws, events)
	if err != nil {
		return Result{}, err
	}
	now := s.d.Now().UTC()
	var batchRand [6]byte
	if _, err := io.ReadFull(s.d.Rand, batchRand[:]); err != nil {
		return Result{}, fault.Wrap(fault.Internal, "internal", "cannot generate an id", err)
	}
	var res Result
	stored := make([]Stored, 0, len(events))
	for i := range events {
		if out[i] {
			res.Dropped++
			continue
		}
		e := events[i]
		var n, m int
		e.UserID, n = ScrubString(e.UserID)
		e.AnonymousID, m = ScrubString(e.AnonymousID)
		n += m
		if e.Properties != nil {
			var p any
			p, m = ScrubValue(e.Properties)
			e.Properties = p.(map[string]any)
			n += m
		}
		res.Scrubbed += n
		plain, err := json.Marshal(e)
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, "internal", "cannot encode an event", err)
		}
		id := eventID(now, batchRand, len(stored))
		sealed, err := s.d.Sealer.Seal(ctx, plain, vault.AD{Workspace: ws, Table: Table, Column: Column, Row: id})
		if err != nil {
			return Result{}, fault.Wrap(fault.Unavailable, "ingest_seal_failed", "events cannot be stored right now", err)
		}
		stored = append(stored, Stored{ID: id, Workspace: ws, ReceivedAt: now, Class: class, ExpiresAt: now.Add(ttl), Payload: sealed})
		res.IDs = append(res.IDs, id)
	}
	if len(stored) > 0 {
		if err := s.d.Store.InsertEvents(ctx, ws, stored); err != nil {
			return Result{}, err
		}
	}
	res.Accepted = len(stored)
	s.accepted.Add(uint64(res.Accepted))
	s.dropped.Add(uint64(res.Dropped))
	s.scrubbed.Add(uint64(res.Scrubbed))
	return res, nil
}

// eventID is the arrival time in microseconds (8 bytes), the batch's
// random part (6 bytes) and the event's index in the batch (2 bytes), in
// hex: ids sort by arrival and, within a batch, in batch order, so they
// page the read API.
func eventID(now time.Time, batch [6]byte, i int) string {
	var b [16]byte
	us := uint64(now.UnixMicro())
	for k := 7; k >= 0; k-- {
		b[k] = byte(us)
		us >>= 8
	}
	copy(b[8:14], batch[:])
	b[14], b[15] = byte(i>>8), byte(i)
	return hex.EncodeToString(b[:])
}

// Subject kinds of an opt-out.
const (
	SubjectUser      = "user_id"
	SubjectAnonymous = "anonymous_id"
)

// optOutHash is the keyed hash an opt-out is stored under. The workspace
// is inside it, so the same user id in two workspaces is two entries.
func (s *Service) optOutHash(ws, kind, id string) []byte {
	m := hmac.New(sha256.New, s.cfg.OptOutKey)
	m.Write([]byte(ws))
	m.Write([]byte{0})
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return m.Sum(nil)
}

func (s *Service) optedOutMask(ctx context.Context, ws string, events []Event) ([]bool, error) {
	var hashes [][]byte
	for _, e := range events {
		if e.UserID != "" {
			hashes = append(hashes, s.optOutHash(ws, SubjectUser, e.UserID))
		}
		if e.AnonymousID != "" {
			hashes = append(hashes, s.optOutHash(ws, SubjectAnonymous, e.AnonymousID))
		}
	}
	mask := make([]bool, len(events))
	if len(hashes) == 0 {
		return mask, nil
	}
	found, err := s.d.Store.OptedOut(ctx, ws, hashes)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return mask, nil
	}
	for i, e := range events {
		mask[i] = e.UserID != "" && found[hex.EncodeToString(s.optOutHash(ws, SubjectUser, e.UserID))] ||
			e.AnonymousID != "" && found[hex.EncodeToString(s.optOutHash(ws, SubjectAnonymous, e.AnonymousID))]
	}
	return mask, nil
}

func checkSubject(kind, id string, lim Limits) error {
	if kind != SubjectUser && kind != SubjectAnonymous {
		return fault.Invalidf("subject_invalid", "give user_id or anonymous_id")
	}
	if id == "" || len(id) > lim.MaxIDLen {
		return fault.Invalidf("subject_invalid", "%s is 1 to %d characters", kind, lim.MaxIDLen)
	}
	return nil
}

// OptOut records that the subject's events are to be dropped from now on.
// It is audited without the id (personal data): the target names the
// kind and the first bytes of the keyed hash, enough to correlate entries.
func (s *Service) OptOut(ctx context.Context, a Actor, ws, kind, id string) error {
	if err := checkSubject(kind, id, s.cfg.Limits); err != nil {
		return err
	}
	h := s.optOutHash(ws, kind, id)
	if err := s.d.Store.AddOptOut(ctx, ws, h, s.d.Now().UTC()); err != nil {
		return err
	}
	return s.record(ctx, a, ws, "ingest.opt_out", "ingest_subject:"+hex.EncodeToString(h[:8]), audit.Success, map[string]string{"kind": kind})
}

// OptIn removes an opt-out (an Admin acting on the user's request).
func (s *Service) OptIn(ctx context.Context, a Actor, ws, kind, id string) error {
	if err := checkSubject(kind, id, s.cfg.Limits); err != nil {
		return err
	}
	h := s.optOutHash(ws, kind, id)
	if err := s.d.Store.RemoveOptOut(ctx, ws, h); err != nil {
		if fault.Is(err, fault.NotFound) {
			return fault.New(fault.NotFound, "opt_out_not_found", "this subject has not opted out")
		}
		return err
	}
	return s.record(ctx, a, ws, "ingest.opt_in", "ingest_subject:"+hex.EncodeToString(h[:8]), audit.Success, map[string]string{"kind": kind})
}

// Page is one page of decrypted events.
type Page struct {
	Events []StoredEvent
	Next   string // the cursor for the next page, "" at the end
}

// StoredEvent is an event as the read API returns it.
type StoredEvent struct {
	ID         string
	ReceivedAt time.Time
	Class      string
	ExpiresAt  time.Time
	Event      Event
}

// MaxPage bounds the read API's page size.
const MaxPage = 500

// Events decrypts a page of ws's events after the cursor. Every read is
// audited with its count (AUD-2: access to customer data).
func (s *Service) Events(ctx context.Context, a Actor, ws, after string, limit int) (Page, error) {
	if limit <= 0 || limit > MaxPage {
		return Page{}, fault.Invalidf("limit_invalid", "limit is 1 to %d", MaxPage)
	}
	if len(after) > 64 {
		return Page{}, fault.Invalidf("cursor_invalid", "the cursor is invalid")
	}
	rows, err := s.d.Store.Events(ctx, ws, after, limit+1)
	if err != nil {
		return Page{}, err
	}
	var p Page
	if len(rows) > limit {
		rows = rows[:limit]
		p.Next = rows[limit-1].ID
	}
	for _, r := range rows {
		plain, err := s.d.Sealer.Open(ctx, r.Payload, vault.AD{Workspace: ws, Table: Table, Column: Column, Row: r.ID})
		if err != nil {
			_ = s.record(ctx, a, ws, "ingest.events_read", "ingest_events", audit.Failure, map[string]string{"reason": "decrypt_failed"})
			return Page{}, fault.Wrap(fault.Internal, "internal", "a stored event could not be decrypted", err)
		}
		var e Event
		dec := json.NewDecoder(bytes.NewReader(plain))
		dec.UseNumber()
		if err := dec.Decode(&e); err != nil {
			return Page{}, fault.Wrap(fault.Internal, "internal", "a stored event could not be decoded", err)
		}
		p.Events = append(p.Events, StoredEvent{ID: r.ID, ReceivedAt: r.ReceivedAt, Class: r.Class, ExpiresAt: r.ExpiresAt, Event: e})
	}
	if err := s.record(ctx, a, ws, "ingest.events_read", "ingest_events", audit.Success,
		map[string]string{"count": fmt.Sprint(len(p.Events))}); err != nil {
		return Page{}, err
	}
	return p, nil
}

// Sweep deletes expired events in bounded batches and returns how many.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.d.Store.DeleteExpiredEvents(ctx, s.d.Now().UTC(), sweepBatch)
		total += n
		s.swept.Add(uint64(n))
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

const sweepBatch = 1000

// Stats are counters since start, for metrics.
type Stats struct {
	Accepted, Dropped, Scrubbed, Rejected, Swept uint64
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{Accepted: s.accepted.Load(), Dropped: s.dropped.Load(), Scrubbed: s.scrubbed.Load(),
		Rejected: s.rejected.Load(), Swept: s.swept.Load()}
}

// RawPayload returns an event's stored bytes (for the APP-9 live check).
func (s *Service) RawPayload(ctx context.Context, ws, id string) ([]byte, error) {
	return s.d.Store.RawEventPayload(ctx, ws, id)
}

// keyCache holds recently authenticated keys briefly: the SDK's every
// request authenticates, and revocation in this process empties it.
type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	k  *PublishableKey
	at time.Time
}
