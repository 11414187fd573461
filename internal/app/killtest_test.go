package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/audit/sink"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestAcknowledgedEventsSurviveKill9 runs the real app in a child process
// that records audit events from many goroutines and prints each event's
// id once Record has returned. The parent kills the child with SIGKILL in
// the middle of the stream, reopens the data directory and checks that
// every acknowledged event is there and that the whole log still verifies
// (AUD-3 and the durability promise of issue 6), on both engines.
func TestAcknowledgedEventsSurviveKill9(t *testing.T) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			db := ""
			if engine == store.EnginePostgres {
				db = storetest.DSN(t, engine)
			}
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "RAMPART_KILL_CHILD=1", "KILL_DATA_DIR="+dir, "KILL_DATABASE="+db)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[string]bool{} // "writer/sequence" of every acknowledged event
			sc := bufio.NewScanner(out)
			for sc.Scan() && len(acked) < 400 {
				if key, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
					acked[key] = true
				}
			}
			if len(acked) < 400 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the child acknowledged only %d events", len(acked))
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, out)
			_ = cmd.Wait()

			cfg := killConfig(dir, db)
			a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard})
			if err != nil {
				t.Fatalf("reopen after kill -9: %v", err)
			}
			defer a.Close()
			stored := map[string]bool{}
			for cursor := int64(-1); ; {
				evs, err := a.AuditLog.Query(context.Background(), audit.Filter{Action: "test.kill9", AfterID: cursor, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					stored[e.Details["w"]+"/"+e.Details["i"]] = true
					cursor = e.ID
				}
				if len(evs) < 1000 {
					break
				}
			}
			for key := range acked {
				if !stored[key] {
					t.Fatalf("acknowledged event %s is missing after kill -9 (%d stored)", key, len(stored))
				}
			}
			notes, err := sink.ReadWitnessFile(cfg.Audit.WitnessFile)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(context.Background(), a.Store, a.AuditLog.VerifierKey(), notes)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("the log does not verify after kill -9: %+v", rep.Problems)
			}
			t.Logf("%d acknowledged events survived; %d events and %d checkpoints verified", len(acked), rep.Size, rep.Checkpoints)
		})
	}
}

func killConfig(dir, db string) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.Dev, cfg.Database = dir, true, db
	cfg.Password.HashMemoryKiB, cfg.Password.HashTime = 8192, 1
	cfg.Audit.CheckpointEvents = 50
	cfg.Finalize()
	return cfg
}

// TestMain turns the test binary into the writer child of
// TestAcknowledgedEventsSurviveKill9 when that test starts it.
func TestMain(m *testing.M) {
	if os.Getenv("RAMPART_KILL_CHILD") != "" {
		kill9Child()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// kill9Child records events from 16 goroutines until it is killed.
func kill9Child() {
	a, err := app.New(context.Background(), killConfig(os.Getenv("KILL_DATA_DIR"), os.Getenv("KILL_DATABASE")), app.Options{Stderr: io.Discard})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e := audit.Event{ActorType: audit.ActorSystem, ActorID: "kill9", Action: "test.kill9", Outcome: audit.Success,
					Details: map[string]string{"w": strconv.Itoa(w), "i": strconv.Itoa(i)}}
				if err := a.AuditLog.Record(context.Background(), e); err != nil {
					fmt.Println("ERR", err)
					return
				}
				// Record returned: the event is durable. Acknowledge it.
				mu.Lock()
				fmt.Printf("ACK %d/%d\n", w, i)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
