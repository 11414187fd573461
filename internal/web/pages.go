package web

import (
	"bytes"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/trust"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageSet holds one parsed template set per page, each with the layout.
type pageSet struct {
	t map[string]*template.Template
}

func mustPages() *pageSet {
	funcs := template.FuncMap{
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	ps := &pageSet{t: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		ps.t[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return ps
}

// view is the data every page template gets.
type view struct {
	Title    string
	Error    string
	Notice   string
	SignedIn bool
	Email    string
	ReturnTo string
	Token    string
	Data     any
}

func (s *server) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	t, ok := s.pages.t[page]
	if !ok {
		s.writeError(w, r, fault.New(fault.Internal, "internal", "missing page"))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error("render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage renders an error for a browser.
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	fe, st := publicError(err)
	if st >= 500 {
		s.log.Error("request failed", "route", r.Pattern, "status", st, "request_id", requestID(r.Context()), "err", err)
	}
	s.render(w, r, st, "message", view{Title: http.StatusText(st), Error: fe.Message, Data: map[string]string{"RequestID": requestID(r.Context())}})
}

// formError re-renders a form with the error's public message.
func (s *server) formError(w http.ResponseWriter, r *http.Request, page string, v view, err error) {
	fe, st := publicError(err)
	if st >= 500 {
		s.log.Error("request failed", "route", r.Pattern, "status", st, "request_id", requestID(r.Context()), "err", err)
	}
	if fe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(fe.RetryAfter.Seconds()+0.999)))
	}
	v.Error = fe.Message
	s.render(w, r, st, page, v)
}

// maxReturnTo bounds return_to; an OAuth authorization request with PKCE,
// state, nonce and its redirect URI fits with room to spare.
const maxReturnTo = 2048

// safeReturn accepts only a local absolute path, so return_to cannot send a
// user to another site (open redirect): no scheme, no host, no "//" or
// "/\" (which browsers treat as another host), no control characters.
func safeReturn(v string) string {
	if v == "" || len(v) > maxReturnTo || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "\\") ||
		strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return v
}

func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *server) pageHome(w http.ResponseWriter, r *http.Request) {
	if _, err := s.authenticate(w, r); err == nil {
		redirect(w, r, "/settings/security")
		return
	}
	redirect(w, r, "/signin")
}

func (s *server) pageSignUp(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signup", view{Title: "Create an account"})
}

func (s *server) pageSignUpPost(w http.ResponseWriter, r *http.Request) {
	email, pw := r.PostFormValue("email"), r.PostFormValue("password")
	v := view{Title: "Create an account", Email: email}
	if err := s.id.SignUp(r.Context(), email, pw); err != nil {
		s.formError(w, r, "signup", v, err)
		return
	}
	s.render(w, r, http.StatusOK, "message", view{Title: "Check your email", Notice: checkEmailMessage + " Open the link in it to confirm your address."})
}

func (s *server) pageSignIn(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", view{Title: "Sign in", ReturnTo: safeReturn(r.URL.Query().Get("return_to")), Notice: notices[r.URL.Query().Get("done")]})
}

func (s *server) pageSignInPost(w http.ResponseWriter, r *http.Request) {
	email, pw := r.PostFormValue("email"), r.PostFormValue("password")
	ret := safeReturn(r.PostFormValue("return_to"))
	v := view{Title: "Sign in", Email: email, ReturnTo: ret}
	res, err := s.id.SignIn(r.Context(), email, pw, identity.Client{IP: clientIP(r), DeviceID: s.deviceID(w, r)})
	if err != nil {
		s.formError(w, r, "signin", v, err)
		return
	}
	s.setSessionCookie(w, res.Token, res.Session.ExpiresAt)
	if res.MFARequired {
		redirect(w, r, "/signin/mfa"+returnQuery(ret))
		return
	}
	if res.PasswordChangeRequired {
		redirect(w, r, "/settings/security?done=password_breached")
		return
	}
	if ret == "" {
		ret = "/settings/security"
	}
	redirect(w, r, ret)
}

func returnQuery(ret string) string {
	if ret == "" {
		return ""
	}
	return "?return_to=" + url.QueryEscape(ret)
}

func (s *server) pageSignInMFA(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "mfa", view{Title: "Two-factor authentication", ReturnTo: safeReturn(r.URL.Query().Get("return_to"))})
}

func (s *server) pageSignInMFAPost(w http.ResponseWriter, r *http.Request) {
	ret := safeReturn(r.PostFormValue("return_to"))
	v := view{Title: "Two-factor authentication", ReturnTo: ret}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		redirect(w, r, "/signin")
		return
	}
	res, err := s.id.SignInMFA(r.Context(), c.Value, r.PostFormValue("code"), identity.Client{IP: clientIP(r), DeviceID: s.deviceID(w, r)})
	if err != nil {
		if fault.Is(err, fault.Unauthenticated) && fault.As(err).Code == "unauthenticated" {
			redirect(w, r, "/signin")
			return
		}
		s.formError(w, r, "mfa", v, err)
		return
	}
	s.setSessionCookie(w, res.Token, res.Session.ExpiresAt)
	if ret == "" {
		ret = "/settings/security"
	}
	redirect(w, r, ret)
}

func (s *server) pageSignOutPost(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.id.SignOut(r.Context(), c.Value); err != nil {
			s.errorPage(w, r, err)
			return
		}
	}
	s.clearSessionCookie(w)
	redirect(w, r, "/signin?done=signed_out")
}

// The verification and reset links open a page with a button: the token is
// only spent by the POST, so mail scanners that prefetch links do not use it.
func (s *server) pageVerifyEmail(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "verify", view{Title: "Confirm your email", Token: r.URL.Query().Get("token")})
}

func (s *server) pageVerifyEmailPost(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	if err := s.id.VerifyEmail(r.Context(), tok); err != nil {
		s.formError(w, r, "verify", view{Title: "Confirm your email", Token: tok}, err)
		return
	}
	s.render(w, r, http.StatusOK, "message", view{Title: "Email confirmed", Notice: "Your email address is confirmed.", Data: map[string]string{"Link": "/settings/security", "LinkText": "Continue"}})
}

func (s *server) pageReset(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "reset", view{Title: "Reset your password"})
}

func (s *server) pageResetPost(w http.ResponseWriter, r *http.Request) {
	email := r.PostFormValue("email")
	if err := s.id.RequestReset(r.Context(), email); err != nil {
		s.formError(w, r, "reset", view{Title: "Reset your password", Email: email}, err)
		return
	}
	s.render(w, r, http.StatusOK, "message", view{Title: "Check your email", Notice: checkEmailMessage + " The link in it lets you choose a new password."})
}

func (s *server) pageResetConfirm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "reset_confirm", view{Title: "Choose a new password", Token: r.URL.Query().Get("token")})
}

func (s *server) pageResetConfirmPost(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	if err := s.id.ConfirmReset(r.Context(), tok, r.PostFormValue("new_password")); err != nil {
		s.formError(w, r, "reset_confirm", view{Title: "Choose a new password", Token: tok}, err)
		return
	}
	s.clearSessionCookie(w)
	redirect(w, r, "/signin?done=password_reset")
}

// notices are the fixed messages a redirect can ask a page to show.
var notices = map[string]string{
	"signed_out":        "You are signed out.",
	"password_reset":    "Your password was reset and every session signed out. Sign in with the new password.",
	"password_changed":  "Your password was changed and your other sessions signed out.",
	"password_breached": "Your password appears in a list of breached or common passwords. Please change it now.",
	"session_revoked":   "The session was signed out.",
	"totp_disabled":     "Two-factor authentication is off.",
	"verify_sent":       "A new confirmation link is on its way.",
}

type securityData struct {
	Verified   bool
	MFAEnabled bool
	Breached   bool
	SessionID  string
	Sessions   []*sessionJSON
}

// requireSession authenticates a page request or sends the browser to sign in.
func (s *server) requireSession(w http.ResponseWriter, r *http.Request) (identity.Session, bool) {
	sess, err := s.authenticate(w, r)
	if err != nil {
		if fault.Is(err, fault.Unauthenticated) && fault.As(err).Code == "mfa_pending" {
			redirect(w, r, "/signin/mfa?return_to="+url.QueryEscape(r.URL.Path))
		} else if fault.Is(err, fault.Unauthenticated) {
			redirect(w, r, "/signin?return_to="+url.QueryEscape(r.URL.Path))
		} else {
			s.errorPage(w, r, err)
		}
		return identity.Session{}, false
	}
	return sess, true
}

func (s *server) securityView(w http.ResponseWriter, r *http.Request, sess identity.Session) (view, bool) {
	u, err := s.id.User(r.Context(), sess.UserID)
	if err != nil {
		s.errorPage(w, r, err)
		return view{}, false
	}
	list, err := s.id.Sessions(r.Context(), sess.UserID)
	if err != nil {
		s.errorPage(w, r, err)
		return view{}, false
	}
	d := securityData{Verified: !u.EmailVerifiedAt.IsZero(), MFAEnabled: u.TOTPEnabled, Breached: u.PasswordCompromised, SessionID: sess.ID}
	for _, x := range list {
		if !x.Pending {
			d.Sessions = append(d.Sessions, toSessionJSON(x, sess.ID))
		}
	}
	return view{Title: "Security settings", SignedIn: true, Email: u.Email, Data: d}, true
}

func (s *server) pageSecurity(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.requireSession(w, r)
	if !ok {
		return
	}
	v, ok := s.securityView(w, r, sess)
	if !ok {
		return
	}
	v.Notice = notices[r.URL.Query().Get("done")]
	s.render(w, r, http.StatusOK, "security", v)
}

// securityError re-renders the settings page with an error.
func (s *server) securityError(w http.ResponseWriter, r *http.Request, sess identity.Session, err error) {
	v, ok := s.securityView(w, r, sess)
	if !ok {
		return
	}
	s.formError(w, r, "security", v, err)
}

func (s *server) pagePasswordPost(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.requireSession(w, r)
	if !ok {
		return
	}
	tok, err := s.id.ChangePassword(r.Context(), sess, r.PostFormValue("current_password"), r.PostFormValue("new_password"))
	if err != nil {
		s.securityError(w, r, sess, err)
		return
	}
	s.setSessionCookie(w, tok, sess.ExpiresAt)
	redirect(w, r, "/settings/security?done=password_changed")
}

func (s *server) pageRevokeSessionPost(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.requireSession(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := s.id.RevokeSession(r.Context(), sess.UserID, id); err != nil {
		s.securityError(w, r, sess, err)
		return
	}
	if id == sess.ID {
		s.clearSessionCookie(w)
		redirect(w, r, "/signin?done=signed_out")
		return
	}
	redirect(w, r, "/settings/security?done=session_revoked")
}

type totpData struct {
	Secret string
	QR     template.URL
}

func (s *server) pageTOTPBeginPost(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.requireSession(w, r)
	if !ok {
		return
	}
	en, err := s.id.BeginTOTP(r.Context(), sess.UserID)
	if err != nil {
		s.securityError(w, r, sess, err)
		return
	}
	s.render(w, r, http.StatusOK, "totp", view{Title: "Set up two-factor authentication", SignedIn: true,
		Data: totpData{Secret: en.Secret, QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRPNG))}})
}

func (s *server) pageTOTPConfirmPost(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.requireSession(w, r)
	if !ok {
		return
	}
	codes, err := s.id.ConfirmTOTP(r.Context(), sess.UserID, r.PostFormValue("code"))
	if err != nil {
		s.securityError(w, r, sess, err)
		return
	}
	if tok, err := s.id.Rotate(r.Context(), sess); err == nil {
		s.setSessionCookie(w, tok, sess.ExpiresAt)
	}
	s.render(w, r, http.StatusOK, "recovery", view{Title: "Save your recovery codes", SignedIn: true, Data: codes})
}

func (s *server) pageTOTPDisablePost(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.requireSession(w, r)
	if !ok {
		return
	}
	if err := s.id.DisableTOTP(r.Context(), sess.UserID, r.PostFormValue("password"), r.PostFormValue("code")); err != nil {
		s.securityError(w, r, sess, err)
		return
	}
	redirect(w, r, "/settings/security?done=totp_disabled")
}

func (s *server) pageResendVerificationPost(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.requireSession(w, r)
	if !ok {
		return
	}
	if err := s.id.ResendVerification(r.Context(), sess.UserID); err != nil {
		s.securityError(w, r, sess, err)
		return
	}
	redirect(w, r, "/settings/security?done=verify_sent")
}

type trustFamily struct {
	Name    string
	Reports []trust.Report
}

type trustData struct {
	// Summary is keyed by the status as a string: the template indexes it
	// with string literals, which text/template refuses for a map keyed by
	// trust.Status.
	Summary  map[string]int
	Families []trustFamily
	Checked  time.Time
}

func (s *server) pageTrust(w http.ResponseWriter, r *http.Request) {
	reports := s.trust.Run(r.Context())
	doc := trust.NewDocument(reports)
	byFam := map[string]*trustFamily{}
	var order []string
	for _, rep := range reports {
		f := byFam[rep.Family]
		if f == nil {
			f = &trustFamily{Name: rep.Family}
			byFam[rep.Family] = f
			order = append(order, rep.Family)
		}
		f.Reports = append(f.Reports, rep)
	}
	d := trustData{Summary: map[string]int{}, Checked: doc.GeneratedAt}
	for st, n := range doc.Summary {
		d.Summary[string(st)] = n
	}
	for _, n := range order {
		d.Families = append(d.Families, *byFam[n])
	}
	w.Header().Set("Cache-Control", "public, max-age=30")
	s.renderPublic(w, r, "trust", view{Title: "Trust center", Data: d})
}

// renderPublic renders a page that may be cached (no personal data).
func (s *server) renderPublic(w http.ResponseWriter, r *http.Request, page string, v view) {
	t := s.pages.t[page]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error("render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}
