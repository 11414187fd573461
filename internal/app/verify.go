package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/audit/sink"
)

// lastVerify is the stored result of the latest full verification, read by
// the AUD-3 live check.
type lastVerify struct {
	OK       bool      `json:"ok"`
	Size     int64     `json:"size"`
	At       time.Time `json:"at"`
	Problems int64     `json:"problems"`
}

// VerifyAudit recomputes the whole audit log against its stored hashes,
// signed checkpoints and every witnessed checkpoint (the configured witness
// file and extraWitness files), records the result ("audit.verify", and
// "audit.verify_failed" when it fails, which raises an alert) and keeps it
// for the AUD-3 check. err means the log could not be read; recErr that the
// result could not be recorded.
func (a *App) VerifyAudit(ctx context.Context, extraWitness []string) (rep audit.Report, recErr, err error) {
	notes, err := witnessNotes(a.Config.Audit.WitnessFile, extraWitness)
	if err != nil {
		return rep, nil, err
	}
	rep, err = audit.Verify(ctx, a.Store, a.AuditLog.VerifierKey(), notes)
	if err != nil {
		_ = a.Audit.Record(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: "rampart", Action: "audit.verify", Target: "audit",
			Outcome: audit.Failure, Details: map[string]string{"error": "the log could not be read"}})
		return rep, nil, err
	}
	recErr = recordVerify(ctx, a.Audit, rep)
	res, _ := json.Marshal(lastVerify{OK: rep.OK(), Size: rep.Size, At: a.now().UTC(), Problems: rep.Total()})
	if err := a.Store.SetMeta(ctx, "audit_last_verify", string(res)); err != nil {
		recErr = errors.Join(recErr, fmt.Errorf("storing the result: %w", err))
	}
	return rep, recErr, nil
}

// runVerification verifies the whole log once a day on the node that holds
// the "audit-verify" leadership (the first run an hour after start).
func (a *App) runVerification(ctx context.Context) {
	next := time.NewTimer(time.Hour)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		}
		next.Reset(24 * time.Hour)
		release, ok, err := a.Store.TryLeader(ctx, "audit-verify")
		if err != nil || !ok {
			continue
		}
		rep, recErr, err := a.VerifyAudit(ctx, nil)
		release()
		switch {
		case err != nil:
			a.Log.Error("audit verification could not read the log", "err", err)
		case !rep.OK():
			a.Log.Error("AUDIT LOG VERIFICATION FAILED", "problems", rep.Total(), "size", rep.Size)
		default:
			a.Log.Info("audit log verified", "size", rep.Size, "checkpoints", rep.Checkpoints, "duration", rep.Duration.String())
		}
		if recErr != nil {
			a.Log.Error("audit verification not recorded", "err", recErr)
		}
	}
}

// witnessNotes reads the configured witness file (absent until the first
// checkpoint is witnessed, which is not a problem) and every --witness file
// (which must be readable: the operator named it).
func witnessNotes(configured string, extra []string) ([][]byte, error) {
	var notes [][]byte
	if configured != "" {
		n, err := sink.ReadWitnessFile(configured)
		switch {
		case err == nil:
			notes = append(notes, n...)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("witness file %s: %w", configured, err)
		}
	}
	for _, p := range extra {
		n, err := sink.ReadWitnessFile(p)
		if err != nil {
			return nil, fmt.Errorf("witness file %s: %w", p, err)
		}
		notes = append(notes, n...)
	}
	return notes, nil
}

// recordVerify writes "audit.verify" and, when the log did not verify,
// "audit.verify_failed" (the event alerts key on).
func recordVerify(ctx context.Context, rec audit.Recorder, rep audit.Report) error {
	details := map[string]string{
		"size":     strconv.FormatInt(rep.Size, 10),
		"problems": strconv.FormatInt(rep.Total(), 10),
		"duration": rep.Duration.Round(time.Millisecond).String(),
	}
	outcome := audit.Success
	if !rep.OK() {
		outcome = audit.Failure
	}
	err := rec.Record(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: "cli", Action: "audit.verify", Target: "audit", Outcome: outcome, Details: details})
	if rep.OK() {
		return err
	}
	var kinds []string
	for _, p := range rep.Problems {
		if !slices.Contains(kinds, p.Kind) {
			kinds = append(kinds, p.Kind)
		}
	}
	first := rep.Problems[0]
	failed := map[string]string{"size": details["size"], "problems": details["problems"], "kinds": strings.Join(kinds, ","),
		"first_kind": first.Kind, "first_index": strconv.FormatInt(first.Index, 10)}
	return errors.Join(err, rec.Record(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: "cli", Action: "audit.verify_failed", Target: "audit",
		Outcome: audit.Failure, Details: failed}))
}
