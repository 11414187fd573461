package secrets

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// Change is what a Rotator is asked to apply: the new value (the pending
// version) and, when the secret already had one, the current value it
// replaces (to roll back to).
type Change struct {
	Workspace       string
	Secret          string // name
	Version         int
	Value           []byte
	PreviousVersion int // 0: none
	Previous        []byte
}

// Rotator moves the system that uses a secret to a new value. Every step
// must be idempotent: a rotation interrupted between steps is resumed from
// its pending version and repeats the steps with the same value.
type Rotator interface {
	// Kind names the rotator for the audit trail ("random", "postgres", …).
	Kind() string
	// Generate makes a new value.
	Generate(ctx context.Context) ([]byte, error)
	// Set makes the new value valid where it is used.
	Set(ctx context.Context, c Change) error
	// Test proves the new value works.
	Test(ctx context.Context, c Change) error
	// Rollback makes c.Previous valid again after Set (or a failed Test);
	// it is only called when there is a previous value.
	Rollback(ctx context.Context, c Change) error
}

// Policy rotates one secret on an interval.
type Policy struct {
	Name      string
	Workspace string // "" = operator level
	Secret    string
	Interval  time.Duration
	// RetryAfter spaces failed attempts (default: Interval/10, at most an
	// hour, at least a minute).
	RetryAfter time.Duration
	Rotator    Rotator
}

func (p Policy) retryAfter() time.Duration {
	if p.RetryAfter > 0 {
		return p.RetryAfter
	}
	return min(max(p.Interval/10, time.Minute), time.Hour)
}

// Status is a policy's rotation state as the SEC-2 check reports it.
type Status struct {
	Policy      string
	Workspace   string
	Secret      string
	LastRotated time.Time // zero: never
	NextDue     time.Time
	Overdue     bool // due for longer than the grace given to PolicyStatus
	State       RotationState
}

// PolicyStatus reports where p stands at now. A secret is overdue when its
// last rotation (or first write) is older than its interval plus grace.
func (s *Service) PolicyStatus(ctx context.Context, p Policy, grace time.Duration) (Status, error) {
	st := Status{Policy: p.Name, Workspace: p.Workspace, Secret: p.Secret}
	now := s.d.Now().UTC()
	sec, err := s.lookup(ctx, p.Workspace, p.Secret)
	if err == errNotFound {
		st.NextDue, st.Overdue = now, false // created by its first rotation, which is due at once
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.State = sec.Rotation
	st.LastRotated, err = s.lastRotated(ctx, sec)
	if err != nil {
		return st, err
	}
	if st.LastRotated.IsZero() {
		st.NextDue = now
	} else {
		st.NextDue = st.LastRotated.Add(p.Interval)
	}
	st.Overdue = !st.LastRotated.IsZero() && now.Sub(st.NextDue) > grace || st.LastRotated.IsZero() && now.Sub(sec.CreatedAt) > grace
	return st, nil
}

// lastRotated is the latest rotation success, or else the current
// version's creation (a value written by hand counts as fresh).
func (s *Service) lastRotated(ctx context.Context, sec *Secret) (time.Time, error) {
	last := sec.Rotation.LastSuccess
	if sec.Current > 0 {
		v, _, err := s.d.Store.SecretVersion(ctx, sec.Workspace, sec.ID, sec.Current)
		if err != nil && !fault.Is(err, fault.NotFound) {
			return time.Time{}, err
		}
		if v.CreatedAt.After(last) {
			last = v.CreatedAt
		}
	}
	return last, nil
}

// Due reports whether p should rotate now: never rotated, interval passed,
// or a pending version left by an interrupted rotation (and a failed
// attempt is not retried before p.RetryAfter).
func (s *Service) Due(ctx context.Context, p Policy) (bool, error) {
	now := s.d.Now().UTC()
	sec, err := s.lookup(ctx, p.Workspace, p.Secret)
	if err == errNotFound {
		return true, nil
	}
	if err != nil || !sec.DeletedAt.IsZero() {
		return false, err
	}
	if sec.Rotation.Status == "failed" && now.Sub(sec.Rotation.LastAttempt) < p.retryAfter() {
		return false, nil
	}
	if sec.Latest > sec.Current {
		if _, pending, err := s.pending(ctx, sec); err != nil || pending > 0 {
			return pending > 0, err
		}
	}
	last, err := s.lastRotated(ctx, sec)
	if err != nil {
		return false, err
	}
	return last.IsZero() || !now.Before(last.Add(p.Interval)), nil
}

func (s *Service) pending(ctx context.Context, sec *Secret) ([]Version, int, error) {
	vs, err := s.d.Store.SecretVersions(ctx, sec.Workspace, sec.ID)
	if err != nil {
		return nil, 0, err
	}
	for _, v := range vs {
		if v.Stage == StagePending && !v.Destroyed {
			return vs, v.Version, nil
		}
	}
	return vs, 0, nil
}

// RotationError is a failed rotation: Step names where it stopped
// ("generate", "pending", "set", "test", "promote", …) and RolledBack
// whether the previous value was made valid again.
type RotationError struct {
	Step       string
	RolledBack bool
	Err        error
}

func (e *RotationError) Error() string {
	return "rotation failed at " + e.Step + ": " + e.Err.Error()
}
func (e *RotationError) Unwrap() error { return e.Err }

// Rotate runs one rotation of p: create a pending version (or resume the
// one an interrupted run left), Set it through the rotator, Test it, and
// promote it (pending → current → previous). A failure at Set or Test
// rolls the rotator back to the current value and discards the pending
// version; a failure at promotion keeps the pending version so the next
// run resumes it. Either way the current version stays current, the
// attempt is marked on the secret, "secrets.rotate" is audited with the
// failure and "secret.rotation_failed" raises an alert. It returns the
// promoted version.
func (s *Service) Rotate(ctx context.Context, a Actor, p Policy) (int, error) {
	if p.Rotator == nil {
		return 0, fault.New(fault.Invalid, "rotator_missing", "the policy has no rotator")
	}
	now := s.d.Now().UTC()
	sec, err := s.lookup(ctx, p.Workspace, p.Secret)
	if err == errNotFound {
		id, err := s.newID()
		if err != nil {
			return 0, err
		}
		sec = &Secret{ID: id, Workspace: p.Workspace, Name: p.Secret, CreatedAt: now, UpdatedAt: now}
		if err := s.d.Store.CreateSecret(ctx, sec); err != nil && !fault.Is(err, fault.Conflict) {
			return 0, err
		} else if err != nil {
			if sec, err = s.lookup(ctx, p.Workspace, p.Secret); err != nil {
				return 0, err
			}
		}
	} else if err != nil {
		return 0, err
	}
	if !sec.DeletedAt.IsZero() {
		return 0, errDeleted
	}
	state := sec.Rotation
	state.Policy, state.LastAttempt = p.Name, now
	fail := func(step string, cause error, rolledBack bool) (int, error) {
		state.Status, state.Error = "failed", step
		if err := s.d.Store.SetRotationState(ctx, p.Workspace, sec.ID, state); err != nil {
			s.d.Log.Error("secret rotation state not stored", "secret", p.Secret, "err", err)
		}
		details := map[string]string{"policy": p.Name, "rotator": p.Rotator.Kind(), "step": step, "rolled_back": strconv.FormatBool(rolledBack),
			"current": strconv.Itoa(sec.Current)}
		_ = s.record(ctx, a, p.Workspace, "secrets.rotate", p.Secret, audit.Failure, details)
		_ = s.record(ctx, a, p.Workspace, "secret.rotation_failed", p.Secret, audit.Failure, details)
		s.d.Log.Warn("secret rotation failed", "policy", p.Name, "step", step, "err", cause)
		return 0, &RotationError{Step: step, RolledBack: rolledBack, Err: cause}
	}
	if err := s.d.Store.SetRotationState(ctx, p.Workspace, sec.ID, state); err != nil {
		return 0, err
	}

	// Resume a pending version, or create one.
	_, version, err := s.pending(ctx, sec)
	if err != nil {
		return fail("pending", err, false)
	}
	var value []byte
	resumed := version > 0
	if resumed {
		_, sealed, err := s.d.Store.SecretVersion(ctx, p.Workspace, sec.ID, version)
		if err == nil && sealed == nil {
			err = errVersionGone
		}
		if err != nil {
			return fail("pending", err, false)
		}
		if value, err = s.d.Sealer.Open(ctx, sealed, AD(p.Workspace, sec.ID, version)); err != nil {
			return fail("pending", err, false)
		}
	} else {
		if value, err = p.Rotator.Generate(ctx); err != nil {
			return fail("generate", err, false)
		}
		if len(value) == 0 || len(value) > MaxValueSize {
			return fail("generate", errValueInvalid, false)
		}
		version = sec.Latest + 1
		sealed, err := s.d.Sealer.Seal(ctx, value, AD(p.Workspace, sec.ID, version))
		if err != nil {
			return fail("pending", err, false)
		}
		if err := s.d.Store.AddSecretVersion(ctx, p.Workspace, sec.ID, sec.Latest, Version{Version: version, Stage: StagePending, CreatedAt: now, CreatedBy: a.ID}, sealed, now); err != nil {
			return fail("pending", err, false)
		}
	}
	defer clear(value)
	c := Change{Workspace: p.Workspace, Secret: p.Secret, Version: version, Value: value}
	if sec.Current > 0 && sec.Current != version {
		_, sealed, err := s.d.Store.SecretVersion(ctx, p.Workspace, sec.ID, sec.Current)
		if err == nil && sealed != nil {
			if prev, err := s.d.Sealer.Open(ctx, sealed, AD(p.Workspace, sec.ID, sec.Current)); err == nil {
				c.PreviousVersion, c.Previous = sec.Current, prev
				defer clear(prev)
			}
		}
	}
	undo := func(step string, cause error) (int, error) {
		rolledBack := false
		if c.Previous != nil {
			if err := p.Rotator.Rollback(ctx, c); err != nil {
				cause = errors.Join(cause, err)
				step += "+rollback"
			} else {
				rolledBack = true
			}
		}
		if err := s.d.Store.DiscardPendingVersion(ctx, p.Workspace, sec.ID, version, s.d.Now().UTC()); err != nil {
			cause = errors.Join(cause, err)
		}
		return fail(step, cause, rolledBack)
	}
	if err := p.Rotator.Set(ctx, c); err != nil {
		return undo("set", err)
	}
	if err := p.Rotator.Test(ctx, c); err != nil {
		return undo("test", err)
	}
	done := s.d.Now().UTC()
	if err := s.d.Store.PromoteSecretVersion(ctx, p.Workspace, sec.ID, version, done); err != nil {
		return fail("promote", err, false) // the pending version stays: the next run resumes it
	}
	state.Status, state.Error, state.LastSuccess = "ok", "", done
	if err := s.d.Store.SetRotationState(ctx, p.Workspace, sec.ID, state); err != nil {
		s.d.Log.Error("secret rotation state not stored", "secret", p.Secret, "err", err)
	}
	_ = s.record(ctx, a, p.Workspace, "secrets.rotate", p.Secret, audit.Success, map[string]string{"policy": p.Name, "rotator": p.Rotator.Kind(),
		"version": strconv.Itoa(version), "resumed": strconv.FormatBool(resumed)})
	return version, nil
}

// Resolve reads the current value of an operator-level secret for the
// configuration's ${secret:name} references. Audited as a read by the
// system actor "config".
func (s *Service) Resolve(ctx context.Context, name string) ([]byte, error) {
	v, err := s.Get(ctx, Actor{Type: audit.ActorSystem, ID: "config"}, "", name, Selector{})
	if err != nil {
		return nil, err
	}
	return v.Value, nil
}
