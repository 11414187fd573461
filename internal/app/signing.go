package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/oauth/signing"
	"github.com/rampartsec/rampart/internal/trust"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/web"
)

// signingParts holds the signing keys shared by OAuth tokens and gateway
// assertions.
type signingParts struct {
	// Signing signs and verifies access tokens, ID tokens and gateway
	// assertions, and publishes the JWKS (SES-2).
	Signing *signing.Manager
}

// signingPurpose derives the fallback sealer's key from the root key when
// the vault hierarchy is not wired.
const signingPurpose = "rampart/signing-keys/v1"

// signingConfig is the effective key configuration: max_token_ttl is
// raised to the longest lifetime the OAuth provider signs (ID tokens may
// outlive access tokens), so no signed token outlives its key's
// publication.
func signingConfig(c config.Config) signing.Config {
	s := c.Signing
	return signing.Config{
		Algorithm:    signing.Algorithm(s.Algorithm),
		RotateEvery:  s.RotateEvery,
		PublishAhead: s.PublishAhead,
		MaxTokenTTL:  max(s.MaxTokenTTL, c.OAuth.AccessTokenTTL, c.OAuth.IDTokenTTL),
		ReloadEvery:  s.ReloadEvery,
	}
}

// buildSigning runs before buildOAuth and buildGateway, which sign with it.
func (a *App) buildSigning(ctx context.Context) error {
	sealer := a.Sealer
	if sealer == nil {
		ring := vault.NewKeyring(a.rand)
		if err := ring.Add(1, a.root.Derive(signingPurpose, 32)); err != nil {
			return err
		}
		if err := ring.SetPrimary(1); err != nil {
			return err
		}
		sealer = vault.KeyringSealer{Keyring: ring}
	}
	m, err := signing.New(ctx, signingConfig(a.Config), signing.Deps{Store: a.Store, Sealer: sealer, Audit: a.Audit, Log: a.Log, Now: a.now, Rand: a.rand})
	if err != nil {
		return err
	}
	a.Signing = m
	a.jobs = append(a.jobs, a.maintainSigningKeys)
	return nil
}

// maintainSigningKeys runs Maintain every ReloadEvery on every node: the
// job is idempotent and guarded in the store, so it needs no leader.
func (a *App) maintainSigningKeys(ctx context.Context) {
	t := time.NewTicker(a.Signing.Config().ReloadEvery)
	defer t.Stop()
	for {
		if err := a.Signing.Maintain(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("signing key maintenance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) tokenWebDeps() web.TokenDeps {
	if a.Signing == nil {
		return web.TokenDeps{}
	}
	c := a.Signing.Config()
	d := web.TokenDeps{
		Verifier:     a.Signing,
		Issuer:       a.Config.PublicURL,
		MaxAccessTTL: min(a.Config.OAuth.AccessTokenTTL, config.MaxAccessTokenTTL),
		// Half the margin between a key's publication and its first
		// signature: a JWKS cached just before a key appeared is refreshed
		// well before that key signs.
		JWKSMaxAge:  (c.PublishAhead - c.ReloadEvery) / 2,
		SessionLive: web.SessionFromList(a.Identity, a.now),
	}
	// buildOAuth ran before the handler is built: deleted clients and
	// revoked tokens or grants (RFC 7009) are refused by the API too.
	if a.OAuth != nil {
		d.ClientActive = a.OAuth.ClientActive
		d.TokenRevoked = func(ctx context.Context, jti, grant string) (bool, error) {
			keys := []string{oauth.TokenKey(jti)}
			if grant != "" {
				keys = append(keys, oauth.GrantKey(grant))
			}
			return a.OAuth.Revoked(ctx, keys...)
		}
	}
	return d
}

func (a *App) signingChecks() map[string]trust.Check {
	if a.Signing == nil {
		return nil
	}
	return map[string]trust.Check{"SES-2": a.checkSigningKeys}
}

// probeClaims is the SES-2 check's probe token.
type probeClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat"`
	Jti string `json:"jti"`
}

// SES-2: access tokens are short-lived, signed with EdDSA or ES256 by a key
// younger than the rotation interval, every key that may have signed a
// live token is still published, and a real token signs and verifies
// (while the same token under another typ is refused).
func (a *App) checkSigningKeys(ctx context.Context) trust.Result {
	m := a.Signing
	cfg := m.Config()
	now := a.now()
	accessTTL := a.Config.OAuth.AccessTokenTTL
	if accessTTL <= 0 {
		accessTTL = cfg.MaxTokenTTL
	}
	kid, alg, _, err := m.SignerFor(ctx)
	if err != nil {
		return failing("no signing key is active")
	}
	var active signing.KeyInfo
	for _, k := range m.Keys() {
		if k.ID == kid {
			active = k
		}
	}
	age := now.Sub(active.ActiveFrom)

	// Overlap: every key that signed within MaxTokenTTL is in the JWKS.
	var ks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(m.JWKS(), &ks); err != nil {
		return failing("the JWKS does not parse")
	}
	published := map[string]bool{}
	for _, k := range ks.Keys {
		published[k.Kid] = true
	}
	recent, missing := 0, 0
	for _, k := range m.Keys() {
		if k.ActiveFrom.After(now) || (!k.RetiredAt.IsZero() && now.Sub(k.RetiredAt) > cfg.MaxTokenTTL) {
			continue
		}
		recent++
		if !published[k.ID] {
			missing++
		}
	}

	// Round trip of a probe token.
	probe := probeClaims{Iss: a.Config.PublicURL, Sub: "ses-2-probe", Exp: now.Add(time.Minute).Unix(), Iat: now.Unix(), Jti: rand.Text()}
	tok, err := m.Sign("rampart-probe+jwt", probe)
	roundTrip := err == nil
	var back probeClaims
	if roundTrip {
		roundTrip = m.Verify(tok, "rampart-probe+jwt", &back) == nil && back.Jti == probe.Jti &&
			m.Verify(tok, web.AccessTokenType, nil) != nil
	}

	data := map[string]any{"access_token_ttl_s": accessTTL.Seconds(), "algorithm": string(alg), "key_age_s": int64(age.Seconds()),
		"rotate_every_s": cfg.RotateEvery.Seconds(), "published_keys": len(ks.Keys), "recent_keys": recent, "recent_unpublished": missing,
		"probe_round_trip": roundTrip}
	switch {
	case accessTTL > config.MaxAccessTokenTTL:
		return trust.Result{Status: trust.Failing, Evidence: fmt.Sprintf("access tokens live %s, more than %s", accessTTL, config.MaxAccessTokenTTL), Data: data}
	case alg != signing.EdDSA && alg != signing.ES256:
		return trust.Result{Status: trust.Failing, Evidence: fmt.Sprintf("signing algorithm %s is not EdDSA or ES256", alg), Data: data}
	case age > cfg.RotateEvery+cfg.PublishAhead:
		return trust.Result{Status: trust.Failing, Evidence: fmt.Sprintf("the signing key is %s old, rotation is due every %s", age.Round(time.Minute), cfg.RotateEvery), Data: data}
	case missing > 0:
		return trust.Result{Status: trust.Failing, Evidence: fmt.Sprintf("%d of %d keys that signed within %s are missing from the JWKS", missing, recent, cfg.MaxTokenTTL), Data: data}
	case !roundTrip:
		return trust.Result{Status: trust.Failing, Evidence: "a probe token did not sign and verify (or verified under the wrong type)", Data: data}
	}
	return trust.Result{Status: trust.Passing, Data: data,
		Evidence: fmt.Sprintf("access tokens live %s (max %s), signed with %s; the signing key is %s old (rotation every %s, published %s ahead); %d keys in the JWKS cover all %d that signed within %s; a probe token signed and verified, and was refused under another type",
			accessTTL, config.MaxAccessTokenTTL, alg, age.Round(time.Minute), cfg.RotateEvery, cfg.PublishAhead, len(ks.Keys), recent, cfg.MaxTokenTTL)}
}
