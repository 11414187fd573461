package web

import "net/http"

// IngestDeps are the web layer's dependencies for this feature.
type IngestDeps struct{}

// ingestWeb is this feature's part of the server.
type ingestWeb struct{}

func newIngestWeb(d IngestDeps) ingestWeb { return ingestWeb{} }

func (s *server) ingestRoutes(mux *http.ServeMux) {}
