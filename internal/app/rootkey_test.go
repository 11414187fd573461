package app_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

// A start with a root key other than the one the database was set up with
// must fail: going on would write data under a key nobody can read back.
func TestRootKeyPinningFailsClosed(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine)
			}
			cfg := testConfig(t, db)
			open := func() (*app.App, error) {
				return app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Log: testLog(t)})
			}
			a, err := open()
			if err != nil {
				t.Fatalf("first start: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			// The same key starts again.
			a, err = open()
			if err != nil {
				t.Fatalf("restart with the same key: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}

			other, err := vault.GenerateRootKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.RootKey.File, []byte(other.Text()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfg.RootKey.File, 0o600); err != nil {
				t.Fatal(err)
			}
			a, err = open()
			if err == nil {
				a.Close()
				t.Fatal("app started with a different root key")
			}
			if !errors.Is(err, vault.ErrRootKeyMismatch) && !strings.Contains(err.Error(), "does not match") {
				t.Errorf("error %q does not name the mismatch", err)
			}

			// A key from the environment is pinned the same way.
			cfg.RootKey.File, cfg.RootKey.Env = "", "TEST_ROOT_KEY"
			a, err = app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Log: testLog(t), Environ: []string{"TEST_ROOT_KEY=" + other.Text()}})
			if err == nil {
				a.Close()
				t.Fatal("app started with a different root key from the environment")
			}
		})
	}
}
