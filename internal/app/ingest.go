package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/web"
)

// ingestParts is this feature's share of the App.
type ingestParts struct{}

func (a *App) buildIngest(ctx context.Context) error { return nil }

func (a *App) ingestWebDeps() web.IngestDeps { return web.IngestDeps{} }

func (a *App) ingestChecks() map[string]trust.Check { return nil }
