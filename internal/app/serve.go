package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/connlimit"
	"github.com/rampartsec/rampart/internal/gateway/tlsconf"
)

// Listening tells the caller where the servers listen (port 0 resolves here).
type Listening struct {
	HTTPS        string
	Admin        string
	HTTPRedirect string // "" unless gateway.http_redirect_listen is set
}

// certificate returns the listener's certificate source: files with hot
// reload, or a self-signed localhost certificate kept in the data dir.
func (a *App) certificate() (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	if a.Config.TLS.CertFile != "" {
		fc, err := tlsconf.NewFileCert(a.Config.TLS.CertFile, a.Config.TLS.KeyFile, a.Log, a.now)
		if err != nil {
			return nil, fmt.Errorf("tls certificate: %w", err)
		}
		return fc.GetCertificate, nil
	}
	cert, err := tlsconf.LoadOrCreateSelfSigned(a.Config.DataDir, []string{publicHost(a.Config.PublicURL)}, a.now, a.rand)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	if !a.Config.Dev {
		a.Log.Warn("serving a self-signed certificate; set tls.cert_file and tls.key_file for production")
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }, nil
}

// Serve runs the HTTPS server and the admin server until ctx ends, then
// shuts both down gracefully. ready, if set, is called once both listen.
func (a *App) Serve(ctx context.Context, ready func(Listening)) error {
	getCert, err := a.certificate()
	if err != nil {
		return err
	}
	gc := a.Config.Gateway
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.Config.Listen, err)
	}
	adminLn, err := net.Listen("tcp", a.Config.AdminListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin listen %s: %w", a.Config.AdminListen, err)
	}
	var redirectLn net.Listener
	if gc.HTTPRedirectListen != "" {
		if redirectLn, err = net.Listen("tcp", gc.HTTPRedirectListen); err != nil {
			ln.Close()
			adminLn.Close()
			return fmt.Errorf("http redirect listen %s: %w", gc.HTTPRedirectListen, err)
		}
		a.redirectAddr = redirectLn.Addr().String()
	}
	a.listenAddr = ln.Addr().String()
	errLog := slog.NewLogLogger(a.Log.Handler(), slog.LevelDebug) // TLS handshake noise stays at debug
	tlsCfg := tlsconf.ServerConfig(getCert)
	if a.ticketKeys != nil {
		a.ticketKeys.Attach(tlsCfg)
	}
	// The timeouts and header cap are APP-4's: ReadHeaderTimeout cuts off
	// a slowloris client; streams (SSE, WebSocket) lift the read and write
	// deadlines per request in the gateway.
	srv := &http.Server{
		Handler:           a.publicHandler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: gc.ReadHeaderTimeout,
		ReadTimeout:       gc.ReadTimeout,
		WriteTimeout:      gc.WriteTimeout,
		IdleTimeout:       gc.IdleTimeout,
		MaxHeaderBytes:    gc.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	admin := &http.Server{Handler: a.Admin, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, ErrorLog: errLog}

	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(tls.NewListener(a.limitConnections(ln), srv.TLSConfig)) }()
	go func() { errc <- admin.Serve(adminLn) }()
	var redirect *http.Server
	if redirectLn != nil {
		_, port, _ := net.SplitHostPort(publicHostPort(a.Config.PublicURL, ln.Addr().String()))
		redirect = tlsconf.RedirectServer(port)
		redirect.ErrorLog = errLog
		go func() { errc <- redirect.Serve(redirectLn) }()
	}
	a.Log.Info("rampart serving", "https", ln.Addr().String(), "admin", adminLn.Addr().String(), "http_redirect", a.redirectAddr,
		"public_url", a.Config.PublicURL, "database", a.Store.Engine(), "dev", a.Config.Dev, "routes", len(gc.AllRoutes()))
	if a.Outbox != "" {
		a.Log.Info("mail is written to the outbox", "dir", a.Outbox)
	}
	if ready != nil {
		ready(Listening{HTTPS: ln.Addr().String(), Admin: adminLn.Addr().String(), HTTPRedirect: a.redirectAddr})
	}
	jobs, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	go a.runJobs(jobs)
	go a.runSinks(jobs)
	go a.runVerification(jobs)
	for _, job := range a.jobs {
		go job(jobs)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shCtx)
	_ = admin.Shutdown(shCtx)
	if redirect != nil {
		_ = redirect.Shutdown(shCtx)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	a.Log.Info("rampart stopped")
	return nil
}

// runJobs runs the periodic housekeeping: expired sessions are swept every
// ten minutes; Admins of workspaces with an overdue access review are
// reminded once a day (the first time an hour after start, so restarts do
// not mail). On a cluster every node runs them; the sweep is idempotent and
// a reminder may go out once per node until jobs get a leader.
func (a *App) runJobs(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	nextRemind := a.now().Add(time.Hour)
	for {
		if n, err := a.Identity.SweepExpired(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("session sweep failed", "err", err)
		} else if n > 0 {
			a.Log.Info("expired sessions swept", "count", n)
		}
		if !a.now().Before(nextRemind) {
			nextRemind = a.now().Add(24 * time.Hour)
			if n, err := a.Tenancy.RemindDueReviews(ctx); err != nil && ctx.Err() == nil {
				a.Log.Error("access review reminders failed", "err", err)
			} else if n > 0 {
				a.Log.Info("access review reminders sent", "workspaces", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// limitConnections caps open connections on the HTTPS listener in total
// and per client address (APP-4).
func (a *App) limitConnections(ln net.Listener) net.Listener {
	gc := a.Config.Gateway
	if gc.MaxConnections <= 0 && gc.MaxConnectionsPerIP <= 0 {
		return ln
	}
	l := connlimit.NewListener(ln, gc.MaxConnections, gc.MaxConnectionsPerIP)
	l.Exempt = a.trustedProxies() // load balancers carry many clients
	a.connLimit.Store(l)
	return l
}

// publicHostPort is host:port of the public URL, or of the listener when
// the public URL names no port (so redirects reach the real port in dev).
func publicHostPort(publicURL, listen string) string {
	u := strings.TrimPrefix(publicURL, "https://")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	if _, _, err := net.SplitHostPort(u); err == nil {
		return u
	}
	if u != "" {
		return u + ":443"
	}
	return listen
}

// RedirectAddr is where the plain-HTTP redirect listener listens ("" when
// it is off or Rampart is not serving).
func (a *App) RedirectAddr() string { return a.redirectAddr }
