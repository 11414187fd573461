package web

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/trust"
)

var (
	errRouteNotFound    = fault.New(fault.NotFound, "route_not_found", "no such endpoint")
	errMethodNotAllowed = &fault.Error{Kind: fault.Invalid, Code: "method_not_allowed", Message: "method not allowed"}
	errNotSignedIn      = fault.New(fault.Unauthenticated, "unauthenticated", "sign in first")
)

// authenticate validates the session cookie and, when the session was
// rotated, sends the new cookie.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) (identity.Session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return identity.Session{}, errNotSignedIn
	}
	a, err := s.id.Authenticate(r.Context(), c.Value)
	if err != nil {
		// A half-finished sign-in keeps its cookie: the client still has to
		// send it to /v1/signin/mfa.
		if fault.Is(err, fault.Unauthenticated) && fault.As(err).Code != "mfa_pending" {
			s.clearSessionCookie(w)
		}
		return identity.Session{}, err
	}
	if a.NewToken != "" {
		s.setSessionCookie(w, a.NewToken, a.Session.ExpiresAt)
	}
	noteActor(r.Context(), audit.ActorUser, a.Session.UserID)
	return a.Session, nil
}

// setSessionCookie writes the session cookie: __Host- prefix, Secure,
// HttpOnly, SameSite=Lax, Path=/ (SES-1). Lax (not Strict) so that a link
// from a mail to Rampart arrives signed in; state changes are guarded by the
// cross-origin check.
func (s *server) setSessionCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Expires: expires.UTC(), MaxAge: max(1, int(expires.Sub(s.now()).Seconds())),
	})
	w.Header().Set("Cache-Control", "no-store")
}

func (s *server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// deviceID returns the device cookie, setting a new one when absent. It only
// serves the new-device notice (AUTH-5).
func (s *server) deviceID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(DeviceCookie); err == nil && len(c.Value) >= 16 && len(c.Value) <= 64 {
		return c.Value
	}
	id := newRequestID(s.rand) + newRequestID(s.rand)
	http.SetCookie(w, &http.Cookie{Name: DeviceCookie, Value: id, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: 400 * 24 * 3600})
	return id
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type statusBody struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

const checkEmailMessage = "If the address can be used, a message is on its way to it."

func (s *server) apiSignUp(w http.ResponseWriter, r *http.Request) {
	in, err := decodeJSON[credentials](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.id.SignUp(r.Context(), in.Email, in.Password); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, statusBody{Status: "check_email", Message: checkEmailMessage})
}

type signInBody struct {
	MFARequired            bool         `json:"mfa_required"`
	PasswordChangeRequired bool         `json:"password_change_required"`
	Session                *sessionJSON `json:"session,omitempty"`
}

type sessionJSON struct {
	ID         string    `json:"id"`
	Current    bool      `json:"current"`
	MFA        bool      `json:"mfa"`
	IP         string    `json:"ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func toSessionJSON(s identity.Session, currentID string) *sessionJSON {
	return &sessionJSON{ID: s.ID, Current: s.ID == currentID, MFA: s.MFA, IP: s.IP, UserAgent: s.UserAgent,
		CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt}
}

func (s *server) apiSignIn(w http.ResponseWriter, r *http.Request) {
	in, err := decodeJSON[credentials](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.id.SignIn(r.Context(), in.Email, in.Password, identity.Client{IP: clientIP(r), DeviceID: s.deviceID(w, r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setSessionCookie(w, res.Token, res.Session.ExpiresAt)
	out := signInBody{MFARequired: res.MFARequired, PasswordChangeRequired: res.PasswordChangeRequired}
	if !res.MFARequired {
		out.Session = toSessionJSON(res.Session, res.Session.ID)
	}
	writeJSON(w, http.StatusOK, out)
}

type codeBody struct {
	Code string `json:"code"`
}

func (s *server) apiSignInMFA(w http.ResponseWriter, r *http.Request) {
	in, err := decodeJSON[codeBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		s.writeError(w, r, errNotSignedIn)
		return
	}
	res, err := s.id.SignInMFA(r.Context(), c.Value, in.Code, identity.Client{IP: clientIP(r), DeviceID: s.deviceID(w, r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setSessionCookie(w, res.Token, res.Session.ExpiresAt)
	writeJSON(w, http.StatusOK, signInBody{PasswordChangeRequired: res.PasswordChangeRequired, Session: toSessionJSON(res.Session, res.Session.ID)})
}

func (s *server) apiSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.id.SignOut(r.Context(), c.Value); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

type meBody struct {
	ID                     string       `json:"id"`
	Email                  string       `json:"email"`
	EmailVerified          bool         `json:"email_verified"`
	MFAEnabled             bool         `json:"mfa_enabled"`
	PasswordChangeRequired bool         `json:"password_change_required"`
	CreatedAt              time.Time    `json:"created_at"`
	Session                *sessionJSON `json:"session"`
}

func (s *server) apiMe(w http.ResponseWriter, r *http.Request) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.id.User(r.Context(), sess.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, meBody{ID: u.ID, Email: u.Email, EmailVerified: !u.EmailVerifiedAt.IsZero(), MFAEnabled: u.TOTPEnabled,
		PasswordChangeRequired: u.PasswordCompromised, CreatedAt: u.CreatedAt, Session: toSessionJSON(sess, sess.ID)})
}

type tokenBody struct {
	Token string `json:"token"`
}

func (s *server) apiVerifyEmail(w http.ResponseWriter, r *http.Request) {
	in, err := decodeJSON[tokenBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.id.VerifyEmail(r.Context(), in.Token); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statusBody{Status: "verified"})
}

func (s *server) apiResendVerification(w http.ResponseWriter, r *http.Request) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.id.ResendVerification(r.Context(), sess.UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, statusBody{Status: "check_email", Message: checkEmailMessage})
}

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *server) apiChangePassword(w http.ResponseWriter, r *http.Request) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[passwordChange](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tok, err := s.id.ChangePassword(r.Context(), sess, in.CurrentPassword, in.NewPassword)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setSessionCookie(w, tok, sess.ExpiresAt)
	writeJSON(w, http.StatusOK, statusBody{Status: "password_changed", Message: "Your other sessions were signed out."})
}

type emailBody struct {
	Email string `json:"email"`
}

func (s *server) apiRequestReset(w http.ResponseWriter, r *http.Request) {
	in, err := decodeJSON[emailBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.id.RequestReset(r.Context(), in.Email); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, statusBody{Status: "check_email", Message: checkEmailMessage})
}

type resetConfirm struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
}

func (s *server) apiConfirmReset(w http.ResponseWriter, r *http.Request) {
	in, err := decodeJSON[resetConfirm](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.id.ConfirmReset(r.Context(), in.Token, in.NewPassword); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.clearSessionCookie(w)
	writeJSON(w, http.StatusOK, statusBody{Status: "password_reset", Message: "Sign in with your new password."})
}

func (s *server) apiSessions(w http.ResponseWriter, r *http.Request) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.id.Sessions(r.Context(), sess.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Sessions []*sessionJSON `json:"sessions"`
	}{Sessions: []*sessionJSON{}}
	for _, x := range list {
		if x.Pending {
			continue
		}
		out.Sessions = append(out.Sessions, toSessionJSON(x, sess.ID))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func (s *server) apiRevokeSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if len(id) > 64 {
		s.writeError(w, r, fault.New(fault.NotFound, "session_not_found", "no such session"))
		return
	}
	if err := s.id.RevokeSession(r.Context(), sess.UserID, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if id == sess.ID {
		s.clearSessionCookie(w)
	}
	w.WriteHeader(http.StatusNoContent)
}

type totpBegin struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
	QRPNG  string `json:"qr_png_base64"`
}

func (s *server) apiBeginTOTP(w http.ResponseWriter, r *http.Request) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	en, err := s.id.BeginTOTP(r.Context(), sess.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, totpBegin{Secret: en.Secret, URI: en.URI, QRPNG: base64.StdEncoding.EncodeToString(en.QRPNG)})
}

func (s *server) apiConfirmTOTP(w http.ResponseWriter, r *http.Request) {
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
	codes, err := s.id.ConfirmTOTP(r.Context(), sess.UserID, in.Code)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Privilege change: the session gets a new token.
	if tok, err := s.id.Rotate(r.Context(), sess); err == nil {
		s.setSessionCookie(w, tok, sess.ExpiresAt)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}{codes})
}

type totpDisable struct {
	Password string `json:"password"`
	Code     string `json:"code"`
}

func (s *server) apiDisableTOTP(w http.ResponseWriter, r *http.Request) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := decodeJSON[totpDisable](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.id.DisableTOTP(r.Context(), sess.UserID, in.Password, in.Code); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiTrust(w http.ResponseWriter, r *http.Request) {
	reports := s.trust.Run(r.Context())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=30")
	if err := trust.WriteJSON(w, reports); err != nil {
		s.log.Error("trust json", "err", err)
	}
}

func (s *server) securityTxtHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.securityTxt().Render())
}
