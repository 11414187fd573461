package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/store"
)

// exportedEvent is one line of `audit export`.
type exportedEvent struct {
	ID        int64             `json:"id"`
	ActorType string            `json:"actor_type"`
	ActorID   string            `json:"actor_id"`
	Workspace string            `json:"workspace"`
	Action    string            `json:"action"`
	Outcome   string            `json:"outcome"`
	Details   map[string]string `json:"details"`
}

// exportLines parses JSON Lines strictly: every line one event object.
func exportLines(t *testing.T, out string) []exportedEvent {
	t.Helper()
	var evs []exportedEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e exportedEvent
		var rest map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rest); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %q", len(evs)+1, err, sc.Text())
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" || e.Outcome == "" {
			t.Fatalf("line %d is not an event: %v: %q", len(evs)+1, err, sc.Text())
		}
		if len(evs) > 0 && e.ID <= evs[len(evs)-1].ID {
			t.Fatalf("line %d: id %d after %d", len(evs)+1, e.ID, evs[len(evs)-1].ID)
		}
		evs = append(evs, e)
	}
	return evs
}

// tamper rewrites one audit record behind Rampart's back, the way someone
// with write access to the database file would: drop the append-only
// trigger, then UPDATE the row.
func tamper(t *testing.T, dir string, index int64) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Finalize()
	s, err := store.Open(context.Background(), store.Options{SQLitePath: cfg.SQLitePath()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.DB().ExecContext(ctx, `DROP TRIGGER audit_log_no_update`); err != nil {
		t.Fatalf("drop trigger: %v", err)
	}
	res, err := s.DB().ExecContext(ctx, `UPDATE audit_log SET target = 'rewritten' WHERE idx = ?`, index)
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tamper changed %d rows", n)
	}
}

func TestAuditVerifyAndExport(t *testing.T) {
	dir := t.TempDir()
	common := []string{"--dev", "--data-dir", dir}
	runAudit := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, cheap, append(args, common...)...)
	}

	// A fresh log verifies, twice (the second run checks the first run's
	// checkpoints and the witness file it left).
	for i := range 2 {
		code, out, errs := runAudit("audit", "verify")
		if code != 0 || !strings.Contains(out, "OK:") {
			t.Fatalf("verify %d of a fresh log: exit %d\nstdout: %s\nstderr: %s", i, code, out, errs)
		}
	}
	code, out, errs := runAudit("audit", "verify", "--json")
	var rep struct {
		OK          bool  `json:"ok"`
		Size        int64 `json:"size"`
		Checkpoints int   `json:"checkpoints"`
		Witnessed   int   `json:"witnessed"`
		Problems    []struct {
			Kind   string `json:"kind"`
			Index  int64  `json:"index"`
			Detail string `json:"detail"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.OK || rep.Size < 3 || rep.Checkpoints < 1 || rep.Witnessed < 1 || len(rep.Problems) != 0 {
		t.Fatalf("verify --json: exit %d, %+v, %v\nstdout: %s\nstderr: %s", code, rep, err, out, errs)
	}
	if code, _, errs := runAudit("audit", "verify", "--witness", filepath.Join(dir, "no-such-file")); code != 1 || !strings.Contains(errs, "no-such-file") {
		t.Fatalf("verify with a missing --witness file: exit %d, stderr %q", code, errs)
	}

	// One rewritten record: exit 1, and the report names it.
	tamper(t, dir, 1)
	code, out, errs = runAudit("audit", "verify")
	if code != 1 || !strings.Contains(errs, "failed verification") {
		t.Fatalf("verify of a tampered log: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "FAILED") || !regexpLine(out, "modified", "index 1 ") {
		t.Fatalf("the report does not name record 1 as modified:\n%s", out)
	}
	code, out, _ = runAudit("audit", "verify", "--json")
	rep.Problems = nil
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.OK {
		t.Fatalf("verify --json of a tampered log: exit %d, %v: %s", code, err, out)
	}
	if len(rep.Problems) == 0 || rep.Problems[0].Kind != "modified" || rep.Problems[0].Index != 1 {
		t.Fatalf("problems %+v, want modified at index 1 first", rep.Problems)
	}

	// Each run is in the trail; the export prints it as JSON Lines.
	code, out, errs = runAudit("audit", "export", "--action", "audit.verify")
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, errs)
	}
	var ok, failed int
	for _, e := range exportLines(t, out) {
		if e.Action != "audit.verify" || e.ActorType != "system" || e.Details["size"] == "" || e.Details["problems"] == "" || e.Details["duration"] == "" {
			t.Fatalf("exported %+v", e)
		}
		switch {
		case e.Outcome == "success" && e.Details["problems"] == "0":
			ok++
		case e.Outcome == "failure" && e.Details["problems"] != "0":
			failed++
		}
	}
	if ok != 3 || failed != 2 {
		t.Fatalf("exported %d successful and %d failed verifications, want 3 and 2:\n%s", ok, failed, out)
	}
	code, out, _ = runAudit("audit", "export", "--action", "audit.")
	all := exportLines(t, out)
	var sawFailed, sawExport bool
	for _, e := range all {
		if !strings.HasPrefix(e.Action, "audit.") {
			t.Fatalf("prefix filter let through %+v", e)
		}
		sawFailed = sawFailed || (e.Action == "audit.verify_failed" && e.Details["first_kind"] == "modified" && e.Details["first_index"] == "1")
		sawExport = sawExport || e.Action == "audit.export"
	}
	if code != 0 || !sawFailed || !sawExport {
		t.Fatalf("exit %d; audit.verify_failed %v, audit.export %v in\n%s", code, sawFailed, sawExport, out)
	}
	code, out, _ = runAudit("audit", "export", "--workspace", "ws-none", "--since", "2000-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z")
	if evs := exportLines(t, out); code != 0 || len(evs) != 1 || evs[0].Action != "audit.export" || evs[0].Workspace != "ws-none" {
		t.Fatalf("export of one workspace: exit %d: %+v", code, evs)
	}
	everything := exportLines(t, func() string { _, o, _ := runAudit("audit", "export"); return o }())
	if len(everything) < len(all) || everything[0].ID != 0 || everything[0].Action != "audit.log.created" {
		t.Fatalf("full export: %d events, first %+v", len(everything), everything[0])
	}
}

// regexpLine reports whether one line of out holds every part.
func regexpLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

func TestAuditUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no subcommand", []string{"audit"}},
		{"unknown subcommand", []string{"audit", "rewrite"}},
		{"bad flag", []string{"audit", "verify", "--bogus"}},
		{"stray argument", []string{"audit", "verify", "extra"}},
		{"bad time", []string{"audit", "export", "--since", "yesterday", "--data-dir", "unused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, errs := run(t, nil, tc.args...); code != 2 || !strings.Contains(errs, "audit") {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
			}
		})
	}
}
