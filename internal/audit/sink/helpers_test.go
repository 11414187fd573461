package sink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// memLog is an in-memory Source, Cursor and Head.
type memLog struct {
	mu      sync.Mutex
	events  []audit.Event
	cursors map[string]int64
	failSet int // SetSinkCursor fails this many times
}

func newMemLog(n int) *memLog {
	l := &memLog{cursors: map[string]int64{}}
	l.add(n)
	return l
}

func (l *memLog) add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		id := int64(len(l.events))
		out := audit.Success
		if id%3 == 0 {
			out = audit.Failure
		}
		l.events = append(l.events, audit.Event{
			ID: id, Time: t0.Add(time.Duration(id) * time.Millisecond), ActorType: audit.ActorUser,
			ActorID: fmt.Sprintf("u%d", id), Workspace: "ws1", Action: "auth.signin", Target: "user:x",
			Outcome: out, IP: "192.0.2.1", UserAgent: `agent "x" [1]\`, RequestID: "r",
			Details: map[string]string{"n": fmt.Sprint(id)},
		})
	}
}

func (l *memLog) After(_ context.Context, index int64, limit int) ([]audit.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []audit.Event
	for _, e := range l.events {
		if e.ID > index && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) SinkCursor(_ context.Context, name string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cursors[name]
	if !ok {
		return -1, nil
	}
	return c, nil
}

func (l *memLog) SetSinkCursor(_ context.Context, name string, index int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failSet > 0 {
		l.failSet--
		return errors.New("store down")
	}
	l.cursors[name] = index
	return nil
}

func (l *memLog) AuditSize(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.events)), nil
}

// recSleep records requested delays and waits only briefly, so backoff
// schedules run fast but an idle runner does not spin.
type recSleep struct {
	mu     sync.Mutex
	delays []time.Duration
	poll   time.Duration
}

func (s *recSleep) sleep(ctx context.Context, d time.Duration) error {
	if d != s.poll {
		s.mu.Lock()
		s.delays = append(s.delays, d)
		s.mu.Unlock()
	}
	select {
	case <-time.After(time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *recSleep) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.delays...)
}

// runUntil runs r until its cursor reaches last, then stops it.
func runUntil(t *testing.T, r *Runner, last int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().Cursor < last {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("runner did not reach %d; stats %+v", last, r.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
}

// selfSigned returns a TLS certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "syslog test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// The witnesses plug into the Merkle log's LogDeps.Witnesses.
var (
	_ audit.Witness = (*WitnessFile)(nil)
	_ audit.Witness = (*WitnessWebhook)(nil)
	_ Witness       = (*WitnessFile)(nil)
	_ Target        = (*Webhook)(nil)
	_ Target        = (*Syslog)(nil)
	_ Target        = (*File)(nil)
)
