package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/integration"
)

func TestIntegrationsStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := newWorkspace(t, s, "Alpha", "a@example.com")
		b, _ := newWorkspace(t, s, "Bravo", "b@example.com")
		c := &integration.Connection{ID: "c1", Workspace: a.ID, Provider: "acme", Kind: integration.KindOAuth2, Scopes: []string{"read"},
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), RefreshedAt: t0}
		mustOK(t, s.CreateIntegration(ctx, c, integration.Credentials{Access: []byte("sealed-a"), Refresh: []byte("sealed-r"), TokenType: "Bearer"}))

		// Isolation: the other workspace sees nothing, and cannot change it.
		wantCode(t, func() error { _, err := s.Integration(ctx, b.ID, "c1"); return err }(), fault.NotFound, "not_found")
		if l, err := s.Integrations(ctx, b.ID); err != nil || len(l) != 0 {
			t.Fatalf("other workspace lists %d, %v", len(l), err)
		}
		wantCode(t, s.DeleteIntegration(ctx, b.ID, "c1", nil), fault.NotFound, "not_found")

		got, cr, err := s.IntegrationCredentials(ctx, a.ID, "c1")
		mustOK(t, err)
		if !got.HasRefresh || got.Version != 1 || string(cr.Refresh) != "sealed-r" || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("read back %+v %+v", got, cr)
		}
		// Optimistic locking: a stale version is a conflict.
		mustOK(t, s.UpdateIntegrationTokens(ctx, a.ID, "c1", 1, integration.Credentials{Access: []byte("a2"), Refresh: []byte("r2")}, []string{"read"}, t0.Add(2*time.Hour), t0))
		wantCode(t, s.UpdateIntegrationTokens(ctx, a.ID, "c1", 1, integration.Credentials{Access: []byte("a3")}, nil, t0, t0), fault.Conflict, "integration_changed")

		// Expiring tokens and stats across workspaces.
		exp, err := s.ExpiringIntegrations(ctx, t0.Add(3*time.Hour), 10)
		if err != nil || len(exp) != 1 {
			t.Fatalf("expiring %d %v", len(exp), err)
		}
		st, err := s.IntegrationStats(ctx, t0.Add(3*time.Hour))
		if err != nil || st.Connections != 1 || st.ExpiredUnrefreshed != 1 {
			t.Fatalf("stats %+v %v", st, err)
		}

		// Disconnect: credentials gone and revocations queued, one transaction.
		revs := []integration.Revocation{{ID: "r1", Workspace: a.ID, Provider: "acme", Token: []byte("sealed-rt"), TokenTypeHint: "refresh_token", QueuedAt: t0, NextAttemptAt: t0}}
		wantCode(t, s.DeleteIntegration(ctx, a.ID, "c1", []integration.Revocation{{ID: "x", Workspace: b.ID, Token: []byte("t"), QueuedAt: t0, NextAttemptAt: t0}}), fault.Invalid, "invalid_revocation")
		mustOK(t, s.DeleteIntegration(ctx, a.ID, "c1", revs))
		if smp, _ := s.SampleIntegrationTokens(ctx, 5); len(smp) != 0 {
			t.Fatalf("%d token rows survived", len(smp))
		}
		due, err := s.DueIntegrationRevocations(ctx, t0, 10)
		if err != nil || len(due) != 1 || string(due[0].Token) != "sealed-rt" {
			t.Fatalf("due %+v %v", due, err)
		}
		mustOK(t, s.RetryIntegrationRevocation(ctx, a.ID, "r1", 1, t0.Add(time.Minute), "revocation_failed"))
		if due, _ := s.DueIntegrationRevocations(ctx, t0, 10); len(due) != 0 {
			t.Fatal("retry not deferred")
		}
		mustOK(t, s.DeleteIntegrationRevocation(ctx, a.ID, "r1"))

		// Connect flow state: single use.
		stt := &integration.State{Hash: []byte("h1"), Workspace: a.ID, Provider: "acme", SessionHash: []byte("s"), Verifier: []byte("v"),
			CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		mustOK(t, s.CreateIntegrationState(ctx, stt))
		if got, err := s.TakeIntegrationState(ctx, []byte("h1")); err != nil || got.Workspace != a.ID {
			t.Fatalf("take %v", err)
		}
		wantCode(t, func() error { _, err := s.TakeIntegrationState(ctx, []byte("h1")); return err }(), fault.NotFound, "not_found")
		mustOK(t, s.CreateIntegrationState(ctx, &integration.State{Hash: []byte("h2"), Workspace: a.ID, Provider: "acme",
			SessionHash: []byte("s"), Verifier: []byte("v"), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
		if n, err := s.DeleteExpiredIntegrationStates(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("sweep %d %v", n, err)
		}
	})
}
