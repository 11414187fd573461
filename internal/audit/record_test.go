package audit

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is an in-memory tlog.HashReader over stored hashes by index.
type memHashes map[int64]tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := m[x]
		if !ok {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = h
	}
	return out, nil
}

// appendBatch appends leaf hashes the way commit does: one overlay over the
// committed hashes per batch.
func appendBatch(t *testing.T, store memHashes, size int64, leaves []tlog.Hash) {
	t.Helper()
	ov, err := newOverlay(store, size)
	if err != nil {
		t.Fatal(err)
	}
	for i, lh := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(size+int64(i), lh, ov)
		if err != nil {
			t.Fatal(err)
		}
		ov.local = append(ov.local, hs...)
	}
	for i, h := range ov.local {
		store[ov.start+int64(i)] = h
	}
}

// TestRFC6962Vectors proves the tree is RFC 6962: the reference roots of
// transparency-dev/merkle come out of tlog's hashing of the same leaves,
// whatever way the leaves are grouped into batches.
func TestRFC6962Vectors(t *testing.T) {
	leaves := testonly.LeafInputs()
	roots := testonly.RootHashes()
	if got := sha256.Sum256(nil); !bytes.Equal(got[:], testonly.EmptyRootHash()) {
		t.Fatalf("empty root mismatch")
	}
	for _, batch := range []int{1, 2, 3, 5, 8} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			store := memHashes{}
			for from := 0; from < len(leaves); from += batch {
				to := min(from+batch, len(leaves))
				var lhs []tlog.Hash
				for _, l := range leaves[from:to] {
					lhs = append(lhs, tlog.RecordHash(l))
				}
				appendBatch(t, store, int64(from), lhs)
			}
			if int64(len(store)) != tlog.StoredHashCount(int64(len(leaves))) {
				t.Fatalf("stored %d hashes, want %d", len(store), tlog.StoredHashCount(int64(len(leaves))))
			}
			for n := 1; n <= len(leaves); n++ {
				root, err := tlog.TreeHash(int64(n), store)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(root[:], roots[n]) {
					t.Errorf("root(%d) = %x, want %x", n, root, roots[n])
				}
			}
			// Every complete subtree hash is a reference node hash.
			for level, row := range testonly.NodeHashes() {
				for n, want := range row {
					if got := store[tlog.StoredHashIndex(level, int64(n))]; !bytes.Equal(got[:], want) {
						t.Errorf("node(%d,%d) = %x, want %x", level, n, got, want)
					}
				}
			}
		})
	}
}

// TestProofsMatchReference compares tlog's proofs over stored hashes with
// the reference tree's RFC 6962 proofs for every index and size up to 70.
func TestProofsMatchReference(t *testing.T) {
	const n = 70
	ref := testonly.New(rfc6962.DefaultHasher)
	store := memHashes{}
	for i := range n {
		data := []byte(fmt.Sprintf("leaf %d", i))
		ref.AppendData(data)
		appendBatch(t, store, int64(i), []tlog.Hash{tlog.RecordHash(data)})
	}
	for size := int64(1); size <= n; size++ {
		root, err := tlog.TreeHash(size, store)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(root[:], ref.HashAt(uint64(size))) {
			t.Fatalf("root(%d) differs from the reference", size)
		}
		for i := int64(0); i < size; i++ {
			p, err := tlog.ProveRecord(size, i, store)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.InclusionProof(uint64(i), uint64(size))
			if !sameProof(p, want) {
				t.Fatalf("inclusion(%d, %d) differs from the reference", i, size)
			}
			if err := tlog.CheckRecord(p, size, root, i, store[tlog.StoredHashIndex(0, i)]); err != nil {
				t.Fatalf("CheckRecord(%d, %d): %v", i, size, err)
			}
		}
		for old := int64(1); old < size; old++ {
			p, err := tlog.ProveTree(size, old, store)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.ConsistencyProof(uint64(old), uint64(size))
			if !sameProof(p, want) {
				t.Fatalf("consistency(%d, %d) differs from the reference", old, size)
			}
		}
	}
}

func sameProof(p []tlog.Hash, want [][]byte) bool {
	if len(p) != len(want) {
		return false
	}
	for i := range p {
		if !bytes.Equal(p[i][:], want[i]) {
			return false
		}
	}
	return true
}

func sampleRecord() Record {
	return Record{
		Index: 42, Time: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC),
		ActorType: ActorUser, ActorID: "usr_1", Workspace: "ws_1", Action: "auth.signin", Target: "usr_1",
		Outcome: Success, IP: "192.0.2.1", UserAgent: "curl/8", RequestID: "req_1", TraceID: "trace_1",
		Sealed: []byte{1, 2, 3},
		Keyed:  map[string][]byte{"email": {9, 9}, "token": {8}},
	}
}

// TestLeafInjective: records that naive concatenation would confuse (a
// value's bytes moved across a field boundary, separator characters inside
// values, keyed names and values swapped) encode to different leaves, and
// every field changes the leaf.
func TestLeafInjective(t *testing.T) {
	base := sampleRecord()
	tests := []struct {
		name   string
		mutate func(r *Record)
	}{
		{"index", func(r *Record) { r.Index++ }},
		{"time by one microsecond", func(r *Record) { r.Time = r.Time.Add(time.Microsecond) }},
		{"actor type", func(r *Record) { r.ActorType = ActorSystem }},
		{"boundary shift actor", func(r *Record) { r.ActorType, r.ActorID = "useru", "sr_1" }},
		{"boundary shift action/target", func(r *Record) { r.Action, r.Target = "auth.signinusr_1", "" }},
		{"separator in value", func(r *Record) { r.Workspace, r.Action = "ws_1\x00\x00\x00\x0bauth", ".signin" }},
		{"outcome", func(r *Record) { r.Outcome = Failure }},
		{"ip", func(r *Record) { r.IP = "" }},
		{"user agent", func(r *Record) { r.UserAgent = "curl/9" }},
		{"request id", func(r *Record) { r.RequestID = "req_2" }},
		{"trace id", func(r *Record) { r.TraceID = "" }},
		{"sealed", func(r *Record) { r.Sealed = []byte{1, 2, 4} }},
		{"sealed moved into trace", func(r *Record) { r.TraceID, r.Sealed = "trace_1\x00\x00\x00\x03\x01\x02\x03", nil }},
		{"keyed value", func(r *Record) { r.Keyed = map[string][]byte{"email": {9, 8}, "token": {8}} }},
		{"keyed renamed", func(r *Record) { r.Keyed = map[string][]byte{"emai": {9, 9}, "token": {8}} }},
		{"keyed dropped", func(r *Record) { r.Keyed = map[string][]byte{"email": {9, 9}} }},
		{"keyed name/value split", func(r *Record) { r.Keyed = map[string][]byte{"email\x00\x00\x00\x02\x09\x09": {}, "token": {8}} }},
	}
	baseLeaf := base.Leaf()
	seen := map[string]string{string(baseLeaf): "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleRecord()
			tt.mutate(&r)
			leaf := r.Leaf()
			if prev, ok := seen[string(leaf)]; ok {
				t.Fatalf("leaf collides with %q", prev)
			}
			seen[string(leaf)] = tt.name
			back, err := ParseLeaf(leaf)
			if err != nil {
				t.Fatalf("ParseLeaf: %v", err)
			}
			if !bytes.Equal(back.Leaf(), leaf) {
				t.Fatal("ParseLeaf(Leaf(r)).Leaf() != Leaf(r)")
			}
		})
	}
}

// TestLeafCanonical: the encoding does not depend on map order, on the
// time's location or on sub-microsecond digits (which are not stored), and
// starts with the version tag.
func TestLeafCanonical(t *testing.T) {
	a := sampleRecord()
	want := a.Leaf()
	if !bytes.HasPrefix(want, []byte(leafMagic)) {
		t.Fatal("leaf does not start with its version tag")
	}
	for i := range 50 {
		b := sampleRecord()
		b.Keyed = map[string][]byte{}
		// Insert in varying order; Go also randomizes iteration.
		if i%2 == 0 {
			b.Keyed["token"], b.Keyed["email"] = []byte{8}, []byte{9, 9}
		} else {
			b.Keyed["email"], b.Keyed["token"] = []byte{9, 9}, []byte{8}
		}
		b.Time = a.Time.In(time.FixedZone("x", 3600)).Add(999 * time.Nanosecond)
		if !bytes.Equal(b.Leaf(), want) {
			t.Fatal("leaf depends on map order, location or nanoseconds")
		}
	}
	got, err := ParseLeaf(want)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != a.Index || !got.Time.Equal(a.Time) || got.Action != a.Action || !bytes.Equal(got.Keyed["email"], a.Keyed["email"]) {
		t.Fatalf("ParseLeaf = %+v", got)
	}
}

func TestParseLeafRejects(t *testing.T) {
	good := sampleRecord().Leaf()
	unsorted := sampleRecord()
	unsorted.Keyed = nil
	base := unsorted.Leaf()
	// Hand-build a keyed section with names out of order.
	bad := append(bytes.Clone(base[:len(base)-4]), 0, 0, 0, 2)
	bad = appendField(appendField(bad, "token"), []byte{8})
	bad = appendField(appendField(bad, "email"), []byte{9})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"wrong tag", append([]byte("rampart/audit/leaf/v2\x00"), good[len(leafMagic):]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"keyed out of order", bad},
		{"huge length", append(bytes.Clone(good[:len(leafMagic)+16]), 0xff, 0xff, 0xff, 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseLeaf(tt.b); err == nil {
				t.Fatal("ParseLeaf accepted a malformed leaf")
			}
		})
	}
}

// FuzzParseLeaf: any bytes ParseLeaf accepts re-encode to exactly the same
// bytes, so the encoding has one form per record (canonical) and decoding
// is its inverse (injective).
func FuzzParseLeaf(f *testing.F) {
	f.Add(sampleRecord().Leaf())
	f.Add((&Record{}).Leaf())
	f.Add([]byte(leafMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLeaf(b)
		if err != nil {
			return
		}
		if got := r.Leaf(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, got)
		}
	})
}
