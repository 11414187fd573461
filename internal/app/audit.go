package app

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/audit/sink"
	"github.com/rampartsec/rampart/internal/vault"
)

// auditOrigin names the log in its checkpoints: "<public host>/audit".
func (a *App) auditOrigin() string {
	if a.Config.Audit.Origin != "" {
		return a.Config.Audit.Origin
	}
	return strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(a.Config.PublicURL, "https://"), "http://"), "/") + "/audit"
}

// buildAudit wires the tamper-evident audit log: its own keys derived from
// the root key (AUD-4, ENC-7), the witnesses its checkpoints go to, and the
// tap that feeds sinks and alerts. New starts it once sinks and alerts exist
// (the tap reads them from the sequencer); it stops in Close.
func (a *App) buildAudit(root vault.RootKey) error {
	cfg := a.Config.Audit
	keys := vault.NewKeyring(a.rand)
	if err := keys.Add(1, root.Derive("rampart/audit/v1", 32)); err != nil {
		return err
	}
	if err := keys.SetPrimary(1); err != nil {
		return err
	}
	a.auditKeys = keys
	witnesses := []audit.Witness{sink.NewWitnessFile(cfg.WitnessFile)}
	if cfg.WitnessWebhook != "" {
		w, err := sink.NewWitnessWebhook(sink.WebhookConfig{Name: "witness", URL: cfg.WitnessWebhook, Secret: cfg.WitnessWebhookSecret, Now: a.now})
		if err != nil {
			return fmt.Errorf("audit witness webhook: %w", err)
		}
		witnesses = append(witnesses, w)
	}
	log, err := audit.NewMerkleLog(audit.LogConfig{
		Origin: a.auditOrigin(), CheckpointEvery: cfg.CheckpointEvery, CheckpointEvents: cfg.CheckpointEvents,
		HashIPs: cfg.HashIPs, FailOpen: cfg.FailOpen,
	}, audit.LogDeps{
		Store: a.Store, Sealer: keys,
		IndexKey:  root.Derive("rampart/audit-index/v1", 32),
		SignerKey: root.Derive("rampart/audit-checkpoint/v1", 32),
		Witnesses: witnesses,
		OnCommit:  a.onAuditCommit,
		Log:       a.Log, Now: a.now, Rand: a.rand,
	})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	a.AuditLog, a.Audit = log, log
	a.bgCtx, a.bgStop = context.WithCancel(context.Background())
	return nil
}

// onAuditCommit taps the committed stream: sinks are woken; alerts observe.
func (a *App) onAuditCommit(events []audit.Event) {
	for _, r := range a.sinks {
		r.Notify()
	}
	if a.alerts != nil {
		a.alerts.Observe(events)
	}
}

// auditSource adapts the log to the sinks' Source.
type auditSource struct{ log *audit.MerkleLog }

func (s auditSource) After(ctx context.Context, index int64, limit int) ([]audit.Event, error) {
	return s.log.Query(ctx, audit.Filter{AfterID: index, Limit: limit})
}

// buildSinks makes one runner per configured streaming target (AUD-5).
func (a *App) buildSinks() error {
	cfg := a.Config.Audit
	var targets []sink.Target
	if cfg.WebhookURL != "" {
		w, err := sink.NewWebhook(sink.WebhookConfig{URL: cfg.WebhookURL, Secret: cfg.WebhookSecret, Now: a.now})
		if err != nil {
			return fmt.Errorf("audit webhook sink: %w", err)
		}
		targets = append(targets, w)
	}
	if cfg.SyslogAddress != "" {
		url := cfg.SyslogAddress
		if !strings.Contains(url, "://") {
			url = "tls://" + url
		}
		sc := sink.SyslogConfig{URL: url, AllowInsecure: cfg.SyslogAllowInsecure}
		if cfg.SyslogCAFile != "" {
			pem, err := os.ReadFile(cfg.SyslogCAFile)
			if err != nil {
				return fmt.Errorf("audit syslog CA: %w", err)
			}
			sc.RootCAs = x509.NewCertPool()
			if !sc.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("audit syslog CA: no certificate in %s", cfg.SyslogCAFile)
			}
		}
		s, err := sink.NewSyslog(sc)
		if err != nil {
			return fmt.Errorf("audit syslog sink: %w", err)
		}
		targets = append(targets, s)
	}
	if cfg.FilePath != "" {
		f, err := sink.NewFile("file", cfg.FilePath)
		if err != nil {
			return fmt.Errorf("audit file sink: %w", err)
		}
		targets = append(targets, f)
	}
	for _, t := range targets {
		a.sinks = append(a.sinks, sink.NewRunner(t, auditSource{a.AuditLog}, a.Store, sink.RunnerConfig{Head: a.Store, Now: a.now, Log: a.Log}))
		a.sinkNames = append(a.sinkNames, t.Name())
	}
	return nil
}

// runSinks runs the sink runners while this node holds the sinks'
// leadership (one node per cluster delivers; the others wait).
func (a *App) runSinks(ctx context.Context) {
	if len(a.sinks) == 0 {
		return
	}
	for ctx.Err() == nil {
		release, ok, err := a.Store.TryLeader(ctx, "audit-sinks")
		if err != nil || !ok {
			if err != nil {
				a.Log.Warn("audit sinks: leadership check failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
			continue
		}
		done := make(chan struct{}, len(a.sinks))
		for _, r := range a.sinks {
			go func() {
				if err := r.Run(ctx); err != nil && ctx.Err() == nil {
					a.Log.Error("audit sink stopped", "err", err)
				}
				done <- struct{}{}
			}()
		}
		for range a.sinks {
			<-done
		}
		release()
	}
}
