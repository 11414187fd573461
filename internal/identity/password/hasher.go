package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// ErrBusy is the cause inside the fault.Unavailable error returned when the
// hasher is saturated; test for it with errors.Is.
var ErrBusy = errors.New("password: hasher busy")

// busyRetryAfter is what we tell clients to wait: one argon2id hash takes
// tens of milliseconds, so a saturated pool drains well within a second.
const busyRetryAfter = time.Second

// HasherConfig configures a Hasher. Zero values take the documented defaults.
type HasherConfig struct {
	// Params for new hashes; the zero value means DefaultParams(). NewHasher
	// panics if they fail Params.Validate.
	Params Params
	// Concurrency is how many hashes may run at once (0 => GOMAXPROCS).
	// Peak hashing memory is about Concurrency × Params.MemoryKiB (more while
	// verifying stored hashes with larger parameters).
	Concurrency int
	// MaxWait is how long a call may wait for a slot (0 => 2s). A sign-in
	// that would wait longer is refused rather than piling up latency.
	MaxWait time.Duration
	// MaxQueue is how many calls may wait at once (0 => 64×Concurrency);
	// beyond it calls are refused at once, so waiting goroutines stay bounded.
	MaxQueue int
	// Rand supplies salts; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Hasher hashes and verifies passwords through a bounded pool of slots.
// argon2id is memory-hard by design, so an unbounded number of concurrent
// sign-ins would be an easy way to exhaust the server; the pool turns
// overload into fast, retryable "busy" answers instead. It is safe for
// concurrent use.
type Hasher struct {
	params   Params
	rand     io.Reader
	slots    chan struct{} // a buffered send is taking a slot
	maxWait  time.Duration
	maxQueue int64
	waiting  atomic.Int64

	dummyOnce sync.Once
	dummy     string
	dummyErr  error
}

// NewHasher returns a Hasher for cfg. It panics if cfg.Params is non-zero
// and invalid, since that is a configuration bug that must not start up.
func NewHasher(cfg HasherConfig) *Hasher {
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams()
	}
	if err := cfg.Params.Validate(); err != nil {
		panic(err)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Second
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 64 * cfg.Concurrency
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Hasher{
		params:   cfg.Params,
		rand:     cfg.Rand,
		slots:    make(chan struct{}, cfg.Concurrency),
		maxWait:  cfg.MaxWait,
		maxQueue: int64(cfg.MaxQueue),
	}
}

// Hash returns an argon2id PHC string for pw with a fresh random salt.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fault.Wrap(fault.Internal, "internal", "internal error", fmt.Errorf("password: reading salt: %w", err))
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	key := derive(argon2id, []byte(pw), salt, h.params)
	release()
	return encode(h.params, salt, key), nil
}

// Verify reports whether pw matches the stored hash encoded. needsRehash is
// true (only when ok) if the hash was made with other parameters than the
// configured ones or is not argon2id, so the caller can store a fresh Hash
// while it holds the plaintext (ENC-6: parameters are upgraded on login).
// A stored hash that cannot be parsed is an internal fault, not a mismatch.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (ok, needsRehash bool, err error) {
	v, p, salt, key, err := parse(encoded)
	if err != nil {
		return false, false, fault.Wrap(fault.Internal, "password_hash_invalid", "internal error", err)
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	got := derive(v, []byte(pw), salt, p)
	release()
	ok = subtle.ConstantTimeCompare(got, key) == 1
	return ok, ok && (v != argon2id || p != h.params), nil
}

// VerifyDummy spends one full verification at the configured parameters
// against a hash no password matches. Call it when the account does not
// exist so that sign-in answers in the same time either way (AUTH-7). It
// takes a pool slot like Verify, so it is refused alike when busy.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	h.dummyOnce.Do(func() {
		// A random salt and a random "key": Verify costs the same whatever
		// the key is, and no password derives a random 256-bit value.
		b := make([]byte, h.params.SaltLen+h.params.KeyLen)
		if _, err := io.ReadFull(h.rand, b); err != nil {
			h.dummyErr = fault.Wrap(fault.Internal, "internal", "internal error", fmt.Errorf("password: making dummy hash: %w", err))
			return
		}
		h.dummy = encode(h.params, b[:h.params.SaltLen], b[h.params.SaltLen:])
	})
	if h.dummyErr != nil {
		return h.dummyErr
	}
	_, _, err := h.Verify(ctx, h.dummy, pw)
	return err
}

// Stats returns how many hashes are running and how many calls are waiting
// for a slot, for metrics and saturation alerts.
func (h *Hasher) Stats() (inFlight, waiting int) {
	return len(h.slots), int(h.waiting.Load())
}

// acquire takes a pool slot, waiting at most maxWait behind at most maxQueue
// other callers. The returned func gives the slot back.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	// Do not spend a hash on a request whose caller has already gone.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	release = func() { <-h.slots }
	select {
	case h.slots <- struct{}{}:
		return release, nil
	default:
	}
	if h.waiting.Add(1) > h.maxQueue {
		h.waiting.Add(-1)
		return nil, errBusy()
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, errBusy()
	}
}

// errBusy builds a fresh error each time so no caller can mutate a shared one.
func errBusy() error {
	return &fault.Error{
		Kind:       fault.Unavailable,
		Code:       "busy",
		Message:    "too many sign-ins in progress, try again shortly",
		RetryAfter: busyRetryAfter,
		Err:        ErrBusy,
	}
}
