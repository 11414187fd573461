// Package oauth is Rampart's OAuth 2.0 / OpenID Connect domain: registered
// clients and their hashed secrets, refresh-token families with rotation,
// reuse detection and a grace window (SES-3), and remembered consent. The
// protocol itself is fosite's, adapted in package oauth/provider; this
// package knows nothing of HTTP or SQL.
package oauth

import (
	"context"
	"time"
)

// Grant types a client may be registered for.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Client is a registered OAuth client. SecretHash is the SHA-256 of the
// secret (256 random bits, so a fast hash is enough and keeps client
// credentials at thousands of grants per second); public clients have none.
type Client struct {
	ID                     string
	Workspace              string // "" for operator-level clients
	Name                   string
	SecretHash             []byte
	Public                 bool
	FirstParty             bool // skips the consent screen
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Scopes                 []string
	Audience               []string
	Permissions            []string // service clients: a subset of the workspace's permissions
	CreatedBy              string
	CreatedAt              time.Time
}

// Has reports whether the client may use grant type g.
func (c *Client) Has(g string) bool {
	for _, v := range c.GrantTypes {
		if v == g {
			return true
		}
	}
	return false
}

// StoredRequest is an authorization request kept between the authorize
// and token endpoints (an authorization code, its PKCE challenge or its
// OpenID Connect request), as opaque JSON the provider owns.
type StoredRequest struct {
	Kind      string
	Signature string // SHA-256 of the code, hex
	RequestID string
	ClientID  string
	Data      []byte
	Active    bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

// RefreshToken is one member of a refresh-token family. Only the SHA-256
// of the token is stored (Signature); Successor is the next token sealed
// with the vault, kept so that a concurrent use inside the grace window can
// be answered with the same successor.
type RefreshToken struct {
	Signature string
	FamilyID  string
	ClientID  string
	Subject   string
	SessionID string
	Data      []byte // the grant (scopes, session claims) as the provider stores it
	CreatedAt time.Time
	ExpiresAt time.Time
	RotatedAt time.Time // zero while current
	Successor []byte    // sealed; nil while current
	RevokedAt time.Time // zero unless the family was revoked
}

// Consent is a remembered grant of scopes by an account to a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
	ExpiresAt time.Time
}

// Stats describe the provider's state for the live checks.
type Stats struct {
	Clients        int
	ActiveFamilies int
	RevokedTokens  int
}

// Store is the storage the provider needs. Not-found is an error of kind
// fault.NotFound; a duplicate id is fault.Conflict.
type Store interface {
	CreateOAuthClient(ctx context.Context, c *Client) error
	// OAuthClient finds a client by id in any workspace (the token endpoint
	// knows only the id).
	OAuthClient(ctx context.Context, id string) (*Client, error)
	// ListOAuthClients lists a workspace's clients, or the operator-level
	// ones when workspace is "", or all when all is set.
	ListOAuthClients(ctx context.Context, workspace string, all bool) ([]Client, error)
	// DeleteOAuthClient deletes a client of the workspace ("" = operator
	// level, which may delete any) with its consents and refresh tokens.
	DeleteOAuthClient(ctx context.Context, workspace, id string) error

	PutOAuthRequest(ctx context.Context, r *StoredRequest) error
	OAuthRequest(ctx context.Context, kind, signature string) (*StoredRequest, error)
	// DeactivateOAuthRequest marks a request spent; false if it already was.
	DeactivateOAuthRequest(ctx context.Context, kind, signature string) (bool, error)
	DeleteOAuthRequest(ctx context.Context, kind, signature string) error

	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	RefreshTokenBySignature(ctx context.Context, signature string) (*RefreshToken, error)
	// RotateRefreshToken marks old rotated (with its sealed successor) and
	// inserts next, atomically, only if old is still current and its family
	// not revoked; false when another request rotated it first.
	RotateRefreshToken(ctx context.Context, oldSignature string, sealedSuccessor []byte, next *RefreshToken, now time.Time) (bool, error)
	// RevokeRefreshFamily revokes every token of the family and returns how
	// many were still live.
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error)

	OAuthConsent(ctx context.Context, userID, clientID string) (*Consent, error)
	SaveOAuthConsent(ctx context.Context, c *Consent) error

	// RevokeOAuthKey records a revoked access-token id or grant id until
	// the tokens it covers expire.
	RevokeOAuthKey(ctx context.Context, key string, until time.Time) error
	OAuthKeyRevoked(ctx context.Context, key string, now time.Time) (bool, error)

	// PurgeOAuth deletes expired requests, tokens and revocations.
	PurgeOAuth(ctx context.Context, now time.Time) (int, error)
	OAuthStats(ctx context.Context, now time.Time) (Stats, error)
}
