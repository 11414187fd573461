package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/web"
)

// auditEvent is an event as the API shows it.
type auditEvent struct {
	ID        int64             `json:"id"`
	Time      time.Time         `json:"time"`
	ActorType string            `json:"actor_type"`
	ActorID   string            `json:"actor_id"`
	Workspace string            `json:"workspace"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Outcome   string            `json:"outcome"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	RequestID string            `json:"request_id"`
	TraceID   string            `json:"trace_id"`
	Details   map[string]string `json:"details"`
}

type auditList struct {
	Events     []auditEvent `json:"events"`
	NextCursor *int64       `json:"next_cursor"`
}

// settle waits for the API-call events still in flight and moves the
// clock on: every event so far lies before the returned instant (an
// exclusive until), every later one at or after it, so listings bounded by
// it are stable while the test keeps calling the API.
func settle(e *tenv) string {
	e.a.Handler.Drain()
	e.clk.Advance(time.Second)
	until := e.clk.Now().UTC()
	e.clk.Advance(time.Second)
	return until.Format(time.RFC3339Nano)
}

// listAudit reads one page, strictly decoded.
func listAudit(t *testing.T, c *actor, path string, v url.Values) (auditList, response) {
	t.Helper()
	res := c.must(t, "GET", path+"?"+v.Encode(), "", http.StatusOK, nil)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	var l auditList
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("decode %s: %v; body %.300s", path, err, res.body)
	}
	if l.Events == nil {
		t.Fatalf("events is not a list: %.300s", res.body)
	}
	return l, res
}

// pageAll follows the cursor with pages of size limit and returns every
// event, checking the cursor contract on each page.
func pageAll(t *testing.T, c *actor, path string, v url.Values, limit int) []auditEvent {
	t.Helper()
	var out []auditEvent
	v.Set("limit", strconv.Itoa(limit))
	v.Del("cursor")
	for range 10000 {
		p, _ := listAudit(t, c, path, v)
		out = append(out, p.Events...)
		if p.NextCursor == nil {
			if len(p.Events) == limit {
				t.Fatalf("a full page of %d has no next_cursor", limit)
			}
			return out
		}
		if len(p.Events) != limit || *p.NextCursor != p.Events[len(p.Events)-1].ID {
			t.Fatalf("page of %d with next_cursor %d, last id %d", len(p.Events), *p.NextCursor, p.Events[len(p.Events)-1].ID)
		}
		v.Set("cursor", strconv.FormatInt(*p.NextCursor, 10))
	}
	t.Fatal("paging does not end")
	return nil
}

func ids(evs []auditEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func pick(evs []auditEvent, keep func(auditEvent) bool) []int64 {
	var out []int64
	for _, e := range evs {
		if keep(e) {
			out = append(out, e.ID)
		}
	}
	return out
}

func hasAction(evs []auditEvent, action, actor string) bool {
	return slices.ContainsFunc(evs, func(e auditEvent) bool { return e.Action == action && (actor == "" || e.ActorID == actor) })
}

// exportLines reads an export and returns each line decoded as a generic
// object, checking the content type and that every line is one JSON value.
func exportLines(t *testing.T, c *actor, path string, v url.Values) []map[string]any {
	t.Helper()
	res := c.must(t, "GET", path+"?"+v.Encode(), "", http.StatusOK, nil)
	if ct := res.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("export content type %q", ct)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(res.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("export line %d is not JSON: %v: %q", len(out)+1, err, sc.Bytes())
		}
		out = append(out, m)
	}
	if len(res.body) > 0 && res.body[len(res.body)-1] != '\n' {
		t.Fatal("export does not end with a newline")
	}
	return out
}

// asMaps is the paged listing in the generic shape exportLines returns.
func asMaps(t *testing.T, evs []auditEvent) []map[string]any {
	t.Helper()
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for _, m := range out { // the API omits empty fields; the test struct does not
		for k, v := range m {
			if v == "" || v == nil {
				delete(m, k)
			}
		}
	}
	return out
}

// TestWorkspaceAuditTrail: a workspace's trail holds its events only,
// pages through every event exactly once, filters exactly, exports the
// same events as JSON Lines, and is closed to members without audit.read
// and to other tenants.
func TestWorkspaceAuditTrail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *tenv) {
		alice := newPerson(t, e, "alice@example.com")
		alice.enrolMFA(t)
		bob := newPerson(t, e, "bob@example.com")
		bob.enrolMFA(t)
		wa, wb := alice.createWorkspace(t, "Alpha").ID, bob.createWorkspace(t, "Bravo").ID
		pa, pb := "/v1/workspaces/"+wa+"/audit", "/v1/workspaces/"+wb+"/audit"

		var role struct {
			ID string `json:"id"`
		}
		alice.must(t, "POST", "/v1/workspaces/"+wa+"/roles", `{"name":"Viewer","permissions":["workspace.read"]}`, http.StatusCreated, &role)
		bob.must(t, "POST", "/v1/workspaces/"+wb+"/roles", `{"name":"Other","permissions":["workspace.read"]}`, http.StatusCreated, nil)
		for range 3 {
			alice.must(t, "GET", "/v1/workspaces/"+wa+"/members", "", http.StatusOK, nil)
			bob.must(t, "GET", "/v1/workspaces/"+wb+"/members", "", http.StatusOK, nil)
		}
		e.clk.Advance(time.Minute) // so since and until have a middle to cut at
		viewer := newPerson(t, e, "viewer@example.com")
		join(t, alice, viewer, wa, role.ID)

		// A member without audit.read is refused (and that is recorded);
		// another tenant gets what a workspace that does not exist gets.
		viewer.refused(t, "GET", pa, "", http.StatusForbidden, "permission_denied")
		viewer.refused(t, "GET", pa+"/export", "", http.StatusForbidden, "permission_denied")
		for _, p := range []string{pa, pa + "/export", "/v1/workspaces/ws0000000000000000000000000000/audit"} {
			bob.refused(t, "GET", p, "", http.StatusNotFound, "workspace_not_found")
			bob.refused(t, "GET", p+"?limit=banana", "", http.StatusNotFound, "workspace_not_found")
		}
		anon := &actor{e: e, email: "anonymous"}
		anon.refused(t, "GET", pa, "", http.StatusUnauthorized, "unauthenticated")
		until := settle(e)

		all, res := listAudit(t, alice, pa, url.Values{"until": {until}, "limit": {"1000"}})
		if all.NextCursor != nil {
			t.Fatalf("a partial page has next_cursor %d", *all.NextCursor)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("audit listing is cacheable: %q", res.Header.Get("Cache-Control"))
		}
		for i, ev := range all.Events {
			if ev.Workspace != wa {
				t.Fatalf("A's trail holds an event of workspace %q: %+v", ev.Workspace, ev)
			}
			if i > 0 && ev.ID <= all.Events[i-1].ID {
				t.Fatalf("events out of order: %d after %d", ev.ID, all.Events[i-1].ID)
			}
		}
		for _, want := range []struct{ action, actor string }{
			{"workspace.create", alice.id}, {"role.create", alice.id}, {"invitation.create", alice.id},
			{"invitation.accept", viewer.id}, {"authz.denied", viewer.id}, {"authz.denied", bob.id}, {"api.request", alice.id},
		} {
			if !hasAction(all.Events, want.action, want.actor) {
				t.Errorf("A's trail lacks %s by %s", want.action, want.actor)
			}
		}
		other, _ := listAudit(t, bob, pb, url.Values{"until": {until}, "limit": {"1000"}})
		if len(other.Events) == 0 || !hasAction(other.Events, "role.create", bob.id) {
			t.Fatalf("B's trail: %+v", other.Events)
		}
		for _, ev := range other.Events {
			if ev.Workspace != wb || slices.Contains(ids(all.Events), ev.ID) {
				t.Fatalf("B's trail holds %+v", ev)
			}
		}

		// Paging returns every event exactly once, in order.
		for _, limit := range []int{1, 4, 7} {
			if got := ids(pageAll(t, alice, pa, url.Values{"until": {until}}, limit)); !slices.Equal(got, ids(all.Events)) {
				t.Fatalf("paged by %d: %v, want %v", limit, got, ids(all.Events))
			}
		}

		// Filters select exactly what they say.
		later := slices.IndexFunc(all.Events, func(x auditEvent) bool { return x.Time.After(all.Events[0].Time) })
		if later < 0 {
			t.Fatal("every event has the same time; since and until cannot be tested")
		}
		mid := all.Events[later].Time
		filters := []struct {
			name string
			v    url.Values
			keep func(auditEvent) bool
		}{
			{"action exact", url.Values{"action": {"role.create"}}, func(x auditEvent) bool { return x.Action == "role.create" }},
			{"action prefix", url.Values{"action": {"invitation."}}, func(x auditEvent) bool { return strings.HasPrefix(x.Action, "invitation.") }},
			{"action without dot is exact", url.Values{"action": {"invitation"}}, func(x auditEvent) bool { return x.Action == "invitation" }},
			{"outcome", url.Values{"outcome": {"denied"}}, func(x auditEvent) bool { return x.Outcome == "denied" }},
			{"actor", url.Values{"actor": {viewer.id}}, func(x auditEvent) bool { return x.ActorID == viewer.id }},
			{"actor and action", url.Values{"actor": {alice.id}, "action": {"api."}}, func(x auditEvent) bool {
				return x.ActorID == alice.id && strings.HasPrefix(x.Action, "api.")
			}},
			{"since", url.Values{"since": {mid.Format(time.RFC3339Nano)}}, func(x auditEvent) bool { return !x.Time.Before(mid) }},
			{"until", url.Values{"until": {mid.Format(time.RFC3339Nano)}}, func(x auditEvent) bool { return x.Time.Before(mid) }},
			{"cursor", url.Values{"cursor": {strconv.FormatInt(all.Events[2].ID, 10)}}, func(x auditEvent) bool { return x.ID > all.Events[2].ID }},
		}
		for _, f := range filters {
			t.Run(f.name, func(t *testing.T) {
				if f.v.Get("until") == "" {
					f.v.Set("until", until)
				}
				want := pick(all.Events, f.keep)
				if f.name != "action without dot is exact" && len(want) == 0 {
					t.Fatalf("filter %v selects nothing in %d events; the case proves nothing", f.v, len(all.Events))
				}
				v := url.Values{}
				for k, x := range f.v {
					v[k] = x
				}
				v.Set("limit", "1000")
				got, _ := listAudit(t, alice, pa, v)
				if !slices.Equal(ids(got.Events), want) {
					t.Fatalf("%v: %v, want %v", f.v, ids(got.Events), want)
				}
				v.Del("limit")
				if ex := exportLines(t, alice, pa+"/export", v); !reflect.DeepEqual(ex, asMaps(t, got.Events)) && !(len(ex) == 0 && len(got.Events) == 0) {
					t.Fatalf("export of %v differs from the listing:\n%v\n%v", f.v, ex, asMaps(t, got.Events))
				}
			})
		}

		// The export streams the same events as the paged query.
		if ex, want := exportLines(t, alice, pa+"/export", url.Values{"until": {until}}), asMaps(t, all.Events); !reflect.DeepEqual(ex, want) {
			t.Fatalf("export differs from the listing: %d lines, %d events", len(ex), len(want))
		}
		// Without until it ends where it began, and holds everything before.
		if ex := exportLines(t, alice, pa+"/export", nil); len(ex) < len(all.Events) {
			t.Fatalf("open-ended export has %d lines, want at least %d", len(ex), len(all.Events))
		}
		// An API key with audit.read reads the same trail.
		_, key := alice.createKey(t, wa, []string{"audit.read"}, 1)
		if got := ids(pageAll(t, alice.withKey(key), pa, url.Values{"until": {until}}, 50)); !slices.Equal(got, ids(all.Events)) {
			t.Fatalf("key reads %v, want %v", got, ids(all.Events))
		}
		bob.withKey(key).refused(t, "GET", pb, "", http.StatusNotFound, "workspace_not_found")
	})
}

// TestOperatorAuditQuery: only operator staff in an MFA session read across
// workspaces, and each query is recorded before it is answered, visible to
// the workspace it looked at; without the record there is no answer.
func TestOperatorAuditQuery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *tenv) {
		alice := newPerson(t, e, "alice@example.com")
		alice.enrolMFA(t)
		bob := newPerson(t, e, "bob@example.com")
		wa, wb := alice.createWorkspace(t, "Alpha").ID, bob.createWorkspace(t, "Bravo").ID
		op := newPerson(t, e, "staff@example.com")
		if _, err := e.a.Tenancy.AddOperator(context.Background(), op.email, nil); err != nil {
			t.Fatalf("add operator: %v", err)
		}
		const path = "/v1/operator/audit"
		op.refused(t, "GET", path, "", http.StatusForbidden, "mfa_required")
		alice.refused(t, "GET", path, "", http.StatusForbidden, "not_operator")
		(&actor{e: e, email: "anonymous"}).refused(t, "GET", path, "", http.StatusUnauthorized, "unauthenticated")
		_, key := alice.createKey(t, wa, []string{"audit.read"}, 1)
		alice.withKey(key).refused(t, "GET", path, "", http.StatusForbidden, "session_required")
		op.enrolMFA(t)

		// The query's own record is in its answer: it was written first.
		l, res := listAudit(t, op, path, url.Values{"workspace": {wa}, "action": {"audit.operator_query"}})
		rid := res.Header.Get("X-Request-Id")
		if !slices.ContainsFunc(l.Events, func(x auditEvent) bool {
			return x.RequestID == rid && x.ActorType == "operator" && x.ActorID == op.id && x.Workspace == wa && x.Outcome == "success" &&
				x.Details["action"] == "audit.operator_query"
		}) {
			t.Fatalf("the operator query is not recorded before its answer: %+v", l.Events)
		}

		until := settle(e)
		mine, _ := listAudit(t, alice, "/v1/workspaces/"+wa+"/audit", url.Values{"until": {until}, "limit": {"1000"}})
		theirs := pageAll(t, op, path, url.Values{"until": {until}, "workspace": {wa}}, 5)
		if !slices.Equal(ids(theirs), ids(mine.Events)) {
			t.Fatalf("operator's view of A %v, A's own %v", ids(theirs), ids(mine.Events))
		}
		everything := pageAll(t, op, path, url.Values{"until": {until}}, 1000)
		if everything[0].ID != 0 || everything[0].Action != audit.GenesisAction {
			t.Fatalf("the operator's full view does not start at the genesis record: %+v", everything[0])
		}
		for _, ws := range []string{wa, wb, ""} {
			if !slices.ContainsFunc(everything, func(x auditEvent) bool { return x.Workspace == ws }) {
				t.Errorf("the operator's full view has no event of workspace %q", ws)
			}
		}

		// The workspace sees staff reading its trail.
		seen, _ := listAudit(t, alice, "/v1/workspaces/"+wa+"/audit", url.Values{"action": {"audit.operator_query"}, "actor": {op.id}})
		if len(seen.Events) < 2 {
			t.Fatalf("A sees %d operator queries, want at least 2", len(seen.Events))
		}
		bobs, _ := listAudit(t, bob, "/v1/workspaces/"+wb+"/audit", url.Values{"action": {"audit.operator_query"}})
		if len(bobs.Events) != 0 {
			t.Fatalf("B sees operator queries of A: %+v", bobs.Events)
		}

		// Fail closed: with the log stopped nothing is recorded, so nothing
		// is answered.
		if err := e.a.AuditLog.Close(); err != nil {
			t.Fatal(err)
		}
		op.refused(t, "GET", path, "", http.StatusServiceUnavailable, "audit_unavailable")
	})
}

// checkpointOf verifies a signed checkpoint note and returns its size and root.
func checkpointOf(t *testing.T, v note.Verifier, msg []byte) (int64, tlog.Hash) {
	t.Helper()
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, msg)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != v.Name() {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		t.Fatalf("root %q", lines[2])
	}
	return size, tlog.Hash(raw)
}

func decodeHashes(t *testing.T, in []string) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(in))
	for i, s := range in {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != tlog.HashSize {
			t.Fatalf("hash %q", s)
		}
		out[i] = tlog.Hash(raw)
	}
	return out
}

type inclusionJSON struct {
	ID       int64    `json:"id"`
	Size     int64    `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
}

// TestAuditProofs: the published checkpoint verifies with the published
// key, consistency and inclusion proofs check against signed roots with
// golang.org/x/mod/sumdb/tlog, and an inclusion proof is only given to
// whoever may read the event.
func TestAuditProofs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *tenv) {
		ctx := context.Background()
		anon := &actor{e: e, email: "anonymous"}
		alice := newPerson(t, e, "alice@example.com")
		alice.enrolMFA(t) // creating a role is an admin action
		bob := newPerson(t, e, "bob@example.com")
		op := newPerson(t, e, "staff@example.com")
		if _, err := e.a.Tenancy.AddOperator(ctx, op.email, nil); err != nil {
			t.Fatal(err)
		}
		op.enrolMFA(t)
		wa := alice.createWorkspace(t, "Alpha").ID

		res := anon.must(t, "GET", "/v1/audit/verifier-key", "", http.StatusOK, nil)
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("verifier key content type %q", res.Header.Get("Content-Type"))
		}
		v, err := note.NewVerifier(string(res.body))
		if err != nil {
			t.Fatalf("published verifier key %q: %v", res.body, err)
		}
		latest := func() (int64, tlog.Hash) {
			t.Helper()
			e.a.Handler.Drain()
			if _, err := e.a.AuditLog.CheckpointNow(ctx); err != nil {
				t.Fatal(err)
			}
			res := anon.must(t, "GET", "/v1/audit/checkpoint", "", http.StatusOK, nil)
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("checkpoint content type %q", res.Header.Get("Content-Type"))
			}
			return checkpointOf(t, v, res.body)
		}
		size1, root1 := latest()
		alice.must(t, "POST", "/v1/workspaces/"+wa+"/roles", `{"name":"Viewer","permissions":["workspace.read"]}`, http.StatusCreated, nil)
		size2, root2 := latest()
		if size2 <= size1 {
			t.Fatalf("the log did not grow: %d then %d", size1, size2)
		}

		// Consistency: public, and it checks against both signed roots.
		var cons struct {
			From  int64    `json:"from"`
			To    int64    `json:"to"`
			Proof []string `json:"proof"`
		}
		anon.must(t, "GET", "/v1/audit/proof/consistency?from="+strconv.FormatInt(size1, 10)+"&to="+strconv.FormatInt(size2, 10), "", http.StatusOK, &cons)
		if cons.From != size1 || cons.To != size2 {
			t.Fatalf("consistency answer %+v", cons)
		}
		proof := tlog.TreeProof(decodeHashes(t, cons.Proof))
		if err := tlog.CheckTree(proof, size2, root2, size1, root1); err != nil {
			t.Fatalf("consistency proof does not check: %v", err)
		}
		bad := root1
		bad[0] ^= 1
		if tlog.CheckTree(proof, size2, root2, size1, bad) == nil {
			t.Fatal("consistency proof checks against a wrong root")
		}

		// Inclusion of a workspace event: its readers get the proof.
		wsEvents, _ := listAudit(t, alice, "/v1/workspaces/"+wa+"/audit", url.Values{"action": {"role.create"}})
		if len(wsEvents.Events) != 1 || wsEvents.Events[0].ID >= size2 {
			t.Fatalf("role.create events %+v (size %d)", wsEvents.Events, size2)
		}
		signin, err := e.a.AuditLog.Search(ctx, audit.Query{ActorID: alice.id, Action: "auth.signin", Outcome: audit.Success, AfterIndex: -1, Limit: 1})
		if err != nil || len(signin) != 1 || signin[0].Workspace != "" || signin[0].ID >= size2 {
			t.Fatalf("alice's sign-in event: %+v, %v", signin, err)
		}
		inclusion := func(id int64) string {
			return "/v1/audit/proof/inclusion?id=" + strconv.FormatInt(id, 10) + "&size=" + strconv.FormatInt(size2, 10)
		}
		check := func(c *actor, id int64) {
			t.Helper()
			var inc inclusionJSON
			c.must(t, "GET", inclusion(id), "", http.StatusOK, &inc)
			leaf := decodeHashes(t, []string{inc.LeafHash})[0]
			p := tlog.RecordProof(decodeHashes(t, inc.Proof))
			if inc.ID != id || inc.Size != size2 {
				t.Fatalf("inclusion answer %+v", inc)
			}
			if err := tlog.CheckRecord(p, size2, root2, id, leaf); err != nil {
				t.Fatalf("inclusion proof of %d for %s does not check: %v", id, c.name(), err)
			}
			if tlog.CheckRecord(p, size2, root2, id^1, leaf) == nil {
				t.Fatalf("inclusion proof of %d also checks at %d", id, id^1)
			}
		}
		wsEvent, own := wsEvents.Events[0].ID, signin[0].ID
		check(alice, wsEvent)
		check(op, wsEvent)
		check(alice, own) // an account-level event, read by its actor
		check(op, own)
		check(op, 0) // the genesis record: operators only

		// Everyone else gets the answer an event that does not exist gets.
		missing := "/v1/audit/proof/inclusion?id=4611686018427387000&size=4611686018427387001"
		for _, c := range []struct {
			who  *actor
			path string
		}{
			{bob, inclusion(wsEvent)}, {bob, inclusion(own)}, {alice, inclusion(0)}, {bob, missing}, {alice, missing},
		} {
			c.who.refused(t, "GET", c.path, "", http.StatusNotFound, "event_not_found")
		}
		anon.refused(t, "GET", inclusion(own), "", http.StatusUnauthorized, "unauthenticated")
	})
}

// emptyLog is an audit log that has signed no checkpoint yet (the app
// signs one as it starts, so only a stub reaches this state).
type emptyLog struct{}

func (emptyLog) KeyedHash(name, value string) []byte { return []byte(name + "\x00" + value) }

func (emptyLog) Search(context.Context, audit.Query) ([]audit.Event, error) { return nil, nil }
func (emptyLog) Latest(context.Context) (*audit.Checkpoint, error) {
	return nil, fault.NotFoundf("audit_no_checkpoint", "no checkpoint")
}
func (emptyLog) VerifierKey() string { return "" }
func (emptyLog) InclusionProof(context.Context, int64, int64) (tlog.Hash, tlog.RecordProof, error) {
	return tlog.Hash{}, nil, errors.New("unreachable")
}
func (emptyLog) ConsistencyProof(context.Context, int64, int64) (tlog.TreeProof, error) {
	return nil, errors.New("unreachable")
}

// TestAuditCheckpointBeforeAny: before the first checkpoint there is none
// to publish and no size to prove against.
func TestAuditCheckpointBeforeAny(t *testing.T) {
	h := web.NewHandler(web.Deps{AuditLog: emptyLog{}})
	res := serve(h, newRequest(t, "GET", "/v1/audit/checkpoint", nil))
	if res.StatusCode != http.StatusNotFound || decodeError(t, res).Error.Code != "checkpoint_not_found" {
		t.Fatalf("checkpoint before any: %d %s", res.StatusCode, res.body)
	}
	res = serve(h, newRequest(t, "GET", "/v1/audit/proof/consistency?from=1&to=1", nil))
	if res.StatusCode != http.StatusBadRequest || decodeError(t, res).Error.Code != "proof_range_invalid" {
		t.Fatalf("consistency before any checkpoint: %d %s", res.StatusCode, res.body)
	}
	// Without a log there is no audit API at all.
	res = serve(web.NewHandler(web.Deps{}), newRequest(t, "GET", "/v1/audit/checkpoint", nil))
	if res.StatusCode != http.StatusNotFound || decodeError(t, res).Error.Code == "checkpoint_not_found" {
		t.Fatalf("audit API without a log: %d %s", res.StatusCode, res.body)
	}
}

// TestAuditHostileQueries: malformed, oversized, repeated, unknown and
// non-text parameters are 400s on every audit endpoint, on both engines
// (PostgreSQL refuses invalid UTF-8 and NUL: that must not surface as 500).
func TestAuditHostileQueries(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *tenv) {
		alice := newPerson(t, e, "alice@example.com")
		wa := alice.createWorkspace(t, "Alpha").ID
		op := newPerson(t, e, "staff@example.com")
		if _, err := e.a.Tenancy.AddOperator(context.Background(), op.email, nil); err != nil {
			t.Fatal(err)
		}
		op.enrolMFA(t)
		if _, err := e.a.AuditLog.CheckpointNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		own, err := e.a.AuditLog.Search(context.Background(), audit.Query{ActorID: alice.id, AfterIndex: -1, Limit: 1})
		if err != nil || len(own) != 1 {
			t.Fatal(own, err)
		}
		ownID := strconv.FormatInt(own[0].ID, 10)

		filters := []string{
			"limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=1e3", "limit=%2B5", "limit=05", "limit=99999999999999999999",
			"cursor=-1", "cursor=99999999999999999999", "cursor=1.5", "cursor=0x10",
			"since=yesterday", "until=2026-13-01T00:00:00Z", "since=2026-01-01", "since=%00",
			"outcome=maybe", "outcome=SUCCESS", "outcome=%00",
			"actor=" + strings.Repeat("x", 129), "action=" + strings.Repeat("a.", 65),
			"action=%ff%fe", "actor=a%00b", "action=%C0%AF",
			"bogus=1", "limit=1&limit=2", "action=a.&action=b.", "%zz", "a;b", "limit=%", "x=" + strings.Repeat("y", 3000),
		}
		fine := []string{
			"", "action=auth.", "actor=%E2%9C%93", "since=2030-01-01T00:00:00Z&until=2000-01-01T00:00:00Z",
			"cursor=4611686018427387904", "since=0001-01-01T00:00:00Z", "until=9999-12-31T23:59:59.999999999Z", "limit=",
		}
		type tc struct {
			who    *actor
			path   string
			query  string
			status int
			code   string
		}
		var cases []tc
		for _, q := range filters {
			cases = append(cases, tc{alice, "/v1/workspaces/" + wa + "/audit", q, 400, "query_invalid"},
				tc{op, "/v1/operator/audit", q, 400, "query_invalid"})
			if !strings.HasPrefix(q, "limit=") || q == "limit=1&limit=2" {
				cases = append(cases, tc{alice, "/v1/workspaces/" + wa + "/audit/export", q, 400, "query_invalid"})
			}
		}
		for _, q := range fine {
			cases = append(cases, tc{alice, "/v1/workspaces/" + wa + "/audit", q, 200, ""}, tc{op, "/v1/operator/audit", q, 200, ""},
				tc{alice, "/v1/workspaces/" + wa + "/audit/export", strings.TrimSuffix(q, "limit="), 200, ""})
		}
		cases = append(cases,
			tc{alice, "/v1/workspaces/" + wa + "/audit/export", "limit=5", 400, "query_invalid"},
			tc{op, "/v1/operator/audit", "workspace=" + strings.Repeat("w", 65), 400, "query_invalid"},
			tc{op, "/v1/operator/audit", "workspace=%ff", 400, "query_invalid"},
			tc{op, "/v1/operator/audit", "workspace=nope", 200, ""},
		)
		for _, q := range []string{"", "from=1", "to=1", "from=0&to=1", "from=2&to=1", "from=1&to=99999999999", "from=abc&to=1",
			"from=1&to=1&x=1", "from=1&from=1&to=1", "from=-1&to=1", "from=1&to=99999999999999999999"} {
			cases = append(cases, tc{alice, "/v1/audit/proof/consistency", q, 400, ""})
		}
		for _, q := range []string{"", "id=0", "size=1", "id=-1&size=1", "id=5&size=5", "id=0&size=0", "id=a&size=1",
			"id=0&size=1&id=0", "id=0&size=1&x=1", "id=" + ownID + "&size=4611686018427387000"} {
			cases = append(cases, tc{alice, "/v1/audit/proof/inclusion", q, 400, ""})
		}
		for _, c := range cases {
			r := newRequest(t, "GET", c.path, nil, "Cookie", web.SessionCookie+"="+c.who.cookie)
			r.URL.RawQuery = c.query
			res := serve(e.h, r)
			if res.StatusCode != c.status {
				t.Errorf("%s?%.80s as %s: status %d, want %d; body %.200s", c.path, c.query, c.who.email, res.StatusCode, c.status, res.body)
				continue
			}
			if c.status >= 400 {
				if got := decodeError(t, res).Error.Code; c.code != "" && got != c.code {
					t.Errorf("%s?%.80s: code %q, want %q", c.path, c.query, got, c.code)
				}
			}
		}
	})
}

// FuzzAuditQuery sends arbitrary query strings to every audit endpoint:
// the answer is never a 5xx, and every error is the JSON error shape.
func FuzzAuditQuery(f *testing.F) {
	e := newTenv(f, store.EngineSQLite)
	alice := newPerson(f, e, "alice@example.com")
	ws := alice.createWorkspace(f, "Alpha").ID
	if _, err := e.a.AuditLog.CheckpointNow(context.Background()); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "limit=5&cursor=3", "action=auth.&outcome=denied", "since=2026-01-01T00:00:00Z", "id=1&size=2",
		"from=1&to=2", "%zz", "a;b", "limit=%00", "actor=%ff", "workspace=" + ws} {
		f.Add(s)
	}
	paths := []string{"/v1/workspaces/" + ws + "/audit", "/v1/workspaces/" + ws + "/audit/export", "/v1/operator/audit",
		"/v1/audit/proof/consistency", "/v1/audit/proof/inclusion", "/v1/audit/checkpoint"}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range paths {
			r := newRequest(t, "GET", p, nil, "Cookie", web.SessionCookie+"="+alice.cookie)
			r.URL.RawQuery = raw
			res := serve(e.h, r)
			switch {
			case res.StatusCode >= 500:
				t.Fatalf("%s?%q: status %d: %s", p, raw, res.StatusCode, res.body)
			case res.StatusCode >= 400:
				decodeError(t, res)
			}
		}
	})
}

// BenchmarkWorkspaceAuditPage reads a 100-event page of a workspace's
// trail through the whole handler (session, audit.read check, query,
// decryption of each event's details) from a log of 5,000 events.
func BenchmarkWorkspaceAuditPage(b *testing.B) {
	e := newTenv(b, store.EngineSQLite)
	alice := newPerson(b, e, "alice@example.com")
	ws := alice.createWorkspace(b, "Alpha").ID
	ctx := context.Background()
	for i := range 5000 {
		if err := e.a.Audit.Record(ctx, audit.Event{ActorType: audit.ActorUser, ActorID: alice.id, Workspace: ws, Action: "bench.event",
			Outcome: audit.Success, Details: map[string]string{"n": strconv.Itoa(i)}}); err != nil {
			b.Fatal(err)
		}
	}
	path := "/v1/workspaces/" + ws + "/audit?action=bench.event&limit=100&cursor="
	for i := 0; b.Loop(); i++ {
		r := newRequest(b, "GET", path+strconv.Itoa(i%40*100), nil, "Cookie", web.SessionCookie+"="+alice.cookie)
		if res := serve(e.h, r); res.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %s", res.StatusCode, res.body)
		}
	}
}
