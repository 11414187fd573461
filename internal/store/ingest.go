package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/privacy/ingest"
)

var _ ingest.Store = (*Store)(nil)

// Event ingestion (APP-9). Workspace methods run bound to their workspace
// (row-level security on PostgreSQL). Two run with the global scope:
// PublishableKeyByID (the key text carries only its id) and
// DeleteExpiredEvents (the retention sweep crosses workspaces).

const ingestKeyColumns = `id, workspace_id, name, class, secret_hash, created_by, created_at, revoked_at`

func scanIngestKey(r rowScanner) (ingest.PublishableKey, error) {
	var k ingest.PublishableKey
	var created int64
	var revoked sql.NullInt64
	if err := r.Scan(&k.ID, &k.Workspace, &k.Name, &k.Class, &k.SecretHash, &k.CreatedBy, &created, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt, k.RevokedAt = timeOf(created), fromMicros(revoked)
	return k, nil
}

// CreatePublishableKey stores a key (hash only).
func (s *Store) CreatePublishableKey(ctx context.Context, k *ingest.PublishableKey) error {
	if k.ID == "" || len(k.SecretHash) == 0 {
		return fault.Invalidf("invalid_publishable_key", "a publishable key needs an id and a secret hash")
	}
	return s.withWorkspaceTx(ctx, "create publishable key", k.Workspace, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create publishable key", `INSERT INTO ingest_keys (`+ingestKeyColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, k.ID, k.Workspace, k.Name, k.Class, k.SecretHash, k.CreatedBy,
			k.CreatedAt.UnixMicro(), micros(k.RevokedAt))
		return err
	})
}

// PublishableKeyByID finds a key across workspaces (global scope).
func (s *Store) PublishableKeyByID(ctx context.Context, id string) (*ingest.PublishableKey, error) {
	var k ingest.PublishableKey
	err := s.readGlobal(ctx, "publishable key by id", func(q querier) (err error) {
		k, err = scanIngestKey(q.QueryRowContext(ctx, s.q(`SELECT `+ingestKeyColumns+` FROM ingest_keys WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// PublishableKeys lists ws's keys, revoked ones included, newest first.
func (s *Store) PublishableKeys(ctx context.Context, ws string) ([]ingest.PublishableKey, error) {
	var out []ingest.PublishableKey
	err := s.readWorkspace(ctx, "list publishable keys", ws, func(q querier) (err error) {
		out, err = queryAll(ctx, s, q, scanIngestKey, `SELECT `+ingestKeyColumns+` FROM ingest_keys
			WHERE workspace_id = ? ORDER BY created_at DESC, id`, ws)
		return err
	})
	return out, err
}

// RevokePublishableKey revokes a key; revoking a revoked key is a no-op.
func (s *Store) RevokePublishableKey(ctx context.Context, ws, id string, at time.Time) error {
	return s.revoke(ctx, "revoke publishable key", "ingest_keys", ws, id, at)
}

// AddOptOut records an opt-out; recording it twice keeps the first time.
func (s *Store) AddOptOut(ctx context.Context, ws string, hash []byte, at time.Time) error {
	return s.withWorkspaceTx(ctx, "add opt-out", ws, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "add opt-out", `INSERT INTO ingest_opt_outs (workspace_id, subject_hash, created_at)
			VALUES (?, ?, ?) ON CONFLICT (workspace_id, subject_hash) DO NOTHING`, ws, hash, at.UnixMicro())
		return err
	})
}

// RemoveOptOut deletes an opt-out; fault.NotFound when there is none.
func (s *Store) RemoveOptOut(ctx context.Context, ws string, hash []byte) error {
	return s.withWorkspaceTx(ctx, "remove opt-out", ws, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "remove opt-out", `DELETE FROM ingest_opt_outs WHERE workspace_id = ? AND subject_hash = ?`, ws, hash)
		if err == nil && n == 0 {
			err = fault.ErrNotFound
		}
		return err
	})
}

// optOutChunk bounds the IN list of one query (SQLite's parameter limit is
// far above, but one plan per size is enough).
const optOutChunk = 200

// OptedOut returns which of hashes are opted out in ws, keyed by hex.
func (s *Store) OptedOut(ctx context.Context, ws string, hashes [][]byte) (map[string]bool, error) {
	found := map[string]bool{}
	if len(hashes) == 0 {
		return found, nil
	}
	err := s.readWorkspace(ctx, "check opt-outs", ws, func(q querier) error {
		for start := 0; start < len(hashes); start += optOutChunk {
			chunk := hashes[start:min(start+optOutChunk, len(hashes))]
			args := make([]any, 0, len(chunk)+1)
			args = append(args, ws)
			for _, h := range chunk {
				args = append(args, h)
			}
			rows, err := q.QueryContext(ctx, s.q(`SELECT subject_hash FROM ingest_opt_outs WHERE workspace_id = ? AND subject_hash IN (`+
				strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)`), args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var h []byte
				if err := rows.Scan(&h); err != nil {
					rows.Close()
					return err
				}
				found[hex.EncodeToString(h)] = true
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return found, err
}

// insertChunk rows go into one INSERT statement.
const insertChunk = 100

// InsertEvents stores a batch in one transaction: all of it or none.
func (s *Store) InsertEvents(ctx context.Context, ws string, events []ingest.Stored) error {
	for _, e := range events {
		if e.Workspace != ws || e.ID == "" || len(e.Payload) == 0 {
			return fault.Invalidf("invalid_event", "an event needs an id, a payload and the batch's workspace")
		}
	}
	return s.withWorkspaceTx(ctx, "insert events", ws, func(tx *sql.Tx) error {
		for start := 0; start < len(events); start += insertChunk {
			chunk := events[start:min(start+insertChunk, len(events))]
			args := make([]any, 0, len(chunk)*6)
			for _, e := range chunk {
				args = append(args, e.ID, ws, e.ReceivedAt.UnixMicro(), e.Class, e.ExpiresAt.UnixMicro(), e.Payload)
			}
			if _, err := s.exec(ctx, tx, "insert events", `INSERT INTO ingest_events
				(id, workspace_id, received_at, class, expires_at, payload) VALUES `+
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?),", len(chunk)), ","), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

func scanStoredEvent(r rowScanner) (ingest.Stored, error) {
	var e ingest.Stored
	var received, expires int64
	if err := r.Scan(&e.ID, &e.Workspace, &received, &e.Class, &expires, &e.Payload); err != nil {
		return e, err
	}
	e.ReceivedAt, e.ExpiresAt = timeOf(received), timeOf(expires)
	return e, nil
}

// Events returns up to limit of ws's events with ids after the cursor
// ("" = from the first), oldest first.
func (s *Store) Events(ctx context.Context, ws, after string, limit int) ([]ingest.Stored, error) {
	var out []ingest.Stored
	err := s.readWorkspace(ctx, "list events", ws, func(q querier) (err error) {
		out, err = queryAll(ctx, s, q, scanStoredEvent, `SELECT id, workspace_id, received_at, class, expires_at, payload
			FROM ingest_events WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?`, ws, after, limit)
		return err
	})
	return out, err
}

// RawEventPayload returns one event's stored payload bytes.
func (s *Store) RawEventPayload(ctx context.Context, ws, id string) ([]byte, error) {
	var p []byte
	err := s.readWorkspace(ctx, "raw event payload", ws, func(q querier) error {
		return q.QueryRowContext(ctx, s.q(`SELECT payload FROM ingest_events WHERE workspace_id = ? AND id = ?`), ws, id).Scan(&p)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DeleteExpiredEvents deletes up to limit expired events across
// workspaces (global scope), oldest expiry first.
func (s *Store) DeleteExpiredEvents(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int64
	err := s.withGlobalTx(ctx, "sweep events", func(tx *sql.Tx) (err error) {
		n, err = s.exec(ctx, tx, "sweep events", `DELETE FROM ingest_events WHERE id IN
			(SELECT id FROM ingest_events WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`, now.UnixMicro(), limit)
		return err
	})
	return int(n), err
}
