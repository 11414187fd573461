package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/web"
)

const auditUsage = `usage: rampart audit verify [--witness FILE]... [--json] [flags]
       rampart audit export [--workspace ID] [--since T] [--until T] [--action A] [flags]
`

// exportPage is how many events `audit export` reads at a time.
const exportPage = 1000

// errVerifyFailed makes the exit code 1 after the report was printed.
var errVerifyFailed = errors.New("the audit log failed verification")

// auditCmd runs `rampart audit verify|export`.
func auditCmd(ctx context.Context, args []string, pio IO) error {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return auditVerify(ctx, args[1:], pio)
		case "export":
			return auditExport(ctx, args[1:], pio)
		}
	}
	fmt.Fprint(pio.Stderr, auditUsage)
	return errUsage
}

// verifyJSON is the --json report of `audit verify`.
type verifyJSON struct {
	OK          bool             `json:"ok"`
	Size        int64            `json:"size"`
	Checkpoints int              `json:"checkpoints"`
	Witnessed   int              `json:"witnessed"`
	DurationMS  int64            `json:"duration_ms"`
	Problems    []problemJSON    `json:"problems"`
	Counts      map[string]int64 `json:"counts,omitempty"`
}

type problemJSON struct {
	Kind   string `json:"kind"`
	Index  int64  `json:"index"`
	Detail string `json:"detail"`
}

// auditVerify recomputes the whole log from the database (AUD-2, AUD-3)
// against its own checkpoints and every witnessed one, prints the report,
// and records the run in the log itself, so a failed verification is in
// the trail and reaches the alerting sinks.
func auditVerify(ctx context.Context, args []string, pio IO) error {
	var (
		witnesses listFlag
		asJSON    bool
	)
	a, err := openApp(ctx, "audit verify", args, pio, func(fs *flag.FlagSet) {
		fs.Var(&witnesses, "witness", "a file of witnessed checkpoint notes to check the log against (repeatable)")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	rep, recErr, err := a.VerifyAudit(ctx, witnesses)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	// The result is shown even when its record fails: it matters more.
	if asJSON {
		err = writeVerifyJSON(pio.Stdout, rep)
	} else {
		err = writeVerifyText(pio.Stdout, rep)
	}
	if err != nil {
		return err
	}
	if recErr != nil {
		recErr = fmt.Errorf("the verification could not be recorded in the audit log: %w", recErr)
	}
	if !rep.OK() {
		return errors.Join(errVerifyFailed, recErr)
	}
	return recErr
}

func writeVerifyJSON(w io.Writer, rep audit.Report) error {
	out := verifyJSON{OK: rep.OK(), Size: rep.Size, Checkpoints: rep.Checkpoints, Witnessed: rep.Witnessed,
		DurationMS: rep.Duration.Milliseconds(), Problems: []problemJSON{}, Counts: rep.Counts}
	for _, p := range rep.Problems {
		out.Problems = append(out.Problems, problemJSON{Kind: p.Kind, Index: p.Index, Detail: p.Detail})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeVerifyText(w io.Writer, rep audit.Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "audit log: %d records; %d checkpoints and %d witnessed notes checked in %s\n",
		rep.Size, rep.Checkpoints, rep.Witnessed, rep.Duration.Round(time.Millisecond))
	if rep.OK() {
		fmt.Fprintln(bw, "OK: every record, hash and checkpoint verifies")
		return bw.Flush()
	}
	fmt.Fprintf(bw, "FAILED: %d problems\n", rep.Total())
	for _, p := range rep.Problems {
		fmt.Fprintf(bw, "  %-18s index %-8d %s\n", p.Kind, p.Index, oneLineLong(p.Detail))
	}
	if len(rep.Counts) > 0 {
		kinds := make([]string, 0, len(rep.Counts))
		for k := range rep.Counts {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			if int64(countKind(rep.Problems, k)) < rep.Counts[k] {
				fmt.Fprintf(bw, "  (%d %s findings in all; the first %d are listed)\n", rep.Counts[k], k, countKind(rep.Problems, k))
			}
		}
	}
	return bw.Flush()
}

func countKind(ps []audit.Problem, kind string) int {
	n := 0
	for _, p := range ps {
		if p.Kind == kind {
			n++
		}
	}
	return n
}

// oneLineLong keeps a detail on one line (it is ours, but it quotes stored
// data, which a tamperer chose).
func oneLineLong(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// auditExport writes the matching events as JSON Lines (the API's event
// shape). It is an operator tool reading every workspace, so the export is
// recorded first: no record, no export.
func auditExport(ctx context.Context, args []string, pio IO) error {
	var ws, since, until, action string
	cfg, err := loadConfig("audit export", args, pio, func(fs *flag.FlagSet) {
		fs.StringVar(&ws, "workspace", "", "only this workspace's events")
		fs.StringVar(&since, "since", "", "events at or after this RFC 3339 time")
		fs.StringVar(&until, "until", "", "events before this RFC 3339 time")
		fs.StringVar(&action, "action", "", `only this action, or actions starting with it when it ends in "."`)
	})
	if err != nil {
		return err
	}
	q := audit.Query{Workspace: ws, Action: action, AfterIndex: -1, Limit: exportPage}
	for _, f := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", since, &q.Since}, {"until", until, &q.Until}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.v)
		if err != nil {
			fmt.Fprintf(pio.Stderr, "rampart audit export: --%s must be an RFC 3339 time, like 2026-01-31T00:00:00Z\n", f.name)
			return errUsage
		}
		*f.dst = t.UTC()
	}
	a, err := app.New(ctx, cfg, app.Options{Stderr: pio.Stderr, Environ: pio.Environ})
	if err != nil {
		return err
	}
	defer a.Close()
	details := map[string]string{}
	for k, v := range map[string]string{"workspace": ws, "since": since, "until": until, "action": action} {
		if v != "" {
			details[k] = v
		}
	}
	if err := a.Audit.Record(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: "cli", Workspace: ws, Action: "audit.export", Target: "audit",
		Outcome: audit.Success, Details: details}); err != nil {
		return fmt.Errorf("audit export not recorded, so not run: %w", err)
	}
	// The export covers the log as it is now (its own record included);
	// events arriving meanwhile wait for the next export.
	size, err := a.Store.AuditSize(ctx)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(pio.Stdout)
	enc := json.NewEncoder(bw)
	for {
		events, err := a.AuditLog.Search(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range events {
			if e.ID >= size {
				return bw.Flush()
			}
			if err := enc.Encode(web.ToAuditEventJSON(e)); err != nil {
				return err
			}
		}
		if len(events) < q.Limit {
			return bw.Flush()
		}
		q.AfterIndex = events[len(events)-1].ID
	}
}
