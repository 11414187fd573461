package audit_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestGroupCommit: 200 concurrent Record calls build one contiguous tree in
// fewer transactions than events, every acknowledged event is in it exactly
// once, OnCommit sees them in index order, and the stored hashes are the
// ones recomputed from the records.
func TestGroupCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var mu sync.Mutex
		var committed []audit.Event
		m := startLog(t, s, newKeys(t), audit.LogConfig{BatchMax: 64, BatchWait: 5 * time.Millisecond},
			audit.LogDeps{OnCommit: func(es []audit.Event) {
				mu.Lock()
				committed = append(committed, es...)
				mu.Unlock()
			}})
		const n = 200
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = m.Record(ctx, event(i)) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Record %d: %v", i, err)
			}
		}
		st := m.Stats()
		if st.Committed != n || st.Batches >= n || st.Batches < (n+63)/64 {
			t.Fatalf("stats = %+v: want %d events in fewer than %d batches of at most 64", st, n, n)
		}

		size, err := s.AuditSize(ctx)
		if err != nil || size != n+1 { // + the genesis record
			t.Fatalf("AuditSize = %d, %v; want %d", size, err, n+1)
		}
		recs, err := s.AuditRecords(ctx, 0, size)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Action != audit.GenesisAction {
			t.Fatalf("record 0 = %q, want the genesis record", recs[0].Action)
		}
		seen := map[string]int{}
		for i, r := range recs {
			if r.Index != int64(i) {
				t.Fatalf("record %d has index %d", i, r.Index)
			}
			if i > 0 {
				seen[r.Target]++
			}
		}
		for i := range n {
			if seen["t"+strconv.Itoa(i)] != 1 {
				t.Fatalf("event %d stored %d times", i, seen["t"+strconv.Itoa(i)])
			}
		}
		mu.Lock()
		if len(committed) != n {
			t.Fatalf("OnCommit saw %d events", len(committed))
		}
		for i, e := range committed {
			if e.ID != int64(i+1) || recs[e.ID].Target != e.Target {
				t.Fatalf("OnCommit event %d: ID %d target %q", i, e.ID, e.Target)
			}
		}
		mu.Unlock()

		want := storedHashes(t, recs)
		idx := make([]int64, len(want))
		for i := range idx {
			idx[i] = int64(i)
		}
		got, err := s.AuditHashes(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("stored hash %d differs from the recomputed one", i)
			}
		}
		if _, err := s.AuditHashes(ctx, []int64{int64(len(want))}); !fault.Is(err, fault.NotFound) {
			t.Fatalf("a hash beyond the tree exists: %v", err)
		}
	})
}

// TestRecordFailsClosed: when the store cannot write, Record reports
// audit_unavailable, except for fail-open actions, which are counted.
func TestRecordFailsClosed(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.EngineSQLite)
	m := startLog(t, s, newKeys(t), audit.LogConfig{FailOpen: []string{"api."}}, audit.LogDeps{})
	if err := m.Record(ctx, event(1)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	tests := []struct {
		name    string
		action  string
		wantErr bool
	}{
		{"security action fails closed", "auth.signin", true},
		{"fail-open prefix", "api.read", false},
		{"prefix must match from the start", "x.api.read", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := event(2)
			e.Action = tt.action
			err := m.Record(ctx, e)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Record = %v, want nil", err)
				}
				return
			}
			fe := fault.As(err)
			if fe.Kind != fault.Unavailable || fe.Code != "audit_unavailable" {
				t.Fatalf("Record = %v, want unavailable/audit_unavailable", err)
			}
		})
	}
	if st := m.Stats(); st.FailOpenDropped != 1 || st.Failed != 3 || st.Committed != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRecordLifecycle(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.EngineSQLite)
	k := newKeys(t)
	m, err := audit.NewMerkleLog(audit.LogConfig{Origin: testOrigin},
		audit.LogDeps{Store: s, Sealer: k.sealer, IndexKey: k.index, SignerKey: k.signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Record(ctx, event(1)); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("Record before Start = %v, want unavailable", err)
	}
	m.Start(ctx)
	bad := event(1)
	bad.Outcome = ""
	if err := m.Record(ctx, bad); !fault.Is(err, fault.Invalid) {
		t.Fatalf("Record without outcome = %v, want invalid", err)
	}
	if err := m.Record(ctx, event(1)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Record(ctx, event(2)); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("Record after Close = %v, want unavailable", err)
	}
	// Close signed the final tree.
	cp, err := s.LatestCheckpoint(ctx)
	if err != nil || cp.Size != 2 {
		t.Fatalf("final checkpoint = %+v, %v; want size 2", cp, err)
	}
}

func TestNewMerkleLogValidates(t *testing.T) {
	s := storetest.Open(t, store.EngineSQLite)
	k := newKeys(t)
	good := audit.LogDeps{Store: s, Sealer: k.sealer, IndexKey: k.index, SignerKey: k.signer}
	tests := []struct {
		name   string
		origin string
		mod    func(d *audit.LogDeps)
	}{
		{"no store", testOrigin, func(d *audit.LogDeps) { d.Store = nil }},
		{"no sealer", testOrigin, func(d *audit.LogDeps) { d.Sealer = nil }},
		{"short index key", testOrigin, func(d *audit.LogDeps) { d.IndexKey = d.IndexKey[:16] }},
		{"signer key not a seed", testOrigin, func(d *audit.LogDeps) { d.SignerKey = d.SignerKey[:31] }},
		{"empty origin", "", func(*audit.LogDeps) {}},
		{"origin with space", "a b", func(*audit.LogDeps) {}},
		{"origin with plus", "a+b", func(*audit.LogDeps) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := good
			tt.mod(&d)
			if _, err := audit.NewMerkleLog(audit.LogConfig{Origin: tt.origin}, d); !fault.Is(err, fault.Invalid) {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
}

// TestDetailsEncrypted: no detail value reaches the database in clear,
// sensitive values are only keyed hashes, and Query gives the details back.
func TestDetailsEncrypted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := startLog(t, s, newKeys(t), audit.LogConfig{HashIPs: true}, audit.LogDeps{})
		e := audit.Event{
			ActorType: audit.ActorUser, ActorID: "usr_1", Action: "auth.signin", Outcome: audit.Failure,
			IP: "198.51.100.77",
			Details: map[string]string{
				"reason": "Zebra-Quartz-Reason", "email": "alice@example.com",
				"token": "tok_Sup3rSecret", "ip": "203.0.113.9",
			},
		}
		if err := m.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		recs, err := s.AuditRecords(ctx, 1, 2)
		if err != nil || len(recs) != 1 {
			t.Fatalf("AuditRecords = %v, %v", recs, err)
		}
		r := recs[0]
		raw := string(r.Leaf())
		for _, secret := range []string{"Zebra-Quartz-Reason", "alice@example.com", "tok_Sup3rSecret", "203.0.113.9", "198.51.100.77"} {
			if strings.Contains(raw, secret) {
				t.Errorf("stored record contains %q in clear", secret)
			}
		}
		if r.IP != "" {
			t.Errorf("IP stored in clear with HashIPs: %q", r.IP)
		}
		wantKeyed := map[string][]byte{
			"email":     m.KeyedHash("email", "alice@example.com"),
			"token":     m.KeyedHash("token", "tok_Sup3rSecret"),
			"ip":        m.KeyedHash("ip", "198.51.100.77"),
			"detail:ip": m.KeyedHash("ip", "203.0.113.9"),
		}
		if len(r.Keyed) != len(wantKeyed) {
			t.Fatalf("keyed = %v", r.Keyed)
		}
		for k, v := range wantKeyed {
			if !bytes.Equal(r.Keyed[k], v) {
				t.Errorf("keyed[%s] wrong", k)
			}
		}

		got, err := m.Query(ctx, audit.Filter{})
		if err != nil || len(got) != 1 {
			t.Fatalf("Query = %v, %v", got, err)
		}
		ev := got[0]
		if ev.ID != 1 || ev.Details["reason"] != "Zebra-Quartz-Reason" {
			t.Fatalf("event = %+v", ev)
		}
		for _, k := range []string{"email", "token", "ip"} {
			if !strings.HasPrefix(ev.Details[k], "hmac:") || len(ev.Details[k]) != len("hmac:")+16 {
				t.Errorf("details[%s] = %q, want hmac:<16 hex>", k, ev.Details[k])
			}
		}
		if !strings.HasPrefix(ev.IP, "hmac:") {
			t.Errorf("IP = %q, want hmac:…", ev.IP)
		}
	})
}

// TestKeyedSearch: an exact search by keyed hash finds the events with that
// value and only those.
func TestKeyedSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := startLog(t, s, newKeys(t), audit.LogConfig{}, audit.LogDeps{})
		emails := []string{"alice@example.com", "bob@example.com", "alice@example.com", "ALICE@example.com"}
		for i, em := range emails {
			e := event(i)
			e.Details["email"] = em
			if err := m.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			value string
			want  []int64
		}{
			{"alice@example.com", []int64{1, 3}},
			{"bob@example.com", []int64{2}},
			{"ALICE@example.com", []int64{4}},
			{"carol@example.com", nil},
		}
		for _, tt := range tests {
			got, err := m.Search(ctx, audit.Query{AfterIndex: -1, KeyedName: "email", KeyedValue: m.KeyedHash("email", tt.value)})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if !slicesEqual(ids, tt.want) {
				t.Errorf("search %s = %v, want %v", tt.value, ids, tt.want)
			}
		}
		// The keyed hash depends on the name too.
		if bytes.Equal(m.KeyedHash("email", "x"), m.KeyedHash("token", "x")) {
			t.Fatal("keyed hash ignores the name")
		}
	})
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestQuery covers defaults from the request context, filters and paging.
func TestQuery(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.EngineSQLite)
	now := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	m := startLog(t, s, newKeys(t), audit.LogConfig{}, audit.LogDeps{Now: func() time.Time { return now }})
	mctx := audit.WithMeta(ctx, audit.Meta{IP: "192.0.2.7", UserAgent: "ua/1", RequestID: "req_9"})
	actions := []string{"auth.signin", "auth.signout", "vault.decrypt", "auth.signin", "authx.other"}
	for i, a := range actions {
		e := event(i)
		e.Action = a
		if err := m.Record(mctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := m.Query(ctx, audit.Filter{})
	if err != nil || len(all) != len(actions) {
		t.Fatalf("Query = %d events, %v", len(all), err)
	}
	e := all[0]
	if e.IP != "192.0.2.7" || e.UserAgent != "ua/1" || e.RequestID != "req_9" ||
		!e.Time.Equal(now.Truncate(time.Microsecond)) || e.Details["n"] != "0" {
		t.Fatalf("event = %+v", e)
	}
	tests := []struct {
		name string
		f    audit.Filter
		want []int64
	}{
		{"exact action", audit.Filter{Action: "auth.signin"}, []int64{1, 4}},
		{"action prefix", audit.Filter{Action: "auth."}, []int64{1, 2, 4}},
		{"actor", audit.Filter{ActorID: "usr_2"}, []int64{3}},
		{"page 1", audit.Filter{Limit: 2}, []int64{1, 2}},
		{"page 2", audit.Filter{Limit: 2, AfterID: 2}, []int64{3, 4}},
		{"page 3", audit.Filter{Limit: 2, AfterID: 4}, []int64{5}},
		{"until excludes", audit.Filter{Until: now.Truncate(time.Microsecond)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Query(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if !slicesEqual(ids, tt.want) {
				t.Fatalf("ids = %v, want %v", ids, tt.want)
			}
		})
	}
}

// TestSealedDetailsBoundToIndex: details moved to another record do not
// open; that record is listed as undecryptable and the others still read.
func TestSealedDetailsBoundToIndex(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := startLog(t, s, newKeys(t), audit.LogConfig{}, audit.LogDeps{})
		for i := range 3 {
			if err := m.Record(ctx, event(i)); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := s.AuditRecords(ctx, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		tamper(t, s, sq("UPDATE audit_log SET sealed = ? WHERE idx = 2", recs[0].Sealed))
		got, err := m.Query(ctx, audit.Filter{})
		if err != nil || len(got) != 3 {
			t.Fatalf("Query = %v, %v", got, err)
		}
		if got[0].Details["n"] != "0" || got[2].Details["n"] != "2" {
			t.Fatalf("untouched events wrong: %+v", got)
		}
		if len(got[1].Details) != 1 || got[1].Details["error"] != "undecryptable" {
			t.Fatalf("moved details = %v, want undecryptable", got[1].Details)
		}
	})
}

// TestCommittedTreeIsConsistentAcrossRestarts: a second log instance over
// the same store continues the same tree (the store reports size and
// hashes; nothing lives only in memory).
func TestCommittedTreeIsConsistentAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.EngineSQLite)
	k := newKeys(t)
	m1 := startLog(t, s, k, audit.LogConfig{}, audit.LogDeps{})
	for i := range 5 {
		if err := m1.Record(ctx, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	cp1, err := m1.CheckpointNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m1.Close()
	m2 := startLog(t, s, k, audit.LogConfig{}, audit.LogDeps{})
	for i := range 9 {
		if err := m2.Record(ctx, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	cp2, err := m2.CheckpointNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m2.ConsistencyProof(ctx, cp1.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p, cp2.Size, cp2.Root, cp1.Size, cp1.Root); err != nil {
		t.Fatalf("second instance forked the tree: %v", err)
	}
	rep, err := audit.Verify(ctx, s, m2.VerifierKey(), nil)
	if err != nil || !rep.OK() || rep.Size != 15 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
