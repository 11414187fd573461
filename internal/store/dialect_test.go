package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rampartsec/rampart/internal/fault"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"WHERE a = ? AND b = ?", "WHERE a = $1 AND b = $2"},
		{"VALUES (?,?,?,?,?,?,?,?,?,?,?)", "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"},
		{"WHERE a = '?' AND b = ?", "WHERE a = '?' AND b = $1"},
		{"WHERE a = 'it''s ?' AND b = ?", "WHERE a = 'it''s ?' AND b = $1"},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRebind checks that every placeholder outside literals is numbered in
// order and nothing else changes.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{"", "?", "a = ? AND b = ?", "'?' ?", "'unterminated ?", "$1 ?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := rebind(in)
		var want strings.Builder
		n, quoted := 0, false
		for _, c := range []byte(in) {
			if c == '\'' {
				quoted = !quoted
			}
			if c == '?' && !quoted {
				n++
				fmt.Fprintf(&want, "$%d", n)
				continue
			}
			want.WriteByte(c)
		}
		if out != want.String() {
			t.Fatalf("rebind(%q) = %q, want %q", in, out, want.String())
		}
	})
}

// FuzzCheckTransport checks that no connection string makes the TLS-3 check
// panic, and that one it accepts never has pgx try plaintext to a remote
// host.
func FuzzCheckTransport(f *testing.F) {
	for _, s := range []string{
		"postgres://db.example.com/x", "postgres://127.0.0.1/x?sslmode=disable",
		"postgres://a,b/x?sslmode=require", "postgresql:///x?host=/tmp", "host=db sslmode=disable",
		"postgres://[::1]:5432/x", "postgres://h:notaport/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		if CheckTransport(dsn, false) != nil {
			return
		}
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("accepted an unparsable DSN %q", dsn)
		}
		for _, fb := range cfg.Fallbacks {
			if fb.TLSConfig == nil && !isLocalHost(fb.Host) {
				t.Fatalf("accepted plaintext to %q in %q", fb.Host, dsn)
			}
		}
		if cfg.TLSConfig == nil && !isLocalHost(cfg.Host) {
			t.Fatalf("accepted plaintext to %q in %q", cfg.Host, dsn)
		}
	})
}

func TestMicros(t *testing.T) {
	if micros(time.Time{}) != nil {
		t.Error("zero time must be NULL")
	}
	if !fromMicros(sql.NullInt64{}).IsZero() {
		t.Error("NULL must be the zero time")
	}
	local := time.Date(2030, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600))
	got := fromMicros(sql.NullInt64{Int64: micros(local).(int64), Valid: true})
	if !got.Equal(local.Truncate(time.Microsecond)) || got.Location() != time.UTC {
		t.Errorf("round trip = %v", got)
	}
	epoch := time.Unix(0, 0)
	if got := fromMicros(sql.NullInt64{Int64: micros(epoch).(int64), Valid: true}); !got.Equal(epoch) || got.IsZero() {
		t.Errorf("the epoch must not read back as the zero time: %v", got)
	}
}

// TestFailHidesValues checks that driver details quoting row values do not
// reach the error text, which is logged.
func TestFailHidesValues(t *testing.T) {
	s := &Store{engine: EnginePostgres}
	for _, tc := range []struct {
		err  error
		kind fault.Kind
	}{
		{&pgconn.PgError{Code: "23505", Message: "duplicate key value", Detail: "Key (email)=(alice@example.com) already exists.", ConstraintName: "users_email_key"}, fault.Conflict},
		{&pgconn.PgError{Code: "23503", Message: "insert violates foreign key", Detail: "Key (user_id)=(alice@example.com) is not present"}, fault.NotFound},
		{&pgconn.PgError{Code: "22P02", Message: `invalid input syntax for type bigint: "alice@example.com"`}, fault.Internal},
		{errors.New(`sql: Scan error on column index 1, name "email": converting "alice@example.com"`), fault.Internal},
	} {
		err := s.fail("op", tc.err)
		if !fault.Is(err, tc.kind) {
			t.Errorf("fail(%v) kind = %v, want %v", tc.err, fault.KindOf(err), tc.kind)
		}
		if strings.Contains(err.Error(), "alice") {
			t.Errorf("fail(%v) leaks a value: %v", tc.err, err)
		}
	}
	if !errors.Is(s.fail("op", sql.ErrNoRows), fault.ErrNotFound) {
		t.Error("no rows must map to fault.ErrNotFound")
	}
	if err := s.fail("op", &pgconn.PgError{Code: "42P01", Message: `relation "users" does not exist`}); !strings.Contains(err.Error(), "does not exist") {
		t.Error("schema errors keep their message")
	}
}
