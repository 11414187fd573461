package secrets

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// Limits on what callers may store. A secret is small: a password, a key,
// a connection string; 64 KiB leaves room for a certificate chain.
const (
	MaxNameLen   = 128
	MaxValueSize = 64 << 10
)

// The associated data of a stored value names this table and column.
const (
	adTable  = "secret_versions"
	adColumn = "value"
)

// Deps are the service's collaborators, injected.
type Deps struct {
	Store  Store
	Sealer vault.Sealer
	Audit  audit.Recorder
	Log    *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// Service is the secrets store.
type Service struct{ d Deps }

// New returns a Service; Now and Log default to time.Now and a discarding
// logger, Store, Sealer, Audit and Rand are required.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{d: d}
}

// Actor is who acts, as the audit trail records it.
type Actor struct {
	Type string // audit.ActorUser, ActorAPIKey, ActorOperator, ActorSystem
	ID   string
}

// Errors callers can tell apart by code.
var (
	errNameInvalid  = fault.New(fault.Invalid, "secret_name_invalid", "a secret name is 1 to 128 characters: letters, digits, '.', '_' and '-', starting with a letter or digit")
	errValueInvalid = fault.New(fault.Invalid, "secret_value_invalid", "a secret value is 1 byte to 64 KiB")
	errStageInvalid = fault.New(fault.Invalid, "secret_stage_invalid", "stage must be current, previous or pending")
	errNotFound     = fault.New(fault.NotFound, "secret_not_found", "no such secret")
	errDeleted      = fault.New(fault.Conflict, "secret_deleted", "the secret is deleted; restore it first")
	errVersionGone  = fault.New(fault.NotFound, "secret_version_not_found", "no such version, or its value was destroyed")
)

// ValidName reports whether name may name a secret: 1 to MaxNameLen ASCII
// letters, digits, '.', '_' and '-', starting with a letter or digit. No
// '/' (names are one URL path segment) and nothing that needs escaping.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ParseStage parses a stage name; "" is refused (callers decide defaults).
func ParseStage(s string) (Stage, error) {
	switch Stage(s) {
	case StageCurrent, StagePrevious, StagePending:
		return Stage(s), nil
	}
	return StageNone, errStageInvalid
}

// AD is the associated data that binds version's value to its row.
func AD(ws, secretID string, version int) vault.AD {
	return vault.AD{Workspace: ws, Table: adTable, Column: adColumn, Row: secretID + "/" + strconv.Itoa(version)}
}

func (s *Service) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.d.Rand, b[:]); err != nil {
		return "", fault.Wrap(fault.Internal, "internal", "cannot generate an id", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func target(name string) string { return "secret:" + name }

func (s *Service) record(ctx context.Context, a Actor, ws, action, name string, outcome audit.Outcome, details map[string]string) error {
	return s.d.Audit.Record(ctx, audit.FromRequest(ctx, audit.Event{ActorType: a.Type, ActorID: a.ID, Workspace: ws, Action: action,
		Target: target(name), Outcome: outcome, Details: details}))
}

// lookup returns the live secret; errNotFound when there is none.
func (s *Service) lookup(ctx context.Context, ws, name string) (*Secret, error) {
	if !ValidName(name) {
		return nil, errNameInvalid
	}
	sec, err := s.d.Store.SecretByName(ctx, ws, name)
	if fault.Is(err, fault.NotFound) {
		return nil, errNotFound
	}
	return sec, err
}

// PutOptions shape a write.
type PutOptions struct {
	// CAS, when set, is the version the writer last saw (Secret.Latest;
	// 0 = "the secret must not exist yet"): a stale write is refused with
	// fault.Conflict "cas_mismatch" instead of overwriting a newer value.
	CAS *int
	// Stage of the new version: StageCurrent (default) or StagePending.
	Stage Stage
}

// Put writes a new version of ws/name, creating the secret on first write,
// and returns the secret and the new version number. Audited
// "secrets.write" (name, version, stage; never the value).
func (s *Service) Put(ctx context.Context, a Actor, ws, name string, value []byte, o PutOptions) (*Secret, int, error) {
	if !ValidName(name) {
		return nil, 0, errNameInvalid
	}
	if len(value) == 0 || len(value) > MaxValueSize {
		return nil, 0, errValueInvalid
	}
	switch o.Stage {
	case StageNone:
		o.Stage = StageCurrent
	case StageCurrent, StagePending:
	default:
		return nil, 0, fault.New(fault.Invalid, "secret_stage_invalid", "a new version is current or pending")
	}
	// Without CAS a lost race is retried against the new latest version;
	// with CAS it is the caller's conflict to resolve.
	for attempt := 0; ; attempt++ {
		sec, v, err := s.put(ctx, a, ws, name, value, o)
		if err == nil {
			_ = s.record(ctx, a, ws, "secrets.write", name, audit.Success, map[string]string{"version": strconv.Itoa(v), "stage": string(o.Stage)})
			return sec, v, nil
		}
		if o.CAS != nil || attempt >= 4 || fault.As(err) == nil || fault.As(err).Code != "cas_mismatch" {
			if fault.Is(err, fault.Conflict) || fault.Is(err, fault.Invalid) {
				_ = s.record(ctx, a, ws, "secrets.write", name, audit.Failure, map[string]string{"reason": codeOf(err)})
			}
			return nil, 0, err
		}
	}
}

func codeOf(err error) string {
	if fe := fault.As(err); fe != nil {
		return fe.Code
	}
	return "internal"
}

var errCAS = fault.New(fault.Conflict, "cas_mismatch", "the secret changed since the version given in cas; read it again")

func (s *Service) put(ctx context.Context, a Actor, ws, name string, value []byte, o PutOptions) (*Secret, int, error) {
	now := s.d.Now().UTC()
	sec, err := s.lookup(ctx, ws, name)
	switch {
	case err == errNotFound:
		if o.CAS != nil && *o.CAS != 0 {
			return nil, 0, errCAS
		}
		id, err := s.newID()
		if err != nil {
			return nil, 0, err
		}
		sec = &Secret{ID: id, Workspace: ws, Name: name, CreatedAt: now, UpdatedAt: now}
		if err := s.d.Store.CreateSecret(ctx, sec); err != nil {
			if fault.Is(err, fault.Conflict) {
				return nil, 0, errCAS // created concurrently: retry (or a CAS conflict)
			}
			return nil, 0, err
		}
	case err != nil:
		return nil, 0, err
	}
	if !sec.DeletedAt.IsZero() {
		return nil, 0, errDeleted
	}
	if o.CAS != nil && *o.CAS != sec.Latest {
		return nil, 0, errCAS
	}
	v := sec.Latest + 1
	sealed, err := s.d.Sealer.Seal(ctx, value, AD(ws, sec.ID, v))
	if err != nil {
		return nil, 0, fault.Wrap(fault.Internal, "seal_failed", "the value could not be encrypted", err)
	}
	if err := s.d.Store.AddSecretVersion(ctx, ws, sec.ID, sec.Latest, Version{Version: v, Stage: o.Stage, CreatedAt: now, CreatedBy: a.ID}, sealed, now); err != nil {
		if fault.Is(err, fault.Conflict) {
			return nil, 0, errCAS
		}
		return nil, 0, err
	}
	sec.Latest = v
	if o.Stage == StageCurrent {
		sec.Current = v
	}
	sec.UpdatedAt = now
	return sec, v, nil
}

// Selector picks a version: Version > 0 wins; else Stage; else current.
type Selector struct {
	Version int
	Stage   Stage
}

// Value is one read version and its plaintext.
type Value struct {
	Secret  Secret
	Version Version
	Value   []byte
}

// Get reads a version's value. Every read is audited ("secrets.read" with
// the name and version, never the value) before the value is returned: if
// the read cannot be recorded, it is refused (fail closed).
func (s *Service) Get(ctx context.Context, a Actor, ws, name string, sel Selector) (*Value, error) {
	sec, err := s.lookup(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if !sec.DeletedAt.IsZero() {
		return nil, errDeleted
	}
	version := sel.Version
	if version <= 0 && sel.Stage != StageNone && sel.Stage != StageCurrent {
		vs, err := s.d.Store.SecretVersions(ctx, ws, sec.ID)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if v.Stage == sel.Stage {
				version = v.Version
			}
		}
		if version <= 0 {
			return nil, errVersionGone
		}
	}
	if version <= 0 {
		version = sec.Current
		if version <= 0 {
			return nil, errVersionGone
		}
	}
	v, sealed, err := s.d.Store.SecretVersion(ctx, ws, sec.ID, version)
	if fault.Is(err, fault.NotFound) || (err == nil && sealed == nil) {
		return nil, errVersionGone
	}
	if err != nil {
		return nil, err
	}
	plain, err := s.d.Sealer.Open(ctx, sealed, AD(ws, sec.ID, v.Version))
	if err != nil {
		_ = s.record(ctx, a, ws, "secrets.read", name, audit.Failure, map[string]string{"version": strconv.Itoa(v.Version), "reason": "open_failed"})
		return nil, fault.Wrap(fault.Internal, "secret_unreadable", "the stored value could not be decrypted", err)
	}
	if err := s.record(ctx, a, ws, "secrets.read", name, audit.Success, map[string]string{"version": strconv.Itoa(v.Version), "stage": string(v.Stage)}); err != nil {
		clear(plain)
		return nil, fault.Wrap(fault.Unavailable, "audit_unavailable", "the read could not be recorded, so it is refused", err)
	}
	return &Value{Secret: *sec, Version: v, Value: plain}, nil
}

// Describe returns the secret's metadata and versions (no values; not a
// read of the secret, so not audited as one).
func (s *Service) Describe(ctx context.Context, ws, name string) (*Secret, []Version, error) {
	sec, err := s.lookup(ctx, ws, name)
	if err != nil {
		return nil, nil, err
	}
	vs, err := s.d.Store.SecretVersions(ctx, ws, sec.ID)
	if err != nil {
		return nil, nil, err
	}
	return sec, vs, nil
}

// List lists the workspace's secrets (metadata only); deleted selects the
// soft-deleted ones instead of the live ones.
func (s *Service) List(ctx context.Context, ws string, deleted bool) ([]Secret, error) {
	return s.d.Store.ListSecrets(ctx, ws, deleted)
}

// Promote makes a pending version current. Audited "secrets.promote".
func (s *Service) Promote(ctx context.Context, a Actor, ws, name string, version int) error {
	sec, err := s.lookup(ctx, ws, name)
	if err != nil {
		return err
	}
	if !sec.DeletedAt.IsZero() {
		return errDeleted
	}
	if err := s.d.Store.PromoteSecretVersion(ctx, ws, sec.ID, version, s.d.Now().UTC()); err != nil {
		return err
	}
	return s.record(ctx, a, ws, "secrets.promote", name, audit.Success, map[string]string{"version": strconv.Itoa(version)})
}

// Delete soft-deletes a secret: it can no longer be read or written until
// Restore. Audited "secrets.delete".
func (s *Service) Delete(ctx context.Context, a Actor, ws, name string) error {
	sec, err := s.lookup(ctx, ws, name)
	if err != nil {
		return err
	}
	if !sec.DeletedAt.IsZero() {
		return nil
	}
	if err := s.d.Store.SetSecretDeleted(ctx, ws, sec.ID, s.d.Now().UTC()); err != nil {
		return err
	}
	return s.record(ctx, a, ws, "secrets.delete", name, audit.Success, nil)
}

// Restore undoes Delete. Audited "secrets.restore".
func (s *Service) Restore(ctx context.Context, a Actor, ws, name string) error {
	sec, err := s.lookup(ctx, ws, name)
	if err != nil {
		return err
	}
	if err := s.d.Store.SetSecretDeleted(ctx, ws, sec.ID, time.Time{}); err != nil {
		return err
	}
	return s.record(ctx, a, ws, "secrets.restore", name, audit.Success, nil)
}

// Destroy wipes every stored value of the secret for good and frees its
// name. Audited "secrets.destroy".
func (s *Service) Destroy(ctx context.Context, a Actor, ws, name string) error {
	sec, err := s.lookup(ctx, ws, name)
	if err != nil {
		return err
	}
	if err := s.d.Store.DestroySecret(ctx, ws, sec.ID, s.d.Now().UTC()); err != nil {
		return err
	}
	return s.record(ctx, a, ws, "secrets.destroy", name, audit.Success, map[string]string{"versions": strconv.Itoa(sec.Latest)})
}
