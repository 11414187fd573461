package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

// vaultRoot returns a local root wrapper over a fixed root key.
func vaultRoot(t testing.TB, b byte) *vault.LocalRoot {
	t.Helper()
	k, err := vault.ParseRootKey(rootText(b))
	if err != nil {
		t.Fatal(err)
	}
	r, err := vault.NewLocalRoot(k, "file", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rootText(b byte) string {
	raw := bytes.Repeat([]byte{b}, 32)
	k, _ := vault.GenerateRootKey(bytes.NewReader(raw))
	return k.Text()
}

func newVault(t testing.TB, s *store.Store, root vault.RootWrapper, now func() time.Time) *vault.Vault {
	t.Helper()
	return vault.NewVault(s, root, vault.Policy{RotateEvery: 24 * time.Hour, DataKeyMaxUses: 50}, now, nil)
}

func TestVaultStoreScopes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, _, err := s.VaultScope(ctx, "ws_none"); !fault.Is(err, fault.NotFound) {
			t.Fatalf("unknown scope: err = %v, want not found", err)
		}
		for _, scope := range []string{"", "ws_a"} {
			sc := vault.Scope{Scope: scope, MinVersion: 1, BlindWrapped: []byte("b-" + scope), RootID: "r1", CreatedAt: t0}
			k1 := vault.KEK{Scope: scope, Version: 1, Wrapped: []byte("w1-" + scope), RootID: "r1", CreatedAt: t0}
			mustOK(t, s.VaultCreateScope(ctx, sc, k1))
			if err := s.VaultCreateScope(ctx, sc, k1); !fault.Is(err, fault.Conflict) {
				t.Fatalf("second create: %v, want conflict", err)
			}
			mustOK(t, s.VaultAddKEK(ctx, vault.KEK{Scope: scope, Version: 2, Wrapped: []byte("w2"), RootID: "r1", CreatedAt: t0.Add(time.Hour)}))
			if err := s.VaultAddKEK(ctx, vault.KEK{Scope: scope, Version: 2, Wrapped: []byte("w2"), RootID: "r1", CreatedAt: t0}); !fault.Is(err, fault.Conflict) {
				t.Fatalf("duplicate version: %v, want conflict", err)
			}
			got, keks, err := s.VaultScope(ctx, scope)
			mustOK(t, err)
			if got.Scope != scope || got.MinVersion != 1 || string(got.BlindWrapped) != "b-"+scope || !got.CreatedAt.Equal(t0) || !got.ShreddedAt.IsZero() {
				t.Fatalf("scope = %+v", got)
			}
			if len(keks) != 2 || keks[0].Version != 1 || keks[1].Version != 2 || string(keks[0].Wrapped) != "w1-"+scope {
				t.Fatalf("keks = %+v", keks)
			}
			mustOK(t, s.VaultSetMinVersion(ctx, scope, 2))
			mustOK(t, s.VaultSetMinVersion(ctx, scope, 1)) // never lowers
			got, _, _ = s.VaultScope(ctx, scope)
			if got.MinVersion != 2 {
				t.Fatalf("min version = %d, want 2", got.MinVersion)
			}
		}
		scopes, keks, err := s.VaultAll(ctx)
		mustOK(t, err)
		if len(scopes) != 2 || len(keks) != 4 {
			t.Fatalf("all: %d scopes, %d keks", len(scopes), len(keks))
		}
		n, err := s.VaultDestroyScope(ctx, "ws_a", t0.Add(2*time.Hour))
		mustOK(t, err)
		if n != 2 {
			t.Fatalf("destroyed %d keks, want 2", n)
		}
		got, keks, err := s.VaultScope(ctx, "ws_a")
		mustOK(t, err)
		if got.ShreddedAt.IsZero() || got.BlindWrapped != nil || len(keks) != 0 {
			t.Fatalf("after destroy: %+v, %d keks", got, len(keks))
		}
		if err := s.VaultAddKEK(ctx, vault.KEK{Scope: "ws_a", Version: 3, Wrapped: []byte("x"), RootID: "r1", CreatedAt: t0}); !fault.Is(err, fault.NotFound) {
			t.Fatalf("add to shredded scope: %v, want not found", err)
		}
		if err := s.VaultCreateScope(ctx, vault.Scope{Scope: "ws_a", CreatedAt: t0}, vault.KEK{Scope: "ws_a", Version: 1, Wrapped: []byte("x"), CreatedAt: t0}); !fault.Is(err, fault.Conflict) {
			t.Fatalf("recreate shredded scope: %v, want conflict", err)
		}
		// Destroying a scope that never existed leaves a tombstone too.
		_, err = s.VaultDestroyScope(ctx, "ws_never", t0)
		mustOK(t, err)
		if err := s.VaultCreateScope(ctx, vault.Scope{Scope: "ws_never", CreatedAt: t0}, vault.KEK{Scope: "ws_never", Version: 1, Wrapped: []byte("x"), CreatedAt: t0}); !fault.Is(err, fault.Conflict) {
			t.Fatalf("create after tombstone: %v, want conflict", err)
		}
		scopes, _, _ = s.VaultAll(ctx)
		if len(scopes) != 1 || scopes[0].Scope != "" {
			t.Fatalf("live scopes after destroy = %+v", scopes)
		}
	})
}

func TestVaultHierarchyRoundTripAndContext(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v := newVault(t, s, vaultRoot(t, 1), nil)
		ad := vault.AD{Workspace: "ws_1", Table: "t", Column: "c", Row: "r1"}
		for _, pt := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{7}, 4096)} {
			ct, err := v.Seal(ctx, pt, ad)
			mustOK(t, err)
			if len(ct) != len(pt)+vault.OverheadV2 {
				t.Fatalf("len = %d", len(ct))
			}
			got, err := v.Open(ctx, ct, ad)
			mustOK(t, err)
			if !bytes.Equal(got, pt) {
				t.Fatal("round trip differs")
			}
			for _, other := range []vault.AD{
				{Workspace: "ws_2", Table: "t", Column: "c", Row: "r1"},
				{Workspace: "ws_1", Table: "u", Column: "c", Row: "r1"},
				{Workspace: "ws_1", Table: "t", Column: "d", Row: "r1"},
				{Workspace: "ws_1", Table: "t", Column: "c", Row: "r2"},
				{Workspace: "", Table: "t", Column: "c", Row: "r1"},
			} {
				if _, err := v.Open(ctx, ct, other); err == nil {
					t.Fatalf("opened under %+v", other)
				} else if fault.As(err).Message != "decryption failed" {
					t.Fatalf("wrong-context error message = %q", fault.As(err).Message)
				}
			}
			for i := range ct {
				bad := bytes.Clone(ct)
				bad[i] ^= 0x01
				if _, err := v.Open(ctx, bad, ad); err == nil {
					t.Fatalf("tampered byte %d opened", i)
				}
			}
			for n := range ct {
				if _, err := v.Open(ctx, ct[:n], ad); err == nil {
					t.Fatalf("truncated to %d opened", n)
				}
			}
		}
		// KEK rows hold only wrapped keys: none of them is usable as a raw
		// AES key for the ciphertext, and the stored bytes are longer than a key.
		_, keks, err := s.VaultScope(ctx, "ws_1")
		mustOK(t, err)
		for _, k := range keks {
			if len(k.Wrapped) == vault.KeySize {
				t.Fatalf("KEK %d stored as %d bytes: looks unwrapped", k.Version, len(k.Wrapped))
			}
		}
		// Another root cannot unwrap this database's KEKs.
		v2 := newVault(t, s, vaultRoot(t, 2), nil)
		ct, _ := v.Seal(ctx, []byte("x"), ad)
		if _, err := v2.Open(ctx, ct, ad); err == nil || fault.As(err).Code != "kek_unwrap" {
			t.Fatalf("open with the wrong root: %v", err)
		}
		// Blind index: stable, per column, per workspace, and across rotation.
		b1, err := v.BlindIndex(ctx, "ws_1", "email", []byte("a@example.com"))
		mustOK(t, err)
		b2, _ := v.BlindIndex(ctx, "ws_1", "email", []byte("a@example.com"))
		b3, _ := v.BlindIndex(ctx, "ws_1", "name", []byte("a@example.com"))
		b4, _ := v.BlindIndex(ctx, "ws_2", "email", []byte("a@example.com"))
		if !bytes.Equal(b1, b2) || bytes.Equal(b1, b3) || bytes.Equal(b1, b4) {
			t.Fatal("blind index not stable or not separated")
		}
		if _, err := v.Rotate(ctx, "ws_1"); err != nil {
			t.Fatal(err)
		}
		b5, _ := v.BlindIndex(ctx, "ws_1", "email", []byte("a@example.com"))
		if !bytes.Equal(b1, b5) {
			t.Fatal("blind index changed with rotation")
		}
	})
}

func TestVaultRotationRetireAndRewrap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := t0
		clock := func() time.Time { return now }
		v := newVault(t, s, vaultRoot(t, 1), clock)
		ad := vault.AD{Workspace: "ws_r", Table: "t", Column: "c", Row: "1"}
		old, err := v.Seal(ctx, []byte("v1 data"), ad)
		mustOK(t, err)
		if _, ver, _ := vault.CiphertextVersion(old); ver != 1 {
			t.Fatalf("version = %d", ver)
		}
		st, _ := v.Status(ctx)
		if len(st) != 1 || st[0].RotationDue {
			t.Fatalf("status = %+v", st)
		}
		now = now.Add(25 * time.Hour)
		rotated, failed, err := v.RotateDue(ctx)
		mustOK(t, err)
		if len(rotated) != 1 || rotated[0] != "ws_r" || len(failed) != 0 {
			t.Fatalf("rotated %v failed %v", rotated, failed)
		}
		fresh, err := v.Seal(ctx, []byte("v2 data"), ad)
		mustOK(t, err)
		if _, ver, _ := vault.CiphertextVersion(fresh); ver != 2 {
			t.Fatalf("new seal version = %d, want 2", ver)
		}
		if pt, err := v.Open(ctx, old, ad); err != nil || string(pt) != "v1 data" {
			t.Fatalf("old version no longer opens: %v", err)
		}
		// Another node (a second Vault on the same store) sees the new
		// version for decryption at once.
		other := newVault(t, s, vaultRoot(t, 1), clock)
		if _, err := other.Open(ctx, fresh, ad); err != nil {
			t.Fatal(err)
		}
		re, changed, err := v.Rewrap(ctx, old, ad)
		mustOK(t, err)
		if !changed {
			t.Fatal("rewrap of v1 reported unchanged")
		}
		if _, ver, _ := vault.CiphertextVersion(re); ver != 2 {
			t.Fatal("rewrap did not move to v2")
		}
		if _, changed, _ := v.Rewrap(ctx, re, ad); changed {
			t.Fatal("rewrap of current reported changed")
		}
		if err := v.Retire(ctx, "ws_r", 3); !fault.Is(err, fault.Invalid) {
			t.Fatalf("retire above current: %v", err)
		}
		mustOK(t, v.Retire(ctx, "ws_r", 2))
		if _, err := v.Open(ctx, old, ad); !errors.Is(err, vault.ErrUnknownKeyVersion) {
			t.Fatalf("retired version opened: %v", err)
		}
		if pt, err := v.Open(ctx, re, ad); err != nil || string(pt) != "v1 data" {
			t.Fatalf("rewrapped value: %v", err)
		}
	})
}

// TestVaultRotationUnderLoad seals and opens from many goroutines while
// the scope is rotated repeatedly: no operation may fail.
func TestVaultRotationUnderLoad(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v := newVault(t, s, vaultRoot(t, 1), nil)
		reader := newVault(t, s, vaultRoot(t, 1), nil) // a second node
		ad := vault.AD{Workspace: "ws_load", Table: "t", Column: "c", Row: "r"}
		if _, err := v.Seal(ctx, []byte("warm"), ad); err != nil {
			t.Fatal(err)
		}
		var ops, failures atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				var held [][]byte
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					pt := fmt.Appendf(nil, "g%d-%d", g, i)
					ct, err := v.Seal(ctx, pt, ad)
					if err != nil {
						failures.Add(1)
						t.Errorf("seal: %v", err)
						return
					}
					held = append(held, ct)
					for _, o := range [...]*vault.Vault{v, reader} {
						got, err := o.Open(ctx, ct, ad)
						if err != nil || !bytes.Equal(got, pt) {
							failures.Add(1)
							t.Errorf("open: %v", err)
							return
						}
					}
					if len(held) > 3 { // an older value, maybe an older version
						if _, err := v.Open(ctx, held[0], ad); err != nil {
							failures.Add(1)
							t.Errorf("open old: %v", err)
							return
						}
						held = held[1:]
					}
					ops.Add(1)
				}
			})
		}
		for range 5 {
			time.Sleep(20 * time.Millisecond)
			if _, err := v.Rotate(ctx, "ws_load"); err != nil {
				t.Error(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		cur, _, _ := v.CurrentVersion(ctx, "ws_load")
		if failures.Load() != 0 || ops.Load() == 0 || cur != 6 {
			t.Fatalf("ops %d failures %d current version %d", ops.Load(), failures.Load(), cur)
		}
		t.Logf("%d seal+2×open operations across 5 rotations, 0 failures", ops.Load())
	})
}

func TestVaultRootRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r1, r2 := vaultRoot(t, 1), vaultRoot(t, 2)
		v := newVault(t, s, r1, nil)
		var cts [][]byte
		ads := []vault.AD{{Workspace: "", Table: "t", Row: "1"}, {Workspace: "ws_a", Table: "t", Row: "2"}, {Workspace: "ws_b", Table: "t", Row: "3"}}
		for _, ad := range ads {
			ct, err := v.Seal(ctx, []byte("value-"+ad.Row), ad)
			mustOK(t, err)
			cts = append(cts, ct)
		}
		_, err := v.Rotate(ctx, "ws_a")
		mustOK(t, err)
		bi, _ := v.BlindIndex(ctx, "ws_a", "c", []byte("x"))
		n, err := v.RotateRoot(ctx, r2, derivationKey(t, 1))
		mustOK(t, err)
		if n != 4 {
			t.Fatalf("rewrapped %d KEKs, want 4", n)
		}
		id, err := s.Meta(ctx, "root_key_id")
		mustOK(t, err)
		if id != r2.ID() {
			t.Fatal("root fingerprint not moved")
		}
		dw, err := s.Meta(ctx, store.MetaRootDerivation)
		mustOK(t, err)
		raw, _ := base64.StdEncoding.DecodeString(dw)
		dk, err := vault.UnwrapDerivationRoot(ctx, r2, raw)
		mustOK(t, err)
		if dk.ID() != derivationKey(t, 1).ID() {
			t.Fatal("derivation root not kept across rotation")
		}
		// A fresh node with the new root reads everything; the old root
		// no longer unwraps anything.
		fresh := newVault(t, s, r2, nil)
		stale := newVault(t, s, r1, nil)
		for i, ad := range ads {
			pt, err := fresh.Open(ctx, cts[i], ad)
			if err != nil || string(pt) != "value-"+ad.Row {
				t.Fatalf("after root rotation %d: %v", i, err)
			}
			if _, err := stale.Open(ctx, cts[i], ad); err == nil {
				t.Fatal("old root still unwraps")
			}
		}
		bi2, _ := fresh.BlindIndex(ctx, "ws_a", "c", []byte("x"))
		if !bytes.Equal(bi, bi2) {
			t.Fatal("blind index changed with root rotation")
		}
		_, keks, _ := s.VaultAll(ctx)
		for _, k := range keks {
			if k.RootID != r2.ID() {
				t.Fatalf("KEK %s/%d still under %s", k.Scope, k.Version, k.RootID)
			}
		}
	})
}

// TestVaultCryptoShredding copies the database before a workspace is
// destroyed (a file copy on SQLite, every vault row dumped on PostgreSQL)
// and proves that afterwards none of the workspace's ciphertexts opens
// through the hierarchy with the root key, while other workspaces and the
// operator scope still do. Keys for a restore always come from the live
// key tables (see docs/VAULT.md, "Backups and crypto-shredding"): the copy's
// own key rows are exactly what a backup must never carry.
func TestVaultCryptoShredding(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, engine)
			s := storetest.OpenDSN(t, dsn)
			mustOK(t, s.Migrate(ctx))
			root := vaultRoot(t, 1)
			v := newVault(t, s, root, nil)
			type sealed struct {
				ad vault.AD
				ct []byte
			}
			var victim, survivor []sealed
			for i := range 20 {
				for _, ws := range []string{"ws_victim", "ws_keep", ""} {
					ad := vault.AD{Workspace: ws, Table: "t", Column: "c", Row: fmt.Sprint(i)}
					ct, err := v.Seal(ctx, []byte(rand.Text()), ad)
					mustOK(t, err)
					if ws == "ws_victim" {
						victim = append(victim, sealed{ad, ct})
					} else {
						survivor = append(survivor, sealed{ad, ct})
					}
				}
				if i == 10 {
					_, err := v.Rotate(ctx, "ws_victim")
					mustOK(t, err)
				}
			}
			// The copy.
			var copyPath string
			if engine == store.EngineSQLite {
				copyPath = t.TempDir() + "/copy.db"
				for _, suffix := range []string{"", "-wal"} {
					data, err := os.ReadFile(dsn + suffix)
					if suffix != "" && errors.Is(err, os.ErrNotExist) {
						continue
					}
					mustOK(t, err)
					mustOK(t, os.WriteFile(copyPath+suffix, data, 0o600))
				}
			}
			_, dumpedKEKs, err := s.VaultAll(ctx)
			mustOK(t, err)
			victimRows := 0
			for _, k := range dumpedKEKs {
				if k.Scope == "ws_victim" {
					victimRows++
				}
			}
			if victimRows != 2 {
				t.Fatalf("dumped %d victim KEKs, want 2", victimRows)
			}

			n, err := v.Destroy(ctx, "ws_victim")
			mustOK(t, err)
			if n != 2 {
				t.Fatalf("destroyed %d KEK versions, want 2", n)
			}
			// Every node, including one started fresh with the root key.
			fresh := newVault(t, s, root, nil)
			for _, o := range []*vault.Vault{v, fresh} {
				for _, sv := range victim {
					if _, err := o.Open(ctx, sv.ct, sv.ad); err == nil {
						t.Fatal("a shredded workspace's ciphertext opened")
					}
				}
				for _, sv := range survivor {
					if _, err := o.Open(ctx, sv.ct, sv.ad); err != nil {
						t.Fatalf("survivor %+v: %v", sv.ad, err)
					}
				}
				if _, err := o.Seal(ctx, []byte("x"), vault.AD{Workspace: "ws_victim"}); !errors.Is(err, vault.ErrScopeDestroyed) {
					t.Fatalf("seal into shredded scope: %v", err)
				}
			}
			// The copy's ciphertexts, opened with the root key against the
			// live key tables, as a restore would: nothing of the victim opens.
			if engine == store.EngineSQLite {
				cp, err := store.Open(ctx, store.Options{SQLitePath: copyPath})
				mustOK(t, err)
				defer cp.Close()
				_, copied, err := cp.VaultAll(ctx)
				mustOK(t, err)
				if len(copied) != len(dumpedKEKs) {
					t.Fatalf("copy holds %d KEKs, want %d", len(copied), len(dumpedKEKs))
				}
			}
			_, live, err := s.VaultAll(ctx)
			mustOK(t, err)
			for _, k := range live {
				if k.Scope == "ws_victim" {
					t.Fatal("a victim KEK survived in the live tables")
				}
			}
		})
	}
}

func derivationKey(t testing.TB, b byte) vault.RootKey {
	t.Helper()
	k, err := vault.ParseRootKey(rootText(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
