package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// Publishable key text is "rpk_<id>_<secret>", as API keys are: the id (16
// lowercase base32 characters) finds the row, the secret (32 random bytes,
// unpadded base64url) proves possession, and only its SHA-256 is stored.
// The key is public by design (it ships inside an app), so what protects
// the workspace is its scope: ingest events, record opt-outs, nothing else.
const (
	KeyPrefix    = "rpk_"
	keyIDLen     = 16
	keySecretLen = 43
)

var (
	errKeyInvalid  = fault.New(fault.Unauthenticated, "publishable_key_invalid", "the publishable key is invalid or revoked")
	errKeyNotFound = fault.New(fault.NotFound, "publishable_key_not_found", "no such publishable key")
	keyIDEncoding  = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

// keyCacheTTL bounds how long another node may still accept a key revoked
// elsewhere; in the revoking process revocation is immediate.
const keyCacheTTL = 10 * time.Second

const keyCacheMax = 10000

// LooksLikeKey reports whether a bearer credential is meant as a
// publishable key (the web layer routes on it).
func LooksLikeKey(text string) bool { return strings.HasPrefix(text, KeyPrefix) }

func parseKey(text string) (id string, secret []byte, ok bool) {
	if len(text) != len(KeyPrefix)+keyIDLen+1+keySecretLen || !strings.HasPrefix(text, KeyPrefix) {
		return "", nil, false
	}
	id = text[len(KeyPrefix) : len(KeyPrefix)+keyIDLen]
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", nil, false
		}
	}
	if text[len(KeyPrefix)+keyIDLen] != '_' {
		return "", nil, false
	}
	secret, err := base64.RawURLEncoding.Strict().DecodeString(text[len(KeyPrefix)+keyIDLen+1:])
	if err != nil || len(secret) != 32 {
		return "", nil, false
	}
	return id, secret, true
}

// CreateKey creates a publishable key for ws; its text is returned once.
// The caller has checked PermManage.
func (s *Service) CreateKey(ctx context.Context, a Actor, ws, name, class string) (*PublishableKey, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.IndexFunc(name, isControl) >= 0 {
		return nil, "", fault.Invalidf("key_name_invalid", "a key name is 1 to 64 printable characters")
	}
	if class != "" {
		if _, ok := s.cfg.Classes[class]; !ok {
			return nil, "", fault.Invalidf("retention_class_invalid", "unknown retention class")
		}
	}
	b := make([]byte, 10+32)
	if _, err := io.ReadFull(s.d.Rand, b); err != nil {
		return nil, "", fault.Wrap(fault.Internal, "internal", "cannot generate a key", err)
	}
	id := keyIDEncoding.EncodeToString(b[:10])
	h := sha256.Sum256(b[10:])
	text := KeyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[10:])
	k := &PublishableKey{ID: id, Workspace: ws, Name: name, Class: class, SecretHash: h[:], CreatedBy: a.ID, CreatedAt: s.d.Now().UTC()}
	if err := s.d.Store.CreatePublishableKey(ctx, k); err != nil {
		return nil, "", err
	}
	if err := s.record(ctx, a, ws, "ingest.key_create", "publishable_key:"+id, audit.Success, map[string]string{"class": class}); err != nil {
		return nil, "", err
	}
	return k, text, nil
}

// Keys lists ws's publishable keys (hashes only). The caller has checked
// PermManage.
func (s *Service) Keys(ctx context.Context, ws string) ([]PublishableKey, error) {
	return s.d.Store.PublishableKeys(ctx, ws)
}

// RevokeKey revokes a key; its next use in this process is refused.
func (s *Service) RevokeKey(ctx context.Context, a Actor, ws, id string) error {
	if err := s.d.Store.RevokePublishableKey(ctx, ws, id, s.d.Now().UTC()); err != nil {
		if fault.Is(err, fault.NotFound) {
			return errKeyNotFound
		}
		return err
	}
	s.keys.mu.Lock()
	delete(s.keys.m, id)
	s.keys.mu.Unlock()
	return s.record(ctx, a, ws, "ingest.key_revoke", "publishable_key:"+id, audit.Success, nil)
}

// AuthenticateKey returns the key the text names if it is valid and not
// revoked. The secret is compared in constant time.
func (s *Service) AuthenticateKey(ctx context.Context, text string) (*PublishableKey, error) {
	id, secret, ok := parseKey(text)
	if !ok {
		return nil, errKeyInvalid
	}
	now := s.d.Now()
	s.keys.mu.Lock()
	c, hit := s.keys.m[id]
	s.keys.mu.Unlock()
	k := c.k
	if !hit || now.Sub(c.at) >= keyCacheTTL || now.Before(c.at) {
		var err error
		k, err = s.d.Store.PublishableKeyByID(ctx, id)
		if err != nil {
			if fault.Is(err, fault.NotFound) {
				return nil, errKeyInvalid
			}
			return nil, err
		}
		s.keys.mu.Lock()
		if len(s.keys.m) >= keyCacheMax {
			clear(s.keys.m)
		}
		s.keys.m[id] = cachedKey{k: k, at: now}
		s.keys.mu.Unlock()
	}
	h := sha256.Sum256(secret)
	if len(k.SecretHash) != len(h) || subtle.ConstantTimeCompare(h[:], k.SecretHash) != 1 || !k.RevokedAt.IsZero() {
		return nil, errKeyInvalid
	}
	return k, nil
}
