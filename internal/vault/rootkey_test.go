package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/fault"
)

func keyBytes(b byte) []byte { return bytes.Repeat([]byte{b}, RootKeySize) }

func keyText(raw []byte) string { return rootKeyPrefix + base64.StdEncoding.EncodeToString(raw) }

func mustParse(t testing.TB, s string) RootKey {
	t.Helper()
	k, err := ParseRootKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseRootKey(t *testing.T) {
	good := keyText(keyBytes(7))
	tests := []struct {
		name     string
		in       string
		wantCode string // "" means success
	}{
		{"valid", good, ""},
		{"trailing newline", good + "\n", ""},
		{"CRLF and spaces around", "  " + good + "\r\n", ""},
		{"empty", "", "root_key_format"},
		{"missing prefix", base64.StdEncoding.EncodeToString(keyBytes(7)), "root_key_format"},
		{"future version", strings.Replace(good, "-v1:", "-v2:", 1), "root_key_format"},
		{"bad base64", rootKeyPrefix + "!!!!", "root_key_format"},
		{"url-safe alphabet", rootKeyPrefix + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "root_key_format"},
		{"unpadded", rootKeyPrefix + base64.RawStdEncoding.EncodeToString(keyBytes(7)), "root_key_format"},
		{"newline inside", good[:30] + "\n" + good[30:], "root_key_format"},
		{"two lines", good + "\n" + good, "root_key_format"},
		{"31 bytes", keyText(keyBytes(7)[:31]), "root_key_length"},
		{"33 bytes", keyText(append(keyBytes(7), 7)), "root_key_length"},
		{"all zero", keyText(make([]byte, 32)), "root_key_zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseRootKey(tt.in)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k.Text() != good {
					t.Fatalf("Text = %q, want %q", k.Text(), good)
				}
				return
			}
			fe := fault.As(err)
			if err == nil || fe.Kind != fault.Invalid || fe.Code != tt.wantCode {
				t.Fatalf("err = %v, want invalid/%s", err, tt.wantCode)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(strings.TrimSpace(tt.in), rootKeyPrefix)) && tt.in != "" {
				t.Fatalf("error echoes the input: %v", err)
			}
		})
	}
}

func TestRootKeyIDAndVerify(t *testing.T) {
	a, b := mustParse(t, keyText(keyBytes(1))), mustParse(t, keyText(keyBytes(2)))

	// Independent computation pins the definition: a stored ID must never
	// change meaning between releases.
	m := hmac.New(sha256.New, keyBytes(1))
	m.Write([]byte("rampart root key id"))
	want := hex.EncodeToString(m.Sum(nil))[:16]
	if a.ID() != want {
		t.Fatalf("ID = %q, want %q", a.ID(), want)
	}
	if a.ID() == b.ID() {
		t.Fatal("different keys have the same ID")
	}
	if err := a.VerifyID(a.ID()); err != nil {
		t.Fatalf("VerifyID(own ID) = %v", err)
	}
	for _, stored := range []string{b.ID(), "", a.ID()[:15], strings.ToUpper(a.ID())} {
		if err := a.VerifyID(stored); !errors.Is(err, ErrRootKeyMismatch) || fault.KindOf(err) != fault.Internal {
			t.Errorf("VerifyID(%q) = %v, want ErrRootKeyMismatch", stored, err)
		}
	}
}

func TestRootKeyDerive(t *testing.T) {
	k := mustParse(t, keyText(keyBytes(1)))
	other := mustParse(t, keyText(keyBytes(2)))

	// RFC 5869 computed by hand for one block, pinning salt and info use.
	ext := hmac.New(sha256.New, []byte("rampart/vault/hkdf-salt/v1"))
	ext.Write(keyBytes(1))
	exp := hmac.New(sha256.New, ext.Sum(nil))
	exp.Write([]byte("totp-secrets/v1"))
	exp.Write([]byte{1})
	want := exp.Sum(nil)

	got := k.Derive("totp-secrets/v1", 32)
	if !bytes.Equal(got, want) {
		t.Fatalf("Derive = %x, want %x", got, want)
	}
	if !bytes.Equal(k.Derive("totp-secrets/v1", 32), got) {
		t.Fatal("Derive is not deterministic")
	}
	outputs := map[string]string{}
	for _, c := range []struct {
		name string
		key  RootKey
		p    string
	}{
		{"totp", k, "totp-secrets/v1"},
		{"blind index", k, "blind-index/v1"},
		{"totp v2", k, "totp-secrets/v2"},
		{"other root", other, "totp-secrets/v1"},
	} {
		d := hex.EncodeToString(c.key.Derive(c.p, 32))
		if prev, ok := outputs[d]; ok {
			t.Errorf("%s and %s derive the same key", c.name, prev)
		}
		outputs[d] = c.name
	}
	for _, n := range []int{1, 16, 64, 8160} {
		if got := len(k.Derive("x", n)); got != n {
			t.Errorf("len(Derive(x, %d)) = %d", n, got)
		}
	}
	for _, c := range []struct {
		p string
		n int
	}{{"", 32}, {"x", 0}, {"x", -1}, {"x", 8161}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Derive(%q, %d) did not panic", c.p, c.n)
				}
			}()
			k.Derive(c.p, c.n)
		}()
	}
}

func TestRootKeyFormattingIsRedacted(t *testing.T) {
	raw := keyBytes(0xa5)
	k := mustParse(t, keyText(raw))
	secrets := []string{
		base64.StdEncoding.EncodeToString(raw),
		hex.EncodeToString(raw),
		"165 165 165", // %d of the byte array
		"245 245",     // %o of the byte array
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q", "%o"} {
		out := fmt.Sprintf(verb, k)
		if !strings.Contains(out, k.ID()) {
			t.Errorf("%s: %q does not carry the ID", verb, out)
		}
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(out), s) {
				t.Errorf("%s: %q leaks key material", verb, out)
			}
		}
	}
	if out := fmt.Sprintf("%v", struct{ K RootKey }{k}); strings.Contains(out, "165 165") {
		t.Errorf("nested: %q leaks key material", out)
	}
}

func TestLoadOrCreateKeyFileCreatesAndReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "root.key")
	rand := bytes.NewReader(keyBytes(9))

	k, created, err := LoadOrCreateKeyFile(path, rand)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	if k.Text() != keyText(keyBytes(9)) {
		t.Fatal("created key is not the bytes read from rand")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %04o, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode = %04o, want 0700", di.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != keyText(keyBytes(9))+"\n" {
		t.Fatalf("file content has wrong format (len %d)", len(data))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key file", len(entries))
	}

	// A second start loads the same key and does not consume randomness.
	k2, created, err := LoadOrCreateKeyFile(path, errReader{})
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	if k2.ID() != k.ID() {
		t.Fatal("reloaded key differs")
	}
	// The env-var source parses the same text.
	if mustParse(t, string(data)).ID() != k.ID() {
		t.Fatal("ParseRootKey of file content differs")
	}
}

func TestLoadKeyFileRefusesLoosePermissions(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, false},
		{0o604, false},
		{0o644, false},
		{0o660, false},
		{0o610, false},
		{0o601, false},
		{0o777, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%04o", tt.mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if err := os.WriteFile(path, []byte(keyText(keyBytes(3))+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			k, created, err := LoadOrCreateKeyFile(path, nil)
			if tt.ok {
				if err != nil || created || k.Text() != keyText(keyBytes(3)) {
					t.Fatalf("created=%v err=%v", created, err)
				}
				return
			}
			if err == nil {
				t.Fatal("loose permissions accepted")
			}
			fe := fault.As(err)
			if fe.Kind != fault.Invalid || fe.Code != "root_key_file_permissions" {
				t.Fatalf("err = %v, want invalid/root_key_file_permissions", err)
			}
			if !strings.Contains(fe.Message, "chmod 600 "+path) {
				t.Fatalf("message %q does not say which chmod to run", fe.Message)
			}
			// Fail closed must not mean "replace": the file is untouched.
			data, _ := os.ReadFile(path)
			if string(data) != keyText(keyBytes(3))+"\n" {
				t.Fatal("key file was modified")
			}
		})
	}
}

func TestLoadKeyFileRefusesBadContent(t *testing.T) {
	tests := []struct {
		name    string
		content string
		code    string
	}{
		{"empty", "", "root_key_format"},
		{"garbage", "hello\n", "root_key_format"},
		{"short key", keyText(keyBytes(3)[:16]) + "\n", "root_key_length"},
		{"two keys", keyText(keyBytes(3)) + "\n" + keyText(keyBytes(4)) + "\n", "root_key_format"},
		{"huge", strings.Repeat("A", maxKeyFileSize+10), "root_key_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreateKeyFile(path, nil)
			if fe := fault.As(err); err == nil || fe.Kind != fault.Invalid || fe.Code != tt.code {
				t.Fatalf("err = %v, want invalid/%s", err, tt.code)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "root.key")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateKeyFile(path, nil); fault.As(err).Code != "root_key_file_type" {
			t.Fatalf("err = %v, want root_key_file_type", err)
		}
	})
}

func TestLoadOrCreateKeyFileRandFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "root.key")
	if _, _, err := LoadOrCreateKeyFile(path, errReader{}); err == nil {
		t.Fatal("create with failing rand succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("key file exists after failed create: %v", err)
	}
}

// TestLoadOrCreateKeyFileConcurrent starts many "processes" at once against a
// missing file: exactly one must create it and all must end up with its key.
func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "sub", "root.key")
		const n = 16
		ids := make([]string, n)
		createdBy := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				var k RootKey
				k, createdBy[i], errs[i] = LoadOrCreateKeyFile(path, nil)
				ids[i] = k.ID()
			})
		}
		close(start)
		wg.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: goroutine %d: %v", round, i, errs[i])
			}
			if createdBy[i] {
				creators++
			}
			if ids[i] != ids[0] {
				t.Fatalf("round %d: goroutines got different keys", round)
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d goroutines report creating the key, want 1", round, creators)
		}
		onDisk, _, err := LoadOrCreateKeyFile(path, errReader{})
		if err != nil || onDisk.ID() != ids[0] {
			t.Fatalf("round %d: key on disk differs (%v)", round, err)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Fatalf("round %d: %d entries left in dir, want 1 (temp files leaked)", round, len(entries))
		}
	}
}

// FuzzParseRootKey: never panics, and anything accepted round-trips through
// Text exactly (so file and env forms cannot drift).
func FuzzParseRootKey(f *testing.F) {
	f.Add(keyText(keyBytes(7)))
	f.Add(keyText(keyBytes(7)) + "\n")
	f.Add(rootKeyPrefix)
	f.Add(rootKeyPrefix + "====")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseRootKey(s)
		if err != nil {
			if fault.KindOf(err) != fault.Invalid {
				t.Fatalf("kind = %v, want invalid", fault.KindOf(err))
			}
			return
		}
		if k.Text() != strings.TrimSpace(s) {
			t.Fatalf("accepted %q but Text() = %q", s, k.Text())
		}
	})
}
