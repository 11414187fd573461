package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/web"
)

// signingParts holds the signing keys shared by OAuth tokens and gateway
// assertions.
type signingParts struct{}

// buildSigning runs before buildOAuth and buildGateway, which sign with it.
func (a *App) buildSigning(ctx context.Context) error { return nil }

func (a *App) tokenWebDeps() web.TokenDeps { return web.TokenDeps{} }

func (a *App) signingChecks() map[string]trust.Check { return nil }
