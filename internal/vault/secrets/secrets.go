// Package secrets is Rampart's secrets store (controls SEC-1 and SEC-2):
// named secrets at operator level (workspace "") and per workspace, each a
// list of versions with the stages current, previous and pending,
// check-and-set writes, soft delete and destroy, every read audited, and
// rotation policies that move a secret forward on an interval through a
// Rotator (random value, PostgreSQL role password, signed webhook; see
// internal/rotate).
//
// Values are sealed through vault.Sealer with associated data {Workspace,
// "secret_versions", "value", "<secret id>/<version>"}, so a ciphertext
// copied to another version, secret or workspace does not open. The
// package knows nothing of SQL or HTTP: it declares the Store it needs.
package secrets

import (
	"context"
	"time"
)

// Stage is where a version stands in a secret's life.
type Stage string

// The stages. A secret has at most one version in each; older versions have
// no stage (StageNone) and keep their value until the secret is destroyed.
const (
	StageCurrent  Stage = "current"
	StagePrevious Stage = "previous"
	StagePending  Stage = "pending"
	StageNone     Stage = ""
)

// OrCurrent is s, or StageCurrent for StageNone (a write's default).
func (s Stage) OrCurrent() Stage {
	if s == StageNone {
		return StageCurrent
	}
	return s
}

// Secret is a named secret's metadata; it never holds a value.
type Secret struct {
	ID        string
	Workspace string // "" = operator level
	Name      string
	// Current is the version in stage current (0: none yet); Latest the
	// highest version written, which check-and-set writes compare against.
	Current   int
	Latest    int
	CreatedAt time.Time
	UpdatedAt time.Time
	// DeletedAt set: soft-deleted, readable again after Restore.
	DeletedAt time.Time
	// DestroyedAt set: every value wiped; the name is free again.
	DestroyedAt time.Time
	Rotation    RotationState
}

// RotationState is the outcome of the secret's latest rotation attempt.
type RotationState struct {
	Policy      string    // the policy that rotates it, "" = none yet
	LastAttempt time.Time // start of the latest attempt
	LastSuccess time.Time // latest promotion by rotation
	Status      string    // "", "ok" or "failed"
	Error       string    // a short code of the failed step, never a value
}

// Version is one version's metadata.
type Version struct {
	Version   int
	Stage     Stage
	CreatedAt time.Time
	CreatedBy string // actor id
	Destroyed bool
}

// Store is the persistence the service needs; internal/store implements it.
// Every method is bound to the workspace ws ("" = operator level) and
// returns fault.ErrNotFound for a secret of another workspace.
type Store interface {
	// CreateSecret inserts s (ID and times set by the caller);
	// fault.Conflict when a live (not destroyed) secret has the name.
	CreateSecret(ctx context.Context, s *Secret) error
	// SecretByName returns the live (not destroyed) secret, soft-deleted
	// ones included.
	SecretByName(ctx context.Context, ws, name string) (*Secret, error)
	// ListSecrets lists the live secrets by name, soft-deleted ones only
	// when deleted is true.
	ListSecrets(ctx context.Context, ws string, deleted bool) ([]Secret, error)
	SecretVersions(ctx context.Context, ws, secretID string) ([]Version, error)
	// SecretVersion returns one version and its sealed value (nil once
	// destroyed); version 0 means the current one.
	SecretVersion(ctx context.Context, ws, secretID string, version int) (Version, []byte, error)
	// AddSecretVersion appends v with its sealed value when the secret's
	// Latest still equals expectLatest (else fault.Conflict "cas_mismatch")
	// and it is neither deleted nor destroyed. A current version demotes
	// the current one to previous and the previous one to none; a pending
	// version replaces any pending one.
	AddSecretVersion(ctx context.Context, ws, secretID string, expectLatest int, v Version, sealed []byte, now time.Time) error
	// PromoteSecretVersion makes the pending version current (current →
	// previous, previous → none). Promoting the version that is already
	// current is a no-op, so a resumed rotation can repeat it.
	PromoteSecretVersion(ctx context.Context, ws, secretID string, version int, now time.Time) error
	// DiscardPendingVersion drops the pending stage of version (its value
	// is wiped): a failed rotation leaves nothing half-done.
	DiscardPendingVersion(ctx context.Context, ws, secretID string, version int, now time.Time) error
	// SetSecretDeleted soft-deletes (at non-zero) or restores (at zero).
	SetSecretDeleted(ctx context.Context, ws, secretID string, at time.Time) error
	// DestroySecret wipes every value and marks the secret destroyed.
	DestroySecret(ctx context.Context, ws, secretID string, at time.Time) error
	SetRotationState(ctx context.Context, ws, secretID string, r RotationState) error
}
