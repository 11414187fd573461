package web_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

const intSecret = "web-test-client-secret-42" // gitleaks:allow

// fositeProvider is a real OAuth 2.0 server (authorization code + PKCE,
// refresh, RFC 7009 revocation) for the API tests.
func fositeProvider(t *testing.T) (*httptest.Server, fosite.OAuth2Provider) {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(intSecret), bcrypt.MinCost)
	st := storage.NewMemoryStore()
	st.Clients["rampart"] = &fosite.DefaultClient{ID: "rampart", Secret: hash, RedirectURIs: []string{"https://localhost/v1/integrations/callback"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, Scopes: []string{"read", "write"}}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg := &fosite.Config{GlobalSecret: secret, EnforcePKCE: true, AccessTokenLifespan: time.Hour, RefreshTokenScopes: []string{}}
	fp := compose.Compose(cfg, st, compose.NewOAuth2HMACStrategy(cfg), compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory, compose.OAuth2TokenRevocationFactory, compose.OAuth2TokenIntrospectionFactory, compose.OAuth2PKCEFactory)
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		ar, err := fp.NewAuthorizeRequest(r.Context(), r)
		if err != nil {
			fp.WriteAuthorizeError(r.Context(), w, ar, err)
			return
		}
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		resp, err := fp.NewAuthorizeResponse(r.Context(), ar, &fosite.DefaultSession{Subject: "u"})
		if err != nil {
			fp.WriteAuthorizeError(r.Context(), w, ar, err)
			return
		}
		fp.WriteAuthorizeResponse(r.Context(), w, ar, resp)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		req, err := fp.NewAccessRequest(r.Context(), r, &fosite.DefaultSession{})
		if err != nil {
			fp.WriteAccessError(r.Context(), w, req, err)
			return
		}
		resp, err := fp.NewAccessResponse(r.Context(), req)
		if err != nil {
			fp.WriteAccessError(r.Context(), w, req, err)
			return
		}
		fp.WriteAccessResponse(r.Context(), w, req, resp)
	})
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		fp.WriteRevocationResponse(r.Context(), w, fp.NewRevocationRequest(r.Context(), r))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, fp
}

func newIntegrationTenv(t *testing.T, engine, idp string) *tenv {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if engine == store.EnginePostgres {
		cfg.Database = storetest.DSN(t, engine)
	}
	cfg.Dev = true
	cfg.Listen, cfg.AdminListen, cfg.PublicURL = "127.0.0.1:0", "127.0.0.1:0", "https://localhost"
	cfg.Password.HashMemoryKiB, cfg.Password.HashTime = 8192, 1
	cfg.Integrations.Providers = []config.IntegrationProvider{{Name: "acme", Type: "oauth2", Scopes: []string{"read"},
		AuthURL: idp + "/authorize", TokenURL: idp + "/token", RevocationURL: idp + "/revoke", ClientID: "rampart", ClientSecret: "${env:ACME_SECRET}"}}
	cfg.Finalize()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	clk := &testClock{t: time.Now().Truncate(time.Second)}
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Log: slog.New(slog.DiscardHandler), Now: clk.Now,
		Environ: []string{"ACME_SECRET=" + intSecret}})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return &tenv{a: a, h: a.Handler, clk: clk}
}

func TestIntegrationsAPI(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			if engine == store.EnginePostgres {
				storetest.DSN(t, engine) // skips here when PostgreSQL is not configured (fails under CI)
			}
			idp, fp := fositeProvider(t)
			e := newIntegrationTenv(t, engine, idp.URL)
			admin := newPerson(t, e, "admin@example.com")
			admin.enrolMFA(t)
			ws := admin.createWorkspace(t, "Alpha").ID
			base := "/v1/workspaces/" + ws + "/integrations"

			// Connect: PKCE S256 authorization URL, bound to this session.
			var begin struct {
				AuthorizationURL string `json:"authorization_url"`
			}
			admin.must(t, "POST", base+"/connect", `{"provider":"acme"}`, http.StatusOK, &begin)
			au, _ := url.Parse(begin.AuthorizationURL)
			if au.Query().Get("code_challenge_method") != "S256" {
				t.Fatalf("no PKCE: %s", begin.AuthorizationURL)
			}
			nc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := nc.Get(begin.AuthorizationURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			cb := "/v1/integrations/callback?" + loc.RawQuery

			// Another person's session cannot complete the flow.
			other := newPerson(t, e, "other@example.com")
			other.refused(t, "GET", cb, "", http.StatusForbidden, "state_session_mismatch")
			// The state is spent: start again and complete as the admin.
			admin.must(t, "POST", base+"/connect", `{"provider":"acme"}`, http.StatusOK, &begin)
			resp, err = nc.Get(begin.AuthorizationURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ = url.Parse(resp.Header.Get("Location"))
			var done struct {
				Integration struct {
					ID     string   `json:"id"`
					Scopes []string `json:"scopes"`
				} `json:"integration"`
			}
			admin.must(t, "GET", "/v1/integrations/callback?"+loc.RawQuery, "", http.StatusCreated, &done)
			id := done.Integration.ID
			admin.refused(t, "GET", "/v1/integrations/callback?state=x", "", http.StatusBadRequest, "callback_invalid")

			// The app, with an API key holding integrations.use, gets a token.
			_, useKey := admin.createKey(t, ws, []string{"integrations.use"}, 1)
			app := admin.withKey(useKey)
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			app.must(t, "GET", base+"/"+id+"/token", "", http.StatusOK, &tok)
			if _, _, err := fp.IntrospectToken(context.Background(), tok.AccessToken, fosite.AccessToken, &fosite.DefaultSession{}); err != nil {
				t.Fatalf("handed-out token not active: %v", err)
			}
			// A key without the permission, or the app managing, is refused.
			_, readKey := admin.createKey(t, ws, []string{"workspace.read"}, 1)
			admin.withKey(readKey).refused(t, "GET", base+"/"+id+"/token", "", http.StatusForbidden, "permission_denied")
			app.refused(t, "DELETE", base+"/"+id, "", http.StatusForbidden, "permission_denied")
			// Another tenant sees no workspace.
			ows := other.createWorkspace(t, "Bravo").ID
			other.refused(t, "GET", base+"/"+id+"/token", "", http.StatusNotFound, "workspace_not_found")
			other.refused(t, "GET", "/v1/workspaces/"+ows+"/integrations/"+id+"/token", "", http.StatusNotFound, "integration_not_found")

			var list struct {
				Integrations []struct {
					ID string `json:"id"`
				} `json:"integrations"`
				Providers []struct {
					Name string `json:"name"`
				} `json:"providers"`
			}
			app.must(t, "GET", base, "", http.StatusOK, &list)
			if len(list.Integrations) != 1 || len(list.Providers) != 1 {
				t.Fatalf("list %+v", list)
			}

			// Disconnect revokes at the provider.
			var dis struct {
				Revocation string `json:"revocation"`
			}
			admin.must(t, "DELETE", base+"/"+id, "", http.StatusOK, &dis)
			if dis.Revocation != "done" {
				t.Fatalf("revocation %q", dis.Revocation)
			}
			if _, _, err := fp.IntrospectToken(context.Background(), tok.AccessToken, fosite.AccessToken, &fosite.DefaultSession{}); err == nil {
				t.Fatal("token still active after disconnect")
			}
			app.refused(t, "GET", base+"/"+id+"/token", "", http.StatusNotFound, "integration_not_found")

			// The live checks report measured values.
			rep := e.a.Trust.Run(context.Background())
			found := 0
			for _, r := range rep {
				if strings.HasPrefix(r.ID, "INT-") {
					found++
					if r.Status != "passing" {
						t.Errorf("%s: %s %s", r.ID, r.Status, r.Evidence)
					}
				}
			}
			if found != 4 {
				t.Errorf("%d INT checks registered", found)
			}
		})
	}
}
