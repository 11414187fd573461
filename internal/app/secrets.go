package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/web"
)

// secretsParts is this feature's share of the App.
type secretsParts struct{}

func (a *App) buildSecrets(ctx context.Context) error { return nil }

func (a *App) secretsWebDeps() web.SecretsDeps { return web.SecretsDeps{} }

func (a *App) secretsChecks() map[string]trust.Check { return nil }
