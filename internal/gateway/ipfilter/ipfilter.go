// Package ipfilter decides which client addresses may reach a route
// (control APP-2) and which address a request really comes from when
// Rampart sits behind proxies or load balancers.
//
// A List holds CIDR ranges as sorted, merged intervals per address family,
// so Contains is a binary search: about 14 comparisons for 10k ranges, no
// allocation, and no per-entry scanning however long the list grows.
package ipfilter

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// List is an immutable set of address ranges. The zero value and nil are
// empty lists.
type List struct {
	v4 []span4
	v6 []span6
	n  int // entries given, for Len
}

type span4 struct{ lo, hi uint32 }

// u128 is an IPv6 address as two big-endian halves; comparing (hi, lo)
// lexicographically orders addresses.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// next is a+1 and whether it did not wrap.
func (a u128) next() (u128, bool) {
	if a.lo != ^uint64(0) {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return a, false
}

type span6 struct{ lo, hi u128 }

// ParseList parses CIDRs ("10.0.0.0/8", "2001:db8::/32") and single
// addresses ("192.0.2.1", "::1"). IPv4-mapped IPv6 entries are stored as
// IPv4 so each address has one form. A prefix with host bits set
// ("10.0.0.1/8") is refused, since it is usually a typo for something
// narrower; the error suggests the canonical form. Zones are refused.
func ParseList(cidrs []string) (*List, error) {
	l := &List{n: len(cidrs)}
	for i, raw := range cidrs {
		s := strings.TrimSpace(raw)
		p, err := parseEntry(s)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i+1, clip(s), err)
		}
		if p.Addr().Is4() {
			lo := binary.BigEndian.Uint32(p.Addr().AsSlice())
			size := uint32(0xFFFFFFFF) >> p.Bits()
			if p.Bits() == 0 {
				size = 0xFFFFFFFF
			}
			l.v4 = append(l.v4, span4{lo, lo | size})
		} else {
			b := p.Addr().As16()
			lo := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
			hostBits := 128 - p.Bits()
			hi := lo
			switch {
			case hostBits >= 64:
				hi.lo = ^uint64(0)
				if hostBits == 128 {
					hi.hi = ^uint64(0)
				} else {
					hi.hi |= (uint64(1) << (hostBits - 64)) - 1
				}
			case hostBits > 0:
				hi.lo |= (uint64(1) << hostBits) - 1
			}
			l.v6 = append(l.v6, span6{lo, hi})
		}
	}
	l.v4 = merge4(l.v4)
	l.v6 = merge6(l.v6)
	return l, nil
}

// MustParseList is ParseList for literals in code and tests.
func MustParseList(cidrs ...string) *List {
	l, err := ParseList(cidrs)
	if err != nil {
		panic(err)
	}
	return l
}

func parseEntry(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("zoned addresses are not supported")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR such as 192.0.2.0/24 or 2001:db8::/32")
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("host bits set; did you mean %s?", m)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// clip bounds what an error echoes of operator input.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func merge4(s []span4) []span4 {
	slices.SortFunc(s, func(a, b span4) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && (x.lo <= out[n-1].hi || out[n-1].hi != 0xFFFFFFFF && x.lo == out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, x.hi)
			continue
		}
		out = append(out, x)
	}
	return slices.Clip(out)
}

func merge6(s []span6) []span6 {
	slices.SortFunc(s, func(a, b span6) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 {
			last := &out[n-1]
			nx, ok := last.hi.next()
			if !x.lo.less(last.lo) && (!last.hi.less(x.lo) || ok && nx == x.lo) {
				if last.hi.less(x.hi) {
					last.hi = x.hi
				}
				continue
			}
		}
		out = append(out, x)
	}
	return slices.Clip(out)
}

// Len is the number of entries the list was parsed from.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return l.n
}

// Empty reports whether the list matches nothing.
func (l *List) Empty() bool { return l == nil || len(l.v4) == 0 && len(l.v6) == 0 }

// Contains reports whether a is in the list. IPv4-mapped IPv6 addresses
// match their IPv4 ranges; an invalid address matches nothing.
func (l *List) Contains(a netip.Addr) bool {
	if l == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		// First span whose hi ≥ x; x is inside iff its lo ≤ x.
		i, j := 0, len(l.v4)
		for i < j {
			h := int(uint(i+j) >> 1)
			if l.v4[h].hi < x {
				i = h + 1
			} else {
				j = h
			}
		}
		return i < len(l.v4) && l.v4[i].lo <= x
	}
	b := a.As16()
	x := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	i, j := 0, len(l.v6)
	for i < j {
		h := int(uint(i+j) >> 1)
		if l.v6[h].hi.less(x) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i < len(l.v6) && !x.less(l.v6[i].lo)
}

// Filter is an allow list and a deny list. Deny wins; an empty (or nil)
// Allow admits every address not denied.
type Filter struct {
	Allow, Deny *List
}

// Permit reports whether a may pass. An invalid address (the client could
// not be determined) never passes: fail closed.
func (f Filter) Permit(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if f.Deny.Contains(a) {
		return false
	}
	return f.Allow.Empty() || f.Allow.Contains(a)
}

// ClientIP finds the client address of a request. X-Forwarded-For is
// honoured only when the TCP peer is a trusted proxy, and then read from
// right to left: each hop was appended by the proxy before it, so the first
// address that is not itself a trusted proxy is the client. Entries to its
// left were written by the client and may be forged; they are ignored.
type ClientIP struct {
	Trusted *List
}

// maxHops bounds the X-Forwarded-For walk; a longer trusted chain than
// this is not a real deployment.
const maxHops = 32

// From returns the client address of r, or the zero Addr when the peer
// address itself cannot be parsed (Filter.Permit refuses that).
func (c ClientIP) From(r *http.Request) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !peer.IsValid() || !c.Trusted.Contains(peer) {
		return peer
	}
	client := peer
	vals := r.Header.Values("X-Forwarded-For")
	hops := 0
	for v := len(vals) - 1; v >= 0; v-- {
		s := vals[v]
		for len(s) > 0 {
			var hop string
			if i := strings.LastIndexByte(s, ','); i >= 0 {
				hop, s = s[i+1:], s[:i]
			} else {
				hop, s = s, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			if hops++; hops > maxHops {
				return client
			}
			a := parseHop(hop)
			if !a.IsValid() {
				// A trusted proxy handed us garbage: the last address we
				// can vouch for is that proxy's.
				return client
			}
			client = a
			if !c.Trusted.Contains(a) {
				return a
			}
		}
	}
	return client // every hop trusted: the farthest one
}

// parseHop parses "addr", "addr:port", "[v6]" or "[v6]:port", dropping any
// zone and unmapping IPv4-mapped IPv6.
func parseHop(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap()
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap()
	}
	return netip.Addr{}
}
