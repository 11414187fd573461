package tenancy

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	rmail "github.com/rampartsec/rampart/internal/mail"
)

// Actor types beyond audit's user/anonymous/system.
const (
	ActorAPIKey   = "apikey"
	ActorOperator = "operator"
)

// scimActor names SCIM provisioning in audit events (ActorType system).
const scimActor = "scim"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomID returns a 128-bit random identifier.
func (s *Service) randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.d.Rand, b); err != nil {
		return "", err
	}
	return idEncoding.EncodeToString(b), nil
}

// randomToken returns a 256-bit random token, URL-safe.
func (s *Service) randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.d.Rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashToken is the SHA-256 of a token as stored. Tokens carry 256 bits of
// entropy, so a fast hash is enough: there is nothing to brute-force.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// actorOf names the principal for audit events.
func actorOf(p *Principal) (typ, id string) {
	switch {
	case p.APIKey != nil:
		return ActorAPIKey, p.APIKey.ID
	case p.OperatorID != "":
		return ActorOperator, p.OperatorID
	case p.UserID != "":
		return audit.ActorUser, p.UserID
	}
	return audit.ActorAnonymous, ""
}

// record writes an audit event, carrying the request facts from ctx. An
// error means the event was not stored; the caller reports it.
func (s *Service) record(ctx context.Context, e audit.Event) error {
	if s.d.Audit == nil {
		return nil
	}
	e = audit.FromRequest(ctx, e)
	if e.ActorType == "" {
		e.ActorType = audit.ActorSystem
	}
	e.Time = s.d.Now().UTC()
	if err := s.d.Audit.Record(ctx, e); err != nil {
		s.d.Log.Error("audit record failed", "action", e.Action, "err", err)
		return fault.Wrap(fault.Unavailable, "audit_unavailable", "the change was made but could not be recorded; tell your administrator", err)
	}
	return nil
}

// recordBy records an event acted by p in ws.
func (s *Service) recordBy(ctx context.Context, p *Principal, ws, action, target string, details map[string]string) error {
	typ, id := actorOf(p)
	return s.record(ctx, audit.Event{ActorType: typ, ActorID: id, Workspace: ws, Action: action, Target: target, Outcome: audit.Success, Details: details})
}

func (s *Service) send(ctx context.Context, m rmail.Message) error {
	if s.d.Mailer == nil {
		return nil
	}
	if err := s.d.Mailer.Send(ctx, m); err != nil {
		s.d.Log.Error("mail send failed", "kind", m.Kind, "err", err)
		return err
	}
	return nil
}

func (s *Service) link(path string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + path
}

// cleanName trims a display name (workspace, role) and checks it: 1..max
// runes, valid UTF-8, no control characters.
func cleanName(raw string, max int, code string) (string, error) {
	n := strings.TrimSpace(raw)
	if n == "" || !utf8.ValidString(n) || utf8.RuneCountInString(n) > max {
		return "", fault.Invalidf(code, "a name is 1 to %d characters", max)
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", fault.Invalidf(code, "a name cannot contain control characters")
		}
	}
	return n, nil
}

// requireUser refuses principals that are not a signed-in person: some
// acts (creating credentials, granting access) must trace to a human.
func requireUser(p *Principal) error {
	if p.UserID == "" || p.APIKey != nil || p.OperatorID != "" {
		return fault.New(fault.Forbidden, "user_required", "only a signed-in person can do this")
	}
	return nil
}

// subsetOf reports whether every permission is in have.
func subsetOf(perms []string, have map[string]permFlags) bool {
	for _, p := range perms {
		if _, ok := have[p]; !ok {
			return false
		}
	}
	return true
}
