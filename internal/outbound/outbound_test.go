package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// remoteHost is a name that is not loopback by the rule; the tests' dialer
// carries it to a local server, so "allowed" can be shown to work without
// leaving the machine. The rule itself is not replaced: only where the
// bytes go once it has said yes.
const remoteHost = "remote.example.com"

var errAny = errors.New("any error")

var quiet = log.New(io.Discard, "", 0)

type servers struct {
	plain, secure, old *httptest.Server
	pool               *x509.CertPool
	plainHits          atomic.Int64
}

func newServers(t *testing.T) *servers {
	t.Helper()
	s := &servers{}
	s.plain = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.plainHits.Add(1)
		_, _ = io.WriteString(w, "plain")
	}))
	t.Cleanup(s.plain.Close)
	s.secure = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://"+remoteHost+"/landed", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "secure")
	}))
	s.secure.Config.ErrorLog = quiet // refused handshakes are the point
	s.secure.StartTLS()
	t.Cleanup(s.secure.Close)
	s.old = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "old") }))
	s.old.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} //nolint:gosec // the server the client must refuse
	s.old.Config.ErrorLog = quiet
	s.old.StartTLS()
	t.Cleanup(s.old.Close)
	s.pool = x509.NewCertPool()
	s.pool.AddCert(s.secure.Certificate())
	s.pool.AddCert(s.old.Certificate())
	return s
}

// client is Client(o) with the test dialer; follow makes it follow
// redirects, as a caller's own http.Client over Transport might.
func (s *servers) client(o Options, follow bool) *http.Client {
	tr := Transport(o)
	dial := tr.DialContext
	plainAddr := s.plain.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == remoteHost+":80" {
			addr = plainAddr
		}
		return dial(ctx, network, addr)
	}
	c := client(tr, o.AllowPlaintext, 5*time.Second)
	if follow {
		c.CheckRedirect = nil
	}
	return c
}

func TestClient(t *testing.T) {
	s := newServers(t)
	tests := []struct {
		name      string
		opts      Options
		follow    bool
		url       string
		wantErr   error // nil: success; errAny: some error
		wantCode  int
		wantPlain bool // the plaintext server is reached
	}{
		{name: "https with the right CA", opts: Options{RootCAs: s.pool}, url: s.secure.URL, wantCode: 200},
		{name: "http to loopback", url: s.plain.URL, wantCode: 200, wantPlain: true},
		{name: "http to a remote name refused", url: "http://" + remoteHost + "/", wantErr: ErrPlaintextRefused},
		{name: "http to a remote address refused", url: "http://192.0.2.1:81/", wantErr: ErrPlaintextRefused},
		{name: "http to a private address refused", url: "http://10.0.0.5/", wantErr: ErrPlaintextRefused},
		{name: "http to a localhost look-alike refused", url: "http://localhost.example.org/", wantErr: ErrPlaintextRefused},
		{name: "http to a remote name allowed explicitly", opts: Options{AllowPlaintext: true}, url: "http://" + remoteHost + "/", wantCode: 200, wantPlain: true},
		{name: "http refused through the environment proxy too", opts: Options{EnvironmentProxy: true}, url: "http://" + remoteHost + "/", wantErr: ErrPlaintextRefused},
		{name: "redirect from https to remote http refused", opts: Options{RootCAs: s.pool}, follow: true, url: s.secure.URL + "/redirect", wantErr: ErrPlaintextRefused},
		{name: "redirect not followed by Client", opts: Options{RootCAs: s.pool}, url: s.secure.URL + "/redirect", wantCode: http.StatusFound},
		{name: "server below TLS 1.2 refused", opts: Options{RootCAs: s.pool}, url: s.old.URL, wantErr: errAny},
		{name: "self-signed refused without RootCAs", url: s.secure.URL, wantErr: errAny},
		{name: "other schemes refused", opts: Options{AllowPlaintext: true}, url: "ftp://" + remoteHost + "/", wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.client(tt.opts, tt.follow)
			defer c.CloseIdleConnections()
			before := s.plainHits.Load()
			resp, err := c.Get(tt.url)
			if resp != nil {
				resp.Body.Close()
			}
			if err != nil {
				t.Log(err)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantErr == errAny && err == nil:
				t.Fatal("expected an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && resp.StatusCode != tt.wantCode:
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if got := s.plainHits.Load() > before; got != tt.wantPlain {
				t.Fatalf("plaintext server reached: %v, want %v", got, tt.wantPlain)
			}
		})
	}

	// The refusal of the old server is the client's doing: it does
	// complete a handshake with a client that accepts TLS 1.1.
	c, err := tls.Dial("tcp", s.old.Listener.Addr().String(), &tls.Config{MinVersion: tls.VersionTLS10, RootCAs: s.pool, ServerName: "example.com"}) //nolint:gosec // control
	if err != nil {
		t.Fatalf("control handshake with the TLS 1.1 server: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS11 {
		t.Fatalf("control handshake negotiated %x", v)
	}
	c.Close()
}

func TestTransportVerifies(t *testing.T) {
	tr := Transport(Options{})
	if c := tr.TLSClientConfig; c == nil || c.InsecureSkipVerify || c.MinVersion < tls.VersionTLS12 {
		t.Fatal("transport does not verify TLS 1.2+")
	}
	if tr.Proxy == nil {
		t.Fatal("no per-request check")
	}
	// Refused before anything is dialled: 192.0.2.1 (TEST-NET-1) would
	// otherwise hang until the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://192.0.2.1/", strings.NewReader("secret"))
	start := time.Now()
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrPlaintextRefused) || time.Since(start) > time.Second {
		t.Fatalf("RoundTrip: %v after %v", err, time.Since(start))
	}
	if fault.KindOf(ErrPlaintextRefused) != fault.Forbidden {
		t.Fatal("ErrPlaintextRefused is not Forbidden")
	}
}

// Guard holds the rule over a transport that knows nothing of it.
func TestGuard(t *testing.T) {
	s := newServers(t)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = TLSConfig("", s.pool)
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: Guard(base, false), Timeout: 5 * time.Second}
	resp, err := c.Get(s.secure.URL + "/redirect")
	if resp != nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrPlaintextRefused) {
		t.Fatalf("redirect to remote http: %v", err)
	}
	if err != nil && strings.Contains(fault.As(errors.Unwrap(err)).Message, remoteHost) {
		t.Fatal("the refusal quotes the URL")
	}
	resp, err = c.Get(s.plain.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestCheckPlaintext(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:6379": true, "127.8.9.10:25": true, "[::1]:5432": true, "::1": true, "localhost:25": true, "LOCALHOST": true,
		"db.internal:5432": false, "10.0.0.5:6379": false, "localhost.example.org:25": false, "127.example.com:80": false,
		"app.localhost:80": false, "0.0.0.0:80": false,
	} {
		if got := CheckPlaintext(addr, false) == nil; got != want {
			t.Errorf("CheckPlaintext(%s) ok=%v, want %v", addr, got, want)
		}
		if CheckPlaintext(addr, true) != nil {
			t.Errorf("CheckPlaintext(%s, allowed) refused", addr)
		}
	}
	if _, err := (Dialer{}).DialContext(context.Background(), "tcp", "192.0.2.1:6379"); !errors.Is(err, ErrPlaintextRefused) {
		t.Errorf("Dialer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := (Dialer{}).DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("Dialer to loopback: %v", err)
	}
	c.Close()
}

func TestParseURL(t *testing.T) {
	const secret = "T000/B000/XXXXsecret"
	for _, tc := range []struct {
		url   string
		allow bool
		want  error
	}{
		{"https://hooks.example.com/" + secret, false, nil},
		{"http://127.0.0.1:8080/" + secret, false, nil},
		{"http://[::1]:8080/hook", false, nil},
		{"http://hooks.example.com/" + secret, false, ErrPlaintextRefused},
		{"http://hooks.example.com/" + secret, true, nil},
		{"ftp://hooks.example.com/" + secret, true, ErrInvalidURL},
		{"/" + secret, true, ErrInvalidURL},
		{"https://%zz/" + secret, true, ErrInvalidURL},
	} {
		_, err := ParseURL(tc.url, tc.allow)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("ParseURL(%q, %v) = %v, want %v", tc.url, tc.allow, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes the URL: %v", err)
		}
	}
}
