package ipfilter

import (
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseListErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"  ", "empty"},
		{"10.0.0.1/8", "did you mean 10.0.0.0/8"},
		{"2001:db8::1/32", "did you mean 2001:db8::/32"},
		{"10.0.0.0/33", "not a CIDR"},
		{"example.com", "not an IP"},
		{"fe80::1%eth0", "zoned"},
		{"1.2.3", "not an IP"},
	}
	for _, tt := range tests {
		_, err := ParseList([]string{"192.0.2.0/24", tt.in})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "entry 2") {
			t.Errorf("ParseList(%q) = %v, want error mentioning %q and entry 2", tt.in, err, tt.want)
		}
	}
}

func TestContains(t *testing.T) {
	l := MustParseList("10.0.0.0/8", "192.0.2.7", " 198.51.100.0/24 ", "2001:db8::/32", "::1",
		"::ffff:203.0.113.0/120", "172.16.0.0/13", "172.24.0.0/13", "0.0.0.0/32", "255.255.255.255")
	tests := []struct {
		addr string
		want bool
	}{
		{"10.0.0.0", true}, {"10.255.255.255", true}, {"11.0.0.0", false}, {"9.255.255.255", false},
		{"192.0.2.7", true}, {"192.0.2.6", false}, {"192.0.2.8", false},
		{"198.51.100.200", true}, {"198.51.101.0", false},
		{"2001:db8::1", true}, {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true}, {"2001:db9::", false},
		{"::1", true}, {"::2", false},
		{"203.0.113.9", true},                                                 // mapped entry stored as IPv4
		{"::ffff:10.1.2.3", true},                                             // mapped address matches IPv4 range
		{"172.16.0.0", true}, {"172.31.255.255", true}, {"172.32.0.0", false}, // adjacent ranges merged
		{"0.0.0.0", true}, {"255.255.255.255", true}, {"255.255.255.254", false},
	}
	for _, tt := range tests {
		if got := l.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if l.Contains(netip.Addr{}) {
		t.Error("invalid address matched")
	}
	var nilList *List
	if nilList.Contains(netip.MustParseAddr("10.0.0.1")) || !nilList.Empty() || nilList.Len() != 0 {
		t.Error("nil list not empty")
	}
	all := MustParseList("0.0.0.0/0", "::/0")
	for _, a := range []string{"1.2.3.4", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !all.Contains(netip.MustParseAddr(a)) {
			t.Errorf("/0 lacks %s", a)
		}
	}
}

func TestFilterPermit(t *testing.T) {
	office := MustParseList("10.1.0.0/16", "2001:db8:1::/48")
	bad := MustParseList("10.1.2.0/24", "2001:db8:1:bad::/64", "203.0.113.66")
	tests := []struct {
		name string
		f    Filter
		addr string
		want bool
	}{
		{"no lists admits", Filter{}, "198.51.100.1", true},
		{"deny only", Filter{Deny: bad}, "203.0.113.66", false},
		{"deny only, other", Filter{Deny: bad}, "203.0.113.67", true},
		{"allow only, inside", Filter{Allow: office}, "10.1.9.9", true},
		{"allow only, outside", Filter{Allow: office}, "10.2.0.1", false},
		{"deny wins over allow v4", Filter{Allow: office, Deny: bad}, "10.1.2.3", false},
		{"deny wins over allow v6", Filter{Allow: office, Deny: bad}, "2001:db8:1:bad::5", false},
		{"allowed v6", Filter{Allow: office, Deny: bad}, "2001:db8:1:600d::5", true},
		{"empty allow list admits", Filter{Allow: MustParseList()}, "198.51.100.1", true},
		{"invalid address refused", Filter{}, "", false},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.addr != "" {
			a = netip.MustParseAddr(tt.addr)
		}
		if got := tt.f.Permit(a); got != tt.want {
			t.Errorf("%s: Permit(%s) = %v, want %v", tt.name, tt.addr, got, tt.want)
		}
	}
}

func TestClientIPFrom(t *testing.T) {
	c := ClientIP{Trusted: MustParseList("10.0.0.0/8", "fd00::/8")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"no proxy", "198.51.100.7:4000", nil, "198.51.100.7"},
		{"untrusted peer spoofs XFF", "198.51.100.7:4000", []string{"1.2.3.4"}, "198.51.100.7"},
		{"trusted proxy", "10.0.0.1:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"client forges a left entry", "10.0.0.1:4000", []string{"6.6.6.6, 203.0.113.5"}, "203.0.113.5"},
		{"chain of trusted proxies", "10.0.0.1:4000", []string{"6.6.6.6, 203.0.113.5, 10.9.9.9, 10.8.8.8"}, "203.0.113.5"},
		{"chain over several header lines", "10.0.0.1:4000", []string{"6.6.6.6", "203.0.113.5", "10.9.9.9"}, "203.0.113.5"},
		{"client forges a trusted address", "10.0.0.1:4000", []string{"10.5.5.5, 203.0.113.5"}, "203.0.113.5"},
		{"all hops trusted", "10.0.0.1:4000", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"trusted proxy without XFF", "10.0.0.1:4000", nil, "10.0.0.1"},
		{"garbage after trusted hop", "10.0.0.1:4000", []string{"203.0.113.5, nonsense, 10.2.2.2"}, "10.2.2.2"},
		{"ports and brackets", "[fd00::1]:443", []string{"[2001:db8::9]:5555, 10.1.1.1:80"}, "2001:db8::9"},
		{"v6 peer untrusted", "[2001:db8::1]:443", []string{"1.2.3.4"}, "2001:db8::1"},
		{"mapped peer", "[::ffff:10.0.0.1]:443", []string{"203.0.113.5"}, "203.0.113.5"},
		{"empty elements skipped", "10.0.0.1:1", []string{"203.0.113.5,, ,"}, "203.0.113.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.From(r); got != netip.MustParseAddr(tt.want) {
				t.Errorf("From = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("unparseable peer", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "@"
		if got := c.From(r); got.IsValid() {
			t.Errorf("From = %s, want invalid", got)
		}
	})
	t.Run("very long chain stops", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header.Set("X-Forwarded-For", "203.0.113.5,"+strings.Repeat("10.1.1.1,", 100))
		if got := c.From(r); !c.Trusted.Contains(got) {
			t.Errorf("From = %s, want a trusted hop (walk bounded)", got)
		}
	})
}

// naiveContains is the reference the fuzzers compare with.
func naiveContains(entries []string, a netip.Addr) bool {
	a = a.Unmap()
	for _, e := range entries {
		p, err := parseEntry(strings.TrimSpace(e))
		if err != nil {
			continue
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8\n192.0.2.1", "2001:db8::/32\n::1", "0.0.0.0/0", "::/0\n::ffff:1.2.3.0/120", "10.0.0.1/8", "a\nb", "1.2.3.4/32\n1.2.3.5/32\n1.2.3.6/31"} {
		f.Add(s, "1.2.3.4")
	}
	f.Fuzz(func(t *testing.T, list, addr string) {
		entries := strings.Split(list, "\n")
		l, err := ParseList(entries)
		if err != nil {
			return
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		a = a.WithZone("")
		if got, want := l.Contains(a), naiveContains(entries, a); got != want {
			t.Fatalf("Contains(%s) = %v, naive %v for %q", a, got, want, entries)
		}
	})
}

func FuzzClientIPFrom(f *testing.F) {
	f.Add("10.0.0.1:1", "203.0.113.5, 10.2.2.2")
	f.Add("198.51.100.1:1", "1.1.1.1")
	f.Add("[fd00::1]:1", "[2001:db8::1]:80,,garbage")
	c := ClientIP{Trusted: MustParseList("10.0.0.0/8", "fd00::/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = []string{xff}
		got := c.From(r)
		peer := parseHop(remote)
		// Without a trusted peer the header is never believed.
		if !c.Trusted.Contains(peer) && got != peer {
			t.Fatalf("untrusted peer %q: From = %s", remote, got)
		}
		// The answer is the peer or one of the header's hops.
		if got != peer {
			found := false
			for _, hop := range strings.Split(xff, ",") {
				found = found || parseHop(strings.TrimSpace(hop)) == got
			}
			if !found {
				t.Fatalf("From = %s, from neither peer nor header %q", got, xff)
			}
		}
	})
}

// BenchmarkContains10k looks up addresses in a list of 10k random CIDRs.
// x-of-prefix relates it to a single netip.Prefix.Contains, the cost of
// checking one entry: a linear scan would be ~10,000 of those.
func BenchmarkContains10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	entries := make([]string, 10000)
	for i := range entries {
		a := netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0})
		entries[i] = netip.PrefixFrom(a, 16+rng.IntN(9)).Masked().String()
	}
	l := MustParseList(entries...)
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	p := netip.MustParsePrefix(entries[0])
	const n = 1_000_000
	start := time.Now()
	hits := 0
	for i := range n {
		if p.Contains(addrs[i&4095]) {
			hits++
		}
	}
	base := float64(time.Since(start).Nanoseconds()) / n
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if l.Contains(addrs[i&4095]) {
			hits++
		}
		i++
	}
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(base, "prefix-ns/op")
	b.ReportMetric(ns/base, "x-of-prefix")
	_ = hits
}
