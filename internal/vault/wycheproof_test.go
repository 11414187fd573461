package vault

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"testing"

	"github.com/c2sp/wycheproof"
)

type wpAEADFile struct {
	Algorithm  string `json:"algorithm"`
	TestGroups []struct {
		KeySize int `json:"keySize"`
		IVSize  int `json:"ivSize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			Flags   []string `json:"flags"`
			Key     string   `json:"key"`
			IV      string   `json:"iv"`
			AAD     string   `json:"aad"`
			Msg     string   `json:"msg"`
			CT      string   `json:"ct"`
			Tag     string   `json:"tag"`
			Result  string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproofAESGCM runs the Wycheproof AES-GCM vectors that match the only
// shape Rampart uses (256-bit key, 96-bit nonce, 128-bit tag) through
// newAEAD/sealWith/openWith, the same functions Keyring.Seal and Open use.
func TestWycheproofAESGCM(t *testing.T) {
	raw, err := fs.ReadFile(wycheproof.TestVectors, "aes_gcm_test.json")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var file wpAEADFile
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	if file.Algorithm != "AES-GCM" {
		t.Fatalf("algorithm = %q, want AES-GCM", file.Algorithm)
	}

	unhex := func(t *testing.T, s string) []byte {
		t.Helper()
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("bad hex %q: %v", s, err)
		}
		return b
	}

	var ran, valid, invalid int
	skipped := map[string]int{}
	for _, g := range file.TestGroups {
		if g.KeySize != 256 || g.IVSize != 96 || g.TagSize != 128 {
			var reason string
			switch {
			case g.KeySize != 256:
				reason = fmt.Sprintf("%d-bit key (Rampart uses only AES-256)", g.KeySize)
			case g.IVSize != 96:
				reason = "AES-256 with a non-96-bit IV (Rampart generates only 96-bit nonces)"
			default:
				reason = fmt.Sprintf("%d-bit tag (Rampart uses only 128-bit tags)", g.TagSize)
			}
			skipped[reason] += len(g.Tests)
			continue
		}
		for _, tc := range g.Tests {
			name := fmt.Sprintf("tcId=%d", tc.TcID)
			key, iv, aad := unhex(t, tc.Key), unhex(t, tc.IV), unhex(t, tc.AAD)
			msg, ct, tag := unhex(t, tc.Msg), unhex(t, tc.CT), unhex(t, tc.Tag)
			aead, err := newAEAD(key)
			if err != nil {
				t.Fatalf("%s: newAEAD: %v", name, err)
			}
			ctTag := append(append([]byte{}, ct...), tag...)
			ran++
			switch tc.Result {
			case "valid", "acceptable":
				valid++
				got := sealWith(nil, aead, iv, msg, aad)
				if !bytes.Equal(got, ctTag) {
					t.Errorf("%s (%s): seal = %x, want %x", name, tc.Comment, got, ctTag)
				}
				pt, err := openWith(aead, iv, ctTag, aad)
				if err != nil {
					t.Errorf("%s (%s): open: %v", name, tc.Comment, err)
				} else if !bytes.Equal(pt, msg) {
					t.Errorf("%s (%s): open = %x, want %x", name, tc.Comment, pt, msg)
				}
			case "invalid":
				invalid++
				if _, err := openWith(aead, iv, ctTag, aad); !errors.Is(err, ErrDecrypt) {
					t.Errorf("%s (%s, flags %v): open of invalid vector: err = %v, want ErrDecrypt", name, tc.Comment, tc.Flags, err)
				}
			default:
				t.Fatalf("%s: unknown result %q", name, tc.Result)
			}
		}
	}
	t.Logf("Wycheproof AES-GCM: ran %d vectors (%d valid, %d invalid) with key=256 iv=96 tag=128", ran, valid, invalid)
	for _, k := range slices.Sorted(maps.Keys(skipped)) {
		t.Logf("skipped %d vectors: %s", skipped[k], k)
	}
	if ran == 0 || valid == 0 || invalid == 0 {
		t.Fatalf("ran %d vectors (%d valid, %d invalid); want some of each", ran, valid, invalid)
	}
}
