package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// testLeaf is a stand-in for audit.Record.Leaf: it covers the fields the
// tests vary, so recomputing the tree from the stored records checks them.
func testLeaf(r audit.Record) []byte {
	return fmt.Appendf(nil, "%d|%s|%s|%s|%s|%x", r.Index, r.Action, r.ActorID, r.Target, r.Workspace, r.Sealed)
}

// batchReader overlays the hashes of the batch being built on the store's
// reader: tlog.StoredHashes for the second record of a batch needs hashes
// of the first, which are not committed yet.
type batchReader struct {
	base  tlog.HashReader
	start int64 // tlog.StoredHashCount(size): the first new index
	added []tlog.Hash
}

func (b *batchReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var old []int64
	for _, idx := range indexes {
		if idx < b.start {
			old = append(old, idx)
		}
	}
	var fromBase []tlog.Hash
	if len(old) > 0 {
		var err error
		if fromBase, err = b.base.ReadHashes(old); err != nil {
			return nil, err
		}
	}
	for i, idx := range indexes {
		switch {
		case idx < b.start:
			out[i], fromBase = fromBase[0], fromBase[1:]
		case idx-b.start < int64(len(b.added)):
			out[i] = b.added[idx-b.start]
		default:
			return nil, fmt.Errorf("hash %d not built yet", idx)
		}
	}
	return out, nil
}

// appendRecords appends recs as one batch the way the audit log does:
// indexes from the size read under the lock, stored hashes computed with
// tlog over the transaction's reader. It returns the first index given.
func appendRecords(ctx context.Context, s *store.Store, recs []audit.Record) (int64, error) {
	var first int64
	err := s.AppendAudit(ctx, func(size int64, hr tlog.HashReader) ([]audit.Record, []audit.StoredHash, error) {
		first = size
		out := slices.Clone(recs)
		br := &batchReader{base: hr, start: tlog.StoredHashCount(size)}
		var hashes []audit.StoredHash
		for i := range out {
			out[i].Index = size + int64(i)
			hs, err := tlog.StoredHashes(out[i].Index, testLeaf(out[i]), br)
			if err != nil {
				return nil, nil, err
			}
			for _, h := range hs {
				hashes = append(hashes, audit.StoredHash{Index: br.start + int64(len(br.added)), Hash: h})
				br.added = append(br.added, h)
			}
		}
		return out, hashes, nil
	})
	return first, err
}

func mustAppend(t testing.TB, s *store.Store, recs ...audit.Record) int64 {
	t.Helper()
	first, err := appendRecords(context.Background(), s, recs)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	return first
}

// storeReader is the store as a tlog.HashReader for proofs and tree heads.
func storeReader(ctx context.Context, s *store.Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.AuditHashes(ctx, idx) })
}

// memHashes is an in-memory stored-hash table.
type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx >= int64(len(*m)) {
			return nil, fmt.Errorf("hash %d missing", idx)
		}
		out[i] = (*m)[idx]
	}
	return out, nil
}

// checkLog proves the stored log is whole: indexes exactly 0..size-1, and
// the stored-hash table equal to the one recomputed from the records, so
// every batch's hashes were built on everything committed before it. It
// returns the records.
func checkLog(t *testing.T, s *store.Store) []audit.Record {
	t.Helper()
	ctx := context.Background()
	size, err := s.AuditSize(ctx)
	mustOK(t, err)
	recs, err := s.AuditRecords(ctx, 0, size+10)
	mustOK(t, err)
	if int64(len(recs)) != size {
		t.Fatalf("size %d but %d records", size, len(recs))
	}
	var want memHashes
	for i, r := range recs {
		if r.Index != int64(i) {
			t.Fatalf("record %d has index %d", i, r.Index)
		}
		hs, err := tlog.StoredHashes(r.Index, testLeaf(r), &want)
		mustOK(t, err)
		want = append(want, hs...)
	}
	if int64(len(want)) != tlog.StoredHashCount(size) {
		t.Fatalf("recomputed %d stored hashes for size %d", len(want), size)
	}
	all := make([]int64, len(want))
	for i := range all {
		all[i] = int64(i)
	}
	got, err := s.AuditHashes(ctx, all)
	mustOK(t, err)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stored hash %d differs from the recomputed one", i)
		}
	}
	if _, err := s.AuditHashes(ctx, []int64{int64(len(want))}); !fault.Is(err, fault.NotFound) {
		t.Fatalf("hash past the end: %v, want not found", err)
	}
	return recs
}

func sampleRecord(i int) audit.Record {
	return audit.Record{
		Time:      t0.Add(time.Duration(i) * time.Second),
		ActorType: "user",
		ActorID:   fmt.Sprintf("u%d", i%3),
		Workspace: fmt.Sprintf("ws%d", i%2),
		Action:    "auth.signin",
		Target:    fmt.Sprintf("target-%d", i),
		Outcome:   audit.Outcome("success"),
		IP:        "192.0.2.7",
		UserAgent: "test-agent/1.0",
		RequestID: fmt.Sprintf("req-%d", i),
		TraceID:   fmt.Sprintf("trace-%d", i),
		Sealed:    fmt.Appendf(nil, "sealed-%d", i),
		Keyed:     map[string][]byte{"email": hash(fmt.Sprintf("e%d", i%4)), "token": hash("t")},
	}
}

func TestAuditLogAppendAndRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		size, err := s.AuditSize(ctx)
		if err != nil || size != 0 {
			t.Fatalf("empty size = %d, %v", size, err)
		}
		recs, err := s.AuditRecords(ctx, 0, 10)
		if err != nil || len(recs) != 0 {
			t.Fatalf("empty records = %v, %v", recs, err)
		}
		if _, err := s.AuditHashes(ctx, []int64{0}); !fault.Is(err, fault.NotFound) {
			t.Fatalf("hash of an empty log: %v", err)
		}

		first := []audit.Record{sampleRecord(0), sampleRecord(1), sampleRecord(2)}
		// The empty and nil forms of optional fields read back as nil.
		first[1].Sealed, first[1].Keyed = []byte{}, map[string][]byte{}
		first[2].Sealed, first[2].Keyed = nil, nil
		if at := mustAppend(t, s, first...); at != 0 {
			t.Fatalf("first batch at %d", at)
		}
		if at := mustAppend(t, s, sampleRecord(3), sampleRecord(4)); at != 3 {
			t.Fatalf("second batch at %d", at)
		}
		got := checkLog(t, s)
		want := append(first, sampleRecord(3), sampleRecord(4))
		for i := range want {
			want[i].Index = int64(i)
		}
		want[1].Sealed, want[1].Keyed = nil, nil
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}

		for _, tc := range []struct {
			from, to int64
			want     []int64
		}{
			{1, 2, []int64{1}},
			{3, 100, []int64{3, 4}},
			{2, 2, nil},
			{5, 9, nil},
		} {
			rs, err := s.AuditRecords(ctx, tc.from, tc.to)
			mustOK(t, err)
			if idx := indexes(rs); !slices.Equal(idx, tc.want) {
				t.Errorf("AuditRecords(%d, %d) = %v, want %v", tc.from, tc.to, idx, tc.want)
			}
		}
		for _, r := range [][2]int64{{-1, 3}, {3, 2}} {
			if _, err := s.AuditRecords(ctx, r[0], r[1]); !fault.Is(err, fault.Invalid) {
				t.Errorf("AuditRecords(%d, %d): %v, want invalid", r[0], r[1], err)
			}
		}

		// Hashes come back in the order asked, repeats included.
		order := []int64{5, 0, 3, 0, 7}
		hs, err := s.AuditHashes(ctx, order)
		mustOK(t, err)
		all, err := s.AuditHashes(ctx, []int64{0, 1, 2, 3, 4, 5, 6, 7})
		mustOK(t, err)
		for i, idx := range order {
			if hs[i] != all[idx] {
				t.Errorf("AuditHashes order: position %d is not hash %d", i, idx)
			}
		}
		if hs[1] == hs[0] {
			t.Error("distinct stored hashes are equal")
		}
		if _, err := s.AuditHashes(ctx, []int64{0, 1000}); !fault.Is(err, fault.NotFound) {
			t.Fatalf("one missing hash: %v, want not found", err)
		}
		if hs, err := s.AuditHashes(ctx, nil); err != nil || len(hs) != 0 {
			t.Fatalf("no indexes: %v, %v", hs, err)
		}

		// The tree head read through the store matches the one built in
		// memory, and record proofs check against it.
		var mem memHashes
		for _, r := range got {
			h, err := tlog.StoredHashes(r.Index, testLeaf(r), &mem)
			mustOK(t, err)
			mem = append(mem, h...)
		}
		wantRoot, err := tlog.TreeHash(5, &mem)
		mustOK(t, err)
		root, err := tlog.TreeHash(5, storeReader(ctx, s))
		mustOK(t, err)
		if root != wantRoot {
			t.Fatal("tree hash through the store differs")
		}
		proof, err := tlog.ProveRecord(5, 2, storeReader(ctx, s))
		mustOK(t, err)
		mustOK(t, tlog.CheckRecord(proof, 5, root, 2, tlog.RecordHash(testLeaf(got[2]))))
	})
}

func indexes(rs []audit.Record) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.Index)
	}
	return out
}

func TestAppendAuditRejectsBadBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mustAppend(t, s, sampleRecord(0), sampleRecord(1))
		// valid returns a correct batch of two records at size.
		valid := func(size int64, hr tlog.HashReader) ([]audit.Record, []audit.StoredHash) {
			var recs []audit.Record
			var hashes []audit.StoredHash
			br := &batchReader{base: hr, start: tlog.StoredHashCount(size)}
			for i := range 2 {
				r := sampleRecord(int(size) + i)
				r.Index = size + int64(i)
				hs, err := tlog.StoredHashes(r.Index, testLeaf(r), br)
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range hs {
					hashes = append(hashes, audit.StoredHash{Index: br.start + int64(len(br.added)), Hash: h})
					br.added = append(br.added, h)
				}
				recs = append(recs, r)
			}
			return recs, hashes
		}
		buildErr := errors.New("build failed")
		for _, tc := range []struct {
			name   string
			mangle func(recs []audit.Record, hashes []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error)
			want   error // nil: any Internal error
		}{
			{"build error", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				return r, h, buildErr
			}, buildErr},
			{"first index overwrites", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				r[0].Index, r[1].Index = 1, 2
				return r, h, nil
			}, nil},
			{"gap", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				r[1].Index++
				return r, h, nil
			}, nil},
			{"swapped", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				r[0], r[1] = r[1], r[0]
				return r, h, nil
			}, nil},
			{"missing hash", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				return r, h[1:], nil
			}, nil},
			{"extra hash", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				return r, append(h, audit.StoredHash{Index: h[len(h)-1].Index + 1}), nil
			}, nil},
			{"hash overwrites", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				h[0].Index = 0
				return r, h, nil
			}, nil},
			{"repeated hash", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				h[1].Index = h[0].Index
				return r, h, nil
			}, nil},
			{"hashes without records", func(r []audit.Record, h []audit.StoredHash) ([]audit.Record, []audit.StoredHash, error) {
				return nil, h, nil
			}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := s.AppendAudit(ctx, func(size int64, hr tlog.HashReader) ([]audit.Record, []audit.StoredHash, error) {
					return tc.mangle(valid(size, hr))
				})
				switch {
				case tc.want != nil && !errors.Is(err, tc.want):
					t.Fatalf("error = %v, want %v", err, tc.want)
				case tc.want == nil && !fault.Is(err, fault.Internal):
					t.Fatalf("error = %v, want internal", err)
				}
				checkLog(t, s)
				if size, _ := s.AuditSize(ctx); size != 2 {
					t.Fatalf("a rejected batch changed the size to %d", size)
				}
			})
		}
		// An empty batch is a no-op, and the log goes on where it was.
		mustOK(t, s.AppendAudit(ctx, func(int64, tlog.HashReader) ([]audit.Record, []audit.StoredHash, error) {
			return nil, nil, nil
		}))
		mustOK(t, s.AppendAudit(ctx, func(size int64, hr tlog.HashReader) ([]audit.Record, []audit.StoredHash, error) {
			r, h := valid(size, hr)
			return r, h, nil
		}))
		if recs := checkLog(t, s); len(recs) != 4 {
			t.Fatalf("%d records", len(recs))
		}
	})
}

func TestQueryAudit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ip := hash("ip:192.0.2.7")
		mk := func(ws, actor, action, outcome string, sec int, keyed map[string][]byte) audit.Record {
			return audit.Record{Time: t0.Add(time.Duration(sec) * time.Second), ActorID: actor, Workspace: ws,
				Action: action, Outcome: audit.Outcome(outcome), Keyed: keyed}
		}
		mustAppend(t, s,
			mk("a", "u1", "auth.signin", "success", 0, map[string][]byte{"email": hash("x"), "ip": ip}), // 0
			mk("a", "u2", "auth.signin", "failure", 1, map[string][]byte{"email": hash("y")}),           // 1
			mk("b", "u1", "auth.mfa.verify", "success", 2, nil),                                         // 2
			mk("b", "u3", "authz.check", "success", 3, map[string][]byte{"ip": ip}),                     // 3
			mk("a", "u1", "auth", "success", 4, nil),                                                    // 4
			mk("", "op", "vault.read", "denied", 5, map[string][]byte{"email": hash("x")}),              // 5
		)
		mustAppend(t, s,
			mk("a", "u1", "auth/x", "success", 6, nil),                                  // 6: just past the "auth." range
			mk("b", "u2", "auth.", "success", 7, map[string][]byte{"token": hash("x")}), // 7
		)
		all := []int64{0, 1, 2, 3, 4, 5, 6, 7}
		for _, tc := range []struct {
			name string
			q    audit.Query
			want []int64
		}{
			{"everything", audit.Query{AfterIndex: -1}, all},
			{"zero AfterIndex skips record 0", audit.Query{}, all[1:]},
			{"after 5", audit.Query{AfterIndex: 5}, []int64{6, 7}},
			{"workspace", audit.Query{AfterIndex: -1, Workspace: "a"}, []int64{0, 1, 4, 6}},
			{"actor", audit.Query{AfterIndex: -1, ActorID: "u1"}, []int64{0, 2, 4, 6}},
			{"exact action", audit.Query{AfterIndex: -1, Action: "auth.signin"}, []int64{0, 1}},
			{"exact action without dot", audit.Query{AfterIndex: -1, Action: "auth"}, []int64{4}},
			{"action prefix", audit.Query{AfterIndex: -1, Action: "auth."}, []int64{0, 1, 2, 7}},
			{"nested prefix", audit.Query{AfterIndex: -1, Action: "auth.mfa."}, []int64{2}},
			{"outcome", audit.Query{AfterIndex: -1, Outcome: "success"}, []int64{0, 2, 3, 4, 6, 7}},
			{"since inclusive", audit.Query{AfterIndex: -1, Since: t0.Add(5 * time.Second)}, []int64{5, 6, 7}},
			{"until exclusive", audit.Query{AfterIndex: -1, Until: t0.Add(2 * time.Second)}, []int64{0, 1}},
			{"window", audit.Query{AfterIndex: -1, Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}, []int64{1, 2}},
			{"keyed", audit.Query{AfterIndex: -1, KeyedName: "email", KeyedValue: hash("x")}, []int64{0, 5}},
			{"keyed other name", audit.Query{AfterIndex: -1, KeyedName: "ip", KeyedValue: ip}, []int64{0, 3}},
			{"keyed value under another name", audit.Query{AfterIndex: -1, KeyedName: "token", KeyedValue: ip}, nil},
			{"keyed no match", audit.Query{AfterIndex: -1, KeyedName: "email", KeyedValue: hash("z")}, nil},
			{"keyed and workspace", audit.Query{AfterIndex: -1, KeyedName: "ip", KeyedValue: ip, Workspace: "b"}, []int64{3}},
			{"keyed after cursor", audit.Query{AfterIndex: 0, KeyedName: "email", KeyedValue: hash("x")}, []int64{5}},
			{"combined", audit.Query{AfterIndex: -1, Workspace: "a", ActorID: "u1", Action: "auth.", Outcome: "success"}, []int64{0}},
			{"limit", audit.Query{AfterIndex: 1, Limit: 2}, []int64{2, 3}},
			{"no match", audit.Query{AfterIndex: -1, Workspace: "c"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rs, err := s.QueryAudit(ctx, tc.q)
				mustOK(t, err)
				if got := indexes(rs); !slices.Equal(got, tc.want) {
					t.Fatalf("QueryAudit = %v, want %v", got, tc.want)
				}
			})
		}
		rs, err := s.QueryAudit(ctx, audit.Query{AfterIndex: -1, KeyedName: "email", KeyedValue: hash("x")})
		mustOK(t, err)
		if !bytes.Equal(rs[0].Keyed["ip"], ip) || len(rs[0].Keyed) != 2 {
			t.Fatalf("a keyed search returns the whole record: %+v", rs[0])
		}
		if _, err := s.QueryAudit(ctx, audit.Query{KeyedValue: ip}); !fault.Is(err, fault.Invalid) {
			t.Fatalf("keyed value without a name: %v", err)
		}
	})
}

func TestQueryAuditLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		recs := make([]audit.Record, 1100)
		for i := range recs {
			recs[i] = audit.Record{Time: t0, Action: "a.b", Outcome: "success"}
		}
		mustAppend(t, s, recs...)
		for _, tc := range []struct{ limit, want int }{{0, store.DefaultAuditLimit}, {-3, store.DefaultAuditLimit}, {7, 7}, {5000, store.MaxAuditLimit}} {
			rs, err := s.QueryAudit(ctx, audit.Query{AfterIndex: -1, Limit: tc.limit})
			mustOK(t, err)
			if len(rs) != tc.want || rs[0].Index != 0 {
				t.Errorf("Limit %d: %d records from %d, want %d from 0", tc.limit, len(rs), rs[0].Index, tc.want)
			}
		}
	})
}

// TestQueryAuditKeyedPlan checks that an exact keyed search is served by
// audit_keyed's primary key rather than a scan, on the query shape
// QueryAudit sends.
func TestQueryAuditKeyedPlan(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const query = `SELECT l.idx FROM audit_log l JOIN audit_keyed k ON k.idx = l.idx
			WHERE k.name = ? AND k.value = ? AND l.idx > ? ORDER BY l.idx LIMIT ?`
		explain := "EXPLAIN QUERY PLAN "
		if s.Engine() == store.EnginePostgres {
			// A tiny table would be scanned whatever the indexes; forbid
			// scans to learn whether an index can serve the search.
			explain = "EXPLAIN "
		}
		var plan []string
		err := func() error {
			conn, err := s.DB().Conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			if s.Engine() == store.EnginePostgres {
				if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
					return err
				}
				defer conn.ExecContext(ctx, "RESET enable_seqscan") //nolint:errcheck
			}
			rows, err := conn.QueryContext(ctx, explain+s.Q(query), "email", hash("x"), -1, 100)
			if err != nil {
				return err
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
			}
			return rows.Err()
		}()
		mustOK(t, err)
		text := strings.Join(plan, "\n")
		var ok bool
		if s.Engine() == store.EnginePostgres {
			ok = strings.Contains(text, "audit_keyed_pkey") && !strings.Contains(text, "Seq Scan on audit_keyed")
		} else {
			ok = strings.Contains(text, "SEARCH k USING PRIMARY KEY (name=? AND value=?")
		}
		if !ok {
			t.Fatalf("keyed search plan does not use audit_keyed's key:\n%s", text)
		}
	})
}

func TestAuditCheckpoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.LatestCheckpoint(ctx); !fault.Is(err, fault.NotFound) {
			t.Fatalf("LatestCheckpoint of none: %v", err)
		}
		cs, err := s.Checkpoints(ctx)
		if err != nil || len(cs) != 0 {
			t.Fatalf("Checkpoints of none = %v, %v", cs, err)
		}
		root := func(b byte) tlog.Hash { return tlog.Hash(bytes.Repeat([]byte{b}, 32)) }
		cp := func(size int64, r byte) audit.Checkpoint {
			return audit.Checkpoint{Size: size, Root: root(r), Note: fmt.Appendf(nil, "origin\n%d\nroot\n\n— sig\n", size), CreatedAt: t0.Add(time.Duration(size) * time.Second)}
		}
		if err := s.SaveCheckpoint(ctx, cp(1, 1)); !fault.Is(err, fault.Invalid) {
			t.Fatalf("checkpoint beyond the log: %v", err)
		}
		for range 5 {
			mustAppend(t, s, sampleRecord(0))
		}
		mustOK(t, s.SaveCheckpoint(ctx, cp(5, 5)))
		mustOK(t, s.SaveCheckpoint(ctx, cp(2, 2)))
		mustOK(t, s.SaveCheckpoint(ctx, cp(0, 0)))
		// The same head again (a retry, a second node) is fine and keeps
		// the first note.
		again := cp(5, 5)
		again.Note = []byte("another signature")
		mustOK(t, s.SaveCheckpoint(ctx, again))

		for _, tc := range []struct {
			name string
			c    audit.Checkpoint
			kind fault.Kind
		}{
			{"another root for a stored size", cp(5, 9), fault.Conflict},
			{"negative size", cp(-1, 1), fault.Invalid},
			{"no note", audit.Checkpoint{Size: 3, Root: root(3)}, fault.Invalid},
			{"beyond the log", cp(6, 6), fault.Invalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantKind(t, s.SaveCheckpoint(ctx, tc.c), tc.kind)
			})
		}

		cs, err = s.Checkpoints(ctx)
		mustOK(t, err)
		want := []audit.Checkpoint{cp(0, 0), cp(2, 2), cp(5, 5)}
		if !reflect.DeepEqual(cs, want) {
			t.Fatalf("Checkpoints =\n%+v\nwant\n%+v", cs, want)
		}
		latest, err := s.LatestCheckpoint(ctx)
		mustOK(t, err)
		if !reflect.DeepEqual(*latest, cp(5, 5)) {
			t.Fatalf("LatestCheckpoint = %+v", latest)
		}

		// A zero CreatedAt is stamped.
		mustAppend(t, s, sampleRecord(0))
		before := time.Now().Add(-time.Second)
		c := cp(6, 6)
		c.CreatedAt = time.Time{}
		mustOK(t, s.SaveCheckpoint(ctx, c))
		latest, err = s.LatestCheckpoint(ctx)
		mustOK(t, err)
		if latest.Size != 6 || latest.CreatedAt.Before(before) {
			t.Fatalf("stamped checkpoint = %+v", latest)
		}
	})
}

func TestAuditSinkCursors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		cursor := func(sink string) int64 {
			t.Helper()
			n, err := s.SinkCursor(ctx, sink)
			mustOK(t, err)
			return n
		}
		if n := cursor("siem"); n != -1 {
			t.Fatalf("default cursor = %d", n)
		}
		for _, tc := range []struct {
			set, want int64
		}{
			{-1, -1}, // the default, explicitly
			{5, 5},
			{3, 5}, // backwards: ignored
			{5, 5},
			{0, 5},
			{9, 9},
		} {
			mustOK(t, s.SetSinkCursor(ctx, "siem", tc.set))
			if n := cursor("siem"); n != tc.want {
				t.Fatalf("after SetSinkCursor(%d) cursor = %d, want %d", tc.set, n, tc.want)
			}
		}
		if n := cursor("webhook"); n != -1 {
			t.Fatalf("another sink's cursor = %d", n)
		}
		mustOK(t, s.SetSinkCursor(ctx, "webhook", 0))
		if a, b := cursor("siem"), cursor("webhook"); a != 9 || b != 0 {
			t.Fatalf("cursors = %d, %d", a, b)
		}
		wantKind(t, s.SetSinkCursor(ctx, "siem", -2), fault.Invalid)
		wantKind(t, s.SetSinkCursor(ctx, "", 1), fault.Invalid)
	})
}

// TestAppendAuditConcurrent runs 8 appenders at once: each batch lands in
// one contiguous run of indexes, the runs tile 0..N-1 exactly, and every
// batch's hashes were built on all earlier batches.
func TestAppendAuditConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const writers, batches = 8, 30
		type run struct {
			first int64
			n     int
			who   string
		}
		var mu sync.Mutex
		var runs []run
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for b := range batches {
					n := 1 + (w+b)%7
					recs := make([]audit.Record, n)
					who := fmt.Sprintf("w%d-b%d", w, b)
					for i := range recs {
						recs[i] = audit.Record{Time: t0, ActorID: who, Action: "x.y", Outcome: "success", Target: strconv.Itoa(i)}
					}
					first, err := appendRecords(ctx, s, recs)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					runs = append(runs, run{first, n, who})
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		recs := checkLog(t, s)
		slices.SortFunc(runs, func(a, b run) int { return int(a.first - b.first) })
		var next int64
		for _, r := range runs {
			if r.first != next {
				t.Fatalf("batch %s starts at %d, want %d", r.who, r.first, next)
			}
			for i := range r.n {
				if got := recs[next+int64(i)]; got.ActorID != r.who || got.Target != strconv.Itoa(i) {
					t.Fatalf("record %d is %s/%s, want %s/%d", next+int64(i), got.ActorID, got.Target, r.who, i)
				}
			}
			next += int64(r.n)
		}
		if next != int64(len(recs)) || len(runs) != writers*batches {
			t.Fatalf("%d batches cover %d of %d records", len(runs), next, len(recs))
		}
	})
}

// TestAuditAppendOnly proves the database refuses to change history. On
// PostgreSQL rampart_app holds only SELECT and INSERT on the audit tables;
// on SQLite triggers abort. Tests that tamper on purpose go around both as
// shown at the end.
func TestAuditAppendOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mustAppend(t, s, sampleRecord(0), sampleRecord(1))
		c := audit.Checkpoint{Size: 2, Root: tlog.Hash{1}, Note: []byte("n")}
		mustOK(t, s.SaveCheckpoint(ctx, c))
		mustOK(t, s.SetSinkCursor(ctx, "siem", 0))
		pg := s.Engine() == store.EnginePostgres

		refused := []string{
			"UPDATE audit_log SET action = 'x'",
			"DELETE FROM audit_log WHERE idx = 1",
			"UPDATE audit_keyed SET value = value",
			"DELETE FROM audit_keyed",
			"UPDATE audit_hashes SET hash = hash",
			"DELETE FROM audit_hashes",
			"UPDATE audit_checkpoints SET note = note",
			"DELETE FROM audit_checkpoints",
		}
		if pg {
			refused = append(refused, "TRUNCATE audit_log", "TRUNCATE audit_hashes", "DELETE FROM audit_sink_cursors")
		}
		for _, q := range refused {
			t.Run(q, func(t *testing.T) {
				_, err := s.DB().ExecContext(ctx, q)
				var pe *pgconn.PgError
				switch {
				case pg && (!errors.As(err, &pe) || pe.Code != "42501"):
					t.Fatalf("error = %v, want insufficient privilege (42501)", err)
				case !pg && (err == nil || !strings.Contains(err.Error(), "is append-only")):
					t.Fatalf("error = %v, want the append-only trigger", err)
				}
			})
		}
		// The sink cursor is the one audit row the application updates.
		_, err := s.DB().ExecContext(ctx, s.Q("UPDATE audit_sink_cursors SET idx = ? WHERE sink = ?"), 1, "siem")
		mustOK(t, err)
		checkLog(t, s)

		// A deliberate tamper: as the owner on PostgreSQL (the role
		// migrations run as), after dropping the trigger on SQLite.
		tamper := func(tx *sql.Tx) error {
			if pg {
				if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE NONE"); err != nil {
					return err
				}
			} else if _, err := tx.ExecContext(ctx, "DROP TRIGGER audit_log_no_update"); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "UPDATE audit_log SET action = 'tampered' WHERE idx = 1")
			return err
		}
		tx, err := s.DB().BeginTx(ctx, nil)
		mustOK(t, err)
		if err := tamper(tx); err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
		mustOK(t, tx.Commit())
		rs, err := s.AuditRecords(ctx, 1, 2)
		mustOK(t, err)
		if rs[0].Action != "tampered" {
			t.Fatalf("the deliberate tamper did not apply: %+v", rs[0])
		}
	})
}

// Environment of TestHelperAuditWriter, the child process of
// TestAuditTwoProcesses.
const (
	envHelperDSN     = "RAMPART_TEST_AUDIT_HELPER_DSN"
	envHelperWriter  = "RAMPART_TEST_AUDIT_HELPER_WRITER"
	envHelperBatches = "RAMPART_TEST_AUDIT_HELPER_BATCHES"
	envHelperStart   = "RAMPART_TEST_AUDIT_HELPER_START"
	helperBatchSize  = 5
)

// TestHelperAuditWriter is not a test on its own: TestAuditTwoProcesses
// runs the test binary with it selected and the environment above set, to
// get a second writer in another OS process. Without the environment it
// returns at once.
func TestHelperAuditWriter(t *testing.T) {
	dsn := os.Getenv(envHelperDSN)
	if dsn == "" {
		return
	}
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{DSN: dsn})
	mustOK(t, err)
	defer s.Close()
	batches, err := strconv.Atoi(os.Getenv(envHelperBatches))
	mustOK(t, err)
	start, err := strconv.ParseInt(os.Getenv(envHelperStart), 10, 64)
	mustOK(t, err)
	// Both writers start together, so their batches interleave.
	time.Sleep(time.Until(time.Unix(0, start)))
	writer := os.Getenv(envHelperWriter)
	for b := range batches {
		recs := make([]audit.Record, helperBatchSize)
		for i := range recs {
			recs[i] = audit.Record{Time: t0, ActorID: writer, Action: "two.process", Outcome: "success",
				Target: strconv.Itoa(b*helperBatchSize + i)}
		}
		if _, err := appendRecords(ctx, s, recs); err != nil {
			t.Fatalf("writer %s batch %d: %v", writer, b, err)
		}
	}
}

// TestAuditTwoProcesses has two OS processes append to one PostgreSQL
// database at once: the advisory lock must make them build one tree, with
// indexes exactly 0..N-1, each batch's hashes built on every batch the
// other process committed before it.
func TestAuditTwoProcesses(t *testing.T) {
	const batches = 2000
	ctx := context.Background()
	dsn := storetest.DSN(t, store.EnginePostgres)
	s := storetest.OpenDSN(t, dsn)
	mustOK(t, s.Migrate(ctx))

	start := time.Now().Add(2 * time.Second).UnixNano()
	writers := []string{"alpha", "beta"}
	cmds := make([]*exec.Cmd, len(writers))
	outs := make([]*bytes.Buffer, len(writers))
	for i, w := range writers {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAuditWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), envHelperDSN+"="+dsn, envHelperWriter+"="+w,
			envHelperBatches+"="+strconv.Itoa(batches), envHelperStart+"="+strconv.FormatInt(start, 10))
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		mustOK(t, cmd.Start())
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %s: %v\n%s", writers[i], err, outs[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	recs := checkLog(t, s)
	if want := len(writers) * batches * helperBatchSize; len(recs) != want {
		t.Fatalf("%d records, want %d", len(recs), want)
	}
	// Each writer's records appear in its own order, in whole batches, and
	// the two writers interleaved.
	next := map[string]int{}
	switches := 0
	for i, r := range recs {
		if r.Target != strconv.Itoa(next[r.ActorID]) {
			t.Fatalf("record %d is %s #%s, want #%d", i, r.ActorID, r.Target, next[r.ActorID])
		}
		if next[r.ActorID]%helperBatchSize != 0 && recs[i-1].ActorID != r.ActorID {
			t.Fatalf("record %d splits a batch of %s", i, r.ActorID)
		}
		next[r.ActorID]++
		if i > 0 && recs[i-1].ActorID != r.ActorID {
			switches++
		}
	}
	if switches < 2 {
		t.Fatalf("the writers switched %d times: they did not run concurrently", switches)
	}
	t.Logf("%d records from two processes, %d switches between them", len(recs), switches)
}

// BenchmarkAppendAudit appends batches of 500 events the way the audit log
// does (stored hashes built with tlog over the transaction's reader) and
// reports events/s.
func BenchmarkAppendAudit(b *testing.B) {
	const batch = 500
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, engine)
			recs := make([]audit.Record, batch)
			for i := range recs {
				r := sampleRecord(i)
				r.Sealed = bytes.Repeat([]byte{byte(i)}, 120) // a sealed details blob
				r.Keyed = map[string][]byte{"email": hash(strconv.Itoa(i))}
				recs[i] = r
			}
			for b.Loop() {
				if _, err := appendRecords(ctx, s, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
