package password

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// tiny keeps tests fast; the cost parameters do not change any logic.
var tiny = Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherConfig{Params: tiny})
	other := func(edit func(*Params)) *Hasher {
		p := tiny
		edit(&p)
		return NewHasher(HasherConfig{Params: p})
	}
	cases := []struct {
		name        string
		hasher      *Hasher // makes the stored hash
		stored      string  // used instead of hasher when set
		hashPw      string
		verifyPw    string
		wantOK      bool
		wantRehash  bool
		wantErrCode string
	}{
		{name: "match", hasher: h, hashPw: "hunter2 hunter2", verifyPw: "hunter2 hunter2", wantOK: true},
		{name: "mismatch", hasher: h, hashPw: "hunter2 hunter2", verifyPw: "hunter2 hunter3"},
		{name: "case matters", hasher: h, hashPw: "Secret-Pass", verifyPw: "secret-pass"},
		{name: "empty password", hasher: h, hashPw: "", verifyPw: "", wantOK: true},
		{name: "unicode", hasher: h, hashPw: "пароль 密码 🔑", verifyPw: "пароль 密码 🔑", wantOK: true},
		{name: "older time cost", hasher: other(func(p *Params) { p.Time = 2 }), hashPw: "pw-12345", verifyPw: "pw-12345", wantOK: true, wantRehash: true},
		{name: "older memory cost", hasher: other(func(p *Params) { p.MemoryKiB = 32 }), hashPw: "pw-12345", verifyPw: "pw-12345", wantOK: true, wantRehash: true},
		{name: "other key length", hasher: other(func(p *Params) { p.KeyLen = 16 }), hashPw: "pw-12345", verifyPw: "pw-12345", wantOK: true, wantRehash: true},
		{name: "other salt length", hasher: other(func(p *Params) { p.SaltLen = 8 }), hashPw: "pw-12345", verifyPw: "pw-12345", wantOK: true, wantRehash: true},
		{name: "no rehash on mismatch", hasher: other(func(p *Params) { p.Time = 2 }), hashPw: "pw-12345", verifyPw: "pw-54321"},
		{name: "argon2i needs rehash", stored: katVectors[3].encoded, verifyPw: katVectors[3].pw, wantOK: true, wantRehash: true},
		{name: "argon2i mismatch", stored: katVectors[3].encoded, verifyPw: "Password"},
		{name: "reference argon2id", stored: katVectors[1].encoded, verifyPw: katVectors[1].pw, wantOK: true, wantRehash: true},
		{name: "malformed stored", stored: "$argon2id$v=19$m=4096", verifyPw: "x", wantErrCode: "password_hash_invalid"},
		{name: "bcrypt stored", stored: "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", verifyPw: "x", wantErrCode: "password_hash_invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stored := tc.stored
			if stored == "" {
				var err error
				if stored, err = tc.hasher.Hash(ctx, tc.hashPw); err != nil {
					t.Fatalf("Hash: %v", err)
				}
				if !IsArgon2id(stored) {
					t.Fatalf("Hash produced %q, not argon2id", stored)
				}
			}
			ok, rehash, err := h.Verify(ctx, stored, tc.verifyPw)
			if tc.wantErrCode != "" {
				if err == nil || fault.KindOf(err) != fault.Internal || fault.As(err).Code != tc.wantErrCode {
					t.Fatalf("err = %v, want internal %s", err, tc.wantErrCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok != tc.wantOK || rehash != tc.wantRehash {
				t.Fatalf("Verify = (ok %v, rehash %v), want (%v, %v)", ok, rehash, tc.wantOK, tc.wantRehash)
			}
		})
	}
}

func TestHashUsesInjectedRand(t *testing.T) {
	// With the reference vector's salt as the only randomness, Hash must
	// reproduce the reference CLI's output byte for byte.
	kat := katVectors[1]
	p, salt, _, err := Parse(kat.encoded)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(HasherConfig{Params: p, Rand: bytes.NewReader(salt)})
	got, err := h.Hash(context.Background(), kat.pw)
	if err != nil {
		t.Fatal(err)
	}
	if got != kat.encoded {
		t.Fatalf("Hash = %q, want %q", got, kat.encoded)
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	h := NewHasher(HasherConfig{Params: tiny})
	a, err1 := h.Hash(context.Background(), "same password")
	b, err2 := h.Hash(context.Background(), "same password")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestRandFailure(t *testing.T) {
	h := NewHasher(HasherConfig{Params: tiny, Rand: strings.NewReader("short")})
	if _, err := h.Hash(context.Background(), "pw"); fault.KindOf(err) != fault.Internal || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Hash err = %v, want internal wrapping ErrUnexpectedEOF", err)
	}
	h = NewHasher(HasherConfig{Params: tiny, Rand: strings.NewReader("")})
	if err := h.VerifyDummy(context.Background(), "pw"); fault.KindOf(err) != fault.Internal || err == nil {
		t.Fatalf("VerifyDummy err = %v, want internal", err)
	}
}

func TestVerifyDummy(t *testing.T) {
	h := NewHasher(HasherConfig{Params: tiny})
	for range 2 {
		if err := h.VerifyDummy(context.Background(), "anything"); err != nil {
			t.Fatalf("VerifyDummy: %v", err)
		}
	}
	// It must cost what a real verification costs: same parameters.
	p, _, _, err := Parse(h.dummy)
	if err != nil {
		t.Fatalf("dummy hash %q: %v", h.dummy, err)
	}
	if p != h.params {
		t.Fatalf("dummy params %+v, want %+v", p, h.params)
	}
	if ok, _, _ := h.Verify(context.Background(), h.dummy, "anything"); ok {
		t.Fatal("dummy hash matched a password")
	}
}

func TestNewHasherDefaults(t *testing.T) {
	h := NewHasher(HasherConfig{})
	n := runtime.GOMAXPROCS(0)
	if h.params != DefaultParams() || cap(h.slots) != n || h.maxQueue != int64(64*n) || h.maxWait != 2*time.Second || h.rand == nil {
		t.Fatalf("defaults: params %+v slots %d queue %d wait %v", h.params, cap(h.slots), h.maxQueue, h.maxWait)
	}
}

func TestNewHasherPanicsOnBadParams(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewHasher accepted invalid params")
		}
	}()
	NewHasher(HasherConfig{Params: Params{MemoryKiB: 1 << 30, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
}

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func assertBusy(t *testing.T, err error) {
	t.Helper()
	fe := fault.As(err)
	if !errors.Is(err, ErrBusy) || fe.Kind != fault.Unavailable || fe.Code != "busy" || fe.RetryAfter != time.Second {
		t.Fatalf("err = %#v, want unavailable/busy with RetryAfter 1s", err)
	}
}

func TestBusyWhenQueueFull(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherConfig{Params: tiny, Concurrency: 1, MaxQueue: 1, MaxWait: time.Hour})
	release, err := h.acquire(ctx) // the one slot, held by the test
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "waiter"); done <- err }()
	eventually(t, "one waiter", func() bool { in, w := h.Stats(); return in == 1 && w == 1 })

	stored := katVectors[3].encoded
	_, err = h.Hash(ctx, "refused")
	assertBusy(t, err)
	_, _, err = h.Verify(ctx, stored, "refused")
	assertBusy(t, err)
	assertBusy(t, h.VerifyDummy(ctx, "refused"))

	release()
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if in, w := h.Stats(); in != 0 || w != 0 {
		t.Fatalf("Stats after drain = (%d, %d), want (0, 0)", in, w)
	}
}

func TestBusyAfterMaxWait(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherConfig{Params: tiny, Concurrency: 1, MaxWait: time.Millisecond})
	release, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = h.Hash(ctx, "pw")
	assertBusy(t, err)
	if _, w := h.Stats(); w != 0 {
		t.Fatalf("waiting = %d after timeout, want 0", w)
	}
}

func TestContextCancelWhileWaiting(t *testing.T) {
	h := NewHasher(HasherConfig{Params: tiny, Concurrency: 1, MaxWait: time.Hour})
	release, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, _, err := h.Verify(ctx, katVectors[3].encoded, "pw"); done <- err }()
	eventually(t, "waiter", func() bool { _, w := h.Stats(); return w == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, w := h.Stats(); w != 0 {
		t.Fatalf("waiting = %d after cancel, want 0", w)
	}
}

func TestContextAlreadyCancelled(t *testing.T) {
	h := NewHasher(HasherConfig{Params: tiny})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if in, _ := h.Stats(); in != 0 {
		t.Fatalf("slot leaked: inFlight = %d", in)
	}
}
