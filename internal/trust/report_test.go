package trust

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleReports() []Report {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return []Report{
		{ID: "ENC-6", Family: "ENC", Title: "Passwords hashed with argon2id", Promise: "Passwords are stored only as argon2id hashes; parameters are upgraded on login.",
			Status: Passing, Evidence: "0 of 12 stored password hashes are not argon2id", Data: map[string]any{"total": 12}, CheckedAt: t0.Add(2 * time.Second)},
		{ID: "TLS-4", Family: "TLS", Title: "Clean external TLS scan", Promise: "p", Status: Planned, Evidence: EvidenceNotBuilt, CheckedAt: t0},
		{ID: "ORG-1", Family: "ORG", Title: "Hosting provider certifications", Promise: "p", Status: Attested, Evidence: "attested 2026-03-02: ISO", CheckedAt: t0.AddDate(0, -2, 0)},
	}
}

func TestWriteJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleReports()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, buf.String())
	}
	if got := sortedKeys(doc); !slices.Equal(got, []string{"controls", "generated_at", "summary"}) {
		t.Errorf("top-level keys %v", got)
	}
	if doc["generated_at"] != "2026-05-01T12:00:02Z" {
		t.Errorf("generated_at %v, want the latest checked_at", doc["generated_at"])
	}
	summary, _ := doc["summary"].(map[string]any)
	wantSummary := map[string]any{"passing": 1.0, "failing": 0.0, "planned": 1.0, "attested": 1.0}
	if len(summary) != len(wantSummary) {
		t.Errorf("summary %v, want %v", summary, wantSummary)
	}
	for k, v := range wantSummary {
		if summary[k] != v {
			t.Errorf("summary[%s] = %v, want %v", k, summary[k], v)
		}
	}
	controls, _ := doc["controls"].([]any)
	if len(controls) != 3 {
		t.Fatalf("controls %v", doc["controls"])
	}
	first := controls[0].(map[string]any)
	want := map[string]any{
		"id": "ENC-6", "family": "ENC", "title": "Passwords hashed with argon2id",
		"promise":  "Passwords are stored only as argon2id hashes; parameters are upgraded on login.",
		"status":   "passing",
		"evidence": "0 of 12 stored password hashes are not argon2id",
		"data":     map[string]any{"total": 12.0}, "checked_at": "2026-05-01T12:00:02Z",
	}
	if got := sortedKeys(first); !slices.Equal(got, sortedKeys(want)) {
		t.Errorf("control keys %v, want %v", got, sortedKeys(want))
	}
	for k, v := range want {
		if k == "data" {
			if d, _ := first[k].(map[string]any); d["total"] != 12.0 {
				t.Errorf("data = %v", first[k])
			}
			continue
		}
		if first[k] != v {
			t.Errorf("%s = %v, want %v", k, first[k], v)
		}
	}
	if _, ok := controls[1].(map[string]any)["data"]; ok {
		t.Error("empty data should be omitted")
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"controls": []`) {
		t.Errorf("controls should be an empty array:\n%s", buf.String())
	}
	if doc.Summary[Passing] != 0 || len(doc.Summary) != 4 {
		t.Errorf("summary %v", doc.Summary)
	}
}

func TestWriteText(t *testing.T) {
	reports := sampleReports()
	reports[1].Evidence = "line one\nFAKE-1\tpassing\tforged"
	var buf bytes.Buffer
	if err := WriteText(&buf, reports); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1+len(reports) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), 1+len(reports), buf.String())
	}
	header := lines[0]
	if !strings.HasPrefix(header, "ID") {
		t.Fatalf("header %q", header)
	}
	statusCol, evidenceCol := strings.Index(header, "STATUS"), strings.Index(header, "EVIDENCE")
	if statusCol < 0 || evidenceCol < statusCol {
		t.Fatalf("header %q", header)
	}
	for i, r := range reports {
		line := lines[i+1]
		if !strings.HasPrefix(line, r.ID+" ") {
			t.Errorf("line %q does not start with %s", line, r.ID)
		}
		if !strings.HasPrefix(line[statusCol:], string(r.Status)) {
			t.Errorf("status not aligned in %q", line)
		}
		if !strings.HasPrefix(line[evidenceCol:], cleanEvidence(r.Evidence)) {
			t.Errorf("evidence not aligned in %q", line)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
