package vault

import (
	"context"
	"sync"
	"time"
)

// StoredValue is one sealed value Rampart stores: its row key and
// ciphertext.
type StoredValue struct {
	Row        string
	Ciphertext []byte
}

// RewrapSource is one column of Rampart-owned ciphertexts the background
// re-wrap moves to the current key version (and from v1 to v2).
type RewrapSource struct {
	Name string // e.g. "users.totp_secret"
	// AD is the associated data the value at row is bound to.
	AD func(row string) AD
	// List pages through the column by row key.
	List func(ctx context.Context, after string, limit int) ([]StoredValue, error)
	// Replace swaps old for new only if the row still holds old.
	Replace func(ctx context.Context, row string, old, new []byte) (bool, error)
}

// RewrapProgress is the outcome of the last pass over one source: how many
// values it saw, how many were already current, how many it moved, how many
// failed to open (those stay as they were and are counted, never dropped).
type RewrapProgress struct {
	Source    string    `json:"source"`
	Scanned   int       `json:"scanned"`
	Current   int       `json:"current"`
	Rewrapped int       `json:"rewrapped"`
	Failed    int       `json:"failed"`
	Running   bool      `json:"running"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Rewrapper runs re-wrap passes over sources and keeps their progress.
type Rewrapper struct {
	vault   *Vault
	open    Sealer // opens v1 and v2 (a MigratingSealer)
	sources []RewrapSource
	now     func() time.Time

	mu       sync.Mutex
	progress map[string]RewrapProgress
	run      sync.Mutex
}

// NewRewrapper returns a re-wrapper that opens with open (so v1 values can
// be read) and seals through v.
func NewRewrapper(v *Vault, open Sealer, now func() time.Time, sources ...RewrapSource) *Rewrapper {
	if now == nil {
		now = time.Now
	}
	return &Rewrapper{vault: v, open: open, sources: sources, now: now, progress: map[string]RewrapProgress{}}
}

// Progress returns the state of every source, in source order.
func (r *Rewrapper) Progress() []RewrapProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RewrapProgress, 0, len(r.sources))
	for _, s := range r.sources {
		p, ok := r.progress[s.Name]
		if !ok {
			p = RewrapProgress{Source: s.Name}
		}
		out = append(out, p)
	}
	return out
}

func (r *Rewrapper) set(p RewrapProgress) {
	p.UpdatedAt = r.now().UTC()
	r.mu.Lock()
	r.progress[p.Source] = p
	r.mu.Unlock()
}

// Run makes one pass over every source; progress is visible while it runs.
// One pass at a time; a second caller waits for the first.
func (r *Rewrapper) Run(ctx context.Context) ([]RewrapProgress, error) {
	r.run.Lock()
	defer r.run.Unlock()
	for _, src := range r.sources {
		if err := r.runSource(ctx, src); err != nil {
			return r.Progress(), err
		}
	}
	return r.Progress(), nil
}

func (r *Rewrapper) runSource(ctx context.Context, src RewrapSource) error {
	p := RewrapProgress{Source: src.Name, Running: true}
	r.set(p)
	defer func() { p.Running = false; r.set(p) }()
	after := ""
	for {
		page, err := src.List(ctx, after, 200)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, sv := range page {
			after = sv.Row
			p.Scanned++
			ad := src.AD(sv.Row)
			format, version, err := CiphertextVersion(sv.Ciphertext)
			if err != nil {
				p.Failed++
				continue
			}
			if format == formatV2 {
				cur, _, err := r.vault.CurrentVersion(ctx, ad.Workspace)
				if err != nil {
					return err
				}
				if version == cur {
					p.Current++
					continue
				}
			}
			pt, err := r.open.Open(ctx, sv.Ciphertext, ad)
			if err != nil {
				p.Failed++
				continue
			}
			nc, err := r.vault.Seal(ctx, pt, ad)
			clear(pt)
			if err != nil {
				return err
			}
			ok, err := src.Replace(ctx, sv.Row, sv.Ciphertext, nc)
			if err != nil {
				return err
			}
			if ok {
				p.Rewrapped++
			} else {
				p.Current++ // changed under us: written fresh, so current
			}
		}
		r.set(p)
	}
}
