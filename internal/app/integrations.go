package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/web"
)

// integrationParts is this feature's share of the App.
type integrationParts struct{}

func (a *App) buildIntegrations(ctx context.Context) error { return nil }

func (a *App) integrationWebDeps() web.IntegrationDeps { return web.IntegrationDeps{} }

func (a *App) integrationChecks() map[string]trust.Check { return nil }
