package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestSessionMFAAt covers the mfa_at column (migration 0002): set by
// CompleteSessionMFA and StepUpSession, kept through rotation, and NULL
// (zero) until the first second-factor check.
func TestSessionMFAAt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "alice@example.com")
		pending := newSession(t, s, u.ID, "pending", t0)
		got, err := s.SessionByTokenHash(ctx, hash("pending"))
		mustOK(t, err)
		if !got.MFAAt.IsZero() || got.MFA {
			t.Fatalf("new session MFA %v at %v", got.MFA, got.MFAAt)
		}

		done := t0.Add(time.Minute)
		mustOK(t, s.CompleteSessionMFA(ctx, pending.ID, hash("full"), done, t0.Add(24*time.Hour)))
		got, err = s.SessionByTokenHash(ctx, hash("full"))
		mustOK(t, err)
		if !got.MFA || !got.MFAAt.Equal(done) {
			t.Fatalf("after CompleteSessionMFA: MFA %v at %v, want at %v", got.MFA, got.MFAAt, done)
		}

		for _, tc := range []struct {
			name string
			at   time.Time
		}{
			{"step up", t0.Add(time.Hour)},
			{"step up again", t0.Add(2 * time.Hour)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				mustOK(t, s.StepUpSession(ctx, pending.ID, tc.at))
				got, err := s.SessionByTokenHash(ctx, hash("full"))
				mustOK(t, err)
				if !got.MFA || !got.MFAAt.Equal(tc.at) {
					t.Fatalf("MFA %v at %v, want at %v", got.MFA, got.MFAAt, tc.at)
				}
			})
		}

		// A session that never had a second factor gains one by step-up.
		plain := newSession(t, s, u.ID, "plain", t0)
		mustOK(t, s.StepUpSession(ctx, plain.ID, t0.Add(time.Second)))
		got, err = s.SessionByTokenHash(ctx, hash("plain"))
		mustOK(t, err)
		if !got.MFA || !got.MFAAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("plain session after step-up: MFA %v at %v", got.MFA, got.MFAAt)
		}

		// Rotation keeps the last check.
		ok, err := s.RotateSession(ctx, plain.ID, hash("plain"), hash("plain2"), t0.Add(time.Minute), t0.Add(time.Minute))
		if err != nil || !ok {
			t.Fatalf("RotateSession = %v, %v", ok, err)
		}
		got, err = s.SessionByTokenHash(ctx, hash("plain2"))
		mustOK(t, err)
		if !got.MFAAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("MFAAt after rotation = %v", got.MFAAt)
		}

		wantNotFound(t, s.StepUpSession(ctx, "nope", t0))
	})
}
