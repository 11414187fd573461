package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/trust"
)

// gatewayParts is the security gateway's share of the App: the pipeline in
// front of Rampart's own handler and the customer's upstreams.
type gatewayParts struct{}

// buildGateway runs after the web handler exists.
func (a *App) buildGateway(ctx context.Context) error { return nil }

func (a *App) gatewayChecks() map[string]trust.Check { return nil }
