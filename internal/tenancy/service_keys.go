package tenancy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// Credential text is "<prefix><id>_<secret>": the id (16 lowercase base32
// characters, 80 bits) finds the row without a scan, the secret (32 random
// bytes, unpadded base64url) proves possession. Only SHA-256 of the secret
// is stored; it carries 256 bits, so a fast hash is enough. The prefixes let
// secret scanners recognise a leaked credential.
const (
	APIKeyPrefix    = "rmp_"
	SCIMTokenPrefix = "rscim_"
	credIDLen       = 16
	credSecretLen   = 43
)

var (
	errAPIKeyInvalid    = fault.New(fault.Unauthenticated, "api_key_invalid", "the API key is invalid, expired or revoked")
	errSCIMTokenInvalid = fault.New(fault.Unauthenticated, "scim_token_invalid", "the SCIM token is invalid or revoked")
	errAPIKeyNotFound   = fault.New(fault.NotFound, "apikey_not_found", "no such API key")
)

// parseCredential splits credential text into its id and secret bytes. It
// accepts exactly one spelling of each credential (strict base64), so two
// different texts can never both authenticate.
func parseCredential(text, prefix string) (id string, secret []byte, ok bool) {
	if len(text) != len(prefix)+credIDLen+1+credSecretLen || !strings.HasPrefix(text, prefix) {
		return "", nil, false
	}
	id = text[len(prefix) : len(prefix)+credIDLen]
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", nil, false
		}
	}
	if text[len(prefix)+credIDLen] != '_' {
		return "", nil, false
	}
	secret, err := base64.RawURLEncoding.Strict().DecodeString(text[len(prefix)+credIDLen+1:])
	if err != nil || len(secret) != 32 {
		return "", nil, false
	}
	return id, secret, true
}

// newCredential returns a fresh id, the credential text and the secret's hash.
func (s *Service) newCredential(prefix string) (id, text string, hash []byte, err error) {
	b := make([]byte, 10+32)
	if _, err := io.ReadFull(s.d.Rand, b); err != nil {
		return "", "", nil, err
	}
	id = idEncoding.EncodeToString(b[:10])
	h := sha256.Sum256(b[10:])
	return id, prefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[10:]), h[:], nil
}

// secretMatches compares a presented secret with a stored hash in
// constant time.
func secretMatches(secret, stored []byte) bool {
	h := sha256.Sum256(secret)
	return len(stored) == len(h) && subtle.ConstantTimeCompare(h[:], stored) == 1
}

// --- API keys (SES-5) ---

// CreateAPIKey creates a key for machines; it holds at most what its
// creator holds, always expires, and its text is returned once.
func (s *Service) CreateAPIKey(ctx context.Context, p Principal, ws, name string, perms []string, ttl time.Duration) (*APIKey, string, error) {
	if err := s.Require(ctx, p, ws, PermAPIKeysManage); err != nil {
		return nil, "", err
	}
	if err := requireUser(&p); err != nil {
		return nil, "", err
	}
	name, err := cleanName(name, 64, "key_name_invalid")
	if err != nil {
		return nil, "", err
	}
	if len(perms) == 0 {
		return nil, "", fault.Invalidf("permissions_required", "a key needs at least one permission")
	}
	if perms, err = s.knownPerms(ctx, perms); err != nil {
		return nil, "", err
	}
	have, err := s.effective(ctx, &p, ws)
	if err != nil {
		return nil, "", err
	}
	if !subsetOf(perms, have) {
		return nil, "", fault.New(fault.Forbidden, "scope_exceeds_creator", "a key cannot hold permissions you do not hold")
	}
	switch {
	case ttl == 0:
		ttl = s.cfg.APIKeyDefaultTTL
	case ttl < 0:
		return nil, "", fault.Invalidf("ttl_invalid", "the lifetime must be positive")
	case ttl > s.cfg.APIKeyMaxTTL:
		return nil, "", fault.Invalidf("ttl_too_long", "a key lives at most %s", s.cfg.APIKeyMaxTTL)
	}
	id, text, hash, err := s.newCredential(APIKeyPrefix)
	if err != nil {
		return nil, "", err
	}
	now := s.d.Now().UTC()
	k := &APIKey{ID: id, WorkspaceID: ws, Name: name, CreatedBy: p.UserID, SecretHash: hash, Permissions: perms,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.d.Store.CreateAPIKey(ctx, k); err != nil {
		return nil, "", err
	}
	if err := s.recordBy(ctx, &p, ws, "apikey.create", "apikey:"+id, map[string]string{
		"permissions": strings.Join(perms, ","), "expires_at": k.ExpiresAt.Format(time.RFC3339)}); err != nil {
		return nil, "", err
	}
	return k, text, nil
}

// APIKeys lists the workspace's keys (hashes only).
func (s *Service) APIKeys(ctx context.Context, p Principal, ws string) ([]APIKey, error) {
	if err := s.Require(ctx, p, ws, PermAPIKeysRead); err != nil {
		return nil, err
	}
	return s.d.Store.ListAPIKeys(ctx, ws)
}

// RevokeAPIKey revokes a key; its next use in this process is refused.
func (s *Service) RevokeAPIKey(ctx context.Context, p Principal, ws, id string) error {
	if err := s.Require(ctx, p, ws, PermAPIKeysManage); err != nil {
		return err
	}
	if err := s.d.Store.RevokeAPIKey(ctx, ws, id, s.d.Now().UTC()); err != nil {
		return mapNotFound(err, errAPIKeyNotFound)
	}
	s.invalidate(ws)
	return s.recordBy(ctx, &p, ws, "apikey.revoke", "apikey:"+id, nil)
}

// AuthenticateAPIKey turns key text into a Principal and records the use
// (time and address; the store writes at most once a minute per key).
func (s *Service) AuthenticateAPIKey(ctx context.Context, keyText, ip string) (Principal, error) {
	id, secret, ok := parseCredential(keyText, APIKeyPrefix)
	if !ok {
		return Principal{}, errAPIKeyInvalid
	}
	now := s.d.Now()
	k, err := s.cachedAPIKey(ctx, id, now)
	if err != nil {
		return Principal{}, mapNotFound(err, errAPIKeyInvalid)
	}
	if !secretMatches(secret, k.SecretHash) || !k.RevokedAt.IsZero() || !now.Before(k.ExpiresAt) {
		return Principal{}, errAPIKeyInvalid
	}
	if s.kc.dueTouch(k.ID, now) {
		if err := s.d.Store.TouchAPIKey(ctx, k.ID, ip, now.UTC()); err != nil {
			s.d.Log.Warn("recording API key use failed", "err", err)
		} else {
			k.LastUsedAt, k.LastUsedIP = now.UTC(), ip
		}
	}
	return Principal{APIKey: k, IP: ip}, nil
}

// --- SCIM tokens and provisioning (AC-4) ---

// CreateSCIMToken creates the workspace's provisioning token, shown once.
func (s *Service) CreateSCIMToken(ctx context.Context, p Principal, ws string) (*SCIMToken, string, error) {
	if err := s.Require(ctx, p, ws, PermSCIMManage); err != nil {
		return nil, "", err
	}
	if err := requireUser(&p); err != nil {
		return nil, "", err
	}
	id, text, hash, err := s.newCredential(SCIMTokenPrefix)
	if err != nil {
		return nil, "", err
	}
	t := &SCIMToken{ID: id, WorkspaceID: ws, SecretHash: hash, CreatedBy: p.UserID, CreatedAt: s.d.Now().UTC()}
	if err := s.d.Store.CreateSCIMToken(ctx, t); err != nil {
		return nil, "", err
	}
	if err := s.recordBy(ctx, &p, ws, "scim.token_create", "scim_token:"+id, nil); err != nil {
		return nil, "", err
	}
	return t, text, nil
}

// SCIMTokens lists the workspace's provisioning tokens (hashes only).
func (s *Service) SCIMTokens(ctx context.Context, p Principal, ws string) ([]SCIMToken, error) {
	if err := s.Require(ctx, p, ws, PermSCIMManage); err != nil {
		return nil, err
	}
	return s.d.Store.ListSCIMTokens(ctx, ws)
}

// RevokeSCIMToken revokes a provisioning token.
func (s *Service) RevokeSCIMToken(ctx context.Context, p Principal, ws, id string) error {
	if err := s.Require(ctx, p, ws, PermSCIMManage); err != nil {
		return err
	}
	if err := s.d.Store.RevokeSCIMToken(ctx, ws, id, s.d.Now().UTC()); err != nil {
		return mapNotFound(err, fault.New(fault.NotFound, "scim_token_not_found", "no such SCIM token"))
	}
	return s.recordBy(ctx, &p, ws, "scim.token_revoke", "scim_token:"+id, nil)
}

// AuthenticateSCIM returns the workspace a provisioning token belongs to.
func (s *Service) AuthenticateSCIM(ctx context.Context, tokenText string) (string, error) {
	id, secret, ok := parseCredential(tokenText, SCIMTokenPrefix)
	if !ok {
		return "", errSCIMTokenInvalid
	}
	t, err := s.d.Store.SCIMTokenByID(ctx, id)
	if err != nil {
		return "", mapNotFound(err, errSCIMTokenInvalid)
	}
	if !secretMatches(secret, t.SecretHash) || !t.RevokedAt.IsZero() {
		return "", errSCIMTokenInvalid
	}
	return t.WorkspaceID, nil
}

func (s *Service) recordSCIM(ctx context.Context, ws, action, userID string, details map[string]string) error {
	return s.record(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: scimActor, Workspace: ws, Action: action,
		Target: "user:" + userID, Outcome: audit.Success, Details: details})
}

// SCIMUpsertUser provisions an account and its membership (ReadOnly by
// default); created reports a new membership. An existing member gets the
// external id and active flag.
func (s *Service) SCIMUpsertUser(ctx context.Context, ws, email, externalID string, active bool) (*Member, bool, error) {
	if len(externalID) > 256 {
		return nil, false, fault.Invalidf("external_id_invalid", "externalId is longer than 256 characters")
	}
	u, _, err := s.d.Accounts.ProvisionUser(ctx, email)
	if err != nil {
		return nil, false, err
	}
	m, err := s.d.Store.Member(ctx, ws, u.ID)
	switch {
	case fault.Is(err, fault.NotFound):
		now := s.d.Now().UTC()
		m = &Member{WorkspaceID: ws, UserID: u.ID, Email: u.Email, Roles: []string{RoleReadOnly}, JoinedAt: now,
			SCIMExternal: externalID, Active: active}
		if err := s.d.Store.AddMember(ctx, m); err != nil {
			if fault.Is(err, fault.Conflict) {
				return nil, false, errAlreadyMember
			}
			return nil, false, err
		}
		s.invalidate(ws)
		if err := s.recordSCIM(ctx, ws, "scim.user_create", u.ID, nil); err != nil {
			return nil, false, err
		}
		return m, true, nil
	case err != nil:
		return nil, false, err
	}
	if m.SCIMExternal != externalID {
		if err := s.d.Store.SetMemberExternalID(ctx, ws, u.ID, externalID); err != nil {
			return nil, false, err
		}
		m.SCIMExternal = externalID
	}
	if m.Active != active {
		if err := s.SCIMSetActive(ctx, ws, u.ID, active); err != nil {
			return nil, false, err
		}
		m.Active = active
	}
	return m, false, nil
}

// SCIMMember returns one member of ws.
func (s *Service) SCIMMember(ctx context.Context, ws, userID string) (*Member, error) {
	m, err := s.d.Store.Member(ctx, ws, userID)
	return m, mapNotFound(err, errMemberNotFound)
}

// SCIMMembers lists the members of ws.
func (s *Service) SCIMMembers(ctx context.Context, ws string) ([]Member, error) {
	return s.d.Store.ListMembers(ctx, ws)
}

// SCIMSetActive sets the member's active flag. Deactivation takes effect
// everywhere at once (AC-4): every session of the person ends and their
// API keys in ws are revoked, in this call.
func (s *Service) SCIMSetActive(ctx context.Context, ws, userID string, active bool) error {
	if err := s.d.Store.SetMemberActive(ctx, ws, userID, active); err != nil {
		return mapLastAdmin(mapNotFound(err, errMemberNotFound))
	}
	s.invalidate(ws)
	if active {
		return s.recordSCIM(ctx, ws, "scim.user_activate", userID, nil)
	}
	details, err := s.cutOff(ctx, ws, userID)
	if err != nil {
		return err
	}
	return s.recordSCIM(ctx, ws, "scim.user_deactivate", userID, details)
}

// cutOff ends a deprovisioned person's sessions and their keys in ws.
func (s *Service) cutOff(ctx context.Context, ws, userID string) (map[string]string, error) {
	sessions, err := s.d.Accounts.RevokeAllSessions(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	keys, err := s.d.Store.RevokeUserAPIKeys(ctx, ws, userID, s.d.Now().UTC())
	if err != nil {
		return nil, err
	}
	s.invalidate(ws)
	return map[string]string{"sessions_revoked": strconv.Itoa(sessions), "api_keys_revoked": strconv.Itoa(keys)}, nil
}

// SCIMDeleteUser removes the membership and cuts the person off as
// deactivation does.
func (s *Service) SCIMDeleteUser(ctx context.Context, ws, userID string) error {
	if err := s.d.Store.RemoveMember(ctx, ws, userID); err != nil {
		return mapLastAdmin(mapNotFound(err, errMemberNotFound))
	}
	s.invalidate(ws)
	details, err := s.cutOff(ctx, ws, userID)
	if err != nil {
		return err
	}
	return s.recordSCIM(ctx, ws, "scim.user_delete", userID, details)
}

// SCIMSetRoles replaces a member's roles from the identity provider's
// group mapping (with the last-Admin rule).
func (s *Service) SCIMSetRoles(ctx context.Context, ws, userID string, roles []string) error {
	roles, err := normRoles(roles)
	if err != nil {
		return err
	}
	if _, err := s.rolesPerms(ctx, ws, roles); err != nil {
		return err
	}
	if err := s.d.Store.SetMemberRoles(ctx, ws, userID, roles, true); err != nil {
		return mapLastAdmin(mapNotFound(err, errMemberNotFound))
	}
	s.invalidate(ws)
	return s.recordSCIM(ctx, ws, "member.role_change", userID, map[string]string{"roles": strings.Join(roles, ",")})
}
