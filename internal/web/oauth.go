package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/oauth/provider"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// OAuthDeps are the web layer's dependencies for the OAuth 2.0 / OpenID
// Connect provider (SES-4) and client registration. Nil leaves the routes
// answering 404.
type OAuthDeps struct {
	OAuth         *oauth.Service
	OAuthProvider *provider.Provider
}

// oauthWeb is this feature's part of the server.
type oauthWeb struct {
	oauthSvc *oauth.Service
	oauthP   *provider.Provider
}

func newOAuthWeb(d OAuthDeps) oauthWeb { return oauthWeb{oauthSvc: d.OAuth, oauthP: d.OAuthProvider} }

var errOAuthOff = fault.New(fault.NotFound, "not_found", "the OAuth provider is not enabled")

func (s *server) oauthRoutes(mux *http.ServeMux) {
	on := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.oauthP == nil || s.oauthSvc == nil {
				s.fail(w, r, errOAuthOff)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET "+provider.PathDiscovery, on(s.oauthDiscovery))
	mux.HandleFunc("GET "+provider.PathAuthorize, on(s.oauthAuthorize))
	mux.HandleFunc("POST "+provider.PathConsent, on(s.oauthConsent))
	mux.HandleFunc("POST "+provider.PathToken, on(func(w http.ResponseWriter, r *http.Request) { s.oauthP.Token(w, r) }))
	mux.HandleFunc("POST "+provider.PathRevoke, on(func(w http.ResponseWriter, r *http.Request) { s.oauthP.Revoke(w, r) }))
	mux.HandleFunc("POST "+provider.PathIntrospect, on(func(w http.ResponseWriter, r *http.Request) { s.oauthP.Introspect(w, r) }))
	mux.HandleFunc("GET "+provider.PathUserInfo, on(func(w http.ResponseWriter, r *http.Request) { s.oauthP.UserInfo(w, r) }))
	mux.HandleFunc("POST "+provider.PathUserInfo, on(func(w http.ResponseWriter, r *http.Request) { s.oauthP.UserInfo(w, r) }))
	mux.HandleFunc("GET "+provider.PathLogout, on(s.oauthLogout))
	mux.HandleFunc("POST "+provider.PathLogout, on(s.oauthLogout))

	// Client registration: workspace Admins (service clients carry a
	// subset of the creator's permissions) and operator staff.
	mux.Handle("GET /v1/workspaces/{ws}/oauth/clients", noStore(on(s.apiWorkspaceClients)))
	mux.Handle("POST /v1/workspaces/{ws}/oauth/clients", noStore(on(s.apiCreateWorkspaceClient)))
	mux.Handle("DELETE /v1/workspaces/{ws}/oauth/clients/{id}", noStore(on(s.apiDeleteWorkspaceClient)))
	mux.Handle("GET /v1/operator/oauth/clients", noStore(on(s.apiOperatorClients)))
	mux.Handle("POST /v1/operator/oauth/clients", noStore(on(s.apiCreateOperatorClient)))
	mux.Handle("DELETE /v1/operator/oauth/clients/{id}", noStore(on(s.apiDeleteOperatorClient)))
}

func (s *server) oauthDiscovery(w http.ResponseWriter, r *http.Request) {
	// Public metadata, read by browser-based clients too.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.oauthP.Discovery())
}

// oauthUser authenticates the browser for the authorization endpoint, or
// sends it to sign in (and the MFA step) with a return_to that brings it
// back to the same authorization request.
func (s *server) oauthUser(w http.ResponseWriter, r *http.Request, back string) (provider.User, bool) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		switch {
		case fault.Is(err, fault.Unauthenticated) && fault.As(err).Code == "mfa_pending":
			http.Redirect(w, r, "/signin/mfa?return_to="+url.QueryEscape(back), http.StatusFound)
		case fault.Is(err, fault.Unauthenticated):
			http.Redirect(w, r, "/signin?return_to="+url.QueryEscape(back), http.StatusFound)
		default:
			s.errorPage(w, r, err)
		}
		return provider.User{}, false
	}
	return provider.User{ID: sess.UserID, SessionID: sess.ID, MFA: sess.MFA, AuthTime: sess.CreatedAt}, true
}

func (s *server) oauthAuthorize(w http.ResponseWriter, r *http.Request) {
	u, ok := s.oauthUser(w, r, r.URL.RequestURI())
	if !ok {
		return
	}
	s.runAuthorize(w, r, u, provider.DecisionNone)
}

func (s *server) runAuthorize(w http.ResponseWriter, r *http.Request, u provider.User, decision string) {
	prompt, err := s.oauthP.Authorize(w, r, u, decision)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	if prompt != nil {
		s.render(w, r, http.StatusOK, "consent", view{Title: "Allow access?", SignedIn: true, Data: prompt})
	}
}

// oauthConsent takes the consent page's answer. The POST is guarded by
// the cross-origin check and the session cookie (SameSite=Lax); the
// authorization request is re-validated from scratch.
func (s *server) oauthConsent(w http.ResponseWriter, r *http.Request) {
	req := r.PostFormValue("request")
	decision := r.PostFormValue("decision")
	if len(req) > 4096 || (decision != provider.DecisionAllow && decision != provider.DecisionDeny) {
		s.errorPage(w, r, fault.New(fault.Invalid, "consent_invalid", "the consent answer is invalid"))
		return
	}
	u, ok := s.oauthUser(w, r, provider.PathAuthorize+"?"+req)
	if !ok {
		return
	}
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	r2.URL = &url.URL{Path: provider.PathAuthorize, RawQuery: req}
	r2.RequestURI = r2.URL.RequestURI()
	r2.Body, r2.ContentLength, r2.Form, r2.PostForm = http.NoBody, 0, nil, nil
	r2.Header.Del("Content-Type")
	s.runAuthorize(w, r2, u, decision)
}

// oauthLogout is RP-initiated logout: the id_token_hint's session ends,
// and the browser goes to the client's registered post-logout URI.
func (s *server) oauthLogout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			q = r.Form
		}
	}
	to, sub, sid, err := s.oauthP.Logout(r.Context(), q)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	if sid != "" {
		if err := s.id.RevokeSession(r.Context(), sub, sid); err != nil && !fault.Is(err, fault.NotFound) {
			s.errorPage(w, r, err)
			return
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		a, err := s.id.Authenticate(r.Context(), c.Value)
		switch {
		case err != nil: // the hint's session was this browser's: it is gone
			s.clearSessionCookie(w)
		case a.Session.UserID == sub:
			_ = s.id.SignOut(r.Context(), c.Value)
			s.clearSessionCookie(w)
		}
	}
	if to == "" {
		to = "/signin?done=signed_out"
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// --- client registration API ---

type clientJSON struct {
	ID                     string    `json:"id"`
	Workspace              string    `json:"workspace,omitempty"`
	Name                   string    `json:"name"`
	Public                 bool      `json:"public"`
	FirstParty             bool      `json:"first_party"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	GrantTypes             []string  `json:"grant_types"`
	Scopes                 []string  `json:"scopes"`
	Audience               []string  `json:"audience"`
	Permissions            []string  `json:"permissions"`
	CreatedAt              time.Time `json:"created_at"`
}

func toClientJSON(c oauth.Client) clientJSON {
	return clientJSON{ID: c.ID, Workspace: c.Workspace, Name: c.Name, Public: c.Public, FirstParty: c.FirstParty,
		RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs), GrantTypes: nonNil(c.GrantTypes),
		Scopes: nonNil(c.Scopes), Audience: nonNil(c.Audience), Permissions: nonNil(c.Permissions), CreatedAt: c.CreatedAt}
}

// createdClientJSON shows the secret once.
type createdClientJSON struct {
	Client       clientJSON `json:"client"`
	ClientSecret string     `json:"client_secret,omitempty"`
}

// decodeClientSpec parses a registration body; unknown fields are refused.
func decodeClientSpec(r *http.Request) (oauth.ClientSpec, error) {
	return decodeJSON[oauth.ClientSpec](r)
}

// workspaceClientAdmin authenticates a workspace request and checks that
// the caller may manage machine credentials there (Admins may).
func (s *server) workspaceClientAdmin(w http.ResponseWriter, r *http.Request) (tenancy.Principal, string, bool) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return p, ws, false
	}
	if p.UserID == "" || p.APIKey != nil {
		s.writeError(w, r, errSessionNeeded)
		return p, ws, false
	}
	if err := s.ten.Require(r.Context(), p, ws, tenancy.PermAPIKeysManage); err != nil {
		s.writeError(w, r, err)
		return p, ws, false
	}
	return p, ws, true
}

func (s *server) apiWorkspaceClients(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.workspaceClientAdmin(w, r)
	if !ok {
		return
	}
	s.writeClients(w, r, ws, false)
}

func (s *server) writeClients(w http.ResponseWriter, r *http.Request, ws string, all bool) {
	list, err := s.oauthSvc.Clients(r.Context(), ws, all)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]clientJSON, 0, len(list))
	for _, c := range list {
		out = append(out, toClientJSON(c))
	}
	writeJSON(w, http.StatusOK, struct {
		Clients []clientJSON `json:"clients"`
	}{out})
}

func (s *server) apiCreateWorkspaceClient(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.workspaceClientAdmin(w, r)
	if !ok {
		return
	}
	spec, err := decodeClientSpec(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if spec.FirstParty {
		s.writeError(w, r, fault.New(fault.Forbidden, "first_party_operator_only", "only the operator registers first-party clients"))
		return
	}
	// A service client holds at most what its creator holds (AC-1).
	for i, d := range s.ten.CheckBatch(r.Context(), p, ws, spec.Permissions) {
		if !d.Allowed {
			_ = s.audit.Record(r.Context(), audit.Event{ActorType: audit.ActorUser, ActorID: p.UserID, Workspace: ws, Action: "oauth.client_create",
				Outcome: audit.Denied, Time: s.now().UTC(), Details: map[string]string{"reason": "scope_exceeds_creator", "permission": truncate(spec.Permissions[i], 128)}})
			s.writeError(w, r, fault.New(fault.Forbidden, "scope_exceeds_creator", "a client cannot hold permissions you do not hold"))
			return
		}
	}
	c, secret, err := s.oauthSvc.CreateClient(r.Context(), oauth.Actor{Type: audit.ActorUser, ID: p.UserID}, ws, spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdClientJSON{toClientJSON(*c), secret})
}

func (s *server) apiDeleteWorkspaceClient(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.workspaceClientAdmin(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "client_not_found")
	if !ok {
		return
	}
	if err := s.oauthSvc.DeleteClient(r.Context(), oauth.Actor{Type: audit.ActorUser, ID: p.UserID}, ws, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// operator authenticates operator staff (MFA session, allowed network).
func (s *server) operator(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, err := s.personPrincipal(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return "", false
	}
	if _, err := s.ten.OperatorPrincipal(r.Context(), p); err != nil {
		s.writeError(w, r, err)
		return "", false
	}
	return p.UserID, true
}

func (s *server) apiOperatorClients(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.operator(w, r); !ok {
		return
	}
	s.writeClients(w, r, "", true)
}

func (s *server) apiCreateOperatorClient(w http.ResponseWriter, r *http.Request) {
	id, ok := s.operator(w, r)
	if !ok {
		return
	}
	spec, err := decodeClientSpec(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, secret, err := s.oauthSvc.CreateClient(r.Context(), oauth.Actor{Type: audit.ActorOperator, ID: id}, "", spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdClientJSON{toClientJSON(*c), secret})
}

func (s *server) apiDeleteOperatorClient(w http.ResponseWriter, r *http.Request) {
	opID, ok := s.operator(w, r)
	if !ok {
		return
	}
	id, ok := s.pathID(w, r, "id", "client_not_found")
	if !ok {
		return
	}
	if err := s.oauthSvc.DeleteClient(r.Context(), oauth.Actor{Type: audit.ActorOperator, ID: opID}, "", id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
