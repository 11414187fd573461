package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/fault"
)

// VerifySource is what Verify reads: the part of LogStore that holds the
// log. A backup or a read-only replica can be verified the same way.
type VerifySource interface {
	AuditSize(ctx context.Context) (int64, error)
	AuditRecords(ctx context.Context, from, to int64) ([]Record, error)
	AuditHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
}

// Problem kinds.
const (
	// A record's content no longer matches its leaf hash, or a signed
	// checkpoint no longer matches a tree whose hash table was rewritten to
	// hide a change.
	ProblemModified = "modified"
	// A record is missing inside the log.
	ProblemDeleted = "deleted"
	// A record sits at an index other than the one it was committed at.
	ProblemReordered = "reordered"
	// The log is shorter than a checkpoint (stored or witnessed) or its own
	// size says.
	ProblemTruncated = "truncated"
	// A checkpoint's signature does not verify, or its stored size or root
	// disagree with its signed note.
	ProblemForgedCheckpoint = "forged_checkpoint"
	// A stored hash differs from the one recomputed from the records, or is
	// missing, without a changed record to explain it.
	ProblemHashMismatch = "hash_mismatch"
	// A witnessed checkpoint's root differs from the log's at that size.
	ProblemWitnessMismatch = "witness_mismatch"
)

// Problem is one finding. Index is the first affected record (for a
// checkpoint: the first record the contradiction can lie at).
type Problem struct {
	Kind   string
	Index  int64
	Detail string
}

// Report is Verify's result. Problems lists, per kind, the first
// maxProblemsPerKind findings in index order; Counts has the totals.
type Report struct {
	Size        int64
	Checkpoints int // stored checkpoints checked
	Witnessed   int // witnessed notes checked
	Problems    []Problem
	Counts      map[string]int64
	Duration    time.Duration
}

// OK reports whether the log verified without any problem.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// First returns the first problem of kind, if any.
func (r Report) First(kind string) (Problem, bool) {
	for _, p := range r.Problems {
		if p.Kind == kind {
			return p, true
		}
	}
	return Problem{}, false
}

const (
	verifyChunk         = 10000
	verifyReadAhead     = 4
	maxProblemsPerKind  = 20
	maxReorderCandidate = 4096
)

// Verify recomputes the log from its records alone and reports every
// inconsistency: leaf hashes against the stored hash table, the whole
// stored-hash table, index continuity, each stored checkpoint (signature,
// agreement with its note, root at its size) and each witnessed note. It
// needs no decryption key: the leaves commit to the ciphertexts. Records and
// stored hashes are streamed in chunks of 10,000 records; memory is the
// recomputed hash table, about 2N hashes (64 MB per million records).
// An error means the source could not be read; findings are in the Report.
func Verify(ctx context.Context, src VerifySource, verifierKey string, witnessed [][]byte) (Report, error) {
	start := time.Now()
	v := &verifier{src: src, counts: map[string]int64{}}
	size, err := src.AuditSize(ctx)
	if err != nil {
		return Report{}, err
	}
	v.size = size
	v.mine = make([]tlog.Hash, 0, tlog.StoredHashCount(size))
	if err := v.records(ctx); err != nil {
		return Report{}, err
	}
	v.classifyGaps()
	v.classifyMismatches()
	cps, err := src.Checkpoints(ctx)
	if err != nil {
		return Report{}, err
	}
	v.checkpoints(cps, verifierKey)
	v.witnessed(witnessed, verifierKey)

	slices.SortStableFunc(v.problems, func(a, b Problem) int {
		if a.Kind != b.Kind {
			return kindOrder(a.Kind) - kindOrder(b.Kind)
		}
		return int(min(max(a.Index-b.Index, -1), 1))
	})
	return Report{
		Size: size, Checkpoints: len(cps), Witnessed: len(witnessed),
		Problems: v.problems, Counts: v.counts, Duration: time.Since(start),
	}, nil
}

func kindOrder(k string) int {
	return slices.Index([]string{ProblemModified, ProblemDeleted, ProblemReordered, ProblemTruncated,
		ProblemForgedCheckpoint, ProblemHashMismatch, ProblemWitnessMismatch}, k)
}

type verifier struct {
	src      VerifySource
	size     int64
	mine     []tlog.Hash // recomputed stored hashes, by stored-hash index
	bad      []int64     // leaves that are missing or do not match, ascending
	gaps     [][2]int64  // missing records [from, to), ascending
	good     []int64     // checkpoint sizes whose signed root matched, ascending
	mism     []leafMismatch
	problems []Problem
	counts   map[string]int64
}

// leafMismatch keeps a record whose leaf hash differs from the stored one,
// for the reorder analysis at the end.
type leafMismatch struct {
	rec    Record
	stored tlog.Hash
}

func (v *verifier) add(kind string, index int64, detail string) {
	v.counts[kind]++
	if v.counts[kind] <= maxProblemsPerKind {
		v.problems = append(v.problems, Problem{Kind: kind, Index: index, Detail: detail})
	}
}

func (v *verifier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(v.mine)) {
			return nil, fmt.Errorf("audit: verify: hash %d not computed", x)
		}
		out[i] = v.mine[x]
	}
	return out, nil
}

type chunk struct {
	from, to int64
	recs     []Record
	hashes   []tlog.Hash // stored hashes [StoredHashCount(from), StoredHashCount(to))
	missing  []int64     // stored-hash offsets that could not be read
	err      error
}

// records streams the log. Up to verifyReadAhead chunks are read
// concurrently (records, then their stored hashes), each by its own
// goroutine, while this one hashes the chunks in order: reading rows is most
// of the work, and this spreads it over the cores and the database's
// connections.
func (v *verifier) records(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	futures := make(chan chan chunk, verifyReadAhead-1)
	go func() {
		defer close(futures)
		for from := int64(0); from < v.size; from += verifyChunk {
			f := make(chan chunk, 1) // never blocks the reader, even after cancel
			select {
			case futures <- f:
			case <-ctx.Done():
				return
			}
			go func(c chunk) {
				c.recs, c.err = v.src.AuditRecords(ctx, c.from, c.to)
				if c.err == nil {
					v.readHashes(ctx, &c)
				}
				f <- c
			}(chunk{from: from, to: min(from+verifyChunk, v.size)})
		}
	}()
	for f := range futures {
		c := <-f
		if c.err != nil {
			return c.err
		}
		if err := v.chunk(c); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// readHashes reads the stored hashes that records [c.from, c.to) added.
func (v *verifier) readHashes(ctx context.Context, c *chunk) {
	lo, hi := tlog.StoredHashCount(c.from), tlog.StoredHashCount(c.to)
	idx := make([]int64, hi-lo)
	for i := range idx {
		idx[i] = lo + int64(i)
	}
	c.hashes, c.err = v.src.AuditHashes(ctx, idx)
	if c.err == nil && len(c.hashes) != len(idx) {
		c.err = errors.New("audit: verify: store returned the wrong number of hashes")
	}
	if c.err == nil || !fault.Is(c.err, fault.NotFound) {
		return
	}
	// Some stored hashes are gone. Read them one by one (only on this
	// failure path) to say which.
	c.err = nil
	c.hashes = make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, err := v.src.AuditHashes(ctx, []int64{x})
		switch {
		case err == nil && len(h) == 1:
			c.hashes[i] = h[0]
		case err == nil || fault.Is(err, fault.NotFound):
			c.missing = append(c.missing, int64(i))
		default:
			c.err = err
			return
		}
	}
}

// chunk recomputes the stored hashes of records [c.from, c.to) and compares
// them with the store's.
func (v *verifier) chunk(c chunk) error {
	base := tlog.StoredHashCount(c.from)
	missing := make(map[int64]bool, len(c.missing))
	for _, off := range c.missing {
		missing[base+off] = true
	}
	storedLeaf := func(i int64) (tlog.Hash, bool) {
		x := tlog.StoredHashIndex(0, i)
		return c.hashes[x-base], !missing[x]
	}
	// A missing record keeps the store's leaf hash in the recomputation, so
	// one deletion is reported once instead of as a changed tree. Whether
	// it was deleted or cut off with the tail is decided at the end.
	absent := map[int64]bool{}
	gap := func(from, to int64) error {
		if from >= to {
			return nil
		}
		if n := len(v.gaps); n > 0 && v.gaps[n-1][1] == from {
			v.gaps[n-1][1] = to
		} else {
			v.gaps = append(v.gaps, [2]int64{from, to})
		}
		for i := from; i < to; i++ {
			absent[i] = true
			v.bad = append(v.bad, i)
			h, _ := storedLeaf(i)
			if err := v.push(i, h); err != nil {
				return err
			}
		}
		return nil
	}
	next := c.from
	for i := range c.recs {
		r := &c.recs[i]
		if r.Index < next || r.Index >= c.to {
			v.add(ProblemReordered, r.Index, fmt.Sprintf("record %d returned out of order (expected %d)", r.Index, next))
			continue
		}
		if err := gap(next, r.Index); err != nil {
			return err
		}
		lh := r.LeafHash()
		switch sh, ok := storedLeaf(r.Index); {
		case !ok:
			v.bad = append(v.bad, r.Index) // reported with the hashes below
		case sh != lh:
			v.bad = append(v.bad, r.Index)
			if len(v.mism) < maxReorderCandidate {
				v.mism = append(v.mism, leafMismatch{rec: *r, stored: sh})
			} else {
				v.add(ProblemModified, r.Index, fmt.Sprintf("record %d does not match its leaf hash", r.Index))
			}
		}
		if err := v.push(r.Index, lh); err != nil {
			return err
		}
		next = r.Index + 1
	}
	if err := gap(next, c.to); err != nil {
		return err
	}

	for off, h := range c.hashes {
		x := base + int64(off)
		level, n := tlog.SplitStoredHashIndex(x)
		if level == 0 {
			if missing[x] && !absent[n] {
				v.add(ProblemHashMismatch, n, fmt.Sprintf("stored leaf hash of record %d is missing", n))
			}
			continue // leaves were compared above
		}
		if !missing[x] && v.mine[x] == h {
			continue
		}
		if v.explained(n<<level, (n+1)<<level) {
			continue
		}
		what := "differs from the recomputed hash"
		if missing[x] {
			what = "is missing"
		}
		v.add(ProblemHashMismatch, n<<level, fmt.Sprintf("stored hash (level %d, n %d) over records %d..%d %s", level, n, n<<level, (n+1)<<level-1, what))
	}
	return nil
}

func (v *verifier) push(i int64, leaf tlog.Hash) error {
	if want := tlog.StoredHashIndex(0, i); int64(len(v.mine)) != want {
		return fmt.Errorf("audit: verify: internal: hash table at %d, record %d needs %d", len(v.mine), i, want)
	}
	hs, err := tlog.StoredHashesForRecordHash(i, leaf, v)
	if err != nil {
		return err
	}
	v.mine = append(v.mine, hs...)
	return nil
}

// explained reports whether a missing or changed leaf in [lo, hi) accounts
// for a differing hash above it.
func (v *verifier) explained(lo, hi int64) bool {
	k := sort.Search(len(v.bad), func(i int) bool { return v.bad[i] >= lo })
	return k < len(v.bad) && v.bad[k] < hi
}

// classifyGaps reports missing records: a gap that runs to the end of the
// log is a cut tail, any other a deletion.
func (v *verifier) classifyGaps() {
	for _, g := range v.gaps {
		if g[1] == v.size {
			v.add(ProblemTruncated, g[0], fmt.Sprintf("records %d..%d are missing at the end of a log of size %d", g[0], v.size-1, v.size))
			v.counts[ProblemTruncated] += g[1] - g[0] - 1
			continue
		}
		for i := g[0]; i < g[1]; i++ {
			v.add(ProblemDeleted, i, fmt.Sprintf("record %d is missing", i))
		}
	}
}

// classifyMismatches tells reordering from modification: a record whose
// content hashes to the stored leaf of another mismatching index was moved
// there, not changed.
func (v *verifier) classifyMismatches() {
	for i, a := range v.mism {
		moved := int64(-1)
		for j, b := range v.mism {
			if i == j {
				continue
			}
			r := a.rec
			r.Index = b.rec.Index
			if r.LeafHash() == b.stored {
				moved = b.rec.Index
				break
			}
		}
		if moved >= 0 {
			v.add(ProblemReordered, a.rec.Index, fmt.Sprintf("record at %d was committed at %d", a.rec.Index, moved))
		} else {
			v.add(ProblemModified, a.rec.Index, fmt.Sprintf("record %d does not match its leaf hash", a.rec.Index))
		}
	}
}

// checkpoints checks each stored checkpoint against the recomputed tree.
func (v *verifier) checkpoints(cps []Checkpoint, verifierKey string) {
	for _, cp := range cps {
		c, err := OpenCheckpoint(cp.Note, verifierKey)
		if err != nil {
			v.add(ProblemForgedCheckpoint, cp.Size, fmt.Sprintf("checkpoint at size %d: %s", cp.Size, fault.As(err).Message))
			continue
		}
		if c.Size != cp.Size || c.Root != cp.Root {
			v.add(ProblemForgedCheckpoint, cp.Size, fmt.Sprintf("checkpoint at size %d: stored size/root differ from its signed note (size %d)", cp.Size, c.Size))
			continue
		}
		v.matches(c, ProblemModified, "checkpoint")
	}
}

// witnessed checks notes held by witnesses: the log must extend each.
func (v *verifier) witnessed(notes [][]byte, verifierKey string) {
	var cps []Checkpoint
	for i, msg := range notes {
		c, err := OpenCheckpoint(msg, verifierKey)
		if err != nil {
			v.add(ProblemForgedCheckpoint, -1, fmt.Sprintf("witnessed note %d: %s", i, fault.As(err).Message))
			continue
		}
		cps = append(cps, c)
	}
	slices.SortFunc(cps, func(a, b Checkpoint) int { return int(min(max(a.Size-b.Size, -1), 1)) })
	for _, c := range cps {
		v.matches(c, ProblemWitnessMismatch, "witnessed checkpoint")
	}
}

// matches checks a verified checkpoint against the recomputed tree. A root
// difference already explained by a changed or missing record below its size
// is not reported again; otherwise the hash table was rewritten to hide a
// change (or, for a witness, the history was replaced), and the change lies
// after the largest size that did match.
func (v *verifier) matches(c Checkpoint, rootKind, what string) {
	if c.Size > v.size {
		v.add(ProblemTruncated, v.size, fmt.Sprintf("%s at size %d, but the log has %d records", what, c.Size, v.size))
		return
	}
	if c.Size == 0 {
		return
	}
	root, err := tlog.TreeHash(c.Size, v)
	if err == nil && root == c.Root {
		k, _ := slices.BinarySearch(v.good, c.Size)
		v.good = slices.Insert(v.good, k, c.Size)
		return
	}
	if rootKind == ProblemModified && v.explained(0, c.Size) {
		return
	}
	good := int64(0)
	if k, _ := slices.BinarySearch(v.good, c.Size); k > 0 {
		good = v.good[k-1]
	}
	v.add(rootKind, good, fmt.Sprintf("%s at size %d (root %s) contradicts the log's root %s: a record in %d..%d differs from the signed history",
		what, c.Size, c.Root, root, good, c.Size-1))
}
