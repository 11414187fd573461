package web

import "net/http"

// TokenDeps are the web layer's dependencies for signed tokens (JWKS,
// bearer access tokens).
type TokenDeps struct{}

// tokenWeb is this feature's part of the server.
type tokenWeb struct{}

func newTokenWeb(d TokenDeps) tokenWeb { return tokenWeb{} }

func (s *server) tokenRoutes(mux *http.ServeMux) {}
