package sink

import (
	"context"
	"encoding/json"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // gitleaks:allow (test secret)

type received struct {
	id     string
	ids    []int64
	status int
}

// flakyReceiver is a TLS webhook receiver that answers the first fail
// requests with 500 after reading them (so those batches may arrive twice),
// stalls the request numbered stall past the client's timeout, and checks
// every signature.
type flakyReceiver struct {
	t      *testing.T
	signer *Signer
	fail   int
	stall  int

	mu  sync.Mutex
	got []received
	bad int
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	n := len(f.got)
	ok := f.signer.Verify(r.Header, body, time.Now(), 5*time.Minute)
	var env struct {
		Type string `json:"type"`
		Data []struct {
			ID      int64  `json:"id"`
			Action  string `json:"action"`
			Outcome string `json:"outcome"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Type != "audit.events" || !ok {
		f.bad++
	}
	rec := received{id: r.Header.Get(HeaderWebhookID), status: 200}
	for _, e := range env.Data {
		rec.ids = append(rec.ids, e.ID)
	}
	if n < f.fail {
		rec.status = 500
	}
	f.got = append(f.got, rec)
	f.mu.Unlock()
	if n == f.stall {
		time.Sleep(400 * time.Millisecond)
	}
	w.WriteHeader(rec.status)
}

func TestWebhookRunnerRetriesWithoutGaps(t *testing.T) {
	signer, _ := NewSigner(testSecret)
	recv := &flakyReceiver{t: t, signer: signer, fail: 3, stall: 3}
	srv := httptest.NewTLSServer(recv)
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	wh, err := NewWebhook(WebhookConfig{Name: "siem", URL: srv.URL + "/hook", Secret: testSecret,
		HTTP: HTTPOptions{RootCAs: pool, Timeout: 150 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	log := newMemLog(23)
	sl := &recSleep{poll: 3 * time.Millisecond}
	r := NewRunner(wh, log, log, RunnerConfig{Batch: 5, Head: log, Sleep: sl.sleep, Poll: sl.poll, MinBackoff: time.Second, MaxBackoff: 4 * time.Second})
	runUntil(t, r, 22)

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.bad != 0 {
		t.Fatalf("%d requests had a bad signature or body", recv.bad)
	}
	// Every request is either the next batch or a retry of the previous
	// one (same events, same webhook-id). Among the requests the receiver
	// answered 2xx, the events run 0..22 in order: duplicates (the request
	// that timed out was also accepted), never a gap.
	next := int64(0)
	var prev received
	for i, g := range recv.got {
		if i > 0 && g.id == prev.id {
			if !equalIDs(g.ids, prev.ids) {
				t.Fatalf("retry %d changed the batch: %v vs %v", i, g.ids, prev.ids)
			}
		}
		prev = g
	}
	prev = received{}
	for i, g := range recv.got {
		if g.status != 200 {
			continue
		}
		if g.id == prev.id {
			if !equalIDs(g.ids, prev.ids) {
				t.Fatalf("retry %d changed the batch: %v vs %v", i, g.ids, prev.ids)
			}
			continue
		}
		for _, id := range g.ids {
			if id != next {
				t.Fatalf("request %d: got id %d, want %d (gap or reorder)", i, id, next)
			}
			next++
		}
		prev = g
	}
	if next != 23 {
		t.Fatalf("events delivered up to %d, want 23", next)
	}
	// 3 failures + 1 timeout = 4 retries of the first batch, backoff doubling to the cap.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	if got := sl.got(); !equalDurations(got, want) {
		t.Fatalf("backoff %v, want %v", got, want)
	}
	st := r.Stats()
	if st.Delivered != 23 || st.Failures != 4 || st.LastError.IsZero() || st.Cursor != 22 {
		t.Fatalf("stats %+v", st)
	}
	if c, _ := log.SinkCursor(context.Background(), "siem"); c != 22 {
		t.Fatalf("stored cursor %d", c)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWebhookStatusHandling(t *testing.T) {
	for _, tc := range []struct {
		status int
		ok     bool
	}{{200, true}, {204, true}, {299, true}, {302, false}, {400, false}, {410, false}, {429, false}, {503, false}} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.status == 302 {
				w.Header().Set("Location", "http://example.com/")
			}
			w.WriteHeader(tc.status)
		}))
		pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		wh, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: testSecret, HTTP: HTTPOptions{RootCAs: pool}})
		if err != nil {
			t.Fatal(err)
		}
		err = wh.Deliver(context.Background(), newMemLog(2).events)
		srv.Close()
		if (err == nil) != tc.ok {
			t.Fatalf("status %d: err %v", tc.status, err)
		}
		if err != nil && !fault.Is(err, fault.Unavailable) {
			t.Fatalf("status %d: kind %v", tc.status, fault.KindOf(err))
		}
	}
}

func TestWebhookUntrustedCertificateFails(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	wh, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: testSecret}) // system roots only
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Deliver(context.Background(), newMemLog(1).events); err == nil {
		t.Fatal("delivered to a server with an untrusted certificate")
	}
}

func TestPlaintextPolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		url      string
		insecure bool
		ok       bool
	}{
		{"https remote", "https://siem.example.com/hook", false, true},
		{"http remote refused", "http://siem.example.com/hook", false, false},
		{"http remote allowed explicitly", "http://siem.example.com/hook", true, true},
		{"http loopback v4", "http://127.0.0.1:8080/hook", false, true},
		{"http loopback v6", "http://[::1]:8080/hook", false, true},
		{"http localhost", "http://localhost:8080/hook", false, true},
		{"http private address refused", "http://10.0.0.5/hook", false, false},
		{"ftp refused", "ftp://siem.example.com/", true, false},
		{"relative refused", "/hook", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err1 := NewWebhook(WebhookConfig{URL: tc.url, Secret: testSecret, HTTP: HTTPOptions{AllowInsecure: tc.insecure}})
			_, err2 := NewWitnessWebhook(WebhookConfig{URL: tc.url, Secret: testSecret, HTTP: HTTPOptions{AllowInsecure: tc.insecure}})
			for _, err := range []error{err1, err2} {
				if (err == nil) != tc.ok {
					t.Fatalf("err = %v, want ok=%v", err, tc.ok)
				}
				if err != nil && strings.Contains(err.Error(), "siem.example.com") {
					t.Fatal("error quotes the URL")
				}
			}
		})
	}
	// The transport re-checks, so the client cannot be pointed elsewhere.
	c, _, err := NewHTTPClient("https://siem.example.com/", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post("http://siem.example.com/x", "text/plain", strings.NewReader("x"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("client sent plaintext to a remote host")
	}
}

func TestWebhookErrorHidesURL(t *testing.T) {
	// Port 1 on loopback: connection refused. The URL carries a secret
	// path, as Slack incoming-webhook URLs do.
	wh, err := NewWebhook(WebhookConfig{URL: "https://127.0.0.1:1/services/SECRETPATH", Secret: testSecret,
		HTTP: HTTPOptions{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	err = wh.Deliver(context.Background(), newMemLog(1).events)
	if err == nil || strings.Contains(err.Error(), "SECRETPATH") {
		t.Fatalf("err = %v", err)
	}
}
