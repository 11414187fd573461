package connlimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// serve accepts on l and holds every connection open until the test ends,
// echoing one byte so the client can tell it was served.
func serve(t *testing.T, l *Listener) {
	t.Helper()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// served reports whether the server answers on c (a refused connection is
// closed by the server, so the read sees EOF or a reset).
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return false
	}
	b := make([]byte, 1)
	_, err := io.ReadFull(c, b)
	if err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("unexpected read error: %v", err)
	}
	return err == nil
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

func listen(t *testing.T, addr string, total, perAddr int, setup ...func(*Listener)) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	l := NewListener(inner, total, perAddr)
	for _, f := range setup {
		f(l)
	}
	t.Cleanup(func() { _ = l.Close() })
	serve(t, l)
	return l
}

func dial(t *testing.T, l *Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestPerAddressCap(t *testing.T) {
	l := listen(t, "127.0.0.1:0", 0, 2)
	a1, a2 := dial(t, l, "127.0.0.1"), dial(t, l, "127.0.0.1")
	if !served(t, a1) || !served(t, a2) {
		t.Fatal("connections within the cap not served")
	}
	if served(t, dial(t, l, "127.0.0.1")) {
		t.Error("third connection from one address served")
	}
	// Another loopback address has its own budget.
	if !served(t, dial(t, l, "127.0.0.2")) {
		t.Error("second address refused")
	}
	// Closing one frees its slot.
	_ = a1.Close()
	waitFor(t, func() bool { return l.Stats().Active == 2 })
	if !served(t, dial(t, l, "127.0.0.1")) {
		t.Error("slot not released on close")
	}
	st := l.Stats()
	if st.RefusedPerAddr != 1 || st.RefusedTotal != 0 || st.Accepted != 4 || st.Addresses != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTotalCap(t *testing.T) {
	l := listen(t, "127.0.0.1:0", 3, 0)
	for i, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if !served(t, dial(t, l, from)) {
			t.Fatalf("connection %d within total cap refused", i)
		}
	}
	if served(t, dial(t, l, "127.0.0.4")) {
		t.Error("connection beyond the total cap served")
	}
	if st := l.Stats(); st.RefusedTotal != 1 || st.Active != 3 {
		t.Errorf("stats = %+v", st)
	}
}

type exemptList []netip.Addr

func (e exemptList) Contains(a netip.Addr) bool {
	for _, x := range e {
		if x == a {
			return true
		}
	}
	return false
}

func TestExemptProxyStillCountsTowardTotal(t *testing.T) {
	l := listen(t, "127.0.0.1:0", 3, 1, func(l *Listener) { l.Exempt = exemptList{netip.MustParseAddr("127.0.0.1")} })
	for range 3 {
		if !served(t, dial(t, l, "127.0.0.1")) {
			t.Fatal("exempt proxy capped per address")
		}
	}
	if served(t, dial(t, l, "127.0.0.1")) {
		t.Error("exempt proxy exceeded the total cap")
	}
}

func TestIPv6GroupedBy64(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::9]:2"},
	} {
		ka := addrKey(&net.TCPAddr{IP: net.ParseIP(tt.a[1 : len(tt.a)-3]), Port: 1})
		kb := addrKey(&net.TCPAddr{IP: net.ParseIP(tt.b[1 : len(tt.b)-3]), Port: 2})
		if ka != kb || ka != netip.MustParseAddr("2001:db8:1:2::") {
			t.Errorf("keys %s and %s, want both 2001:db8:1:2::", ka, kb)
		}
	}
	if k := addrKey(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1")}); k != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("mapped key %s", k)
	}
	l := listen(t, "[::1]:0", 0, 1)
	if !served(t, dial(t, l, "::1")) {
		t.Fatal("first v6 connection refused")
	}
	if served(t, dial(t, l, "::1")) {
		t.Error("second v6 connection from the same /64 served")
	}
}

func TestDoubleCloseReleasesOnce(t *testing.T) {
	l := listen(t, "127.0.0.1:0", 0, 0)
	inner, _ := net.Pipe()
	c := &conn{Conn: inner, l: l, key: netip.MustParseAddr("192.0.2.1")}
	l.admit(c.key)
	_ = c.Close()
	_ = c.Close()
	if st := l.Stats(); st.Active != 0 || st.Addresses != 0 {
		t.Errorf("after double close: %+v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
