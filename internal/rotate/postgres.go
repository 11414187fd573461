package rotate

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rampartsec/rampart/internal/vault/secrets"
)

// scramIterations is PostgreSQL's own default (scram_iterations).
const scramIterations = 4096

// Postgres rotates a PostgreSQL role's password. Set runs ALTER ROLE …
// PASSWORD with a SCRAM-SHA-256 verifier computed here, so the password
// itself never appears in a statement (nor in the server's statement log);
// Test connects as the role with the new password and, where the admin
// connection may read pg_authid, also checks the stored verifier against
// the new password (which proves the change even under trust
// authentication). Rollback sets the previous password back.
type Postgres struct {
	// AdminDSN connects as a role allowed to ALTER ROLE Role (CREATEROLE
	// or superuser).
	AdminDSN string
	Role     string
	// TestDSN connects as Role (its password is replaced by the new one);
	// empty means AdminDSN with user Role.
	TestDSN string
	Length  int // default 32, alphanumeric
	Rand    io.Reader
	Timeout time.Duration // per step, default 15s
}

var _ secrets.Rotator = (*Postgres)(nil)

// Kind implements secrets.Rotator.
func (p *Postgres) Kind() string { return "postgres" }

// Generate implements secrets.Rotator: alphanumeric, so SASLprep leaves it
// unchanged and every client library passes it through as is.
func (p *Postgres) Generate(context.Context) ([]byte, error) {
	return randomString(p.Rand, max(p.Length, 16), AlphanumAlphabet)
}

func (p *Postgres) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 15 * time.Second
}

// Set implements secrets.Rotator.
func (p *Postgres) Set(ctx context.Context, c secrets.Change) error {
	return p.setPassword(ctx, c.Value)
}

// Rollback implements secrets.Rotator.
func (p *Postgres) Rollback(ctx context.Context, c secrets.Change) error {
	return p.setPassword(ctx, c.Previous)
}

func (p *Postgres) setPassword(ctx context.Context, password []byte) error {
	if p.Role == "" {
		return errors.New("postgres rotator: no role")
	}
	salt := make([]byte, 16)
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return err
	}
	verifier, err := SCRAMVerifier(string(password), salt, scramIterations)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	conn, err := pgx.Connect(ctx, p.AdminDSN)
	if err != nil {
		return fmt.Errorf("postgres rotator: admin connection: %w", safeErr(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// ALTER ROLE takes no parameters: the role is quoted as an identifier
	// and the verifier holds only base64, digits, '$' and ':' (checked).
	if strings.ContainsAny(verifier, "'\\") {
		return errors.New("postgres rotator: unexpected verifier")
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{p.Role}.Sanitize()+" PASSWORD '"+verifier+"'"); err != nil {
		return fmt.Errorf("postgres rotator: alter role: %w", safeErr(err))
	}
	return nil
}

// Test implements secrets.Rotator.
func (p *Postgres) Test(ctx context.Context, c secrets.Change) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	dsn := p.TestDSN
	if dsn == "" {
		dsn = p.AdminDSN
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return errors.New("postgres rotator: test DSN does not parse")
	}
	if p.TestDSN == "" {
		cfg.User = p.Role
	}
	cfg.Password = string(c.Value)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres rotator: connecting as the role with the new password: %w", safeErr(err))
	}
	var user string
	err = conn.QueryRow(ctx, "SELECT current_user").Scan(&user)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("postgres rotator: test query: %w", safeErr(err))
	}
	if user != p.Role {
		return fmt.Errorf("postgres rotator: test connection is %q, not the role", user)
	}
	ok, err := p.StoredVerifierMatches(ctx, c.Value)
	if err != nil {
		return err
	}
	if ok == VerifierMismatch {
		return errors.New("postgres rotator: the stored password verifier does not match the new password")
	}
	return nil
}

// VerifierCheck is the outcome of StoredVerifierMatches.
type VerifierCheck int

// Outcomes: the verifier could not be read (no right to pg_authid), it
// matches, or it does not.
const (
	VerifierUnreadable VerifierCheck = iota
	VerifierMatch
	VerifierMismatch
)

// StoredVerifierMatches reads the role's stored SCRAM verifier through the
// admin connection (needs superuser) and checks password against it.
func (p *Postgres) StoredVerifierMatches(ctx context.Context, password []byte) (VerifierCheck, error) {
	conn, err := pgx.Connect(ctx, p.AdminDSN)
	if err != nil {
		return VerifierUnreadable, fmt.Errorf("postgres rotator: admin connection: %w", safeErr(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var stored *string
	err = conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", p.Role).Scan(&stored)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
		return VerifierUnreadable, nil
	}
	if err != nil {
		return VerifierUnreadable, fmt.Errorf("postgres rotator: reading the verifier: %w", safeErr(err))
	}
	if stored == nil || !CheckSCRAMVerifier(*stored, string(password)) {
		return VerifierMismatch, nil
	}
	return VerifierMatch, nil
}

// SCRAMVerifier computes PostgreSQL's stored form of a SCRAM-SHA-256
// password (RFC 5802, RFC 7677): "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>".
// The password is used as given (callers pass ASCII, which SASLprep leaves
// unchanged).
func SCRAMVerifier(password string, salt []byte, iterations int) (string, error) {
	storedKey, serverKey, err := scramKeys(password, salt, iterations)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + b64(salt) + "$" + b64(storedKey) + ":" + b64(serverKey), nil
}

func scramKeys(password string, salt []byte, iterations int) (storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, nil, err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	sk := sha256.Sum256(clientKey)
	return sk[:], mac(salted, "Server Key"), nil
}

// CheckSCRAMVerifier reports whether verifier (PostgreSQL's stored form)
// was computed from password; keys are compared in constant time.
func CheckSCRAMVerifier(verifier, password string) bool {
	rest, ok := strings.CutPrefix(verifier, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterText, saltText, ok := strings.Cut(params, ":")
	if !ok {
		return false
	}
	storedText, serverText, ok := strings.Cut(keys, ":")
	if !ok {
		return false
	}
	iter, err := strconv.Atoi(iterText)
	if err != nil || iter < 1 || iter > 1<<24 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltText)
	stored, err2 := base64.StdEncoding.DecodeString(storedText)
	server, err3 := base64.StdEncoding.DecodeString(serverText)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	gotStored, gotServer, err := scramKeys(password, salt, iter)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(stored, gotStored)&subtle.ConstantTimeCompare(server, gotServer) == 1
}

// safeErr keeps a PostgreSQL error's code and message class but drops
// anything that might quote a statement (which could carry a verifier).
func safeErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("SQLSTATE %s", pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("cannot connect")
	}
	return err
}
