package web

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// AccessTokenType is the JWS typ of Rampart's access tokens (RFC 9068).
const AccessTokenType = "at+jwt"

// APIScope is the scope an access token needs for Rampart's own API to
// accept it as its user: "openid profile" alone lets a client learn who the
// user is, not act as them.
const APIScope = "rampart:api"

// tokenLeeway is the clock skew tolerated on exp, iat and nbf.
const tokenLeeway = 30 * time.Second

// clientCacheTTL bounds how long a client's "still exists" answer is
// reused: a deleted client's tokens die within it.
const clientCacheTTL = 5 * time.Second

// maxAccessTokenTTL is SES-2's cap on an access token's lifetime.
const maxAccessTokenTTL = 15 * time.Minute

// TokenVerifier checks signed tokens and publishes their keys;
// *signing.Manager implements it.
type TokenVerifier interface {
	Verify(token, typ string, claims any) error
	JWKS() []byte
}

// TokenDeps are the web layer's dependencies for signed tokens (JWKS,
// bearer access tokens). A nil Verifier turns both off.
type TokenDeps struct {
	Verifier TokenVerifier
	// Issuer is the iss every accepted token carries and the audience
	// Rampart's API requires (config public_url).
	Issuer string
	// MaxAccessTTL caps exp − iat of an accepted token (≤ 15 min; 0 = 15 min).
	MaxAccessTTL time.Duration
	// JWKSMaxAge is the JWKS Cache-Control max-age; it must stay below
	// the signing keys' publish-ahead time so caches see a key before it
	// signs.
	JWKSMaxAge time.Duration
	// SessionLive reports whether the user's session is still valid (not
	// revoked, complete, within its timeouts) and returns it. nil = look
	// it up through the identity service's session list.
	SessionLive func(ctx context.Context, userID, sessionID string) (*identity.Session, error)
	// ClientActive reports whether the OAuth client still exists and is
	// enabled (the OAuth provider provides it); nil = accept.
	ClientActive func(ctx context.Context, clientID string) (bool, error)
	// TokenRevoked reports whether the token (by jti) or its grant (the
	// refresh family it came from) was revoked (RFC 7009, refresh reuse);
	// the OAuth provider provides it; nil = no revocation list.
	TokenRevoked func(ctx context.Context, jti, grant string) (bool, error)
}

// tokenWeb is this feature's part of the server.
type tokenWeb struct {
	tok     TokenDeps
	checker *TokenChecker
}

func newTokenWeb(d TokenDeps, now func() time.Time) tokenWeb {
	d = d.withDefaults()
	return tokenWeb{tok: d, checker: NewTokenChecker(d, now)}
}

func (d TokenDeps) withDefaults() TokenDeps {
	if d.MaxAccessTTL <= 0 || d.MaxAccessTTL > maxAccessTokenTTL {
		d.MaxAccessTTL = maxAccessTokenTTL
	}
	if d.JWKSMaxAge <= 0 {
		d.JWKSMaxAge = 5 * time.Minute
	}
	return d
}

// AccessToken is what a verified access token says, for the callers that
// act on it: Rampart's API and the gateway's edge (APP-7).
type AccessToken struct {
	Subject   string // the user, or the client for client credentials
	SessionID string // empty for a client-credentials token
	ClientID  string
	Workspace string // a service client's workspace
	Scope     string
	// Permissions, when not nil, narrow what the token may do to this
	// list (service clients, and user tokens narrowed at issue).
	Permissions []string
	AMR         []string
}

// MFA reports whether the token's sign-in used a second factor.
func (t *AccessToken) MFA() bool {
	return slices.Contains(t.AMR, "mfa")
}

// TokenChecker verifies access tokens with the rules of SES-2: signature,
// typ, issuer, audience, lifetime, revocation (token or grant), client,
// and for user tokens a session that still lives. One checker serves the
// API and the edge, so a token refused by one is refused by the other.
type TokenChecker struct {
	tok     TokenDeps
	clients *clientCache
	now     func() time.Time
}

// NewTokenChecker returns a checker; d.Verifier nil means no token is
// ever accepted, and d.SessionLive nil refuses every user token (fail
// closed: a session that cannot be looked up is not live).
func NewTokenChecker(d TokenDeps, now func() time.Time) *TokenChecker {
	return &TokenChecker{tok: d.withDefaults(), clients: &clientCache{m: map[string]clientEntry{}}, now: now}
}

// Accepts reports whether a bearer credential has the shape of an access
// token and tokens are on: the cheap test that routes a bearer to Check.
func (c *TokenChecker) Accepts(cred string) bool {
	return c != nil && c.tok.Verifier != nil && len(cred) <= maxTokenBearerLen && looksLikeJWS(cred)
}

// Check verifies cred. A token that is not valid, expired, revoked, of a
// disabled client or of a gone session gives errTokenInvalid
// (Unauthenticated); a lookup that fails gives Unavailable.
func (c *TokenChecker) Check(ctx context.Context, cred string) (*AccessToken, error) {
	if c == nil || c.tok.Verifier == nil {
		return nil, errTokenInvalid
	}
	var cl accessClaims
	if err := c.tok.Verifier.Verify(cred, AccessTokenType, &cl); err != nil {
		return nil, errTokenInvalid
	}
	if !claimsValid(&cl, c.tok, c.now()) {
		return nil, errTokenInvalid
	}
	if c.tok.TokenRevoked != nil {
		revoked, err := c.tok.TokenRevoked(ctx, cl.Jti, cl.Grant)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, "unavailable", "cannot check the token's revocation", err)
		}
		if revoked {
			return nil, errTokenInvalid
		}
	}
	if c.tok.ClientActive != nil {
		ok, err := c.clients.active(ctx, cl.ClientID, c.now(), c.tok.ClientActive)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, "unavailable", "cannot check the token's client", err)
		}
		if !ok {
			return nil, errTokenInvalid
		}
	}
	if cl.Sid != "" {
		if c.tok.SessionLive == nil {
			return nil, errTokenInvalid
		}
		sess, err := c.tok.SessionLive(ctx, cl.Sub, cl.Sid)
		if err == nil && sess == nil {
			err = fault.ErrNotFound
		}
		if err != nil {
			if fault.Is(err, fault.NotFound) || fault.Is(err, fault.Unauthenticated) {
				return nil, errTokenInvalid
			}
			return nil, err
		}
	}
	return &AccessToken{Subject: cl.Sub, SessionID: cl.Sid, ClientID: cl.ClientID, Workspace: cl.Workspace,
		Scope: cl.Scope, Permissions: cl.Permissions, AMR: cl.Amr}, nil
}

func (s *server) tokenRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
}

// jwks serves the public signing keys (RFC 7517). Caches may keep it for
// JWKSMaxAge, which is shorter than the time a new key is published before
// it signs.
func (s *server) jwks(w http.ResponseWriter, r *http.Request) {
	if s.tok.Verifier == nil {
		s.writeError(w, r, fault.ErrNotFound)
		return
	}
	doc := s.tok.Verifier.JWKS()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.tok.JWKSMaxAge.Seconds())))
	w.Header().Set("Access-Control-Allow-Origin", "*") // public keys, read by browser-side verifiers too
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
}

// accessClaims are the claims of an access token as agreed with the OAuth
// provider (docs/SIGNING.md).
type accessClaims struct {
	Iss         string   `json:"iss"`
	Sub         string   `json:"sub"`
	Aud         audience `json:"aud"`
	Exp         int64    `json:"exp"`
	Iat         int64    `json:"iat"`
	Nbf         int64    `json:"nbf"`
	Jti         string   `json:"jti"`
	ClientID    string   `json:"client_id"`
	Scope       string   `json:"scope"`
	Workspace   string   `json:"workspace"`
	Permissions []string `json:"permissions"`
	Sid         string   `json:"sid"`
	Amr         []string `json:"amr"`
	Grant       string   `json:"grant"`
}

// audience is a JWT aud: one string or an array (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

var (
	errTokenInvalid = fault.New(fault.Unauthenticated, "invalid_token", "the access token is invalid, expired or revoked")
	errTokenScope   = fault.New(fault.Forbidden, "insufficient_scope", "the access token does not grant access to this API (scope "+APIScope+")")
	// Until tenancy can hold a principal limited to a client's permission
	// subset, client-credentials tokens are refused by Rampart's own API
	// rather than given more than they carry (fail closed).
	errClientToken = fault.New(fault.Forbidden, "client_token_unsupported", "Rampart's API does not accept client-credentials tokens yet")
)

// looksLikeJWS is the cheap shape test that routes a bearer to the token
// path: three base64url segments.
func looksLikeJWS(cred string) bool {
	if strings.Count(cred, ".") != 2 {
		return false
	}
	for i := 0; i < len(cred); i++ {
		c := cred[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// tokenPrincipal authenticates a bearer access token for Rampart's own
// API: the checker's rules, then the API's own (scope rampart:api, user
// tokens only, not narrowed).
func (s *server) tokenPrincipal(w http.ResponseWriter, r *http.Request, cred string) (tenancy.Principal, error) {
	refuse := func(err error) (tenancy.Principal, error) {
		if fault.Is(err, fault.Unauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		} else if fault.Is(err, fault.Forbidden) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+APIScope+`"`)
		}
		return tenancy.Principal{}, err
	}
	ctx := r.Context()
	t, err := s.checker.Check(ctx, cred)
	if err != nil {
		if fault.Is(err, fault.Unauthenticated) {
			return refuse(err)
		}
		return tenancy.Principal{}, err
	}
	if t.SessionID == "" {
		noteActor(ctx, audit.ActorService, t.ClientID)
		return refuse(errClientToken)
	}
	if !hasScope(t.Scope, APIScope) || t.Permissions != nil {
		// A user token narrowed to a permission list cannot be honoured
		// until tenancy can limit a principal: refused, not widened.
		return refuse(errTokenScope)
	}
	noteActor(ctx, audit.ActorUser, t.Subject)
	// A token never counts as an MFA session on Rampart's own API, even
	// when its amr lists a second factor: tenancy cannot yet tell a
	// token principal from a session, and an MFA principal reaches
	// admin-only permissions and operator access (AC-6, AC-7), which a
	// delegated token must not. MFAAt stays zero too (no step-up).
	return tenancy.Principal{UserID: t.Subject, SessionID: t.SessionID, IP: clientIP(r)}, nil
}

// claimsValid checks issuer, audience and lifetime.
func claimsValid(c *accessClaims, tok TokenDeps, at time.Time) bool {
	if c.Iss == "" || c.Iss != tok.Issuer || c.Sub == "" || c.ClientID == "" || c.Exp == 0 || c.Iat == 0 {
		return false
	}
	found := false
	for _, a := range c.Aud {
		if a == tok.Issuer {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	now := at.Unix()
	leeway := int64(tokenLeeway / time.Second)
	switch {
	case now >= c.Exp+leeway, // expired
		c.Iat > now+leeway,                                // issued in the future
		c.Nbf != 0 && c.Nbf > now+leeway,                  // not yet valid
		c.Exp-c.Iat > int64(tok.MaxAccessTTL/time.Second), // longer-lived than SES-2 allows
		c.Exp <= c.Iat:
		return false
	}
	return true
}

// SessionFromList is the default SessionLive: the user's session list from
// the identity service, the session found by id when it is complete and
// not expired. A revoked session is deleted, so its tokens stop at once.
func SessionFromList(id *identity.Service, now func() time.Time) func(context.Context, string, string) (*identity.Session, error) {
	return func(ctx context.Context, userID, sid string) (*identity.Session, error) {
		list, err := id.Sessions(ctx, userID)
		if err != nil {
			return nil, err
		}
		t := now()
		for i := range list {
			if list[i].ID == sid && !list[i].Pending && t.Before(list[i].ExpiresAt) {
				return &list[i], nil
			}
		}
		return nil, fault.ErrNotFound
	}
}

// hasScope reports whether the space-separated scope list holds want.
func hasScope(scope, want string) bool {
	for len(scope) > 0 {
		var tok string
		tok, scope, _ = strings.Cut(scope, " ")
		if tok == want {
			return true
		}
	}
	return false
}

// clientCache remembers for a few seconds whether a client is active, so
// the provider's lookup is not paid on every request.
type clientCache struct {
	mu sync.Mutex
	m  map[string]clientEntry
}

type clientEntry struct {
	ok      bool
	fetched time.Time
}

// maxClientEntries bounds the cache; only ids from verified tokens reach it.
const maxClientEntries = 10000

func (c *clientCache) active(ctx context.Context, id string, now time.Time, lookup func(context.Context, string) (bool, error)) (bool, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < clientCacheTTL && !now.Before(e.fetched) {
		return e.ok, nil
	}
	active, err := lookup(ctx, id)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if len(c.m) >= maxClientEntries {
		clear(c.m)
	}
	c.m[id] = clientEntry{ok: active, fetched: now}
	c.mu.Unlock()
	return active, nil
}

// bearerIsToken reports whether a bearer credential should be judged as an
// access token (and the token path is on).
func (s *server) bearerIsToken(cred string) bool {
	return s.checker.Accepts(cred)
}

// maxTokenBearerLen bounds an access token before any work is done on it.
const maxTokenBearerLen = 8 << 10
