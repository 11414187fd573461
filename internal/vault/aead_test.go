package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/fault"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// newTestKeyring returns a keyring holding version 1 (primary) with a fixed
// key and crypto/rand nonces.
func newTestKeyring(t testing.TB) *Keyring {
	t.Helper()
	r := NewKeyring(nil)
	if err := r.Add(1, testKey(0x11)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	return r
}

var testAD = AD{Workspace: "ws_1", Table: "mfa_factors", Column: "secret", Row: "row_42"}

func wantDecryptErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
	fe := fault.As(err)
	if fe.Kind != fault.Internal || fe.Message != "decryption failed" {
		t.Fatalf("err kind/message = %v/%q, want internal/\"decryption failed\"", fe.Kind, fe.Message)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	r := newTestKeyring(t)
	tests := []struct {
		name string
		pt   []byte
		ad   AD
	}{
		{"empty plaintext", []byte{}, testAD},
		{"short", []byte("JBSWY3DPEHPK3PXP"), testAD},
		{"1KiB", bytes.Repeat([]byte{0xab}, 1024), testAD},
		{"empty AD", []byte("x"), AD{}},
		{"unicode AD", []byte("x"), AD{Workspace: "wß", Table: "t", Column: "c", Row: "ü"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := r.Seal(tt.pt, tt.ad)
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != len(tt.pt)+Overhead {
				t.Fatalf("len(ct) = %d, want %d", len(ct), len(tt.pt)+Overhead)
			}
			if ct[0] != formatV1 || binary.BigEndian.Uint32(ct[1:5]) != 1 {
				t.Fatalf("header = %x, want 01 00000001", ct[:5])
			}
			if v, err := r.KeyVersion(ct); err != nil || v != 1 {
				t.Fatalf("KeyVersion = %d, %v; want 1", v, err)
			}
			pt, err := r.Open(ct, tt.ad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pt, tt.pt) {
				t.Fatalf("Open = %x, want %x", pt, tt.pt)
			}
		})
	}
}

func TestSealUsesFreshNonceFromRand(t *testing.T) {
	nonce := []byte("0123456789ab")
	r := NewKeyring(bytes.NewReader(nonce))
	if err := r.Add(7, testKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPrimary(7); err != nil {
		t.Fatal(err)
	}
	ct, err := r.Seal([]byte("hi"), testAD)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ct[headerSize:headerSize+nonceSize], nonce) {
		t.Fatalf("nonce = %q, want %q", ct[headerSize:headerSize+nonceSize], nonce)
	}
	// The reader is now exhausted: Seal must fail rather than reuse a nonce.
	if _, err := r.Seal([]byte("hi"), testAD); err == nil || errors.Is(err, ErrDecrypt) {
		t.Fatalf("Seal with exhausted rand: err = %v, want nonce error", err)
	}

	// With crypto/rand, equal inputs give different ciphertexts.
	kr := newTestKeyring(t)
	a, _ := kr.Seal([]byte("same"), testAD)
	b, _ := kr.Seal([]byte("same"), testAD)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestOpenRejectsTamperedBytes(t *testing.T) {
	r := newTestKeyring(t)
	ct, err := r.Seal([]byte("a secret worth protecting"), testAD)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ct {
		for _, mask := range []byte{0x01, 0x80} {
			bad := bytes.Clone(ct)
			bad[i] ^= mask
			_, err := r.Open(bad, testAD)
			if err == nil {
				t.Fatalf("byte %d ^ %#x: Open succeeded", i, mask)
			}
			if fault.KindOf(err) != fault.Internal {
				t.Fatalf("byte %d: kind = %v, want internal", i, fault.KindOf(err))
			}
			// Bytes 1..4 name the key version; flipping them points at a
			// version this keyring does not hold.
			if i >= 1 && i < headerSize {
				if !errors.Is(err, ErrUnknownKeyVersion) {
					t.Fatalf("byte %d: err = %v, want ErrUnknownKeyVersion", i, err)
				}
				continue
			}
			wantDecryptErr(t, err)
		}
	}
	for n := 0; n < len(ct); n++ {
		_, err := r.Open(ct[:n], testAD)
		if err == nil {
			t.Fatalf("truncated to %d bytes: Open succeeded", n)
		}
	}
	if _, err := r.Open(append(bytes.Clone(ct), 0), testAD); err == nil {
		t.Fatal("extended ciphertext: Open succeeded")
	}
}

func TestOpenRejectsWrongAD(t *testing.T) {
	r := newTestKeyring(t)
	ct, err := r.Seal([]byte("secret"), testAD)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ad   AD
	}{
		{"workspace", AD{Workspace: "ws_2", Table: testAD.Table, Column: testAD.Column, Row: testAD.Row}},
		{"table", AD{Workspace: testAD.Workspace, Table: "api_keys", Column: testAD.Column, Row: testAD.Row}},
		{"column", AD{Workspace: testAD.Workspace, Table: testAD.Table, Column: "label", Row: testAD.Row}},
		{"row", AD{Workspace: testAD.Workspace, Table: testAD.Table, Column: testAD.Column, Row: "row_43"}},
		{"empty", AD{}},
		// Same concatenation, different field split: the length prefixes
		// must keep these apart.
		{"shifted boundary", AD{Workspace: "ws_1m", Table: "fa_factors", Column: testAD.Column, Row: testAD.Row}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Open(ct, tt.ad)
			wantDecryptErr(t, err)
		})
	}
}

func TestADEncodingUnambiguous(t *testing.T) {
	h := []byte{1, 0, 0, 0, 1}
	pairs := [][2]AD{
		{{Workspace: "ab", Table: "c"}, {Workspace: "a", Table: "bc"}},
		{{Column: "x"}, {Row: "x"}},
		{{Workspace: "\x00\x00\x00\x01a"}, {Table: "a"}},
	}
	for _, p := range pairs {
		a, b := appendAD(nil, h, p[0]), appendAD(nil, h, p[1])
		if bytes.Equal(a, b) {
			t.Errorf("%+v and %+v encode identically", p[0], p[1])
		}
		if len(a) != p[0].encodedLen() {
			t.Errorf("encodedLen = %d, want %d", p[0].encodedLen(), len(a))
		}
	}
	if bytes.Equal(appendAD(nil, h, testAD), appendAD(nil, []byte{1, 0, 0, 0, 2}, testAD)) {
		t.Error("header is not part of the AD")
	}
}

// TestHeaderIsAuthenticated holds the same key under two versions, so only
// the header's presence in the AD can make a rewritten header fail.
func TestHeaderIsAuthenticated(t *testing.T) {
	r := NewKeyring(nil)
	for _, v := range []uint32{1, 2} {
		if err := r.Add(v, testKey(0x22)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	ct, err := r.Seal([]byte("secret"), testAD)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(ct, testAD); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		mutate func([]byte)
	}{
		{"key version 1 to 2", func(b []byte) { binary.BigEndian.PutUint32(b[1:5], 2) }},
		{"format version 1 to 2", func(b []byte) { b[0] = 2 }},
		{"format version 1 to 0", func(b []byte) { b[0] = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Clone(ct)
			tt.mutate(bad)
			_, err := r.Open(bad, testAD)
			wantDecryptErr(t, err)
		})
	}
}

func TestUnknownKeyVersion(t *testing.T) {
	a := newTestKeyring(t)
	ct, err := a.Seal([]byte("secret"), testAD)
	if err != nil {
		t.Fatal(err)
	}
	b := NewKeyring(nil)
	if err := b.Add(2, testKey(0x11)); err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(ct, testAD)
	if !errors.Is(err, ErrUnknownKeyVersion) || errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrUnknownKeyVersion", err)
	}
	if fe := fault.As(err); fe.Kind != fault.Internal || fe.Message != "decryption failed" {
		t.Fatalf("kind/message = %v/%q", fe.Kind, fe.Message)
	}
}

func TestRotationOldVersionsStillOpen(t *testing.T) {
	r := newTestKeyring(t)
	old, err := r.Seal([]byte("old"), testAD)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(2, testKey(0x33)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPrimary(2); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Primary(); !ok || v != 2 {
		t.Fatalf("Primary = %d, %v; want 2", v, ok)
	}
	cur, err := r.Seal([]byte("new"), testAD)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ct      []byte
		version uint32
		pt      string
	}{{old, 1, "old"}, {cur, 2, "new"}} {
		if v, err := r.KeyVersion(c.ct); err != nil || v != c.version {
			t.Errorf("KeyVersion = %d, %v; want %d", v, err, c.version)
		}
		pt, err := r.Open(c.ct, testAD)
		if err != nil || string(pt) != c.pt {
			t.Errorf("Open = %q, %v; want %q", pt, err, c.pt)
		}
	}
}

func TestKeyringErrors(t *testing.T) {
	r := NewKeyring(nil)
	if _, ok := r.Primary(); ok {
		t.Fatal("empty keyring reports a primary")
	}
	if _, err := r.Seal([]byte("x"), testAD); err == nil {
		t.Fatal("Seal without primary succeeded")
	}
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if err := r.Add(1, make([]byte, n)); fault.KindOf(err) != fault.Invalid {
			t.Errorf("Add with %d-byte key: err = %v, want invalid", n, err)
		}
	}
	if err := r.SetPrimary(1); fault.KindOf(err) != fault.NotFound {
		t.Errorf("SetPrimary unknown: err = %v, want not_found", err)
	}
	if err := r.Add(1, testKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(1, testKey(2)); fault.KindOf(err) != fault.Conflict {
		t.Errorf("duplicate Add: err = %v, want conflict", err)
	}
	if _, err := r.KeyVersion(make([]byte, Overhead-1)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("KeyVersion of short input: err = %v, want ErrDecrypt", err)
	}
}

// TestKeyringConcurrent is meaningful under -race: sealing and opening while
// versions are added and the primary moves.
func TestKeyringConcurrent(t *testing.T) {
	r := newTestKeyring(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ad := AD{Workspace: "ws", Table: "t", Column: "c", Row: strings.Repeat("r", g)}
			for range 200 {
				ct, err := r.Seal([]byte("payload"), ad)
				if err != nil {
					t.Error(err)
					return
				}
				if pt, err := r.Open(ct, ad); err != nil || string(pt) != "payload" {
					t.Errorf("Open = %q, %v", pt, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for v := uint32(2); v < 50; v++ {
			if err := r.Add(v, testKey(byte(v))); err != nil {
				t.Error(err)
				return
			}
			if err := r.SetPrimary(v); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestSealRandFailure(t *testing.T) {
	r := NewKeyring(errReader{})
	if err := r.Add(1, testKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPrimary(1); err != nil {
		t.Fatal(err)
	}
	if ct, err := r.Seal([]byte("x"), testAD); err == nil || ct != nil {
		t.Fatalf("Seal with failing rand = %x, %v; want error", ct, err)
	}
}

// FuzzOpen feeds arbitrary bytes and AD to Open: it must never panic, must
// fail with one of the two documented causes, and anything it accepts must be
// exactly what was sealed under that AD.
func FuzzOpen(f *testing.F) {
	// A fixed nonce makes the seed ciphertext identical in every fuzz worker
	// process, so "only the seed opens" holds across processes.
	r := NewKeyring(bytes.NewReader([]byte("fixed nonce!")))
	if err := r.Add(1, testKey(0x11)); err != nil {
		f.Fatal(err)
	}
	if err := r.SetPrimary(1); err != nil {
		f.Fatal(err)
	}
	valid, err := r.Seal([]byte("seed plaintext"), testAD)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, testAD.Workspace, testAD.Table, testAD.Column, testAD.Row)
	f.Add(valid[:Overhead], "", "", "", "")
	f.Add([]byte{}, "", "", "", "")
	f.Add([]byte{1, 0, 0, 0, 1}, "a", "b", "c", "d")
	f.Add(bytes.Repeat([]byte{0xff}, 64), "ws", "t", "c", "r")
	f.Fuzz(func(t *testing.T, ct []byte, ws, table, col, row string) {
		ad := AD{Workspace: ws, Table: table, Column: col, Row: row}
		_, _ = r.KeyVersion(ct)
		pt, err := r.Open(ct, ad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKeyVersion) {
				t.Fatalf("unexpected error: %v", err)
			}
			if fault.KindOf(err) != fault.Internal {
				t.Fatalf("kind = %v, want internal", fault.KindOf(err))
			}
			return
		}
		// Only the seed ciphertext under its own AD can open.
		if !bytes.Equal(ct, valid) || ad != testAD || string(pt) != "seed plaintext" {
			t.Fatalf("Open accepted unexpected input %x / %+v", ct, ad)
		}
	})
}
