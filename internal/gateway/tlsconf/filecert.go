package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// reloadCheckInterval bounds how often GetCertificate stats the files: the
// check runs on the handshake path, so it must be rare, yet a renewed
// certificate (certbot, cert-manager) should be picked up within seconds.
const reloadCheckInterval = 5 * time.Second

// FileCert serves a certificate and key from PEM files and picks up
// replacements without a restart, so external renewal tools can rotate the
// certificate under a running listener. A broken replacement never takes the
// listener down: the previous pair keeps being served and the error is logged.
// It is safe for concurrent use.
type FileCert struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	lastCheck time.Time
}

// fileStamp identifies a version of a file cheaply. Size is included so two
// writes within the filesystem's timestamp granularity are still noticed.
type fileStamp struct {
	mod  time.Time
	size int64
}

// NewFileCert loads certFile and keyFile (PEM) at once and returns an error
// of kind Invalid if they are unreadable, do not match or the certificate
// has expired, so a misconfigured server fails at startup rather than at the
// first handshake. log and now default to a discarding logger and time.Now.
func NewFileCert(certFile, keyFile string, log *slog.Logger, now func() time.Time) (*FileCert, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	f := &FileCert{certFile: certFile, keyFile: keyFile, log: log, now: now}
	cs, ks, err := f.stat()
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "tls_cert_unreadable", "TLS certificate or key file is unreadable", err)
	}
	cert, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cert, f.certStamp, f.keyStamp, f.lastCheck = cert, cs, ks, now()
	return f, nil
}

// GetCertificate returns the current certificate; it fits
// tls.Config.GetCertificate. At most every few seconds it checks whether
// either file changed and, if so, loads the new pair.
func (f *FileCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.now()
	if t.Sub(f.lastCheck) < reloadCheckInterval && !t.Before(f.lastCheck) {
		return f.cert, nil
	}
	f.lastCheck = t
	cs, ks, err := f.stat()
	if err != nil {
		// Typically a renewal tool mid-rename; the next check retries.
		f.log.Warn("tls: cannot stat certificate files, keeping current certificate",
			"cert_file", f.certFile, "key_file", f.keyFile, "error", err)
		return f.cert, nil
	}
	if cs == f.certStamp && ks == f.keyStamp {
		return f.cert, nil
	}
	// Remember the stamps even if loading fails: a bad pair is reported
	// once, not every few seconds, and the next write to either file
	// (e.g. the key following the certificate) triggers a new attempt.
	f.certStamp, f.keyStamp = cs, ks
	cert, err := f.load()
	if err != nil {
		f.log.Error("tls: new certificate files rejected, keeping current certificate",
			"cert_file", f.certFile, "key_file", f.keyFile, "error", err,
			"current_not_after", f.cert.Leaf.NotAfter)
		return f.cert, nil
	}
	f.cert = cert
	f.log.Info("tls: certificate reloaded",
		"cert_file", f.certFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
	return f.cert, nil
}

// Leaf returns the parsed certificate currently served, for live checks
// (e.g. warning when NotAfter is near). It does not trigger a reload.
func (f *FileCert) Leaf() *x509.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cert.Leaf
}

func (f *FileCert) stat() (certStamp, keyStamp fileStamp, err error) {
	ci, err := os.Stat(f.certFile)
	if err != nil {
		return fileStamp{}, fileStamp{}, err
	}
	ki, err := os.Stat(f.keyFile)
	if err != nil {
		return fileStamp{}, fileStamp{}, err
	}
	return fileStamp{ci.ModTime(), ci.Size()}, fileStamp{ki.ModTime(), ki.Size()}, nil
}

func (f *FileCert) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "tls_cert_unreadable", "TLS certificate file is unreadable", err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "tls_cert_unreadable", "TLS key file is unreadable", err)
	}
	return parsePair(certPEM, keyPEM, f.now())
}

// parsePair parses a PEM certificate chain and key and checks that they
// match and that the leaf has not expired at t. The parse error never
// contains key material (crypto/tls reports only structural problems).
func parsePair(certPEM, keyPEM []byte, t time.Time) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "tls_cert_invalid", "TLS certificate and key are invalid or do not match", err)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fault.Wrap(fault.Invalid, "tls_cert_invalid", "TLS certificate is invalid", err)
		}
		cert.Leaf = leaf
	}
	if !t.Before(cert.Leaf.NotAfter) {
		return nil, fault.New(fault.Invalid, "tls_cert_expired", "TLS certificate has expired")
	}
	return &cert, nil
}
