package audit_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestCheckpointNote: the checkpoint is a C2SP signed note, byte for byte:
// body "<origin>\n<size>\n<base64 root>\n", a blank line, and one Ed25519
// signature line by the origin's key, verifiable with VerifierKey alone.
func TestCheckpointNote(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		k := newKeys(t)
		w := &memWitness{}
		m := startLog(t, s, k, audit.LogConfig{}, audit.LogDeps{Witnesses: []audit.Witness{w}})
		if _, err := m.CheckpointNow(ctx); !fault.Is(err, fault.NotFound) {
			t.Fatalf("checkpoint of an empty log = %v, want not found", err)
		}
		for i := range 6 {
			if err := m.Record(ctx, event(i)); err != nil {
				t.Fatal(err)
			}
		}
		cp, err := m.CheckpointNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		root, err := tlog.TreeHash(7, hashReader{ctx, s})
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != 7 || cp.Root != root {
			t.Fatalf("checkpoint = size %d root %s, want 7 %s", cp.Size, cp.Root, root)
		}

		// The verifier key is the note encoding of the seed's public key.
		pub := ed25519.NewKeyFromSeed(k.signer).Public().(ed25519.PublicKey)
		wantVKey, err := note.NewEd25519VerifierKey(testOrigin, pub)
		if err != nil {
			t.Fatal(err)
		}
		if m.VerifierKey() != wantVKey {
			t.Fatalf("VerifierKey = %q, want %q", m.VerifierKey(), wantVKey)
		}
		body := testOrigin + "\n7\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
		text := string(cp.Note)
		if !strings.HasPrefix(text, body+"\n— "+testOrigin+" ") || !strings.HasSuffix(text, "\n") ||
			strings.Count(text, "\n") != 5 {
			t.Fatalf("note = %q", text)
		}
		v, err := note.NewVerifier(m.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(cp.Note, note.VerifierList(v))
		if err != nil || n.Text != body || len(n.Sigs) != 1 {
			t.Fatalf("note.Open = %+v, %v", n, err)
		}
		got, err := audit.OpenCheckpoint(cp.Note, m.VerifierKey())
		if err != nil || got.Size != 7 || got.Root != root {
			t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
		}

		// Stored, witnessed, and not re-signed while the tree is unchanged.
		latest, err := m.Latest(ctx)
		if err != nil || string(latest.Note) != string(cp.Note) {
			t.Fatalf("Latest = %+v, %v", latest, err)
		}
		if held := w.held(); len(held) != 1 || string(held[0]) != string(cp.Note) {
			t.Fatalf("witness holds %d notes", len(held))
		}
		again, err := m.CheckpointNow(ctx)
		if err != nil || again.Size != 7 || len(w.held()) != 1 {
			t.Fatalf("second CheckpointNow = %+v, %v; witness has %d", again, err, len(w.held()))
		}
	})
}

// TestOpenCheckpointRejects: a checkpoint is only accepted with a valid
// signature by the expected key over a well-formed body.
func TestOpenCheckpointRejects(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.EngineSQLite)
	m := startLog(t, s, newKeys(t), audit.LogConfig{}, audit.LogDeps{})
	other := startLog(t, storetest.Open(t, store.EngineSQLite), newKeys(t), audit.LogConfig{}, audit.LogDeps{})
	for _, l := range []*audit.MerkleLog{m, other} {
		if err := l.Record(ctx, event(1)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := m.CheckpointNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	otherCP, err := other.CheckpointNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  []byte
		vkey string
	}{
		{"other log's key", otherCP.Note, m.VerifierKey()},
		{"body edited", []byte(strings.Replace(string(cp.Note), "\n2\n", "\n3\n", 1)), m.VerifierKey()},
		{"signature edited", []byte(strings.Replace(string(cp.Note), testOrigin+" ", testOrigin+" A", 1)), m.VerifierKey()},
		{"garbage", []byte("hello"), m.VerifierKey()},
		{"bad verifier key", cp.Note, "nonsense"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.OpenCheckpoint(tt.msg, tt.vkey)
			if fe := fault.As(err); err == nil || fe.Kind != fault.Invalid || fe.Code != "checkpoint_invalid" {
				t.Fatalf("OpenCheckpoint = %v, want invalid/checkpoint_invalid", err)
			}
		})
	}
}

// TestCheckpointerSignsAfterEvents: with the timer out of the way, the
// background checkpointer signs once CheckpointEvents events committed, and
// not before.
func TestCheckpointerSignsAfterEvents(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.EngineSQLite)
	w := &memWitness{}
	m := startLog(t, s, newKeys(t), audit.LogConfig{CheckpointEvents: 10, CheckpointEvery: time.Hour},
		audit.LogDeps{Witnesses: []audit.Witness{w}})
	for i := range 9 {
		if err := m.Record(ctx, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := m.Latest(ctx); !fault.Is(err, fault.NotFound) {
		t.Fatalf("checkpoint after 9 of 10 events: %v", err)
	}
	if err := m.Record(ctx, event(9)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(w.held()) > 0 })
	cp, err := audit.OpenCheckpoint(w.held()[0], m.VerifierKey())
	if err != nil || cp.Size != 11 {
		t.Fatalf("witnessed checkpoint = size %d, %v; want 11", cp.Size, err)
	}
}

// TestCheckpointerRetriesWitnesses: a witness that fails gets the latest
// checkpoint on a later round, and Record never waits for witnesses.
func TestCheckpointerRetriesWitnesses(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.EngineSQLite)
	good, flaky := &memWitness{}, &memWitness{fail: true}
	m := startLog(t, s, newKeys(t), audit.LogConfig{CheckpointEvery: 20 * time.Millisecond},
		audit.LogDeps{Witnesses: []audit.Witness{good, flaky}})
	for i := range 10 {
		if err := m.Record(ctx, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		h := good.held()
		if len(h) == 0 {
			return false
		}
		cp, err := audit.OpenCheckpoint(h[len(h)-1], m.VerifierKey())
		return err == nil && cp.Size == 11
	})
	waitFor(t, func() bool { return m.Stats().WitnessFailures >= 3 }) // retried each round
	flaky.mu.Lock()
	flaky.fail = false
	flaky.mu.Unlock()
	waitFor(t, func() bool { return len(flaky.held()) > 0 })
	cp, err := audit.OpenCheckpoint(flaky.held()[0], m.VerifierKey())
	if err != nil || cp.Size != 11 {
		t.Fatalf("recovered witness got size %d, %v; want the latest, 11", cp.Size, err)
	}
	good.mu.Lock()
	calls := good.calls
	good.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	good.mu.Lock()
	defer good.mu.Unlock()
	if good.calls != calls {
		t.Fatalf("a witness that holds the latest checkpoint was called again %d times", good.calls-calls)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hashReader adapts the store to tlog.HashReader in tests.
type hashReader struct {
	ctx context.Context
	s   audit.LogStore
}

func (r hashReader) ReadHashes(idx []int64) ([]tlog.Hash, error) { return r.s.AuditHashes(r.ctx, idx) }

// TestProofs: every inclusion proof checks against the checkpoint root with
// tlog.CheckRecord, consistency proofs between checkpoints with CheckTree,
// and out-of-range requests are refused.
func TestProofs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := startLog(t, s, newKeys(t), audit.LogConfig{}, audit.LogDeps{})
		var cps []*audit.Checkpoint
		for i := range 37 {
			if err := m.Record(ctx, event(i)); err != nil {
				t.Fatal(err)
			}
			if i == 0 || i == 6 || i == 15 || i == 36 {
				cp, err := m.CheckpointNow(ctx)
				if err != nil {
					t.Fatal(err)
				}
				cps = append(cps, cp)
			}
		}
		recs, err := s.AuditRecords(ctx, 0, 38)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range cps {
			for i := int64(0); i < cp.Size; i++ {
				leaf, p, err := m.InclusionProof(ctx, i, cp.Size)
				if err != nil {
					t.Fatal(err)
				}
				if leaf != recs[i].LeafHash() {
					t.Fatalf("leaf %d is not the record's leaf hash", i)
				}
				if err := tlog.CheckRecord(p, cp.Size, cp.Root, i, leaf); err != nil {
					t.Fatalf("inclusion %d in %d: %v", i, cp.Size, err)
				}
				// The proof does not vouch for a different record.
				other := recs[(i+1)%cp.Size].LeafHash()
				if cp.Size > 1 && tlog.CheckRecord(p, cp.Size, cp.Root, i, other) == nil {
					t.Fatalf("inclusion proof %d accepted another leaf", i)
				}
			}
		}
		for a := range cps {
			for b := a; b < len(cps); b++ {
				p, err := m.ConsistencyProof(ctx, cps[a].Size, cps[b].Size)
				if err != nil {
					t.Fatal(err)
				}
				if err := tlog.CheckTree(p, cps[b].Size, cps[b].Root, cps[a].Size, cps[a].Root); err != nil {
					t.Fatalf("consistency %d→%d: %v", cps[a].Size, cps[b].Size, err)
				}
			}
		}
		bad := []struct{ index, size int64 }{{-1, 5}, {5, 5}, {0, 0}, {0, 39}}
		for _, b := range bad {
			if _, _, err := m.InclusionProof(ctx, b.index, b.size); !fault.Is(err, fault.Invalid) {
				t.Errorf("InclusionProof(%d, %d) = %v, want invalid", b.index, b.size, err)
			}
		}
		for _, b := range []struct{ from, to int64 }{{0, 5}, {6, 5}, {1, 39}} {
			if _, err := m.ConsistencyProof(ctx, b.from, b.to); !fault.Is(err, fault.Invalid) {
				t.Errorf("ConsistencyProof(%d, %d) = %v, want invalid", b.from, b.to, err)
			}
		}
	})
}
