package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
)

func TestTenancyStatsAndRLSStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		st, err := s.TenancyStats(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if st != (store.TenancyStats{}) {
			t.Fatalf("fresh database stats = %+v, want zeros", st)
		}
		owner := newUser(t, s, "owner@example.com").ID
		for i, id := range []string{"ws-a", "ws-b"} {
			w := &tenancy.Workspace{ID: id, Name: id, CreatedBy: owner, CreatedAt: now, UpdatedAt: now}
			if err := s.CreateWorkspace(ctx, w, tenancy.Member{UserID: owner, Roles: []string{tenancy.RoleAdmin}, JoinedAt: now, Active: true}); err != nil {
				t.Fatal(err)
			}
			k := &tenancy.APIKey{ID: "key" + id, WorkspaceID: id, Name: "k", CreatedBy: owner, SecretHash: make([]byte, 32),
				Permissions: []string{"content.read"}, CreatedAt: now, ExpiresAt: now.Add(time.Duration(i+1) * 24 * time.Hour)}
			if err := s.CreateAPIKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		st, err = s.TenancyStats(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if st.Workspaces != 2 || st.Members != 2 || st.ActiveAPIKeys != 2 || st.LongestKeyLifeHours != 48 || st.APIKeysNoExpiry != 0 {
			t.Fatalf("stats = %+v", st)
		}
		// Expired keys are not active.
		if st, _ = s.TenancyStats(ctx, now.Add(36*time.Hour)); st.ActiveAPIKeys != 1 {
			t.Fatalf("active keys after 36h = %d, want 1", st.ActiveAPIKeys)
		}

		rls, err := s.RLSStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rls.Tables != 10 {
			t.Fatalf("workspace tables = %d", rls.Tables)
		}
		if s.Engine() == store.EnginePostgres {
			if rls.Enabled != rls.Tables || rls.Forced != rls.Tables || rls.RoleIsSuper || rls.RoleBypassRLS || rls.RoleOwnsAny || rls.Role == "" {
				t.Fatalf("RLS status = %+v: want every table enabled and forced, a non-owner role without bypass", rls)
			}
		}
	})
}
