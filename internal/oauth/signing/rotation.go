package signing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// Maintain is the periodic job, run on every node every ReloadEvery: it
// reloads the key set (so the cluster converges), records the retirement of
// keys a newer key has superseded, deletes keys whose last possible token
// has expired, and creates the next key when the scheduled rotation is due
// (published PublishAhead before it signs). Every step is idempotent and
// guarded in the store, so nodes running it at once do the work once; only
// the node whose write took effect audits it. Errors are alert-worthy: a
// node that cannot reload keeps its last key set and says so.
func (m *Manager) Maintain(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reloadLocked(ctx); err != nil {
		return fmt.Errorf("signing: reload keys: %w", err)
	}
	now := m.d.Now()
	set := m.keys.Load()
	signer := set.signer(now)
	var errs []error
	changed := false

	// A key superseded by a newer active one stops signing the moment the
	// newer one took over; it stays published for the overlap.
	if signer != nil {
		for _, k := range set.list {
			if k == signer || !k.RetiredAt.IsZero() || !k.ActiveFrom.Before(signer.ActiveFrom) {
				continue
			}
			at := signer.ActiveFrom
			ok, err := m.d.Store.RetireSigningKey(ctx, k.ID, at, at.Add(m.overlap()))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			changed = true
			if ok {
				errs = append(errs, m.record(ctx, "keys.retire", k.ID, map[string]string{"reason": "superseded",
					"successor": signer.ID, "delete_after": at.Add(m.overlap()).UTC().Format(time.RFC3339)}))
			}
		}
	}

	// Unpublish keys whose every token has expired.
	for _, k := range set.list {
		if k.DeleteAfter.IsZero() || now.Before(k.DeleteAfter) {
			continue
		}
		ok, err := m.d.Store.DeleteSigningKey(ctx, k.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		changed = true
		if ok {
			errs = append(errs, m.record(ctx, "keys.delete", k.ID, map[string]string{"reason": "last token expired"}))
		}
	}

	// Scheduled rotation.
	switch {
	case signer == nil:
		// No key can sign here. Create one only if no unretired key exists
		// at all; otherwise a key exists that this node cannot open (a
		// broken sealer or root key), and minting keys would hide that.
		epoch := time.Unix(0, 0)
		info, err := m.createLocked(ctx, now, &epoch, "no signing key")
		if err != nil {
			errs = append(errs, err)
		} else if info.ID == "" {
			errs = append(errs, fmt.Errorf("signing: %w: a key is stored but this node cannot use it", ErrNoKey))
		}
		changed = true
	case !m.hasPending(set, now) && !now.Before(signer.ActiveFrom.Add(m.cfg.RotateEvery-m.cfg.PublishAhead)):
		from := signer.ActiveFrom.Add(m.cfg.RotateEvery)
		if soonest := now.Add(m.cfg.PublishAhead); from.Before(soonest) {
			from = soonest // overdue (a node was down): still publish ahead
		}
		if _, err := m.createLocked(ctx, from, &now, "scheduled"); err != nil {
			errs = append(errs, err)
		}
		changed = true
	}
	if changed {
		if err := m.reloadLocked(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// hasPending reports whether an unretired key starts signing after now.
func (m *Manager) hasPending(set *keySet, now time.Time) bool {
	for _, k := range set.list {
		if k.RetiredAt.IsZero() && k.ActiveFrom.After(now) {
			return true
		}
	}
	return false
}

// Rotate creates a new key. Normally it is published now and signs after
// PublishAhead, so verifiers that cache the JWKS see it first; when a key
// is already waiting to sign, that is the rotation in progress and Rotate
// refuses (fault.Conflict "rotation_pending").
//
// immediate is for a suspected compromise: the new key signs at once and
// every key that was signing is retired now. Retired keys stay published
// for the overlap, so tokens they signed keep verifying until they expire;
// to stop them verifying as well, Revoke the old key (`rampart keys rotate
// --immediate --revoke`), which breaks every outstanding token it signed.
// Other nodes sign with the new key after their next reload (ReloadEvery),
// and accept its tokens at once (an unknown kid triggers a reload).
func (m *Manager) Rotate(ctx context.Context, immediate bool) (KeyInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reloadLocked(ctx); err != nil {
		return KeyInfo{}, err
	}
	now := m.d.Now()
	set := m.keys.Load()
	if !immediate {
		for _, k := range set.list {
			if k.RetiredAt.IsZero() && k.ActiveFrom.After(now) {
				return KeyInfo{}, fault.Conflictf("rotation_pending", "key %s is published and starts signing at %s; rotate with --immediate to replace the signing key now",
					k.ID, k.ActiveFrom.UTC().Format(time.RFC3339))
			}
		}
		info, err := m.createLocked(ctx, now.Add(m.cfg.PublishAhead), &now, "manual")
		if err == nil && info.ID == "" {
			err = fault.Conflictf("rotation_pending", "another node started a rotation at the same time")
		}
		if rerr := m.reloadLocked(ctx); err == nil {
			err = rerr
		}
		return info, err
	}
	info, err := m.createLocked(ctx, now, nil, "immediate")
	if err != nil {
		return info, err
	}
	var errs []error
	for _, k := range set.list {
		if k.ID == info.ID || !k.RetiredAt.IsZero() || k.ActiveFrom.After(now) {
			continue
		}
		del := now.Add(m.overlap())
		ok, err := m.d.Store.RetireSigningKey(ctx, k.ID, now, del)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			errs = append(errs, m.record(ctx, "keys.retire", k.ID, map[string]string{"reason": "immediate rotation",
				"successor": info.ID, "delete_after": del.UTC().Format(time.RFC3339)}))
		}
	}
	errs = append(errs, m.reloadLocked(ctx))
	return info, errors.Join(errs...)
}

// Revoke unpublishes key kid at once: tokens it signed stop verifying on
// this node now and on the others at their next reload. If the key could
// still sign, a replacement that signs at once is created first, so
// signing never stops. It is the answer to a leaked private key.
func (m *Manager) Revoke(ctx context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reloadLocked(ctx); err != nil {
		return err
	}
	now := m.d.Now()
	set := m.keys.Load()
	k := set.byID[kid]
	if k == nil {
		return fault.NotFoundf("key_not_found", "no signing key %s", kid)
	}
	if k.RetiredAt.IsZero() || now.Before(k.RetiredAt) {
		// A pending key needs no replacement: the signer keeps signing and
		// Maintain schedules the next rotation.
		if s := set.signer(now); s == nil || s == k {
			if _, err := m.createLocked(ctx, now, nil, "revocation of "+kid); err != nil {
				return err
			}
		}
	}
	retired := k.RetiredAt
	if retired.IsZero() || now.Before(retired) {
		retired = now
	}
	if err := m.d.Store.RevokeSigningKey(ctx, kid, retired, now); err != nil {
		return err
	}
	m.hdrCache.Store(nil)
	err := m.record(ctx, "keys.revoke", kid, map[string]string{"reason": "revoked"})
	return errors.Join(err, m.reloadLocked(ctx))
}
