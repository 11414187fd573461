package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/outbound"
)

// SyslogConfig configures a Syslog target.
type SyslogConfig struct {
	Name string // sink name, the cursor key; default "syslog"
	// URL is "tls://host:port" (RFC 5425; port 6514 by convention) or
	// "tcp://host:port" for plaintext octet-counted TCP (RFC 6587), which is
	// accepted only towards loopback or with AllowInsecure (TLS-3).
	URL           string
	RootCAs       *x509.CertPool // nil: system roots
	AllowInsecure bool
	Hostname      string // HOSTNAME field; default os.Hostname()
	AppName       string // APP-NAME field; default "rampart"
	// SDID names the structured-data element. The default uses 32473, the
	// enterprise number RFC 5612 reserves for documentation; an operator
	// with a private enterprise number can put theirs here.
	SDID    string
	Timeout time.Duration // dial and write of one batch; default 15s
}

// Syslog delivers events as RFC 5424 messages, one per event, in RFC 5425
// octet-counting frames ("LEN SP MSG") over one long-lived TLS connection.
//
// PRI uses facility authpriv (10): the trail holds security decisions and
// authpriv is where syslog daemons keep those away from general logs.
// Severity is notice for successes and warning for failures and denials.
// The event's fields are repeated as SD-PARAMs so a SIEM can index them
// without parsing the MSG, which is the event's JSON (the same document the
// webhook and file targets write), preceded by the UTF-8 BOM as RFC 5424
// §6.4 requires.
//
// Syslog has no application-level acknowledgement: a batch counts as
// delivered once written to the connection. Before each batch the connection
// is probed and reopened if the receiver closed it, so a restarted receiver
// does not silently swallow a batch into a dead socket.
type Syslog struct {
	name      string
	addr      string
	tlsConfig *tls.Config // nil: plaintext
	// allowPlaintext is SyslogConfig.AllowInsecure: the dialer applies the
	// TLS-3 rule again at each connection.
	allowPlaintext bool
	hostname       string
	appName        string
	sdID           string
	timeout        time.Duration

	mu   sync.Mutex
	conn net.Conn
}

const (
	facilityAuthpriv = 10
	severityWarning  = 4
	severityNotice   = 5
)

// NewSyslog validates the configuration; it does not connect.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.Port() == "" || (u.Scheme != "tls" && u.Scheme != "tcp") {
		return nil, fault.New(fault.Invalid, "syslog_url_invalid", "syslog URL must be tls://host:port or tcp://host:port")
	}
	s := &Syslog{
		name:     cfg.Name,
		addr:     u.Host,
		hostname: headerField(cfg.Hostname, 255),
		appName:  headerField(cfg.AppName, 48),
		sdID:     cfg.SDID,
		timeout:  cfg.Timeout,
	}
	if u.Scheme == "tls" {
		s.tlsConfig = outbound.TLSConfig(u.Hostname(), cfg.RootCAs)
	} else if err := outbound.CheckPlaintext(u.Host, cfg.AllowInsecure); err != nil {
		return nil, fault.Wrap(fault.Invalid, "endpoint_insecure", "plaintext syslog to a non-loopback host is refused; use tls:// or allow insecure explicitly", err)
	}
	s.allowPlaintext = cfg.AllowInsecure
	if s.name == "" {
		s.name = "syslog"
	}
	if cfg.Hostname == "" {
		h, _ := os.Hostname()
		s.hostname = headerField(h, 255)
	}
	if cfg.AppName == "" {
		s.appName = "rampart"
	}
	if s.sdID == "" {
		s.sdID = "audit@32473"
	}
	if !validSDName(s.sdID) {
		return nil, fault.New(fault.Invalid, "syslog_sdid_invalid", "SD-ID must be 1 to 32 printable ASCII characters without space, '=', ']' or '\"'")
	}
	if s.timeout <= 0 {
		s.timeout = defaultHTTPTimeout
	}
	return s, nil
}

func (s *Syslog) Name() string { return s.name }

// Deliver writes one frame per event. On any error the connection is
// dropped, so the retry starts on a fresh one.
func (s *Syslog) Deliver(ctx context.Context, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	var b bytes.Buffer
	for _, e := range events {
		msg, err := s.format(e)
		if err != nil {
			return err
		}
		b.WriteString(strconv.Itoa(len(msg)))
		b.WriteByte(' ')
		b.Write(msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.conn != nil && !alive(s.conn) {
		s.closeLocked()
	}
	if s.conn == nil {
		c, err := s.dial(ctx)
		if err != nil {
			return fault.Wrap(fault.Unavailable, "delivery_failed", "syslog receiver unreachable", err)
		}
		s.conn = c
	}
	deadline, _ := ctx.Deadline()
	_ = s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(b.Bytes()); err != nil {
		s.closeLocked()
		return fault.Wrap(fault.Unavailable, "delivery_failed", "syslog write failed", err)
	}
	return nil
}

// Close closes the connection, if any.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}

func (s *Syslog) closeLocked() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// dial connects through internal/outbound: TLS verified with its
// configuration, plaintext only under its rule.
func (s *Syslog) dial(ctx context.Context) (net.Conn, error) {
	if s.tlsConfig != nil {
		d := &tls.Dialer{Config: s.tlsConfig}
		return d.DialContext(ctx, "tcp", s.addr)
	}
	return outbound.Dialer{AllowPlaintext: s.allowPlaintext}.DialContext(ctx, "tcp", s.addr)
}

// alive probes a connection the receiver should never write to: a read
// that times out means it is still open; EOF or any other answer means the
// peer closed it (or broke protocol) and it must be replaced.
func alive(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var one [1]byte
	_, err := c.Read(one[:])
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// format renders one RFC 5424 SYSLOG-MSG.
func (s *Syslog) format(e audit.Event) ([]byte, error) {
	j, err := marshalEvent(e)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "event_encode_failed", "could not encode event", err)
	}
	sev := severityNotice
	if e.Outcome != audit.Success {
		sev = severityWarning
	}
	ts := "-"
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	}
	var b bytes.Buffer
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(facilityAuthpriv*8 + sev))
	b.WriteString(">1 ")
	b.WriteString(ts)
	b.WriteByte(' ')
	b.WriteString(s.hostname)
	b.WriteByte(' ')
	b.WriteString(s.appName)
	b.WriteString(" - ")
	b.WriteString(headerField(e.Action, 32))
	b.WriteString(" [")
	b.WriteString(s.sdID)
	param := func(name, value string, always bool) {
		if value == "" && !always {
			return
		}
		b.WriteByte(' ')
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(escapeSDValue(value))
		b.WriteByte('"')
	}
	param("id", strconv.FormatInt(e.ID, 10), true)
	param("action", e.Action, true)
	param("outcome", string(e.Outcome), true)
	param("actor_type", e.ActorType, false)
	param("actor_id", e.ActorID, false)
	param("workspace", e.Workspace, false)
	param("target", e.Target, false)
	param("ip", e.IP, false)
	param("user_agent", e.UserAgent, false)
	param("request_id", e.RequestID, false)
	param("trace_id", e.TraceID, false)
	b.WriteString("] \xEF\xBB\xBF")
	b.Write(j)
	return b.Bytes(), nil
}

// escapeSDValue escapes a PARAM-VALUE per RFC 5424 §6.3.3: '"', '\' and
// ']' are preceded by a backslash. Invalid UTF-8 is replaced, because the
// RFC requires PARAM-VALUE to be UTF-8 and a receiver may reject the whole
// message otherwise.
func escapeSDValue(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if !strings.ContainsAny(v, "\"\\]") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v) + 8)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"', '\\', ']':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// headerField makes v a valid header field (PRINTUSASCII, no space, at most
// max octets), or NILVALUE when empty: header fields have no escaping, so an
// invalid character is replaced rather than passed through.
func headerField(v string, max int) string {
	if v == "" {
		return "-"
	}
	b := []byte(v)
	if len(b) > max {
		b = b[:max]
	}
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	return string(b)
}

// validSDName reports whether v is an SD-NAME (RFC 5424 §6.3.2).
func validSDName(v string) bool {
	if v == "" || len(v) > 32 || !utf8.ValidString(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' || c == ' ' {
			return false
		}
	}
	return true
}
