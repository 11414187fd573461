package web

import "net/http"

// SecretsDeps are the web layer's dependencies for this feature.
type SecretsDeps struct{}

// secretsWeb is this feature's part of the server.
type secretsWeb struct{}

func newSecretsWeb(d SecretsDeps) secretsWeb { return secretsWeb{} }

func (s *server) secretsRoutes(mux *http.ServeMux) {}
