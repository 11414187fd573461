package trust

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Document is the machine-readable form of a set of reports: what
// `rampart controls --json` prints and what the web layer serves next to the
// trust page, so both publish the same shape.
type Document struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Summary     map[Status]int `json:"summary"`
	Controls    []Report       `json:"controls"`
}

// NewDocument builds the document for reports. GeneratedAt is the latest
// CheckedAt among them: when the data was measured, which with caching can be
// earlier than when it is served, and saying so is the honest answer.
func NewDocument(reports []Report) Document {
	var at time.Time
	for _, rep := range reports {
		if rep.CheckedAt.After(at) {
			at = rep.CheckedAt
		}
	}
	if reports == nil {
		reports = []Report{} // "controls": [] rather than null
	}
	return Document{GeneratedAt: at, Summary: Summary(reports), Controls: reports}
}

// WriteJSON writes NewDocument(reports) as indented JSON.
func WriteJSON(w io.Writer, reports []Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewDocument(reports))
}

// WriteText writes an aligned table (ID, STATUS, EVIDENCE) for the terminal.
// Evidence from the registry is already one line without control characters.
func WriteText(w io.Writer, reports []Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tEVIDENCE")
	for _, rep := range reports {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", rep.ID, rep.Status, cleanEvidence(rep.Evidence))
	}
	return tw.Flush()
}
