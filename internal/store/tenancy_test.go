package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/privacy/ingest"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/integration"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

func wantCode(t *testing.T, err error, k fault.Kind, code string) {
	t.Helper()
	if !fault.Is(err, k) || fault.As(err).Code != code {
		t.Fatalf("error = %v, want %s %q", err, k, code)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newWorkspace creates a workspace whose creator (and sole Admin) is a new
// user with the given email.
func newWorkspace(t *testing.T, s *store.Store, name, creatorEmail string) (*tenancy.Workspace, string) {
	t.Helper()
	u := newUser(t, s, creatorEmail)
	w := &tenancy.Workspace{Name: name, CreatedAt: t0}
	mustOK(t, s.CreateWorkspace(context.Background(), w, tenancy.Member{UserID: u.ID}))
	return w, u.ID
}

func addMember(t *testing.T, s *store.Store, ws, email string, active bool, roles ...string) string {
	t.Helper()
	u := newUser(t, s, email)
	mustOK(t, s.AddMember(context.Background(), &tenancy.Member{WorkspaceID: ws, UserID: u.ID, Roles: roles, Active: active, JoinedAt: t0}))
	return u.ID
}

func member(t *testing.T, s *store.Store, ws, userID string) *tenancy.Member {
	t.Helper()
	m, err := s.Member(context.Background(), ws, userID)
	mustOK(t, err)
	return m
}

func TestPermissionsStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		wantKind(t, s.UpsertPermission(ctx, tenancy.Permission{}), fault.Invalid)
		mustOK(t, s.UpsertPermission(ctx, tenancy.Permission{Name: "reports.read", Description: "old"}))
		mustOK(t, s.UpsertPermission(ctx, tenancy.Permission{Name: "invoices.void", Description: "void", Sensitive: true}))
		mustOK(t, s.UpsertPermission(ctx, tenancy.Permission{Name: "reports.read", Description: "new", Sensitive: true}))
		got, err := s.ListPermissions(ctx)
		mustOK(t, err)
		want := []tenancy.Permission{
			{Name: "invoices.void", Description: "void", Sensitive: true},
			{Name: "reports.read", Description: "new", Sensitive: true},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ListPermissions = %+v, want %+v", got, want)
		}
	})
}

func TestWorkspacesStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice := newUser(t, s, "alice@example.com")
		w := &tenancy.Workspace{Name: "Acme", CreatedAt: t0}
		mustOK(t, s.CreateWorkspace(ctx, w, tenancy.Member{UserID: alice.ID, Roles: []string{tenancy.RoleEditor}}))
		if w.ID == "" || w.CreatedBy != alice.ID || !w.UpdatedAt.Equal(t0) {
			t.Fatalf("CreateWorkspace wrote back %+v", w)
		}
		got, err := s.Workspace(ctx, w.ID)
		mustOK(t, err)
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("Workspace = %+v, want %+v", got, w)
		}
		// The creator is an active Admin (keeping the roles they came with).
		m := member(t, s, w.ID, alice.ID)
		if !m.Active || !reflect.DeepEqual(m.Roles, []string{tenancy.RoleAdmin, tenancy.RoleEditor}) || !m.JoinedAt.Equal(t0) {
			t.Fatalf("creator membership = %+v", m)
		}

		for _, tc := range []struct {
			name    string
			w       tenancy.Workspace
			creator tenancy.Member
			kind    fault.Kind
		}{
			{"no name", tenancy.Workspace{}, tenancy.Member{UserID: alice.ID}, fault.Invalid},
			{"no creator", tenancy.Workspace{Name: "x"}, tenancy.Member{}, fault.Invalid},
			{"unknown creator", tenancy.Workspace{Name: "x"}, tenancy.Member{UserID: "nobody"}, fault.NotFound},
			{"taken id", tenancy.Workspace{ID: w.ID, Name: "x"}, tenancy.Member{UserID: alice.ID}, fault.Conflict},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantKind(t, s.CreateWorkspace(ctx, &tc.w, tc.creator), tc.kind)
			})
		}
		// A failed creation leaves nothing behind (one transaction).
		all, err := s.AllWorkspaces(ctx)
		mustOK(t, err)
		if len(all) != 1 {
			t.Fatalf("AllWorkspaces after failed creations = %+v", all)
		}

		mustOK(t, s.RenameWorkspace(ctx, w.ID, "Acme Corp", t0.Add(time.Hour)))
		got, err = s.Workspace(ctx, w.ID)
		mustOK(t, err)
		if got.Name != "Acme Corp" || !got.UpdatedAt.Equal(t0.Add(time.Hour)) || !got.CreatedAt.Equal(t0) {
			t.Fatalf("after rename %+v", got)
		}
		wantKind(t, s.RenameWorkspace(ctx, w.ID, "", t0), fault.Invalid)
		wantNotFound(t, s.RenameWorkspace(ctx, "nope", "x", t0))
		_, err = s.Workspace(ctx, "nope")
		wantNotFound(t, err)
		_, err = s.Workspace(ctx, "")
		wantNotFound(t, err)

		// WorkspacesOf lists active memberships only, by name.
		bob := newUser(t, s, "bob@example.com")
		w2 := &tenancy.Workspace{Name: "Beta", CreatedAt: t0.Add(time.Minute)}
		mustOK(t, s.CreateWorkspace(ctx, w2, tenancy.Member{UserID: bob.ID}))
		w3 := &tenancy.Workspace{Name: "Alpha", CreatedAt: t0.Add(2 * time.Minute)}
		mustOK(t, s.CreateWorkspace(ctx, w3, tenancy.Member{UserID: bob.ID}))
		mustOK(t, s.AddMember(ctx, &tenancy.Member{WorkspaceID: w.ID, UserID: bob.ID, Roles: []string{tenancy.RoleReadOnly}}))
		ws, err := s.WorkspacesOf(ctx, bob.ID)
		mustOK(t, err)
		if len(ws) != 2 || ws[0].ID != w3.ID || ws[1].ID != w2.ID {
			t.Fatalf("WorkspacesOf(bob) = %+v (the inactive membership must not count)", ws)
		}
		all, err = s.AllWorkspaces(ctx)
		mustOK(t, err)
		if len(all) != 3 || all[0].ID != w.ID || all[2].ID != w3.ID {
			t.Fatalf("AllWorkspaces = %+v", all)
		}
		if ws, err := s.WorkspacesOf(ctx, "nobody"); err != nil || len(ws) != 0 {
			t.Fatalf("WorkspacesOf(nobody) = %v, %v", ws, err)
		}

		mustOK(t, s.DeleteWorkspace(ctx, w2.ID))
		wantNotFound(t, s.DeleteWorkspace(ctx, w2.ID))
		_, err = s.Workspace(ctx, w2.ID)
		wantNotFound(t, err)
	})
}

func TestMembersStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w, alice := newWorkspace(t, s, "Acme", "alice@example.com")
		bob := newUser(t, s, "bob@example.com")
		mustOK(t, s.EnableTOTP(ctx, bob.ID, 1, nil, t0))
		m := &tenancy.Member{WorkspaceID: w.ID, UserID: bob.ID, Roles: []string{"readonly", "editor", "readonly"},
			Active: true, SCIMExternal: "ext-1", LastActiveAt: t0.Add(time.Second)}
		mustOK(t, s.AddMember(ctx, m))
		if m.JoinedAt.IsZero() {
			t.Fatal("AddMember did not stamp JoinedAt")
		}
		got := member(t, s, w.ID, bob.ID)
		want := tenancy.Member{WorkspaceID: w.ID, UserID: bob.ID, Email: "bob@example.com", MFAEnabled: true,
			Roles: []string{"editor", "readonly"}, JoinedAt: m.JoinedAt.Truncate(time.Microsecond).UTC(),
			LastActiveAt: t0.Add(time.Second), SCIMExternal: "ext-1", Active: true}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("Member = %+v\nwant     %+v", *got, want)
		}

		for _, tc := range []struct {
			name string
			m    tenancy.Member
			kind fault.Kind
		}{
			{"already a member", tenancy.Member{WorkspaceID: w.ID, UserID: bob.ID}, fault.Conflict},
			{"no user", tenancy.Member{WorkspaceID: w.ID}, fault.Invalid},
			{"no workspace", tenancy.Member{UserID: bob.ID}, fault.Invalid},
			{"unknown user", tenancy.Member{WorkspaceID: w.ID, UserID: "nobody"}, fault.NotFound},
			{"unknown workspace", tenancy.Member{WorkspaceID: "nope", UserID: bob.ID}, fault.NotFound},
			{"empty role", tenancy.Member{WorkspaceID: w.ID, UserID: newUser(t, s, "c@example.com").ID, Roles: []string{""}}, fault.Invalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantKind(t, s.AddMember(ctx, &tc.m), tc.kind)
			})
		}

		ms, err := s.ListMembers(ctx, w.ID)
		mustOK(t, err)
		if len(ms) != 2 || ms[0].UserID != alice || ms[1].UserID != bob.ID ||
			!reflect.DeepEqual(ms[0].Roles, []string{tenancy.RoleAdmin}) || !reflect.DeepEqual(ms[1].Roles, want.Roles) ||
			ms[0].MFAEnabled || !ms[1].MFAEnabled || ms[1].Email != "bob@example.com" {
			t.Fatalf("ListMembers = %+v", ms)
		}

		mustOK(t, s.SetMemberRoles(ctx, w.ID, bob.ID, []string{"custom", "editor"}, true))
		if got := member(t, s, w.ID, bob.ID).Roles; !reflect.DeepEqual(got, []string{"custom", "editor"}) {
			t.Fatalf("roles after SetMemberRoles = %v", got)
		}
		mustOK(t, s.SetMemberRoles(ctx, w.ID, bob.ID, nil, true))
		if got := member(t, s, w.ID, bob.ID).Roles; got != nil {
			t.Fatalf("roles after clearing = %v", got)
		}
		mustOK(t, s.SetMemberExternalID(ctx, w.ID, bob.ID, "ext-2"))
		mustOK(t, s.SetMemberActive(ctx, w.ID, bob.ID, false))
		got = member(t, s, w.ID, bob.ID)
		if got.SCIMExternal != "ext-2" || got.Active {
			t.Fatalf("after external id and deactivation %+v", got)
		}

		// TouchMember only moves forward and ignores non-members.
		mustOK(t, s.TouchMember(ctx, w.ID, bob.ID, t0.Add(time.Hour)))
		mustOK(t, s.TouchMember(ctx, w.ID, bob.ID, t0.Add(time.Minute)))
		if got := member(t, s, w.ID, bob.ID).LastActiveAt; !got.Equal(t0.Add(time.Hour)) {
			t.Fatalf("LastActiveAt = %v", got)
		}
		mustOK(t, s.TouchMember(ctx, w.ID, "nobody", t0))

		for _, tc := range []struct {
			name string
			err  error
		}{
			{"roles of a non-member", s.SetMemberRoles(ctx, w.ID, "nobody", []string{"editor"}, false)},
			{"roles in another workspace", s.SetMemberRoles(ctx, "nope", bob.ID, nil, false)},
			{"active of a non-member", s.SetMemberActive(ctx, w.ID, "nobody", true)},
			{"external id of a non-member", s.SetMemberExternalID(ctx, w.ID, "nobody", "x")},
			{"remove a non-member", s.RemoveMember(ctx, w.ID, "nobody")},
			{"remove from an unknown workspace", s.RemoveMember(ctx, "", bob.ID)},
		} {
			t.Run(tc.name, func(t *testing.T) { wantNotFound(t, tc.err) })
		}
		_, err = s.Member(ctx, w.ID, "nobody")
		wantNotFound(t, err)
		wantKind(t, s.SetMemberRoles(ctx, w.ID, bob.ID, []string{""}, false), fault.Invalid)

		mustOK(t, s.RemoveMember(ctx, w.ID, bob.ID))
		_, err = s.Member(ctx, w.ID, bob.ID)
		wantNotFound(t, err)
	})
}

func TestLastAdmin(t *testing.T) {
	ops := []struct {
		name string
		do   func(s *store.Store, ws, userID string) error
	}{
		{"remove", func(s *store.Store, ws, u string) error { return s.RemoveMember(context.Background(), ws, u) }},
		{"demote", func(s *store.Store, ws, u string) error {
			return s.SetMemberRoles(context.Background(), ws, u, []string{tenancy.RoleEditor}, true)
		}},
		{"deactivate", func(s *store.Store, ws, u string) error {
			return s.SetMemberActive(context.Background(), ws, u, false)
		}},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				for _, tc := range []struct {
					name string
					// other is a second member: "" none, or its kind.
					other string
					ok    bool
				}{
					{"sole admin", "", false},
					{"other admin inactive", "inactive-admin", false},
					{"other member not admin", "editor", false},
					{"other active admin", "admin", true},
				} {
					t.Run(tc.name, func(t *testing.T) {
						w, admin := newWorkspace(t, s, "ws", fmt.Sprintf("%s-%s@example.com", op.name, tc.name))
						switch tc.other {
						case "inactive-admin":
							addMember(t, s, w.ID, "o-"+w.ID+"@example.com", false, tenancy.RoleAdmin)
						case "editor":
							addMember(t, s, w.ID, "o-"+w.ID+"@example.com", true, tenancy.RoleEditor)
						case "admin":
							addMember(t, s, w.ID, "o-"+w.ID+"@example.com", true, tenancy.RoleAdmin)
						}
						err := op.do(s, w.ID, admin)
						if tc.ok {
							mustOK(t, err)
							return
						}
						wantCode(t, err, fault.Conflict, "last_admin")
						// Refused means unchanged.
						m := member(t, s, w.ID, admin)
						if !m.Active || !reflect.DeepEqual(m.Roles, []string{tenancy.RoleAdmin}) {
							t.Fatalf("refused change altered the admin: %+v", m)
						}
					})
				}
			})
		}

		// Not guarded: the SCIM/operator path may take Admin away; a
		// non-admin's changes never trip the guard; keeping Admin is fine.
		w, admin := newWorkspace(t, s, "ws", "unguarded@example.com")
		ed := addMember(t, s, w.ID, "ed@example.com", true, tenancy.RoleEditor)
		mustOK(t, s.SetMemberRoles(ctx, w.ID, admin, []string{tenancy.RoleAdmin, tenancy.RoleEditor}, true))
		mustOK(t, s.SetMemberActive(ctx, w.ID, ed, false))
		mustOK(t, s.RemoveMember(ctx, w.ID, ed))
		mustOK(t, s.SetMemberRoles(ctx, w.ID, admin, []string{tenancy.RoleReadOnly}, false))
	})
}

// TestLastAdminConcurrent races the two last Admins' removal (and demotion,
// and deactivation): exactly one must win, every time.
func TestLastAdminConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ops := []func(ws, u string) error{
			func(ws, u string) error { return s.RemoveMember(ctx, ws, u) },
			func(ws, u string) error { return s.SetMemberRoles(ctx, ws, u, nil, true) },
			func(ws, u string) error { return s.SetMemberActive(ctx, ws, u, false) },
		}
		for i := range 30 {
			w, a := newWorkspace(t, s, "ws", fmt.Sprintf("a%d@example.com", i))
			b := addMember(t, s, w.ID, fmt.Sprintf("b%d@example.com", i), true, tenancy.RoleAdmin)
			opA, opB := ops[i%3], ops[(i/3)%3]
			var errA, errB error
			var wg sync.WaitGroup
			wg.Go(func() { errA = opA(w.ID, a) })
			wg.Go(func() { errB = opB(w.ID, b) })
			wg.Wait()
			if (errA == nil) == (errB == nil) {
				t.Fatalf("round %d: both or neither succeeded: %v, %v", i, errA, errB)
			}
			for _, err := range []error{errA, errB} {
				if err != nil {
					wantCode(t, err, fault.Conflict, "last_admin")
				}
			}
			admins := 0
			ms, err := s.ListMembers(ctx, w.ID)
			mustOK(t, err)
			for _, m := range ms {
				if m.Active && len(m.Roles) > 0 && m.Roles[0] == tenancy.RoleAdmin {
					admins++
				}
			}
			if admins != 1 {
				t.Fatalf("round %d: %d active admins left: %+v", i, admins, ms)
			}
		}
	})
}

func TestRolesStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w, admin := newWorkspace(t, s, "Acme", "alice@example.com")
		other, _ := newWorkspace(t, s, "Other", "olga@example.com")
		r := &tenancy.Role{WorkspaceID: w.ID, Name: "Billing", Description: "pays", Permissions: []string{"billing.read", "billing.manage"}, CreatedAt: t0}
		mustOK(t, s.CreateRole(ctx, r))
		if r.ID == "" {
			t.Fatal("no id generated")
		}
		got, err := s.Role(ctx, w.ID, r.ID)
		mustOK(t, err)
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("Role = %+v, want %+v", got, r)
		}
		// The same name is free in another workspace.
		mustOK(t, s.CreateRole(ctx, &tenancy.Role{WorkspaceID: other.ID, Name: "Billing"}))
		mustOK(t, s.CreateRole(ctx, &tenancy.Role{WorkspaceID: w.ID, ID: "auditor", Name: "Auditor"}))

		for _, tc := range []struct {
			name string
			r    tenancy.Role
			kind fault.Kind
		}{
			{"taken name", tenancy.Role{WorkspaceID: w.ID, Name: "Billing"}, fault.Conflict},
			{"taken id", tenancy.Role{WorkspaceID: w.ID, ID: "auditor", Name: "Other"}, fault.Conflict},
			{"built-in id", tenancy.Role{WorkspaceID: w.ID, ID: tenancy.RoleAdmin, Name: "Boss"}, fault.Invalid},
			{"no name", tenancy.Role{WorkspaceID: w.ID}, fault.Invalid},
			{"no workspace", tenancy.Role{Name: "x"}, fault.Invalid},
			{"unknown workspace", tenancy.Role{WorkspaceID: "nope", Name: "x"}, fault.NotFound},
		} {
			t.Run(tc.name, func(t *testing.T) { wantKind(t, s.CreateRole(ctx, &tc.r), tc.kind) })
		}

		rs, err := s.ListRoles(ctx, w.ID)
		mustOK(t, err)
		if len(rs) != 2 || rs[0].Name != "Auditor" || rs[1].Name != "Billing" || rs[0].Permissions != nil {
			t.Fatalf("ListRoles = %+v", rs)
		}

		r.Name, r.Description, r.Permissions = "Finance", "money", []string{"billing.read"}
		mustOK(t, s.UpdateRole(ctx, r))
		got, err = s.Role(ctx, w.ID, r.ID)
		mustOK(t, err)
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("after update %+v", got)
		}
		wantKind(t, s.UpdateRole(ctx, &tenancy.Role{WorkspaceID: w.ID, ID: "auditor", Name: "Finance"}), fault.Conflict)
		wantKind(t, s.UpdateRole(ctx, &tenancy.Role{WorkspaceID: w.ID, ID: r.ID}), fault.Invalid)
		wantNotFound(t, s.UpdateRole(ctx, &tenancy.Role{WorkspaceID: other.ID, ID: r.ID, Name: "Stolen"}))
		for _, id := range []string{tenancy.RoleAdmin, "nope"} {
			_, err = s.Role(ctx, w.ID, id)
			wantNotFound(t, err)
		}
		_, err = s.Role(ctx, other.ID, r.ID)
		wantNotFound(t, err)

		// In use: refused until nobody holds it.
		mustOK(t, s.SetMemberRoles(ctx, w.ID, admin, []string{tenancy.RoleAdmin, r.ID}, true))
		wantCode(t, s.DeleteRole(ctx, w.ID, r.ID), fault.Conflict, "role_in_use")
		wantNotFound(t, s.DeleteRole(ctx, w.ID, tenancy.RoleAdmin))
		wantNotFound(t, s.DeleteRole(ctx, other.ID, r.ID))
		mustOK(t, s.SetMemberRoles(ctx, w.ID, admin, []string{tenancy.RoleAdmin}, true))
		mustOK(t, s.DeleteRole(ctx, w.ID, r.ID))
		wantNotFound(t, s.DeleteRole(ctx, w.ID, r.ID))
		_, err = s.Role(ctx, w.ID, r.ID)
		wantNotFound(t, err)
	})
}

func TestInvitationsStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w, admin := newWorkspace(t, s, "Acme", "alice@example.com")
		other, _ := newWorkspace(t, s, "Other", "olga@example.com")
		invite := func(token string, created time.Time, role string) *tenancy.Invitation {
			inv := &tenancy.Invitation{WorkspaceID: w.ID, Email: token + "@example.com", RoleID: role, InvitedBy: admin,
				TokenHash: hash(token), CreatedAt: created, ExpiresAt: t0.Add(time.Hour)}
			mustOK(t, s.CreateInvitation(ctx, inv))
			return inv
		}
		bobInv := invite("bob", t0, tenancy.RoleEditor)
		got, err := s.InvitationByTokenHash(ctx, hash("bob"))
		mustOK(t, err)
		if !reflect.DeepEqual(got, bobInv) {
			t.Fatalf("InvitationByTokenHash = %+v, want %+v", got, bobInv)
		}
		for _, h := range [][]byte{nil, hash("nope")} {
			_, err = s.InvitationByTokenHash(ctx, h)
			wantNotFound(t, err)
		}
		for _, tc := range []struct {
			name string
			inv  tenancy.Invitation
			kind fault.Kind
		}{
			{"reused token", tenancy.Invitation{WorkspaceID: w.ID, Email: "x@example.com", RoleID: "editor", TokenHash: hash("bob"), ExpiresAt: t0}, fault.Conflict},
			{"no expiry", tenancy.Invitation{WorkspaceID: w.ID, Email: "x@example.com", RoleID: "editor", TokenHash: hash("x")}, fault.Invalid},
			{"no token", tenancy.Invitation{WorkspaceID: w.ID, Email: "x@example.com", RoleID: "editor", ExpiresAt: t0}, fault.Invalid},
			{"no role", tenancy.Invitation{WorkspaceID: w.ID, Email: "x@example.com", TokenHash: hash("x"), ExpiresAt: t0}, fault.Invalid},
			{"unknown workspace", tenancy.Invitation{WorkspaceID: "nope", Email: "x@example.com", RoleID: "editor", TokenHash: hash("x"), ExpiresAt: t0}, fault.NotFound},
		} {
			t.Run(tc.name, func(t *testing.T) { wantKind(t, s.CreateInvitation(ctx, &tc.inv), tc.kind) })
		}

		// Accept: the new member gets the invitation's role, active.
		bob := newUser(t, s, "bob@example.com")
		accepted, err := s.AcceptInvitation(ctx, bobInv.ID, bob.ID, t0.Add(time.Minute))
		mustOK(t, err)
		if !accepted.AcceptedAt.Equal(t0.Add(time.Minute)) || accepted.WorkspaceID != w.ID {
			t.Fatalf("accepted = %+v", accepted)
		}
		m := member(t, s, w.ID, bob.ID)
		if !m.Active || !reflect.DeepEqual(m.Roles, []string{tenancy.RoleEditor}) || !m.JoinedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("member from invitation = %+v", m)
		}
		_, err = s.AcceptInvitation(ctx, bobInv.ID, bob.ID, t0.Add(time.Minute)) // single use
		wantNotFound(t, err)

		// An existing member accepting keeps their roles.
		adminInv := invite("again", t0.Add(time.Second), tenancy.RoleReadOnly)
		_, err = s.AcceptInvitation(ctx, adminInv.ID, admin, t0.Add(time.Minute))
		mustOK(t, err)
		if got := member(t, s, w.ID, admin).Roles; !reflect.DeepEqual(got, []string{tenancy.RoleAdmin}) {
			t.Fatalf("existing member's roles changed to %v", got)
		}

		// Expired, declined and revoked invitations cannot be accepted.
		carol := newUser(t, s, "carol@example.com")
		expired := invite("expired", t0.Add(2*time.Second), tenancy.RoleEditor)
		_, err = s.AcceptInvitation(ctx, expired.ID, carol.ID, t0.Add(time.Hour))
		wantNotFound(t, err)
		declined := invite("declined", t0.Add(3*time.Second), tenancy.RoleEditor)
		revoked := invite("revoked", t0.Add(4*time.Second), tenancy.RoleEditor)
		wantKind(t, s.CloseInvitation(ctx, w.ID, declined.ID, "ignored", t0), fault.Invalid)
		wantNotFound(t, s.CloseInvitation(ctx, other.ID, declined.ID, "declined", t0))
		mustOK(t, s.CloseInvitation(ctx, w.ID, declined.ID, "declined", t0.Add(time.Minute)))
		mustOK(t, s.CloseInvitation(ctx, w.ID, revoked.ID, "revoked", t0.Add(2*time.Minute)))
		wantNotFound(t, s.CloseInvitation(ctx, w.ID, revoked.ID, "declined", t0))
		wantNotFound(t, s.CloseInvitation(ctx, w.ID, bobInv.ID, "revoked", t0))
		for _, id := range []string{declined.ID, revoked.ID, "nope"} {
			_, err = s.AcceptInvitation(ctx, id, carol.ID, t0.Add(time.Minute))
			wantNotFound(t, err)
		}
		_, err = s.Member(ctx, w.ID, carol.ID)
		wantNotFound(t, err)

		invs, err := s.ListInvitations(ctx, w.ID)
		mustOK(t, err)
		if len(invs) != 5 || invs[0].ID != revoked.ID || invs[4].ID != bobInv.ID {
			t.Fatalf("ListInvitations = %+v", invs)
		}
		if !invs[0].RevokedAt.Equal(t0.Add(2*time.Minute)) || !invs[1].DeclinedAt.Equal(t0.Add(time.Minute)) || !invs[1].RevokedAt.IsZero() {
			t.Fatalf("closed invitations = %+v, %+v", invs[0], invs[1])
		}
		if invs, err := s.ListInvitations(ctx, other.ID); err != nil || len(invs) != 0 {
			t.Fatalf("other workspace's invitations = %v, %v", invs, err)
		}
	})
}

func TestAPIKeysStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w, admin := newWorkspace(t, s, "Acme", "alice@example.com")
		other, _ := newWorkspace(t, s, "Other", "olga@example.com")
		k := &tenancy.APIKey{WorkspaceID: w.ID, Name: "ci", CreatedBy: admin, SecretHash: hash("k1"),
			Permissions: []string{"content.read"}, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
		mustOK(t, s.CreateAPIKey(ctx, k))
		got, err := s.APIKeyByID(ctx, k.ID)
		mustOK(t, err)
		if !reflect.DeepEqual(got, k) {
			t.Fatalf("APIKeyByID = %+v, want %+v", got, k)
		}
		k2 := &tenancy.APIKey{ID: "k2", WorkspaceID: w.ID, CreatedBy: admin, SecretHash: hash("k2"), CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)}
		mustOK(t, s.CreateAPIKey(ctx, k2))
		k3 := &tenancy.APIKey{ID: "k3", WorkspaceID: w.ID, CreatedBy: "someone", SecretHash: hash("k3"), CreatedAt: t0.Add(2 * time.Second), ExpiresAt: t0.Add(time.Hour)}
		mustOK(t, s.CreateAPIKey(ctx, k3))
		for _, tc := range []struct {
			name string
			k    tenancy.APIKey
			kind fault.Kind
		}{
			{"taken id", tenancy.APIKey{ID: "k2", WorkspaceID: other.ID, SecretHash: hash("x"), ExpiresAt: t0}, fault.Conflict},
			{"no expiry", tenancy.APIKey{WorkspaceID: w.ID, SecretHash: hash("x")}, fault.Invalid},
			{"no secret", tenancy.APIKey{WorkspaceID: w.ID, ExpiresAt: t0}, fault.Invalid},
			{"no workspace", tenancy.APIKey{SecretHash: hash("x"), ExpiresAt: t0}, fault.Invalid},
		} {
			t.Run(tc.name, func(t *testing.T) { wantKind(t, s.CreateAPIKey(ctx, &tc.k), tc.kind) })
		}
		ks, err := s.ListAPIKeys(ctx, w.ID)
		mustOK(t, err)
		if len(ks) != 3 || ks[0].ID != "k3" || ks[2].ID != k.ID || ks[1].Permissions != nil {
			t.Fatalf("ListAPIKeys = %+v", ks)
		}

		// Touch: at most once a minute.
		for _, tc := range []struct {
			at     time.Time
			ip     string
			wantAt time.Time
			wantIP string
		}{
			{t0.Add(time.Minute), "192.0.2.1", t0.Add(time.Minute), "192.0.2.1"},
			{t0.Add(time.Minute + 59*time.Second), "192.0.2.2", t0.Add(time.Minute), "192.0.2.1"},
			{t0.Add(2*time.Minute + time.Microsecond), "192.0.2.3", t0.Add(2*time.Minute + time.Microsecond), "192.0.2.3"},
		} {
			mustOK(t, s.TouchAPIKey(ctx, k.ID, tc.ip, tc.at))
			got, err := s.APIKeyByID(ctx, k.ID)
			mustOK(t, err)
			if !got.LastUsedAt.Equal(tc.wantAt) || got.LastUsedIP != tc.wantIP {
				t.Fatalf("after touch at %v: %v %q, want %v %q", tc.at, got.LastUsedAt, got.LastUsedIP, tc.wantAt, tc.wantIP)
			}
		}
		mustOK(t, s.TouchAPIKey(ctx, "nope", "192.0.2.1", t0))

		// Revocation keeps the first time; other workspaces cannot revoke.
		wantNotFound(t, s.RevokeAPIKey(ctx, other.ID, k.ID, t0))
		wantNotFound(t, s.RevokeAPIKey(ctx, w.ID, "nope", t0))
		mustOK(t, s.RevokeAPIKey(ctx, w.ID, k.ID, t0.Add(time.Hour)))
		mustOK(t, s.RevokeAPIKey(ctx, w.ID, k.ID, t0.Add(2*time.Hour)))
		got, err = s.APIKeyByID(ctx, k.ID)
		mustOK(t, err)
		if !got.RevokedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("RevokedAt = %v", got.RevokedAt)
		}
		n, err := s.RevokeUserAPIKeys(ctx, other.ID, admin, t0)
		if err != nil || n != 0 {
			t.Fatalf("RevokeUserAPIKeys in another workspace = %d, %v", n, err)
		}
		n, err = s.RevokeUserAPIKeys(ctx, w.ID, admin, t0.Add(3*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("RevokeUserAPIKeys = %d, %v; want 1 (k2; k1 was already revoked)", n, err)
		}
		for id, revoked := range map[string]bool{k.ID: true, "k2": true, "k3": false} {
			got, err := s.APIKeyByID(ctx, id)
			mustOK(t, err)
			if got.RevokedAt.IsZero() == revoked {
				t.Fatalf("key %s revoked = %v, want %v", id, !got.RevokedAt.IsZero(), revoked)
			}
		}
		_, err = s.APIKeyByID(ctx, "nope")
		wantNotFound(t, err)
	})
}

func TestSCIMTokensStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w, admin := newWorkspace(t, s, "Acme", "alice@example.com")
		other, _ := newWorkspace(t, s, "Other", "olga@example.com")
		tok := &tenancy.SCIMToken{WorkspaceID: w.ID, SecretHash: hash("s1"), CreatedBy: admin, CreatedAt: t0}
		mustOK(t, s.CreateSCIMToken(ctx, tok))
		got, err := s.SCIMTokenByID(ctx, tok.ID)
		mustOK(t, err)
		if !reflect.DeepEqual(got, tok) {
			t.Fatalf("SCIMTokenByID = %+v, want %+v", got, tok)
		}
		tok2 := &tenancy.SCIMToken{WorkspaceID: w.ID, SecretHash: hash("s2"), CreatedAt: t0.Add(time.Second)}
		mustOK(t, s.CreateSCIMToken(ctx, tok2))
		wantKind(t, s.CreateSCIMToken(ctx, &tenancy.SCIMToken{WorkspaceID: w.ID}), fault.Invalid)
		wantKind(t, s.CreateSCIMToken(ctx, &tenancy.SCIMToken{ID: tok.ID, WorkspaceID: w.ID, SecretHash: hash("x")}), fault.Conflict)
		ts, err := s.ListSCIMTokens(ctx, w.ID)
		mustOK(t, err)
		if len(ts) != 2 || ts[0].ID != tok2.ID {
			t.Fatalf("ListSCIMTokens = %+v", ts)
		}
		if ts, err := s.ListSCIMTokens(ctx, other.ID); err != nil || len(ts) != 0 {
			t.Fatalf("other workspace's tokens = %v, %v", ts, err)
		}
		wantNotFound(t, s.RevokeSCIMToken(ctx, other.ID, tok.ID, t0))
		mustOK(t, s.RevokeSCIMToken(ctx, w.ID, tok.ID, t0.Add(time.Hour)))
		mustOK(t, s.RevokeSCIMToken(ctx, w.ID, tok.ID, t0.Add(2*time.Hour)))
		got, err = s.SCIMTokenByID(ctx, tok.ID)
		mustOK(t, err)
		if !got.RevokedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("RevokedAt = %v", got.RevokedAt)
		}
		_, err = s.SCIMTokenByID(ctx, "nope")
		wantNotFound(t, err)
	})
}

func TestOperatorsStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		zed := newUser(t, s, "zed@example.com")
		amy := newUser(t, s, "amy@example.com")
		o := &tenancy.Operator{UserID: zed.ID, AllowedNetworks: []string{"10.0.0.0/8", "2001:db8::/32"}, CreatedAt: t0}
		mustOK(t, s.CreateOperator(ctx, o))
		mustOK(t, s.CreateOperator(ctx, &tenancy.Operator{UserID: amy.ID}))
		for _, tc := range []struct {
			name string
			o    tenancy.Operator
			kind fault.Kind
		}{
			{"already one", tenancy.Operator{UserID: zed.ID}, fault.Conflict},
			{"unknown user", tenancy.Operator{UserID: "nobody"}, fault.NotFound},
			{"no user", tenancy.Operator{}, fault.Invalid},
		} {
			t.Run(tc.name, func(t *testing.T) { wantKind(t, s.CreateOperator(ctx, &tc.o), tc.kind) })
		}
		got, err := s.Operator(ctx, zed.ID)
		mustOK(t, err)
		want := tenancy.Operator{UserID: zed.ID, Email: "zed@example.com", AllowedNetworks: o.AllowedNetworks, CreatedAt: t0}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("Operator = %+v, want %+v", *got, want)
		}
		_, err = s.Operator(ctx, "nobody")
		wantNotFound(t, err)
		ops, err := s.ListOperators(ctx)
		mustOK(t, err)
		if len(ops) != 2 || ops[0].Email != "amy@example.com" || ops[0].AllowedNetworks != nil || ops[1].UserID != zed.ID {
			t.Fatalf("ListOperators = %+v", ops)
		}
	})
}

func TestSupportStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w, admin := newWorkspace(t, s, "Acme", "alice@example.com")
		other, _ := newWorkspace(t, s, "Other", "olga@example.com")
		grant := func(ws, op string, created, expires time.Time) *tenancy.SupportGrant {
			g := &tenancy.SupportGrant{WorkspaceID: ws, OperatorID: op, GrantedBy: admin, Scope: []string{"content.read"},
				Reason: "ticket 42", CreatedAt: created, ExpiresAt: expires}
			mustOK(t, s.CreateSupportGrant(ctx, g))
			return g
		}
		anyOp := grant(w.ID, "", t0, t0.Add(3*time.Hour))
		forOp1 := grant(w.ID, "op1", t0.Add(time.Second), t0.Add(time.Hour))
		grant(w.ID, "op2", t0.Add(2*time.Second), t0.Add(5*time.Hour))
		grant(other.ID, "op3", t0, t0.Add(5*time.Hour))
		wantKind(t, s.CreateSupportGrant(ctx, &tenancy.SupportGrant{WorkspaceID: w.ID}), fault.Invalid)

		gs, err := s.ListSupportGrants(ctx, w.ID)
		mustOK(t, err)
		if len(gs) != 3 || gs[2].ID != anyOp.ID || !reflect.DeepEqual(gs[2], *anyOp) {
			t.Fatalf("ListSupportGrants = %+v", gs)
		}

		for _, tc := range []struct {
			name string
			ws   string
			op   string
			now  time.Time
			want string // grant id; "" = NotFound
		}{
			{"own grant preferred", w.ID, "op1", t0.Add(time.Minute), forOp1.ID},
			{"any-operator grant after own expired", w.ID, "op1", t0.Add(2 * time.Hour), anyOp.ID},
			{"any-operator grant for another operator", w.ID, "op9", t0.Add(time.Minute), anyOp.ID},
			{"all expired", w.ID, "op9", t0.Add(3 * time.Hour), ""},
			{"grant in another workspace", w.ID, "op3", t0.Add(4 * time.Hour), ""},
			{"empty operator", w.ID, "", t0.Add(time.Minute), ""},
			{"other workspace", other.ID, "op1", t0.Add(time.Minute), ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g, err := s.ActiveSupportGrant(ctx, tc.ws, tc.op, tc.now)
				if tc.want == "" {
					wantNotFound(t, err)
					return
				}
				mustOK(t, err)
				if g.ID != tc.want {
					t.Fatalf("ActiveSupportGrant = %s, want %s", g.ID, tc.want)
				}
			})
		}
		wantNotFound(t, s.RevokeSupportGrant(ctx, other.ID, forOp1.ID, t0))
		mustOK(t, s.RevokeSupportGrant(ctx, w.ID, forOp1.ID, t0.Add(time.Second)))
		g, err := s.ActiveSupportGrant(ctx, w.ID, "op1", t0.Add(time.Minute))
		mustOK(t, err)
		if g.ID != anyOp.ID {
			t.Fatalf("after revoking op1's grant got %s", g.ID)
		}

		a := &tenancy.SupportAccess{WorkspaceID: w.ID, OperatorID: "op1", GrantID: anyOp.ID, Reason: "ticket 42", Action: "enter", At: t0}
		mustOK(t, s.RecordSupportAccess(ctx, a))
		bg := &tenancy.SupportAccess{WorkspaceID: w.ID, OperatorID: "op2", BreakGlass: true, Reason: "outage", Action: "enter", At: t0.Add(time.Minute)}
		mustOK(t, s.RecordSupportAccess(ctx, bg))
		wantKind(t, s.RecordSupportAccess(ctx, &tenancy.SupportAccess{WorkspaceID: w.ID}), fault.Invalid)
		as, err := s.ListSupportAccess(ctx, w.ID)
		mustOK(t, err)
		if len(as) != 2 || !reflect.DeepEqual(as[0], *bg) || !reflect.DeepEqual(as[1], *a) {
			t.Fatalf("ListSupportAccess = %+v", as)
		}
		if as, err := s.ListSupportAccess(ctx, other.ID); err != nil || len(as) != 0 {
			t.Fatalf("other workspace's access log = %v, %v", as, err)
		}
	})
}

func TestAccessReviewsStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w, admin := newWorkspace(t, s, "Acme", "alice@example.com")
		first := &tenancy.AccessReview{WorkspaceID: w.ID, ReviewerID: admin, CreatedAt: t0}
		mustOK(t, s.CreateAccessReview(ctx, first))
		second := &tenancy.AccessReview{WorkspaceID: w.ID, ReviewerID: admin, CreatedAt: t0.Add(time.Hour), Decisions: []tenancy.ReviewDecision{
			{UserID: "u1", Decision: tenancy.DecisionKeep},
			{UserID: "u2", Decision: tenancy.DecisionChange, Roles: []string{"readonly"}, Note: "moved teams"},
			{UserID: "u3", Decision: tenancy.DecisionRemove, Note: "left"},
		}}
		mustOK(t, s.CreateAccessReview(ctx, second))
		wantKind(t, s.CreateAccessReview(ctx, &tenancy.AccessReview{WorkspaceID: w.ID}), fault.Invalid)
		wantKind(t, s.CreateAccessReview(ctx, &tenancy.AccessReview{WorkspaceID: "nope", ReviewerID: admin}), fault.NotFound)
		rs, err := s.ListAccessReviews(ctx, w.ID)
		mustOK(t, err)
		if len(rs) != 2 || !reflect.DeepEqual(rs[0], *second) || !reflect.DeepEqual(rs[1], *first) {
			t.Fatalf("ListAccessReviews = %+v", rs)
		}
	})
}

// workspaceTables lists, from the catalog, every table with a workspace_id
// column, so a table added later is covered without editing the tests.
func workspaceTables(t *testing.T, s *store.Store) []string {
	t.Helper()
	query := `SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND p.name = 'workspace_id' ORDER BY m.name`
	if s.Engine() == store.EnginePostgres {
		query = `SELECT table_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND column_name = 'workspace_id' ORDER BY table_name`
	}
	rows, err := s.DB().QueryContext(context.Background(), query)
	mustOK(t, err)
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		mustOK(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	mustOK(t, rows.Err())
	if len(tables) < 9 {
		t.Fatalf("workspace tables = %v", tables)
	}
	return tables
}

// populate gives a workspace a row in every table it owns.
func populate(t *testing.T, s *store.Store, label string) (*tenancy.Workspace, string) {
	t.Helper()
	ctx := context.Background()
	w, admin := newWorkspace(t, s, label, label+"-admin@example.com")
	r := &tenancy.Role{WorkspaceID: w.ID, Name: "Custom"}
	mustOK(t, s.CreateRole(ctx, r))
	addMember(t, s, w.ID, label+"-member@example.com", true, r.ID)
	mustOK(t, s.CreateInvitation(ctx, &tenancy.Invitation{WorkspaceID: w.ID, Email: "x@example.com", RoleID: "editor",
		TokenHash: hash(label + "invite"), ExpiresAt: t0.Add(time.Hour)}))
	mustOK(t, s.CreateAPIKey(ctx, &tenancy.APIKey{WorkspaceID: w.ID, CreatedBy: admin, SecretHash: hash(label + "key"), ExpiresAt: t0.Add(time.Hour)}))
	mustOK(t, s.CreateSCIMToken(ctx, &tenancy.SCIMToken{WorkspaceID: w.ID, SecretHash: hash(label + "scim")}))
	g := &tenancy.SupportGrant{WorkspaceID: w.ID, OperatorID: "op", ExpiresAt: t0.Add(time.Hour)}
	mustOK(t, s.CreateSupportGrant(ctx, g))
	mustOK(t, s.RecordSupportAccess(ctx, &tenancy.SupportAccess{WorkspaceID: w.ID, OperatorID: "op", GrantID: g.ID}))
	mustOK(t, s.CreateAccessReview(ctx, &tenancy.AccessReview{WorkspaceID: w.ID, ReviewerID: admin}))
	mustOK(t, s.CreatePublishableKey(ctx, &ingest.PublishableKey{ID: label + "pk" + w.ID[:8], Workspace: w.ID, Name: "web",
		SecretHash: hash(label + "pk"), CreatedAt: t0}))
	mustOK(t, s.AddOptOut(ctx, w.ID, hash(label+"optout"), t0))
	mustOK(t, s.InsertEvents(ctx, w.ID, []ingest.Stored{{ID: label + "ev" + w.ID[:8], Workspace: w.ID, ReceivedAt: t0,
		Class: "12mo", ExpiresAt: t0.Add(time.Hour), Payload: []byte("sealed")}}))
	sec := &secrets.Secret{ID: label + "-sec", Workspace: w.ID, Name: "s", CreatedAt: t0, UpdatedAt: t0}
	mustOK(t, s.CreateSecret(ctx, sec))
	mustOK(t, s.AddSecretVersion(ctx, w.ID, sec.ID, 0, secrets.Version{Version: 1, Stage: secrets.StageCurrent, CreatedAt: t0},
		[]byte("sealed"), t0))
	mustOK(t, s.CreateIntegrationState(ctx, &integration.State{Hash: hash(label + "state"), Workspace: w.ID, Provider: "github",
		SessionHash: hash(label + "session"), Verifier: []byte("sealed"), CreatedBy: admin, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	mustOK(t, s.CreateIntegration(ctx, &integration.Connection{ID: label + "-int", Workspace: w.ID, Provider: "github",
		Kind: integration.KindOAuth2, CreatedBy: admin, CreatedAt: t0},
		integration.Credentials{Access: []byte("sealed"), Refresh: []byte("sealed"), TokenType: "Bearer"}))
	mustOK(t, s.QueueIntegrationRevocations(ctx, []integration.Revocation{{ID: label + "-rev", Workspace: w.ID, Provider: "github",
		Token: []byte("sealed"), TokenTypeHint: "refresh_token", QueuedAt: t0, NextAttemptAt: t0}}))
	mustOK(t, s.CreateOAuthClient(ctx, &oauth.Client{ID: label + "-client", Workspace: w.ID, Name: "svc",
		SecretHash: hash(label + "client"), CreatedBy: admin, CreatedAt: t0}))
	mustOK(t, s.VaultCreateScope(ctx, vault.Scope{Scope: w.ID, MinVersion: 1, BlindWrapped: []byte("wrapped"), RootID: "root", CreatedAt: t0},
		vault.KEK{Scope: w.ID, Version: 1, Wrapped: []byte("wrapped"), RootID: "root", CreatedAt: t0}))
	return w, admin
}

// countRows counts each workspace table's rows of ws, with the global scope
// so row-level security hides nothing.
func countRows(t *testing.T, s *store.Store, tables []string, ws string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	err := s.WithGlobalTxForTest(context.Background(), func(tx *sql.Tx) error {
		for _, table := range append([]string{"workspaces"}, tables...) {
			col := "workspace_id"
			if table == "workspaces" {
				col = "id"
			}
			var n int
			if err := tx.QueryRow(s.Q(`SELECT COUNT(*) FROM `+table+` WHERE `+col+` = ?`), ws).Scan(&n); err != nil {
				return err
			}
			counts[table] = n
		}
		return nil
	})
	mustOK(t, err)
	return counts
}

func TestDeleteWorkspaceCascade(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tables := workspaceTables(t, s)
		a, _ := populate(t, s, "a")
		b, _ := populate(t, s, "b")
		for table, n := range countRows(t, s, tables, a.ID) {
			if n == 0 {
				t.Fatalf("populate left %s empty: the cascade check would prove nothing", table)
			}
		}
		// As tenancy.Service.DeleteWorkspace does: the vault hook shreds the
		// scope first. vault_scopes has no foreign key to workspaces by
		// design (migrations 0008): its shredded tombstone outlives the
		// workspace so the scope can never be given keys again.
		_, err := s.VaultDestroyScope(ctx, a.ID, t0)
		mustOK(t, err)
		mustOK(t, s.DeleteWorkspace(ctx, a.ID))
		for table, n := range countRows(t, s, tables, a.ID) {
			if table == "vault_scopes" {
				if n != 1 {
					t.Errorf("%d vault_scopes rows of the deleted workspace, want its one tombstone", n)
				}
				continue
			}
			if n != 0 {
				t.Errorf("%d rows of the deleted workspace remain in %s", n, table)
			}
		}
		for table, n := range countRows(t, s, tables, b.ID) {
			if n == 0 {
				t.Errorf("deleting another workspace emptied %s of b", table)
			}
		}
	})
}

// TestCrossWorkspace calls each workspace-scoped method with workspace b on
// a's rows: none may read or change them.
func TestCrossWorkspace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, admin := populate(t, s, "a")
		b, _ := populate(t, s, "b")
		ms, err := s.ListMembers(ctx, a.ID)
		mustOK(t, err)
		roles, err := s.ListRoles(ctx, a.ID)
		mustOK(t, err)
		invs, err := s.ListInvitations(ctx, a.ID)
		mustOK(t, err)
		keys, err := s.ListAPIKeys(ctx, a.ID)
		mustOK(t, err)
		toks, err := s.ListSCIMTokens(ctx, a.ID)
		mustOK(t, err)
		grants, err := s.ListSupportGrants(ctx, a.ID)
		mustOK(t, err)
		role := roles[0]
		role.WorkspaceID = b.ID
		role.Name = "Renamed"

		for _, tc := range []struct {
			name string
			err  error
		}{
			{"Member", func() error { _, err := s.Member(ctx, b.ID, admin); return err }()},
			{"SetMemberRoles", s.SetMemberRoles(ctx, b.ID, ms[0].UserID, nil, false)},
			{"SetMemberActive", s.SetMemberActive(ctx, b.ID, ms[0].UserID, false)},
			{"SetMemberExternalID", s.SetMemberExternalID(ctx, b.ID, ms[0].UserID, "x")},
			{"RemoveMember", s.RemoveMember(ctx, b.ID, ms[0].UserID)},
			{"Role", func() error { _, err := s.Role(ctx, b.ID, roles[0].ID); return err }()},
			{"UpdateRole", s.UpdateRole(ctx, &role)},
			{"DeleteRole", s.DeleteRole(ctx, b.ID, roles[0].ID)},
			{"CloseInvitation", s.CloseInvitation(ctx, b.ID, invs[0].ID, "revoked", t0)},
			{"RevokeAPIKey", s.RevokeAPIKey(ctx, b.ID, keys[0].ID, t0)},
			{"RevokeSCIMToken", s.RevokeSCIMToken(ctx, b.ID, toks[0].ID, t0)},
			{"RevokeSupportGrant", s.RevokeSupportGrant(ctx, b.ID, grants[0].ID, t0)},
			{"RenameWorkspace with an empty id", s.RenameWorkspace(ctx, "", "x", t0)},
		} {
			t.Run(tc.name, func(t *testing.T) { wantNotFound(t, tc.err) })
		}
		mustOK(t, s.TouchMember(ctx, b.ID, admin, t0.Add(time.Hour)))
		if n, err := s.RevokeUserAPIKeys(ctx, b.ID, admin, t0); err != nil || n != 0 {
			t.Fatalf("RevokeUserAPIKeys across workspaces = %d, %v", n, err)
		}
		// a is untouched.
		after, err := s.ListMembers(ctx, a.ID)
		mustOK(t, err)
		if !reflect.DeepEqual(after, ms) {
			t.Fatalf("a's members changed:\n%+v\n%+v", after, ms)
		}
		for _, k := range mustList(s.ListAPIKeys(ctx, a.ID)) {
			if !k.RevokedAt.IsZero() {
				t.Fatal("a's key was revoked from b")
			}
		}
		if g, err := s.ActiveSupportGrant(ctx, a.ID, "op", t0); err != nil || g.ID != grants[0].ID {
			t.Fatalf("a's grant: %v, %v", g, err)
		}
	})
}

func mustList[T any](l []T, err error) []T {
	if err != nil {
		panic(err)
	}
	return l
}

// TestWorkspaceStoreCanceled checks that a canceled context surfaces as
// Unavailable from a workspace transaction, not as a false NotFound.
func TestWorkspaceStoreCanceled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w, _ := newWorkspace(t, s, "Acme", "alice@example.com")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.ListMembers(ctx, w.ID)
		if err == nil || errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("ListMembers on a canceled context = %v", err)
		}
		wantKind(t, s.RemoveMember(ctx, w.ID, "x"), fault.Unavailable)
	})
}

// BenchmarkMember measures a workspace-scoped read: on PostgreSQL that is
// a bound read-only transaction (BEGIN, set_config, SELECT ×2, COMMIT).
func BenchmarkMember(b *testing.B) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, engine)
			u := &identity.User{Email: "a@example.com"}
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			w := &tenancy.Workspace{Name: "Acme"}
			if err := s.CreateWorkspace(ctx, w, tenancy.Member{UserID: u.ID}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.Member(ctx, w.ID, u.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
