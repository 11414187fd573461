package tenancy_test

import (
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
)

const (
	allowed   = tenancy.ReasonAllowed
	denied    = tenancy.ReasonDenied
	notMember = tenancy.ReasonNotMember
)

func TestDenyByDefault(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		owner, stranger := e.person("owner@example.com"), e.person("stranger@example.com")
		ws := e.workspace(owner, "Acme")
		perms, err := e.svc.Permissions(e.ctx)
		must(t, err)
		cases := []struct {
			name string
			p    tenancy.Principal
			ws   string
		}{
			{"stranger", stranger.mfa(), ws},
			{"nobody", tenancy.Principal{}, ws},
			{"unknown workspace", owner.mfa(), "nosuchworkspace"},
			{"empty workspace", owner.mfa(), ""},
			{"operator without grant", tenancy.Principal{OperatorID: owner.ID, MFA: true, MFAAt: e.clock.Now()}, ws},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, p := range perms {
					e.wantDecision(c.p, c.ws, p.Name, notMember)
				}
				e.wantDecision(c.p, c.ws, "no.such", notMember)
				err := e.svc.Require(e.ctx, c.p, c.ws, tenancy.PermWorkspaceRead)
				wantFault(t, err, fault.NotFound, "workspace_not_found")
			})
		}
		// Denials through Require are audited in the workspace.
		ev := e.wantEvent("authz.denied", ws, audit.ActorUser, stranger.ID)
		if ev.Outcome != audit.Denied || ev.Details["permission"] != tenancy.PermWorkspaceRead || ev.Details["reason"] != notMember {
			t.Fatalf("denial event = %+v", ev)
		}
		// A member holds nothing beyond its roles, and unknown permissions
		// are named as such.
		e.wantDecision(owner.mfa(), ws, "no.such", tenancy.ReasonUnknownPermission)
		wantFault(t, e.svc.Require(e.ctx, owner.mfa(), ws, "no.such"), fault.Forbidden, tenancy.ReasonUnknownPermission)
	})
}

func TestRoleMatrix(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.read"}))
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.write"}))
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.export", Sensitive: true}))
		admin, editor, reader := e.person("admin@example.com"), e.person("editor@example.com"), e.person("reader@example.com")
		ws := e.workspace(admin, "Acme")
		e.join(admin, ws, editor, tenancy.RoleEditor)
		e.join(admin, ws, reader, tenancy.RoleReadOnly)

		// A: admin, E: editor, R: read-only (each with a fresh MFA session).
		table := []struct {
			perm    string
			a, e, r bool
		}{
			{tenancy.PermWorkspaceRead, true, true, true},
			{tenancy.PermWorkspaceManage, true, false, false},
			{tenancy.PermWorkspaceDelete, true, false, false},
			{tenancy.PermMembersRead, true, true, true},
			{tenancy.PermMembersManage, true, false, false},
			{tenancy.PermRolesRead, true, true, true},
			{tenancy.PermRolesManage, true, false, false},
			{tenancy.PermBillingRead, true, true, true},
			{tenancy.PermBillingManage, true, false, false},
			{tenancy.PermContentRead, true, true, true},
			{tenancy.PermContentWrite, true, true, false},
			{tenancy.PermAPIKeysRead, true, true, true},
			{tenancy.PermAPIKeysManage, true, false, false},
			{tenancy.PermSCIMManage, true, false, false},
			{tenancy.PermAuditRead, true, true, true},
			{tenancy.PermAccessReview, true, false, false},
			{tenancy.PermSupportGrant, true, false, false},
			{tenancy.PermAuthzCheck, true, false, false},
			{"reports.read", true, true, true},
			{"reports.write", true, false, false},
			{"reports.export", true, false, false},
		}
		want := func(ok bool) string {
			if ok {
				return allowed
			}
			return denied
		}
		for _, row := range table {
			t.Run(row.perm, func(t *testing.T) {
				e.wantDecision(admin.mfa(), ws, row.perm, want(row.a))
				e.wantDecision(editor.mfa(), ws, row.perm, want(row.e))
				e.wantDecision(reader.mfa(), ws, row.perm, want(row.r))
			})
		}
		// The batch form answers the same.
		ds := e.svc.CheckBatch(e.ctx, reader.mfa(), ws, []string{"content.read", "content.write", "bogus.perm"})
		if !ds[0].Allowed || ds[1].Reason != denied || ds[2].Reason != tenancy.ReasonUnknownPermission {
			t.Fatalf("CheckBatch = %+v", ds)
		}
		// A permission registered later reaches the built-in roles at once.
		e.wantDecision(reader.mfa(), ws, "metrics.read", tenancy.ReasonUnknownPermission)
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "metrics.read"}))
		e.wantDecision(reader.mfa(), ws, "metrics.read", allowed)
	})
}

func TestRegisterPermissionValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		for _, c := range []struct {
			name, code string
		}{
			{"Reports.read", "permission_invalid"},
			{"reports", "permission_invalid"},
			{"reports.", "permission_invalid"},
			{".read", "permission_invalid"},
			{"a.b.c", "permission_invalid"},
			{"reports-x.read", "permission_invalid"},
			{"content.read", "permission_builtin"},
		} {
			wantFault(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: c.name}), fault.Invalid, c.code)
		}
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports_v2.export_csv", Sensitive: true}))
		perms, err := e.svc.Permissions(e.ctx)
		must(t, err)
		found := false
		for _, p := range perms {
			if p.Name == "reports_v2.export_csv" {
				found = p.Sensitive && !p.BuiltIn
			}
			if p.Name == tenancy.PermContentRead && !p.BuiltIn {
				t.Fatal("content.read not marked built-in")
			}
		}
		if !found {
			t.Fatal("registered permission missing or wrong")
		}
	})
}

func TestCustomRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.read"}))
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.write"}))
		admin, analyst := e.person("admin@example.com"), e.person("analyst@example.com")
		ws := e.workspace(admin, "Acme")

		_, err := e.svc.CreateRole(e.ctx, admin.mfa(), ws, "Broken", "", []string{"reports.read", "reports.nope"})
		wantFault(t, err, fault.Invalid, "unknown_permission")
		_, err = e.svc.CreateRole(e.ctx, admin.plain(), ws, "NoMFA", "", []string{"reports.read"})
		wantFault(t, err, fault.Forbidden, tenancy.ReasonMFARequired)

		r, err := e.svc.CreateRole(e.ctx, admin.mfa(), ws, "Analyst", "reads reports", []string{"reports.read", "content.read", "reports.read"})
		must(t, err)
		if len(r.Permissions) != 2 {
			t.Fatalf("role permissions not de-duplicated: %v", r.Permissions)
		}
		e.wantEvent("role.create", ws, audit.ActorUser, admin.ID)
		e.join(admin, ws, analyst, r.ID)
		// Read and write are distinct (AC-2).
		e.wantDecision(analyst.plain(), ws, "reports.read", allowed)
		e.wantDecision(analyst.plain(), ws, "reports.write", denied)
		e.wantDecision(analyst.plain(), ws, tenancy.PermContentWrite, denied)
		e.wantDecision(analyst.plain(), ws, tenancy.PermWorkspaceRead, denied)

		// Editing the role changes its holders' access at once.
		_, err = e.svc.UpdateRole(e.ctx, admin.mfa(), ws, r.ID, "Analyst", "", []string{"reports.read", "reports.write"})
		must(t, err)
		e.wantDecision(analyst.plain(), ws, "reports.write", allowed)
		e.wantDecision(analyst.plain(), ws, tenancy.PermContentRead, denied)

		roles, err := e.svc.Roles(e.ctx, analyst.plain(), ws)
		wantFault(t, err, fault.Forbidden, denied)
		roles, err = e.svc.Roles(e.ctx, admin.plain(), ws)
		must(t, err)
		if len(roles) != 4 || roles[0].ID != tenancy.RoleAdmin || !roles[0].BuiltIn || roles[3].ID != r.ID {
			t.Fatalf("Roles = %+v", roles)
		}
		_, err = e.svc.UpdateRole(e.ctx, admin.mfa(), ws, tenancy.RoleEditor, "Editor", "", []string{"content.read"})
		wantFault(t, err, fault.Invalid, "builtin_role")
		wantFault(t, e.svc.DeleteRole(e.ctx, admin.mfa(), ws, tenancy.RoleAdmin), fault.Invalid, "builtin_role")
		wantFault(t, e.svc.DeleteRole(e.ctx, admin.mfa(), ws, r.ID), fault.Conflict, "role_in_use")
		wantFault(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, analyst.ID, []string{"nosuchrole"}), fault.Invalid, "unknown_role")
		must(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, analyst.ID, []string{tenancy.RoleReadOnly}))
		must(t, e.svc.DeleteRole(e.ctx, admin.mfa(), ws, r.ID))
		e.wantDecision(analyst.plain(), ws, "reports.write", denied)
		e.wantEvent("role.delete", ws, audit.ActorUser, admin.ID)
	})
}

// TestNoEscalation: holding members.manage or roles.manage does not let a
// member hand out (to themselves or others) permissions they lack.
func TestNoEscalation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, lead := e.person("admin@example.com"), e.person("lead@example.com")
		ws := e.workspace(admin, "Acme")
		r, err := e.svc.CreateRole(e.ctx, admin.mfa(), ws, "Team lead", "", []string{
			tenancy.PermMembersManage, tenancy.PermMembersRead, tenancy.PermRolesManage, tenancy.PermRolesRead, tenancy.PermContentRead})
		must(t, err)
		e.join(admin, ws, lead, r.ID)
		wantFault(t, e.svc.SetMemberRoles(e.ctx, lead.mfa(), ws, lead.ID, []string{tenancy.RoleAdmin}), fault.Forbidden, "scope_exceeds_caller")
		_, err = e.svc.CreateRole(e.ctx, lead.mfa(), ws, "Sneaky", "", []string{tenancy.PermBillingManage})
		wantFault(t, err, fault.Forbidden, "scope_exceeds_caller")
		_, err = e.svc.Invite(e.ctx, lead.mfa(), ws, "friend@example.com", tenancy.RoleEditor)
		wantFault(t, err, fault.Forbidden, "scope_exceeds_caller")
		// Within their own permissions they may act.
		_, err = e.svc.CreateRole(e.ctx, lead.mfa(), ws, "Reader", "", []string{tenancy.PermContentRead})
		must(t, err)
	})
}

func TestLastAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, other := e.person("admin@example.com"), e.person("other@example.com")
		ws := e.workspace(admin, "Acme")
		e.join(admin, ws, other, tenancy.RoleEditor)
		steps := []struct {
			name string
			do   func() error
		}{
			{"remove self", func() error { return e.svc.RemoveMember(e.ctx, admin.plain(), ws, admin.ID) }},
			{"remove by admin", func() error { return e.svc.RemoveMember(e.ctx, admin.mfa(), ws, admin.ID) }},
			{"demote", func() error {
				return e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, admin.ID, []string{tenancy.RoleEditor})
			}},
			{"deactivate", func() error { return e.svc.SCIMSetActive(e.ctx, ws, admin.ID, false) }},
			{"scim demote", func() error { return e.svc.SCIMSetRoles(e.ctx, ws, admin.ID, []string{tenancy.RoleReadOnly}) }},
			{"scim delete", func() error { return e.svc.SCIMDeleteUser(e.ctx, ws, admin.ID) }},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				wantFault(t, s.do(), fault.Conflict, "last_admin")
				e.wantDecision(admin.mfa(), ws, tenancy.PermMembersManage, allowed)
			})
		}
		// With a second Admin the first may step down.
		must(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, other.ID, []string{tenancy.RoleAdmin}))
		must(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, admin.ID, []string{tenancy.RoleEditor}))
		e.wantDecision(admin.mfa(), ws, tenancy.PermMembersManage, denied)
		e.wantEvent("member.role_change", ws, audit.ActorUser, admin.ID)
		// Leaving: the user may remove themself without members.manage.
		must(t, e.svc.RemoveMember(e.ctx, admin.plain(), ws, admin.ID))
		e.wantDecision(admin.mfa(), ws, tenancy.PermWorkspaceRead, notMember)
		wantFault(t, e.svc.RemoveMember(e.ctx, other.plain(), ws, other.ID), fault.Conflict, "last_admin")
	})
}

func TestMFAAndStepUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "payouts.send", Sensitive: true}))
		admin := e.person("admin@example.com")
		ws := e.workspace(admin, "Acme")
		old := admin.mfa() // MFA at start
		e.clock.Advance(11 * time.Minute)
		fresh := admin.mfa()
		cases := []struct {
			name string
			p    tenancy.Principal
			perm string
			want string
		}{
			{"read without MFA", admin.plain(), tenancy.PermWorkspaceRead, allowed},
			{"admin-only without MFA", admin.plain(), tenancy.PermMembersManage, tenancy.ReasonMFARequired},
			{"admin-only with old MFA", old, tenancy.PermMembersManage, allowed},
			{"sensitive without MFA", admin.plain(), tenancy.PermWorkspaceDelete, tenancy.ReasonMFARequired},
			{"sensitive with old MFA", old, tenancy.PermWorkspaceDelete, tenancy.ReasonStepUpRequired},
			{"sensitive fresh", fresh, tenancy.PermWorkspaceDelete, allowed},
			{"sensitive app perm old", old, "payouts.send", tenancy.ReasonStepUpRequired},
			{"sensitive app perm no MFA", admin.plain(), "payouts.send", tenancy.ReasonStepUpRequired},
			{"sensitive app perm fresh", fresh, "payouts.send", allowed},
			{"scim old", old, tenancy.PermSCIMManage, tenancy.ReasonStepUpRequired},
			{"support old", old, tenancy.PermSupportGrant, tenancy.ReasonStepUpRequired},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { e.wantDecision(c.p, ws, c.perm, c.want) })
		}
		// Require maps the reasons to Forbidden with the reason as code.
		wantFault(t, e.svc.Require(e.ctx, old, ws, tenancy.PermWorkspaceDelete), fault.Forbidden, tenancy.ReasonStepUpRequired)
		wantFault(t, e.svc.DeleteWorkspace(e.ctx, old, ws, "Acme"), fault.Forbidden, tenancy.ReasonStepUpRequired)
		wantFault(t, e.svc.DeleteWorkspace(e.ctx, fresh, ws, "acme"), fault.Invalid, "confirmation_mismatch")
		e.mu.Lock()
		n := len(e.deleted)
		e.mu.Unlock()
		if n != 0 {
			t.Fatal("vault hook ran for a refused deletion")
		}
		must(t, e.svc.DeleteWorkspace(e.ctx, fresh, ws, "Acme"))
		e.wantDecision(fresh, ws, tenancy.PermWorkspaceRead, notMember)
		e.wantEvent("workspace.delete", ws, audit.ActorUser, admin.ID)
		if len(e.deleted) != 1 || e.deleted[0] != ws {
			t.Fatalf("OnWorkspaceDelete calls = %v", e.deleted)
		}

		// AdminMFAOptional lifts the MFA-session rule, not step-up.
		e2 := newEnv(t, st, func(c *tenancy.Config) { c.AdminMFAOptional = true })
		a2 := e2.person("admin2@example.com")
		ws2 := e2.workspace(a2, "Beta")
		e2.wantDecision(a2.plain(), ws2, tenancy.PermMembersManage, allowed)
		e2.wantDecision(a2.plain(), ws2, tenancy.PermWorkspaceDelete, tenancy.ReasonStepUpRequired)
	})
}

func TestCacheInvalidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, ed := e.person("admin@example.com"), e.person("ed@example.com")
		ws := e.workspace(admin, "Acme")
		e.join(admin, ws, ed, tenancy.RoleEditor)
		e.wantDecision(ed.plain(), ws, tenancy.PermContentWrite, allowed) // warm

		// This node's changes apply to the very next Check.
		must(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, ed.ID, []string{tenancy.RoleReadOnly}))
		e.wantDecision(ed.plain(), ws, tenancy.PermContentWrite, denied)
		must(t, e.svc.RemoveMember(e.ctx, admin.mfa(), ws, ed.ID))
		e.wantDecision(ed.plain(), ws, tenancy.PermContentRead, notMember)
		e.wantEvent("member.remove", ws, audit.ActorUser, admin.ID)

		// Another node's change is seen once DecisionCacheTTL has passed.
		e.join(admin, ws, ed, tenancy.RoleEditor)
		e.wantDecision(ed.plain(), ws, tenancy.PermContentWrite, allowed)
		node2 := e.service()
		must(t, node2.SetMemberRoles(e.ctx, admin.mfa(), ws, ed.ID, []string{tenancy.RoleReadOnly}))
		e.wantDecision(ed.plain(), ws, tenancy.PermContentWrite, allowed) // still cached here
		e.clock.Advance(e.cfg.DecisionCacheTTL)
		e.wantDecision(ed.plain(), ws, tenancy.PermContentWrite, denied)
	})
}

// TestWorkspaceIsolation: a member of A has nothing in B, whatever the
// credential.
func TestWorkspaceIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		must(t, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.read"}))
		alice, bob := e.person("alice@example.com"), e.person("bob@example.com")
		wsA, wsB := e.workspace(alice, "A"), e.workspace(bob, "B")
		_, keyText, err := e.svc.CreateAPIKey(e.ctx, alice.mfa(), wsA, "ci", []string{tenancy.PermContentRead}, 0)
		must(t, err)
		key, err := e.svc.AuthenticateAPIKey(e.ctx, keyText, "192.0.2.1")
		must(t, err)
		perms, err := e.svc.Permissions(e.ctx)
		must(t, err)
		for _, p := range perms {
			e.wantDecision(alice.mfa(), wsB, p.Name, notMember)
			e.wantDecision(key, wsB, p.Name, notMember)
			e.wantDecision(bob.mfa(), wsA, p.Name, notMember)
		}
		_, err = e.svc.Members(e.ctx, alice.mfa(), wsB)
		wantFault(t, err, fault.NotFound, "workspace_not_found")
		_, err = e.svc.Workspace(e.ctx, alice.mfa(), wsB)
		wantFault(t, err, fault.NotFound, "workspace_not_found")
		ws, err := e.svc.Workspaces(e.ctx, alice.plain())
		must(t, err)
		if len(ws) != 1 || ws[0].ID != wsA {
			t.Fatalf("Workspaces(alice) = %+v", ws)
		}
	})
}

func TestWorkspaceLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, reader := e.person("admin@example.com"), e.person("reader@example.com")
		_, err := e.svc.CreateWorkspace(e.ctx, admin.plain(), "  \t ")
		wantFault(t, err, fault.Invalid, "workspace_name_invalid")
		ws := e.workspace(admin, "Acme")
		e.wantEvent("workspace.create", ws, audit.ActorUser, admin.ID)
		e.join(admin, ws, reader, tenancy.RoleReadOnly)
		wantFault(t, e.svc.RenameWorkspace(e.ctx, reader.mfa(), ws, "Mine"), fault.Forbidden, denied)
		must(t, e.svc.RenameWorkspace(e.ctx, admin.mfa(), ws, "Acme Corp"))
		w, err := e.svc.Workspace(e.ctx, reader.plain(), ws)
		must(t, err)
		if w.Name != "Acme Corp" {
			t.Fatalf("name = %q", w.Name)
		}
		e.wantEvent("workspace.rename", ws, audit.ActorUser, admin.ID)
		// Require records the member's activity for access reviews.
		ms, err := e.svc.Members(e.ctx, reader.plain(), ws)
		must(t, err)
		for _, m := range ms {
			if m.UserID == reader.ID && !m.LastActiveAt.Equal(e.clock.Now()) {
				t.Fatalf("reader last active %v, want %v", m.LastActiveAt, e.clock.Now())
			}
		}
		d, err := e.svc.CheckUser(e.ctx, reader.plain(), ws, admin.ID, tenancy.PermContentRead)
		wantFault(t, err, fault.Forbidden, denied)
		d, err = e.svc.CheckUser(e.ctx, admin.mfa(), ws, reader.ID, tenancy.PermContentRead)
		must(t, err)
		if !d.Allowed {
			t.Fatalf("CheckUser = %+v", d)
		}
		d, err = e.svc.CheckUser(e.ctx, admin.mfa(), ws, admin.ID, tenancy.PermMembersManage)
		must(t, err)
		if d.Reason != tenancy.ReasonMFARequired {
			t.Fatalf("CheckUser admin-only = %+v, want mfa_required (session unknown)", d)
		}
	})
}

// TestConcurrentChecks runs Checks from several goroutines while roles
// change; after each change returns, this node's next Check reflects it
// (run with -race).
func TestConcurrentChecks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, ed := e.person("admin@example.com"), e.person("ed@example.com")
		ws := e.workspace(admin, "Acme")
		e.join(admin, ws, ed, tenancy.RoleEditor)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if d := e.check(ed.plain(), ws, tenancy.PermContentRead); !d.Allowed {
						t.Errorf("content.read denied mid-change: %+v", d)
						return
					}
					e.check(ed.plain(), ws, tenancy.PermContentWrite)
				}
			}()
		}
		for i := range 20 {
			role, want := tenancy.RoleReadOnly, denied
			if i%2 == 1 {
				role, want = tenancy.RoleEditor, allowed
			}
			must(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, ed.ID, []string{role}))
			e.wantDecision(ed.plain(), ws, tenancy.PermContentWrite, want)
		}
		close(stop)
		wg.Wait()
	})
}
