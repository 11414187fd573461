package tenancy_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
)

var (
	keyTextRE  = regexp.MustCompile(`^rmp_[a-z2-7]{16}_[A-Za-z0-9_-]{43}$`)
	scimTextRE = regexp.MustCompile(`^rscim_[a-z2-7]{16}_[A-Za-z0-9_-]{43}$`)
)

func TestAPIKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin, dev := e.person("admin@example.com"), e.person("dev@example.com")
		ws := e.workspace(admin, "Acme")
		devRole, err := e.svc.CreateRole(e.ctx, admin.mfa(), ws, "Developer", "", []string{
			tenancy.PermAPIKeysManage, tenancy.PermAPIKeysRead, tenancy.PermContentRead, tenancy.PermContentWrite})
		must(t, err)
		e.join(admin, ws, dev, devRole.ID)

		t.Run("creation rules", func(t *testing.T) {
			cases := []struct {
				name  string
				p     tenancy.Principal
				perms []string
				ttl   time.Duration
				kind  fault.Kind
				code  string
			}{
				{"scope beyond creator", dev.mfa(), []string{tenancy.PermContentRead, tenancy.PermMembersManage}, 0, fault.Forbidden, "scope_exceeds_creator"},
				{"unknown permission", dev.mfa(), []string{"content.nope"}, 0, fault.Invalid, "unknown_permission"},
				{"no permissions", dev.mfa(), nil, 0, fault.Invalid, "permissions_required"},
				{"ttl over max", dev.mfa(), []string{tenancy.PermContentRead}, 366 * 24 * time.Hour, fault.Invalid, "ttl_too_long"},
				{"negative ttl", dev.mfa(), []string{tenancy.PermContentRead}, -time.Hour, fault.Invalid, "ttl_invalid"},
				{"no MFA session", dev.plain(), []string{tenancy.PermContentRead}, 0, fault.Forbidden, tenancy.ReasonMFARequired},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					_, _, err := e.svc.CreateAPIKey(e.ctx, c.p, ws, "k", c.perms, c.ttl)
					wantFault(t, err, c.kind, c.code)
				})
			}
		})

		k, text, err := e.svc.CreateAPIKey(e.ctx, dev.mfa(), ws, "ci", []string{tenancy.PermContentRead, tenancy.PermContentWrite}, 0)
		must(t, err)
		if !keyTextRE.MatchString(text) || !strings.Contains(text, k.ID) {
			t.Fatalf("key text %q does not have the rmp_<id>_<secret> form", text)
		}
		if want := e.clock.Now().Add(90 * 24 * time.Hour); !k.ExpiresAt.Equal(want) {
			t.Fatalf("default expiry %v, want %v", k.ExpiresAt, want)
		}
		if strings.Contains(string(k.SecretHash), text[len(text)-43:]) || len(k.SecretHash) != 32 {
			t.Fatal("the key row must hold only a SHA-256 of the secret")
		}
		e.wantEvent("apikey.create", ws, audit.ActorUser, dev.ID)

		// Authentication: exact text only.
		bad := []string{"", text + "x", strings.Replace(text, "rmp_", "rms_", 1), text[:len(text)-1] + flip(text[len(text)-1]),
			"rmp_" + strings.Repeat("a", 16) + "_" + text[len(text)-43:]}
		for _, b := range bad {
			_, err := e.svc.AuthenticateAPIKey(e.ctx, b, "192.0.2.1")
			wantFault(t, err, fault.Unauthenticated, "api_key_invalid")
		}
		key, err := e.svc.AuthenticateAPIKey(e.ctx, text, "192.0.2.1")
		must(t, err)
		keys, err := e.svc.APIKeys(e.ctx, admin.plain(), ws)
		must(t, err)
		if len(keys) != 1 || keys[0].LastUsedIP != "192.0.2.1" || !keys[0].LastUsedAt.Equal(e.clock.Now()) {
			t.Fatalf("last use not recorded: %+v", keys)
		}

		// A key holds only its own list, and needs no MFA.
		e.wantDecision(key, ws, tenancy.PermContentWrite, allowed)
		e.wantDecision(key, ws, tenancy.PermAPIKeysManage, denied)
		e.wantDecision(key, ws, tenancy.PermWorkspaceRead, denied)
		_, adminKeyText, err := e.svc.CreateAPIKey(e.ctx, admin.mfa(), ws, "ops", []string{tenancy.PermMembersManage, tenancy.PermMembersRead, tenancy.PermAPIKeysManage}, time.Hour)
		must(t, err)
		adminKey, err := e.svc.AuthenticateAPIKey(e.ctx, adminKeyText, "192.0.2.2")
		must(t, err)
		e.wantDecision(adminKey, ws, tenancy.PermMembersManage, allowed)
		// An API key cannot mint keys, even with apikeys.manage.
		_, _, err = e.svc.CreateAPIKey(e.ctx, adminKey, ws, "child", []string{tenancy.PermMembersRead}, 0)
		wantFault(t, err, fault.Forbidden, "user_required")

		// The key never holds more than its creator now holds.
		must(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, dev.ID, []string{tenancy.RoleReadOnly}))
		e.wantDecision(key, ws, tenancy.PermContentWrite, denied)
		e.wantDecision(key, ws, tenancy.PermContentRead, allowed)

		// Expiry: the admin key had one hour.
		e.clock.Advance(time.Hour)
		e.wantDecision(adminKey, ws, tenancy.PermMembersRead, tenancy.ReasonKeyInvalid)
		wantFault(t, e.svc.Require(e.ctx, adminKey, ws, tenancy.PermMembersRead), fault.Forbidden, tenancy.ReasonKeyInvalid)
		_, err = e.svc.AuthenticateAPIKey(e.ctx, adminKeyText, "192.0.2.2")
		wantFault(t, err, fault.Unauthenticated, "api_key_invalid")

		// Revocation applies to the very next Check.
		e.wantDecision(key, ws, tenancy.PermContentRead, allowed)
		must(t, e.svc.RevokeAPIKey(e.ctx, admin.mfa(), ws, k.ID))
		e.wantDecision(key, ws, tenancy.PermContentRead, tenancy.ReasonKeyInvalid)
		_, err = e.svc.AuthenticateAPIKey(e.ctx, text, "192.0.2.1")
		wantFault(t, err, fault.Unauthenticated, "api_key_invalid")
		e.wantEvent("apikey.revoke", ws, audit.ActorUser, admin.ID)
		wantFault(t, e.svc.RevokeAPIKey(e.ctx, admin.mfa(), ws, "nosuchkey"), fault.NotFound, "apikey_not_found")

		// Max TTL is accepted, and removing the creator revokes their keys.
		must(t, e.svc.SetMemberRoles(e.ctx, admin.mfa(), ws, dev.ID, []string{devRole.ID}))
		_, text2, err := e.svc.CreateAPIKey(e.ctx, dev.mfa(), ws, "long", []string{tenancy.PermContentRead}, 365*24*time.Hour)
		must(t, err)
		key2, err := e.svc.AuthenticateAPIKey(e.ctx, text2, "")
		must(t, err)
		e.wantDecision(key2, ws, tenancy.PermContentRead, allowed)
		must(t, e.svc.RemoveMember(e.ctx, admin.mfa(), ws, dev.ID))
		e.wantDecision(key2, ws, tenancy.PermContentRead, tenancy.ReasonKeyInvalid)
		_, err = e.svc.AuthenticateAPIKey(e.ctx, text2, "")
		wantFault(t, err, fault.Unauthenticated, "api_key_invalid")
	})
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestSCIM(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		admin := e.person("admin@example.com")
		ws := e.workspace(admin, "Acme")
		old := admin.mfa()
		e.clock.Advance(time.Hour)
		_, _, err := e.svc.CreateSCIMToken(e.ctx, old, ws)
		wantFault(t, err, fault.Forbidden, tenancy.ReasonStepUpRequired)
		tok, text, err := e.svc.CreateSCIMToken(e.ctx, admin.mfa(), ws)
		must(t, err)
		if !scimTextRE.MatchString(text) {
			t.Fatalf("token text %q", text)
		}
		e.wantEvent("scim.token_create", ws, audit.ActorUser, admin.ID)
		got, err := e.svc.AuthenticateSCIM(e.ctx, text)
		must(t, err)
		if got != ws {
			t.Fatalf("AuthenticateSCIM = %q, want %q", got, ws)
		}
		_, err = e.svc.AuthenticateSCIM(e.ctx, text[:len(text)-1]+flip(text[len(text)-1]))
		wantFault(t, err, fault.Unauthenticated, "scim_token_invalid")

		// Provisioning an existing account and a new one.
		sam := e.person("sam@example.com")
		m, created, err := e.svc.SCIMUpsertUser(e.ctx, ws, "SAM@example.com", "ext-1", true)
		must(t, err)
		if !created || m.UserID != sam.ID || len(m.Roles) != 1 || m.Roles[0] != tenancy.RoleReadOnly || m.SCIMExternal != "ext-1" {
			t.Fatalf("SCIMUpsertUser = %+v, %v", m, created)
		}
		e.wantEvent("scim.user_create", ws, audit.ActorSystem, "scim")
		nu, created, err := e.svc.SCIMUpsertUser(e.ctx, ws, "new@example.com", "ext-2", true)
		must(t, err)
		if !created {
			t.Fatal("new member not reported created")
		}
		if _, created, err = e.svc.SCIMUpsertUser(e.ctx, ws, "new@example.com", "ext-2b", true); err != nil || created {
			t.Fatalf("second upsert: created=%v err=%v", created, err)
		}
		if m, err := e.svc.SCIMMember(e.ctx, ws, nu.UserID); err != nil || m.SCIMExternal != "ext-2b" {
			t.Fatalf("SCIMMember = %+v, %v", m, err)
		}
		must(t, e.svc.SCIMSetRoles(e.ctx, ws, sam.ID, []string{tenancy.RoleEditor}))
		e.wantDecision(sam.plain(), ws, tenancy.PermContentWrite, allowed)

		// Sam has a session and an API key; deactivation ends both at once.
		must(t, e.svc.SCIMSetRoles(e.ctx, ws, sam.ID, []string{tenancy.RoleAdmin}))
		res, err := e.id.SignIn(e.ctx, sam.Email, goodPW, identity.Client{IP: "192.0.2.9"})
		must(t, err)
		if _, err := e.id.Authenticate(e.ctx, res.Token); err != nil {
			t.Fatal(err)
		}
		_, keyText, err := e.svc.CreateAPIKey(e.ctx, sam.mfa(), ws, "sam", []string{tenancy.PermContentRead}, 0)
		must(t, err)
		key, err := e.svc.AuthenticateAPIKey(e.ctx, keyText, "")
		must(t, err)
		e.wantDecision(key, ws, tenancy.PermContentRead, allowed)

		must(t, e.svc.SCIMSetActive(e.ctx, ws, sam.ID, false))
		e.wantDecision(sam.mfa(), ws, tenancy.PermContentRead, tenancy.ReasonInactive)
		wantFault(t, e.svc.Require(e.ctx, sam.mfa(), ws, tenancy.PermContentRead), fault.NotFound, "workspace_not_found")
		e.wantDecision(key, ws, tenancy.PermContentRead, tenancy.ReasonKeyInvalid)
		_, err = e.id.Authenticate(e.ctx, res.Token)
		wantFault(t, err, fault.Unauthenticated, "unauthenticated")
		_, err = e.svc.AuthenticateAPIKey(e.ctx, keyText, "")
		wantFault(t, err, fault.Unauthenticated, "api_key_invalid")
		ev := e.wantEvent("scim.user_deactivate", ws, audit.ActorSystem, "scim")
		if ev.Details["sessions_revoked"] != "1" || ev.Details["api_keys_revoked"] != "1" {
			t.Fatalf("deactivation event details = %v", ev.Details)
		}
		// An inactive member no longer counts as an Admin.
		ws2, err := e.svc.Workspaces(e.ctx, sam.plain())
		must(t, err)
		if len(ws2) != 0 {
			t.Fatalf("inactive member still lists %v", ws2)
		}
		must(t, e.svc.SCIMSetActive(e.ctx, ws, sam.ID, true))
		e.wantDecision(sam.plain(), ws, tenancy.PermContentRead, allowed)

		// Deletion removes the membership and cuts the person off.
		res, err = e.id.SignIn(e.ctx, sam.Email, goodPW, identity.Client{IP: "192.0.2.9"})
		must(t, err)
		must(t, e.svc.SCIMDeleteUser(e.ctx, ws, sam.ID))
		e.wantDecision(sam.plain(), ws, tenancy.PermContentRead, notMember)
		_, err = e.id.Authenticate(e.ctx, res.Token)
		wantFault(t, err, fault.Unauthenticated, "unauthenticated")
		e.wantEvent("scim.user_delete", ws, audit.ActorSystem, "scim")
		ms, err := e.svc.SCIMMembers(e.ctx, ws)
		must(t, err)
		if len(ms) != 2 {
			t.Fatalf("SCIMMembers = %d members, want 2", len(ms))
		}

		must(t, e.svc.RevokeSCIMToken(e.ctx, admin.mfa(), ws, tok.ID))
		_, err = e.svc.AuthenticateSCIM(e.ctx, text)
		wantFault(t, err, fault.Unauthenticated, "scim_token_invalid")
		e.wantEvent("scim.token_revoke", ws, audit.ActorUser, admin.ID)
	})
}
