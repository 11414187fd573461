package web

import "net/http"

// IntegrationDeps are the web layer's dependencies for this feature.
type IntegrationDeps struct{}

// integrationWeb is this feature's part of the server.
type integrationWeb struct{}

func newIntegrationWeb(d IntegrationDeps) integrationWeb { return integrationWeb{} }

func (s *server) integrationRoutes(mux *http.ServeMux) {}
