package web

import "net/http"

// routes lists every route of the public handler in one place.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()

	// JSON API (documented in docs/API.md).
	mux.HandleFunc("POST /v1/signup", s.apiSignUp)
	mux.HandleFunc("POST /v1/signin", s.apiSignIn)
	mux.HandleFunc("POST /v1/signin/mfa", s.apiSignInMFA)
	mux.HandleFunc("POST /v1/signout", s.apiSignOut)
	mux.HandleFunc("GET /v1/me", s.apiMe)
	mux.HandleFunc("POST /v1/verify-email", s.apiVerifyEmail)
	mux.HandleFunc("POST /v1/verify-email/resend", s.apiResendVerification)
	mux.HandleFunc("POST /v1/password", s.apiChangePassword)
	mux.HandleFunc("POST /v1/password/reset", s.apiRequestReset)
	mux.HandleFunc("POST /v1/password/reset/confirm", s.apiConfirmReset)
	mux.HandleFunc("GET /v1/sessions", s.apiSessions)
	mux.HandleFunc("DELETE /v1/sessions/{id}", s.apiRevokeSession)
	mux.HandleFunc("POST /v1/mfa/totp", s.apiBeginTOTP)
	mux.HandleFunc("POST /v1/mfa/totp/confirm", s.apiConfirmTOTP)
	mux.HandleFunc("DELETE /v1/mfa/totp", s.apiDisableTOTP)
	mux.HandleFunc("POST /v1/mfa/step-up", s.apiStepUp) // authn.go

	// Pages (server-rendered, no JavaScript).
	mux.HandleFunc("GET /{$}", s.pageHome)
	mux.HandleFunc("GET /signup", s.pageSignUp)
	mux.HandleFunc("POST /signup", s.pageSignUpPost)
	mux.HandleFunc("GET /signin", s.pageSignIn)
	mux.HandleFunc("POST /signin", s.pageSignInPost)
	mux.HandleFunc("GET /signin/mfa", s.pageSignInMFA)
	mux.HandleFunc("POST /signin/mfa", s.pageSignInMFAPost)
	mux.HandleFunc("POST /signout", s.pageSignOutPost)
	mux.HandleFunc("GET /verify-email", s.pageVerifyEmail)
	mux.HandleFunc("POST /verify-email", s.pageVerifyEmailPost)
	mux.HandleFunc("GET /reset", s.pageReset)
	mux.HandleFunc("POST /reset", s.pageResetPost)
	mux.HandleFunc("GET /reset/confirm", s.pageResetConfirm)
	mux.HandleFunc("POST /reset/confirm", s.pageResetConfirmPost)
	mux.HandleFunc("GET /settings/security", s.pageSecurity)
	mux.HandleFunc("POST /settings/password", s.pagePasswordPost)
	mux.HandleFunc("POST /settings/sessions/{id}/revoke", s.pageRevokeSessionPost)
	mux.HandleFunc("POST /settings/totp/begin", s.pageTOTPBeginPost)
	mux.HandleFunc("POST /settings/totp/confirm", s.pageTOTPConfirmPost)
	mux.HandleFunc("POST /settings/totp/disable", s.pageTOTPDisablePost)
	mux.HandleFunc("POST /settings/verify-email/resend", s.pageResendVerificationPost)

	// Workspaces, roles, authorization, API keys, access reviews, support
	// access (workspaces.go) and SCIM 2.0 provisioning (scim.go).
	s.workspaceRoutes(mux)
	s.scimRoutes(mux)
	s.auditRoutes(mux)       // the audit trail API (auditapi.go)
	s.tokenRoutes(mux)       // JWKS and signing keys (tokens.go)
	s.oauthRoutes(mux)       // OAuth 2.0 / OpenID Connect provider and clients (oauth.go)
	s.vaultRoutes(mux)       // field encryption and workspace keys (vault.go)
	s.secretsRoutes(mux)     // secrets store (secrets.go)
	s.integrationRoutes(mux) // third-party integrations (integrations.go)
	s.ingestRoutes(mux)      // event ingestion (ingest.go)

	// Trust (OPS-3, OPS-5).
	mux.HandleFunc("GET /trust", s.pageTrust)
	mux.HandleFunc("GET /trust.json", s.apiTrust)
	mux.HandleFunc("GET /.well-known/security.txt", s.securityTxtHandler)
	mux.Handle("GET /static/", staticHandler())

	return s.withFallback(mux)
}

// withFallback gives unmatched requests (404, 405) Rampart's error shape
// instead of the mux's plain text.
func (s *server) withFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		cw := &captureWriter{header: http.Header{}}
		h.ServeHTTP(cw, r)
		if allow := cw.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if cw.status == http.StatusMethodNotAllowed {
			s.fail(w, r, errMethodNotAllowed)
			return
		}
		if cw.status >= 300 && cw.status < 400 { // mux redirects (path cleaning)
			w.Header().Set("Location", cw.header.Get("Location"))
			w.WriteHeader(cw.status)
			return
		}
		s.fail(w, r, errRouteNotFound)
	})
}

// captureWriter swallows the mux's own fallback response.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
