package web

import "net/http"

// VaultDeps are the web layer's dependencies for this feature.
type VaultDeps struct{}

// vaultWeb is this feature's part of the server.
type vaultWeb struct{}

func newVaultWeb(d VaultDeps) vaultWeb { return vaultWeb{} }

func (s *server) vaultRoutes(mux *http.ServeMux) {}
