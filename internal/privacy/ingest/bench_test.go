package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkDecodeAndScrub is the CPU part of ingestion without storage:
// the strict schema decode and the scrubber over a batch of 100 events,
// against encoding/json decoding the same body in the same run.
func BenchmarkDecodeAndScrub(b *testing.B) {
	now := time.Now()
	var sb strings.Builder
	sb.WriteString(`{"events":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		note := "added to cart"
		if i%3 == 0 {
			note = "contact jane.doe@example.com or +1 415 555 0100"
		}
		fmt.Fprintf(&sb, `{"name":"page_view","time":"%s","user_id":"user-%d","anonymous_id":"anon-%d","properties":{"path":"/products/%d","referrer":"https://search.example/?q=shoes","note":%q,"price":19.99,"qty":2,"tags":["a","b"],"ab":{"variant":"B","exp":"checkout-v2"}}}`,
			now.UTC().Format(time.RFC3339), i, i, i, note)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	lim := DefaultLimits()
	var raw time.Duration
	b.Run("raw_json_decode", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
		raw = time.Since(start) / time.Duration(b.N)
	})
	b.Run("decode_and_scrub", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			evs, err := Decode(body, lim, now)
			if err != nil {
				b.Fatal(err)
			}
			for i := range evs {
				ScrubString(evs[i].UserID)
				ScrubString(evs[i].AnonymousID)
				ScrubValue(evs[i].Properties)
			}
		}
		per := time.Since(start) / time.Duration(b.N)
		b.ReportMetric(100/per.Seconds(), "events/s")
		if raw > 0 {
			b.ReportMetric(float64(per)/float64(raw), "x-of-raw")
		}
	})
}
