package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth/signing"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestSigningKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2031, 1, 2, 3, 4, 5, 6000, time.UTC)
		key := func(id string, activeFrom time.Time) signing.StoredKey {
			return signing.StoredKey{ID: id, Algorithm: signing.EdDSA, PublicKey: []byte("pub-" + id), PrivateKey: []byte("sealed-" + id),
				CreatedAt: t0, ActiveFrom: activeFrom}
		}
		if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 0 {
			t.Fatalf("empty: %v %v", keys, err)
		}
		// Guarded by "no unretired key at all" (epoch): first one wins.
		epoch := time.Unix(0, 0)
		if ok, err := s.CreateSigningKey(ctx, key("a", t0), &epoch); err != nil || !ok {
			t.Fatalf("create a: %v %v", ok, err)
		}
		if ok, err := s.CreateSigningKey(ctx, key("a2", t0), &epoch); err != nil || ok {
			t.Fatalf("second first key: %v %v", ok, err)
		}
		// Guarded by "no pending key": concurrent creators make one.
		var wg sync.WaitGroup
		created := make([]bool, 4)
		for i := range created {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.CreateSigningKey(ctx, key(string(rune('p'+i)), t0.Add(time.Hour)), &t0)
				if err != nil {
					t.Error(err)
				}
				created[i] = ok
			}()
		}
		wg.Wait()
		n := 0
		for _, ok := range created {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d concurrent guarded creations succeeded, want 1", n)
		}
		// Unguarded always inserts; a duplicate id is a conflict.
		if ok, err := s.CreateSigningKey(ctx, key("b", t0.Add(2*time.Hour)), nil); err != nil || !ok {
			t.Fatalf("create b: %v %v", ok, err)
		}
		if _, err := s.CreateSigningKey(ctx, key("b", t0), nil); !fault.Is(err, fault.Conflict) {
			t.Fatalf("duplicate id: %v", err)
		}
		if _, err := s.CreateSigningKey(ctx, signing.StoredKey{ID: "x"}, nil); !fault.Is(err, fault.Invalid) {
			t.Fatalf("incomplete key: %v", err)
		}

		keys, err := s.SigningKeys(ctx)
		if err != nil || len(keys) != 3 || keys[0].ID != "a" || keys[2].ID != "b" {
			t.Fatalf("list: %v %+v", err, keys)
		}
		a := keys[0]
		if a.Algorithm != signing.EdDSA || string(a.PublicKey) != "pub-a" || string(a.PrivateKey) != "sealed-a" ||
			!a.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || !a.RetiredAt.IsZero() || !a.DeleteAfter.IsZero() {
			t.Fatalf("round trip: %+v", a)
		}

		// Retire once.
		ret, del := t0.Add(time.Hour), t0.Add(2*time.Hour)
		if ok, err := s.RetireSigningKey(ctx, "a", ret, del); err != nil || !ok {
			t.Fatalf("retire: %v %v", ok, err)
		}
		if ok, err := s.RetireSigningKey(ctx, "a", ret.Add(time.Hour), del.Add(time.Hour)); err != nil || ok {
			t.Fatalf("second retire: %v %v", ok, err)
		}
		if ok, err := s.RetireSigningKey(ctx, "nope", ret, del); err != nil || ok {
			t.Fatalf("retire unknown: %v %v", ok, err)
		}
		keys, _ = s.SigningKeys(ctx)
		if !keys[0].RetiredAt.Equal(ret) || !keys[0].DeleteAfter.Equal(del) {
			t.Fatalf("retired: %+v", keys[0])
		}
		// Revoke overwrites; unknown is NotFound.
		if err := s.RevokeSigningKey(ctx, "a", ret, t0); err != nil {
			t.Fatal(err)
		}
		keys, _ = s.SigningKeys(ctx)
		if !keys[0].DeleteAfter.Equal(t0) {
			t.Fatalf("revoked: %+v", keys[0])
		}
		if err := s.RevokeSigningKey(ctx, "nope", ret, t0); !fault.Is(err, fault.NotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		// Delete once.
		if ok, err := s.DeleteSigningKey(ctx, "a"); err != nil || !ok {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if ok, err := s.DeleteSigningKey(ctx, "a"); err != nil || ok {
			t.Fatalf("second delete: %v %v", ok, err)
		}
		if keys, _ := s.SigningKeys(ctx); len(keys) != 2 {
			t.Fatalf("after delete: %+v", keys)
		}
	})
}
