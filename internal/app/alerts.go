package app

import (
	"context"
	"fmt"

	"github.com/rampartsec/rampart/internal/alert"
	"github.com/rampartsec/rampart/internal/audit/sink"
)

// logChannel delivers alerts to Rampart's own structured log. It is the
// channel of last resort: used only when no webhook, chat or mail channel
// is configured, so that an alert is never raised into nothing.
type logChannel struct{ a *App }

func (c logChannel) Name() string { return "log" }

func (c logChannel) Send(_ context.Context, al alert.Alert) error {
	c.a.Log.Warn("SECURITY ALERT", "rule", al.Rule, "severity", al.Severity, "summary", al.Summary,
		"workspace", al.Workspace, "event_id", al.EventID, "count", al.Count)
	return nil
}

// buildAlerts wires real-time security alerts (MON-3) to the configured
// channels; the audit log's commit tap feeds them.
func (a *App) buildAlerts() error {
	cfg := a.Config.Alerts
	var chans []alert.Channel
	if cfg.WebhookURL != "" {
		c, err := alert.NewWebhookChannel(sink.WebhookConfig{Name: "webhook", URL: cfg.WebhookURL, Secret: cfg.WebhookSecret, Now: a.now})
		if err != nil {
			return fmt.Errorf("alerts webhook: %w", err)
		}
		chans = append(chans, c)
	}
	if cfg.SlackWebhookURL != "" {
		c, err := alert.NewSlackChannel("slack", cfg.SlackWebhookURL, sink.HTTPOptions{})
		if err != nil {
			return fmt.Errorf("alerts slack: %w", err)
		}
		chans = append(chans, c)
	}
	if len(cfg.Email) > 0 {
		c, err := alert.NewEmailChannel(a.Mailer, cfg.Email)
		if err != nil {
			return fmt.Errorf("alerts email: %w", err)
		}
		chans = append(chans, c)
	}
	a.alertChannels = len(chans)
	if len(chans) == 0 {
		chans = append(chans, logChannel{a})
	}
	eng, err := alert.NewEngine(alert.Config{
		SigninWindow: cfg.Window, SigninFailuresPerAccount: cfg.FailedSignins, SigninFailuresPerIP: 3 * cfg.FailedSignins,
		MaxPerMinute: cfg.PerMinute,
	}, alert.Deps{Channels: chans, Recorder: a.AuditLog, Log: a.Log, Now: a.now})
	if err != nil {
		return err
	}
	a.alertEngine = eng
	a.alerts = eng
	a.bgWG.Add(1)
	go func() {
		defer a.bgWG.Done()
		if err := eng.Run(a.bgCtx); err != nil && a.bgCtx.Err() == nil {
			a.Log.Error("alert engine stopped", "err", err)
		}
	}()
	return nil
}
