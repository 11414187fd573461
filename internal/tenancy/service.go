package tenancy

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	rmail "github.com/rampartsec/rampart/internal/mail"
)

// Config holds the tenancy settings; the app fills it from config.Config.
type Config struct {
	PublicURL        string
	InvitationTTL    time.Duration // default 7 days
	APIKeyDefaultTTL time.Duration // default 90 days
	APIKeyMaxTTL     time.Duration // default 365 days; every key expires
	StepUpWindow     time.Duration // how fresh an MFA check sensitive permissions need; default 10m
	// AdminMFAOptional lets admin-only permissions be used from sessions
	// without MFA. It is inverted so that the zero Config is the safe one:
	// admin access needs an MFA session (AUTH-2, AC-7) unless this is set.
	AdminMFAOptional   bool
	StaleAfter         time.Duration // access unused this long is flagged in reviews; default 90 days
	ReviewEvery        time.Duration // a review is due this long after the last; default 90 days
	SupportGrantMaxTTL time.Duration // longest support grant; default 72h
	// DecisionCacheTTL bounds how long another node's role change can go
	// unseen on this node when no change notification arrives; this node's
	// own changes invalidate at once. Default 2s.
	DecisionCacheTTL time.Duration
}

// Accounts is what tenancy needs from identity.
type Accounts interface {
	User(ctx context.Context, id string) (*identity.User, error)
	UserByEmail(ctx context.Context, email string) (*identity.User, error)
	// ProvisionUser returns the account of an address, creating a
	// password-less, verified one if needed (SCIM). created reports which.
	ProvisionUser(ctx context.Context, email string) (u *identity.User, created bool, err error)
	// RevokeAllSessions ends every session of the user (keepID "" = all).
	RevokeAllSessions(ctx context.Context, userID, keepID string) (int, error)
}

// Mailer sends invitation and review-reminder mail.
type Mailer interface {
	Send(ctx context.Context, m rmail.Message) error
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store    Store
	Accounts Accounts
	Mailer   Mailer
	Audit    audit.Recorder
	// OnWorkspaceDelete runs before a workspace's rows are deleted; the
	// vault uses it to destroy the workspace's keys (crypto-shredding).
	// An error aborts the deletion.
	OnWorkspaceDelete func(ctx context.Context, workspaceID string) error
	// Alert is told about events that need a human now (break-glass
	// access); the audit issue routes it to webhooks and mail.
	Alert func(ctx context.Context, e audit.Event)
	Log   *slog.Logger
	Now   func() time.Time
	Rand  io.Reader
}

// Principal is who is acting. Exactly one of UserID (a signed-in person,
// possibly operator staff), APIKey (a machine) or OperatorID (staff acting
// under a support grant or break-glass) identifies it.
type Principal struct {
	UserID     string
	SessionID  string
	MFA        bool      // the session passed a second factor
	MFAAt      time.Time // last second-factor check, for step-up
	APIKey     *APIKey
	OperatorID string
	// SupportGrant is set for an operator acting under a grant; BreakGlass
	// for one acting without a grant (with a recorded reason).
	SupportGrant *SupportGrant
	BreakGlass   bool
	// Workspace and Until bind an operator principal (set by
	// EnterWorkspace) to the one workspace it was admitted to and to the
	// end of that admission (the grant's expiry, or BreakGlassTTL), so it
	// cannot be replayed elsewhere or kept as standing access (AC-6).
	Workspace string
	Until     time.Time
	IP        string
}

// Decision reasons.
const (
	ReasonAllowed           = "allowed"
	ReasonNotMember         = "not_member"         // no access to the workspace at all (HTTP: 404)
	ReasonDenied            = "permission_denied"  // member without the permission
	ReasonMFARequired       = "mfa_required"       // needs an MFA session
	ReasonStepUpRequired    = "step_up_required"   // needs a fresh MFA check (sensitive permission)
	ReasonUnknownPermission = "unknown_permission" // no such permission is registered
	ReasonKeyInvalid        = "key_invalid"        // API key expired or revoked
	ReasonInactive          = "inactive"           // member deactivated over SCIM
	// ReasonUnavailable means the decision could not be made (storage
	// failed); it is a denial, never cached (fail closed).
	ReasonUnavailable = "unavailable"
)

// Decision is the answer to "may this principal do this here", with why.
type Decision struct {
	Permission string
	Allowed    bool
	Reason     string
}

// ReviewEntry is one member as an access review shows them.
type ReviewEntry struct {
	Member      Member
	APIKeys     []APIKey
	Stale       bool // no use of the workspace within StaleAfter
	MFAEnabled  bool
	Permissions []string // effective permissions
}

// ReviewReport is the current state of a workspace's access for review.
type ReviewReport struct {
	WorkspaceID string
	GeneratedAt time.Time
	Entries     []ReviewEntry
	LastReview  *AccessReview // nil if never reviewed
	DueAt       time.Time     // when the next review is due
}

// Service implements workspaces, roles, authorization, API keys, SCIM,
// access reviews and support access.
type Service struct {
	cfg Config
	d   Deps
	az  authz    // the decision cache (service_authz.go)
	tch toucher  // last-active write throttle
	kc  keyCache // verified API keys (service_keycache.go)
}

// New returns a Service; zero Config fields get their defaults.
func New(cfg Config, d Deps) *Service {
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&cfg.InvitationTTL, 7*24*time.Hour)
	def(&cfg.APIKeyDefaultTTL, 90*24*time.Hour)
	def(&cfg.APIKeyMaxTTL, 365*24*time.Hour)
	def(&cfg.StepUpWindow, 10*time.Minute)
	def(&cfg.StaleAfter, 90*24*time.Hour)
	def(&cfg.ReviewEvery, 90*24*time.Hour)
	def(&cfg.SupportGrantMaxTTL, 72*time.Hour)
	def(&cfg.DecisionCacheTTL, 2*time.Second)
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, d: d}
	s.az.init()
	s.tch.m = make(map[touchKey]int64)
	return s
}
