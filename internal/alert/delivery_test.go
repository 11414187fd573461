package alert

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/audit/sink"
	"github.com/rampartsec/rampart/internal/mail"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // gitleaks:allow (test secret)

type capture struct {
	mu     sync.Mutex
	bodies [][]byte
	hdrs   []http.Header
}

func (c *capture) handler(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.hdrs = append(c.hdrs, r.Header.Clone())
		c.mu.Unlock()
		w.WriteHeader(status)
	})
}

type mailCapture struct {
	mu   sync.Mutex
	msgs []mail.Message
	fail string // recipient that fails
}

func (m *mailCapture) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if msg.To == m.fail {
		return errors.New("mailbox unavailable")
	}
	m.msgs = append(m.msgs, msg)
	return nil
}

func tlsServer(t *testing.T, h http.Handler) (*httptest.Server, sink.HTTPOptions) {
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, sink.HTTPOptions{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, Timeout: 5 * time.Second}
}

// waitAudited waits for n alert.raised events.
func waitAudited(t *testing.T, rec *memRecorder, n int) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []audit.Event
		for _, e := range rec.all() {
			if e.Action == "alert.raised" {
				got = append(got, e)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d alert.raised events, want %d", len(got), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDeliveryAndAudit(t *testing.T) {
	var hook, slack, broken capture
	hookSrv, hookOpts := tlsServer(t, hook.handler(200))
	slackSrv, slackOpts := tlsServer(t, slack.handler(200))
	brokenSrv, brokenOpts := tlsServer(t, broken.handler(503))

	wh, err := NewWebhookChannel(sink.WebhookConfig{URL: hookSrv.URL, Secret: testSecret, HTTP: hookOpts})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := NewSlackChannel("", slackSrv.URL+"/services/T0/B0/SECRET", slackOpts)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := NewWebhookChannel(sink.WebhookConfig{Name: "backup", URL: brokenSrv.URL, Secret: testSecret, HTTP: brokenOpts})
	if err != nil {
		t.Fatal(err)
	}
	mc := &mailCapture{}
	em, err := NewEmailChannel(mc, []string{"sec@example.com", "oncall@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	c := newClock()
	rec := &memRecorder{}
	e, err := NewEngine(Config{}, Deps{Channels: []Channel{wh, sl, em, bad}, Recorder: rec, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Like the Merkle log's OnCommit tap: the engine sees its own
	// alert.raised events and must not alert on them.
	rec.mu.Lock()
	rec.tap = e.Observe
	rec.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()

	e.Observe([]audit.Event{{ID: 41, Action: "auth.credential_stuffing", Outcome: audit.Denied, Target: "ip:192.0.2.9", Workspace: "ws1"}})
	raised := waitAudited(t, rec, 1)
	time.Sleep(50 * time.Millisecond) // time for a feedback loop to show, if there were one
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n := len(waitAudited(t, rec, 1)); n != 1 {
		t.Fatalf("%d alerts raised, want 1 (feedback loop?)", n)
	}

	// Signed webhook: verifies with the Standard Webhooks signer.
	if len(hook.bodies) != 1 {
		t.Fatalf("webhook got %d requests", len(hook.bodies))
	}
	signer, _ := sink.NewSigner(testSecret)
	if !signer.Verify(hook.hdrs[0], hook.bodies[0], time.Now(), 5*time.Minute) {
		t.Fatal("webhook signature does not verify")
	}
	var env struct {
		Type string `json:"type"`
		Data Alert  `json:"data"`
	}
	if err := json.Unmarshal(hook.bodies[0], &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "alert.raised" || env.Data.Rule != RuleCredentialStuffing || env.Data.Key != "ip:192.0.2.9" ||
		env.Data.EventID != 41 || env.Data.ID == "" || hook.hdrs[0].Get(sink.HeaderWebhookID) != env.Data.ID {
		t.Fatalf("webhook payload %+v id %q", env, hook.hdrs[0].Get(sink.HeaderWebhookID))
	}

	// Slack: exactly {"text": "..."}.
	if len(slack.bodies) != 1 {
		t.Fatalf("slack got %d requests", len(slack.bodies))
	}
	var sm map[string]any
	if err := json.Unmarshal(slack.bodies[0], &sm); err != nil {
		t.Fatal(err)
	}
	text, ok := sm["text"].(string)
	if len(sm) != 1 || !ok || !strings.Contains(text, "credential stuffing") || !strings.Contains(text, RuleCredentialStuffing) {
		t.Fatalf("slack body %s", slack.bodies[0])
	}
	if ct := slack.hdrs[0].Get("Content-Type"); ct != "application/json" {
		t.Fatalf("slack content type %q", ct)
	}

	// Email: one message per recipient.
	if len(mc.msgs) != 2 || mc.msgs[0].To != "sec@example.com" || mc.msgs[1].To != "oncall@example.com" ||
		mc.msgs[0].Kind != MailKind || !strings.Contains(mc.msgs[0].Subject, RuleCredentialStuffing) || !strings.Contains(mc.msgs[0].Text, "ip:192.0.2.9") {
		t.Fatalf("mail %+v", mc.msgs)
	}

	// The audit record names the rule, key and each channel's result.
	ev := raised[0]
	want := map[string]string{
		"rule": RuleCredentialStuffing, "key": "ip:192.0.2.9", "event_id": "41",
		"channel.webhook": "ok", "channel.slack": "ok", "channel.email": "ok", "channel.backup": "failed:delivery_failed",
	}
	for k, v := range want {
		if ev.Details[k] != v {
			t.Errorf("detail %s = %q, want %q", k, ev.Details[k], v)
		}
	}
	if ev.Outcome != audit.Failure || ev.ActorType != audit.ActorSystem || ev.Workspace != "ws1" || ev.Target != "alert:"+RuleCredentialStuffing {
		t.Fatalf("audit event %+v", ev)
	}
	if st := e.Stats(); st.Raised != 1 || st.DeliveryFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// An address key is audited under "ip", which the audit log hashes when
// configured to, never under the free-form "key".
func TestAuditIPKey(t *testing.T) {
	c := newClock()
	rec := &memRecorder{}
	e, err := NewEngine(Config{SigninFailuresPerIP: 2}, Deps{Recorder: rec, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	var got []Alert
	for range 2 {
		got = append(got, e.process(audit.Event{Action: "auth.signin", Outcome: audit.Failure, IP: "192.0.2.1"})...)
	}
	if len(got) != 1 {
		t.Fatalf("alerts %+v", got)
	}
	e.deliver(context.Background(), got[0])
	ev := rec.all()[0]
	if ev.Details["ip"] != "192.0.2.1" || ev.Details["key"] != "" || ev.Outcome != audit.Success {
		t.Fatalf("details %v outcome %s", ev.Details, ev.Outcome)
	}
}

func TestEmailChannel(t *testing.T) {
	if _, err := NewEmailChannel(&mailCapture{}, nil); err == nil {
		t.Fatal("no recipients accepted")
	}
	if _, err := NewEmailChannel(&mailCapture{}, []string{"not an address"}); err == nil {
		t.Fatal("bad recipient accepted")
	}
	mc := &mailCapture{fail: "a@example.com"}
	ch, err := NewEmailChannel(mc, []string{"a@example.com", "b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	err = ch.Send(context.Background(), Alert{Rule: RuleBreakGlass, Severity: SeverityCritical, Summary: "x", Time: time.Now()})
	if err == nil || len(mc.msgs) != 1 || mc.msgs[0].To != "b@example.com" {
		t.Fatalf("err %v msgs %+v: one failing recipient must not stop the others", err, mc.msgs)
	}
	if strings.Contains(err.Error(), "example.com") {
		t.Fatalf("error names a recipient: %v", err)
	}
}

func TestSlackEscapesMarkup(t *testing.T) {
	var slack capture
	srv, opts := tlsServer(t, slack.handler(200))
	ch, err := NewSlackChannel("chat", srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Send(context.Background(), Alert{Rule: RuleNewAdmin, Key: "<!channel> & <http://evil|x>", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	_ = json.Unmarshal(slack.bodies[0], &m)
	if strings.ContainsAny(m["text"], "<>") || !strings.Contains(m["text"], "&lt;!channel&gt; &amp; ") || ch.Name() != "chat" {
		t.Fatalf("text %q", m["text"])
	}
}

func TestChannelsRefusePlaintextRemote(t *testing.T) {
	if _, err := NewSlackChannel("", "http://hooks.slack.example/services/X", sink.HTTPOptions{}); err == nil {
		t.Fatal("slack over http accepted")
	}
	if _, err := NewWebhookChannel(sink.WebhookConfig{URL: "http://siem.example/alerts", Secret: testSecret}); err == nil {
		t.Fatal("webhook over http accepted")
	}
	if _, err := NewWebhookChannel(sink.WebhookConfig{URL: "https://siem.example/alerts", Secret: "whsec_short"}); err == nil {
		t.Fatal("weak secret accepted")
	}
}

func TestNewEngineNeedsRecorder(t *testing.T) {
	if _, err := NewEngine(Config{}, Deps{}); err == nil {
		t.Fatal("engine without a recorder")
	}
}
