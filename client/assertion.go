package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// AssertionHeader carries the gateway's signed identity assertion to the app.
const AssertionHeader = "Rampart-Assertion"

// AssertionType is the assertion JWT's "typ" header; tokens of any other
// type (an access token, an ID token) are refused even when signed by the
// same keys.
const AssertionType = "rampart-assertion+jwt"

// maxAssertionLifetime is the longest exp−iat Rampart issues; a token that
// claims more was not minted by the gateway.
const maxAssertionLifetime = 60 * time.Second

// Assertion is a verified identity assertion: who the gateway admitted.
type Assertion struct {
	Issuer    string      `json:"iss"`
	Audience  Audience    `json:"aud"`
	Subject   string      `json:"sub"`
	Email     string      `json:"email,omitempty"`
	Workspace string      `json:"workspace,omitempty"`
	Roles     []string    `json:"roles,omitempty"`
	SessionID string      `json:"sid,omitempty"`
	APIKeyID  string      `json:"api_key,omitempty"`
	AMR       []string    `json:"amr,omitempty"`
	IssuedAt  NumericDate `json:"iat"`
	NotBefore NumericDate `json:"nbf,omitempty"`
	ExpiresAt NumericDate `json:"exp"`
	ID        string      `json:"jti,omitempty"`
}

// Audience is the aud claim: one string or a list (RFC 7519 §4.1.3).
type Audience []string

// UnmarshalJSON accepts both forms.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = many
	return nil
}

// NumericDate is seconds since the epoch (RFC 7519 §2).
type NumericDate int64

// Time returns the date as a time.Time.
func (d NumericDate) Time() time.Time { return time.Unix(int64(d), 0) }

// ErrAssertion is wrapped by every verification failure, so callers can
// answer 401 without inspecting details.
var ErrAssertion = errors.New("rampart: invalid identity assertion")

// AssertionVerifier verifies the gateway's assertions against Rampart's
// published keys. Keys are fetched from JWKSURL and cached; a token signed
// by a key not in the cache triggers one refresh (keys rotate with
// overlap, so a new kid is normal), at most once per MinRefresh so a
// stream of forged kids cannot turn the app into a JWKS flooder. It is
// safe for concurrent use.
type AssertionVerifier struct {
	// Issuer is Rampart's public URL (the iss claim).
	Issuer string
	// Audience is this app's audience as configured on its route.
	Audience string
	// JWKSURL defaults to Issuer + "/.well-known/jwks.json".
	JWKSURL string
	// HTTP fetches the JWKS; nil means a client with a 10 s timeout.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway tolerates clock skew between Rampart and the app; zero means
	// 5 s.
	Leeway time.Duration
	// CacheTTL is how long fetched keys are used before a refresh; zero
	// means 10 minutes.
	CacheTTL time.Duration
	// MinRefresh bounds refreshes for unknown key ids; zero means 30 s.
	MinRefresh time.Duration

	mu          sync.Mutex
	keys        *jose.JSONWebKeySet
	fetched     time.Time
	lastAttempt time.Time
}

// NewAssertionVerifier verifies assertions issued by the Rampart at
// issuer (its public URL) for audience.
func NewAssertionVerifier(issuer, audience string) *AssertionVerifier {
	issuer = strings.TrimRight(issuer, "/")
	return &AssertionVerifier{Issuer: issuer, Audience: audience}
}

// VerifyAssertion verifies token (the Rampart-Assertion header's value):
// type, signature (EdDSA or ES256 only), issuer, audience, expiry, issue
// time and lifetime. Any failure wraps ErrAssertion.
func (v *AssertionVerifier) VerifyAssertion(ctx context.Context, token string) (*Assertion, error) {
	if token == "" || len(token) > 8192 {
		return nil, fmt.Errorf("%w: missing or oversized", ErrAssertion)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAssertion, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: expected one signature", ErrAssertion)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, AssertionType) {
		return nil, fmt.Errorf("%w: wrong token type", ErrAssertion)
	}
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no key id", ErrAssertion)
	}
	key, err := v.key(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrAssertion)
	}
	var a Assertion
	if err := json.Unmarshal(payload, &a); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrAssertion, err)
	}
	if err := v.checkClaims(&a); err != nil {
		return nil, err
	}
	return &a, nil
}

// FromRequest verifies the assertion header of an incoming request.
func (v *AssertionVerifier) FromRequest(r *http.Request) (*Assertion, error) {
	return v.VerifyAssertion(r.Context(), r.Header.Get(AssertionHeader))
}

func (v *AssertionVerifier) checkClaims(a *Assertion) error {
	now := v.now()
	leeway := v.Leeway
	if leeway == 0 {
		leeway = 5 * time.Second
	}
	switch {
	case a.Issuer != v.Issuer:
		return fmt.Errorf("%w: wrong issuer", ErrAssertion)
	case !containsString(a.Audience, v.Audience) || v.Audience == "":
		return fmt.Errorf("%w: wrong audience", ErrAssertion)
	case a.Subject == "":
		return fmt.Errorf("%w: no subject", ErrAssertion)
	case a.ExpiresAt == 0 || !now.Before(a.ExpiresAt.Time().Add(leeway)):
		return fmt.Errorf("%w: expired", ErrAssertion)
	case a.IssuedAt == 0 || a.IssuedAt.Time().After(now.Add(leeway)):
		return fmt.Errorf("%w: issued in the future", ErrAssertion)
	case a.NotBefore != 0 && a.NotBefore.Time().After(now.Add(leeway)):
		return fmt.Errorf("%w: not yet valid", ErrAssertion)
	case a.ExpiresAt.Time().Sub(a.IssuedAt.Time()) > maxAssertionLifetime:
		return fmt.Errorf("%w: lifetime longer than Rampart issues", ErrAssertion)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (v *AssertionVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// key returns the public key for kid, refreshing the cached set when it is
// stale or lacks kid. The algorithm must match the key's, so a key
// published for ES256 is never used to check an EdDSA signature.
func (v *AssertionVerifier) key(ctx context.Context, kid, alg string) (any, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	ttl, minRefresh := v.CacheTTL, v.MinRefresh
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	if minRefresh == 0 {
		minRefresh = 30 * time.Second
	}
	find := func() (any, bool) {
		if v.keys == nil {
			return nil, false
		}
		for _, k := range v.keys.Key(kid) {
			if k.IsPublic() && (k.Algorithm == "" || k.Algorithm == alg) && (k.Use == "" || k.Use == "sig") {
				return k.Key, true
			}
		}
		return nil, false
	}
	stale := v.keys == nil || now.Sub(v.fetched) > ttl
	if k, ok := find(); ok && !stale {
		return k, nil
	}
	if v.keys == nil || now.Sub(v.lastAttempt) >= minRefresh || stale {
		v.lastAttempt = now
		set, err := v.fetch(ctx)
		if err != nil {
			if k, ok := find(); ok { // a stale key beats an outage of the JWKS endpoint
				return k, nil
			}
			return nil, fmt.Errorf("%w: fetching keys: %v", ErrAssertion, err)
		}
		v.keys, v.fetched = set, now
	}
	if k, ok := find(); ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown key id", ErrAssertion)
}

func (v *AssertionVerifier) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u := v.JWKSURL
	if u == "" {
		u = strings.TrimRight(v.Issuer, "/") + "/.well-known/jwks.json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	hc := v.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS answered %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	return &set, nil
}
