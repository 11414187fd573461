package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/vault"
)

const testOrigin = "rampart.test/audit"

// testKeys are the three audit keys, derived from one root key as the app
// does.
type testKeys struct {
	sealer *vault.Keyring
	index  []byte
	signer []byte
}

func newKeys(t testing.TB) testKeys {
	t.Helper()
	root, err := vault.GenerateRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	kr := vault.NewKeyring(nil)
	if err := kr.Add(1, root.Derive("rampart/audit/v1", vault.KeySize)); err != nil {
		t.Fatal(err)
	}
	if err := kr.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	return testKeys{
		sealer: kr,
		index:  root.Derive("rampart/audit-index/v1", 32),
		signer: root.Derive("rampart/audit-checkpoint/v1", 32),
	}
}

// startLog returns a started MerkleLog over s, closed when the test ends.
func startLog(t testing.TB, s audit.LogStore, k testKeys, cfg audit.LogConfig, d audit.LogDeps) *audit.MerkleLog {
	t.Helper()
	if cfg.Origin == "" {
		cfg.Origin = testOrigin
	}
	// Checkpoints only when a test asks, unless it configures otherwise.
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = time.Hour
	}
	if cfg.CheckpointEvents == 0 {
		cfg.CheckpointEvents = 1 << 30
	}
	d.Store, d.Sealer, d.IndexKey, d.SignerKey = s, k.sealer, k.index, k.signer
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	m, err := audit.NewMerkleLog(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	t.Cleanup(func() {
		m.Close()
		cancel()
	})
	return m
}

func event(i int) audit.Event {
	return audit.Event{
		ActorType: audit.ActorUser, ActorID: "usr_" + strconv.Itoa(i%7), Workspace: "ws_1",
		Action: "auth.signin", Target: "t" + strconv.Itoa(i), Outcome: audit.Success,
		Details: map[string]string{"n": strconv.Itoa(i)},
	}
}

// memWitness keeps published notes; fail makes Publish fail.
type memWitness struct {
	mu    sync.Mutex
	notes [][]byte
	fail  bool
	calls int
}

func (w *memWitness) Publish(_ context.Context, note []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.fail {
		return errors.New("witness down")
	}
	w.notes = append(w.notes, bytes.Clone(note))
	return nil
}

func (w *memWitness) held() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.notes...)
}

// tamper runs statements directly on the database with the owner's rights,
// past the append-only guards (SQLite triggers, PostgreSQL grants): what an
// attacker with database access could do. Statements use ? placeholders.
func tamper(t *testing.T, s *store.Store, stmts ...stmt) {
	t.Helper()
	ctx := context.Background()
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pg := s.Engine() == store.EnginePostgres
	if pg {
		if _, err := conn.ExecContext(ctx, "RESET ROLE"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := conn.ExecContext(ctx, "SET ROLE rampart_app"); err != nil {
				t.Fatal(err)
			}
		}()
	} else {
		for _, tbl := range []string{"audit_log", "audit_keyed", "audit_hashes", "audit_checkpoints"} {
			for _, op := range []string{"update", "delete"} {
				if _, err := conn.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+tbl+"_no_"+op); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, st := range stmts {
		q := st.q
		if pg {
			q = dollars(q)
		}
		if _, err := conn.ExecContext(ctx, q, st.args...); err != nil {
			t.Fatalf("tamper %q: %v", st.q, err)
		}
	}
}

type stmt struct {
	q    string
	args []any
}

func sq(q string, args ...any) stmt { return stmt{q, args} }

func dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// storedHashes recomputes the whole stored-hash table from records.
func storedHashes(t testing.TB, recs []audit.Record) []tlog.Hash {
	t.Helper()
	var all []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	})
	for i, rec := range recs {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), rec.LeafHash(), r)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, hs...)
	}
	return all
}
