package web

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/vault/integration"
)

// IntegrationDeps are the web layer's dependencies for this feature.
type IntegrationDeps struct {
	// Integrations is the third-party credentials service; nil leaves the
	// routes out.
	Integrations *integration.Service
}

// integrationWeb is this feature's part of the server.
type integrationWeb struct {
	integrations *integration.Service
}

func newIntegrationWeb(d IntegrationDeps) integrationWeb {
	return integrationWeb{integrations: d.Integrations}
}

// integrationRoutes registers the integrations API (docs/INTEGRATIONS.md).
func (s *server) integrationRoutes(mux *http.ServeMux) {
	if s.integrations == nil {
		return
	}
	for _, rt := range []route{
		{"GET /v1/workspaces/{ws}/integrations", s.apiIntegrations},
		{"POST /v1/workspaces/{ws}/integrations/connect", s.apiIntegrationConnect},
		{"POST /v1/workspaces/{ws}/integrations", s.apiIntegrationAPIKey},
		{"GET /v1/workspaces/{ws}/integrations/{id}", s.apiIntegration},
		{"GET /v1/workspaces/{ws}/integrations/{id}/token", s.apiIntegrationToken},
		{"DELETE /v1/workspaces/{ws}/integrations/{id}", s.apiIntegrationDisconnect},
		{"GET /v1/integrations/callback", s.apiIntegrationCallback},
	} {
		mux.Handle(rt.pattern, noStore(rt.handler))
	}
}

type integrationJSON struct {
	ID               string   `json:"id"`
	Provider         string   `json:"provider"`
	Type             string   `json:"type"`
	Scopes           []string `json:"scopes"`
	CreatedBy        string   `json:"created_by"`
	CreatedAt        string   `json:"created_at"`
	ExpiresAt        string   `json:"expires_at,omitempty"`
	Refreshable      bool     `json:"refreshable"`
	RefreshedAt      string   `json:"refreshed_at,omitempty"`
	LastUsedAt       string   `json:"last_used_at,omitempty"`
	RefreshFailures  int      `json:"refresh_failures"`
	LastRefreshError string   `json:"last_refresh_error,omitempty"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func toIntegrationJSON(c integration.Connection) integrationJSON {
	return integrationJSON{ID: c.ID, Provider: c.Provider, Type: string(c.Kind), Scopes: nonNil(c.Scopes), CreatedBy: c.CreatedBy,
		CreatedAt: rfc3339(c.CreatedAt), ExpiresAt: rfc3339(c.ExpiresAt), Refreshable: c.HasRefresh, RefreshedAt: rfc3339(c.RefreshedAt),
		LastUsedAt: rfc3339(c.LastUsedAt), RefreshFailures: c.RefreshFailures, LastRefreshError: c.LastRefreshError}
}

type providerJSON struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Scopes    []string `json:"scopes"`
	Revocable bool     `json:"revocable"`
}

// integrationActor is who acts, for the integration service's audit trail.
func integrationActor(p tenancy.Principal) integration.Actor {
	switch {
	case p.APIKey != nil:
		return integration.Actor{Type: audit.ActorAPIKey, ID: p.APIKey.ID}
	case p.OperatorID != "":
		return integration.Actor{Type: audit.ActorOperator, ID: p.OperatorID, SessionID: p.SessionID}
	}
	return integration.Actor{Type: audit.ActorUser, ID: p.UserID, SessionID: p.SessionID}
}

// wsIntegration authenticates, resolves {ws} and requires perm.
func (s *server) wsIntegration(w http.ResponseWriter, r *http.Request, perm string) (tenancy.Principal, string, bool) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return p, "", false
	}
	if err := s.ten.Require(r.Context(), p, ws, perm); err != nil {
		s.writeError(w, r, err)
		return p, "", false
	}
	return p, ws, true
}

func (s *server) apiIntegrations(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return
	}
	// Managers and token users both need to find a connection's id.
	if !s.ten.Check(r.Context(), p, ws, integration.PermManage).Allowed {
		if err := s.ten.Require(r.Context(), p, ws, integration.PermUse); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	list, err := s.integrations.List(r.Context(), ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Integrations []integrationJSON `json:"integrations"`
		Providers    []providerJSON    `json:"providers"`
	}{Integrations: []integrationJSON{}, Providers: []providerJSON{}}
	for _, c := range list {
		out.Integrations = append(out.Integrations, toIntegrationJSON(c))
	}
	for _, pr := range s.integrations.Providers() {
		out.Providers = append(out.Providers, providerJSON{Name: pr.Name, Type: string(pr.Kind), Scopes: nonNil(pr.Scopes), Revocable: pr.Revocable})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) apiIntegrationConnect(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsIntegration(w, r, integration.PermManage)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Provider string   `json:"provider"`
		Scopes   []string `json:"scopes"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, exp, err := s.integrations.BeginConnect(r.Context(), integrationActor(p), ws, in.Provider, in.Scopes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		AuthorizationURL string `json:"authorization_url"`
		ExpiresAt        string `json:"expires_at"`
	}{u, rfc3339(exp)})
}

// apiIntegrationCallback is the provider's redirect back: it completes the
// flow for the session that started it.
func (s *server) apiIntegrationCallback(w http.ResponseWriter, r *http.Request) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cb, err := integration.ParseCallback(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.integrations.CompleteConnect(r.Context(), integrationActor(p), cb, func(ws string) error {
		return s.ten.Require(r.Context(), p, ws, integration.PermManage)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		Workspace   string          `json:"workspace"`
		Integration integrationJSON `json:"integration"`
	}{c.Workspace, toIntegrationJSON(*c)})
}

func (s *server) apiIntegrationAPIKey(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsIntegration(w, r, integration.PermManage)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		Provider string `json:"provider"`
		APIKey   string `json:"api_key"`
	}](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.integrations.ConnectAPIKey(r.Context(), integrationActor(p), ws, in.Provider, in.APIKey)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toIntegrationJSON(*c))
}

func (s *server) apiIntegration(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.wsIntegration(w, r, integration.PermManage)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "integration_not_found")
	if !ok {
		return
	}
	c, err := s.integrations.Get(r.Context(), ws, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toIntegrationJSON(*c))
}

// apiIntegrationToken hands the app a fresh credential (INT-4).
func (s *server) apiIntegrationToken(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsIntegration(w, r, integration.PermUse)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "integration_not_found")
	if !ok {
		return
	}
	t, err := s.integrations.Token(r.Context(), integrationActor(p), ws, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, struct {
		AccessToken string   `json:"access_token"`
		TokenType   string   `json:"token_type"`
		ExpiresAt   string   `json:"expires_at,omitempty"`
		Scopes      []string `json:"scopes"`
		Refreshed   bool     `json:"refreshed"`
	}{t.AccessToken, t.TokenType, rfc3339(t.ExpiresAt), nonNil(t.Scopes), t.Refreshed})
}

// apiIntegrationDisconnect deletes the credentials at once and revokes
// them: 200 {"revocation":"done"|"unsupported"|"not_applicable"}, or 202
// {"revocation":"queued"} when the provider did not confirm yet (retried
// in the background).
func (s *server) apiIntegrationDisconnect(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.wsIntegration(w, r, integration.PermManage)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "integration_not_found")
	if !ok {
		return
	}
	state, err := s.integrations.Disconnect(r.Context(), integrationActor(p), ws, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := http.StatusOK
	if state == integration.RevocationQueued {
		st = http.StatusAccepted
	}
	writeJSON(w, st, struct {
		Revocation string `json:"revocation"`
	}{state})
}
