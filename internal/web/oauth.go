package web

import "net/http"

// OAuthDeps are the web layer's dependencies for this feature.
type OAuthDeps struct{}

// oauthWeb is this feature's part of the server.
type oauthWeb struct{}

func newOAuthWeb(d OAuthDeps) oauthWeb { return oauthWeb{} }

func (s *server) oauthRoutes(mux *http.ServeMux) {}
