package integration_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/integration"
)

const (
	redirectURL  = "https://rampart.test/v1/integrations/callback"
	clientID     = "rampart"
	clientSecret = "test-client-secret-0123456789" // gitleaks:allow
)

// oauthServer is a real OAuth 2.0 authorization server (fosite) with the
// authorization code grant enforcing PKCE, refresh tokens, and RFC 7009
// revocation. extra is a scope it grants beyond the request (to provoke
// INT-2); down makes its revocation endpoint answer 503.
type oauthServer struct {
	*httptest.Server
	fp      fosite.OAuth2Provider
	extra   atomic.Value // string
	down    atomic.Bool
	revokes atomic.Int32 // successful revocation requests
}

func newOAuthServer(t testing.TB) *oauthServer {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(clientSecret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	st := storage.NewMemoryStore()
	st.Clients[clientID] = &fosite.DefaultClient{ID: clientID, Secret: hash, RedirectURIs: []string{redirectURL},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scopes: []string{"read", "write", "admin"}}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg := &fosite.Config{GlobalSecret: secret, EnforcePKCE: true, EnablePKCEPlainChallengeMethod: false,
		AccessTokenLifespan: time.Hour, RefreshTokenLifespan: 24 * time.Hour, AuthorizeCodeLifespan: time.Minute,
		RefreshTokenScopes: []string{}, ScopeStrategy: fosite.ExactScopeStrategy}
	fp := compose.Compose(cfg, st, compose.NewOAuth2HMACStrategy(cfg),
		compose.OAuth2AuthorizeExplicitFactory, compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenRevocationFactory, compose.OAuth2TokenIntrospectionFactory, compose.OAuth2PKCEFactory)
	o := &oauthServer{fp: fp}
	o.extra.Store("")
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := fp.NewAuthorizeRequest(ctx, r)
		if err != nil {
			fp.WriteAuthorizeError(ctx, w, ar, err)
			return
		}
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		if x := o.extra.Load().(string); x != "" {
			ar.GrantScope(x)
		}
		resp, err := fp.NewAuthorizeResponse(ctx, ar, &fosite.DefaultSession{Subject: "user-1"})
		if err != nil {
			fp.WriteAuthorizeError(ctx, w, ar, err)
			return
		}
		fp.WriteAuthorizeResponse(ctx, w, ar, resp)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		req, err := fp.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
		if err != nil {
			fp.WriteAccessError(ctx, w, req, err)
			return
		}
		resp, err := fp.NewAccessResponse(ctx, req)
		if err != nil {
			fp.WriteAccessError(ctx, w, req, err)
			return
		}
		fp.WriteAccessResponse(ctx, w, req, resp)
	})
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		err := fp.NewRevocationRequest(r.Context(), r)
		if err == nil {
			o.revokes.Add(1)
		}
		fp.WriteRevocationResponse(r.Context(), w, err)
	})
	o.Server = httptest.NewServer(mux)
	t.Cleanup(o.Close)
	return o
}

// active reports whether the server still accepts token as use.
func (o *oauthServer) active(token string, use fosite.TokenUse) bool {
	_, _, err := o.fp.IntrospectToken(context.Background(), token, use, &fosite.DefaultSession{})
	return err == nil
}

func (o *oauthServer) provider() integration.Provider {
	return integration.Provider{Name: "acme", Kind: integration.KindOAuth2, Scopes: []string{"read"},
		AuthURL: o.URL + "/authorize", TokenURL: o.URL + "/token", RevocationURL: o.URL + "/revoke",
		ClientID: clientID, ClientSecret: clientSecret}
}

// authorize plays the browser: it follows the authorization URL and
// returns the callback query the provider redirected to.
func (o *oauthServer) authorize(t testing.TB, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.HasPrefix(loc.String(), redirectURL) {
		t.Fatalf("redirected to %q", loc)
	}
	return loc.Query()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, e audit.Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) count(action string, out audit.Outcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Action == action && e.Outcome == out {
			n++
		}
	}
	return n
}

// noSecrets fails when any audit detail holds one of the secrets.
func (r *recorder) noSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(r.events)
	for _, s := range secrets {
		if s != "" && bytes.Contains(b, []byte(s)) {
			t.Errorf("an audit event holds a credential")
		}
	}
}

type env struct {
	svc   *integration.Service
	st    *store.Store
	clock *clock
	rec   *recorder
	ws    string
	other string // another workspace
	user  integration.Actor
	keys  *vault.Keyring
}

func newEnv(t *testing.T, s *store.Store, providers ...integration.Provider) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{st: s, clock: &clock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}, rec: &recorder{}}
	for i, name := range []string{"Alpha", "Bravo"} {
		u := &identity.User{Email: strings.ToLower(name) + "@example.com", PasswordHash: "x", CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		w := &tenancy.Workspace{Name: name, CreatedAt: e.clock.Now()}
		if err := s.CreateWorkspace(ctx, w, tenancy.Member{UserID: u.ID}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.ws, e.user = w.ID, integration.Actor{Type: audit.ActorUser, ID: u.ID, SessionID: "session-1"}
		} else {
			e.other = w.ID
		}
	}
	e.keys = vault.NewKeyring(rand.Reader)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := e.keys.Add(1, key); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	svc, err := integration.New(integration.Config{Providers: providers, RedirectURL: redirectURL, RefreshBefore: 5 * time.Minute,
		RevocationRetryFor: 2 * time.Hour, BackoffMin: time.Minute, BackoffMax: 10 * time.Minute},
		integration.Deps{Store: s, Sealer: vault.KeyringSealer{Keyring: e.keys}, Audit: e.rec, Now: e.clock.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func allow(string) error { return nil }

// aboutAnHour: expires_in is whole seconds of the provider's wall clock.
func aboutAnHour(exp, now time.Time) bool {
	d := exp.Sub(now)
	return d > time.Hour-5*time.Second && d <= time.Hour
}

// connect runs the whole browser flow and returns the connection.
func (e *env) connect(t *testing.T, o *oauthServer) *integration.Connection {
	t.Helper()
	u, _, err := e.svc.BeginConnect(context.Background(), e.user, e.ws, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := url.Parse(u)
	if err != nil || q.Query().Get("code_challenge_method") != "S256" || q.Query().Get("code_challenge") == "" {
		t.Fatalf("authorization URL lacks PKCE S256: %v", err)
	}
	cb, err := integration.ParseCallback(o.authorize(t, u))
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.CompleteConnect(context.Background(), e.user, cb, allow)
	if err != nil {
		t.Fatalf("complete: %v", err)
	}
	return c
}

func wantKind(t *testing.T, err error, k fault.Kind, code string) {
	t.Helper()
	fe := fault.As(err)
	if err == nil || fe.Kind != k || (code != "" && fe.Code != code) {
		t.Fatalf("got %v, want %v %s", err, k, code)
	}
}

func TestOAuthLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o := newOAuthServer(t)
		e := newEnv(t, s, o.provider())
		c := e.connect(t, o)
		if c.Kind != integration.KindOAuth2 || !c.HasRefresh || len(c.Scopes) != 1 || c.Scopes[0] != "read" {
			t.Fatalf("connection %+v", c)
		}
		if !aboutAnHour(c.ExpiresAt, e.clock.Now()) {
			t.Errorf("expires %v, want an hour from the injected now", c.ExpiresAt)
		}

		// A fresh token, valid at the provider, handed out and audited.
		tok, err := e.svc.Token(ctx, e.user, e.ws, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Refreshed || !o.active(tok.AccessToken, fosite.AccessToken) {
			t.Fatalf("token refreshed=%v active=%v", tok.Refreshed, o.active(tok.AccessToken, fosite.AccessToken))
		}
		if e.rec.count("integrations.token", audit.Success) != 1 {
			t.Errorf("token use not audited")
		}
		// INT-1: the stored row is ciphertext bound to its row.
		sc, err := e.svc.CheckSealing(ctx, 5)
		if err != nil || sc.Sampled != 1 || sc.Opened != 1 || sc.CrossRefused != 1 {
			t.Fatalf("sealing check %+v %v", sc, err)
		}
		// Another workspace sees nothing.
		if _, err := e.svc.Token(ctx, e.user, e.other, c.ID); !fault.Is(err, fault.NotFound) {
			t.Fatalf("token across workspaces: %v", err)
		}

		// INT-4: 56 minutes later the token is inside the refresh window:
		// the next use refreshes first.
		e.clock.Add(56 * time.Minute)
		tok2, err := e.svc.Token(ctx, e.user, e.ws, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !tok2.Refreshed || tok2.AccessToken == tok.AccessToken || !o.active(tok2.AccessToken, fosite.AccessToken) {
			t.Fatalf("not refreshed before expiry: %+v", tok2.Refreshed)
		}
		if !aboutAnHour(tok2.ExpiresAt, e.clock.Now()) {
			t.Errorf("refreshed expiry %v", tok2.ExpiresAt)
		}

		// The background job refreshes what expires soon, unasked.
		e.clock.Add(56 * time.Minute)
		rep, err := e.svc.RunJobs(ctx)
		if err != nil || rep.Refreshed != 1 || rep.RefreshFailed != 0 {
			t.Fatalf("job %+v %v", rep, err)
		}
		st, err := e.svc.Stats(ctx)
		if err != nil || st.ExpiredUnrefreshed != 0 || st.Connections != 1 {
			t.Fatalf("stats %+v %v", st, err)
		}
		tok3, err := e.svc.Token(ctx, e.user, e.ws, c.ID)
		if err != nil || tok3.Refreshed {
			t.Fatalf("after job: refreshed=%v %v", tok3 != nil && tok3.Refreshed, err)
		}
		_, cr, err := s.IntegrationCredentials(ctx, e.ws, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := e.keys.Open(cr.Refresh, vault.AD{Workspace: e.ws, Table: integration.TableTokens, Column: "refresh", Row: c.ID})
		if err != nil {
			t.Fatal(err)
		}

		// INT-3: disconnect deletes at once and revokes at the provider.
		revoked, err := e.svc.Disconnect(ctx, e.user, e.ws, c.ID)
		if err != nil || revoked != integration.RevocationDone {
			t.Fatalf("disconnect revoked=%v %v", revoked, err)
		}
		if o.active(tok3.AccessToken, fosite.AccessToken) || o.active(string(rt), fosite.RefreshToken) {
			t.Errorf("tokens still active at the provider after disconnect")
		}
		if _, err := e.svc.Token(ctx, e.user, e.ws, c.ID); !fault.Is(err, fault.NotFound) {
			t.Errorf("token after disconnect: %v", err)
		}
		if st, _ := e.svc.Stats(ctx); st.PendingRevocations != 0 || st.Connections != 0 {
			t.Errorf("stats after disconnect %+v", st)
		}
		e.rec.noSecrets(t, tok.AccessToken, tok2.AccessToken, tok3.AccessToken, string(rt), clientSecret)
	})
}

func TestRevocationQueuedWhileProviderDown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o := newOAuthServer(t)
		e := newEnv(t, s, o.provider())
		c := e.connect(t, o)
		tok, err := e.svc.Token(ctx, e.user, e.ws, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		o.down.Store(true)
		revoked, err := e.svc.Disconnect(ctx, e.user, e.ws, c.ID)
		if err != nil || revoked != integration.RevocationQueued {
			t.Fatalf("disconnect with provider down: revoked=%v %v", revoked, err)
		}
		// The connection and its credentials are gone at once…
		if _, err := e.svc.Get(ctx, e.ws, c.ID); !fault.Is(err, fault.NotFound) {
			t.Fatalf("connection survived: %v", err)
		}
		if n, _ := s.SampleIntegrationTokens(ctx, 10); len(n) != 0 {
			t.Fatalf("%d token rows left", len(n))
		}
		// …and the tokens wait, sealed, in the queue.
		st, _ := e.svc.Stats(ctx)
		if st.PendingRevocations != 2 || !st.OldestRevocation.Equal(e.clock.Now()) {
			t.Fatalf("queue %+v", st)
		}
		// Not due yet: nothing is tried.
		if rep, err := e.svc.RunJobs(ctx); err != nil || rep.Retrying+rep.Revoked != 0 {
			t.Fatalf("early retry %+v %v", rep, err)
		}
		e.clock.Add(time.Minute)
		if rep, err := e.svc.RunJobs(ctx); err != nil || rep.Retrying != 2 {
			t.Fatalf("retry while down %+v %v", rep, err)
		}
		// Backoff doubled: one minute later nothing is due.
		e.clock.Add(time.Minute)
		if rep, _ := e.svc.RunJobs(ctx); rep.Retrying != 0 {
			t.Fatalf("backoff not applied %+v", rep)
		}
		o.down.Store(false)
		e.clock.Add(time.Minute)
		rep, err := e.svc.RunJobs(ctx)
		if err != nil || rep.Revoked != 2 {
			t.Fatalf("retry after recovery %+v %v", rep, err)
		}
		if o.active(tok.AccessToken, fosite.AccessToken) {
			t.Errorf("access token still active after the queued revocation")
		}
		if st, _ := e.svc.Stats(ctx); st.PendingRevocations != 0 {
			t.Errorf("queue not emptied: %+v", st)
		}
	})
}

func TestRevocationGivesUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o := newOAuthServer(t)
		e := newEnv(t, s, o.provider())
		var alerts atomic.Int32
		svc, err := integration.New(integration.Config{Providers: []integration.Provider{o.provider()}, RedirectURL: redirectURL,
			RevocationRetryFor: time.Hour, BackoffMin: time.Minute, BackoffMax: 10 * time.Minute},
			integration.Deps{Store: s, Sealer: vault.KeyringSealer{Keyring: e.keys}, Audit: e.rec, Now: e.clock.Now, Rand: rand.Reader,
				Alert: func(context.Context, audit.Event) { alerts.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		e.svc = svc
		c := e.connect(t, o)
		o.down.Store(true)
		if _, err := e.svc.Disconnect(ctx, e.user, e.ws, c.ID); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			e.clock.Add(10 * time.Minute)
			if _, err := e.svc.RunJobs(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if st, _ := e.svc.Stats(ctx); st.PendingRevocations != 0 {
			t.Fatalf("queue kept past its bound: %+v", st)
		}
		if alerts.Load() != 2 || e.rec.count("integrations.revoke", audit.Failure) != 2 {
			t.Fatalf("alerts %d, give-up events %d", alerts.Load(), e.rec.count("integrations.revoke", audit.Failure))
		}
	})
}

func TestBroadGrantRefusedAndRevoked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o := newOAuthServer(t)
		e := newEnv(t, s, o.provider())
		// Asking for more than allowed is refused before the provider.
		if _, _, err := e.svc.BeginConnect(ctx, e.user, e.ws, "acme", []string{"read", "write"}); !fault.Is(err, fault.Invalid) {
			t.Fatalf("broad request: %v", err)
		}
		// The provider grants more than asked: refused, revoked at once.
		o.extra.Store("write")
		u, _, err := e.svc.BeginConnect(ctx, e.user, e.ws, "acme", nil)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := integration.ParseCallback(o.authorize(t, u))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.CompleteConnect(ctx, e.user, cb, allow)
		wantKind(t, err, fault.Forbidden, "scope_too_broad")
		if o.revokes.Load() != 2 {
			t.Errorf("%d revocations at the provider, want 2 (refresh and access)", o.revokes.Load())
		}
		if list, _ := e.svc.List(ctx, e.ws); len(list) != 0 {
			t.Errorf("a refused grant was stored")
		}
		if e.svc.Refusals() != 2 || e.rec.count("integrations.scope_refused", audit.Denied) != 2 {
			t.Errorf("refusals %d", e.svc.Refusals())
		}
	})
}

func TestCallbackBinding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o := newOAuthServer(t)
		e := newEnv(t, s, o.provider())
		u, _, err := e.svc.BeginConnect(ctx, e.user, e.ws, "acme", nil)
		if err != nil {
			t.Fatal(err)
		}
		q := o.authorize(t, u)
		cb, _ := integration.ParseCallback(q)
		// Another session cannot complete it (and burns the state).
		thief := e.user
		thief.SessionID = "session-2"
		_, err = e.svc.CompleteConnect(ctx, thief, cb, allow)
		wantKind(t, err, fault.Forbidden, "state_session_mismatch")
		_, err = e.svc.CompleteConnect(ctx, e.user, cb, allow)
		wantKind(t, err, fault.Invalid, "state_invalid")

		// An expired flow is refused.
		u, _, _ = e.svc.BeginConnect(ctx, e.user, e.ws, "acme", nil)
		cb, _ = integration.ParseCallback(o.authorize(t, u))
		e.clock.Add(11 * time.Minute)
		_, err = e.svc.CompleteConnect(ctx, e.user, cb, allow)
		wantKind(t, err, fault.Invalid, "state_invalid")

		// Losing the permission in between is refused.
		u, _, _ = e.svc.BeginConnect(ctx, e.user, e.ws, "acme", nil)
		cb, _ = integration.ParseCallback(o.authorize(t, u))
		_, err = e.svc.CompleteConnect(ctx, e.user, cb, func(string) error { return fault.New(fault.Forbidden, "denied", "no") })
		wantKind(t, err, fault.Forbidden, "denied")

		// A wrong code (no PKCE verifier match) fails the exchange.
		u, _, _ = e.svc.BeginConnect(ctx, e.user, e.ws, "acme", nil)
		cb, _ = integration.ParseCallback(o.authorize(t, u))
		cb.Code += "x"
		_, err = e.svc.CompleteConnect(ctx, e.user, cb, allow)
		wantKind(t, err, fault.Unavailable, "exchange_failed")

		// API keys cannot start a browser flow.
		if _, _, err := e.svc.BeginConnect(ctx, integration.Actor{Type: audit.ActorAPIKey, ID: "k"}, e.ws, "acme", nil); !fault.Is(err, fault.Forbidden) {
			t.Errorf("API key began a flow: %v", err)
		}
	})
}

// keyServer answers a key check like a payment provider: the key's
// permissions by its prefix.
func keyServer(t *testing.T) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var perms []string
		switch {
		case strings.HasPrefix(key, "rk_read_"):
			perms = []string{"charges.read", "customers.read"}
		case strings.HasPrefix(key, "rk_write_"):
			perms = []string{"charges.read", "charges.write"}
		case strings.HasPrefix(key, "rk_vague_"):
			_, _ = w.Write([]byte(`{"livemode":true}`))
			return
		default:
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"permissions": perms})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAPIKeyScopeCheck(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ks := keyServer(t)
		p := integration.Provider{Name: "payments", Kind: integration.KindAPIKey, Scopes: []string{"charges.read", "customers.read"},
			KeyPrefixes: []string{"rk_"}, CheckURL: ks.URL + "/v1/key"}
		e := newEnv(t, s)
		svc, err := integration.New(integration.Config{Providers: []integration.Provider{p}},
			integration.Deps{Store: s, Sealer: vault.KeyringSealer{Keyring: e.keys}, Audit: e.rec, Now: e.clock.Now, Rand: rand.Reader,
				RootCAs: certPool(ks)})
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, key string
			kind      fault.Kind
			code      string
		}{
			{"read-only key", "rk_read_abc123", 0, ""},                                    // gitleaks:allow
			{"key that can write", "rk_write_abc123", fault.Forbidden, "scope_too_broad"}, // gitleaks:allow
			{"full secret key", "sk_live_abc123", fault.Forbidden, "scope_too_broad"},     // gitleaks:allow
			{"scope not stated", "rk_vague_abc123", fault.Forbidden, "scope_unknown"},     // gitleaks:allow
			{"rejected key", "rk_bogus_abc123", fault.Invalid, "api_key_invalid"},         // gitleaks:allow
			{"control characters", "rk_read_\x00", fault.Invalid, "api_key_invalid"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c, err := svc.ConnectAPIKey(ctx, e.user, e.ws, "payments", tc.key)
				if tc.code != "" {
					wantKind(t, err, tc.kind, tc.code)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				tok, err := svc.Token(ctx, e.user, e.ws, c.ID)
				if err != nil || tok.AccessToken != tc.key || tok.TokenType != "api_key" {
					t.Fatalf("token %v", err)
				}
				if revoked, err := svc.Disconnect(ctx, e.user, e.ws, c.ID); err != nil || revoked != integration.RevocationNotApplicable {
					t.Fatalf("disconnect %v %v", revoked, err)
				}
			})
		}
		if svc.Refusals() != 3 {
			t.Errorf("refusals %d, want 3", svc.Refusals())
		}
		e.rec.noSecrets(t, "rk_read_abc123", "rk_write_abc123", "sk_live_abc123")
	})
}

func certPool(s *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

func TestProviderValidation(t *testing.T) {
	e := &env{clock: &clock{t: time.Now()}, rec: &recorder{}}
	keys := vault.NewKeyring(rand.Reader)
	deps := integration.Deps{Store: nilStore{}, Sealer: vault.KeyringSealer{Keyring: keys}, Audit: e.rec, Rand: rand.Reader}
	good := integration.Provider{Name: "x", Kind: integration.KindOAuth2, Scopes: []string{"a"}, ClientID: "c",
		AuthURL: "https://idp.example.com/auth", TokenURL: "https://idp.example.com/token"}
	cases := []struct {
		name string
		mut  func(p *integration.Provider)
		ok   bool
	}{
		{"https", func(*integration.Provider) {}, true},
		{"plaintext remote refused (TLS-3)", func(p *integration.Provider) { p.TokenURL = "http://idp.example.com/token" }, false},
		{"plaintext remote allowed explicitly", func(p *integration.Provider) {
			p.TokenURL = "http://idp.example.com/token"
			p.AllowInsecureHTTP = true
		}, true},
		{"plaintext loopback", func(p *integration.Provider) { p.RevocationURL = "http://127.0.0.1:9/revoke" }, true},
		{"no scopes (INT-2)", func(p *integration.Provider) { p.Scopes = nil }, false},
		{"relative URL", func(p *integration.Provider) { p.AuthURL = "/auth" }, false},
		{"credentials in URL", func(p *integration.Provider) { p.AuthURL = "https://u:p@idp.example.com/auth" }, false},
		{"api key without check", func(p *integration.Provider) { p.Kind = integration.KindAPIKey }, false},
		{"api key with prefixes", func(p *integration.Provider) { p.Kind, p.KeyPrefixes = integration.KindAPIKey, []string{"rk_"} }, true},
		{"unknown kind", func(p *integration.Provider) { p.Kind = "saml" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			tc.mut(&p)
			_, err := integration.New(integration.Config{Providers: []integration.Provider{p}}, deps)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// nilStore satisfies the interface for validation-only tests.
type nilStore struct{ integration.Store }

func FuzzParseCallback(f *testing.F) {
	for _, s := range []string{"state=abc&code=xyz", "state=abc&error=access_denied", "code=x", "state=a&state=b&code=c",
		"state=%00&code=x", "state=a&code=b&error=c", "", "state=" + strings.Repeat("a", 3000) + "&code=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		cb, err := integration.ParseCallback(q)
		if err != nil {
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("non-Invalid error %v", err)
			}
			return
		}
		if cb.State == "" || (cb.Code == "") == (cb.Error == "") || len(cb.State) > 2048 || len(cb.Code) > 2048 {
			t.Fatalf("accepted %+v", cb)
		}
		for _, v := range []string{cb.State, cb.Code, cb.Error} {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					t.Fatalf("accepted a control byte")
				}
			}
		}
	})
}
