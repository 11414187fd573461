package sink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/audit"
)

// syslogMsg is a parsed RFC 5424 message.
type syslogMsg struct {
	pri                                int
	ts, host, app, procID, msgID, sdID string
	params                             map[string]string
	order                              []string
	msg                                []byte
}

// parseSyslog is a strict RFC 5424 parser for one SYSLOG-MSG with a single
// SD-ELEMENT, written independently of the formatter from the RFC grammar.
func parseSyslog(b []byte) (syslogMsg, error) {
	var m syslogMsg
	if len(b) == 0 || b[0] != '<' {
		return m, errors.New("no PRI")
	}
	end := bytes.IndexByte(b, '>')
	if end < 2 || end > 4 {
		return m, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(string(b[1:end]))
	if err != nil || pri > 191 {
		return m, errors.New("bad PRI value")
	}
	m.pri = pri
	rest := b[end+1:]
	fields := make([]string, 0, 6)
	for i := 0; i < 6; i++ {
		sp := bytes.IndexByte(rest, ' ')
		if sp <= 0 {
			return m, fmt.Errorf("header field %d missing", i)
		}
		f := string(rest[:sp])
		for _, c := range []byte(f) {
			if c < 33 || c > 126 {
				return m, fmt.Errorf("header field %d not PRINTUSASCII", i)
			}
		}
		fields = append(fields, f)
		rest = rest[sp+1:]
	}
	if fields[0] != "1" {
		return m, errors.New("version is not 1")
	}
	m.ts, m.host, m.app, m.procID, m.msgID = fields[1], fields[2], fields[3], fields[4], fields[5]
	if len(rest) == 0 || rest[0] != '[' {
		return m, errors.New("no SD-ELEMENT")
	}
	rest = rest[1:]
	i := 0
	for i < len(rest) && rest[i] != ' ' && rest[i] != ']' {
		i++
	}
	m.sdID = string(rest[:i])
	rest = rest[i:]
	m.params = map[string]string{}
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
		eq := bytes.IndexByte(rest, '=')
		if eq <= 0 || eq > 32 || len(rest) < eq+2 || rest[eq+1] != '"' {
			return m, errors.New("bad SD-PARAM")
		}
		name := string(rest[:eq])
		rest = rest[eq+2:]
		var v []byte
		closed := false
		for j := 0; j < len(rest); j++ {
			c := rest[j]
			if c == '\\' && j+1 < len(rest) && (rest[j+1] == '"' || rest[j+1] == '\\' || rest[j+1] == ']') {
				v = append(v, rest[j+1])
				j++
				continue
			}
			if c == '"' {
				rest = rest[j+1:]
				closed = true
				break
			}
			if c == ']' {
				return m, errors.New("unescaped ] in PARAM-VALUE")
			}
			v = append(v, c)
		}
		if !closed {
			return m, errors.New("unterminated PARAM-VALUE")
		}
		if !utf8.Valid(v) {
			return m, errors.New("PARAM-VALUE is not UTF-8")
		}
		m.params[name] = string(v)
		m.order = append(m.order, name)
	}
	if len(rest) < 2 || rest[0] != ']' || rest[1] != ' ' {
		return m, errors.New("SD-ELEMENT not closed")
	}
	msg := rest[2:]
	if !bytes.HasPrefix(msg, []byte("\xEF\xBB\xBF")) {
		return m, errors.New("MSG without BOM")
	}
	m.msg = msg[3:]
	return m, nil
}

// readFrame reads one RFC 5425 octet-counted frame.
func readFrame(r *bufio.Reader) ([]byte, error) {
	lenText, err := r.ReadString(' ')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
	if err != nil || n <= 0 || n > 1<<20 {
		return nil, fmt.Errorf("bad MSG-LEN %q", lenText)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// syslogReceiver is an RFC 5425 receiver on a TLS listener. It can be told
// to drop each connection after a number of frames, as a restarting
// receiver would.
type syslogReceiver struct {
	ln        net.Listener
	dropAfter int // frames per connection; 0 = never

	mu     sync.Mutex
	frames [][]byte
	conns  int
	errs   []error
}

func newSyslogReceiver(t *testing.T, cert tls.Certificate, dropAfter int) *syslogReceiver {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	r := &syslogReceiver{ln: ln, dropAfter: dropAfter}
	go r.serve()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (s *syslogReceiver) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for n := 0; s.dropAfter == 0 || n < s.dropAfter; n++ {
				f, err := readFrame(br)
				if err != nil {
					if !errors.Is(err, io.EOF) {
						s.mu.Lock()
						s.errs = append(s.errs, err)
						s.mu.Unlock()
					}
					return
				}
				s.mu.Lock()
				s.frames = append(s.frames, f)
				s.mu.Unlock()
			}
		}()
	}
}

func (s *syslogReceiver) waitFrames(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.frames)
		errs := s.errs
		s.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("receiver errors: %v", errs)
		}
		if got >= n {
			s.mu.Lock()
			defer s.mu.Unlock()
			return append([][]byte(nil), s.frames...)
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d frames, want %d", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSyslogTLSDelivery(t *testing.T) {
	cert, pool := selfSigned(t)
	recv := newSyslogReceiver(t, cert, 0)
	s, err := NewSyslog(SyslogConfig{URL: "tls://" + recv.ln.Addr().String(), RootCAs: pool, Hostname: "node 1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := newMemLog(4)
	log.events[2].Details = map[string]string{"reason": "a]b\"c\\d"}
	log.events[3].Time = time.Time{}
	if err := s.Deliver(context.Background(), log.events[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), log.events[2:]); err != nil {
		t.Fatal(err)
	}
	frames := recv.waitFrames(t, 4)
	for i, f := range frames {
		m, err := parseSyslog(f)
		if err != nil {
			t.Fatalf("frame %d: %v: %q", i, err, f)
		}
		e := log.events[i]
		wantPRI := 10*8 + 5
		if e.Outcome != audit.Success {
			wantPRI = 10*8 + 4
		}
		if m.pri != wantPRI {
			t.Errorf("frame %d: PRI %d, want %d", i, m.pri, wantPRI)
		}
		wantTS := "2026-03-01T12:00:00.00" + strconv.Itoa(i) + "000Z"
		if i == 3 {
			wantTS = "-"
		}
		if m.ts != wantTS || m.host != "node_1" || m.app != "rampart" || m.procID != "-" || m.msgID != "auth.signin" || m.sdID != "audit@32473" {
			t.Errorf("frame %d header: %+v", i, m)
		}
		want := map[string]string{
			"id": strconv.FormatInt(e.ID, 10), "action": e.Action, "outcome": string(e.Outcome),
			"actor_type": e.ActorType, "actor_id": e.ActorID, "workspace": e.Workspace, "target": e.Target,
			"ip": e.IP, "user_agent": e.UserAgent, "request_id": e.RequestID,
		}
		if len(m.params) != len(want) {
			t.Errorf("frame %d params %v", i, m.params)
		}
		for k, v := range want {
			if m.params[k] != v {
				t.Errorf("frame %d param %s = %q, want %q", i, k, m.params[k], v)
			}
		}
		var w wireEvent
		if err := json.Unmarshal(m.msg, &w); err != nil {
			t.Fatalf("frame %d MSG: %v", i, err)
		}
		if w.ID != e.ID || w.Details["reason"] != e.Details["reason"] || w.UserAgent != e.UserAgent {
			t.Errorf("frame %d MSG %+v", i, w)
		}
	}
	recv.mu.Lock()
	conns := recv.conns
	recv.mu.Unlock()
	if conns != 1 {
		t.Fatalf("%d connections, want 1 (the connection is reused)", conns)
	}
}

// A receiver that closes the connection (a restart) must not make a batch
// vanish into the dead socket: the next Deliver reconnects.
func TestSyslogReconnectsAfterReceiverCloses(t *testing.T) {
	cert, pool := selfSigned(t)
	recv := newSyslogReceiver(t, cert, 2)
	s, err := NewSyslog(SyslogConfig{URL: "tls://" + recv.ln.Addr().String(), RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := newMemLog(6)
	for i := 0; i < 6; i += 2 {
		if err := s.Deliver(context.Background(), log.events[i:i+2]); err != nil {
			t.Fatal(err)
		}
		recv.waitFrames(t, i+2)
		time.Sleep(20 * time.Millisecond) // let the receiver's close reach us
	}
	frames := recv.waitFrames(t, 6)
	for i, f := range frames {
		m, err := parseSyslog(f)
		if err != nil || m.params["id"] != strconv.Itoa(i) {
			t.Fatalf("frame %d: %v %v", i, m.params["id"], err)
		}
	}
}

func TestSyslogVerifiesTLS(t *testing.T) {
	cert, _ := selfSigned(t)
	recv := newSyslogReceiver(t, cert, 0)
	s, err := NewSyslog(SyslogConfig{URL: "tls://" + recv.ln.Addr().String(), Timeout: 2 * time.Second}) // system roots
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Deliver(context.Background(), newMemLog(1).events); err == nil {
		t.Fatal("delivered over TLS to an untrusted certificate")
	}
}

func TestNewSyslogPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  SyslogConfig
		ok   bool
	}{
		{"tls remote", SyslogConfig{URL: "tls://logs.example.com:6514"}, true},
		{"tcp remote refused", SyslogConfig{URL: "tcp://logs.example.com:514"}, false},
		{"tcp remote allowed", SyslogConfig{URL: "tcp://logs.example.com:514", AllowInsecure: true}, true},
		{"tcp loopback", SyslogConfig{URL: "tcp://127.0.0.1:514"}, true},
		{"udp refused", SyslogConfig{URL: "udp://127.0.0.1:514"}, false},
		{"no port", SyslogConfig{URL: "tls://logs.example.com"}, false},
		{"bad sdid", SyslogConfig{URL: "tls://logs.example.com:6514", SDID: "a b"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSyslog(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// Plaintext to loopback works (with the same framing) for a local relay.
func TestSyslogPlaintextLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		f, _ := readFrame(bufio.NewReader(c))
		got <- f
	}()
	s, err := NewSyslog(SyslogConfig{URL: "tcp://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Deliver(context.Background(), newMemLog(1).events); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-got:
		if _, err := parseSyslog(f); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frame")
	}
}

func TestEscapeSDValue(t *testing.T) {
	for in, want := range map[string]string{
		"":          "",
		"plain":     "plain",
		`a"b`:       `a\"b`,
		`a\b`:       `a\\b`,
		`a]b`:       `a\]b`,
		`[x]`:       `[x\]`,
		"bad\xffok": "bad\uFFFDok",
	} {
		if got := escapeSDValue(in); got != want {
			t.Errorf("escapeSDValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSyslogSD checks that any field value, once formatted, parses back to
// itself (after UTF-8 repair) and cannot break out of its PARAM-VALUE or
// disturb the other fields or the framing.
func FuzzSyslogSD(f *testing.F) {
	for _, s := range []string{"", "x", `"`, `\`, `]`, `\"]`, `a] [evil x="1"`, "\xff\xfe", "line\nbreak", "é😀", `\\\]`} {
		f.Add(s, s)
	}
	s, err := NewSyslog(SyslogConfig{URL: "tcp://127.0.0.1:514", Hostname: "h"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		e := audit.Event{ID: 7, Time: t0, Action: "auth.signin", Outcome: audit.Denied, UserAgent: a, Target: b, ActorID: a + b}
		msg, err := s.format(e)
		if err != nil {
			t.Fatal(err)
		}
		var frame bytes.Buffer
		frame.WriteString(strconv.Itoa(len(msg)) + " ")
		frame.Write(msg)
		got, err := readFrame(bufio.NewReader(&frame))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("frame round trip: %v", err)
		}
		m, err := parseSyslog(msg)
		if err != nil {
			t.Fatalf("parse: %v: %q", err, msg)
		}
		check := func(name, want string) {
			want = strings.ToValidUTF8(want, "\uFFFD")
			if want == "" {
				if _, ok := m.params[name]; ok {
					t.Fatalf("empty %s present", name)
				}
				return
			}
			if m.params[name] != want {
				t.Fatalf("%s = %q, want %q", name, m.params[name], want)
			}
		}
		check("user_agent", a)
		check("target", b)
		check("actor_id", a+b)
		if m.params["id"] != "7" || m.params["outcome"] != "denied" || m.pri != 84 {
			t.Fatalf("fixed fields disturbed: %+v", m)
		}
	})
}
