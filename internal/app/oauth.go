package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/trust"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/oauth/provider"
	"github.com/rampartsec/rampart/internal/oauth/signing"
	"github.com/rampartsec/rampart/internal/web"
)

// oauthParts is the OAuth 2.0 / OIDC provider's share of the App.
type oauthParts struct {
	// OAuth is the domain: clients, refresh families, consent.
	OAuth *oauth.Service
	// OAuthProvider serves the protocol endpoints (fosite).
	OAuthProvider *provider.Provider
	// oauthSigner signs access and ID tokens.
	oauthSigner *signing.Manager
}

// oauthPurgeEvery is how often expired codes, refresh tokens and
// revocations are deleted.
const oauthPurgeEvery = 10 * time.Minute

// buildOAuth runs after buildSigning: tokens are signed by the signing
// keys' manager.
func (a *App) buildOAuth(ctx context.Context) error {
	cfg := a.Config.OAuth
	keys, err := a.oauthKeys(ctx)
	if err != nil {
		return err
	}
	a.oauthSigner = keys
	a.OAuth = oauth.New(oauth.Config{RefreshTTL: cfg.RefreshTokenTTL, RefreshGrace: cfg.RefreshGrace, ConsentTTL: cfg.ConsentTTL,
		FirstPartyClients: cfg.FirstPartyClients}, oauth.Deps{
		Store: a.Store, Sealer: a.Sealer, Audit: a.Audit, Log: a.Log, Now: a.now, Rand: a.rand,
		RevokeSession: a.Identity.RevokeSession, SessionAlive: a.sessionAlive,
	})
	a.OAuthProvider, err = provider.New(provider.Config{Issuer: a.Config.PublicURL, AccessTokenTTL: cfg.AccessTokenTTL, IDTokenTTL: cfg.IDTokenTTL,
		AuthCodeTTL: cfg.AuthCodeTTL, RefreshTTL: cfg.RefreshTokenTTL, Algorithm: string(keys.Config().Algorithm)}, provider.Deps{
		Service: a.OAuth, Keys: keys, Audit: a.Audit, Log: a.Log, Now: a.now, Rand: a.rand,
		Account: func(ctx context.Context, id string) (provider.Account, error) {
			u, err := a.Identity.User(ctx, id)
			if err != nil {
				return provider.Account{}, err
			}
			return provider.Account{Email: u.Email, EmailVerified: !u.EmailVerifiedAt.IsZero()}, nil
		},
		SessionAlive: a.sessionAlive,
	})
	if err != nil {
		return err
	}
	a.jobs = append(a.jobs, a.purgeOAuth)
	return nil
}

// oauthKeys returns the signing keys' manager (buildSigning ran first).
func (a *App) oauthKeys(context.Context) (*signing.Manager, error) {
	if a.Signing == nil {
		return nil, fmt.Errorf("signing keys are not set up")
	}
	return a.Signing, nil
}

// sessionAlive reports whether the Rampart session id of userID still
// exists and has not expired: tokens and refreshes of an ended session
// stop working.
func (a *App) sessionAlive(ctx context.Context, userID, sessionID string) (bool, error) {
	list, err := a.Identity.Sessions(ctx, userID)
	if fault.Is(err, fault.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := a.now()
	for _, s := range list {
		if s.ID == sessionID {
			return !s.Pending && now.Before(s.ExpiresAt), nil
		}
	}
	return false, nil
}

func (a *App) purgeOAuth(ctx context.Context) {
	t := time.NewTicker(oauthPurgeEvery)
	defer t.Stop()
	for {
		if n, err := a.OAuth.Purge(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("oauth purge failed", "err", err)
		} else if n > 0 {
			a.Log.Info("expired oauth state purged", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) oauthWebDeps() web.OAuthDeps {
	return web.OAuthDeps{OAuth: a.OAuth, OAuthProvider: a.OAuthProvider}
}

// OAuthJWKS is the key set tokens verify against.
func (a *App) OAuthJWKS() []byte { return a.oauthSigner.JWKS() }

// oauthChecks are the live checks of SES-3 and SES-4.
func (a *App) oauthChecks() map[string]trust.Check {
	if a.OAuth == nil || a.OAuthProvider == nil {
		return nil
	}
	return map[string]trust.Check{"SES-3": a.checkRefreshFamilies, "SES-4": a.checkOAuthProvider}
}

// SES-3: a real rotation, a use inside the grace window and a reuse after
// it, in a throwaway family on the live store; the reuse must revoke the
// family. The probe runs with a clock moved past the grace window.
func (a *App) checkRefreshFamilies(ctx context.Context) trust.Result {
	cfg := a.Config.OAuth
	offset := time.Duration(0)
	probe := oauth.New(oauth.Config{RefreshTTL: 5 * time.Minute, RefreshGrace: cfg.RefreshGrace},
		oauth.Deps{Store: a.Store, Sealer: a.Sealer, Log: a.Log, Rand: a.rand, Now: func() time.Time { return a.now().Add(offset) }})
	first, err := probe.RandomToken(oauth.RefreshTokenPrefix)
	if err != nil {
		return failing("could not create a probe token")
	}
	family := "probe-" + oauth.Signature(first)[:16]
	if err := probe.StartFamily(ctx, oauth.Signature(first), family, "rampart-probe", "", "", []byte(`{}`)); err != nil {
		return failing("could not store a probe refresh token: %v", fault.KindOf(err))
	}
	r1, err := probe.Refresh(ctx, first, "rampart-probe")
	if err != nil || r1.Token == first {
		return failing("a probe refresh did not rotate the token")
	}
	again, err := probe.Refresh(ctx, first, "rampart-probe")
	if err != nil || again.Token != r1.Token {
		return failing("a use inside the %s grace window did not return the same successor", cfg.RefreshGrace)
	}
	offset = cfg.RefreshGrace + time.Second
	if _, err := probe.Refresh(ctx, first, "rampart-probe"); err != oauth.ErrRefreshReused {
		return failing("reusing a rotated refresh token after the grace window was not detected")
	}
	if _, err := probe.Refresh(ctx, r1.Token, "rampart-probe"); err != oauth.ErrInvalidGrant {
		return failing("the family's current token still worked after a reuse")
	}
	st, err := a.OAuth.Stats(ctx)
	if err != nil {
		return failing("could not count refresh-token families")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("probe at %s: a refresh rotated the token, a second use within the %s grace window got the same successor, a reuse after it revoked the whole family (its current token was refused); %d live refresh-token families, refresh tokens live at most %s",
			a.now().UTC().Format(time.RFC3339), cfg.RefreshGrace, st.ActiveFamilies, cfg.RefreshTokenTTL),
		Data: map[string]any{"grace_seconds": cfg.RefreshGrace.Seconds(), "live_families": st.ActiveFamilies, "family_revoked_on_reuse": true}}
}

// SES-4: the discovery document as the handler serves it, and a real
// client-credentials grant for a throwaway probe client through the
// handler, whose token must expire within 15 minutes.
func (a *App) checkOAuthProvider(ctx context.Context) trust.Result {
	var disc struct {
		Grants     []string `json:"grant_types_supported"`
		PKCE       []string `json:"code_challenge_methods_supported"`
		Revoke     string   `json:"revocation_endpoint"`
		Introspect string   `json:"introspection_endpoint"`
	}
	rec := serveInProcess(ctx, a.Handler, http.MethodGet, provider.PathDiscovery, nil, nil)
	if rec.status != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &disc) != nil {
		return failing("the discovery document could not be fetched (status %d)", rec.status)
	}
	if !slices.Equal(disc.PKCE, []string{"S256"}) || disc.Revoke == "" || disc.Introspect == "" ||
		!slices.Contains(disc.Grants, oauth.GrantAuthorizationCode) || !slices.Contains(disc.Grants, oauth.GrantClientCredentials) {
		return failing("discovery lists PKCE %v, grants %v, revocation %q, introspection %q", disc.PKCE, disc.Grants, disc.Revoke, disc.Introspect)
	}
	actor := oauth.Actor{Type: audit.ActorSystem, ID: "rampart-controls"}
	c, secret, err := a.OAuth.CreateClient(ctx, actor, "", oauth.ClientSpec{Name: "rampart SES-4 probe", GrantTypes: []string{oauth.GrantClientCredentials}})
	if err != nil {
		return failing("could not register a probe client: %v", fault.KindOf(err))
	}
	defer func() { _ = a.OAuth.DeleteClient(context.WithoutCancel(ctx), actor, "", c.ID) }()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ID)+":"+url.QueryEscape(secret))))
	tr := serveInProcess(ctx, a.Handler, http.MethodPost, provider.PathToken, h, []byte("grant_type=client_credentials"))
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if tr.status != http.StatusOK || json.Unmarshal(tr.body.Bytes(), &tok) != nil || tok.AccessToken == "" {
		return failing("a client-credentials grant for a probe client failed (status %d)", tr.status)
	}
	var claims provider.AccessClaims
	if err := a.oauthSigner.Verify(tok.AccessToken, provider.TypAccessToken, &claims); err != nil {
		return failing("the probe access token does not verify against the signing keys")
	}
	life := time.Duration(claims.ExpiresAt-claims.IssuedAt) * time.Second
	if life <= 0 || life > config.MaxAccessTokenTTL {
		return failing("the probe access token lives %s (more than %s)", life, config.MaxAccessTokenTTL)
	}
	st, err := a.OAuth.Stats(ctx)
	if err != nil {
		return failing("could not count clients")
	}
	return trust.Result{Status: trust.Passing,
		Evidence: fmt.Sprintf("discovery lists PKCE %v only, grants %v, revocation and introspection endpoints; a client-credentials grant for a probe client succeeded and its token expires after %s (limit %s); %d registered clients",
			disc.PKCE, disc.Grants, life, config.MaxAccessTokenTTL, st.Clients-1),
		Data: map[string]any{"pkce_methods": disc.PKCE, "grant_types": disc.Grants, "probe_token_lifetime_seconds": life.Seconds(), "clients": st.Clients - 1}}
}

// inProcessResponse captures a handler's answer without a network.
type inProcessResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *inProcessResponse) Header() http.Header { return r.header }
func (r *inProcessResponse) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *inProcessResponse) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// serveInProcess sends one request through h as if from loopback.
func serveInProcess(ctx context.Context, h http.Handler, method, path string, header http.Header, body []byte) *inProcessResponse {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	rec := &inProcessResponse{header: http.Header{}}
	if err != nil {
		rec.status = http.StatusInternalServerError
		return rec
	}
	req.RemoteAddr = "127.0.0.1:1"
	req.Host = "localhost"
	for k, v := range header {
		req.Header[k] = v
	}
	h.ServeHTTP(rec, req)
	return rec
}

// RotateOAuthKeys rotates the token signing keys at once; tokens signed
// before keep verifying (the old key stays published).
func (a *App) RotateOAuthKeys(ctx context.Context) (signing.KeyInfo, error) {
	return a.oauthSigner.Rotate(ctx, true)
}
