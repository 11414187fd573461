package trust

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// wantIDs is every control ID, in CONTROLS.md order, with the ORG items the
// catalogue adds for the attested paragraph. It keeps the test meaningful
// where the shared design docs are not checked out.
var wantIDs = []string{
	"TLS-1", "TLS-2", "TLS-3", "TLS-4",
	"ENC-1", "ENC-2", "ENC-3", "ENC-4", "ENC-5", "ENC-6", "ENC-7",
	"SEC-1", "SEC-2", "SEC-3",
	"INT-1", "INT-2", "INT-3", "INT-4",
	"AUTH-1", "AUTH-2", "AUTH-3", "AUTH-4", "AUTH-5", "AUTH-6", "AUTH-7",
	"SES-1", "SES-2", "SES-3", "SES-4", "SES-5",
	"AC-1", "AC-2", "AC-3", "AC-4", "AC-5", "AC-6", "AC-7",
	"APP-1", "APP-2", "APP-3", "APP-4", "APP-5", "APP-6", "APP-7", "APP-8", "APP-9",
	"AUD-1", "AUD-2", "AUD-3", "AUD-4", "AUD-5",
	"MON-1", "MON-2", "MON-3", "MON-4",
	"BAK-1", "BAK-2", "BAK-3", "BAK-4", "BAK-5", "BAK-6",
	"PRIV-1", "PRIV-2", "PRIV-3", "PRIV-4", "PRIV-5", "PRIV-6", "PRIV-7", "PRIV-8", "PAY-1",
	"OPS-1", "OPS-2", "OPS-3", "OPS-4", "OPS-5", "OPS-6", "OPS-7",
	"ORG-1", "ORG-2", "ORG-3", "ORG-4", "ORG-5", "ORG-6", "ORG-7",
}

func TestCatalogIDs(t *testing.T) {
	var got []string
	seen := map[string]bool{}
	for _, d := range Catalog() {
		if seen[d.ID] {
			t.Errorf("duplicate ID %s", d.ID)
		}
		seen[d.ID] = true
		got = append(got, d.ID)
	}
	if !slices.Equal(got, wantIDs) {
		t.Errorf("catalogue IDs differ from the table\n got %v\nwant %v", got, wantIDs)
	}
}

func TestCatalogDefinitions(t *testing.T) {
	familyTitle := map[string]string{}
	for _, d := range Catalog() {
		if d.ID == "" || d.Family == "" || d.FamilyTitle == "" || d.Title == "" || d.Promise == "" {
			t.Errorf("%s: empty field in %+v", d.ID, d)
		}
		wantFamily, _, _ := strings.Cut(d.ID, "-")
		if d.ID == "PAY-1" {
			wantFamily = "PRIV" // listed under PRIV in CONTROLS.md
		}
		if d.Family != wantFamily {
			t.Errorf("%s: family %q, want %q", d.ID, d.Family, wantFamily)
		}
		if ft, ok := familyTitle[d.Family]; ok && ft != d.FamilyTitle {
			t.Errorf("%s: family title %q differs from %q", d.ID, d.FamilyTitle, ft)
		}
		familyTitle[d.Family] = d.FamilyTitle
		if d.Attestable != (d.Family == "ORG") {
			t.Errorf("%s: Attestable = %v; only ORG controls are attested", d.ID, d.Attestable)
		}
	}
}

func TestCatalogIsACopy(t *testing.T) {
	a := Catalog()
	a[0].Promise = "changed"
	if Catalog()[0].Promise == "changed" {
		t.Fatal("Catalog returned shared state")
	}
}

// TestCatalogMatchesControlsMD cross-checks the catalogue against the design
// document when it is checked out beside the repository (../shared under CI,
// /work/shared here): same IDs, same families, promises copied verbatim.
func TestCatalogMatchesControlsMD(t *testing.T) {
	f, err := os.Open("../../../shared/CONTROLS.md")
	if err != nil {
		t.Logf("CONTROLS.md not found (%v); the ID table alone applies", err)
		return
	}
	defer f.Close()

	byID := map[string]Definition{}
	for _, d := range Catalog() {
		byID[d.ID] = d
	}
	heading := regexp.MustCompile(`^## ([A-Z]+) `)
	item := regexp.MustCompile(`^- ([A-Z]+-[0-9]+)\s+(.*\S)\s*$`)
	var family string
	var fileIDs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := heading.FindStringSubmatch(line); m != nil {
			family = m[1]
			continue
		}
		m := item.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		id, promise := m[1], m[2]
		fileIDs = append(fileIDs, id)
		d, ok := byID[id]
		if !ok {
			t.Errorf("%s is in CONTROLS.md but not in the catalogue", id)
			continue
		}
		if d.Family != family {
			t.Errorf("%s: family %q, CONTROLS.md has it under %q", id, d.Family, family)
		}
		if d.Promise != promise {
			t.Errorf("%s: promise differs from CONTROLS.md\n got %q\nwant %q", id, d.Promise, promise)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(fileIDs) == 0 {
		t.Fatal("no control IDs parsed from CONTROLS.md")
	}
	// Everything in the catalogue but the ORG items must come from the file.
	for _, d := range Catalog() {
		if !d.Attestable && !slices.Contains(fileIDs, d.ID) {
			t.Errorf("%s is in the catalogue but not in CONTROLS.md", d.ID)
		}
	}
	// The table must track the file too, so it stays a valid fallback.
	var tableIDs []string
	for _, id := range wantIDs {
		if !strings.HasPrefix(id, "ORG-") {
			tableIDs = append(tableIDs, id)
		}
	}
	if !slices.Equal(tableIDs, fileIDs) {
		t.Errorf("test table is out of date with CONTROLS.md\nfile %v", fileIDs)
	}
}
