package tenancy

import (
	"context"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// BreakGlassTTL is how long one break-glass admission lasts; after it the
// operator must enter (and be recorded and alerted on) again, so
// break-glass never becomes standing access (AC-6).
const BreakGlassTTL = time.Hour

// minBreakGlassReason is the shortest accepted break-glass reason: enough
// to force a sentence, not a keystroke.
const minBreakGlassReason = 10

// AddOperator marks an existing account as operator staff, optionally
// limited to networks (CIDRs). For the CLI only.
func (s *Service) AddOperator(ctx context.Context, email string, networks []string) (*Operator, error) {
	u, err := s.d.Accounts.UserByEmail(ctx, email)
	if err != nil {
		return nil, mapNotFound(err, fault.New(fault.NotFound, "account_not_found", "no account has this address"))
	}
	nets := make([]string, 0, len(networks))
	for _, n := range networks {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			return nil, fault.Invalidf("network_invalid", "%q is not a CIDR network", n)
		}
		nets = append(nets, pfx.Masked().String())
	}
	o := &Operator{UserID: u.ID, Email: u.Email, AllowedNetworks: nets, CreatedAt: s.d.Now().UTC()}
	if err := s.d.Store.CreateOperator(ctx, o); err != nil {
		return nil, err
	}
	if err := s.record(ctx, audit.Event{ActorType: audit.ActorSystem, Action: "operator.add", Target: "user:" + u.ID,
		Outcome: audit.Success, Details: map[string]string{"networks": strings.Join(nets, ",")}}); err != nil {
		return nil, err
	}
	return o, nil
}

// Operator returns the operator record of an account.
func (s *Service) Operator(ctx context.Context, userID string) (*Operator, error) {
	o, err := s.d.Store.Operator(ctx, userID)
	return o, mapNotFound(err, fault.New(fault.NotFound, "operator_not_found", "no such operator"))
}

// OperatorPrincipal checks that a signed-in person may act as operator
// staff now: an operator, in an MFA session, from an allowed network (AC-7).
func (s *Service) OperatorPrincipal(ctx context.Context, p Principal) (*Operator, error) {
	notOperator := fault.New(fault.Forbidden, "not_operator", "operator staff only")
	if requireUser(&p) != nil {
		return nil, notOperator
	}
	o, err := s.d.Store.Operator(ctx, p.UserID)
	if err != nil {
		return nil, mapNotFound(err, notOperator)
	}
	if !p.MFA {
		return nil, fault.New(fault.Forbidden, "mfa_required", "operator access needs a session signed in with a second factor")
	}
	if len(o.AllowedNetworks) > 0 && !inNetworks(p.IP, o.AllowedNetworks) {
		return nil, fault.New(fault.Forbidden, "network_not_allowed", "operator access is not allowed from this network")
	}
	return o, nil
}

func inNetworks(ip string, networks []string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, n := range networks {
		if pfx, err := netip.ParsePrefix(n); err == nil && pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// GrantSupport lets operator staff (one, or any when operatorID is "")
// into ws for ttl with a scope the granter holds (AC-6).
func (s *Service) GrantSupport(ctx context.Context, p Principal, ws, operatorID string, scope []string, ttl time.Duration, reason string) (*SupportGrant, error) {
	if err := s.Require(ctx, p, ws, PermSupportGrant); err != nil {
		return nil, err
	}
	if err := requireUser(&p); err != nil {
		return nil, err
	}
	if operatorID != "" {
		if _, err := s.d.Store.Operator(ctx, operatorID); err != nil {
			return nil, mapNotFound(err, fault.Invalidf("unknown_operator", "no such operator"))
		}
	}
	switch {
	case ttl <= 0:
		return nil, fault.Invalidf("ttl_invalid", "the grant needs a positive lifetime")
	case ttl > s.cfg.SupportGrantMaxTTL:
		return nil, fault.Invalidf("ttl_too_long", "a support grant lasts at most %s", s.cfg.SupportGrantMaxTTL)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > 500 {
		return nil, fault.Invalidf("reason_invalid", "give a reason of at most 500 characters")
	}
	if len(scope) == 0 {
		return nil, fault.Invalidf("scope_required", "a grant needs at least one permission")
	}
	scope, err := s.knownPerms(ctx, scope)
	if err != nil {
		return nil, err
	}
	have, err := s.effective(ctx, &p, ws)
	if err != nil {
		return nil, err
	}
	if !subsetOf(scope, have) {
		return nil, fault.New(fault.Forbidden, "scope_exceeds_granter", "you cannot grant permissions you do not hold")
	}
	id, err := s.randomID()
	if err != nil {
		return nil, err
	}
	now := s.d.Now().UTC()
	g := &SupportGrant{ID: id, WorkspaceID: ws, OperatorID: operatorID, GrantedBy: p.UserID, Scope: scope, Reason: reason,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.d.Store.CreateSupportGrant(ctx, g); err != nil {
		return nil, err
	}
	if err := s.recordBy(ctx, &p, ws, "support.grant", "support_grant:"+id, map[string]string{
		"operator": operatorID, "scope": strings.Join(scope, ","), "expires_at": g.ExpiresAt.Format(time.RFC3339)}); err != nil {
		return nil, err
	}
	return g, nil
}

// SupportGrants lists the workspace's support grants.
func (s *Service) SupportGrants(ctx context.Context, p Principal, ws string) ([]SupportGrant, error) {
	if err := s.Require(ctx, p, ws, PermMembersRead); err != nil {
		return nil, err
	}
	return s.d.Store.ListSupportGrants(ctx, ws)
}

// RevokeSupportGrant ends a grant; operators under it lose access at once
// in this process.
func (s *Service) RevokeSupportGrant(ctx context.Context, p Principal, ws, id string) error {
	if err := s.Require(ctx, p, ws, PermSupportGrant); err != nil {
		return err
	}
	if err := s.d.Store.RevokeSupportGrant(ctx, ws, id, s.d.Now().UTC()); err != nil {
		return mapNotFound(err, fault.New(fault.NotFound, "support_grant_not_found", "no such support grant"))
	}
	s.invalidate(ws)
	return s.recordBy(ctx, &p, ws, "support.revoke", "support_grant:"+id, nil)
}

// EnterWorkspace admits an operator to ws: under an active grant, or
// without one as break-glass with a written reason, which is audited and
// alerted on. The access is recorded for the customer to see either way.
func (s *Service) EnterWorkspace(ctx context.Context, op Principal, ws, breakGlassReason string) (Principal, error) {
	o, err := s.OperatorPrincipal(ctx, op)
	if err != nil {
		return Principal{}, err
	}
	now := s.d.Now().UTC()
	p := Principal{OperatorID: o.UserID, SessionID: op.SessionID, MFA: op.MFA, MFAAt: op.MFAAt, IP: op.IP, Workspace: ws}
	accessID, err := s.randomID()
	if err != nil {
		return Principal{}, err
	}
	g, err := s.d.Store.ActiveSupportGrant(ctx, ws, o.UserID, now)
	switch {
	case err == nil:
		p.SupportGrant, p.Until = g, g.ExpiresAt
		a := &SupportAccess{ID: accessID, WorkspaceID: ws, OperatorID: o.UserID, GrantID: g.ID, Reason: g.Reason, Action: "enter", At: now}
		if err := s.d.Store.RecordSupportAccess(ctx, a); err != nil {
			return Principal{}, err
		}
		if err := s.recordBy(ctx, &p, ws, "support.access", "support_grant:"+g.ID, map[string]string{"support_access": accessID}); err != nil {
			return Principal{}, err
		}
		return p, nil
	case !fault.Is(err, fault.NotFound):
		return Principal{}, err
	}
	reason := strings.TrimSpace(breakGlassReason)
	if n := utf8.RuneCountInString(reason); n < minBreakGlassReason || n > 1000 {
		return Principal{}, fault.Invalidf("break_glass_reason_required", "without a support grant, give a reason of at least %d characters", minBreakGlassReason)
	}
	if _, err := s.d.Store.Workspace(ctx, ws); err != nil {
		return Principal{}, mapNotFound(err, errWorkspaceNotFound)
	}
	p.BreakGlass, p.Until = true, now.Add(BreakGlassTTL)
	a := &SupportAccess{ID: accessID, WorkspaceID: ws, OperatorID: o.UserID, BreakGlass: true, Reason: reason, Action: "break_glass", At: now}
	if err := s.d.Store.RecordSupportAccess(ctx, a); err != nil {
		return Principal{}, err
	}
	m := audit.MetaFrom(ctx)
	ev := audit.Event{ActorType: ActorOperator, ActorID: o.UserID, Workspace: ws, Action: "support.break_glass",
		Target: "workspace:" + ws, Outcome: audit.Success, IP: m.IP, UserAgent: m.UserAgent, RequestID: m.RequestID,
		Details: map[string]string{"support_access": accessID}}
	// No access without the record: break-glass is only acceptable because
	// it is seen.
	if err := s.record(ctx, ev); err != nil {
		return Principal{}, err
	}
	if s.d.Alert != nil {
		ev.Time = now
		s.d.Alert(ctx, ev)
	}
	return p, nil
}

// SupportAccessLog lists what operators did in ws (AC-6).
func (s *Service) SupportAccessLog(ctx context.Context, p Principal, ws string) ([]SupportAccess, error) {
	if err := s.Require(ctx, p, ws, PermMembersRead); err != nil {
		return nil, err
	}
	return s.d.Store.ListSupportAccess(ctx, ws)
}
