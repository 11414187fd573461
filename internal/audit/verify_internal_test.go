package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/fault"
)

// memSource is an in-memory VerifySource: records by index and stored
// hashes by stored-hash index, with a size that may lie.
type memSource struct {
	size   int64
	recs   map[int64]Record
	hashes memHashes
}

func (s *memSource) AuditSize(context.Context) (int64, error) { return s.size, nil }

func (s *memSource) AuditRecords(_ context.Context, from, to int64) ([]Record, error) {
	var out []Record
	for i := from; i < to; i++ {
		if r, ok := s.recs[i]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *memSource) AuditHashes(_ context.Context, idx []int64) ([]tlog.Hash, error) {
	hs, err := s.hashes.ReadHashes(idx)
	if err != nil {
		return nil, fault.NotFoundf("not_found", "%v", err)
	}
	return hs, nil
}

func (s *memSource) Checkpoints(context.Context) ([]Checkpoint, error) { return nil, nil }

// newMemSource builds a log of n records across several verify chunks.
func newMemSource(t *testing.T, n int) *memSource {
	t.Helper()
	s := &memSource{size: int64(n), recs: map[int64]Record{}, hashes: memHashes{}}
	var leaves []tlog.Hash
	for i := range n {
		r := Record{Index: int64(i), Time: time.UnixMicro(int64(i)).UTC(), Action: "a.b", Outcome: Success,
			Target: fmt.Sprint(i), Sealed: []byte{byte(i)}}
		s.recs[int64(i)] = r
		leaves = append(leaves, r.LeafHash())
	}
	for from := 0; from < n; from += 4096 {
		appendBatch(t, s.hashes, int64(from), leaves[from:min(from+4096, n)])
	}
	return s
}

// TestVerifyAcrossChunks: findings that straddle the 10,000-record chunks
// are reported once, with exact indexes and counts.
func TestVerifyAcrossChunks(t *testing.T) {
	const n = 25_000
	tests := []struct {
		name      string
		mutate    func(s *memSource)
		wantKind  string
		wantIndex int64
		wantCount int64
	}{
		{"clean", func(*memSource) {}, "", 0, 0},
		{"deleted across a chunk boundary", func(s *memSource) {
			delete(s.recs, 9_999)
			delete(s.recs, 10_000)
		}, ProblemDeleted, 9_999, 2},
		{"tail missing over two chunks, size unchanged", func(s *memSource) {
			for i := int64(15_000); i < n; i++ {
				delete(s.recs, i)
			}
		}, ProblemTruncated, 15_000, 10_000},
		{"many modified: counted, listed up to the cap", func(s *memSource) {
			for i := int64(100); i < 200; i++ {
				r := s.recs[i]
				r.Target = "changed"
				s.recs[i] = r
			}
		}, ProblemModified, 100, 100},
		{"interior hash changed", func(s *memSource) {
			x := tlog.StoredHashIndex(3, 2_000)
			h := s.hashes[x]
			h[0] ^= 1
			s.hashes[x] = h
		}, ProblemHashMismatch, 16_000, 1},
		{"interior hash missing", func(s *memSource) {
			delete(s.hashes, tlog.StoredHashIndex(1, 10_001))
		}, ProblemHashMismatch, 20_002, 1},
		{"leaf hash missing", func(s *memSource) {
			delete(s.hashes, tlog.StoredHashIndex(0, 24_999))
		}, ProblemHashMismatch, 24_999, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemSource(t, n)
			tt.mutate(s)
			rep, err := Verify(context.Background(), s, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantKind == "" {
				if !rep.OK() || rep.Size != n {
					t.Fatalf("report = %+v", rep)
				}
				return
			}
			if len(rep.Counts) != 1 || rep.Counts[tt.wantKind] != tt.wantCount {
				t.Fatalf("counts = %v, want only %s: %d\n%+v", rep.Counts, tt.wantKind, tt.wantCount, rep.Problems)
			}
			p, ok := rep.First(tt.wantKind)
			if !ok || p.Index != tt.wantIndex {
				t.Fatalf("first %s = %+v, want index %d", tt.wantKind, p, tt.wantIndex)
			}
			if int64(len(rep.Problems)) != min(tt.wantCount, maxProblemsPerKind) && tt.wantKind != ProblemTruncated {
				t.Fatalf("%d problems listed for %d findings", len(rep.Problems), tt.wantCount)
			}
		})
	}
}
