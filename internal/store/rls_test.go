package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// TestRowLevelSecurity proves AC-3 on PostgreSQL: the database itself, not
// the store's WHERE clauses, keeps workspaces apart. The queries here are
// deliberately unfiltered.
func TestRowLevelSecurity(t *testing.T) {
	s := storetest.Open(t, store.EnginePostgres)
	ctx := context.Background()
	tables := workspaceTables(t, s)
	a, _ := populate(t, s, "a")
	b, _ := populate(t, s, "b")

	t.Run("application role", func(t *testing.T) {
		var user, session string
		var super, bypass bool
		err := s.DB().QueryRowContext(ctx, `SELECT current_user, session_user, r.rolsuper, r.rolbypassrls
			FROM pg_roles r WHERE r.rolname = current_user`).Scan(&user, &session, &super, &bypass)
		mustOK(t, err)
		if user != "rampart_app" || super || bypass {
			t.Fatalf("queries run as %q (superuser %v, bypassrls %v); want rampart_app without either", user, super, bypass)
		}
		if session == user {
			t.Fatalf("session user %q should be the owner that switched roles", session)
		}
		var owned int
		mustOK(t, s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_tables
			WHERE schemaname = current_schema() AND tableowner = current_user`).Scan(&owned))
		if owned != 0 {
			t.Fatalf("rampart_app owns %d tables; an owner could disable the policies", owned)
		}
		// Every pooled connection runs as rampart_app, not only the first:
		// hold several at once.
		var conns []*sql.Conn
		for range 4 {
			c, err := s.DB().Conn(ctx)
			mustOK(t, err)
			conns = append(conns, c)
		}
		for _, c := range conns {
			var u string
			mustOK(t, c.QueryRowContext(ctx, "SELECT current_user").Scan(&u))
			if u != "rampart_app" {
				t.Errorf("a pooled connection runs as %q", u)
			}
			c.Close()
		}
		// And it cannot change the schema (no DDL for an injected query).
		if _, err := s.DB().ExecContext(ctx, "ALTER TABLE members DISABLE ROW LEVEL SECURITY"); err == nil {
			t.Fatal("rampart_app disabled row-level security")
		}
	})

	t.Run("every workspace table is forced under a policy", func(t *testing.T) {
		rows, err := s.DB().QueryContext(ctx, `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
				(SELECT COUNT(*) FROM pg_policy p WHERE p.polrelid = c.oid)
			FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
			AND c.relname = ANY ($1)`, append([]string{"workspaces"}, tables...))
		mustOK(t, err)
		defer rows.Close()
		seen := 0
		for rows.Next() {
			var name string
			var enabled, forced bool
			var policies int
			mustOK(t, rows.Scan(&name, &enabled, &forced, &policies))
			seen++
			if !enabled || !forced || policies == 0 {
				t.Errorf("%s: row security %v, forced %v, %d policies", name, enabled, forced, policies)
			}
		}
		mustOK(t, rows.Err())
		if seen != len(tables)+1 {
			t.Fatalf("checked %d tables, want %d", seen, len(tables)+1)
		}
	})

	t.Run("unfiltered reads see only the bound workspace", func(t *testing.T) {
		for _, ws := range []string{a.ID, b.ID} {
			err := s.WithWorkspaceTxForTest(ctx, ws, func(tx *sql.Tx) error {
				for _, table := range append([]string{"workspaces"}, tables...) {
					col := "workspace_id"
					if table == "workspaces" {
						col = "id"
					}
					got := map[string]int{}
					rows, err := tx.QueryContext(ctx, `SELECT `+col+` FROM `+table)
					if err != nil {
						return err
					}
					for rows.Next() {
						var id string
						if err := rows.Scan(&id); err != nil {
							rows.Close()
							return err
						}
						got[id]++
					}
					rows.Close()
					if len(got) != 1 || got[ws] == 0 {
						t.Errorf("unfiltered SELECT on %s bound to %s saw %v", table, ws, got)
					}
				}
				return nil
			})
			mustOK(t, err)
		}
	})

	t.Run("no scope sees nothing", func(t *testing.T) {
		for _, table := range append([]string{"workspaces"}, tables...) {
			var n int
			mustOK(t, s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n))
			if n != 0 {
				t.Errorf("%s: %d rows visible without a workspace", table, n)
			}
		}
	})

	t.Run("the global scope sees both", func(t *testing.T) {
		mustOK(t, s.WithGlobalTxForTest(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT workspace_id) FROM members`).Scan(&n); err != nil {
				return err
			}
			if n != 2 {
				t.Errorf("global scope sees members of %d workspaces", n)
			}
			return nil
		}))
	})

	t.Run("the scope ends with the transaction", func(t *testing.T) {
		// One connection: the bound transaction, then a plain query on the
		// same session must see nothing.
		c, err := s.DB().Conn(ctx)
		mustOK(t, err)
		defer c.Close()
		tx, err := c.BeginTx(ctx, nil)
		mustOK(t, err)
		_, err = tx.ExecContext(ctx, "SELECT set_config('rampart.workspace_id', $1, true)", a.ID)
		mustOK(t, err)
		mustOK(t, tx.Commit())
		var n int
		mustOK(t, c.QueryRowContext(ctx, "SELECT COUNT(*) FROM members").Scan(&n))
		if n != 0 {
			t.Fatalf("%d members visible after the bound transaction ended", n)
		}
	})

	t.Run("writes to another workspace are refused", func(t *testing.T) {
		outsider := newUser(t, s, "outsider@example.com")
		for _, tc := range []struct {
			name  string
			query string
			args  []any
		}{
			{"insert a member of b", `INSERT INTO members (workspace_id, user_id, joined_at) VALUES ($1, $2, 0)`, []any{b.ID, outsider.ID}},
			{"insert a role into b", `INSERT INTO roles (workspace_id, id, name, created_at) VALUES ($1, 'r', 'R', 0)`, []any{b.ID}},
			{"insert an API key into b", `INSERT INTO api_keys (id, workspace_id, secret_hash, created_at, expires_at) VALUES ('k', $1, '\x00', 0, 1)`, []any{b.ID}},
			{"move a row to b", `UPDATE api_keys SET workspace_id = $1`, []any{b.ID}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var execErr error
				_ = s.WithWorkspaceTxForTest(ctx, a.ID, func(tx *sql.Tx) error {
					_, execErr = tx.ExecContext(ctx, tc.query, tc.args...)
					return execErr
				})
				var pe *pgconn.PgError
				if !errors.As(execErr, &pe) || pe.Code != "42501" {
					t.Fatalf("error = %v; want a row-level security violation (42501)", execErr)
				}
			})
		}
		// Updates and deletes aimed at b from a's scope touch nothing.
		mustOK(t, s.WithWorkspaceTxForTest(ctx, a.ID, func(tx *sql.Tx) error {
			for _, q := range []string{`DELETE FROM members WHERE workspace_id = $1`, `UPDATE workspaces SET name = 'x' WHERE id = $1`} {
				res, err := tx.ExecContext(ctx, q, b.ID)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n != 0 {
					t.Errorf("%q from a's scope changed %d rows of b", q, n)
				}
			}
			return nil
		}))
		ms, err := s.ListMembers(ctx, b.ID)
		mustOK(t, err)
		if len(ms) != 2 {
			t.Fatalf("b's members = %+v", ms)
		}
	})

	t.Run("deleting an account reaches every workspace", func(t *testing.T) {
		// Referential actions are not subject to the policies: deleting a
		// user (no workspace bound) still removes their memberships.
		u := newUser(t, s, "both@example.com")
		for _, ws := range []string{a.ID, b.ID} {
			mustOK(t, s.AddMember(ctx, &tenancy.Member{WorkspaceID: ws, UserID: u.ID, Active: true}))
		}
		_, err := s.DB().ExecContext(ctx, "DELETE FROM users WHERE id = $1", u.ID)
		mustOK(t, err)
		mustOK(t, s.WithGlobalTxForTest(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM members WHERE user_id = $1", u.ID).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				t.Errorf("%d memberships outlived the account", n)
			}
			return nil
		}))
	})
}

// TestAppRoleAfterMigrate opens a store on a fresh database, so its first
// connection predates rampart_app, then migrates: that connection must be
// switched too when next used, not left running as the owner.
func TestAppRoleAfterMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.DSN(t, store.EnginePostgres)
	s := storetest.OpenDSN(t, dsn)
	s.DB().SetMaxOpenConns(1)
	var user string
	mustOK(t, s.DB().QueryRowContext(ctx, "SELECT current_user").Scan(&user))
	if user == "rampart_app" {
		t.Fatal("switched before the role exists")
	}
	mustOK(t, s.Migrate(ctx))
	mustOK(t, s.DB().QueryRowContext(ctx, "SELECT current_user").Scan(&user))
	if user != "rampart_app" {
		t.Fatalf("after Migrate the connection runs as %q", user)
	}
	// Migrating again runs as the owner inside its transaction only.
	mustOK(t, s.Migrate(ctx))
	mustOK(t, s.DB().QueryRowContext(ctx, "SELECT current_user").Scan(&user))
	if user != "rampart_app" {
		t.Fatalf("after a second Migrate the connection runs as %q", user)
	}
	// A store opened on the migrated database switches from the start.
	s2 := storetest.OpenDSN(t, dsn)
	mustOK(t, s2.DB().QueryRowContext(ctx, "SELECT current_user").Scan(&user))
	if user != "rampart_app" {
		t.Fatalf("a new store on a migrated database runs as %q", user)
	}
}
