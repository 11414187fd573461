package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/web"
)

// vaultParts is the key hierarchy's and field encryption's share of the App.
type vaultParts struct{}

func (a *App) buildVault(ctx context.Context, root vault.RootKey) error { return nil }

// onWorkspaceDelete runs before a workspace's rows are deleted.
func (a *App) onWorkspaceDelete(ctx context.Context, workspace string) error { return nil }

func (a *App) vaultWebDeps() web.VaultDeps { return web.VaultDeps{} }

func (a *App) vaultChecks() map[string]trust.Check { return nil }
