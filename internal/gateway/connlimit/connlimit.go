// Package connlimit caps concurrent connections in total and per client
// address (control APP-4), so that one client, or a flood, cannot hold all
// of the server's sockets (slowloris and friends hold connections, not
// requests).
//
// Connections beyond a cap are accepted and closed at once rather than left
// in the kernel's backlog: the backlog would fill and starve legitimate
// clients too, whereas a prompt close tells the offender nothing useful and
// costs one accept.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Listener wraps a net.Listener with connection caps. Caps apply to the TCP
// peer: behind a load balancer every connection comes from the balancer,
// so set Exempt to the balancers' addresses (they still count toward the
// total).
type Listener struct {
	net.Listener
	total, perAddr int
	// Exempt lists peers without a per-address cap (trusted proxies).
	// Set before Accept is first called.
	Exempt interface{ Contains(netip.Addr) bool }

	mu     sync.Mutex
	active int
	byAddr map[netip.Addr]int

	accepted, refusedTotal, refusedPerAddr atomic.Uint64
}

// NewListener caps inner at total concurrent connections and perAddr per
// remote address; zero or less means no cap of that kind. IPv6 peers are
// grouped by /64, the block a single subscriber usually holds, since
// counting single IPv6 addresses caps nothing.
func NewListener(inner net.Listener, total, perAddr int) *Listener {
	return &Listener{Listener: inner, total: total, perAddr: perAddr, byAddr: make(map[netip.Addr]int)}
}

// Stats is a snapshot of the listener's counters.
type Stats struct {
	Active         int    // connections open now
	Addresses      int    // distinct addresses (IPv6 /64s) with connections open
	Accepted       uint64 // admitted since start
	RefusedTotal   uint64 // closed at once because the total cap was reached
	RefusedPerAddr uint64 // closed at once because the address's cap was reached
}

// Stats returns the current counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	st := Stats{Active: l.active, Addresses: len(l.byAddr)}
	l.mu.Unlock()
	st.Accepted = l.accepted.Load()
	st.RefusedTotal = l.refusedTotal.Load()
	st.RefusedPerAddr = l.refusedPerAddr.Load()
	return st
}

// Accept returns the next connection within the caps, closing those beyond
// them. Errors are the inner listener's.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		if ok := l.admit(key); !ok {
			_ = c.Close()
			continue
		}
		l.accepted.Add(1)
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

func (l *Listener) admit(key netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.active >= l.total {
		l.refusedTotal.Add(1)
		return false
	}
	capped := l.perAddr > 0 && !(l.Exempt != nil && l.Exempt.Contains(key))
	if capped && l.byAddr[key] >= l.perAddr {
		l.refusedPerAddr.Add(1)
		return false
	}
	l.active++
	l.byAddr[key]++
	return true
}

func (l *Listener) release(key netip.Addr) {
	l.mu.Lock()
	l.active--
	if n := l.byAddr[key] - 1; n > 0 {
		l.byAddr[key] = n
	} else {
		delete(l.byAddr, key)
	}
	l.mu.Unlock()
}

// addrKey is the address a connection counts against: IPv4 as is, IPv6 by
// /64, anything else (unix sockets) as the zero Addr, one shared bucket.
func addrKey(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().WithZone("").Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// conn releases its slot exactly once, however often it is closed.
type conn struct {
	net.Conn
	l    *Listener
	key  netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// Unwrap gives access to the underlying connection (for example the
// *net.TCPConn, to set keep-alives).
func (c *conn) Unwrap() net.Conn { return c.Conn }
