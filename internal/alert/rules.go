package alert

import (
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
)

// Rule names, as they appear in alerts and in the "alert.raised" audit
// event. They are a stable, public vocabulary: receivers route on them.
const (
	RuleSigninFailuresAccount = "signin_failures_account"
	RuleSigninFailuresIP      = "signin_failures_ip"
	RuleCredentialStuffing    = "credential_stuffing"
	RuleWAFSpike              = "waf_spike"
	RuleDecryptVolume         = "decrypt_volume"
	RuleNewAdmin              = "new_admin"
	RuleNewOperator           = "new_operator"
	RuleRotationFailed        = "rotation_failed"
	RuleRateLimitFallback     = "rate_limit_fallback"
	RuleAuditVerifyFailed     = "audit_verify_failed"
	RuleBreakGlass            = "break_glass"
	// RuleSuppressed summarizes alerts the rate limit held back when no
	// later alert came along to carry the count.
	RuleSuppressed = "alerts_suppressed"
)

// Severities.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
)

// Key kinds say what an alert's Key identifies, so receivers (and the
// audit record, which stores addresses under "ip" where they are hashed)
// can treat personal data accordingly.
const (
	KeyAccount   = "account"
	KeyIP        = "ip"
	KeyWorkspace = "workspace"
	KeyTarget    = "target"
	KeyGlobal    = "global"
)

// Actions the rules read. Observe drops everything else before queueing,
// so the engine's cost is proportional to security-relevant traffic only.
const (
	actSignin       = "auth.signin"
	actStuffing     = "auth.credential_stuffing"
	actWAFBlock     = "waf.block"
	actDecrypt      = "vault.decrypt"
	actRoleChange   = "member.role_change"
	actWorkspaceNew = "workspace.create"
	actOperatorAdd  = "operator.add"
	actRotationFail = "secret.rotation_failed"
	actVerifyFail   = "audit.verify_failed"
	actBreakGlass   = "support.break_glass"
	actVaultRotate  = "vault.rotate"
	actLimiterFail  = "ratelimit.backend_failed"
)

// relevant reports whether any rule reads e. Alerts' own audit events
// ("alert.*") are never relevant: an alert must not trigger an alert.
func relevant(e *audit.Event) bool {
	if strings.HasPrefix(e.Action, "alert.") {
		return false
	}
	switch e.Action {
	case actSignin:
		return e.Outcome == audit.Failure
	case actStuffing, actWAFBlock, actDecrypt, actRoleChange, actWorkspaceNew,
		actOperatorAdd, actRotationFail, actVerifyFail, actBreakGlass, actLimiterFail:
		return true
	case actVaultRotate:
		return e.Outcome == audit.Failure
	}
	return false
}

// evaluate runs the rules over one event and returns the alerts it
// triggers (before de-duplication and rate limiting). Only the engine's
// goroutine calls it.
func (e *Engine) evaluate(ev audit.Event, now time.Time) []Alert {
	if !relevant(&ev) {
		return nil
	}
	base := Alert{Time: now, Workspace: ev.Workspace, EventID: ev.ID}
	mk := func(rule, sev, kind, key, summary string, count int) Alert {
		a := base
		a.Rule, a.Severity, a.KeyKind, a.Key, a.Summary, a.Count = rule, sev, kind, key, summary, count
		return a
	}
	var out []Alert
	c := &e.cfg
	switch ev.Action {
	case actSignin:
		win := c.SigninWindow.String()
		if ev.Target != "" {
			if n := e.signinAccount.hit(ev.Target, now); n >= c.SigninFailuresPerAccount {
				out = append(out, mk(RuleSigninFailuresAccount, SeverityHigh, KeyAccount, ev.Target,
					strconv.Itoa(n)+" failed sign-ins for one account within "+win, n))
			}
		}
		if ev.IP != "" {
			if n := e.signinIP.hit(ev.IP, now); n >= c.SigninFailuresPerIP {
				out = append(out, mk(RuleSigninFailuresIP, SeverityHigh, KeyIP, ev.IP,
					strconv.Itoa(n)+" failed sign-ins from one address within "+win, n))
			}
		}
	case actStuffing:
		key, kind := ev.Target, KeyTarget
		if key == "" {
			key, kind = ev.IP, KeyIP
		}
		out = append(out, mk(RuleCredentialStuffing, SeverityHigh, kind, key,
			"credential stuffing detected; the source was blocked", 1))
	case actWAFBlock:
		if n := e.wafBlocks.hit("", now); n >= c.WAFBlocks {
			out = append(out, mk(RuleWAFSpike, SeverityMedium, KeyGlobal, "waf",
				strconv.Itoa(n)+" WAF blocks within "+c.WAFWindow.String(), n))
		}
	case actDecrypt:
		if n, base, fire := e.decrypts.hit(ev.Workspace, now); fire {
			out = append(out, mk(RuleDecryptVolume, SeverityHigh, KeyWorkspace, ev.Workspace,
				strconv.Itoa(n)+" decryptions this minute against a baseline of "+strconv.FormatFloat(base, 'f', 1, 64)+" per minute", n))
		}
	case actRoleChange:
		if ev.Outcome == audit.Success && grantsAdmin(ev.Details) {
			out = append(out, mk(RuleNewAdmin, SeverityHigh, KeyTarget, ev.Workspace+" "+ev.Target,
				"a member was given the admin role", 1))
		}
	case actWorkspaceNew:
		if ev.Outcome == audit.Success {
			out = append(out, mk(RuleNewAdmin, SeverityMedium, KeyTarget, ev.Target,
				"a workspace was created; its creator is its admin", 1))
		}
	case actOperatorAdd:
		if ev.Outcome == audit.Success {
			out = append(out, mk(RuleNewOperator, SeverityCritical, KeyTarget, ev.Target,
				"a new operator was added", 1))
		}
	case actLimiterFail:
		out = append(out, mk(RuleRateLimitFallback, SeverityHigh, KeyGlobal, "rate-limit",
			"the shared rate-limit backend failed: limits fell back to per-node", 1))
	case actRotationFail, actVaultRotate:
		if ev.Action == actVaultRotate && ev.Outcome != audit.Failure {
			break
		}
		out = append(out, mk(RuleRotationFailed, SeverityHigh, KeyTarget, ev.Workspace+" "+ev.Target,
			"a secret rotation failed", 1))
	case actVerifyFail:
		out = append(out, mk(RuleAuditVerifyFailed, SeverityCritical, KeyGlobal, "audit",
			"audit log verification failed: the trail may have been tampered with", 1))
	case actBreakGlass:
		out = append(out, mk(RuleBreakGlass, SeverityCritical, KeyTarget, ev.Workspace+" "+ev.ActorID,
			"break-glass access to a workspace ("+string(ev.Outcome)+")", 1))
	}
	return out
}

// grantsAdmin reads a member.role_change event. The event carries the new
// role list ("roles", comma-separated); an "added" list, when present, is
// preferred because it distinguishes a grant from an unrelated change to
// someone who already was admin.
func grantsAdmin(d map[string]string) bool {
	list, ok := d["added"]
	if !ok {
		list = d["roles"]
	}
	for r := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(r) == "admin" {
			return true
		}
	}
	return false
}

// slidingCount counts events per key in a sliding window. It keeps at most
// limit timestamps per key (the count only matters up to the threshold) and
// at most maxKeys keys, so an attacker spraying addresses cannot grow it
// without bound.
type slidingCount struct {
	window  time.Duration
	limit   int
	maxKeys int
	keys    map[string][]time.Time
	full    *atomic.Uint64 // hits not tracked because maxKeys was reached
}

func newSlidingCount(window time.Duration, limit, maxKeys int, full *atomic.Uint64) *slidingCount {
	return &slidingCount{window: window, limit: max(limit, 1), maxKeys: maxKeys, keys: map[string][]time.Time{}, full: full}
}

// hit records an event for key at now and returns how many fall within
// the window (at most limit).
func (s *slidingCount) hit(key string, now time.Time) int {
	ts, ok := s.keys[key]
	if !ok && len(s.keys) >= s.maxKeys {
		s.sweep(now)
		if len(s.keys) >= s.maxKeys {
			s.full.Add(1)
			return 0
		}
	}
	cut := now.Add(-s.window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = append(ts[i:], now)
	if len(ts) > s.limit {
		ts = ts[len(ts)-s.limit:]
	}
	s.keys[key] = ts
	return len(ts)
}

// sweep forgets keys with no event in the window.
func (s *slidingCount) sweep(now time.Time) {
	cut := now.Add(-s.window)
	for k, ts := range s.keys {
		if len(ts) == 0 || !ts[len(ts)-1].After(cut) {
			delete(s.keys, k)
		}
	}
}

// decryptRate tracks per-workspace decrypt counts per minute against an
// exponentially weighted moving average of the workspace's own past minutes.
//
// A workspace's first bucket is discarded (it is almost always a partial
// minute, after a restart or at the workspace's first decrypt, and would set
// a baseline too low); until a full minute has set the baseline, only a
// count of factor×floor in one minute fires.
type decryptRate struct {
	factor  float64
	floor   int
	alpha   float64
	maxKeys int
	ws      map[string]*wsRate
	full    *atomic.Uint64
}

type wsRate struct {
	minute   int64 // unix minute of the current bucket
	count    int
	baseline float64
	buckets  int // buckets closed so far; the first is discarded
}

// hit counts one decrypt for ws at now and reports the count in the
// current minute, the baseline, and whether it is anomalous.
func (d *decryptRate) hit(ws string, now time.Time) (int, float64, bool) {
	m := now.Unix() / 60
	st, ok := d.ws[ws]
	if !ok {
		if len(d.ws) >= d.maxKeys {
			d.sweep(now)
			if len(d.ws) >= d.maxKeys {
				d.full.Add(1)
				return 0, 0, false
			}
		}
		st = &wsRate{minute: m}
		d.ws[ws] = st
	}
	if m > st.minute {
		switch st.buckets {
		case 0: // partial first minute: discarded
		case 1:
			st.baseline = float64(st.count)
		default:
			st.baseline = d.alpha*float64(st.count) + (1-d.alpha)*st.baseline
		}
		st.buckets++
		if idle := m - st.minute - 1; idle > 0 && st.buckets > 1 {
			st.baseline *= math.Pow(1-d.alpha, float64(min(idle, 10_000)))
		}
		st.minute, st.count = m, 0
	}
	st.count++
	if st.buckets < 2 {
		return st.count, st.baseline, float64(st.count) >= d.factor*float64(d.floor)
	}
	return st.count, st.baseline, st.count >= d.floor && float64(st.count) > d.factor*st.baseline
}

// sweep forgets workspaces idle for a day: their baseline has decayed to
// nothing anyway.
func (d *decryptRate) sweep(now time.Time) {
	m := now.Unix() / 60
	for k, st := range d.ws {
		if m-st.minute > 24*60 {
			delete(d.ws, k)
		}
	}
}
