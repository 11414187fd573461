package store

import (
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rampartsec/rampart/internal/fault"
)

// CheckTransport applies TLS-3 to a PostgreSQL connection string without
// connecting: every host pgx might try (including the plaintext fallback
// that sslmode prefer and allow add) must either be loopback or a unix
// socket, or use TLS. allowInsecure lifts the rule. The answer follows pgx's
// own parsing, environment variables such as PGSSLMODE included, so it
// judges exactly the connections pgx would make.
func CheckTransport(dsn string, allowInsecure bool) error {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return fault.Wrap(fault.Invalid, "invalid_database_dsn", "invalid PostgreSQL connection string", err)
	}
	return checkTransport(cfg, allowInsecure)
}

func checkTransport(cfg *pgconn.Config, allowInsecure bool) error {
	if allowInsecure {
		return nil
	}
	type target struct {
		host   string
		secure bool
	}
	targets := []target{{cfg.Host, cfg.TLSConfig != nil}}
	for _, fb := range cfg.Fallbacks {
		targets = append(targets, target{fb.Host, fb.TLSConfig != nil})
	}
	for _, t := range targets {
		if !t.secure && !isLocalHost(t.host) {
			return fault.Invalidf("insecure_database_transport",
				"refusing a plaintext connection to the non-loopback database host %q: set sslmode=verify-full (or require), or allow insecure transport explicitly", t.host)
		}
	}
	return nil
}

// verifiesServer reports whether every TLS connection pgx may make checks
// the server certificate (sslmode verify-ca or verify-full).
func verifiesServer(cfg *pgconn.Config) bool {
	if cfg.TLSConfig != nil && cfg.TLSConfig.InsecureSkipVerify && cfg.TLSConfig.VerifyPeerCertificate == nil && !isLocalHost(cfg.Host) {
		return false
	}
	for _, fb := range cfg.Fallbacks {
		if fb.TLSConfig != nil && fb.TLSConfig.InsecureSkipVerify && fb.TLSConfig.VerifyPeerCertificate == nil && !isLocalHost(fb.Host) {
			return false
		}
	}
	return true
}

// isLocalHost reports whether host is a unix socket directory or a loopback
// address; "localhost" is taken by name, without resolving it.
func isLocalHost(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
