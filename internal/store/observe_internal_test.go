package store

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// Statement helpers running inside an operation that is already timed
// (a read's querier, a transaction) must not report a second time.
func TestObserveNestedStatementsOnce(t *testing.T) {
	ctx := context.Background()
	var ops []string
	s, err := Open(ctx, Options{DSN: t.TempDir() + "/observe.db", Observe: func(op string, _ time.Duration, _ error) {
		ops = append(ops, op)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name string
		run  func() error
		want []string
	}{
		{"exists inside a read", func() error {
			return s.readGlobal(ctx, "outer read", func(q querier) error {
				_, err := s.exists(ctx, q, "inner exists", "SELECT 1")
				return err
			})
		}, []string{"outer read"}},
		{"exec and exists inside a transaction", func() error {
			return s.withTx(ctx, "outer tx", func(tx *sql.Tx) error {
				if _, err := s.exec(ctx, tx, "inner exec", "CREATE TABLE observe_probe (x INTEGER)"); err != nil {
					return err
				}
				_, err := s.exists(ctx, tx, "inner exists", "SELECT 1")
				return err
			})
		}, []string{"outer tx"}},
		{"exists on its own", func() error {
			_, err := s.exists(ctx, s.rdb, "alone", "SELECT 1")
			return err
		}, []string{"alone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops = nil
			if err := tt.run(); err != nil {
				t.Fatal(err)
			}
			if len(ops) != len(tt.want) || (len(ops) > 0 && ops[0] != tt.want[0]) {
				t.Errorf("observed %v, want %v", ops, tt.want)
			}
		})
	}
}
