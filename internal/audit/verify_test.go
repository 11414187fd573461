package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// tamperLog is the log every tamper case starts from: the genesis record and
// 50 events, checkpoints at sizes 26 and 51 (both witnessed).
type tamperLog struct {
	s       *store.Store
	k       testKeys
	m       *audit.MerkleLog
	witness *memWitness
	size    int64
}

func newTamperLog(t *testing.T, s *store.Store) *tamperLog {
	t.Helper()
	ctx := context.Background()
	tl := &tamperLog{s: s, k: newKeys(t), witness: &memWitness{}}
	tl.m = startLog(t, s, tl.k, audit.LogConfig{}, audit.LogDeps{Witnesses: []audit.Witness{tl.witness}})
	for i := range 50 {
		e := event(i)
		e.Details["email"] = fmt.Sprintf("user%d@example.com", i)
		if err := tl.m.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		if i == 24 || i == 49 {
			if _, err := tl.m.CheckpointNow(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	tl.size = 51
	if got := len(tl.witness.held()); got != 2 {
		t.Fatalf("witness holds %d checkpoints, want 2", got)
	}
	return tl
}

// rewriteHashes recomputes the stored-hash table from the (tampered)
// records and writes every hash that changed: a tamperer covering tracks.
func (tl *tamperLog) rewriteHashes(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	size, err := tl.s.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := tl.s.AuditRecords(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	want := storedHashes(t, recs)
	idx := make([]int64, len(want))
	for i := range idx {
		idx[i] = int64(i)
	}
	have, err := tl.s.AuditHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	var stmts []stmt
	for i := range want {
		if want[i] != have[i] {
			stmts = append(stmts, sq("UPDATE audit_hashes SET hash = ? WHERE idx = ?", want[i][:], int64(i)))
		}
	}
	if len(stmts) == 0 {
		t.Fatal("nothing to rewrite")
	}
	tamper(t, tl.s, stmts...)
}

// forgedNote signs a checkpoint for this origin with a key that is not the
// log's.
func forgedNote(t *testing.T, size int64, root tlog.Hash) []byte {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 0x42
	skey, _, err := note.GenerateKey(bytes.NewReader(seed), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("%s\n%d\n%s\n", testOrigin, size, base64.StdEncoding.EncodeToString(root[:]))
	msg, err := note.Sign(&note.Note{Text: body}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestVerifyTamperMatrix changes the database directly, as an attacker
// with write access would, and checks that Verify names each change with
// the right kind at the right index; the untouched log verifies clean.
func TestVerifyTamperMatrix(t *testing.T) {
	ctx := context.Background()
	hashIdx := tlog.StoredHashIndex
	type want struct {
		kind  string
		index int64
	}
	tests := []struct {
		name string
		do   func(t *testing.T, tl *tamperLog)
		// witnessed adds the witness's notes to Verify.
		witnessed bool
		want      []want // exactly these kinds, each with its first index
	}{
		{name: "untouched", do: func(*testing.T, *tamperLog) {}, witnessed: true},
		{name: "update a field", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_log SET outcome = 'failure' WHERE idx = 10"))
		}, want: []want{{audit.ProblemModified, 10}}},
		{name: "update time", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_log SET time = time + 1 WHERE idx = 33"))
		}, want: []want{{audit.ProblemModified, 33}}},
		{name: "update keyed hash", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_log SET keyed = NULL WHERE idx = 5"))
		}, want: []want{{audit.ProblemModified, 5}}},
		{name: "sealed details copied from another record", do: func(t *testing.T, tl *tamperLog) {
			recs, err := tl.s.AuditRecords(ctx, 3, 4)
			if err != nil {
				t.Fatal(err)
			}
			tamper(t, tl.s, sq("UPDATE audit_log SET sealed = ? WHERE idx = 4", recs[0].Sealed))
		}, want: []want{{audit.ProblemModified, 4}}},
		{name: "delete a record", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("DELETE FROM audit_log WHERE idx = 17"))
		}, want: []want{{audit.ProblemDeleted, 17}}},
		{name: "delete a record and its hashes", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("DELETE FROM audit_log WHERE idx = 17"),
				sq("DELETE FROM audit_hashes WHERE idx = ?", hashIdx(0, 17)))
		}, want: []want{{audit.ProblemDeleted, 17}}},
		{name: "swap two records (reorder)", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s,
				sq("UPDATE audit_log SET idx = 1000000 WHERE idx = 12"),
				sq("UPDATE audit_log SET idx = 12 WHERE idx = 30"),
				sq("UPDATE audit_log SET idx = 30 WHERE idx = 1000000"))
		}, want: []want{{audit.ProblemReordered, 12}}},
		{name: "truncate the tail", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("DELETE FROM audit_log WHERE idx >= 40"),
				sq("DELETE FROM audit_hashes WHERE idx >= ?", tlog.StoredHashCount(40)))
		}, want: []want{{audit.ProblemTruncated, 40}}},
		{name: "modify and rewrite the hash table", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_log SET actor_id = 'usr_admin' WHERE idx = 10"))
			tl.rewriteHashes(t)
		}, want: []want{{audit.ProblemModified, 0}}},
		{name: "modify after the last checkpoint but one and rewrite", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_log SET target = 'x' WHERE idx = 40"))
			tl.rewriteHashes(t)
		}, want: []want{{audit.ProblemModified, 26}}},
		{name: "stored interior hash changed", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_hashes SET hash = ? WHERE idx = ?", make([]byte, 32), hashIdx(2, 3)))
		}, want: []want{{audit.ProblemHashMismatch, 12}}},
		{name: "stored checkpoint root changed", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_checkpoints SET root = ? WHERE size = 26", make([]byte, 32)))
		}, want: []want{{audit.ProblemForgedCheckpoint, 26}}},
		{name: "checkpoint note body edited", do: func(t *testing.T, tl *tamperLog) {
			cps, err := tl.s.Checkpoints(ctx)
			if err != nil {
				t.Fatal(err)
			}
			edited := []byte(string(cps[1].Note[:len(testOrigin)+1]) + "52" + string(cps[1].Note[len(testOrigin)+3:]))
			tamper(t, tl.s, sq("UPDATE audit_checkpoints SET note = ? WHERE size = 51", edited))
		}, want: []want{{audit.ProblemForgedCheckpoint, 51}}},
		{name: "checkpoint forged with another key", do: func(t *testing.T, tl *tamperLog) {
			tamper(t, tl.s, sq("UPDATE audit_log SET target = 'x' WHERE idx = 40"))
			tl.rewriteHashes(t)
			root, err := tlog.TreeHash(51, hashReader{ctx, tl.s})
			if err != nil {
				t.Fatal(err)
			}
			tamper(t, tl.s, sq("UPDATE audit_checkpoints SET root = ?, note = ? WHERE size = 51", root[:], forgedNote(t, 51, root)))
		}, want: []want{{audit.ProblemForgedCheckpoint, 51}}},
		{name: "rolled back and rewritten, checkpoints deleted; witness contradicts", witnessed: true,
			do: func(t *testing.T, tl *tamperLog) {
				tamper(t, tl.s, sq("DELETE FROM audit_log WHERE idx >= 30"),
					sq("DELETE FROM audit_keyed WHERE idx >= 30"),
					sq("DELETE FROM audit_hashes WHERE idx >= ?", tlog.StoredHashCount(30)),
					sq("DELETE FROM audit_checkpoints WHERE size > 30"))
				// A new history on top, longer than the witnessed one,
				// with its own (validly signed) checkpoint.
				tl.m.Close()
				m := startLog(t, tl.s, tl.k, audit.LogConfig{}, audit.LogDeps{})
				for i := range 25 {
					if err := m.Record(ctx, event(1000+i)); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := m.CheckpointNow(ctx); err != nil {
					t.Fatal(err)
				}
			}, want: []want{{audit.ProblemWitnessMismatch, 26}}},
		{name: "rolled back, checkpoints deleted; witness holds a longer log", witnessed: true,
			do: func(t *testing.T, tl *tamperLog) {
				tamper(t, tl.s, sq("DELETE FROM audit_log WHERE idx >= 30"),
					sq("DELETE FROM audit_hashes WHERE idx >= ?", tlog.StoredHashCount(30)),
					sq("DELETE FROM audit_checkpoints WHERE size > 30"))
			}, want: []want{{audit.ProblemTruncated, 30}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				tl := newTamperLog(t, s)
				var witnessed [][]byte
				if tt.witnessed {
					witnessed = tl.witness.held()
				}
				before, err := audit.Verify(ctx, s, tl.m.VerifierKey(), witnessed)
				if err != nil || !before.OK() || before.Size != tl.size || before.Checkpoints != 2 {
					t.Fatalf("before tampering: %+v, %v", before, err)
				}
				tt.do(t, tl)
				rep, err := audit.Verify(ctx, s, tl.m.VerifierKey(), witnessed)
				if err != nil {
					t.Fatal(err)
				}
				var kinds []string
				for _, p := range rep.Problems {
					if !slices.Contains(kinds, p.Kind) {
						kinds = append(kinds, p.Kind)
					}
				}
				var wantKinds []string
				for _, w := range tt.want {
					wantKinds = append(wantKinds, w.kind)
				}
				slices.Sort(kinds)
				slices.Sort(wantKinds)
				if !slices.Equal(kinds, wantKinds) {
					t.Fatalf("problem kinds = %v, want %v\n%+v", kinds, wantKinds, rep.Problems)
				}
				for _, w := range tt.want {
					p, _ := rep.First(w.kind)
					if p.Index != w.index {
						t.Errorf("first %s at %d, want %d (%s)", w.kind, p.Index, w.index, p.Detail)
					}
				}
				if rep.OK() != (len(tt.want) == 0) {
					t.Fatalf("OK() = %v", rep.OK())
				}
			})
		})
	}
}
