package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// t0 has a sub-second part down to the microsecond, the stored precision.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC)

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newUser(t *testing.T, s *store.Store, email string) *identity.User {
	t.Helper()
	u := &identity.User{Email: email, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func getUser(t *testing.T, s *store.Store, id string) *identity.User {
	t.Helper()
	u, err := s.UserByID(context.Background(), id)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	return u
}

func wantKind(t *testing.T, err error, k fault.Kind) {
	t.Helper()
	if !fault.Is(err, k) {
		t.Fatalf("error = %v, want kind %s", err, k)
	}
}

func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, fault.ErrNotFound) && !fault.Is(err, fault.NotFound) {
		t.Fatalf("error = %v, want not found", err)
	}
}

func TestUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := &identity.User{
			ID:                  "u1",
			Email:               "alice@example.com",
			EmailVerifiedAt:     t0.Add(time.Minute),
			PasswordHash:        "$argon2id$x",
			PasswordCompromised: true,
			TOTPLastStep:        7,
			FailedSignins:       2,
			LockedUntil:         t0.Add(time.Hour),
			CreatedAt:           t0,
			UpdatedAt:           t0.Add(time.Second),
		}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for name, get := range map[string]func() (*identity.User, error){
			"by id":    func() (*identity.User, error) { return s.UserByID(ctx, "u1") },
			"by email": func() (*identity.User, error) { return s.UserByEmail(ctx, "alice@example.com") },
		} {
			got, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *u) {
				t.Errorf("%s:\n got %+v\nwant %+v", name, *got, *u)
			}
			if got.CreatedAt.Location() != time.UTC || got.TOTPSecret != nil {
				t.Errorf("%s: times must be UTC and an unset secret nil: %+v", name, got)
			}
		}

		// An unset id and times are filled in and written back.
		v := &identity.User{Email: "bob@example.com"}
		if err := s.CreateUser(ctx, v); err != nil {
			t.Fatal(err)
		}
		if len(v.ID) != 32 || v.CreatedAt.IsZero() || !v.UpdatedAt.Equal(v.CreatedAt) {
			t.Errorf("generated fields: %+v", v)
		}
		if got := getUser(t, s, v.ID); !got.EmailVerifiedAt.IsZero() || !got.LockedUntil.IsZero() {
			t.Errorf("zero times must read back zero: %+v", got)
		}

		for _, tc := range []struct {
			name string
			u    identity.User
			kind fault.Kind
		}{
			{"duplicate email", identity.User{ID: "u2", Email: "alice@example.com"}, fault.Conflict},
			{"duplicate id", identity.User{ID: "u1", Email: "carol@example.com"}, fault.Conflict},
			{"no email", identity.User{ID: "u3"}, fault.Invalid},
		} {
			err := s.CreateUser(ctx, &tc.u)
			wantKind(t, err, tc.kind)
			if tc.kind == fault.Conflict {
				if fault.As(err).Code != "conflict" {
					t.Errorf("%s: code %q", tc.name, fault.As(err).Code)
				}
				if strings.Contains(err.Error(), "@") {
					t.Errorf("%s: error leaks a value: %v", tc.name, err)
				}
			}
		}

		_, err := s.UserByID(ctx, "nobody")
		wantNotFound(t, err)
		_, err = s.UserByEmail(ctx, "ALICE@example.com")
		wantNotFound(t, err)
	})
}

func TestUserUpdates(t *testing.T) {
	later := t0.Add(time.Hour)
	tests := []struct {
		name  string
		apply func(s *store.Store, id string) error
		check func(u *identity.User) bool
	}{
		{"SetEmailVerified",
			func(s *store.Store, id string) error { return s.SetEmailVerified(context.Background(), id, later) },
			func(u *identity.User) bool { return u.EmailVerifiedAt.Equal(later) && u.UpdatedAt.Equal(later) }},
		{"SetPassword",
			func(s *store.Store, id string) error {
				return s.SetPassword(context.Background(), id, "$argon2id$new", true, later)
			},
			func(u *identity.User) bool {
				return u.PasswordHash == "$argon2id$new" && u.PasswordCompromised && u.UpdatedAt.Equal(later)
			}},
		{"SetPasswordCompromised",
			func(s *store.Store, id string) error { return s.SetPasswordCompromised(context.Background(), id, true) },
			func(u *identity.User) bool { return u.PasswordCompromised }},
		{"LockUser",
			func(s *store.Store, id string) error { return s.LockUser(context.Background(), id, later) },
			func(u *identity.User) bool { return u.LockedUntil.Equal(later) }},
		{"SetTOTPSecret",
			func(s *store.Store, id string) error {
				return s.SetTOTPSecret(context.Background(), id, []byte("sealed"))
			},
			func(u *identity.User) bool { return string(u.TOTPSecret) == "sealed" && !u.TOTPEnabled }},
		{"ClearSigninFailures",
			func(s *store.Store, id string) error { return s.ClearSigninFailures(context.Background(), id) },
			func(u *identity.User) bool { return u.FailedSignins == 0 && u.LockedUntil.IsZero() }},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u := newUser(t, s, strings.ToLower(tc.name)+"@example.com")
				if err := tc.apply(s, u.ID); err != nil {
					t.Fatal(err)
				}
				if got := getUser(t, s, u.ID); !tc.check(got) {
					t.Errorf("after %s: %+v", tc.name, got)
				}
				wantNotFound(t, tc.apply(s, "nobody"))
			})
		}
	})
}

func TestSigninFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "a@example.com")
		for want := 1; want <= 3; want++ {
			n, err := s.AddSigninFailure(ctx, u.ID, t0)
			if err != nil || n != want {
				t.Fatalf("AddSigninFailure = %d, %v; want %d", n, err, want)
			}
		}
		if err := s.LockUser(ctx, u.ID, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got := getUser(t, s, u.ID); got.FailedSignins != 3 || !got.LockedUntil.Equal(t0.Add(time.Minute)) {
			t.Fatalf("before clear: %+v", got)
		}
		if err := s.ClearSigninFailures(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if got := getUser(t, s, u.ID); got.FailedSignins != 0 || !got.LockedUntil.IsZero() {
			t.Fatalf("after clear: %+v", got)
		}
		_, err := s.AddSigninFailure(ctx, "nobody", t0)
		wantNotFound(t, err)

		// Concurrent writers: every increment counts and none fails with
		// a busy database.
		const workers, each = 16, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Go(func() {
				for range each {
					if _, err := s.AddSigninFailure(ctx, u.ID, t0); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent AddSigninFailure: %v", err)
		}
		if got := getUser(t, s, u.ID); got.FailedSignins != workers*each {
			t.Fatalf("count = %d, want %d", got.FailedSignins, workers*each)
		}
	})
}

func TestTOTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "a@example.com")
		codes := [][]byte{hash("c1"), hash("c2"), hash("c3")}
		slices.SortFunc(codes, bytes.Compare)

		if err := s.SetTOTPSecret(ctx, u.ID, []byte("sealed-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.EnableTOTP(ctx, u.ID, 100, codes, t0); err != nil {
			t.Fatal(err)
		}
		got := getUser(t, s, u.ID)
		if !got.TOTPEnabled || got.TOTPLastStep != 100 || string(got.TOTPSecret) != "sealed-1" {
			t.Fatalf("after enable: %+v", got)
		}
		if hs, err := s.RecoveryCodeHashes(ctx, u.ID); err != nil || !slices.EqualFunc(hs, codes, bytes.Equal) {
			t.Fatalf("RecoveryCodeHashes = %x, %v", hs, err)
		}
		// An active factor is not replaced behind the user's back.
		wantKind(t, s.SetTOTPSecret(ctx, u.ID, []byte("sealed-2")), fault.Conflict)
		if got := getUser(t, s, u.ID); string(got.TOTPSecret) != "sealed-1" {
			t.Fatalf("secret replaced while enabled")
		}

		// A failing enable changes nothing: a duplicate hash breaks the
		// insert after the user row and the old codes were touched.
		err := s.EnableTOTP(ctx, u.ID, 500, [][]byte{hash("x"), hash("x")}, t0)
		wantKind(t, err, fault.Conflict)
		if got := getUser(t, s, u.ID); got.TOTPLastStep != 100 {
			t.Fatalf("failed enable changed the step to %d", got.TOTPLastStep)
		}
		if hs, _ := s.RecoveryCodeHashes(ctx, u.ID); len(hs) != 3 {
			t.Fatalf("failed enable changed the codes: %d", len(hs))
		}
		// A successful enable replaces the codes.
		codes2 := [][]byte{hash("d1"), hash("d2")}
		slices.SortFunc(codes2, bytes.Compare)
		if err := s.EnableTOTP(ctx, u.ID, 100, codes2, t0); err != nil {
			t.Fatal(err)
		}
		if hs, _ := s.RecoveryCodeHashes(ctx, u.ID); !slices.EqualFunc(hs, codes2, bytes.Equal) {
			t.Fatalf("codes not replaced: %x", hs)
		}
		wantNotFound(t, s.EnableTOTP(ctx, "nobody", 1, nil, t0))

		for _, tc := range []struct {
			step int64
			want bool
		}{{101, true}, {101, false}, {100, false}, {50, false}, {105, true}, {104, false}} {
			ok, err := s.AdvanceTOTPStep(ctx, u.ID, tc.step)
			if err != nil || ok != tc.want {
				t.Fatalf("AdvanceTOTPStep(%d) = %v, %v; want %v", tc.step, ok, err, tc.want)
			}
		}
		if got := getUser(t, s, u.ID); got.TOTPLastStep != 105 {
			t.Fatalf("step = %d", got.TOTPLastStep)
		}
		_, err = s.AdvanceTOTPStep(ctx, "nobody", 1)
		wantNotFound(t, err)

		for _, tc := range []struct {
			name string
			user string
			code []byte
			want bool
		}{
			{"first use", u.ID, codes2[0], true},
			{"second use", u.ID, codes2[0], false},
			{"unknown code", u.ID, hash("nope"), false},
			{"other user", "nobody", codes2[1], false},
		} {
			ok, err := s.UseRecoveryCode(ctx, tc.user, tc.code, t0)
			if err != nil || ok != tc.want {
				t.Fatalf("%s: UseRecoveryCode = %v, %v; want %v", tc.name, ok, err, tc.want)
			}
		}
		if hs, _ := s.RecoveryCodeHashes(ctx, u.ID); !slices.EqualFunc(hs, codes2[1:], bytes.Equal) {
			t.Fatalf("unused codes after one use: %x", hs)
		}

		if err := s.DisableTOTP(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		got = getUser(t, s, u.ID)
		if got.TOTPEnabled || got.TOTPSecret != nil || got.TOTPLastStep != 0 {
			t.Fatalf("after disable: %+v", got)
		}
		if hs, err := s.RecoveryCodeHashes(ctx, u.ID); err != nil || len(hs) != 0 {
			t.Fatalf("codes after disable: %x, %v", hs, err)
		}
		wantNotFound(t, s.DisableTOTP(ctx, "nobody"))
		// After disabling, a new enrolment may start.
		if err := s.SetTOTPSecret(ctx, u.ID, []byte("sealed-3")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAdvanceTOTPStepConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u := newUser(t, s, "a@example.com")
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ok, err := s.AdvanceTOTPStep(context.Background(), u.ID, 200)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d goroutines accepted the same step, want exactly 1", wins.Load())
		}
	})
}

func newSession(t *testing.T, s *store.Store, userID, token string, created time.Time) *identity.Session {
	t.Helper()
	ss := &identity.Session{
		UserID: userID, TokenHash: hash(token), Pending: true, IP: "192.0.2.1", UserAgent: "test",
		CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour),
	}
	if err := s.CreateSession(context.Background(), ss); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return ss
}

func TestSessionLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "a@example.com")
		ss := newSession(t, s, u.ID, "t1", t0)
		if len(ss.ID) != 32 || !ss.LastSeenAt.Equal(t0) {
			t.Fatalf("generated fields: %+v", ss)
		}

		got, err := s.SessionByTokenHash(ctx, hash("t1"))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *ss) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", *got, *ss)
		}

		// Rotation is a compare-and-swap on the current hash.
		t1 := t0.Add(time.Minute)
		ok, err := s.RotateSession(ctx, ss.ID, hash("t1"), hash("t2"), t1.Add(30*time.Second), t1)
		if err != nil || !ok {
			t.Fatalf("RotateSession = %v, %v", ok, err)
		}
		ok, err = s.RotateSession(ctx, ss.ID, hash("t1"), hash("t3"), t1, t1)
		if err != nil || ok {
			t.Fatalf("stale RotateSession = %v, %v; want false", ok, err)
		}
		_, err = s.RotateSession(ctx, "nosuch", hash("t2"), hash("t3"), t1, t1)
		wantNotFound(t, err)
		for _, token := range []string{"t2", "t1"} {
			got, err := s.SessionByTokenHash(ctx, hash(token))
			if err != nil {
				t.Fatalf("lookup by %s: %v", token, err)
			}
			if got.ID != ss.ID || !bytes.Equal(got.TokenHash, hash("t2")) || !bytes.Equal(got.PrevTokenHash, hash("t1")) ||
				!got.PrevValidUntil.Equal(t1.Add(30*time.Second)) || !got.RotatedAt.Equal(t1) || !got.LastSeenAt.Equal(t1) {
				t.Fatalf("after rotation, lookup by %s: %+v", token, got)
			}
		}

		// Completing MFA swaps the token and drops the pending one.
		t2 := t0.Add(2 * time.Minute)
		if err := s.CompleteSessionMFA(ctx, ss.ID, hash("t4"), t2, t2.Add(12*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err = s.SessionByTokenHash(ctx, hash("t4"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Pending || !got.MFA || got.PrevTokenHash != nil || !got.PrevValidUntil.IsZero() || !got.ExpiresAt.Equal(t2.Add(12*time.Hour)) {
			t.Fatalf("after MFA: %+v", got)
		}
		for _, old := range []string{"t1", "t2"} {
			_, err := s.SessionByTokenHash(ctx, hash(old))
			wantNotFound(t, err)
		}
		wantNotFound(t, s.CompleteSessionMFA(ctx, "nosuch", hash("t5"), t2, t2))

		t3 := t0.Add(3 * time.Minute)
		if err := s.TouchSession(ctx, ss.ID, t3); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SessionByTokenHash(ctx, hash("t4")); !got.LastSeenAt.Equal(t3) {
			t.Fatalf("LastSeenAt = %v", got.LastSeenAt)
		}
		wantNotFound(t, s.TouchSession(ctx, "nosuch", t3))

		_, err = s.SessionByTokenHash(ctx, hash("unknown"))
		wantNotFound(t, err)
		_, err = s.SessionByTokenHash(ctx, nil)
		wantNotFound(t, err)
	})
}

func TestSessionCreateErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u := newUser(t, s, "a@example.com")
		newSession(t, s, u.ID, "t1", t0)
		for _, tc := range []struct {
			name string
			ss   identity.Session
			kind fault.Kind
		}{
			{"duplicate token", identity.Session{UserID: u.ID, TokenHash: hash("t1"), ExpiresAt: t0}, fault.Conflict},
			{"unknown user", identity.Session{UserID: "nobody", TokenHash: hash("t2"), ExpiresAt: t0}, fault.NotFound},
			{"no expiry", identity.Session{UserID: u.ID, TokenHash: hash("t3")}, fault.Invalid},
			{"no token", identity.Session{UserID: u.ID, ExpiresAt: t0}, fault.Invalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantKind(t, s.CreateSession(context.Background(), &tc.ss), tc.kind)
			})
		}
	})
}

func TestRotateSessionConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u := newUser(t, s, "a@example.com")
		ss := newSession(t, s, u.ID, "t1", t0)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				ok, err := s.RotateSession(context.Background(), ss.ID, hash("t1"), hash(fmt.Sprint("new", i)), t0, t0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d rotations won, want exactly 1", wins.Load())
		}
	})
}

func TestSessionListAndDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice := newUser(t, s, "alice@example.com")
		bob := newUser(t, s, "bob@example.com")
		a1 := newSession(t, s, alice.ID, "a1", t0)
		a2 := newSession(t, s, alice.ID, "a2", t0.Add(time.Minute))
		a3 := newSession(t, s, alice.ID, "a3", t0.Add(2*time.Minute))
		b1 := newSession(t, s, bob.ID, "b1", t0)

		list, err := s.ListSessions(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range list {
			ids = append(ids, x.ID)
		}
		if want := []string{a3.ID, a2.ID, a1.ID}; !slices.Equal(ids, want) {
			t.Fatalf("ListSessions = %v, want newest first %v", ids, want)
		}
		if list, err := s.ListSessions(ctx, "nobody"); err != nil || len(list) != 0 {
			t.Fatalf("ListSessions(nobody) = %v, %v", list, err)
		}

		// A user cannot delete another user's session.
		wantNotFound(t, s.DeleteSession(ctx, alice.ID, b1.ID))
		if _, err := s.SessionByTokenHash(ctx, hash("b1")); err != nil {
			t.Fatalf("bob's session deleted by alice: %v", err)
		}
		if err := s.DeleteSession(ctx, alice.ID, a1.ID); err != nil {
			t.Fatal(err)
		}
		wantNotFound(t, s.DeleteSession(ctx, alice.ID, a1.ID))

		a4 := newSession(t, s, alice.ID, "a4", t0)
		if n, err := s.DeleteUserSessions(ctx, alice.ID, a4.ID); err != nil || n != 2 {
			t.Fatalf("DeleteUserSessions(keep) = %d, %v; want 2", n, err)
		}
		if list, _ := s.ListSessions(ctx, alice.ID); len(list) != 1 || list[0].ID != a4.ID {
			t.Fatalf("after delete-all-but-one: %+v", list)
		}
		if n, err := s.DeleteUserSessions(ctx, alice.ID, ""); err != nil || n != 1 {
			t.Fatalf("DeleteUserSessions(all) = %d, %v; want 1", n, err)
		}
		if list, _ := s.ListSessions(ctx, bob.ID); len(list) != 1 {
			t.Fatalf("bob's sessions touched: %+v", list)
		}
	})
}

func TestDeleteExpiredSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "a@example.com")
		newSession(t, s, u.ID, "old", t0.Add(-48*time.Hour))          // expired a day ago
		newSession(t, s, u.ID, "edge", t0.Add(-24*time.Hour))         // expires exactly now
		keep := newSession(t, s, u.ID, "fresh", t0.Add(-time.Minute)) // still valid
		n, err := s.DeleteExpiredSessions(ctx, t0)
		if err != nil || n != 2 {
			t.Fatalf("DeleteExpiredSessions = %d, %v; want 2", n, err)
		}
		if list, _ := s.ListSessions(ctx, u.ID); len(list) != 1 || list[0].ID != keep.ID {
			t.Fatalf("remaining: %+v", list)
		}
		if n, err := s.DeleteExpiredSessions(ctx, t0); err != nil || n != 0 {
			t.Fatalf("second sweep = %d, %v", n, err)
		}
	})
}

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "a@example.com")
		mk := func(name, kind string, expires time.Time) {
			t.Helper()
			tok := &identity.Token{Hash: hash(name), Kind: kind, UserID: u.ID, CreatedAt: t0, ExpiresAt: expires}
			if err := s.CreateToken(ctx, tok); err != nil {
				t.Fatalf("CreateToken(%s): %v", name, err)
			}
		}
		mk("valid", identity.TokenVerifyEmail, t0.Add(time.Hour))
		mk("expired", identity.TokenVerifyEmail, t0.Add(-time.Second))
		mk("edge", identity.TokenVerifyEmail, t0)
		mk("reset", identity.TokenPasswordReset, t0.Add(time.Hour))

		for _, tc := range []struct {
			name, token, kind string
			ok                bool
		}{
			{"valid", "valid", identity.TokenVerifyEmail, true},
			{"second use", "valid", identity.TokenVerifyEmail, false},
			{"expired", "expired", identity.TokenVerifyEmail, false},
			{"expires now", "edge", identity.TokenVerifyEmail, false},
			{"kind mismatch", "reset", identity.TokenVerifyEmail, false},
			{"unknown", "nope", identity.TokenVerifyEmail, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ConsumeToken(ctx, tc.kind, hash(tc.token), t0)
				if tc.ok {
					if err != nil || got != u.ID {
						t.Fatalf("ConsumeToken = %q, %v", got, err)
					}
					return
				}
				wantNotFound(t, err)
			})
		}

		wantKind(t, s.CreateToken(ctx, &identity.Token{Hash: hash("reset"), Kind: identity.TokenPasswordReset, UserID: u.ID, ExpiresAt: t0}), fault.Conflict)
		wantKind(t, s.CreateToken(ctx, &identity.Token{Hash: hash("x"), Kind: identity.TokenPasswordReset, UserID: "nobody", ExpiresAt: t0}), fault.NotFound)
		wantKind(t, s.CreateToken(ctx, &identity.Token{Hash: hash("y"), UserID: u.ID, ExpiresAt: t0}), fault.Invalid)

		// DeleteUserTokens removes only the given kind.
		mk("v2", identity.TokenVerifyEmail, t0.Add(time.Hour))
		if err := s.DeleteUserTokens(ctx, u.ID, identity.TokenVerifyEmail); err != nil {
			t.Fatal(err)
		}
		_, err := s.ConsumeToken(ctx, identity.TokenVerifyEmail, hash("v2"), t0)
		wantNotFound(t, err)
		if got, err := s.ConsumeToken(ctx, identity.TokenPasswordReset, hash("reset"), t0); err != nil || got != u.ID {
			t.Fatalf("other kind deleted: %q, %v", got, err)
		}
	})
}

func TestResetPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "a@example.com")
		other := newUser(t, s, "b@example.com")
		if _, err := s.AddSigninFailure(ctx, u.ID, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.LockUser(ctx, u.ID, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPasswordCompromised(ctx, u.ID, true); err != nil {
			t.Fatal(err)
		}
		newSession(t, s, u.ID, "s1", t0)
		newSession(t, s, u.ID, "s2", t0)
		newSession(t, s, other.ID, "s3", t0)
		for _, tok := range []identity.Token{
			{Hash: hash("r1"), Kind: identity.TokenPasswordReset, UserID: u.ID, ExpiresAt: t0.Add(time.Hour)},
			{Hash: hash("r2"), Kind: identity.TokenPasswordReset, UserID: u.ID, ExpiresAt: t0.Add(time.Hour)},
			{Hash: hash("v1"), Kind: identity.TokenVerifyEmail, UserID: u.ID, ExpiresAt: t0.Add(time.Hour)},
			{Hash: hash("old"), Kind: identity.TokenPasswordReset, UserID: u.ID, ExpiresAt: t0.Add(-time.Hour)},
		} {
			if err := s.CreateToken(ctx, &tok); err != nil {
				t.Fatal(err)
			}
		}

		// Unusable tokens fail without changing anything.
		for _, bad := range []string{"v1", "old", "nope"} {
			_, err := s.ResetPassword(ctx, hash(bad), "$argon2id$bad", t0)
			wantNotFound(t, err)
		}
		if got := getUser(t, s, u.ID); got.PasswordHash == "$argon2id$bad" {
			t.Fatal("a failed reset changed the password")
		}

		id, err := s.ResetPassword(ctx, hash("r1"), "$argon2id$new", t0)
		if err != nil || id != u.ID {
			t.Fatalf("ResetPassword = %q, %v", id, err)
		}
		got := getUser(t, s, u.ID)
		if got.PasswordHash != "$argon2id$new" || got.PasswordCompromised || got.FailedSignins != 0 || !got.LockedUntil.IsZero() || !got.UpdatedAt.Equal(t0) {
			t.Fatalf("after reset: %+v", got)
		}
		if list, _ := s.ListSessions(ctx, u.ID); len(list) != 0 {
			t.Fatalf("sessions survived the reset: %d", len(list))
		}
		if list, _ := s.ListSessions(ctx, other.ID); len(list) != 1 {
			t.Fatalf("another user's sessions were deleted")
		}

		// The used token and the user's other reset token are spent; a
		// failing reset leaves the new password and new sessions alone.
		newSession(t, s, u.ID, "s4", t0)
		for _, spent := range []string{"r1", "r2"} {
			_, err := s.ResetPassword(ctx, hash(spent), "$argon2id$again", t0)
			wantNotFound(t, err)
		}
		if got := getUser(t, s, u.ID); got.PasswordHash != "$argon2id$new" {
			t.Fatalf("a spent token changed the password to %q", got.PasswordHash)
		}
		if list, _ := s.ListSessions(ctx, u.ID); len(list) != 1 {
			t.Fatalf("a spent token deleted sessions")
		}
		// Verification tokens are not reset tokens and survive.
		if _, err := s.ConsumeToken(ctx, identity.TokenVerifyEmail, hash("v1"), t0); err != nil {
			t.Fatalf("verify token: %v", err)
		}
	})
}

func TestDevices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "a@example.com")
		v := newUser(t, s, "b@example.com")
		known := func(user, dev string) bool {
			t.Helper()
			ok, err := s.KnownDevice(ctx, user, hash(dev))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if known(u.ID, "d1") {
			t.Fatal("unknown device reported known")
		}
		for i := range 2 { // the second call updates the sighting
			if err := s.RememberDevice(ctx, u.ID, hash("d1"), t0.Add(time.Duration(i)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if !known(u.ID, "d1") || known(v.ID, "d1") || known(u.ID, "d2") {
			t.Fatal("devices are per user and per hash")
		}
		wantKind(t, s.RememberDevice(ctx, "nobody", hash("d1"), t0), fault.NotFound)
	})
}

func TestPasswordHashStats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if st, err := s.PasswordHashStats(ctx); err != nil || st != (identity.HashStats{}) {
			t.Fatalf("empty = %+v, %v", st, err)
		}
		for i, h := range []string{
			"$argon2id$v=19$m=65536,t=3,p=2$a$b",
			"$argon2id$v=19$m=19456,t=2,p=1$a$b",
			"$2a$10$bcrypthash",
			"$ARGON2ID$v=19$upper-case-is-not-the-format",
			"", // no password: not counted
		} {
			u := &identity.User{Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: h}
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		st, err := s.PasswordHashStats(ctx)
		if err != nil || st != (identity.HashStats{Total: 4, NotArgon2id: 2}) {
			t.Fatalf("PasswordHashStats = %+v, %v", st, err)
		}
	})
}

func TestMeta(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, err := s.Meta(ctx, "root_key_fingerprint")
		wantNotFound(t, err)
		if got, err := s.SetMetaIfAbsent(ctx, "root_key_fingerprint", "aaa"); err != nil || got != "aaa" {
			t.Fatalf("first SetMetaIfAbsent = %q, %v", got, err)
		}
		if got, err := s.SetMetaIfAbsent(ctx, "root_key_fingerprint", "bbb"); err != nil || got != "aaa" {
			t.Fatalf("second SetMetaIfAbsent = %q, %v; want the pinned aaa", got, err)
		}
		for _, v := range []string{"first", "second"} {
			if err := s.SetMeta(ctx, "audit_last_verify", v); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Meta(ctx, "audit_last_verify"); err != nil || got != v {
				t.Fatalf("after SetMeta(%q): Meta = %q, %v", v, got, err)
			}
		}
		if got, err := s.Meta(ctx, "root_key_fingerprint"); err != nil || got != "aaa" {
			t.Fatalf("Meta = %q, %v", got, err)
		}

		// Racing first starts agree on one value.
		var wg sync.WaitGroup
		results := make([]string, 8)
		for i := range results {
			wg.Go(func() {
				v, err := s.SetMetaIfAbsent(ctx, "race", fmt.Sprint(i))
				if err != nil {
					t.Error(err)
				}
				results[i] = v
			})
		}
		wg.Wait()
		for _, r := range results {
			if r != results[0] {
				t.Fatalf("racing SetMetaIfAbsent disagree: %v", results)
			}
		}
	})
}

func TestMigrate(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, engine)
			first := storetest.OpenDSN(t, dsn)
			if first.Engine() != engine {
				t.Fatalf("Engine() = %q", first.Engine())
			}
			applied, pending, err := first.MigrationStatus(ctx)
			if err != nil || len(applied) != 0 || len(pending) == 0 || pending[0] != 1 {
				t.Fatalf("fresh status = %v, %v, %v", applied, pending, err)
			}
			want := pending

			// Several nodes starting at once apply each migration once.
			stores := []*store.Store{first, storetest.OpenDSN(t, dsn), storetest.OpenDSN(t, dsn), storetest.OpenDSN(t, dsn)}
			var wg sync.WaitGroup
			for _, s := range stores {
				wg.Go(func() {
					if err := s.Migrate(ctx); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			for range 2 { // and again: a no-op
				if err := first.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				applied, pending, err = first.MigrationStatus(ctx)
				if err != nil || !slices.Equal(applied, want) || len(pending) != 0 {
					t.Fatalf("status = %v, %v, %v; want applied %v", applied, pending, err, want)
				}
			}
			if err := first.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if first.DB() == nil {
				t.Fatal("DB() is nil")
			}
		})
	}
}

func TestCheckTransport(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	t.Setenv("PGHOST", "")
	for _, tc := range []struct {
		dsn           string
		allowInsecure bool
		ok            bool
	}{
		{"postgres://db.example.com/x", false, false},
		{"postgres://db.example.com/x?sslmode=disable", false, false},
		{"postgres://db.example.com/x?sslmode=allow", false, false},
		{"postgres://db.example.com/x?sslmode=prefer", false, false},
		{"postgresql://10.0.0.5:5432/x?sslmode=disable", false, false},
		{"postgres://127.0.0.1,db.example.com/x?sslmode=disable", false, false},
		{"postgres://db.example.com/x?sslmode=require", false, true},
		{"postgres://db.example.com/x?sslmode=verify-full", false, true},
		{"postgres://db.example.com/x", true, true},
		{"postgres://db.example.com/x?sslmode=disable", true, true},
		{"postgres://127.0.0.1/x?sslmode=disable", false, true},
		{"postgres://127.8.9.10/x", false, true},
		{"postgres://localhost/x?sslmode=disable", false, true},
		{"postgres://[::1]:5432/x?sslmode=disable", false, true},
		{"postgres:///x?host=/var/run/postgresql&sslmode=disable", false, true},
	} {
		err := store.CheckTransport(tc.dsn, tc.allowInsecure)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTransport(%q, %v) = %v, want ok=%v", tc.dsn, tc.allowInsecure, err, tc.ok)
		}
		if err != nil && fault.As(err).Code != "insecure_database_transport" {
			t.Errorf("CheckTransport(%q): code %q", tc.dsn, fault.As(err).Code)
		}
	}
	wantKind(t, store.CheckTransport("postgres://h:notaport/x", false), fault.Invalid)
}

func TestOpenRefusesInsecureTransport(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	// 192.0.2.1 is TEST-NET-1: were Open to dial, it would hang until the
	// deadline instead of failing at once.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, dsn := range []string{"postgres://db.example.com/x", "postgres://192.0.2.1/x?sslmode=disable"} {
		_, err := store.Open(ctx, store.Options{DSN: dsn})
		if fault.As(err).Code != "insecure_database_transport" {
			t.Fatalf("Open(%q) = %v, want a TLS-3 refusal", dsn, err)
		}
	}
}

func TestOpenSQLiteFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	fresh := filepath.Join(dir, "sub", "fresh.db")
	s, err := store.Open(ctx, store.Options{SQLitePath: fresh})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Durability and integrity settings of the writer connection.
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "5000"} {
		var got string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
	for _, side := range []string{fresh + "-wal", fresh + "-shm"} {
		fi, err := os.Stat(side)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v; want 0600", filepath.Base(side), fi.Mode().Perm())
		}
	}
	s.Close()
	if fi, err := os.Stat(fresh); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("new database mode = %v; want 0600", fi.Mode().Perm())
	}

	loose := filepath.Join(dir, "loose.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(ctx, store.Options{DSN: loose})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if fi, err := os.Stat(loose); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("existing database mode = %v; want tightened to 0600", fi.Mode().Perm())
	}

	for _, bad := range []store.Options{{}, {DSN: filepath.Join(dir, "x.db?mode=ro")}, {DSN: "file:" + filepath.Join(dir, "x.db")}} {
		_, err := store.Open(ctx, bad)
		wantKind(t, err, fault.Invalid)
	}
}

func BenchmarkSessionByTokenHash(b *testing.B) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, engine)
			u := &identity.User{Email: "a@example.com"}
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			const n = 1000
			for i := range n {
				ss := &identity.Session{UserID: u.ID, TokenHash: hash(fmt.Sprint(i)), ExpiresAt: t0}
				if err := s.CreateSession(ctx, ss); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if _, err := s.SessionByTokenHash(ctx, hash(fmt.Sprint(i%n))); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
