package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"sync"
	"time"
)

// TicketKeys rotates the TLS session-ticket keys of a listener. Go's
// default is one key for the life of the process, so a ticket stolen today
// (or the key, from a memory dump) decrypts the resumption secrets of every
// session since start: rotating bounds that window, which is what keeps
// TLS 1.2 resumption forward secret in practice. The previous key is kept
// for one more period so sessions resumed across a rotation still work.
//
// The keys are random per process. On a cluster each node has its own, so a
// client that lands on another node does a full handshake: correct, only a
// little slower.
type TicketKeys struct {
	rand   io.Reader
	now    func() time.Time
	period time.Duration

	mu      sync.Mutex
	configs []*tls.Config
	keys    [][32]byte // newest first; at most two
	rotated time.Time
}

// NewTicketKeys creates the first key at once; Rand and now are injected
// for tests.
func NewTicketKeys(period time.Duration, rand io.Reader, now func() time.Time) (*TicketKeys, error) {
	if period <= 0 {
		period = 24 * time.Hour
	}
	k := &TicketKeys{rand: rand, now: now, period: period}
	if err := k.Rotate(); err != nil {
		return nil, err
	}
	return k, nil
}

// Attach makes cfg use the rotating keys from now on.
func (k *TicketKeys) Attach(cfg *tls.Config) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.configs = append(k.configs, cfg)
	cfg.SetSessionTicketKeys(k.keys)
}

// Rotate makes a fresh key the one that encrypts new tickets and keeps the
// previous one for decryption only.
func (k *TicketKeys) Rotate() error {
	var nk [32]byte
	if _, err := io.ReadFull(k.rand, nk[:]); err != nil {
		return fmt.Errorf("session ticket key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := [][32]byte{nk}
	if len(k.keys) > 0 {
		keys = append(keys, k.keys[0])
	}
	k.keys = keys
	k.rotated = k.now()
	for _, c := range k.configs {
		c.SetSessionTicketKeys(keys)
	}
	return nil
}

// Rotated is when the current key was made (for the TLS-1 check).
func (k *TicketKeys) Rotated() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rotated
}

// Period is the rotation interval.
func (k *TicketKeys) Period() time.Duration { return k.period }

// Run rotates every period until ctx ends. A failed rotation keeps the
// current keys (the listener goes on working) and reports through onErr.
func (k *TicketKeys) Run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(k.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Rotate(); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
