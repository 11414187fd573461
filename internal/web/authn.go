package web

import (
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// apiKeyPrefix starts every API key's text (rmp_<id>_<secret>).
const apiKeyPrefix = "rmp_"

// maxBearerLen bounds a bearer credential before any work is done on it.
const maxBearerLen = 512

var (
	errBearerInvalid = fault.New(fault.Unauthenticated, "api_key_invalid", "the API key is invalid, expired or revoked")
	errSessionNeeded = fault.New(fault.Forbidden, "session_required", "this endpoint needs a signed-in person, not an API key")
)

// principal authenticates a /v1 request as a tenancy.Principal: when an
// Authorization header is present, a bearer API key (rmp_…) or a signed
// access token (a JWS, checked in tokens.go: signature, issuer, audience,
// lifetime, client and session), else the session cookie. A request with a
// bearer credential is judged by it alone — a wrong key is refused even if
// a valid cookie rides along — so a client never acts with an identity it
// did not mean to present.
func (s *server) principal(w http.ResponseWriter, r *http.Request) (tenancy.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, ok := strings.Cut(h, " ")
		cred = strings.TrimSpace(cred)
		if ok && strings.EqualFold(scheme, "Bearer") && !strings.HasPrefix(cred, apiKeyPrefix) && s.bearerIsToken(cred) {
			return s.tokenPrincipal(w, r, cred)
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" || len(cred) > maxBearerLen || !strings.HasPrefix(cred, apiKeyPrefix) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			return tenancy.Principal{}, errBearerInvalid
		}
		p, err := s.ten.AuthenticateAPIKey(r.Context(), cred, clientIP(r))
		if err != nil {
			if fault.Is(err, fault.Unauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			return tenancy.Principal{}, err
		}
		noteActor(r.Context(), audit.ActorAPIKey, p.APIKey.ID)
		return p, nil
	}
	sess, err := s.authenticate(w, r)
	if err != nil {
		return tenancy.Principal{}, err
	}
	return tenancy.Principal{UserID: sess.UserID, SessionID: sess.ID, MFA: sess.MFA, MFAAt: sess.MFAAt, IP: clientIP(r)}, nil
}

// personPrincipal is principal for endpoints that act as a person (create
// a workspace, accept an invitation, operator access): machine keys are
// scoped to one workspace and must not reach them.
func (s *server) personPrincipal(w http.ResponseWriter, r *http.Request) (tenancy.Principal, error) {
	p, err := s.principal(w, r)
	if err != nil {
		return p, err
	}
	if p.UserID == "" || p.APIKey != nil {
		return tenancy.Principal{}, errSessionNeeded
	}
	return p, nil
}

// apiStepUp records a fresh second-factor check on the session, which
// sensitive permissions need within the step-up window (AC-2). The
// session gets a new token: it now carries more privilege.
func (s *server) apiStepUp(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		s.writeError(w, r, errSessionNeeded)
		return
	}
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[codeBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err = s.id.StepUp(r.Context(), sess, in.Code)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if tok, err := s.id.Rotate(r.Context(), sess); err == nil {
		s.setSessionCookie(w, tok, sess.ExpiresAt)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		Session *sessionJSON `json:"session"`
	}{toSessionJSON(sess, sess.ID)})
}
