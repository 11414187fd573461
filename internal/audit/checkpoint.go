package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/fault"
)

// publishTimeout bounds one Publish call: a slow witness delays only the
// next checkpoint round, never Record.
const publishTimeout = 10 * time.Second

// VerifierKey is the note verifier key of the checkpoints
// ("<origin>+<hash>+<key>"); publish it so witnesses and auditors can check
// checkpoints without trusting the server.
func (m *MerkleLog) VerifierKey() string { return m.vkey }

// Latest returns the newest stored checkpoint (fault.NotFound when none).
func (m *MerkleLog) Latest(ctx context.Context) (*Checkpoint, error) {
	return m.d.Store.LatestCheckpoint(ctx)
}

// CheckpointNow signs and stores a checkpoint of the current tree if it grew
// since the last one (otherwise returns the last one), then publishes it to
// the witnesses; a witness that fails is retried by the background loop.
func (m *MerkleLog) CheckpointNow(ctx context.Context) (*Checkpoint, error) {
	cp, err := m.checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	m.publish(ctx, cp)
	return cp, nil
}

// checkpointLoop signs checkpoints on a timer or when enough events passed
// (kick), and retries witnesses that missed the latest one.
func (m *MerkleLog) checkpointLoop(ctx context.Context) {
	defer close(m.ckptDone)
	t := time.NewTicker(m.cfg.CheckpointEvery)
	defer t.Stop()
	round := func(ctx context.Context) {
		cp, err := m.checkpoint(ctx)
		if err != nil {
			if !fault.Is(err, fault.NotFound) { // empty log: nothing to sign
				m.log.Error("audit checkpoint failed", "error", err)
			}
			return
		}
		m.publish(ctx, cp)
	}
	for {
		select {
		case <-t.C:
		case <-m.kick:
		case <-m.stop:
			// Seal what the final flush committed.
			<-m.seqDone
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			round(fctx)
			cancel()
			return
		case <-ctx.Done():
			return
		}
		round(ctx)
	}
}

// checkpoint signs the current tree unless the latest checkpoint covers it.
func (m *MerkleLog) checkpoint(ctx context.Context) (*Checkpoint, error) {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	if m.latest == nil {
		cp, err := m.d.Store.LatestCheckpoint(ctx)
		switch {
		case err == nil:
			m.latest = cp
		case !fault.Is(err, fault.NotFound):
			return nil, err
		}
	}
	size, err := m.d.Store.AuditSize(ctx)
	if err != nil {
		return nil, err
	}
	if m.latest != nil && size <= m.latest.Size {
		return m.latest, nil
	}
	if size == 0 {
		return nil, fault.NotFoundf("audit_empty", "the audit log is empty")
	}
	root, err := tlog.TreeHash(size, storeHashes{ctx, m.d.Store})
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: checkpointBody(m.cfg.Origin, size, root)}, m.signer)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "internal", "cannot sign the checkpoint", err)
	}
	cp := &Checkpoint{Size: size, Root: root, Note: msg, CreatedAt: m.now().UTC()}
	if err := m.d.Store.SaveCheckpoint(ctx, *cp); err != nil {
		return nil, err
	}
	m.latest = cp
	return cp, nil
}

// checkpointBody is the C2SP tlog-checkpoint body: origin, decimal size and
// base64 root, each on its own line.
func checkpointBody(origin string, size int64, root tlog.Hash) string {
	return origin + "\n" + strconv.FormatInt(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
}

// publish sends cp to every witness that has not accepted a checkpoint this
// large yet. Failures are logged and counted; the next round retries.
func (m *MerkleLog) publish(ctx context.Context, cp *Checkpoint) {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	for i, w := range m.d.Witnesses {
		if m.acked[i] >= cp.Size {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err := w.Publish(pctx, bytes.Clone(cp.Note))
		cancel()
		if err != nil {
			m.stats.witnessFailures.Add(1)
			m.log.Warn("audit checkpoint not published to witness", "witness", i, "size", cp.Size, "error", err)
			continue
		}
		m.acked[i] = cp.Size
	}
}

// OpenCheckpoint verifies a signed checkpoint note against verifierKey and
// parses its body. Any failure (bad signature, other key, malformed body) is
// fault.Invalid "checkpoint_invalid".
func OpenCheckpoint(msg []byte, verifierKey string) (Checkpoint, error) {
	bad := func(why string) (Checkpoint, error) {
		return Checkpoint{}, fault.New(fault.Invalid, "checkpoint_invalid", "checkpoint "+why)
	}
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return bad("verifier key is malformed")
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return bad("signature does not verify")
	}
	origin, size, root, ok := parseCheckpointBody(n.Text)
	if !ok || origin != v.Name() {
		return bad("body is malformed")
	}
	return Checkpoint{Size: size, Root: root, Note: bytes.Clone(msg)}, nil
}

// parseCheckpointBody reads the first three lines of a checkpoint body.
// C2SP allows extension lines after them; this log writes none, but a
// witness may cosign, so they are ignored rather than refused.
func parseCheckpointBody(text string) (origin string, size int64, root tlog.Hash, ok bool) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return "", 0, root, false
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, false
	}
	// The decoder skips '\r' and '\n' even in strict mode, so compare the
	// re-encoding too: a body has exactly one accepted spelling.
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != lines[2] {
		return "", 0, root, false
	}
	copy(root[:], raw)
	return lines[0], size, root, true
}
