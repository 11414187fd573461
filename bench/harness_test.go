// Package bench holds Rampart's end-to-end load harnesses. They build the
// real application (app.New: store, identity service, web handler with its
// middleware) and drive it in process through httptest, so the figures
// measure Rampart rather than the kernel's network stack. Results are
// reported relative to quantities measured in the same run (one argon2id
// hash time), because absolute times on a shared machine are noisy while
// ratios are not. See docs/BENCHMARKS.md.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/web"
)

// newApp wires a real Rampart in a temporary data directory with the default
// configuration (so the default argon2id parameters and hash pool) as
// changed by mods, logging to nowhere.
func newApp(tb testing.TB, mods ...func(*config.Config)) *app.App {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = tb.TempDir()
	cfg.Dev = true
	for _, m := range mods {
		m(&cfg)
	}
	cfg.Finalize()
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard})
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	tb.Cleanup(func() {
		if err := a.Close(); err != nil {
			tb.Errorf("close app: %v", err)
		}
	})
	return a
}

// account is one signed-up user with the device cookie it signs in from.
// A fixed device per account makes the measured sign-ins the steady-state
// case (known device, no new-device mail) once each has signed in once.
type account struct {
	email, password, device string
}

// accountSpec returns the i-th benchmark account. Passwords are long and
// random-looking so the breached-password policy never flags them (that
// would add a store write per sign-in that real users rarely pay).
func accountSpec(i int) account {
	return account{
		email:    fmt.Sprintf("bench-user-%04d@example.test", i),
		password: fmt.Sprintf("Qz7-lantern-%04d-orbit-Vx", i),
		device:   fmt.Sprintf("benchdevice%016d", i),
	}
}

// createAccounts signs up n accounts through the identity service with the
// real hasher, GOMAXPROCS at a time (more would only queue on the pool).
func createAccounts(tb testing.TB, a *app.App, n int) []account {
	tb.Helper()
	accts := make([]account, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range accts {
		accts[i] = accountSpec(i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = a.Identity.SignUp(context.Background(), accts[i].email, accts[i].password)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("sign up account %d: %v", i, err)
		}
	}
	return accts
}

// workerAddr is a distinct client address per worker, so that no per-IP
// rule (throttling counts failures per IP; these sign-ins all succeed, but
// the harness should not depend on that) couples the workers.
func workerAddr(w int) string {
	return fmt.Sprintf("10.%d.%d.%d:40000", (w>>16)&0xff, (w>>8)&0xff, w&0xff)
}

// signInRequest builds POST /v1/signin the way an API client sends it.
func signInRequest(ac account, remoteAddr string) *http.Request {
	body := `{"email":"` + ac.email + `","password":"` + ac.password + `"}`
	r := httptest.NewRequest(http.MethodPost, "https://localhost:8443/v1/signin", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = remoteAddr
	r.AddCookie(&http.Cookie{Name: web.DeviceCookie, Value: ac.device})
	return r
}

// signIn serves one sign-in through the full handler and returns the status
// and the session cookie's value ("" when none was set).
func signIn(h http.Handler, ac account, remoteAddr string) (status int, token string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, signInRequest(ac, remoteAddr))
	for _, c := range rec.Result().Cookies() {
		if c.Name == web.SessionCookie {
			token = c.Value
		}
	}
	return rec.Code, token
}

// warmUp signs every account in once from its device, so the timed sign-ins
// see known devices and warm database pages, as a running server would.
func warmUp(tb testing.TB, h http.Handler, accts []account) {
	tb.Helper()
	var wg sync.WaitGroup
	codes := make([]int, len(accts))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, ac := range accts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			codes[i], _ = signIn(h, ac, workerAddr(1<<20+i))
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			tb.Fatalf("warm-up sign-in of account %d: status %d", i, c)
		}
	}
}

// hashCost is what sequential argon2id hashes at the configured parameters
// cost on one goroutine: the unit of the hash-bound limit (GOMAXPROCS ÷ one
// hash time). It is measured in the same run as the load, before and after
// it, so both see the same machine.
type hashCost struct {
	wall []time.Duration // per hash
	cpu  time.Duration   // process CPU time over all of them
}

// probeHash times n sequential argon2id derivations with cfg's parameters,
// the same call the password package makes.
func probeHash(cfg config.PasswordConfig, n int) hashCost {
	pw, salt := []byte("hash-time probe password"), make([]byte, 16)
	c := hashCost{wall: make([]time.Duration, n)}
	cpu0 := cpuTime()
	for i := range c.wall {
		start := time.Now()
		argon2.IDKey(pw, salt, cfg.HashTime, cfg.HashMemoryKiB, cfg.HashThreads, 32)
		c.wall[i] = time.Since(start)
	}
	c.cpu = cpuTime() - cpu0
	return c
}

func (c hashCost) merge(o hashCost) hashCost {
	return hashCost{wall: append(slices.Clone(c.wall), o.wall...), cpu: c.cpu + o.cpu}
}

// time is the median wall time of one hash: robust to the odd sample
// slowed by another process on a shared machine.
func (c hashCost) time() time.Duration { return percentile(c.wall, 50) }

// cpuPerHash is the mean process CPU time of one hash (0 if unknown).
func (c hashCost) cpuPerHash() time.Duration {
	return c.cpu / time.Duration(max(len(c.wall), 1))
}

// rawParallelRate is how many argon2id hashes per second GOMAXPROCS
// goroutines compute together, with nothing else of Rampart's running. Its
// ratio to the hash bound is what the machine itself loses to running
// hashes side by side (shared caches and memory bandwidth), before any
// Rampart overhead.
func rawParallelRate(cfg config.PasswordConfig, perWorker int) float64 {
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := time.Now()
	for range procs {
		wg.Go(func() {
			probeHash(cfg, perWorker)
		})
	}
	wg.Wait()
	return float64(procs*perWorker) / time.Since(start).Seconds()
}

// percentile returns the nearest-rank q-th percentile (0 < q ≤ 100) of ts,
// or 0 for no samples. Nearest-rank never interpolates, so p99 is a latency
// some request actually saw.
func percentile(ts []time.Duration, q float64) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	rank := int(math.Ceil(float64(len(s)) * q / 100))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
