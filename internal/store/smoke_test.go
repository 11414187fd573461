package store_test

import (
	"context"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestSmoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, p, err := s.MigrationStatus(context.Background())
		t.Log(s.Engine(), a, p, err)
	})
}
