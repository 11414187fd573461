package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/web"
)

// oauthParts is the OAuth 2.0 / OIDC provider's share of the App.
type oauthParts struct{}

func (a *App) buildOAuth(ctx context.Context) error { return nil }

func (a *App) oauthWebDeps() web.OAuthDeps { return web.OAuthDeps{} }

func (a *App) oauthChecks() map[string]trust.Check { return nil }
