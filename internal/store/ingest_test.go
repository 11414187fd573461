package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/privacy/ingest"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestIngestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := newWorkspace(t, s, "Alpha", "a@example.com")
		b, _ := newWorkspace(t, s, "Bravo", "b@example.com")

		t.Run("publishable keys", func(t *testing.T) {
			h := sha256.Sum256([]byte("secret"))
			k := &ingest.PublishableKey{ID: "keyaaaaaaaaaaaaa", Workspace: a.ID, Name: "web", Class: "30d", SecretHash: h[:], CreatedBy: "u1", CreatedAt: t0}
			mustOK(t, s.CreatePublishableKey(ctx, k))
			wantCode(t, s.CreatePublishableKey(ctx, k), fault.Conflict, "conflict")
			got, err := s.PublishableKeyByID(ctx, k.ID)
			mustOK(t, err)
			if got.Workspace != a.ID || got.Name != "web" || got.Class != "30d" || !bytes.Equal(got.SecretHash, h[:]) || !got.CreatedAt.Equal(t0) || !got.RevokedAt.IsZero() {
				t.Fatalf("read back %+v", got)
			}
			_, err = s.PublishableKeyByID(ctx, "nosuchkeyaaaaaaa")
			wantCode(t, err, fault.NotFound, "not_found")
			if l, err := s.PublishableKeys(ctx, b.ID); err != nil || len(l) != 0 {
				t.Fatalf("other workspace lists %d keys, %v", len(l), err)
			}
			wantCode(t, s.RevokePublishableKey(ctx, b.ID, k.ID, t0), fault.NotFound, "not_found")
			mustOK(t, s.RevokePublishableKey(ctx, a.ID, k.ID, t0.Add(time.Minute)))
			mustOK(t, s.RevokePublishableKey(ctx, a.ID, k.ID, t0.Add(time.Hour))) // first time stands
			l, err := s.PublishableKeys(ctx, a.ID)
			mustOK(t, err)
			if len(l) != 1 || !l[0].RevokedAt.Equal(t0.Add(time.Minute)) {
				t.Fatalf("list %+v", l)
			}
		})

		t.Run("opt-outs", func(t *testing.T) {
			h1, h2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
			mustOK(t, s.AddOptOut(ctx, a.ID, h1, t0))
			mustOK(t, s.AddOptOut(ctx, a.ID, h1, t0)) // idempotent
			got, err := s.OptedOut(ctx, a.ID, [][]byte{h1, h2})
			mustOK(t, err)
			if !got[hex.EncodeToString(h1)] || got[hex.EncodeToString(h2)] || len(got) != 1 {
				t.Fatalf("opted out %v", got)
			}
			if got, err := s.OptedOut(ctx, b.ID, [][]byte{h1}); err != nil || len(got) != 0 {
				t.Fatalf("other workspace sees %v, %v", got, err)
			}
			// More hashes than one query's chunk.
			many := make([][]byte, 450)
			for i := range many {
				many[i] = bytes.Repeat([]byte{byte(i % 250), byte(i / 250)}, 16)
			}
			many[449] = h1
			if got, err := s.OptedOut(ctx, a.ID, many); err != nil || !got[hex.EncodeToString(h1)] {
				t.Fatalf("chunked lookup %v, %v", got, err)
			}
			wantCode(t, s.RemoveOptOut(ctx, b.ID, h1), fault.NotFound, "not_found")
			mustOK(t, s.RemoveOptOut(ctx, a.ID, h1))
			wantCode(t, s.RemoveOptOut(ctx, a.ID, h1), fault.NotFound, "not_found")
		})

		t.Run("events", func(t *testing.T) {
			var evs []ingest.Stored
			for i := range 250 {
				exp := t0.Add(time.Hour)
				if i%2 == 0 {
					exp = t0.Add(-time.Hour)
				}
				evs = append(evs, ingest.Stored{ID: fmt.Sprintf("%032d", i), Workspace: a.ID, ReceivedAt: t0, Class: "12mo", ExpiresAt: exp,
					Payload: []byte(fmt.Sprintf("sealed-%d", i))})
			}
			mustOK(t, s.InsertEvents(ctx, a.ID, evs))
			// A batch naming another workspace is refused whole.
			wantCode(t, s.InsertEvents(ctx, b.ID, evs[:1]), fault.Invalid, "invalid_event")
			// A duplicate id fails the whole batch: nothing of it is stored.
			bad := []ingest.Stored{{ID: "x1", Workspace: a.ID, ReceivedAt: t0, Class: "12mo", ExpiresAt: t0, Payload: []byte("p")}, evs[0]}
			wantCode(t, s.InsertEvents(ctx, a.ID, bad), fault.Conflict, "conflict")
			_, err := s.RawEventPayload(ctx, a.ID, "x1")
			wantCode(t, err, fault.NotFound, "not_found")

			page, err := s.Events(ctx, a.ID, "", 100)
			mustOK(t, err)
			if len(page) != 100 || page[0].ID != evs[0].ID || string(page[99].Payload) != "sealed-99" || !page[0].ReceivedAt.Equal(t0) || page[0].Class != "12mo" {
				t.Fatalf("first page: %d rows, first %+v", len(page), page[0])
			}
			page, err = s.Events(ctx, a.ID, page[99].ID, 1000)
			mustOK(t, err)
			if len(page) != 150 || page[0].ID != evs[100].ID {
				t.Fatalf("second page: %d rows", len(page))
			}
			if l, err := s.Events(ctx, b.ID, "", 10); err != nil || len(l) != 0 {
				t.Fatalf("other workspace reads %d events, %v", len(l), err)
			}
			if _, err := s.RawEventPayload(ctx, b.ID, evs[1].ID); !fault.Is(err, fault.NotFound) {
				t.Fatalf("other workspace reads a payload: %v", err)
			}
			raw, err := s.RawEventPayload(ctx, a.ID, evs[1].ID)
			mustOK(t, err)
			if string(raw) != "sealed-1" {
				t.Fatalf("raw %q", raw)
			}

			// The sweep deletes the 125 expired events in bounded batches.
			n, err := s.DeleteExpiredEvents(ctx, t0, 100)
			mustOK(t, err)
			if n != 100 {
				t.Fatalf("first sweep batch deleted %d", n)
			}
			n, err = s.DeleteExpiredEvents(ctx, t0, 100)
			mustOK(t, err)
			if n != 25 {
				t.Fatalf("second sweep batch deleted %d", n)
			}
			left, err := s.Events(ctx, a.ID, "", 1000)
			mustOK(t, err)
			if len(left) != 125 {
				t.Fatalf("%d events left", len(left))
			}
			for _, e := range left {
				if !e.ExpiresAt.After(t0) {
					t.Fatalf("expired event %s survived", e.ID)
				}
			}
		})

		t.Run("workspace deletion cascades", func(t *testing.T) {
			mustOK(t, s.DeleteWorkspace(ctx, a.ID))
			if _, err := s.PublishableKeyByID(ctx, "keyaaaaaaaaaaaaa"); !fault.Is(err, fault.NotFound) {
				t.Fatalf("key outlived its workspace: %v", err)
			}
		})
	})
}
