package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
)

// User is the signed-in person the web layer hands to Authorize.
type User struct {
	ID        string
	SessionID string
	MFA       bool
	AuthTime  time.Time
}

// ConsentPrompt asks the web layer to show the consent page; Request is
// the authorization request's query, posted back with the decision.
type ConsentPrompt struct {
	ClientID   string
	ClientName string
	Scopes     []string
	Request    string
}

// Consent decisions posted from the consent page.
const (
	DecisionNone  = ""
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

var (
	errRedirectMismatch = fault.New(fault.Invalid, "redirect_uri_mismatch",
		"the redirect_uri is not registered for this client (exact match required)")
	errAuthorizeRequest = fault.New(fault.Invalid, "invalid_authorization_request", "the authorization request is invalid")
)

// registered reports whether the request's redirect_uri is exactly one the
// client registered. fosite also accepts other ports on loopback hosts
// (RFC 8252); Rampart matches exactly, and never redirects to a URI that
// does not match.
func registered(ar fosite.AuthorizeRequester) bool {
	c, ok := ar.GetClient().(*client)
	if !ok {
		return false
	}
	ru := ar.GetRequestForm().Get("redirect_uri")
	if ru == "" {
		return len(c.c.RedirectURIs) == 1
	}
	return slices.Contains(c.c.RedirectURIs, ru)
}

// Authorize runs the authorization endpoint for a signed-in person. It
// writes fosite's answer itself (a redirect with a code or an error)
// unless it returns a consent prompt for the web layer to render, or an
// error to show as a page (the redirect URI cannot be trusted).
func (p *Provider) Authorize(w http.ResponseWriter, r *http.Request, u User, decision string) (*ConsentPrompt, error) {
	ctx := r.Context()
	ar, err := p.f.NewAuthorizeRequest(ctx, r)
	clientID := r.URL.Query().Get("client_id")
	if err != nil {
		p.refuse(ctx, "oauth.authorize", audit.ActorUser, u.ID, clientID, err)
		if ar == nil || ar.GetClient() == nil || !ar.IsRedirectURIValid() || !registered(ar) {
			return nil, errAuthorizeRequest
		}
		p.f.WriteAuthorizeError(ctx, w, ar, err)
		return nil, nil
	}
	if !registered(ar) {
		p.refuse(ctx, "oauth.authorize", audit.ActorUser, u.ID, clientID, errRedirectMismatch)
		return nil, errRedirectMismatch
	}
	cl := ar.GetClient().(*client).c
	scopes := ar.GetRequestedScopes()
	if !p.svc.IsFirstParty(cl) {
		switch decision {
		case DecisionDeny:
			p.refuse(ctx, "oauth.authorize", audit.ActorUser, u.ID, cl.ID, errors.New("consent denied"))
			p.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
			return nil, nil
		case DecisionAllow:
			if err := p.svc.RememberConsent(ctx, u.ID, cl.ID, scopes); err != nil {
				return nil, err
			}
		default:
			ok, err := p.svc.ConsentCovers(ctx, u.ID, cl.ID, scopes)
			if err != nil {
				return nil, err
			}
			if !ok {
				return &ConsentPrompt{ClientID: cl.ID, ClientName: cl.Name, Scopes: scopes, Request: r.URL.RawQuery}, nil
			}
		}
	}
	for _, sc := range scopes {
		ar.GrantScope(sc)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	amr := []string{"pwd"}
	if u.MFA {
		amr = append(amr, "otp")
	}
	now := p.now().UTC()
	sess := &Session{Subject: u.ID, SessionID: u.SessionID, AMR: amr, AuthTime: u.AuthTime.UTC().Truncate(time.Second), RequestedAt: now.Truncate(time.Second)}
	if sess.AuthTime.IsZero() || sess.AuthTime.After(now) {
		sess.AuthTime = now.Truncate(time.Second)
	}
	// fosite judges auth_time against the wall clock; an injected clock
	// ahead of it (tests) must not make the sign-in look future.
	if wall := time.Now().UTC().Truncate(time.Second); sess.AuthTime.After(wall) {
		sess.AuthTime, sess.RequestedAt = wall, wall
	}
	if p.d.Account != nil && scopes.Has("email") {
		acc, err := p.d.Account(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		sess.Email, sess.EmailVerified = acc.Email, acc.EmailVerified
	}
	resp, err := p.f.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.refuse(ctx, "oauth.authorize", audit.ActorUser, u.ID, cl.ID, err)
		p.f.WriteAuthorizeError(ctx, w, ar, err)
		return nil, nil
	}
	if err := p.record(ctx, audit.Event{ActorType: audit.ActorUser, ActorID: u.ID, Workspace: cl.Workspace, Action: "oauth.authorize",
		Target: "oauth_client:" + cl.ID, Outcome: audit.Success, Details: map[string]string{"scopes": strings.Join(scopes, " "), "session": u.SessionID}}); err != nil {
		return nil, err
	}
	p.f.WriteAuthorizeResponse(ctx, w, ar, resp)
	return nil, nil
}

// refuse audits a refused protocol request with the OAuth error code only.
func (p *Provider) refuse(ctx context.Context, action, actorType, actorID, clientID string, err error) {
	code := "invalid_request"
	if fe := fosite.ErrorToRFC6749Error(err); fe != nil && fe.ErrorField != "" {
		code = fe.ErrorField
	}
	if fe := fault.As(err); fe != nil && fe.Code != "internal" {
		code = fe.Code
	}
	if actorID == "" {
		actorType, actorID = audit.ActorAnonymous, ""
	}
	_ = p.record(ctx, audit.Event{ActorType: actorType, ActorID: truncate(actorID, 64), Action: action, Target: "oauth_client:" + truncate(clientID, 64),
		Outcome: audit.Denied, Details: map[string]string{"error": code}})
}

func truncate(v string, n int) string {
	if len(v) > n {
		return v[:n]
	}
	return v
}

// requestClientID is the client a token-endpoint request claims to be, for
// the audit trail of refusals.
func requestClientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		if v, err := url.QueryUnescape(id); err == nil {
			return v
		}
	}
	return r.PostFormValue("client_id")
}

// Token is the token endpoint: authorization_code (with PKCE),
// refresh_token (rotating) and client_credentials.
func (p *Provider) Token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := &Session{}
	ar, err := p.f.NewAccessRequest(ctx, r, sess)
	if err != nil {
		p.refuse(ctx, "oauth.token", audit.ActorService, requestClientID(r), requestClientID(r), err)
		p.f.WriteAccessError(ctx, w, ar, err)
		return
	}
	cl := ar.GetClient().(*client).c
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// A service acts as itself, inside its workspace, with the
		// permissions it was registered with.
		sess.Subject, sess.Workspace, sess.Permissions = cl.ID, cl.Workspace, cl.Permissions
		sess.SetExpiresAt(fosite.AccessToken, p.now().UTC().Add(p.cfg.AccessTokenTTL))
		for _, sc := range ar.GetRequestedScopes() {
			ar.GrantScope(sc)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
	}
	resp, err := p.f.NewAccessResponse(ctx, ar)
	if err != nil {
		p.refuse(ctx, "oauth.token", audit.ActorService, cl.ID, cl.ID, err)
		p.f.WriteAccessError(ctx, w, ar, err)
		return
	}
	s, _ := ar.GetSession().(*Session)
	details := map[string]string{"grant_type": strings.Join(ar.GetGrantTypes(), " "), "scopes": strings.Join(ar.GetGrantedScopes(), " ")}
	if s != nil && s.Subject != "" && s.Subject != cl.ID {
		details["subject"] = s.Subject
	}
	if err := p.record(ctx, audit.Event{ActorType: audit.ActorService, ActorID: cl.ID, Workspace: cl.Workspace, Action: "oauth.token",
		Target: "oauth_client:" + cl.ID, Outcome: audit.Success, Details: details}); err != nil {
		p.f.WriteAccessError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	p.f.WriteAccessResponse(ctx, w, ar, resp)
}

// Introspect is RFC 7662, for authenticated clients only (HTTP Basic with
// the client's secret; a bearer token is not enough).
func (p *Provider) Introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, _, ok := r.BasicAuth(); !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		writeOAuthError(w, fosite.ErrRequestUnauthorized.WithHint("Client authentication (HTTP Basic) is required."))
		return
	}
	resp, err := p.f.NewIntrospectionRequest(ctx, r, &Session{})
	if err != nil {
		if errors.Is(err, fosite.ErrRequestUnauthorized) {
			p.refuse(ctx, "oauth.introspect", audit.ActorService, requestClientID(r), requestClientID(r), err)
		}
		p.f.WriteIntrospectionError(ctx, w, err)
		return
	}
	p.f.WriteIntrospectionResponse(ctx, w, resp)
}

// Revoke is RFC 7009: 200 for unknown tokens, unsupported_token_type for
// a hint other than access_token or refresh_token, an error when the token
// belongs to another client.
func (p *Provider) Revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := p.f.NewRevocationRequest(ctx, r)
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		p.refuse(ctx, "oauth.revoke", audit.ActorService, requestClientID(r), requestClientID(r), err)
		writeOAuthError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// writeOAuthError writes an RFC 6749 error body without debug details.
func writeOAuthError(w http.ResponseWriter, err error) {
	fe := fosite.ErrorToRFC6749Error(err)
	st := fe.CodeField
	if st == 0 {
		st = http.StatusBadRequest
	}
	desc := fe.DescriptionField
	if fe.HintField != "" {
		desc += " " + fe.HintField
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(st)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fe.ErrorField, "error_description": desc})
}

// UserInfo is the OpenID Connect userinfo endpoint.
func (p *Provider) UserInfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok := fosite.AccessTokenFromRequest(r)
	c, err := p.parseAccess(ctx, tok)
	if err != nil {
		if !errors.Is(err, errTokenInactive) {
			p.d.Log.Error("userinfo", "err", err)
			writeOAuthError(w, fosite.ErrServerError)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, fosite.ErrRequestUnauthorized.WithHint("The access token is invalid, expired or revoked."))
		return
	}
	scopes := fosite.Arguments(strings.Fields(c.Scope))
	if !scopes.Has("openid") || c.SessionID == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`)
		writeOAuthError(w, &fosite.RFC6749Error{ErrorField: "insufficient_scope", DescriptionField: "The openid scope is required.", CodeField: http.StatusForbidden})
		return
	}
	out := map[string]any{"sub": c.Subject}
	if scopes.Has("email") && p.d.Account != nil {
		acc, err := p.d.Account(ctx, c.Subject)
		if err != nil {
			writeOAuthError(w, fosite.ErrServerError)
			return
		}
		out["email"], out["email_verified"] = acc.Email, acc.EmailVerified
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// Discovery is the OpenID Provider metadata (OpenID Connect Discovery 1.0,
// RFC 8414).
func (p *Provider) Discovery() map[string]any {
	iss := p.cfg.Issuer
	return map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + PathAuthorize,
		"token_endpoint":                                iss + PathToken,
		"userinfo_endpoint":                             iss + PathUserInfo,
		"jwks_uri":                                      iss + PathJWKS,
		"revocation_endpoint":                           iss + PathRevoke,
		"introspection_endpoint":                        iss + PathIntrospect,
		"end_session_endpoint":                          iss + PathLogout,
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantClientCredentials},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{"EdDSA", "ES256"},
		"scopes_supported":                              []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                              []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "email", "email_verified"},
		"code_challenge_methods_supported":              []string{"S256"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"request_parameter_supported":                   false,
		"claims_parameter_supported":                    false,
	}
}

// Logout validates an RP-initiated logout request (OpenID Connect
// RP-Initiated Logout 1.0): the id_token_hint must be an ID token this
// provider issued (expired is fine), and post_logout_redirect_uri must be
// registered exactly for its client. It returns where to send the browser
// ("" = Rampart's own signed-out page) and whose session may be ended.
func (p *Provider) Logout(ctx context.Context, q url.Values) (redirect, subject, sessionID string, err error) {
	hint := q.Get("id_token_hint")
	if hint == "" || len(hint) > 8<<10 {
		return "", "", "", fault.New(fault.Invalid, "id_token_hint_required", "id_token_hint is required")
	}
	var c IDClaims
	if err := p.keys.Verify(hint, TypIDToken, &c); err != nil || c.Issuer != p.cfg.Issuer || c.Subject == "" || len(c.Audience) == 0 {
		p.refuse(ctx, "oauth.logout", audit.ActorAnonymous, "", q.Get("client_id"), fault.New(fault.Invalid, "id_token_hint_invalid", ""))
		return "", "", "", fault.New(fault.Invalid, "id_token_hint_invalid", "the id_token_hint is not a valid ID token of this provider")
	}
	clientID := c.Audience[0]
	if cid := q.Get("client_id"); cid != "" && cid != clientID {
		return "", "", "", fault.New(fault.Invalid, "client_mismatch", "client_id does not match the id_token_hint")
	}
	if ru := q.Get("post_logout_redirect_uri"); ru != "" {
		cl, err := p.svc.Client(ctx, clientID)
		if err != nil {
			return "", "", "", fault.New(fault.Invalid, "client_unknown", "the client of the id_token_hint no longer exists")
		}
		if !slices.Contains(cl.PostLogoutRedirectURIs, ru) {
			p.refuse(ctx, "oauth.logout", audit.ActorUser, c.Subject, clientID, fault.New(fault.Invalid, "post_logout_redirect_uri_mismatch", ""))
			return "", "", "", fault.New(fault.Invalid, "post_logout_redirect_uri_mismatch", "post_logout_redirect_uri is not registered for this client")
		}
		u, _ := url.Parse(ru)
		if st := q.Get("state"); st != "" {
			v := u.Query()
			v.Set("state", st)
			u.RawQuery = v.Encode()
		}
		redirect = u.String()
	}
	_ = p.record(ctx, audit.Event{ActorType: audit.ActorUser, ActorID: c.Subject, Action: "oauth.logout", Target: "oauth_client:" + clientID,
		Outcome: audit.Success, Details: map[string]string{"session": c.SessionID}})
	return redirect, c.Subject, c.SessionID, nil
}
