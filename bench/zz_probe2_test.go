package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
)

func TestProbeCheapHash(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Dev = true
	cfg.Password.HashMemoryKiB = 8
	cfg.Password.HashTime = 1
	cfg.Finalize()
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard})
	if err != nil { t.Fatal(err) }
	defer a.Close()
	accts := createAccounts(t, a, 8)
	warmUp(t, a.Handler, accts)
	var lat []time.Duration
	c0 := cpuNow()
	s0 := time.Now()
	for i := range 1500 {
		s := time.Now()
		c, _ := signIn(a.Handler, accts[i%8], workerAddr(i))
		lat = append(lat, time.Since(s))
		if c != 200 { t.Fatal(c) }
	}
	wall := time.Since(s0)
	t.Logf("cheap-hash seq signin median %v p99 %v; cpu/op %v wall/op %v", median(lat), percentile(lat, 99), (cpuNow()-c0)/1500, wall/1500)
	ctx := context.Background()
	var st []time.Duration
	for range 50 {
		s := time.Now()
		if err := a.Store.ClearSigninFailures(ctx, "nonexistent"); err != nil { }
		st = append(st, time.Since(s))
	}
	t.Logf("one UPDATE commit median %v", median(st))
}
