// Package vault is Rampart's key hierarchy and field encryption (controls
// ENC-1 and ENC-2).
//
// The hierarchy is: a root key (key file, environment variable, later a KMS)
// from which subsystem keys are derived with HKDF; versioned keys held in a
// Keyring; and an AEAD layer that binds every ciphertext to the workspace,
// table, column and row it belongs to. The pieces are deliberately small and
// separate so per-workspace KEKs, rotation and crypto-shredding can be built
// on top without changing the ciphertext format.
package vault

import (
	"crypto/hkdf"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/rampartsec/rampart/internal/fault"
)

// RootKeySize is the size of the root key in bytes (AES-256 / HMAC-SHA256
// strength).
const RootKeySize = 32

// rootKeyPrefix versions the text form so a future format (for example a
// KMS-wrapped key) can be told apart instead of being misread as raw bytes.
const rootKeyPrefix = "rampart-root-key-v1:"

// maxKeyFileSize bounds how much of a key file is read; a valid file is ~66
// bytes, so anything much larger is certainly not a key file.
const maxKeyFileSize = 4096

// rootKeyIDLabel and hkdfSalt are fixed domain-separation constants. Changing
// either changes every derived key and the stored root key ID, so they are
// versioned and must never be edited in place.
const (
	rootKeyIDLabel = "rampart root key id"
	hkdfSalt       = "rampart/vault/hkdf-salt/v1"
)

// RootKey is the top of the key hierarchy. The bytes are unexported and the
// type formats itself as a redacted fingerprint, so passing a RootKey to a
// logger or fmt cannot leak it.
type RootKey struct {
	k [RootKeySize]byte
}

// ErrRootKeyMismatch reports that the configured root key is not the one the
// database was initialised with. Starting anyway would make every stored
// ciphertext unreadable and mix data under two keys, so callers must refuse.
var ErrRootKeyMismatch = errors.New("vault: root key does not match the key this database was created with")

// ParseRootKey parses the text form "rampart-root-key-v1:<base64 of 32
// bytes>", as stored in the key file or supplied through the environment.
// Surrounding whitespace is ignored; anything else is refused. Errors never
// echo the input, since it may be a (mistyped) secret.
func ParseRootKey(s string) (RootKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, rootKeyPrefix)
	if !ok {
		return RootKey{}, fault.New(fault.Invalid, "root_key_format",
			"root key must have the form "+rootKeyPrefix+"<base64 of 32 bytes>")
	}
	// The base64 decoder silently skips CR and LF, so reject them (and any
	// other whitespace) explicitly: the format is exactly one line.
	if strings.ContainsAny(rest, " \t\r\n\v\f") {
		return RootKey{}, fault.New(fault.Invalid, "root_key_format", "root key must be a single line without spaces")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil {
		return RootKey{}, fault.New(fault.Invalid, "root_key_format", "root key is not valid standard base64")
	}
	if len(raw) != RootKeySize {
		return RootKey{}, fault.Invalidf("root_key_length", "root key must be %d bytes, got %d", RootKeySize, len(raw))
	}
	var k RootKey
	copy(k.k[:], raw)
	clear(raw)
	// An all-zero key is a placeholder, never the output of a random
	// generator; accepting it would silently give every install the same key.
	var zero [RootKeySize]byte
	if subtle.ConstantTimeCompare(k.k[:], zero[:]) == 1 {
		return RootKey{}, fault.New(fault.Invalid, "root_key_zero", "root key is all zero bytes; generate a random key")
	}
	return k, nil
}

// GenerateRootKey returns a fresh random root key read from rand
// (crypto/rand.Reader when nil).
func GenerateRootKey(rand io.Reader) (RootKey, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	var k RootKey
	if _, err := io.ReadFull(rand, k.k[:]); err != nil {
		return RootKey{}, fault.Wrap(fault.Internal, "root_key_generate", "could not generate root key", err)
	}
	return k, nil
}

// Text returns the secret text form accepted by ParseRootKey, without a
// trailing newline. It is the only way to get the key bytes out; use it only
// to write the key file or show it once to an operator.
func (k RootKey) Text() string {
	return rootKeyPrefix + base64.StdEncoding.EncodeToString(k.k[:])
}

// ID returns a non-secret fingerprint of the key: the first 16 hex digits of
// HMAC-SHA256(key, "rampart root key id"). It is stored in the database on
// first start so that a later start with a different key is refused rather
// than writing data nobody can read back. Being a keyed MAC output, it
// reveals nothing useful about the key.
func (k RootKey) ID() string {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte(rootKeyIDLabel))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// VerifyID checks that stored (an ID saved by an earlier start) belongs to
// this key, returning ErrRootKeyMismatch wrapped as fault.Internal if not.
func (k RootKey) VerifyID(stored string) error {
	if subtle.ConstantTimeCompare([]byte(k.ID()), []byte(stored)) != 1 {
		return fault.Wrap(fault.Internal, "root_key_mismatch",
			"the configured root key is not the one this database was created with; refusing to start", ErrRootKeyMismatch)
	}
	return nil
}

// Derive returns length bytes derived from the root key with HKDF-SHA256
// (fixed salt, info = purpose). Distinct purposes give independent keys, so a
// subsystem compromised through its derived key learns nothing about the root
// or its siblings. Purposes should be versioned, e.g. "totp-secrets/v1" or
// "blind-index/v1", so a key can be replaced by bumping the version.
//
// It panics if purpose is empty or length is outside 1..8160 (HKDF's limit for
// SHA-256): both are fixed at the call site, so that is a programming error.
func (k RootKey) Derive(purpose string, length int) []byte {
	if purpose == "" {
		panic("vault: RootKey.Derive with empty purpose")
	}
	if length <= 0 {
		panic("vault: RootKey.Derive with non-positive length")
	}
	out, err := hkdf.Key(sha256.New, k.k[:], []byte(hkdfSalt), purpose, length)
	if err != nil {
		panic("vault: RootKey.Derive: " + err.Error())
	}
	return out
}

// String returns a redacted description carrying only the fingerprint.
func (k RootKey) String() string { return "vault.RootKey(id=" + k.ID() + ")" }

// Format makes every fmt verb (%v, %+v, %#v, %x, %d, ...) print the redacted
// form, so the key bytes cannot reach a log line by accident.
func (k RootKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LoadOrCreateKeyFile loads the root key from path, creating it (and its
// parent directory with mode 0700) when missing. It reports whether the key
// was created by this call.
//
// Creation is atomic and exclusive: the key is written and synced to a
// temporary file in the same directory, which is then hard-linked to path.
// link(2) fails if path exists, so when two processes start at once exactly
// one key wins and the other process loads it; a rename would silently
// replace a key another process may already be using.
//
// Loading fails closed: a file readable by group or others is refused (with
// the chmod to fix it), as is anything not in the exact single-line format.
// rand is used for a new key; nil means crypto/rand.Reader.
func LoadOrCreateKeyFile(path string, rand io.Reader) (RootKey, bool, error) {
	k, err := loadKeyFile(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return RootKey{}, false, err
	}

	k, err = GenerateRootKey(rand)
	if err != nil {
		return RootKey{}, false, err
	}
	created, err := createKeyFile(path, k)
	if err != nil {
		return RootKey{}, false, err
	}
	if !created {
		// Another process created the file between our load and our link;
		// its key is the one in use.
		k, err = loadKeyFile(path)
		if err != nil {
			return RootKey{}, false, err
		}
	}
	return k, created, nil
}

// loadKeyFile reads and validates the key file. A missing file is returned as
// an error satisfying errors.Is(err, fs.ErrNotExist).
func loadKeyFile(path string) (RootKey, error) {
	f, err := os.Open(path)
	if err != nil {
		// fault.Wrap keeps the cause, so errors.Is(err, fs.ErrNotExist) holds.
		return RootKey{}, fault.Wrap(fault.Internal, "root_key_file_read", "could not open root key file "+path, err)
	}
	defer f.Close()
	// Stat the open descriptor, not the path, so the checks apply to the
	// bytes actually read.
	fi, err := f.Stat()
	if err != nil {
		return RootKey{}, fault.Wrap(fault.Internal, "root_key_file_read", "could not stat root key file "+path, err)
	}
	if !fi.Mode().IsRegular() {
		return RootKey{}, fault.New(fault.Invalid, "root_key_file_type", "root key file "+path+" is not a regular file")
	}
	// Windows does not map ACLs onto Unix permission bits (files report 0666),
	// so the check is meaningful only elsewhere.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return RootKey{}, fault.New(fault.Invalid, "root_key_file_permissions",
			fmt.Sprintf("root key file %s has mode %04o and is readable by other users; refusing to use it. Run: chmod 600 %s",
				path, perm, path))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return RootKey{}, fault.Wrap(fault.Internal, "root_key_file_read", "could not read root key file "+path, err)
	}
	defer clear(data)
	if len(data) > maxKeyFileSize {
		return RootKey{}, fault.New(fault.Invalid, "root_key_format", "root key file "+path+" is too large to be a key file")
	}
	k, err := ParseRootKey(string(data))
	if err != nil {
		fe := fault.As(err)
		return RootKey{}, fault.New(fe.Kind, fe.Code, "root key file "+path+": "+fe.Message)
	}
	return k, nil
}

// createKeyFile writes k to path unless path already exists, in which case it
// returns created=false and leaves the existing file untouched.
func createKeyFile(path string, k RootKey) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fault.Wrap(fault.Internal, "root_key_file_write", "could not create directory for root key file "+path, err)
	}
	// CreateTemp opens with O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, ".rampart-root-key-*.tmp")
	if err != nil {
		return false, fault.Wrap(fault.Internal, "root_key_file_write", "could not create root key file "+path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // the link (if made) keeps the data alive

	content := []byte(k.Text() + "\n")
	defer clear(content)
	_, werr := tmp.Write(content)
	if werr == nil {
		werr = tmp.Chmod(0o600) // in case the platform ignored CreateTemp's mode
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return false, fault.Wrap(fault.Internal, "root_key_file_write", "could not write root key file "+path, werr)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fault.Wrap(fault.Internal, "root_key_file_write",
			"could not create root key file "+path+" (the filesystem must support hard links)", err)
	}
	// Make the new directory entry durable, so a crash right after first
	// start cannot lose the key while data encrypted under it survives.
	if d, err := os.Open(dir); err == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil && runtime.GOOS != "windows" {
			return false, fault.Wrap(fault.Internal, "root_key_file_write", "could not sync directory of root key file "+path, serr)
		}
	}
	return true, nil
}
