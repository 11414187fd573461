package rotate_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/rotate"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRandom(t *testing.T) {
	for _, c := range []struct {
		length   int
		alphabet string
		wantLen  int
		wantErr  bool
	}{
		{0, "", 32, false},
		{64, "ab", 64, false},
		{10, "aa", 0, true},
		{10, "a", 0, true},
	} {
		r := &rotate.Random{Length: c.length, Alphabet: c.alphabet}
		v, err := r.Generate(context.Background())
		if (err != nil) != c.wantErr {
			t.Fatalf("%+v: err %v", c, err)
		}
		if c.wantErr {
			continue
		}
		alpha := c.alphabet
		if alpha == "" {
			alpha = rotate.AlphanumAlphabet
		}
		if len(v) != c.wantLen || strings.Trim(string(v), alpha) != "" {
			t.Fatalf("%+v: generated %q", c, v)
		}
		w, _ := r.Generate(context.Background())
		if bytes.Equal(v, w) {
			t.Fatal("two values alike")
		}
	}
}

func adminDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(storetest.EnvPostgres)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set", storetest.EnvPostgres)
		}
		t.Skipf("%s is not set", storetest.EnvPostgres)
	}
	return dsn
}

// throwawayRole creates a LOGIN role with a random name, dropped when the
// test ends.
func throwawayRole(t *testing.T, admin string) string {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	role := "rampart_rot_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, admin)
	must(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN")
	must(t, err)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			c.Close(context.Background())
		}
	})
	return role
}

func storedVerifier(t *testing.T, admin, role string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), admin)
	must(t, err)
	defer conn.Close(context.Background())
	var v *string
	must(t, conn.QueryRow(context.Background(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&v))
	if v == nil {
		return ""
	}
	return *v
}

// TestSCRAMAgainstPostgres checks the verifier code against PostgreSQL's
// own: the server hashes a password, CheckSCRAMVerifier must accept it and
// refuse another password; and a verifier computed here is accepted by
// the server (ALTER ROLE) and checks out the same way.
func TestSCRAMAgainstPostgres(t *testing.T) {
	admin := adminDSN(t)
	role := throwawayRole(t, admin)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	must(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'")
	must(t, err)
	_, err = conn.Exec(ctx, "ALTER ROLE "+role+" PASSWORD 'server-hashed-pw'") // gitleaks:allow (test password)
	must(t, err)
	v := storedVerifier(t, admin, role)
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") {
		t.Fatalf("server verifier = %q", v)
	}
	if !rotate.CheckSCRAMVerifier(v, "server-hashed-pw") || rotate.CheckSCRAMVerifier(v, "server-hashed-px") {
		t.Fatal("CheckSCRAMVerifier disagrees with PostgreSQL")
	}
	mine, err := rotate.SCRAMVerifier("client-hashed", []byte("0123456789abcdef"), 4096)
	must(t, err)
	if !rotate.CheckSCRAMVerifier(mine, "client-hashed") {
		t.Fatal("own verifier does not check")
	}
	for _, bad := range []string{"", "md5abc", "SCRAM-SHA-256$x:y$z:w", "SCRAM-SHA-256$4096:!!$a:b", "SCRAM-SHA-256$0:AA==$AA==:AA=="} {
		if rotate.CheckSCRAMVerifier(bad, "x") {
			t.Fatalf("accepted %q", bad)
		}
	}
}

func FuzzCheckSCRAMVerifier(f *testing.F) {
	v, _ := rotate.SCRAMVerifier("pw", []byte("saltsaltsaltsalt"), 1)
	for _, s := range []string{v, "", "SCRAM-SHA-256$", "SCRAM-SHA-256$1:$:", "SCRAM-SHA-256$99999999:AA==$AA==:AA=="} {
		f.Add(s, "pw")
	}
	f.Fuzz(func(t *testing.T, verifier, pw string) {
		rotate.CheckSCRAMVerifier(verifier, pw) // must not panic or hang
	})
}

// TestPostgresRotatorEndToEnd rotates a throwaway role's password through
// the secrets service (on the SQLite store) and proves each step against
// the server: the stored verifier matches the new password after Set, a
// connection as the role works, a wrong value fails Test, and Rollback
// restores the previous password.
func TestPostgresRotatorEndToEnd(t *testing.T) {
	admin := adminDSN(t)
	role := throwawayRole(t, admin)
	ctx := context.Background()
	p := &rotate.Postgres{AdminDSN: admin, Role: role}

	st := storetest.Open(t, store.EngineSQLite)
	log, svc := newService(t, st)
	pol := secrets.Policy{Name: "app-db", Secret: "app-db-password", Interval: time.Hour, Rotator: p}
	sys := secrets.Actor{Type: audit.ActorSystem, ID: "rotation"}

	for round := 1; round <= 2; round++ {
		v, err := svc.Rotate(ctx, sys, pol)
		must(t, err)
		if v != round {
			t.Fatalf("round %d promoted v%d", round, v)
		}
		val, err := svc.Get(ctx, sys, "", "app-db-password", secrets.Selector{})
		must(t, err)
		if !rotate.CheckSCRAMVerifier(storedVerifier(t, admin, role), string(val.Value)) {
			t.Fatalf("round %d: the role's stored verifier does not match the current value", round)
		}
	}
	prev, err := svc.Get(ctx, sys, "", "app-db-password", secrets.Selector{Stage: secrets.StagePrevious})
	must(t, err)
	if rotate.CheckSCRAMVerifier(storedVerifier(t, admin, role), string(prev.Value)) {
		t.Fatal("the previous password still matches")
	}

	// Test refuses a value that was not set (trust auth lets the connection
	// in; the verifier check does not).
	err = p.Test(ctx, secrets.Change{Secret: "x", Version: 9, Value: []byte("never-set-value")})
	if err == nil || !strings.Contains(err.Error(), "verifier does not match") {
		t.Fatalf("Test of an unset value = %v", err)
	}
	// Rollback restores the previous password.
	must(t, p.Rollback(ctx, secrets.Change{Previous: prev.Value}))
	if !rotate.CheckSCRAMVerifier(storedVerifier(t, admin, role), string(prev.Value)) {
		t.Fatal("rollback did not restore the previous password")
	}

	// A rotation whose Set fails (role gone) keeps the current version and
	// alerts.
	cur, err := svc.Get(ctx, sys, "", "app-db-password", secrets.Selector{})
	must(t, err)
	bad := *p
	bad.Role = role + "_missing"
	_, err = svc.Rotate(ctx, sys, secrets.Policy{Name: "app-db", Secret: "app-db-password", Interval: time.Hour, Rotator: &bad})
	var re *secrets.RotationError
	if !errors.As(err, &re) || re.Step != "set+rollback" && re.Step != "set" {
		t.Fatalf("rotation against a missing role = %v", err)
	}
	after, err := svc.Get(ctx, sys, "", "app-db-password", secrets.Selector{})
	must(t, err)
	if after.Version.Version != cur.Version.Version {
		t.Fatal("a failed rotation changed the current version")
	}
	evs, err := log.Query(ctx, audit.Filter{Action: "secret.rotation_failed", AfterID: -1})
	must(t, err)
	if len(evs) != 1 {
		t.Fatalf("%d rotation_failed events", len(evs))
	}
	// Values never reach the audit trail.
	all, err := log.Query(ctx, audit.Filter{AfterID: -1, Limit: 1000})
	must(t, err)
	for _, ev := range all {
		for _, d := range ev.Details {
			if d == string(cur.Value) || d == string(prev.Value) {
				t.Fatalf("a password reached the audit trail: %+v", ev)
			}
		}
	}
}

func newService(t *testing.T, st *store.Store) (*audit.MerkleLog, *secrets.Service) {
	t.Helper()
	ring := vault.NewKeyring(rand.Reader)
	must(t, ring.Add(1, bytes.Repeat([]byte{7}, 32)))
	must(t, ring.SetPrimary(1))
	l, err := audit.NewMerkleLog(audit.LogConfig{Origin: "test.example/audit"}, audit.LogDeps{
		Store: st, Sealer: ring, IndexKey: bytes.Repeat([]byte{8}, 32), SignerKey: bytes.Repeat([]byte{9}, 32), Now: time.Now,
	})
	must(t, err)
	l.Start(context.Background())
	t.Cleanup(func() { l.Close() })
	return l, secrets.New(secrets.Deps{Store: st, Sealer: vault.KeyringSealer{Keyring: ring}, Audit: l, Rand: rand.Reader})
}

const whSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // gitleaks:allow (Standard Webhooks test secret)

// receiver is a webhook receiver that verifies signatures and keeps the
// value it was given; failFirst answers 503 that many times first.
type receiver struct {
	mu        sync.Mutex
	key       []byte
	live      string
	phases    []string
	ids       []string
	failFirst int
	refuse    string // phase answered 400
	badSig    int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	body, _ := io.ReadAll(req.Body)
	id, tsText := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	ts, _ := strconv.ParseInt(tsText, 10, 64)
	want := rotate.SignWebhook(r.key, id, ts, body)
	if !hmac.Equal([]byte(want), []byte(req.Header.Get("webhook-signature"))) || time.Since(time.Unix(ts, 0)) > time.Minute {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m rotate.WebhookMessage
	if err := json.Unmarshal(body, &m); err != nil || m.Type != "secret.rotation" {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.phases = append(r.phases, m.Phase)
	r.ids = append(r.ids, id)
	if r.failFirst > 0 {
		r.failFirst--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if m.Phase == r.refuse {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	switch m.Phase {
	case "set", "rollback":
		r.live = m.Value
	}
}

func TestWebhookRotator(t *testing.T) {
	key, err := rotate.NewWebhookKey(whSecret)
	must(t, err)
	rcv := &receiver{key: key}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	wh := &rotate.Webhook{URL: srv.URL, Secret: whSecret, Client: srv.Client(), Retries: 3, Backoff: time.Millisecond}

	st := storetest.Open(t, store.EngineSQLite)
	_, svc := newService(t, st)
	ctx := context.Background()
	sys := secrets.Actor{Type: audit.ActorSystem, ID: "rotation"}
	pol := secrets.Policy{Name: "hook", Secret: "hook-secret", Interval: time.Hour, Rotator: wh}

	rcv.failFirst = 2 // retried
	_, err = svc.Rotate(ctx, sys, pol)
	must(t, err)
	cur, err := svc.Get(ctx, sys, "", "hook-secret", secrets.Selector{})
	must(t, err)
	if rcv.live != string(cur.Value) || rcv.badSig != 0 {
		t.Fatalf("receiver holds %q, store %q (bad signatures %d)", rcv.live, cur.Value, rcv.badSig)
	}
	if strings.Join(rcv.phases, ",") != "set,set,set,test" || rcv.ids[0] != rcv.ids[2] {
		t.Fatalf("phases %v ids %v", rcv.phases, rcv.ids)
	}

	// The receiver refuses the test: rolled back to the current value.
	rcv.phases, rcv.refuse = nil, "test"
	_, err = svc.Rotate(ctx, sys, pol)
	var re *secrets.RotationError
	if !errors.As(err, &re) || re.Step != "test" || !re.RolledBack {
		t.Fatalf("refused test = %v", err)
	}
	if strings.Join(rcv.phases, ",") != "set,test,rollback" || rcv.live != string(cur.Value) {
		t.Fatalf("after refusal: phases %v live %q", rcv.phases, rcv.live)
	}

	// A wrong secret is refused by the receiver: final, not retried.
	rcv.phases, rcv.refuse = nil, ""
	other := *wh
	other.Secret = "whsec_" + strings.Repeat("QUJD", 8)
	err = other.Set(ctx, secrets.Change{Secret: "x", Version: 1, Value: []byte("v")})
	if err == nil || rcv.badSig != 1 {
		t.Fatalf("wrong signature: err %v, bad %d", err, rcv.badSig)
	}
	// An unreachable receiver fails after the retries.
	u, _ := url.Parse(srv.URL)
	dead := *wh
	dead.URL = "http://" + u.Hostname() + ":1/"
	if err := dead.Set(ctx, secrets.Change{Secret: "x", Version: 1, Value: []byte("v")}); err == nil {
		t.Fatal("unreachable receiver: no error")
	}
	if _, err := rotate.NewWebhookKey("whsec_c2hvcnQ="); err == nil {
		t.Fatal("short webhook secret accepted")
	}
}

// Without a Client, the webhook rotator uses internal/outbound's: plaintext
// to a remote receiver is refused at once (no retries, nothing dialled) and
// the error does not quote the URL; loopback still works.
func TestWebhookRotatorDefaultClientTLS3(t *testing.T) {
	ctx := context.Background()
	wh := &rotate.Webhook{URL: "http://192.0.2.1/hook?token=s3cr3t", Secret: whSecret, Retries: 3, Backoff: time.Hour}
	start := time.Now()
	err := wh.Set(ctx, secrets.Change{Secret: "x", Version: 1, Value: []byte("v")})
	if err == nil || !strings.Contains(err.Error(), "TLS-3") || strings.Contains(err.Error(), "192.0.2.1") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("plaintext remote: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("refusal took %v: retried or dialled", time.Since(start))
	}
	key, err := rotate.NewWebhookKey(whSecret)
	must(t, err)
	rcv := &receiver{key: key}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	wh = &rotate.Webhook{URL: srv.URL, Secret: whSecret}
	must(t, wh.Set(ctx, secrets.Change{Secret: "x", Version: 1, Value: []byte("v")}))
}
