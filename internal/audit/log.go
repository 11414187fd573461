package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// Defaults for LogConfig.
const (
	DefaultBatchMax         = 512
	DefaultBatchWait        = 2 * time.Millisecond
	DefaultCheckpointEvery  = 5 * time.Second
	DefaultCheckpointEvents = 1000
)

// Query limits.
const (
	DefaultQueryLimit = 100
	MaxQueryLimit     = 1000
)

// flushTimeout bounds the final commit and checkpoint on Close, so shutdown
// cannot hang on a dead database.
const flushTimeout = 10 * time.Second

// GenesisAction is the action of record 0, written by the log itself when it
// is empty. It makes the log's birth part of the signed history, and it keeps
// Filter's zero AfterID ("after ID 0") from ever hiding a caller's event.
const GenesisAction = "audit.log.created"

// Sealer encrypts and decrypts details bound to associated data; a
// vault.Keyring holding the audit key is one.
type Sealer interface {
	Seal(plaintext []byte, ad vault.AD) ([]byte, error)
	Open(ciphertext []byte, ad vault.AD) ([]byte, error)
}

// Witness keeps signed checkpoints outside the database (a file, a webhook,
// another operator). A rewrite of the log that contradicts a witnessed
// checkpoint is then detectable even by someone who controls the database.
type Witness interface {
	Publish(ctx context.Context, note []byte) error
}

// LogConfig tunes a MerkleLog; zero values take the defaults above.
type LogConfig struct {
	// Origin names the log in checkpoints ("<host>/audit") and is the
	// signing key's name. It must not contain spaces, '+' or newlines.
	Origin string
	// BatchMax and BatchWait bound a group commit: at most BatchMax events
	// per transaction, and a batch waits at most BatchWait for callers that
	// are already on their way.
	BatchMax  int
	BatchWait time.Duration
	// A checkpoint is signed every CheckpointEvery, or after
	// CheckpointEvents new events, whichever comes first, if the tree grew.
	CheckpointEvery  time.Duration
	CheckpointEvents int
	// HashIPs stores addresses only as keyed hashes.
	HashIPs bool
	// SensitiveKeys are detail names stored only as keyed hashes; nil means
	// "email", "token" (and "ip" with HashIPs).
	SensitiveKeys []string
	// FailOpen lists action prefixes whose Record never fails: losing such
	// an event (e.g. a read-only API call) is logged and counted instead of
	// refusing the request. Every other action fails closed.
	FailOpen []string
}

// LogDeps are the MerkleLog's collaborators.
type LogDeps struct {
	Store LogStore
	// Sealer encrypts details (key derived for "rampart/audit/v1").
	Sealer Sealer
	// IndexKey keys the hashes of sensitive values ("rampart/audit-index/v1").
	IndexKey []byte
	// SignerKey is the 32-byte Ed25519 seed of the checkpoint key
	// ("rampart/audit-checkpoint/v1").
	SignerKey []byte
	Witnesses []Witness
	// OnCommit receives each committed group, in order, with IDs set and
	// sensitive values shown as keyed-hash prefixes. It runs on the
	// sequencer, so it must not block.
	OnCommit func([]Event)
	Log      *slog.Logger
	Now      func() time.Time
	// Rand is accepted for symmetry with other packages; the log itself
	// needs none (Ed25519 signatures are deterministic and the Sealer owns
	// its nonces).
	Rand io.Reader
}

// LogStats are counters for metrics.
type LogStats struct {
	Committed       int64 // events durably appended
	Batches         int64 // transactions
	Failed          int64 // events whose batch failed
	FailOpenDropped int64 // of those, swallowed because their action fails open
	WitnessFailures int64 // Publish calls that failed (retried next round)
}

// MerkleLog is the tamper-evident audit log: a Recorder whose events become
// leaves of an RFC 6962 tree in the LogStore, committed in groups, with
// signed checkpoints published to witnesses. Safe for concurrent use.
type MerkleLog struct {
	cfg       LogConfig
	d         LogDeps
	log       *slog.Logger
	now       func() time.Time
	keyer     keyer
	sensitive map[string]bool
	signer    note.Signer
	vkey      string

	reqs     chan *pending
	inflight atomic.Int64 // callers inside Record not yet answered
	kick     chan struct{}
	since    atomic.Int64 // events committed since the last checkpoint kick

	mu       sync.RWMutex // guards started/closed against sends on reqs
	started  bool
	closed   bool
	stopOnce sync.Once
	stop     chan struct{} // Close was called
	exiting  chan struct{} // the sequencer stopped taking new events
	seqDone  chan struct{}
	ckptDone chan struct{}

	ckptMu sync.Mutex
	latest *Checkpoint // newest checkpoint known, nil until loaded
	pubMu  sync.Mutex
	acked  []int64 // per witness, the largest size it accepted

	stats struct {
		committed, batches, failed, failOpen, witnessFailures atomic.Int64
	}
}

// pending is one Record call waiting for its group to commit.
type pending struct {
	rec     Record // Index and Sealed are set at commit
	details []byte // JSON of the details to seal
	event   Event  // as shown to OnCommit
	done    chan error
}

// NewMerkleLog checks the configuration and keys; Start begins work.
func NewMerkleLog(cfg LogConfig, d LogDeps) (*MerkleLog, error) {
	if d.Store == nil || d.Sealer == nil {
		return nil, fault.New(fault.Invalid, "audit_config", "audit log needs a store and a sealer")
	}
	if len(d.IndexKey) < 32 {
		return nil, fault.New(fault.Invalid, "audit_config", "audit index key must be at least 32 bytes")
	}
	if len(d.SignerKey) != ed25519.SeedSize {
		return nil, fault.New(fault.Invalid, "audit_config", "audit checkpoint key must be a 32-byte Ed25519 seed")
	}
	if cfg.Origin == "" || strings.ContainsAny(cfg.Origin, " \t\r\n+") {
		return nil, fault.New(fault.Invalid, "audit_config", "audit origin must be non-empty, without spaces or '+'")
	}
	if cfg.BatchMax <= 0 {
		cfg.BatchMax = DefaultBatchMax
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.CheckpointEvents <= 0 {
		cfg.CheckpointEvents = DefaultCheckpointEvents
	}
	if cfg.SensitiveKeys == nil {
		cfg.SensitiveKeys = []string{"email", "token"}
		if cfg.HashIPs {
			cfg.SensitiveKeys = append(cfg.SensitiveKeys, "ip")
		}
	}
	// The note key is derived from the seed alone, so every node with the
	// same root key signs with the same key and verifiers need one key.
	skey, vkey, err := note.GenerateKey(bytes.NewReader(d.SignerKey), cfg.Origin)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "audit_config", "cannot derive the checkpoint key", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "audit_config", "cannot derive the checkpoint key", err)
	}
	m := &MerkleLog{
		cfg:       cfg,
		d:         d,
		log:       d.Log,
		now:       d.Now,
		keyer:     keyer{key: bytes.Clone(d.IndexKey)},
		sensitive: make(map[string]bool, len(cfg.SensitiveKeys)),
		signer:    signer,
		vkey:      vkey,
		reqs:      make(chan *pending, cfg.BatchMax),
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		exiting:   make(chan struct{}),
		seqDone:   make(chan struct{}),
		ckptDone:  make(chan struct{}),
		acked:     make([]int64, len(d.Witnesses)),
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	for _, k := range cfg.SensitiveKeys {
		m.sensitive[k] = true
	}
	return m, nil
}

// Start runs the sequencer and the checkpointer until ctx ends or Close.
// Record refuses events before Start.
func (m *MerkleLog) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	go m.sequence(ctx)
	go m.checkpointLoop(ctx)
}

// Close commits the events already queued, signs a final checkpoint if the
// tree grew, and stops. Later Records fail with audit_unavailable.
func (m *MerkleLog) Close() error {
	m.mu.Lock()
	started := m.started
	if !started {
		m.closed = true
	}
	m.mu.Unlock()
	m.stopOnce.Do(func() { close(m.stop) })
	if started {
		<-m.seqDone
		<-m.ckptDone
	}
	return nil
}

// Stats returns the counters.
func (m *MerkleLog) Stats() LogStats {
	return LogStats{
		Committed:       m.stats.committed.Load(),
		Batches:         m.stats.batches.Load(),
		Failed:          m.stats.failed.Load(),
		FailOpenDropped: m.stats.failOpen.Load(),
		WitnessFailures: m.stats.witnessFailures.Load(),
	}
}

func errUnavailable(cause error) error {
	return fault.Wrap(fault.Unavailable, "audit_unavailable", "the audit log is unavailable", cause)
}

var errClosed = errors.New("audit log not running")

// Record stores e durably and returns nil only once the transaction holding
// it committed. Time defaults to now, and IP, UserAgent and RequestID to the
// request facts in ctx (WithMeta). On failure it returns fault.Unavailable
// "audit_unavailable" unless e.Action matches a FailOpen prefix.
func (m *MerkleLog) Record(ctx context.Context, e Event) error {
	err := m.record(ctx, e)
	if err == nil {
		return nil
	}
	if m.failsOpen(e.Action) {
		m.stats.failOpen.Add(1)
		// Only the action and the cause: details may be personal.
		m.log.Warn("audit event dropped (fail-open action)", "action", e.Action, "error", err)
		return nil
	}
	return err
}

func (m *MerkleLog) failsOpen(action string) bool {
	for _, p := range m.cfg.FailOpen {
		if p != "" && strings.HasPrefix(action, p) {
			return true
		}
	}
	return false
}

func (m *MerkleLog) record(ctx context.Context, e Event) error {
	if e.Action == "" || e.Outcome == "" {
		return fault.Invalidf("invalid_audit_event", "an audit event needs an action and an outcome")
	}
	p, err := m.prepare(ctx, e)
	if err != nil {
		return err
	}

	m.inflight.Add(1)
	m.mu.RLock()
	if !m.started || m.closed {
		m.mu.RUnlock()
		m.inflight.Add(-1)
		return errUnavailable(errClosed)
	}
	select {
	case m.reqs <- p:
		m.mu.RUnlock()
	case <-m.exiting:
		m.mu.RUnlock()
		m.inflight.Add(-1)
		return errUnavailable(errClosed)
	case <-ctx.Done():
		m.mu.RUnlock()
		m.inflight.Add(-1)
		return errUnavailable(ctx.Err())
	}
	select {
	case err := <-p.done:
		if err != nil {
			return errUnavailable(err)
		}
		return nil
	case <-ctx.Done():
		// The event may still commit; answering "not stored" is the
		// safe side of that uncertainty.
		return errUnavailable(ctx.Err())
	}
}

// prepare does all per-event work that does not need the index, outside the
// sequencer: defaults, the split of sensitive values, the details JSON.
func (m *MerkleLog) prepare(ctx context.Context, e Event) (*pending, error) {
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	meta := MetaFrom(ctx)
	if e.IP == "" {
		e.IP = meta.IP
	}
	if e.UserAgent == "" {
		e.UserAgent = meta.UserAgent
	}
	if e.RequestID == "" {
		e.RequestID = meta.RequestID
	}
	details, keyed, ip := m.splitSensitive(e.Details, e.IP)
	js, err := json.Marshal(details)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "internal", "cannot encode audit details", err)
	}
	if details == nil {
		js = []byte("{}")
	}
	p := &pending{
		rec: Record{
			Time: e.Time, ActorType: e.ActorType, ActorID: e.ActorID, Workspace: e.Workspace,
			Action: e.Action, Target: e.Target, Outcome: e.Outcome, IP: ip, UserAgent: e.UserAgent,
			RequestID: e.RequestID, TraceID: e.TraceID, Keyed: keyed,
		},
		details: js,
		done:    make(chan error, 1),
	}
	p.event = e
	p.event.IP = ip
	p.event.Details = nil
	for k, v := range details {
		if p.event.Details == nil {
			p.event.Details = make(map[string]string, len(e.Details))
		}
		p.event.Details[k] = v
	}
	restoreKeyed(&p.event, keyed)
	return p, nil
}

// sequence is the single writer: it groups queued events and commits each
// group with one AppendAudit.
func (m *MerkleLog) sequence(ctx context.Context) {
	defer close(m.seqDone)
	for {
		var first *pending
		select {
		case first = <-m.reqs:
		case <-m.stop:
			m.shutdown(ctx)
			return
		case <-ctx.Done():
			m.shutdown(ctx)
			return
		}
		m.commitBatch(ctx, m.gather(first))
	}
}

// gather fills a batch behind first, for at most BatchWait. While more
// callers are inside Record than in the batch, it waits for them: they are
// on their way. Otherwise it waits only while events keep arriving, each
// within a short gap (BatchWait/10): the callers just released by the
// previous commit come back in a burst, and joining that burst into one
// transaction roughly doubles throughput under load, while a lone caller
// pays only the gap, small next to the commit's fsync.
func (m *MerkleLog) gather(first *pending) []*pending {
	batch := []*pending{first}
	deadline := time.Now().Add(m.cfg.BatchWait)
	gap := m.cfg.BatchWait / 10
	timer := time.NewTimer(m.cfg.BatchWait)
	defer timer.Stop()
	for len(batch) < m.cfg.BatchMax {
		select {
		case p := <-m.reqs:
			batch = append(batch, p)
			continue
		default:
		}
		wait := time.Until(deadline)
		if int64(len(batch)) >= m.inflight.Load() {
			wait = min(wait, gap)
		}
		if wait <= 0 {
			return batch
		}
		timer.Reset(wait)
		select {
		case p := <-m.reqs:
			batch = append(batch, p)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// shutdown stops intake and commits what is already queued.
func (m *MerkleLog) shutdown(ctx context.Context) {
	close(m.exiting)
	m.mu.Lock() // waits out every sender holding the read lock
	m.closed = true
	m.mu.Unlock()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	for {
		var batch []*pending
	drain:
		for len(batch) < m.cfg.BatchMax {
			select {
			case p := <-m.reqs:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			return
		}
		m.commitBatch(fctx, batch)
	}
}

func (m *MerkleLog) commitBatch(ctx context.Context, batch []*pending) {
	events, err := m.commit(ctx, batch)
	m.inflight.Add(-int64(len(batch)))
	if err != nil {
		m.stats.failed.Add(int64(len(batch)))
		m.log.Error("audit batch not committed", "events", len(batch), "error", err)
	} else {
		m.stats.committed.Add(int64(len(batch)))
		m.stats.batches.Add(1)
	}
	for _, p := range batch {
		p.done <- err
	}
	if err != nil {
		return
	}
	if m.d.OnCommit != nil {
		m.d.OnCommit(events)
	}
	if m.since.Add(int64(len(batch))) >= int64(m.cfg.CheckpointEvents) {
		m.since.Store(0)
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// commit appends batch in one transaction. Inside the store's lock it
// numbers the records, seals their details bound to their index, and
// computes the new stored hashes, reading earlier hashes of this same batch
// from memory (they are not in the store yet).
func (m *MerkleLog) commit(ctx context.Context, batch []*pending) ([]Event, error) {
	var first int64
	build := func(size int64, hr tlog.HashReader) ([]Record, []StoredHash, error) {
		recs := make([]Record, 0, len(batch)+1)
		if size == 0 {
			recs = append(recs, Record{
				Time: m.now().UTC().Truncate(time.Microsecond), ActorType: ActorSystem,
				Action: GenesisAction, Outcome: Success,
			})
		}
		for _, p := range batch {
			recs = append(recs, p.rec)
		}
		ov, err := newOverlay(hr, size)
		if err != nil {
			return nil, nil, err
		}
		for i := range recs {
			idx := size + int64(i)
			recs[i].Index = idx
			details := []byte("{}")
			if i >= len(recs)-len(batch) {
				details = batch[i-(len(recs)-len(batch))].details
			}
			sealed, err := m.d.Sealer.Seal(details, m.detailsAD(idx))
			if err != nil {
				return nil, nil, err
			}
			recs[i].Sealed = sealed
			hs, err := tlog.StoredHashesForRecordHash(idx, recs[i].LeafHash(), ov)
			if err != nil {
				return nil, nil, err
			}
			ov.local = append(ov.local, hs...)
		}
		out := make([]StoredHash, len(ov.local))
		for i, h := range ov.local {
			out[i] = StoredHash{Index: ov.start + int64(i), Hash: h}
		}
		first = recs[len(recs)-len(batch)].Index
		return recs, out, nil
	}
	if err := m.d.Store.AppendAudit(ctx, build); err != nil {
		return nil, err
	}
	events := make([]Event, len(batch))
	for i, p := range batch {
		events[i] = p.event
		events[i].ID = first + int64(i)
	}
	return events, nil
}

// detailsAD binds a record's sealed details to this log and its index, so
// sealed details copied to another record do not open.
func (m *MerkleLog) detailsAD(index int64) vault.AD {
	return vault.AD{Table: "audit", Column: "details", Row: m.cfg.Origin + "/" + strconv.FormatInt(index, 10)}
}

// overlay is the HashReader used while building a batch: hashes at or after
// start come from this batch (local), earlier ones from the store, fetched
// once. The only earlier hashes appending can need are the roots of the
// complete subtrees left of size, so those are read up front in one call.
type overlay struct {
	base  tlog.HashReader
	start int64
	local []tlog.Hash
	old   map[int64]tlog.Hash
}

func newOverlay(base tlog.HashReader, size int64) (*overlay, error) {
	o := &overlay{base: base, start: tlog.StoredHashIndex(0, size), old: make(map[int64]tlog.Hash)}
	var idx []int64
	for level := 62; level >= 0; level-- {
		if size>>level&1 == 1 {
			idx = append(idx, tlog.StoredHashIndex(level, size>>level-1))
		}
	}
	if len(idx) == 0 {
		return o, nil
	}
	hs, err := base.ReadHashes(idx)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(idx) {
		return nil, errors.New("audit: store returned the wrong number of hashes")
	}
	for i, x := range idx {
		o.old[x] = hs[i]
	}
	return o, nil
}

func (o *overlay) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var miss []int64
	for i, x := range indexes {
		switch h, ok := o.old[x]; {
		case x >= o.start:
			k := x - o.start
			if k >= int64(len(o.local)) {
				return nil, errors.New("audit: hash read ahead of the tree")
			}
			out[i] = o.local[k]
		case ok:
			out[i] = h
		default:
			miss = append(miss, x)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	hs, err := o.base.ReadHashes(miss)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(miss) {
		return nil, errors.New("audit: store returned the wrong number of hashes")
	}
	for i, x := range miss {
		o.old[x] = hs[i]
	}
	for i, x := range indexes {
		if x < o.start {
			out[i] = o.old[x]
		}
	}
	return out, nil
}

// storeHashes reads the store's stored hashes as a tlog.HashReader.
type storeHashes struct {
	ctx context.Context
	s   interface {
		AuditHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	}
}

func (r storeHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	hs, err := r.s.AuditHashes(r.ctx, indexes)
	if err == nil && len(hs) != len(indexes) {
		err = errors.New("audit: store returned the wrong number of hashes")
	}
	return hs, err
}

// Query returns decrypted events matching f in ID order. AfterID is the
// cursor (the last ID of the previous page); the zero value starts after the
// genesis record. Limit defaults to 100, at most 1000.
func (m *MerkleLog) Query(ctx context.Context, f Filter) ([]Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	return m.Search(ctx, Query{
		Workspace: f.Workspace, ActorID: f.ActorID, Action: f.Action, Outcome: f.Outcome, Since: f.Since, Until: f.Until,
		AfterIndex: max(f.AfterID, -1), Limit: min(limit, MaxQueryLimit),
	})
}

// Search is Query with the store's full selection: workspace, action
// prefixes and exact matches on keyed hashes (see KeyedHash).
func (m *MerkleLog) Search(ctx context.Context, q Query) ([]Event, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultQueryLimit
	}
	q.Limit = min(q.Limit, MaxQueryLimit)
	recs, err := m.d.Store.QueryAudit(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(recs))
	for i := range recs {
		out[i] = m.eventOf(&recs[i])
	}
	return out, nil
}

// eventOf decrypts a record. A record whose details do not open (tampered,
// moved, or its key gone) is still listed, marked undecryptable: one bad row
// must not hide the rest of the trail.
func (m *MerkleLog) eventOf(r *Record) Event {
	e := Event{
		ID: r.Index, Time: r.Time, ActorType: r.ActorType, ActorID: r.ActorID, Workspace: r.Workspace,
		Action: r.Action, Target: r.Target, Outcome: r.Outcome, IP: r.IP, UserAgent: r.UserAgent,
		RequestID: r.RequestID, TraceID: r.TraceID,
	}
	pt, err := m.d.Sealer.Open(r.Sealed, m.detailsAD(r.Index))
	if err == nil {
		err = json.Unmarshal(pt, &e.Details)
	}
	if err != nil {
		m.log.Warn("audit record details undecryptable", "index", r.Index)
		e.Details = map[string]string{"error": "undecryptable"}
	} else if len(e.Details) == 0 {
		e.Details = nil
	}
	restoreKeyed(&e, r.Keyed)
	return e
}
