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
	for _, t := range targets(cfg) {
		if t.TLSConfig == nil && !isLocalHost(t.Host) {
			return fault.Invalidf("insecure_database_transport",
				"refusing a plaintext connection to the non-loopback database host %q: set sslmode=verify-full (or require), or allow insecure transport explicitly", t.Host)
		}
	}
	return nil
}

// verifiesServer reports whether every TLS connection pgx may make to a
// remote host checks the server certificate (sslmode verify-ca or
// verify-full; require only encrypts).
func verifiesServer(cfg *pgconn.Config) bool {
	for _, t := range targets(cfg) {
		if t.TLSConfig != nil && t.TLSConfig.InsecureSkipVerify && t.TLSConfig.VerifyPeerCertificate == nil && !isLocalHost(t.Host) {
			return false
		}
	}
	return true
}

// targets lists every host and TLS setting pgx may try, in order.
func targets(cfg *pgconn.Config) []*pgconn.FallbackConfig {
	return append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
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
