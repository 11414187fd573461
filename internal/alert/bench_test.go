package alert

import (
	"fmt"
	"testing"

	"github.com/rampartsec/rampart/internal/audit"
)

// BenchmarkObserve measures the cost the audit log's commit tap pays per
// batch of 64 events (a mix the rules mostly ignore, as in real traffic).
func BenchmarkObserve(b *testing.B) {
	e, err := NewEngine(Config{QueueSize: 16}, Deps{Recorder: &memRecorder{}})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]audit.Event, 64)
	for i := range batch {
		batch[i] = audit.Event{ID: int64(i), Action: "api.request", Outcome: audit.Success}
		if i%8 == 0 {
			batch[i] = audit.Event{ID: int64(i), Action: "auth.signin", Outcome: audit.Failure, IP: "192.0.2.1"}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Observe(batch)
		<-e.queue
	}
}

// BenchmarkProcess measures rule evaluation per event on the engine's goroutine.
func BenchmarkProcess(b *testing.B) {
	c := newClock()
	e, err := NewEngine(Config{}, Deps{Recorder: &memRecorder{}, Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	evs := []audit.Event{
		{Action: "auth.signin", Outcome: audit.Failure, Target: "user:1", IP: "192.0.2.1"},
		{Action: "vault.decrypt", Outcome: audit.Success, Workspace: "ws1"},
		{Action: "waf.block", Outcome: audit.Denied},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := evs[i%len(evs)]
		ev.IP = fmt.Sprint("192.0.2.", i%200)
		e.process(ev)
		i++
	}
}
