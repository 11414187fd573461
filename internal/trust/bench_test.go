package trust

import (
	"context"
	"io"
	"testing"
	"time"
)

// benchRegistry registers a trivial check for every software control, so the
// benchmarks measure the registry's own overhead, not the checks.
func benchRegistry(b *testing.B, ttl time.Duration) *Registry {
	reg := NewRegistry(nil, time.Second, ttl)
	for _, d := range Catalog() {
		if d.Attestable {
			continue
		}
		if err := reg.Register(d.ID, func(context.Context) Result {
			return Result{Status: Passing, Evidence: "ok: 3 of 3", Data: map[string]any{"n": 3}}
		}); err != nil {
			b.Fatal(err)
		}
	}
	return reg
}

func BenchmarkRunUncached(b *testing.B) {
	reg := benchRegistry(b, 0)
	ctx := context.Background()
	for b.Loop() {
		reg.Run(ctx)
	}
}

func BenchmarkRunCached(b *testing.B) {
	reg := benchRegistry(b, time.Hour)
	ctx := context.Background()
	reg.Run(ctx)
	b.ResetTimer()
	for b.Loop() {
		reg.Run(ctx)
	}
}

func BenchmarkWriteJSON(b *testing.B) {
	reports := benchRegistry(b, 0).Run(context.Background())
	for b.Loop() {
		if err := WriteJSON(io.Discard, reports); err != nil {
			b.Fatal(err)
		}
	}
}
