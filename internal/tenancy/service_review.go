package tenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	rmail "github.com/rampartsec/rampart/internal/mail"
)

// KindAccessReviewDue is the mail kind of a review reminder.
const KindAccessReviewDue = "access_review_due"

// lastReview returns the newest review, or nil.
func lastReview(reviews []AccessReview) *AccessReview {
	var last *AccessReview
	for i := range reviews {
		if last == nil || reviews[i].CreatedAt.After(last.CreatedAt) {
			last = &reviews[i]
		}
	}
	return last
}

// reviewDue is when the next review of w is due: ReviewEvery after the
// last review, or after creation when there was none.
func (s *Service) reviewDue(w *Workspace, last *AccessReview) time.Time {
	base := w.CreatedAt
	if last != nil {
		base = last.CreatedAt
	}
	return base.Add(s.cfg.ReviewEvery)
}

// customRoleMap reads the workspace's custom roles (for reviews: fresh,
// not from the decision cache).
func (s *Service) customRoleMap(ctx context.Context, ws string) (map[string][]string, error) {
	roles, err := s.d.Store.ListRoles(ctx, ws)
	if err != nil {
		return nil, err
	}
	m := make(map[string][]string, len(roles))
	for _, r := range roles {
		if !r.BuiltIn && !isBuiltinRole(r.ID) {
			m[r.ID] = r.Permissions
		}
	}
	return m, nil
}

// ReviewReport shows who holds what in ws, when they last used it, and
// which access is stale (AC-5).
func (s *Service) ReviewReport(ctx context.Context, p Principal, ws string) (*ReviewReport, error) {
	if err := s.Require(ctx, p, ws, PermAccessReview); err != nil {
		return nil, err
	}
	w, err := s.d.Store.Workspace(ctx, ws)
	if err != nil {
		return nil, mapNotFound(err, errWorkspaceNotFound)
	}
	members, err := s.d.Store.ListMembers(ctx, ws)
	if err != nil {
		return nil, err
	}
	keys, err := s.d.Store.ListAPIKeys(ctx, ws)
	if err != nil {
		return nil, err
	}
	reviews, err := s.d.Store.ListAccessReviews(ctx, ws)
	if err != nil {
		return nil, err
	}
	now := s.d.Now()
	cat, err := s.loadCatalog(ctx, now)
	if err != nil {
		return nil, err
	}
	custom, err := s.customRoleMap(ctx, ws)
	if err != nil {
		return nil, err
	}
	last := lastReview(reviews)
	r := &ReviewReport{WorkspaceID: ws, GeneratedAt: now.UTC(), LastReview: last, DueAt: s.reviewDue(w, last)}
	for _, m := range members {
		e := ReviewEntry{Member: m, MFAEnabled: m.MFAEnabled,
			Stale: m.LastActiveAt.IsZero() || now.Sub(m.LastActiveAt) > s.cfg.StaleAfter}
		for _, k := range keys {
			if k.CreatedBy == m.UserID && k.RevokedAt.IsZero() && now.Before(k.ExpiresAt) {
				e.APIKeys = append(e.APIKeys, k)
			}
		}
		if m.Active {
			for p := range expandRoles(m.Roles, cat, custom) {
				e.Permissions = append(e.Permissions, p)
			}
			slices.Sort(e.Permissions)
		}
		r.Entries = append(r.Entries, e)
	}
	return r, nil
}

// RecordReview applies the reviewer's decisions and records the signed-off
// review. Every decision is validated before any is applied, so a bad
// entry (unknown member or role, bad decision, or one that would leave no
// Admin) changes nothing.
func (s *Service) RecordReview(ctx context.Context, p Principal, ws string, decisions []ReviewDecision) (*AccessReview, error) {
	if err := s.Require(ctx, p, ws, PermAccessReview); err != nil {
		return nil, err
	}
	if err := requireUser(&p); err != nil {
		return nil, err
	}
	members, err := s.d.Store.ListMembers(ctx, ws)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Member, len(members))
	for i := range members {
		byID[members[i].UserID] = &members[i]
	}
	seen := make(map[string]bool, len(decisions))
	var granted []string
	out := make([]ReviewDecision, 0, len(decisions))
	var kept, changed, removed int
	after := make(map[string][]string, len(members)) // user → roles after the review; absent = removed
	for _, m := range members {
		after[m.UserID] = m.Roles
	}
	for _, d := range decisions {
		if byID[d.UserID] == nil {
			return nil, fault.Invalidf("unknown_member", "a decision names someone who is not a member")
		}
		if seen[d.UserID] {
			return nil, fault.Invalidf("duplicate_decision", "a member has more than one decision")
		}
		seen[d.UserID] = true
		if len(d.Note) > 1000 {
			return nil, fault.Invalidf("note_too_long", "a note is longer than 1000 characters")
		}
		switch d.Decision {
		case DecisionKeep:
			d.Roles = nil
			kept++
		case DecisionChange:
			roles, err := normRoles(d.Roles)
			if err != nil {
				return nil, err
			}
			perms, err := s.rolesPerms(ctx, ws, roles)
			if err != nil {
				return nil, err
			}
			granted = append(granted, perms...)
			d.Roles = roles
			after[d.UserID] = roles
			changed++
		case DecisionRemove:
			d.Roles = nil
			delete(after, d.UserID)
			removed++
		default:
			return nil, fault.Invalidf("decision_invalid", "a decision is keep, change or remove")
		}
		out = append(out, d)
	}
	if err := s.mayGrant(ctx, &p, ws, granted); err != nil {
		return nil, err
	}
	if countAdmins(members, nil) > 0 && countAdmins(members, after) == 0 {
		return nil, errLastAdmin
	}
	now := s.d.Now().UTC()
	for _, d := range out {
		switch d.Decision {
		case DecisionChange:
			err = s.d.Store.SetMemberRoles(ctx, ws, d.UserID, d.Roles, true)
		case DecisionRemove:
			if err = s.d.Store.RemoveMember(ctx, ws, d.UserID); err == nil {
				_, err = s.d.Store.RevokeUserAPIKeys(ctx, ws, d.UserID, now)
			}
		}
		s.invalidate(ws)
		if err != nil {
			return nil, mapLastAdmin(mapNotFound(err, errMemberNotFound))
		}
	}
	id, err := s.randomID()
	if err != nil {
		return nil, err
	}
	rev := &AccessReview{ID: id, WorkspaceID: ws, ReviewerID: p.UserID, Decisions: out, CreatedAt: now}
	if err := s.d.Store.CreateAccessReview(ctx, rev); err != nil {
		return nil, err
	}
	if err := s.recordBy(ctx, &p, ws, "access_review.record", "access_review:"+id, map[string]string{
		"kept": strconv.Itoa(kept), "changed": strconv.Itoa(changed), "removed": strconv.Itoa(removed)}); err != nil {
		return nil, err
	}
	return rev, nil
}

// countAdmins counts active members holding Admin, with roles taken from
// after when it is given (absent there = removed).
func countAdmins(members []Member, after map[string][]string) int {
	n := 0
	for _, m := range members {
		roles := m.Roles
		if after != nil {
			var ok bool
			if roles, ok = after[m.UserID]; !ok {
				continue
			}
		}
		if m.Active && slices.Contains(roles, RoleAdmin) {
			n++
		}
	}
	return n
}

// RemindDueReviews mails the active Admins of every workspace whose access
// review is due, and returns how many workspaces were reminded. It is for
// a periodic job; while a review stays due, each run reminds again.
func (s *Service) RemindDueReviews(ctx context.Context) (int, error) {
	all, err := s.d.Store.AllWorkspaces(ctx)
	if err != nil {
		return 0, err
	}
	now := s.d.Now()
	n := 0
	var errs []error
	for i := range all {
		w := &all[i]
		reviews, err := s.d.Store.ListAccessReviews(ctx, w.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		due := s.reviewDue(w, lastReview(reviews))
		if now.Before(due) {
			continue
		}
		members, err := s.d.Store.ListMembers(ctx, w.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sent := 0
		for _, m := range members {
			if !m.Active || !slices.Contains(m.Roles, RoleAdmin) {
				continue
			}
			email := m.Email
			if email == "" {
				u, err := s.d.Accounts.User(ctx, m.UserID)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				email = u.Email
			}
			msg := rmail.Message{Kind: KindAccessReviewDue, To: email,
				Subject: "Access review due for " + w.Name,
				Text: fmt.Sprintf("The access review of the workspace %q was due on %s.\n\n"+
					"Review who holds which role and sign it off:\n%s\n",
					w.Name, due.UTC().Format("2 January 2006"), s.link("/workspaces/"+w.ID+"/access-review"))}
			if err := s.send(ctx, msg); err != nil {
				errs = append(errs, err)
				continue
			}
			sent++
		}
		if sent > 0 {
			n++
			_ = s.record(ctx, audit.Event{ActorType: audit.ActorSystem, Workspace: w.ID, Action: "access_review.reminder",
				Target: "workspace:" + w.ID, Outcome: audit.Success, Details: map[string]string{"admins": strconv.Itoa(sent)}})
		}
	}
	return n, errors.Join(errs...)
}
