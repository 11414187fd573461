package tlsconf

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// RedirectHandler is the whole of the plain-HTTP listener (TLS-1): every
// request is answered with a redirect to the same host and path on HTTPS,
// and nothing is ever served in plaintext. httpsPort is the public HTTPS
// port ("" or "443" leaves it out of the URL). GET and HEAD get 301; other
// methods get 308 so a client that insists on following keeps its method
// and body on the secure side. No HSTS here: browsers ignore it over HTTP.
func RedirectHandler(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/\\@ ") {
			http.Error(w, "use HTTPS", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") { // IPv6 literal
			host = "[" + strings.Trim(host, "[]") + "]"
		}
		if httpsPort != "" && httpsPort != "443" {
			host += ":" + httpsPort
		}
		path := r.URL.RequestURI()
		if !strings.HasPrefix(path, "/") {
			path = "/"
		}
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusPermanentRedirect
		}
		w.Header().Set("Connection", "close")
		w.Header().Set("Location", "https://"+host+path)
		w.WriteHeader(code)
	})
}

// RedirectServer wraps RedirectHandler in a server with tight limits: the
// redirect listener reads one small request per connection and answers.
func RedirectServer(httpsPort string) *http.Server {
	return &http.Server{
		Handler:           RedirectHandler(httpsPort),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
}
