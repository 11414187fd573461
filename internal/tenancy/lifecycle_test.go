package tenancy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
)

func TestInvitations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, ivy, mallory := e.person("admin@example.com"), e.person("ivy@example.com"), e.person("mallory@example.com")
		ws := e.workspace(admin, "Acme")

		invite := func(email string) string {
			t.Helper()
			if _, err := e.svc.Invite(e.ctx, admin.mfa(), ws, email, tenancy.RoleEditor); err != nil {
				t.Fatalf("Invite(%s): %v", email, err)
			}
			msgs := e.mail.find(strings.ToLower(email), tenancy.KindInvitation)
			if len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1].Subject, "Acme") {
				t.Fatalf("no invitation mail to %s", email)
			}
			return linkToken(t, msgs[len(msgs)-1], "/invitations/accept")
		}

		tok := invite("IVY@example.com")
		e.wantEvent("invitation.create", ws, audit.ActorUser, admin.ID)
		_, err := e.svc.AcceptInvitation(e.ctx, mallory.plain(), tok)
		wantFault(t, err, fault.Forbidden, "invitation_email_mismatch")
		_, err = e.svc.AcceptInvitation(e.ctx, ivy.plain(), tok+"x")
		wantFault(t, err, fault.Invalid, "invitation_invalid")
		w, err := e.svc.AcceptInvitation(e.ctx, ivy.plain(), tok)
		must(t, err)
		if w.ID != ws {
			t.Fatalf("accepted into %s, want %s", w.ID, ws)
		}
		e.wantDecision(ivy.plain(), ws, tenancy.PermContentWrite, allowed)
		e.wantEvent("invitation.accept", ws, audit.ActorUser, ivy.ID)
		// Single use.
		_, err = e.svc.AcceptInvitation(e.ctx, ivy.plain(), tok)
		wantFault(t, err, fault.Invalid, "invitation_invalid")
		// A member cannot be invited again.
		_, err = e.svc.Invite(e.ctx, admin.mfa(), ws, ivy.Email, tenancy.RoleReadOnly)
		wantFault(t, err, fault.Conflict, "already_member")
		_, err = e.svc.Invite(e.ctx, admin.mfa(), ws, "not an address", tenancy.RoleReadOnly)
		wantFault(t, err, fault.Invalid, "email_invalid")
		_, err = e.svc.Invite(e.ctx, ivy.mfa(), ws, "x@example.com", tenancy.RoleReadOnly)
		wantFault(t, err, fault.Forbidden, denied)

		// Expiry.
		tok = invite("late@example.com")
		late := e.person("late@example.com")
		e.clock.Advance(7*24*time.Hour + time.Second)
		_, err = e.svc.AcceptInvitation(e.ctx, late.plain(), tok)
		wantFault(t, err, fault.Invalid, "invitation_invalid")

		// Decline, then the token is dead.
		tok = invite(late.Email)
		must(t, e.svc.DeclineInvitation(e.ctx, late.plain(), tok))
		_, err = e.svc.AcceptInvitation(e.ctx, late.plain(), tok)
		wantFault(t, err, fault.Invalid, "invitation_invalid")
		e.wantEvent("invitation.decline", ws, audit.ActorUser, late.ID)

		// Revoke.
		tok = invite(late.Email)
		invs, err := e.svc.Invitations(e.ctx, admin.plain(), ws)
		must(t, err)
		var pending string
		for _, inv := range invs {
			if inv.AcceptedAt.IsZero() && inv.DeclinedAt.IsZero() && inv.RevokedAt.IsZero() && e.clock.Now().Before(inv.ExpiresAt) {
				pending = inv.ID
			}
		}
		must(t, e.svc.RevokeInvitation(e.ctx, admin.mfa(), ws, pending))
		_, err = e.svc.AcceptInvitation(e.ctx, late.plain(), tok)
		wantFault(t, err, fault.Invalid, "invitation_invalid")
		e.wantEvent("invitation.revoke", ws, audit.ActorUser, admin.ID)
		wantFault(t, e.svc.RevokeInvitation(e.ctx, admin.mfa(), ws, pending), fault.NotFound, "invitation_not_found")
		e.wantDecision(late.plain(), ws, tenancy.PermContentRead, notMember)
	})
}

func TestAccessReview(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, func(c *tenancy.Config) { c.StaleAfter = 30 * 24 * time.Hour; c.ReviewEvery = 90 * 24 * time.Hour })
		admin, active, idle, gone := e.person("admin@example.com"), e.person("active@example.com"), e.person("idle@example.com"), e.person("gone@example.com")
		ws := e.workspace(admin, "Acme")
		e.join(admin, ws, active, tenancy.RoleEditor)
		e.join(admin, ws, idle, tenancy.RoleEditor)
		e.join(admin, ws, gone, tenancy.RoleEditor, tenancy.RoleAdmin)
		_, goneKey, err := e.svc.CreateAPIKey(e.ctx, gone.mfa(), ws, "gone-ci", []string{tenancy.PermContentWrite}, 0)
		must(t, err)
		goneP, err := e.svc.AuthenticateAPIKey(e.ctx, goneKey, "192.0.2.5")
		must(t, err)

		// No reminders while the workspace is young.
		n, err := e.svc.RemindDueReviews(e.ctx)
		must(t, err)
		if n != 0 {
			t.Fatalf("reminded %d workspaces, want 0", n)
		}

		e.clock.Advance(60 * 24 * time.Hour)
		must(t, e.svc.Require(e.ctx, active.plain(), ws, tenancy.PermContentRead))
		must(t, e.svc.Require(e.ctx, admin.plain(), ws, tenancy.PermContentRead))

		_, err = e.svc.ReviewReport(e.ctx, active.mfa(), ws)
		wantFault(t, err, fault.Forbidden, denied)
		rep, err := e.svc.ReviewReport(e.ctx, admin.mfa(), ws)
		must(t, err)
		if rep.LastReview != nil || !rep.DueAt.Equal(start.Add(90*24*time.Hour)) || len(rep.Entries) != 4 {
			t.Fatalf("report = %+v", rep)
		}
		for _, en := range rep.Entries {
			wantStale := en.Member.UserID == idle.ID || en.Member.UserID == gone.ID
			if en.Stale != wantStale {
				t.Errorf("%s stale = %v, want %v", en.Member.Email, en.Stale, wantStale)
			}
			if en.Member.UserID == gone.ID && (len(en.APIKeys) != 1 || en.APIKeys[0].LastUsedIP != "192.0.2.5" ||
				!slices.Contains(en.Permissions, tenancy.PermBillingManage)) {
				t.Errorf("gone's entry = %+v", en)
			}
			if en.Member.UserID == active.ID && (slices.Contains(en.Permissions, tenancy.PermMembersManage) || !slices.Contains(en.Permissions, tenancy.PermContentWrite)) {
				t.Errorf("active's permissions = %v", en.Permissions)
			}
		}

		// Invalid reviews change nothing.
		bad := []struct {
			name string
			ds   []tenancy.ReviewDecision
			kind fault.Kind
			code string
		}{
			{"unknown member", []tenancy.ReviewDecision{{UserID: idle.ID, Decision: tenancy.DecisionRemove}, {UserID: "nobody", Decision: tenancy.DecisionKeep}}, fault.Invalid, "unknown_member"},
			{"bad decision", []tenancy.ReviewDecision{{UserID: idle.ID, Decision: tenancy.DecisionRemove}, {UserID: active.ID, Decision: "fire"}}, fault.Invalid, "decision_invalid"},
			{"unknown role", []tenancy.ReviewDecision{{UserID: idle.ID, Decision: tenancy.DecisionRemove}, {UserID: active.ID, Decision: tenancy.DecisionChange, Roles: []string{"boss"}}}, fault.Invalid, "unknown_role"},
			{"duplicate", []tenancy.ReviewDecision{{UserID: idle.ID, Decision: tenancy.DecisionRemove}, {UserID: idle.ID, Decision: tenancy.DecisionKeep}}, fault.Invalid, "duplicate_decision"},
			{"no admin left", []tenancy.ReviewDecision{{UserID: idle.ID, Decision: tenancy.DecisionRemove}, {UserID: gone.ID, Decision: tenancy.DecisionRemove},
				{UserID: admin.ID, Decision: tenancy.DecisionChange, Roles: []string{tenancy.RoleEditor}}}, fault.Conflict, "last_admin"},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				_, err := e.svc.RecordReview(e.ctx, admin.mfa(), ws, b.ds)
				wantFault(t, err, b.kind, b.code)
				e.wantDecision(idle.plain(), ws, tenancy.PermContentRead, allowed)
			})
		}

		rev, err := e.svc.RecordReview(e.ctx, admin.mfa(), ws, []tenancy.ReviewDecision{
			{UserID: admin.ID, Decision: tenancy.DecisionKeep},
			{UserID: active.ID, Decision: tenancy.DecisionKeep},
			{UserID: idle.ID, Decision: tenancy.DecisionChange, Roles: []string{tenancy.RoleReadOnly}, Note: "no longer edits"},
			{UserID: gone.ID, Decision: tenancy.DecisionRemove, Note: "left the company"},
		})
		must(t, err)
		e.wantDecision(idle.plain(), ws, tenancy.PermContentWrite, denied)
		e.wantDecision(idle.plain(), ws, tenancy.PermContentRead, allowed)
		e.wantDecision(gone.mfa(), ws, tenancy.PermContentRead, notMember)
		e.wantDecision(goneP, ws, tenancy.PermContentWrite, tenancy.ReasonKeyInvalid)
		_, err = e.svc.AuthenticateAPIKey(e.ctx, goneKey, "")
		wantFault(t, err, fault.Unauthenticated, "api_key_invalid")
		ev := e.wantEvent("access_review.record", ws, audit.ActorUser, admin.ID)
		if ev.Details["removed"] != "1" || ev.Details["changed"] != "1" || ev.Details["kept"] != "2" {
			t.Fatalf("review event details = %v", ev.Details)
		}
		rep, err = e.svc.ReviewReport(e.ctx, admin.mfa(), ws)
		must(t, err)
		if rep.LastReview == nil || rep.LastReview.ID != rev.ID || len(rep.LastReview.Decisions) != 4 ||
			!rep.DueAt.Equal(e.clock.Now().Add(90*24*time.Hour)) || len(rep.Entries) != 3 {
			t.Fatalf("report after review = %+v", rep)
		}

		// Reminders: due 90 days after the review, to active Admins only.
		e.clock.Advance(89 * 24 * time.Hour)
		if n, err := e.svc.RemindDueReviews(e.ctx); err != nil || n != 0 {
			t.Fatalf("RemindDueReviews early = %d, %v", n, err)
		}
		e.clock.Advance(24 * time.Hour)
		other := e.person("other@example.com")
		e.workspace(other, "Young") // created now: not due
		n, err = e.svc.RemindDueReviews(e.ctx)
		must(t, err)
		if n != 1 {
			t.Fatalf("reminded %d workspaces, want 1", n)
		}
		if got := e.mail.find(admin.Email, tenancy.KindAccessReviewDue); len(got) != 1 || !strings.Contains(got[0].Text, "/workspaces/"+ws+"/access-review") {
			t.Fatalf("admin reminders = %+v", got)
		}
		for _, p := range []person{active, idle, other} {
			if got := e.mail.find(p.Email, tenancy.KindAccessReviewDue); len(got) != 0 {
				t.Fatalf("%s got a reminder", p.Email)
			}
		}
	})
}

func TestSupportAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, staff, outsider := e.person("admin@example.com"), e.person("staff@rampart.test"), e.person("outsider@example.com")
		ws := e.workspace(admin, "Acme")
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "tickets.read"}))

		_, err := e.svc.AddOperator(e.ctx, "nobody@rampart.test", nil)
		wantFault(t, err, fault.NotFound, "account_not_found")
		_, err = e.svc.AddOperator(e.ctx, staff.Email, []string{"not-a-cidr"})
		wantFault(t, err, fault.Invalid, "network_invalid")
		op, err := e.svc.AddOperator(e.ctx, staff.Email, []string{"203.0.113.0/24"})
		must(t, err)
		if op.UserID != staff.ID {
			t.Fatalf("operator = %+v", op)
		}

		staffAt := func(ip string) tenancy.Principal { p := staff.mfa(); p.IP = ip; return p }
		gate := []struct {
			name string
			p    tenancy.Principal
			code string
		}{
			{"not an operator", outsider.mfa(), "not_operator"},
			{"no MFA", func() tenancy.Principal { p := staff.plain(); p.IP = "203.0.113.5"; return p }(), "mfa_required"},
			{"wrong network", staffAt("198.51.100.1"), "network_not_allowed"},
			{"no address", staffAt(""), "network_not_allowed"},
		}
		for _, g := range gate {
			t.Run(g.name, func(t *testing.T) {
				_, err := e.svc.OperatorPrincipal(e.ctx, g.p)
				wantFault(t, err, fault.Forbidden, g.code)
				_, err = e.svc.EnterWorkspace(e.ctx, g.p, ws, "customer ticket 4711 needs a look")
				wantFault(t, err, fault.Forbidden, g.code)
			})
		}
		staffP := staffAt("203.0.113.5")

		// Granting: sensitive (step-up), bounded, within the granter's scope.
		stale := admin.mfa()
		e.clock.Advance(time.Hour)
		_, err = e.svc.GrantSupport(e.ctx, stale, ws, staff.ID, []string{"tickets.read"}, time.Hour, "ticket 4711")
		wantFault(t, err, fault.Forbidden, tenancy.ReasonStepUpRequired)
		_, err = e.svc.GrantSupport(e.ctx, admin.mfa(), ws, staff.ID, []string{"tickets.read"}, 73*time.Hour, "ticket 4711")
		wantFault(t, err, fault.Invalid, "ttl_too_long")
		_, err = e.svc.GrantSupport(e.ctx, admin.mfa(), ws, outsider.ID, []string{"tickets.read"}, time.Hour, "ticket 4711")
		wantFault(t, err, fault.Invalid, "unknown_operator")
		_, err = e.svc.GrantSupport(e.ctx, admin.mfa(), ws, staff.ID, []string{"tickets.read"}, time.Hour, " ")
		wantFault(t, err, fault.Invalid, "reason_invalid")
		g, err := e.svc.GrantSupport(e.ctx, admin.mfa(), ws, staff.ID, []string{"tickets.read", tenancy.PermContentWrite}, 2*time.Hour, "ticket 4711")
		must(t, err)
		e.wantEvent("support.grant", ws, audit.ActorUser, admin.ID)

		in, err := e.svc.EnterWorkspace(e.ctx, staffP, ws, "")
		must(t, err)
		if in.SupportGrant == nil || in.SupportGrant.ID != g.ID || in.BreakGlass || in.OperatorID != staff.ID {
			t.Fatalf("EnterWorkspace = %+v", in)
		}
		e.wantEvent("support.access", ws, tenancy.ActorOperator, staff.ID)
		e.wantDecision(in, ws, "tickets.read", allowed)
		e.wantDecision(in, ws, tenancy.PermContentWrite, allowed)
		e.wantDecision(in, ws, tenancy.PermContentRead, denied)
		e.wantDecision(in, ws, tenancy.PermMembersRead, denied)
		must(t, e.svc.Require(e.ctx, in, ws, "tickets.read"))
		// The principal is bound to its workspace.
		other := e.workspace(admin, "Other")
		e.wantDecision(in, other, "tickets.read", notMember)
		// Expiry ends access (2h grant).
		e.clock.Advance(2 * time.Hour)
		e.wantDecision(in, ws, "tickets.read", notMember)
		_, err = e.svc.EnterWorkspace(e.ctx, staffAt("203.0.113.5"), ws, "")
		wantFault(t, err, fault.Invalid, "break_glass_reason_required")

		// Revocation ends access at once.
		g2, err := e.svc.GrantSupport(e.ctx, admin.mfa(), ws, "", []string{"tickets.read"}, time.Hour, "ticket 4712")
		must(t, err)
		in, err = e.svc.EnterWorkspace(e.ctx, staffAt("203.0.113.5"), ws, "")
		must(t, err)
		e.wantDecision(in, ws, "tickets.read", allowed)
		must(t, e.svc.RevokeSupportGrant(e.ctx, admin.mfa(), ws, g2.ID))
		e.wantDecision(in, ws, "tickets.read", notMember)
		e.wantEvent("support.revoke", ws, audit.ActorUser, admin.ID)

		// Break-glass: a real reason, read-only, audited and alerted.
		_, err = e.svc.EnterWorkspace(e.ctx, staffAt("203.0.113.5"), ws, "urgent")
		wantFault(t, err, fault.Invalid, "break_glass_reason_required")
		_, err = e.svc.EnterWorkspace(e.ctx, staffAt("203.0.113.5"), "nosuchworkspace", "incident 99: data corruption")
		wantFault(t, err, fault.NotFound, "workspace_not_found")
		bg, err := e.svc.EnterWorkspace(e.ctx, staffAt("203.0.113.5"), ws, "incident 99: data corruption")
		must(t, err)
		if !bg.BreakGlass || bg.SupportGrant != nil {
			t.Fatalf("break-glass principal = %+v", bg)
		}
		ev := e.wantEvent("support.break_glass", ws, tenancy.ActorOperator, staff.ID)
		if ev.Outcome != audit.Success {
			t.Fatalf("break-glass outcome %s", ev.Outcome)
		}
		e.mu.Lock()
		alerts := slices.Clone(e.alerts)
		e.mu.Unlock()
		if len(alerts) != 1 || alerts[0].Action != "support.break_glass" || alerts[0].Workspace != ws {
			t.Fatalf("alerts = %+v", alerts)
		}
		e.wantDecision(bg, ws, tenancy.PermContentRead, allowed)
		e.wantDecision(bg, ws, "tickets.read", allowed)
		e.wantDecision(bg, ws, tenancy.PermContentWrite, denied)
		e.wantDecision(bg, ws, tenancy.PermMembersManage, denied)
		e.wantDecision(bg, other, tenancy.PermContentRead, notMember)
		must(t, e.svc.Require(e.ctx, bg, ws, tenancy.PermContentRead))
		e.clock.Advance(tenancy.BreakGlassTTL)
		e.wantDecision(bg, ws, tenancy.PermContentRead, notMember)

		// The customer sees every access.
		log, err := e.svc.SupportAccessLog(e.ctx, admin.plain(), ws)
		must(t, err)
		var enters, glass, uses int
		for _, a := range log {
			switch {
			case a.BreakGlass && a.Action == "break_glass":
				glass++
				if a.Reason != "incident 99: data corruption" {
					t.Errorf("break-glass reason = %q", a.Reason)
				}
			case a.Action == "enter":
				enters++
			default:
				uses++
			}
		}
		if enters != 2 || glass != 1 || uses != 2 {
			t.Fatalf("support log: %d enters, %d break-glass, %d uses: %+v", enters, glass, uses, log)
		}
		grants, err := e.svc.SupportGrants(e.ctx, admin.plain(), ws)
		must(t, err)
		if len(grants) != 2 {
			t.Fatalf("SupportGrants = %d", len(grants))
		}
	})
}
