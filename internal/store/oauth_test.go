package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

func TestOAuthClientsStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ws, _ := newWorkspace(t, s, "Acme", "admin@acme.test")
		other, _ := newWorkspace(t, s, "Other", "admin@other.test")
		op := &oauth.Client{ID: "rc_op", Name: "Operator app", SecretHash: bytes.Repeat([]byte{1}, 32), RedirectURIs: []string{"https://app.test/cb"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid"}, CreatedAt: t0}
		svc := &oauth.Client{ID: "rc_svc", Workspace: ws.ID, Name: "Service", SecretHash: bytes.Repeat([]byte{2}, 32),
			GrantTypes: []string{"client_credentials"}, Permissions: []string{"content.read"}, Audience: []string{"https://api.test"}, CreatedAt: t0}
		mustOK(t, s.CreateOAuthClient(ctx, op))
		mustOK(t, s.CreateOAuthClient(ctx, svc))
		if err := s.CreateOAuthClient(ctx, op); !fault.Is(err, fault.Conflict) {
			t.Fatalf("duplicate id: %v", err)
		}
		got, err := s.OAuthClient(ctx, "rc_svc")
		mustOK(t, err)
		if got.Workspace != ws.ID || !bytes.Equal(got.SecretHash, svc.SecretHash) || got.Permissions[0] != "content.read" || got.Public || !got.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
			t.Fatalf("read back %+v", got)
		}
		if _, err := s.OAuthClient(ctx, "nope"); !fault.Is(err, fault.NotFound) {
			t.Fatalf("unknown client: %v", err)
		}
		for _, tc := range []struct {
			ws   string
			all  bool
			want int
		}{{ws.ID, false, 1}, {other.ID, false, 0}, {"", false, 1}, {"", true, 2}} {
			l, err := s.ListOAuthClients(ctx, tc.ws, tc.all)
			mustOK(t, err)
			if len(l) != tc.want {
				t.Fatalf("list(%q, %v) = %d clients, want %d", tc.ws, tc.all, len(l), tc.want)
			}
		}
		// Another workspace cannot delete it; the operator can.
		if err := s.DeleteOAuthClient(ctx, other.ID, "rc_svc"); !fault.Is(err, fault.NotFound) {
			t.Fatalf("cross-workspace delete: %v", err)
		}
		mustOK(t, s.DeleteOAuthClient(ctx, ws.ID, "rc_svc"))
		mustOK(t, s.DeleteOAuthClient(ctx, "", "rc_op"))
		if st, err := s.OAuthStats(ctx, t0); err != nil || st.Clients != 0 {
			t.Fatalf("stats after delete: %+v %v", st, err)
		}
	})
}

func TestOAuthRequestsStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := &oauth.StoredRequest{Kind: "code", Signature: "sig1", RequestID: "req1", ClientID: "c", Data: []byte(`{"a":1}`), Active: true,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		mustOK(t, s.PutOAuthRequest(ctx, r))
		got, err := s.OAuthRequest(ctx, "code", "sig1")
		mustOK(t, err)
		if !got.Active || string(got.Data) != `{"a":1}` || got.RequestID != "req1" {
			t.Fatalf("read back %+v", got)
		}
		// Spending is a compare-and-swap: exactly one of many wins.
		var wg sync.WaitGroup
		wins := make(chan bool, 8)
		for range 8 {
			wg.Go(func() {
				ok, err := s.DeactivateOAuthRequest(ctx, "code", "sig1")
				if err != nil {
					t.Error(err)
				}
				wins <- ok
			})
		}
		wg.Wait()
		close(wins)
		n := 0
		for ok := range wins {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d requests spent the code, want 1", n)
		}
		if _, err := s.DeactivateOAuthRequest(ctx, "code", "missing"); !fault.Is(err, fault.NotFound) {
			t.Fatalf("missing: %v", err)
		}
		mustOK(t, s.DeleteOAuthRequest(ctx, "code", "sig1"))
		if _, err := s.OAuthRequest(ctx, "code", "sig1"); !fault.Is(err, fault.NotFound) {
			t.Fatalf("deleted: %v", err)
		}
		// Revocations and purge.
		mustOK(t, s.RevokeOAuthKey(ctx, "jti:1", t0.Add(time.Minute)))
		mustOK(t, s.RevokeOAuthKey(ctx, "jti:1", t0.Add(-time.Minute))) // an earlier expiry never shortens it
		for _, tc := range []struct {
			at   time.Time
			want bool
		}{{t0, true}, {t0.Add(2 * time.Minute), false}} {
			got, err := s.OAuthKeyRevoked(ctx, "jti:1", tc.at)
			mustOK(t, err)
			if got != tc.want {
				t.Fatalf("revoked at %v = %v", tc.at, got)
			}
		}
		mustOK(t, s.PutOAuthRequest(ctx, r))
		n2, err := s.PurgeOAuth(ctx, t0.Add(time.Hour))
		mustOK(t, err)
		if n2 != 2 {
			t.Fatalf("purged %d rows, want 2", n2)
		}
	})
}

func TestOAuthConsentStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "c@x.test")
		mustOK(t, s.CreateOAuthClient(ctx, &oauth.Client{ID: "rc_1", Name: "x", CreatedAt: t0}))
		svc := oauth.New(oauth.Config{ConsentTTL: time.Hour}, oauth.Deps{Store: s, Now: func() time.Time { return t0 }})
		ok, err := svc.ConsentCovers(ctx, u.ID, "rc_1", []string{"openid"})
		mustOK(t, err)
		if ok {
			t.Fatal("consent before any")
		}
		mustOK(t, svc.RememberConsent(ctx, u.ID, "rc_1", []string{"openid"}))
		mustOK(t, svc.RememberConsent(ctx, u.ID, "rc_1", []string{"email"}))
		for _, tc := range []struct {
			scopes []string
			want   bool
		}{{[]string{"openid"}, true}, {[]string{"openid", "email"}, true}, {[]string{"profile"}, false}} {
			got, err := svc.ConsentCovers(ctx, u.ID, "rc_1", tc.scopes)
			mustOK(t, err)
			if got != tc.want {
				t.Fatalf("covers %v = %v", tc.scopes, got)
			}
		}
	})
}

// refreshHarness is the domain service on a real store with a real sealer
// and a clock the test moves.
type refreshHarness struct {
	svc     *oauth.Service
	now     time.Time
	revoked []string // sessions revoked
	mu      sync.Mutex
	events  []audit.Event
}

func (h *refreshHarness) Record(_ context.Context, e audit.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
	return nil
}

func newRefreshHarness(t *testing.T, s *store.Store) *refreshHarness {
	kr := vault.NewKeyring(rand.Reader)
	mustOK(t, kr.Add(1, bytes.Repeat([]byte{7}, 32)))
	mustOK(t, kr.SetPrimary(1))
	h := &refreshHarness{now: t0}
	h.svc = oauth.New(oauth.Config{RefreshTTL: time.Hour, RefreshGrace: 10 * time.Second}, oauth.Deps{
		Store: s, Sealer: vault.KeyringSealer{Keyring: kr}, Audit: h, Now: func() time.Time { return h.now },
		RevokeSession: func(_ context.Context, userID, sid string) error {
			h.revoked = append(h.revoked, userID+"/"+sid)
			return nil
		},
	})
	return h
}

func TestOAuthRefreshRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		h := newRefreshHarness(t, s)
		first, err := h.svc.RandomToken(oauth.RefreshTokenPrefix)
		mustOK(t, err)
		mustOK(t, h.svc.StartFamily(ctx, oauth.Signature(first), "fam1", "rc_1", "user1", "sess1", []byte(`{}`)))

		// Rotation: a new token each use.
		r1, err := h.svc.Refresh(ctx, first, "rc_1")
		mustOK(t, err)
		if r1.Token == first || r1.Grace {
			t.Fatalf("rotation returned %+v", r1)
		}
		// Another client cannot use it.
		if _, err := h.svc.Refresh(ctx, r1.Token, "rc_other"); err != oauth.ErrInvalidGrant {
			t.Fatalf("other client: %v", err)
		}
		// Inside the grace window the old token yields the same successor.
		h.now = h.now.Add(5 * time.Second)
		again, err := h.svc.Refresh(ctx, first, "rc_1")
		mustOK(t, err)
		if again.Token != r1.Token || !again.Grace {
			t.Fatalf("grace reuse gave a different successor")
		}
		// Concurrent first uses of the successor: all get the same next token.
		var wg sync.WaitGroup
		got := make(chan string, 6)
		for range 6 {
			wg.Go(func() {
				r, err := h.svc.Refresh(ctx, r1.Token, "rc_1")
				if err != nil {
					t.Error(err)
					return
				}
				got <- r.Token
			})
		}
		wg.Wait()
		close(got)
		var r2 string
		for tok := range got {
			if r2 == "" {
				r2 = tok
			} else if tok != r2 {
				t.Fatal("concurrent refreshes got different successors")
			}
		}
		// Outside the window, reuse revokes the family and the session.
		h.now = h.now.Add(11 * time.Second)
		if _, err := h.svc.Refresh(ctx, first, "rc_1"); err != oauth.ErrRefreshReused {
			t.Fatalf("reuse: %v", err)
		}
		if len(h.revoked) != 1 || h.revoked[0] != "user1/sess1" {
			t.Fatalf("sessions revoked: %v", h.revoked)
		}
		if _, err := h.svc.Refresh(ctx, r2, "rc_1"); err != oauth.ErrInvalidGrant {
			t.Fatalf("current token of a revoked family: %v", err)
		}
		if rev, err := h.svc.Revoked(ctx, oauth.GrantKey("fam1")); err != nil || !rev {
			t.Fatalf("grant not marked revoked: %v %v", rev, err)
		}
		reuse := 0
		for _, e := range h.events {
			if e.Action == "oauth.refresh_reuse" && e.Outcome == audit.Denied {
				reuse++
				for _, v := range e.Details {
					if v == first || v == r1.Token {
						t.Fatal("token value in audit details")
					}
				}
			}
		}
		if reuse != 1 {
			t.Fatalf("%d reuse events", reuse)
		}
		// Unknown and expired tokens.
		if _, err := h.svc.Refresh(ctx, "rrt_unknownunknown", "rc_1"); err != oauth.ErrInvalidGrant {
			t.Fatalf("unknown: %v", err)
		}
		second, _ := h.svc.RandomToken(oauth.RefreshTokenPrefix)
		mustOK(t, h.svc.StartFamily(ctx, oauth.Signature(second), "fam2", "rc_1", "", "", []byte(`{}`)))
		h.now = h.now.Add(2 * time.Hour)
		if _, err := h.svc.Refresh(ctx, second, "rc_1"); err != oauth.ErrInvalidGrant {
			t.Fatalf("expired: %v", err)
		}
	})
}
