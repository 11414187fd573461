package vault

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// memKeyStore is an in-memory KeyStore for the package's unit tests,
// fuzzing and benchmarks; the real store's conformance (SQLite and
// PostgreSQL) is tested in internal/store/vault_test.go.
type memKeyStore struct {
	mu     sync.Mutex
	scopes map[string]*Scope
	keks   map[string][]KEK
}

func newMemKeyStore() *memKeyStore {
	return &memKeyStore{scopes: map[string]*Scope{}, keks: map[string][]KEK{}}
}

func (m *memKeyStore) VaultScope(_ context.Context, scope string) (*Scope, []KEK, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc, ok := m.scopes[scope]
	if !ok {
		return nil, nil, fault.ErrNotFound
	}
	c := *sc
	return &c, slices.Clone(m.keks[scope]), nil
}

func (m *memKeyStore) VaultCreateScope(_ context.Context, s Scope, first KEK) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.scopes[s.Scope]; ok {
		return fault.Conflictf("conflict", "exists")
	}
	m.scopes[s.Scope] = &s
	m.keks[s.Scope] = []KEK{first}
	return nil
}

func (m *memKeyStore) VaultAddKEK(_ context.Context, k KEK) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc, ok := m.scopes[k.Scope]
	if !ok || !sc.ShreddedAt.IsZero() {
		return fault.ErrNotFound
	}
	for _, e := range m.keks[k.Scope] {
		if e.Version == k.Version {
			return fault.Conflictf("conflict", "exists")
		}
	}
	m.keks[k.Scope] = append(m.keks[k.Scope], k)
	return nil
}

func (m *memKeyStore) VaultSetMinVersion(_ context.Context, scope string, min uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sc, ok := m.scopes[scope]; ok && min > sc.MinVersion {
		sc.MinVersion = min
	}
	return nil
}

func (m *memKeyStore) VaultAll(context.Context) ([]Scope, []KEK, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ss []Scope
	var ks []KEK
	for name, sc := range m.scopes {
		if sc.ShreddedAt.IsZero() {
			ss = append(ss, *sc)
			ks = append(ks, m.keks[name]...)
		}
	}
	return ss, ks, nil
}

func (m *memKeyStore) VaultRewrapRoot(_ context.Context, scopes []Scope, keks []KEK, _ string, _ []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range scopes {
		c := s
		m.scopes[s.Scope] = &c
	}
	m.keks = map[string][]KEK{}
	for _, k := range keks {
		m.keks[k.Scope] = append(m.keks[k.Scope], k)
	}
	return nil
}

func (m *memKeyStore) VaultDestroyScope(_ context.Context, scope string, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.keks[scope])
	delete(m.keks, scope)
	m.scopes[scope] = &Scope{Scope: scope, ShreddedAt: at}
	return n, nil
}

func newTestVault(tb testing.TB, policy Policy) *Vault {
	tb.Helper()
	k, err := GenerateRootKey(bytes.NewReader(testKey(0x5a)))
	if err != nil {
		tb.Fatal(err)
	}
	root, err := NewLocalRoot(k, "file", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return NewVault(newMemKeyStore(), root, policy, nil, nil)
}

func TestVaultFormatAndLimits(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t, Policy{DataKeyMaxUses: 3})
	ad := AD{Workspace: "ws", Table: "t", Column: "c", Row: "r"}
	ids := map[[dekIDSize]byte]bool{}
	var cts [][]byte
	for i := range 10 {
		ct, err := v.Seal(ctx, []byte{byte(i)}, ad)
		if err != nil {
			t.Fatal(err)
		}
		if ct[0] != formatV2 {
			t.Fatalf("format byte %d", ct[0])
		}
		_, id, ok := parseV2(ct)
		if !ok {
			t.Fatal("parseV2 refused a fresh ciphertext")
		}
		ids[id] = true
		cts = append(cts, ct)
	}
	// Three uses per data key: 10 seals need at least 4 data keys.
	if len(ids) < 4 {
		t.Fatalf("%d data keys for 10 seals with max uses 3", len(ids))
	}
	for i, ct := range cts {
		pt, err := v.Open(ctx, ct, ad)
		if err != nil || !bytes.Equal(pt, []byte{byte(i)}) {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	// A v1 ciphertext is not a v2 one, and MigratingSealer routes both.
	kr := newTestKeyring(t)
	v1, _ := kr.Seal([]byte("old"), ad)
	if _, err := v.Open(ctx, v1, ad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("v1 through Vault.Open: %v", err)
	}
	ms := MigratingSealer{Next: v, Legacy: kr}
	if pt, err := ms.Open(ctx, v1, ad); err != nil || string(pt) != "old" {
		t.Fatalf("migrating open v1: %v", err)
	}
	if pt, err := ms.Open(ctx, cts[0], ad); err != nil || pt[0] != 0 {
		t.Fatalf("migrating open v2: %v", err)
	}
	if f, ver, err := CiphertextVersion(v1); f != 1 || ver != 1 || err != nil {
		t.Fatalf("CiphertextVersion v1 = %d %d %v", f, ver, err)
	}
}

func TestVaultDataKeyAge(t *testing.T) {
	now := time.Unix(1e9, 0)
	k, _ := GenerateRootKey(bytes.NewReader(testKey(0x5a)))
	root, _ := NewLocalRoot(k, "file", nil)
	v := NewVault(newMemKeyStore(), root, Policy{DataKeyMaxAge: time.Minute}, func() time.Time { return now }, nil)
	ctx := context.Background()
	ad := AD{Workspace: "ws"}
	a, _ := v.Seal(ctx, nil, ad)
	b, _ := v.Seal(ctx, nil, ad)
	now = now.Add(2 * time.Minute)
	// The age is read every 64th use, so within 64 seals a new key comes.
	var c []byte
	for range 64 {
		c, _ = v.Seal(ctx, nil, ad)
	}
	_, ida, _ := parseV2(a)
	_, idb, _ := parseV2(b)
	_, idc, _ := parseV2(c)
	if ida != idb || ida == idc {
		t.Fatal("data key not reused within its age or reused past it")
	}
	if _, err := v.Open(ctx, a, ad); err != nil {
		t.Fatalf("old data key no longer derives: %v", err)
	}
}

// FuzzVaultOpen: arbitrary bytes never panic and never open, and a real
// ciphertext opens only unchanged.
func FuzzVaultOpen(f *testing.F) {
	v := newTestVault(f, Policy{})
	ctx := context.Background()
	ad := AD{Workspace: "ws", Table: "t", Column: "c", Row: "r"}
	good, err := v.Seal(ctx, []byte("fuzz"), ad)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:OverheadV2])
	f.Add([]byte{2, 0, 0, 0, 1})
	f.Add([]byte{1, 0, 0, 0, 1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := v.Open(ctx, ct, ad)
		if err == nil && (!bytes.Equal(ct, good) || string(pt) != "fuzz") {
			t.Fatalf("opened forged ciphertext %x", ct)
		}
		if err != nil && fault.As(err).Message != "decryption failed" {
			t.Fatalf("error message %q", fault.As(err).Message)
		}
		_, _, _ = CiphertextVersion(ct)
	})
}
