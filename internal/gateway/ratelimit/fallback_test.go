package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampartsec/rampart/internal/fault"
)

// outageRecorder counts the Fallback callbacks.
type outageRecorder struct {
	fails, recovers atomic.Int32
	lastErr         atomic.Value
}

func (o *outageRecorder) onFail(err error) { o.fails.Add(1); o.lastErr.Store(err) }
func (o *outageRecorder) onRecover()       { o.recovers.Add(1) }

// waitBackend calls Allow until f reports want (probes need calls).
func waitBackend(t *testing.T, f *Fallback, p Policy, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.Backend() != want {
		if time.Now().After(deadline) {
			t.Fatalf("backend stayed %q, want %q", f.Backend(), want)
		}
		_, _ = f.Allow(context.Background(), "probe", p)
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFallbackSwitchesAndRecovers points a real client at a closed port
// (connection refused), then at the real Redis, then away again: the
// limiter answers from the local stand-in during each outage, alerts once
// per outage, and returns to Redis when it is back.
func TestFallbackSwitchesAndRecovers(t *testing.T) {
	testRedis(t) // skip or fail early without Redis
	prefix := uniquePrefix(t)
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var down atomic.Bool
	down.Store(true)
	client := redis.NewClient(&redis.Options{
		Addr: redisAddr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if down.Load() {
				addr = dead
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return flakyConn{c, &down}, nil
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	cleanupKeys(t, testRedis(t), prefix)

	var rec outageRecorder
	f := NewFallback(NewRedis(client).WithPrefix(prefix), NewLocal(nil, 1000), rec.onFail, rec.onRecover)
	f.ProbeEvery = 20 * time.Millisecond
	p := Policy{Name: "fb", Limit: 3, Period: time.Hour, Burst: 3}
	ctx := context.Background()

	// Outage from the start: answers come from Local (3 admitted, then no).
	for i := range 5 {
		res, err := f.Allow(ctx, "k", p)
		if err != nil {
			t.Fatalf("Allow during outage: %v", err)
		}
		if res.Allowed != (i < 3) {
			t.Errorf("request %d during outage: allowed = %v", i, res.Allowed)
		}
	}
	if f.Backend() != BackendLocalFallback || rec.fails.Load() != 1 {
		t.Fatalf("backend %q, onFail called %d times; want local-fallback and 1", f.Backend(), rec.fails.Load())
	}
	if err, _ := rec.lastErr.Load().(error); !fault.Is(err, fault.Unavailable) {
		t.Errorf("onFail error = %v, want unavailable", err)
	}

	// Redis comes back: a probe switches over and decisions come from Redis
	// (its own fresh budget for the key).
	down.Store(false)
	waitBackend(t, f, p, BackendRedis)
	if rec.recovers.Load() != 1 {
		t.Errorf("onRecover called %d times, want 1", rec.recovers.Load())
	}
	if res, err := f.Allow(ctx, "k2", p); err != nil || !res.Allowed || res.Remaining != 2 {
		t.Errorf("first Redis answer = %+v, %v", res, err)
	}

	// Second outage, with pooled connections breaking mid-use: one more
	// alert, not one per request, and decisions again from Local.
	down.Store(true)
	for range 20 {
		if _, err := f.Allow(ctx, "k3", p); err != nil {
			t.Fatal(err)
		}
	}
	if rec.fails.Load() != 2 || f.Backend() != BackendLocalFallback {
		t.Errorf("onFail called %d times over two outages (want 2), backend %q", rec.fails.Load(), f.Backend())
	}
}

// flakyConn fails every read and write while down is set, as a connection
// whose peer vanished does.
type flakyConn struct {
	net.Conn
	down *atomic.Bool
}

var errLinkDown = errors.New("test: link down")

func (c flakyConn) Read(b []byte) (int, error) {
	if c.down.Load() {
		return 0, errLinkDown
	}
	return c.Conn.Read(b)
}

func (c flakyConn) Write(b []byte) (int, error) {
	if c.down.Load() {
		return 0, errLinkDown
	}
	return c.Conn.Write(b)
}

// TestFallbackRedisServerKilled runs a throwaway redis-server, kills it
// while in use (pooled connections break mid-flight), and starts it again
// on the same port.
func TestFallbackRedisServerKilled(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed; TestFallbackSwitchesAndRecovers covers the switch")
	}
	port := freePort(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	srv := start()
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for client.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("throwaway redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var rec outageRecorder
	f := NewFallback(NewRedis(client), NewLocal(nil, 1000), rec.onFail, rec.onRecover)
	f.ProbeEvery = 20 * time.Millisecond
	p := Policy{Name: "kill", Limit: 100, Period: time.Second}
	if _, err := f.Allow(context.Background(), "k", p); err != nil || f.Backend() != BackendRedis {
		t.Fatalf("backend %q, err %v", f.Backend(), err)
	}
	_ = srv.Process.Kill()
	_ = srv.Wait()
	waitBackend(t, f, p, BackendLocalFallback)
	start()
	waitBackend(t, f, p, BackendRedis)
	if rec.fails.Load() != 1 || rec.recovers.Load() != 1 {
		t.Errorf("fails %d, recovers %d; want 1 and 1", rec.fails.Load(), rec.recovers.Load())
	}
}

// TestFallbackHungRedis: a server that accepts and never answers costs a
// request at most Fallback.Timeout, not the client's long read timeout.
func TestFallbackHungRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	held.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		held.Wait()
	})
	client := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: 30 * time.Second, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	var rec outageRecorder
	f := NewFallback(NewRedis(client), NewLocal(nil, 10), rec.onFail, rec.onRecover)
	f.Timeout = 100 * time.Millisecond
	begin := time.Now()
	res, err := f.Allow(context.Background(), "k", Policy{Name: "h", Limit: 1, Period: time.Second})
	if err != nil || !res.Allowed {
		t.Fatalf("Allow = %+v, %v", res, err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("a hung Redis held the request %v", took)
	}
	if f.Backend() != BackendLocalFallback || rec.fails.Load() != 1 {
		t.Errorf("backend %q, fails %d", f.Backend(), rec.fails.Load())
	}
}

// TestFallbackNotTrippedByCallerOrPolicy: a bad policy or a caller that
// gave up is not a Redis outage.
func TestFallbackNotTrippedByCallerOrPolicy(t *testing.T) {
	c := testRedis(t)
	prefix := uniquePrefix(t)
	cleanupKeys(t, c, prefix)
	var rec outageRecorder
	f := NewFallback(NewRedis(c).WithPrefix(prefix), NewLocal(nil, 10), rec.onFail, rec.onRecover)
	if _, err := f.Allow(context.Background(), "k", Policy{Name: "bad"}); !fault.Is(err, fault.Invalid) {
		t.Errorf("bad policy: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Allow(ctx, "k", Policy{Name: "ok", Limit: 1, Period: time.Second}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	if f.Backend() != BackendRedis || rec.fails.Load() != 0 {
		t.Errorf("backend %q, fails %d", f.Backend(), rec.fails.Load())
	}
	if NewFallback(nil, NewLocal(nil, 10), nil, nil).Backend() != BackendLocal {
		t.Error("no primary should report local")
	}
}
