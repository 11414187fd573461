package tenancy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
)

// The decision cache.
//
// Check runs on every request of every app, so a warm decision must cost a
// few map lookups and no allocation. The cache holds, per (workspace,
// subject), the subject's effective permission set with its MFA flags.
// Entries are invalidated by generation numbers rather than by deleting
// them: every change this process makes bumps the workspace's generation
// (synchronously, after the write), and permission registration bumps a
// global one. A reader takes both generations *before* reading the store,
// so an entry computed concurrently with a change carries the old number
// and is refused on its next use. Changes made by other nodes are bounded
// by DecisionCacheTTL.

const (
	nShards = 64
	// maxShardEntries bounds memory (64 × 4096 ≈ 262k subjects); a full
	// shard is simply cleared, costing a miss per subject in it.
	maxShardEntries = 4096
	// maxWorkspaces bounds the generation table; on overflow the table is
	// dropped and the global generation bumped so no entry survives it.
	maxWorkspaces = 1 << 17
)

// Subject kinds of a cache key.
const (
	subjUser uint8 = iota + 1
	subjKey
	subjGrant
)

// Entry states.
const (
	stateOK uint8 = iota
	stateNotMember
	stateInactive
	stateKeyInvalid
)

type cacheKey struct {
	ws, id string
	kind   uint8
}

// entry is an immutable cached answer for one subject in one workspace.
type entry struct {
	ws      *wsState
	gen     uint64
	global  uint64
	expires int64 // unix nanos: cache expiry
	until   int64 // unix nanos: end of the credential (key, grant); 0 = none
	state   uint8
	perms   map[string]permFlags
}

// wsState is a workspace's generation and its custom roles.
type wsState struct {
	gen   atomic.Uint64
	mu    sync.Mutex
	roles *wsRoles
}

type wsRoles struct {
	gen, global uint64
	expires     int64
	perms       map[string][]string // custom role id → permissions
}

type shard struct {
	mu sync.RWMutex
	m  map[cacheKey]*entry
	_  [32]byte // keep shards' locks on separate cache lines
}

type authz struct {
	shards [nShards]shard
	global atomic.Uint64
	cat    atomic.Pointer[catalog]
	// breakGlass is the read-only permission set of break-glass access,
	// rebuilt when the global generation moves.
	breakGlass atomic.Pointer[entry]

	wsMu sync.Mutex
	wss  map[string]*wsState
}

func (a *authz) init() {
	for i := range a.shards {
		a.shards[i].m = make(map[cacheKey]*entry)
	}
	a.wss = make(map[string]*wsState)
}

// shard picks a shard from the tails of the key's strings (FNV-1a). Ids
// are random, so the tails spread well; a hostile spread (chosen workspace
// ids) only crowds one shard, and the maps inside are seeded as usual. A
// full hash of both strings here cost a quarter of a warm Check.
func (a *authz) shard(k *cacheKey) *shard {
	h := uint32(2166136261)
	for _, s := range [2]string{k.ws, k.id} {
		for i := max(0, len(s)-4); i < len(s); i++ {
			h = (h ^ uint32(s[i])) * 16777619
		}
	}
	return &a.shards[h%nShards]
}

// state returns the workspace's generation record, creating it.
func (a *authz) state(ws string) *wsState {
	a.wsMu.Lock()
	defer a.wsMu.Unlock()
	st := a.wss[ws]
	if st == nil {
		if len(a.wss) >= maxWorkspaces {
			a.wss = make(map[string]*wsState)
			a.global.Add(1)
		}
		st = &wsState{}
		a.wss[ws] = st
	}
	return st
}

// invalidate makes every cached decision in ws stale. Callers run it after
// the store write it accounts for.
func (s *Service) invalidate(ws string) { s.az.state(ws).gen.Add(1) }

func (s *Service) lookup(k *cacheKey, now int64) *entry {
	sh := s.az.shard(k)
	sh.mu.RLock()
	e := sh.m[*k]
	sh.mu.RUnlock()
	if e == nil || now >= e.expires || e.gen != e.ws.gen.Load() || e.global != s.az.global.Load() {
		return nil
	}
	return e
}

func (s *Service) put(k *cacheKey, e *entry) {
	sh := s.az.shard(k)
	sh.mu.Lock()
	if len(sh.m) >= maxShardEntries {
		clear(sh.m)
	}
	sh.m[*k] = e
	sh.mu.Unlock()
}

// Check answers whether p may use perm in ws. It never fails: a decision
// that cannot be made is a denial with ReasonUnavailable.
func (s *Service) Check(ctx context.Context, p Principal, ws, perm string) Decision {
	return s.check(ctx, &p, ws, perm, s.d.Now())
}

// CheckBatch answers Check for several permissions at once.
func (s *Service) CheckBatch(ctx context.Context, p Principal, ws string, perms []string) []Decision {
	now := s.d.Now()
	out := make([]Decision, len(perms))
	for i, perm := range perms {
		out[i] = s.check(ctx, &p, ws, perm, now)
	}
	return out
}

// CheckUser answers for another user, for apps; the caller needs
// authz.check. The user's session is unknown, so rules that need an MFA
// session or a fresh step-up deny with their reason.
func (s *Service) CheckUser(ctx context.Context, caller Principal, ws, userID, perm string) (Decision, error) {
	if err := s.Require(ctx, caller, ws, PermAuthzCheck); err != nil {
		return Decision{}, err
	}
	if userID == "" {
		return Decision{}, fault.Invalidf("user_required", "name the user to check")
	}
	return s.Check(ctx, Principal{UserID: userID}, ws, perm), nil
}

func deny(perm, reason string) Decision { return Decision{Permission: perm, Reason: reason} }

func (s *Service) check(ctx context.Context, p *Principal, ws, perm string, now time.Time) Decision {
	e, reason := s.subject(ctx, p, ws, now)
	if reason != "" {
		return deny(perm, reason)
	}
	f, ok := e.perms[perm]
	if !ok {
		if c := s.az.cat.Load(); c != nil {
			if _, known := c.flags[perm]; !known {
				return deny(perm, ReasonUnknownPermission)
			}
		}
		return deny(perm, ReasonDenied)
	}
	// API keys have no second factor; they are limited to their own list
	// instead (SES-5).
	if p.APIKey == nil {
		if f&flagAdminOnly != 0 && !s.cfg.AdminMFAOptional && !p.MFA {
			return deny(perm, ReasonMFARequired)
		}
		if f&flagSensitive != 0 && (!p.MFA || p.MFAAt.IsZero() || now.Sub(p.MFAAt) > s.cfg.StepUpWindow) {
			return deny(perm, ReasonStepUpRequired)
		}
	}
	return Decision{Permission: perm, Allowed: true, Reason: ReasonAllowed}
}

// subject returns the principal's cached entry for ws, loading it on a
// miss, or the reason it has no access at all.
func (s *Service) subject(ctx context.Context, p *Principal, ws string, now time.Time) (*entry, string) {
	ns := now.UnixNano()
	var k cacheKey
	switch {
	case ws == "":
		return nil, ReasonNotMember
	case p.APIKey != nil:
		if p.APIKey.WorkspaceID != ws {
			return nil, ReasonNotMember
		}
		if !p.APIKey.RevokedAt.IsZero() || ns >= p.APIKey.ExpiresAt.UnixNano() {
			return nil, ReasonKeyInvalid
		}
		k = cacheKey{ws: ws, id: p.APIKey.ID, kind: subjKey}
	case p.OperatorID != "":
		if p.Workspace != ws || ns >= p.Until.UnixNano() {
			return nil, ReasonNotMember
		}
		if p.BreakGlass {
			return s.breakGlassEntry(ctx, now)
		}
		g := p.SupportGrant
		if g == nil || g.WorkspaceID != ws || (g.OperatorID != "" && g.OperatorID != p.OperatorID) ||
			!g.RevokedAt.IsZero() || ns >= g.ExpiresAt.UnixNano() {
			return nil, ReasonNotMember
		}
		k = cacheKey{ws: ws, id: g.ID, kind: subjGrant}
	case p.UserID != "":
		k = cacheKey{ws: ws, id: p.UserID, kind: subjUser}
	default:
		return nil, ReasonNotMember
	}
	e := s.lookup(&k, ns)
	if e == nil {
		var err error
		if e, err = s.load(ctx, k, now); err != nil {
			s.d.Log.Error("authorization lookup failed", "err", err)
			return nil, ReasonUnavailable
		}
	}
	switch {
	case e.state == stateOK && (e.until == 0 || ns < e.until):
		return e, ""
	case e.state == stateInactive:
		return nil, ReasonInactive
	case k.kind == subjKey:
		return nil, ReasonKeyInvalid
	}
	return nil, ReasonNotMember
}

// breakGlassEntry serves an operator without a grant: read permissions
// only (AC-6).
func (s *Service) breakGlassEntry(ctx context.Context, now time.Time) (*entry, string) {
	c, err := s.loadCatalog(ctx, now)
	if err != nil {
		return nil, ReasonUnavailable
	}
	e := s.az.breakGlass.Load()
	if e == nil || e.global != s.az.global.Load() {
		e = &entry{global: s.az.global.Load(), perms: make(map[string]permFlags)}
		for name, f := range c.flags {
			if isReadPerm(name) {
				e.perms[name] = f
			}
		}
		s.az.breakGlass.Store(e)
	}
	return e, ""
}

// load computes and caches the entry for k. This is the cost of a miss:
// one Member (or key, or grant) read, plus the workspace's custom roles
// when they are not cached, plus the permission catalog every
// DecisionCacheTTL.
func (s *Service) load(ctx context.Context, k cacheKey, now time.Time) (*entry, error) {
	st := s.az.state(k.ws)
	e := &entry{ws: st, gen: st.gen.Load(), global: s.az.global.Load(), expires: now.Add(s.cfg.DecisionCacheTTL).UnixNano()}
	cat, err := s.loadCatalog(ctx, now)
	if err != nil {
		return nil, err
	}
	switch k.kind {
	case subjUser:
		m, err := s.d.Store.Member(ctx, k.ws, k.id)
		switch {
		case fault.Is(err, fault.NotFound):
			e.state = stateNotMember
		case err != nil:
			return nil, err
		case !m.Active:
			e.state = stateInactive
		default:
			custom, err := s.customRoles(ctx, st, k.ws, e.gen, e.global, now)
			if err != nil {
				return nil, err
			}
			e.perms = expandRoles(m.Roles, cat, custom)
		}
	case subjKey:
		key, err := s.d.Store.APIKeyByID(ctx, k.id)
		switch {
		case fault.Is(err, fault.NotFound):
			e.state = stateKeyInvalid
		case err != nil:
			return nil, err
		case key.WorkspaceID != k.ws || !key.RevokedAt.IsZero():
			e.state = stateKeyInvalid
		default:
			e.until = key.ExpiresAt.UnixNano()
			// A key never carries more than its creator holds now: a
			// demoted or departed creator takes the key's power with them.
			ck := cacheKey{ws: k.ws, id: key.CreatedBy, kind: subjUser}
			creator := s.lookup(&ck, now.UnixNano())
			if creator == nil {
				if creator, err = s.load(ctx, ck, now); err != nil {
					return nil, err
				}
			}
			if creator.state != stateOK {
				e.state = stateKeyInvalid
				break
			}
			e.perms = make(map[string]permFlags, len(key.Permissions))
			for _, p := range key.Permissions {
				if f, ok := creator.perms[p]; ok {
					e.perms[p] = f
				}
			}
		}
	case subjGrant:
		grants, err := s.d.Store.ListSupportGrants(ctx, k.ws)
		if err != nil {
			return nil, err
		}
		e.state = stateNotMember
		for _, g := range grants {
			if g.ID != k.id || !g.RevokedAt.IsZero() {
				continue
			}
			e.state = stateOK
			e.until = g.ExpiresAt.UnixNano()
			e.perms = make(map[string]permFlags, len(g.Scope))
			for _, p := range g.Scope {
				if f, ok := cat.flags[p]; ok {
					e.perms[p] = f
				}
			}
		}
	}
	s.put(&k, e)
	return e, nil
}

// customRoles returns the workspace's custom roles, cached under the same
// generations as decisions.
func (s *Service) customRoles(ctx context.Context, st *wsState, ws string, gen, global uint64, now time.Time) (map[string][]string, error) {
	st.mu.Lock()
	r := st.roles
	st.mu.Unlock()
	if r != nil && r.gen == gen && r.global == global && now.UnixNano() < r.expires {
		return r.perms, nil
	}
	roles, err := s.d.Store.ListRoles(ctx, ws)
	if err != nil {
		return nil, err
	}
	m := make(map[string][]string, len(roles))
	for _, ro := range roles {
		if !ro.BuiltIn && !isBuiltinRole(ro.ID) {
			m[ro.ID] = ro.Permissions
		}
	}
	st.mu.Lock()
	st.roles = &wsRoles{gen: gen, global: global, expires: now.Add(s.cfg.DecisionCacheTTL).UnixNano(), perms: m}
	st.mu.Unlock()
	return m, nil
}

// expandRoles is the union of the roles' permissions that the catalog
// knows, with their MFA flags.
func expandRoles(roles []string, cat *catalog, custom map[string][]string) map[string]permFlags {
	perms := make(map[string]permFlags)
	for _, r := range roles {
		list, ok := cat.builtin[r]
		if !ok {
			list = custom[r]
		}
		for _, p := range list {
			if f, ok := cat.flags[p]; ok {
				perms[p] = f
			}
		}
	}
	return perms
}

// effective returns the principal's permissions in ws, or the error Require
// would give. Callers must not modify the map.
func (s *Service) effective(ctx context.Context, p *Principal, ws string) (map[string]permFlags, error) {
	e, reason := s.subject(ctx, p, ws, s.d.Now())
	if reason != "" {
		return nil, denialError(reason)
	}
	return e.perms, nil
}

// Require is Check for the service's own callers: a denial becomes a fault
// error and is audited; an allowed user is marked active in the workspace
// (for access reviews), at most once a minute.
func (s *Service) Require(ctx context.Context, p Principal, ws, perm string) error {
	now := s.d.Now()
	d := s.check(ctx, &p, ws, perm, now)
	if !d.Allowed {
		typ, id := actorOf(&p)
		_ = s.record(ctx, audit.Event{ActorType: typ, ActorID: id, Workspace: ws, Action: "authz.denied", Outcome: audit.Denied,
			Details: map[string]string{"permission": safePerm(perm), "reason": d.Reason}})
		return denialError(d.Reason)
	}
	switch {
	case p.OperatorID != "":
		return s.logSupportUse(ctx, &p, ws, perm, now)
	case p.APIKey == nil:
		s.touch(ctx, ws, p.UserID, now)
	}
	return nil
}

// logSupportUse records an operator's use of a permission for the
// customer's support access log (AC-6); without the record there is no
// access.
func (s *Service) logSupportUse(ctx context.Context, p *Principal, ws, perm string, now time.Time) error {
	id, err := s.randomID()
	if err != nil {
		return err
	}
	a := &SupportAccess{ID: id, WorkspaceID: ws, OperatorID: p.OperatorID, BreakGlass: p.BreakGlass, Action: perm, At: now.UTC()}
	if p.SupportGrant != nil {
		a.GrantID = p.SupportGrant.ID
	}
	if err := s.d.Store.RecordSupportAccess(ctx, a); err != nil {
		return fault.Wrap(fault.Unavailable, "support_log_unavailable", "the access could not be recorded; try again", err)
	}
	return nil
}

// safePerm keeps arbitrary caller input out of audit details.
func safePerm(perm string) string {
	if validPermName(perm) {
		return perm
	}
	return "(invalid)"
}

var errWorkspaceNotFound = fault.New(fault.NotFound, "workspace_not_found", "no such workspace")

func denialError(reason string) error {
	switch reason {
	case ReasonNotMember, ReasonInactive:
		// Existence stays private: no access looks like no workspace.
		return errWorkspaceNotFound
	case ReasonUnavailable:
		return fault.New(fault.Unavailable, "authz_unavailable", "the permission check could not be made; try again")
	case ReasonMFARequired:
		return fault.New(fault.Forbidden, reason, "this needs a session signed in with a second factor")
	case ReasonStepUpRequired:
		return fault.New(fault.Forbidden, reason, "confirm with your second factor to continue")
	case ReasonUnknownPermission:
		return fault.New(fault.Forbidden, reason, "no such permission")
	case ReasonKeyInvalid:
		return fault.New(fault.Forbidden, reason, "the API key has expired or was revoked")
	}
	return fault.New(fault.Forbidden, ReasonDenied, "you do not have permission to do this")
}

type touchKey struct{ ws, user string }

// toucher throttles last-active writes to one a minute per member.
type toucher struct {
	mu sync.Mutex
	m  map[touchKey]int64
}

func (s *Service) touch(ctx context.Context, ws, user string, now time.Time) {
	if user == "" {
		return
	}
	ns := now.UnixNano()
	k := touchKey{ws, user}
	t := &s.tch
	t.mu.Lock()
	if last, ok := t.m[k]; ok && ns-last < int64(time.Minute) {
		t.mu.Unlock()
		return
	}
	if len(t.m) >= 1<<16 {
		for k, v := range t.m {
			if ns-v >= int64(time.Minute) {
				delete(t.m, k)
			}
		}
		if len(t.m) >= 1<<16 {
			clear(t.m)
		}
	}
	t.m[k] = ns
	t.mu.Unlock()
	if err := s.d.Store.TouchMember(ctx, ws, user, now); err != nil && !fault.Is(err, fault.NotFound) {
		s.d.Log.Warn("recording member activity failed", "err", err)
	}
}
