package store_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

func newSecret(t *testing.T, s *store.Store, id, ws, name string) *secrets.Secret {
	t.Helper()
	sec := &secrets.Secret{ID: id, Workspace: ws, Name: name, CreatedAt: t0, UpdatedAt: t0}
	mustOK(t, s.CreateSecret(context.Background(), sec))
	return sec
}

func addVersion(t *testing.T, s *store.Store, ws, id string, latest int, stage secrets.Stage, value string) {
	t.Helper()
	mustOK(t, s.AddSecretVersion(context.Background(), ws, id, latest,
		secrets.Version{Version: latest + 1, Stage: stage, CreatedAt: t0, CreatedBy: "u"}, []byte(value), t0))
}

// stages maps version → stage.
func stages(t *testing.T, s *store.Store, ws, id string) map[int]secrets.Stage {
	t.Helper()
	vs, err := s.SecretVersions(context.Background(), ws, id)
	mustOK(t, err)
	out := map[int]secrets.Stage{}
	for _, v := range vs {
		out[v.Version] = v.Stage
	}
	return out
}

func wantStages(t *testing.T, got map[int]secrets.Stage, want map[int]secrets.Stage) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("stages = %v, want %v", got, want)
	}
	for v, st := range want {
		if got[v] != st {
			t.Fatalf("stages = %v, want %v", got, want)
		}
	}
}

func TestSecretsStoreStages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, ws := range []string{"", "ws"} {
			t.Run("scope="+ws, func(t *testing.T) {
				if ws != "" {
					w, _ := newWorkspace(t, s, "W", "stages@example.com")
					ws = w.ID
				}
				sec := newSecret(t, s, "s-"+ws, ws, "db")
				got, err := s.SecretByName(ctx, ws, "db")
				mustOK(t, err)
				if got.ID != sec.ID || got.Workspace != ws || got.Latest != 0 || got.Current != 0 || !got.CreatedAt.Equal(t0) {
					t.Fatalf("secret = %+v", got)
				}
				wantCode(t, s.CreateSecret(ctx, &secrets.Secret{ID: "other", Workspace: ws, Name: "db", CreatedAt: t0, UpdatedAt: t0}), fault.Conflict, "conflict")

				addVersion(t, s, ws, sec.ID, 0, secrets.StageCurrent, "v1")
				addVersion(t, s, ws, sec.ID, 1, secrets.StageCurrent, "v2")
				wantStages(t, stages(t, s, ws, sec.ID), map[int]secrets.Stage{1: secrets.StagePrevious, 2: secrets.StageCurrent})
				addVersion(t, s, ws, sec.ID, 2, secrets.StageCurrent, "v3")
				wantStages(t, stages(t, s, ws, sec.ID), map[int]secrets.Stage{1: "", 2: secrets.StagePrevious, 3: secrets.StageCurrent})

				// Stale check-and-set.
				err = s.AddSecretVersion(ctx, ws, sec.ID, 2, secrets.Version{Version: 3, Stage: secrets.StageCurrent, CreatedAt: t0}, []byte("x"), t0)
				wantCode(t, err, fault.Conflict, "cas_mismatch")

				// Pending, superseded by a second pending, then promoted.
				addVersion(t, s, ws, sec.ID, 3, secrets.StagePending, "v4")
				addVersion(t, s, ws, sec.ID, 4, secrets.StagePending, "v5")
				wantStages(t, stages(t, s, ws, sec.ID), map[int]secrets.Stage{1: "", 2: secrets.StagePrevious, 3: secrets.StageCurrent, 4: "", 5: secrets.StagePending})
				wantCode(t, s.PromoteSecretVersion(ctx, ws, sec.ID, 4, t0), fault.Conflict, "secret_not_pending")
				mustOK(t, s.PromoteSecretVersion(ctx, ws, sec.ID, 5, t0))
				mustOK(t, s.PromoteSecretVersion(ctx, ws, sec.ID, 5, t0)) // idempotent
				wantStages(t, stages(t, s, ws, sec.ID), map[int]secrets.Stage{1: "", 2: "", 3: secrets.StagePrevious, 4: "", 5: secrets.StageCurrent})
				got, _ = s.SecretByName(ctx, ws, "db")
				if got.Current != 5 || got.Latest != 5 {
					t.Fatalf("after promote: %+v", got)
				}
				v, val, err := s.SecretVersion(ctx, ws, sec.ID, 0)
				mustOK(t, err)
				if v.Version != 5 || string(val) != "v5" || v.CreatedBy != "u" {
					t.Fatalf("current = %+v %q", v, val)
				}

				// Discarding a pending version wipes it.
				addVersion(t, s, ws, sec.ID, 5, secrets.StagePending, "v6")
				mustOK(t, s.DiscardPendingVersion(ctx, ws, sec.ID, 6, t0))
				v, val, err = s.SecretVersion(ctx, ws, sec.ID, 6)
				mustOK(t, err)
				if val != nil || !v.Destroyed || v.Stage != "" {
					t.Fatalf("discarded = %+v %q", v, val)
				}

				// Soft delete refuses writes, restores.
				mustOK(t, s.SetSecretDeleted(ctx, ws, sec.ID, t0))
				if l, _ := s.ListSecrets(ctx, ws, false); len(l) != 0 {
					t.Fatalf("live list = %v", l)
				}
				if l, _ := s.ListSecrets(ctx, ws, true); len(l) != 1 {
					t.Fatalf("deleted list = %v", l)
				}
				err = s.AddSecretVersion(ctx, ws, sec.ID, 6, secrets.Version{Version: 7, Stage: secrets.StageCurrent, CreatedAt: t0}, []byte("x"), t0)
				wantCode(t, err, fault.Conflict, "secret_deleted")
				mustOK(t, s.SetSecretDeleted(ctx, ws, sec.ID, time.Time{}))
				addVersion(t, s, ws, sec.ID, 6, secrets.StageCurrent, "v7")

				// Destroy wipes every value and frees the name.
				mustOK(t, s.DestroySecret(ctx, ws, sec.ID, t0))
				_, err = s.SecretByName(ctx, ws, "db")
				wantKind(t, err, fault.NotFound)
				for i := 1; i <= 7; i++ {
					_, val, err := s.SecretVersion(ctx, ws, sec.ID, i)
					mustOK(t, err)
					if val != nil {
						t.Fatalf("version %d survived destroy", i)
					}
				}
				newSecret(t, s, "s2-"+ws, ws, "db")
			})
		}
	})
}

func TestSecretsStoreIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := newWorkspace(t, s, "A", "iso-a@example.com")
		b, _ := newWorkspace(t, s, "B", "iso-b@example.com")
		op := newSecret(t, s, "op", "", "shared")
		sa := newSecret(t, s, "sa", a.ID, "shared")
		addVersion(t, s, "", op.ID, 0, secrets.StageCurrent, "operator")
		addVersion(t, s, a.ID, sa.ID, 0, secrets.StageCurrent, "a")

		for _, ws := range []string{b.ID, a.ID} {
			_, _, err := s.SecretVersion(ctx, ws, op.ID, 1)
			wantKind(t, err, fault.NotFound)
		}
		_, _, err := s.SecretVersion(ctx, "", sa.ID, 1)
		wantKind(t, err, fault.NotFound)
		_, err = s.SecretByName(ctx, b.ID, "shared")
		wantKind(t, err, fault.NotFound)
		wantKind(t, s.SetSecretDeleted(ctx, b.ID, sa.ID, t0), fault.NotFound)
		wantKind(t, s.DestroySecret(ctx, "", sa.ID, t0), fault.NotFound)
		err = s.AddSecretVersion(ctx, b.ID, sa.ID, 1, secrets.Version{Version: 2, Stage: secrets.StageCurrent, CreatedAt: t0}, []byte("x"), t0)
		wantKind(t, err, fault.NotFound)
		_, v, err := s.SecretVersion(ctx, a.ID, sa.ID, 1)
		mustOK(t, err)
		if string(v) != "a" {
			t.Fatalf("a's value = %q", v)
		}

		if s.Engine() == store.EnginePostgres {
			// Row-level security alone, without the queries' filter: a
			// transaction bound to b sees none of a's or the operator's rows.
			err := s.WithGlobalTxForTest(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "SELECT set_config('rampart.scope', '', true), set_config('rampart.workspace_id', $1, true)", b.ID); err != nil {
					return err
				}
				for _, table := range []string{"secrets", "secret_versions"} {
					var n int
					if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
						return err
					}
					if n != 0 {
						t.Errorf("workspace b sees %d rows of %s", n, table)
					}
				}
				return nil
			})
			mustOK(t, err)
		}

		// Deleting a workspace deletes its secrets (and only its own).
		mustOK(t, s.DeleteWorkspace(ctx, a.ID))
		_, _, err = s.SecretVersion(ctx, a.ID, sa.ID, 1)
		wantKind(t, err, fault.NotFound)
		_, v, err = s.SecretVersion(ctx, "", op.ID, 1)
		mustOK(t, err)
		if string(v) != "operator" {
			t.Fatalf("operator value = %q", v)
		}
	})
}

// TestSecretsStoreConcurrentCAS races writers on one expected version:
// exactly one wins.
func TestSecretsStoreConcurrentCAS(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sec := newSecret(t, s, "race", "", "race")
		addVersion(t, s, "", sec.ID, 0, secrets.StageCurrent, "v1")
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.AddSecretVersion(ctx, "", sec.ID, 1, secrets.Version{Version: 2, Stage: secrets.StageCurrent, CreatedAt: t0}, []byte("x"), t0)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case fault.Is(err, fault.Conflict):
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d writers won, want 1", ok)
		}
		wantStages(t, stages(t, s, "", sec.ID), map[int]secrets.Stage{1: secrets.StagePrevious, 2: secrets.StageCurrent})
	})
}
