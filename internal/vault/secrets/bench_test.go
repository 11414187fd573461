package secrets_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

// BenchmarkGet measures an audited secret read (store read, AES-GCM open,
// one durable audit event) on SQLite, and reports it as a multiple of the
// bare decryption of the same value measured in the same run.
func BenchmarkGet(b *testing.B) {
	st := storetest.Open(b, store.EngineSQLite)
	ring := vault.NewKeyring(rand.Reader)
	if err := ring.Add(1, bytes.Repeat([]byte{7}, 32)); err != nil {
		b.Fatal(err)
	}
	if err := ring.SetPrimary(1); err != nil {
		b.Fatal(err)
	}
	l, err := audit.NewMerkleLog(audit.LogConfig{Origin: "bench/audit"}, audit.LogDeps{
		Store: st, Sealer: ring, IndexKey: bytes.Repeat([]byte{8}, 32), SignerKey: bytes.Repeat([]byte{9}, 32), Now: time.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	l.Start(context.Background())
	defer l.Close()
	sealer := vault.KeyringSealer{Keyring: ring}
	svc := secrets.New(secrets.Deps{Store: st, Sealer: sealer, Audit: l, Rand: rand.Reader})
	ctx := context.Background()
	value := bytes.Repeat([]byte("s"), 64)
	if _, _, err := svc.Put(ctx, op, "", "bench", value, secrets.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	ad := secrets.AD("", "x", 1)
	ct, _ := sealer.Seal(ctx, value, ad)

	start := time.Now()
	const rawN = 20000
	for range rawN {
		if _, err := sealer.Open(ctx, ct, ad); err != nil {
			b.Fatal(err)
		}
	}
	raw := time.Since(start) / rawN

	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.Get(ctx, op, "", "bench", secrets.Selector{}); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(raw), "x-of-raw-open")
}
