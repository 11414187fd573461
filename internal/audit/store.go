package audit

import (
	"context"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Record is an event as stored: the leaf of the Merkle tree is the
// canonical encoding of exactly these fields (see Record.Leaf), so the log
// can be verified from the database alone, without any key.
type Record struct {
	Index     int64
	Time      time.Time // microsecond precision
	ActorType string
	ActorID   string
	Workspace string
	Action    string
	Target    string
	Outcome   Outcome
	IP        string // empty when addresses are stored only as keyed hashes
	UserAgent string
	RequestID string
	TraceID   string
	// Sealed is the AES-256-GCM ciphertext of the event's details (JSON),
	// bound by associated data to the log and the index.
	Sealed []byte
	// Keyed are HMAC-SHA-256 values of sensitive values (emails, tokens,
	// addresses where configured), by name ("email", "ip", …), so exact
	// searches still work without storing the values.
	Keyed map[string][]byte
}

// StoredHash is one hash of the tlog stored-hash layout.
type StoredHash struct {
	Index int64 // tlog.StoredHashIndex
	Hash  tlog.Hash
}

// Checkpoint is a signed tree head in the C2SP signed-note format.
type Checkpoint struct {
	Size      int64
	Root      tlog.Hash
	Note      []byte // the signed note, as published
	CreatedAt time.Time
}

// Query selects records; the store filters on plain and keyed columns.
type Query struct {
	Workspace  string // "" = all
	ActorID    string
	Action     string // exact, or prefix when it ends in "."
	Outcome    Outcome
	Since      time.Time
	Until      time.Time
	AfterIndex int64 // records with Index > AfterIndex; -1 = from the start
	KeyedName  string
	KeyedValue []byte // with KeyedName: exact match on a keyed hash
	Limit      int
}

// LogStore is the storage the Merkle audit log needs. It replaces the
// interim Store (a plain table) once the log lands.
type LogStore interface {
	// AppendAudit appends a batch in one durable transaction, holding the
	// log's sequencer lock (on PostgreSQL an advisory transaction lock, so
	// several nodes still build one tree). build receives the current tree
	// size and a reader of the stored hashes already committed, and returns
	// the records (indexes size, size+1, …) and the new stored hashes.
	AppendAudit(ctx context.Context, build func(size int64, hr tlog.HashReader) ([]Record, []StoredHash, error)) error
	// AuditSize is the number of records committed.
	AuditSize(ctx context.Context) (int64, error)
	// AuditHashes reads stored hashes (a tlog.HashReader).
	AuditHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// AuditRecords returns records with from <= Index < to, in order.
	AuditRecords(ctx context.Context, from, to int64) ([]Record, error)
	// QueryAudit returns matching records in Index order.
	QueryAudit(ctx context.Context, q Query) ([]Record, error)
	SaveCheckpoint(ctx context.Context, c Checkpoint) error
	LatestCheckpoint(ctx context.Context) (*Checkpoint, error) // fault.NotFound when none
	Checkpoints(ctx context.Context) ([]Checkpoint, error)     // ascending size
	// SinkCursor is the index of the last record delivered to a sink (-1
	// when none); SetSinkCursor moves it (forward only).
	SinkCursor(ctx context.Context, sink string) (int64, error)
	SetSinkCursor(ctx context.Context, sink string, index int64) error
}
