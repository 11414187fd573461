package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
)

// sdk is a client SDK: it calls the ingestion endpoints with a bearer
// credential (publishable or API key), over TLS unless plain is set.
type sdk struct {
	e     *tenv
	key   string
	plain bool
}

func (c sdk) post(t testing.TB, path, body string) response {
	t.Helper()
	r := jsonRequest(t, "POST", path, body)
	if c.key != "" {
		r.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.plain {
		r.TLS = nil
	}
	return serve(c.e.h, r)
}

type ingestResult struct {
	Accepted int `json:"accepted"`
	Dropped  int `json:"dropped"`
	Scrubbed int `json:"scrubbed"`
}

func (c sdk) ingest(t testing.TB, body string) ingestResult {
	t.Helper()
	res := c.post(t, "/v1/ingest/events", body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("ingest: status %d; body %.400s", res.StatusCode, res.body)
	}
	var out ingestResult
	dec := json.NewDecoder(strings.NewReader(string(res.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("ingest answer %s: %v", res.body, err)
	}
	return out
}

func (c sdk) refused(t testing.TB, path, body string, status int, code, msgPart string) {
	t.Helper()
	res := c.post(t, path, body)
	if res.StatusCode != status {
		t.Fatalf("POST %s %.200s: status %d, want %d (%s); body %.400s", path, body, res.StatusCode, status, code, res.body)
	}
	e := decodeError(t, res)
	if e.Error.Code != code || !strings.Contains(e.Error.Message, msgPart) {
		t.Fatalf("POST %s %.200s: error %q %q, want code %q mentioning %q", path, body, e.Error.Code, e.Error.Message, code, msgPart)
	}
}

type pkJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Retention string `json:"retention"`
	Key       string `json:"key"`
	RevokedAt string `json:"revoked_at"`
}

func createPublishableKey(t testing.TB, admin *actor, ws, body string) pkJSON {
	t.Helper()
	var k pkJSON
	res := admin.must(t, "POST", "/v1/workspaces/"+ws+"/ingest/keys", body, http.StatusCreated, &k)
	if !strings.HasPrefix(k.Key, "rpk_") || k.ID == "" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("created publishable key: %s (Cache-Control %q)", res.body, res.Header.Get("Cache-Control"))
	}
	return k
}

type readEvents struct {
	Events []struct {
		ID          string         `json:"id"`
		Retention   string         `json:"retention"`
		ExpiresAt   time.Time      `json:"expires_at"`
		ReceivedAt  time.Time      `json:"received_at"`
		Name        string         `json:"name"`
		Time        string         `json:"time"`
		UserID      string         `json:"user_id"`
		AnonymousID string         `json:"anonymous_id"`
		Properties  map[string]any `json:"properties"`
	} `json:"events"`
	Next string `json:"next"`
}

func auditCount(t testing.TB, e *tenv, ws, action string) int {
	t.Helper()
	evs, err := e.a.AuditLog.Query(context.Background(), audit.Filter{Workspace: ws, Action: action, AfterID: -1, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// newIngestTenv is newTenv on SQLite with a changed configuration.
func newIngestTenv(t testing.TB, mutate ...func(*config.Config)) *tenv {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Dev = true
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.PublicURL = "https://localhost"
	cfg.Password.HashMemoryKiB = 8192
	cfg.Password.HashTime = 1
	for _, m := range mutate {
		m(&cfg)
	}
	cfg.Finalize()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	clk := &testClock{t: time.Now().Truncate(time.Second)}
	a, err := app.New(context.Background(), cfg, app.Options{Stderr: io.Discard, Log: slog.New(slog.DiscardHandler), Now: clk.Now})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close app: %v", err)
		}
	})
	return &tenv{a: a, h: a.Handler, clk: clk}
}

// TestIngestAPI is the SDK's path end to end on both engines: keys,
// HTTPS only, authentication and scope, schema errors, scrubbing, opt-outs,
// the read API and its audit trail.
func TestIngestAPI(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *tenv) {
		admin := newPerson(t, e, "admin@example.com")
		admin.enrolMFA(t)
		ws := admin.createWorkspace(t, "Shop").ID
		reader := newPerson(t, e, "reader@example.com")
		join(t, admin, reader, ws, "readonly")

		pk := createPublishableKey(t, admin, ws, `{"name":"web app"}`)
		short := createPublishableKey(t, admin, ws, `{"name":"short","retention":"30d"}`)
		admin.refused(t, "POST", "/v1/workspaces/"+ws+"/ingest/keys", `{"name":"x","retention":"forever"}`, http.StatusBadRequest, "retention_class_invalid")
		admin.refused(t, "POST", "/v1/workspaces/"+ws+"/ingest/keys", `{"name":""}`, http.StatusBadRequest, "key_name_invalid")
		reader.refused(t, "POST", "/v1/workspaces/"+ws+"/ingest/keys", `{"name":"r"}`, http.StatusForbidden, "permission_denied")
		var list struct{ Keys []pkJSON }
		admin.must(t, "GET", "/v1/workspaces/"+ws+"/ingest/keys", "", http.StatusOK, &list)
		if len(list.Keys) != 2 || list.Keys[0].Key != "" {
			t.Fatalf("key list %+v", list.Keys)
		}
		c := sdk{e: e, key: pk.Key}

		t.Run("https only", func(t *testing.T) {
			plain := sdk{e: e, key: pk.Key, plain: true}
			plain.refused(t, "/v1/ingest/events", `{"events":[{"name":"a"}]}`, http.StatusForbidden, "https_required", "HTTPS")
			plain.refused(t, "/v1/ingest/opt-out", `{"user_id":"u"}`, http.StatusForbidden, "https_required", "HTTPS")
		})

		t.Run("authentication and scope", func(t *testing.T) {
			sdk{e: e}.refused(t, "/v1/ingest/events", `{"events":[{"name":"a"}]}`, http.StatusUnauthorized, "ingest_key_invalid", "publishable key")
			bad := pk.Key[:len(pk.Key)-2] + "AA"
			sdk{e: e, key: bad}.refused(t, "/v1/ingest/events", `{"events":[{"name":"a"}]}`, http.StatusUnauthorized, "publishable_key_invalid", "invalid")
			sdk{e: e, key: "rpk_short"}.refused(t, "/v1/ingest/events", `{"events":[{"name":"a"}]}`, http.StatusUnauthorized, "publishable_key_invalid", "invalid")
			// A publishable key opens nothing but the SDK endpoints.
			pkActor := admin.withKey(pk.Key)
			for _, rt := range []struct{ method, path, body string }{
				{"GET", "/v1/me", ""},
				{"GET", "/v1/workspaces/" + ws + "/ingest/events", ""},
				{"GET", "/v1/workspaces/" + ws + "/ingest/keys", ""},
				{"POST", "/v1/workspaces/" + ws + "/ingest/keys", `{"name":"x"}`},
				{"DELETE", "/v1/workspaces/" + ws + "/ingest/opt-outs/u1", ""},
				{"GET", "/v1/workspaces/" + ws + "/members", ""},
				{"POST", "/v1/workspaces/" + ws + "/api-keys", `{"name":"k","permissions":["events.ingest"]}`},
			} {
				res := pkActor.do(t, rt.method, rt.path, rt.body)
				if res.StatusCode != http.StatusUnauthorized {
					t.Errorf("publishable key on %s %s: status %d, want 401", rt.method, rt.path, res.StatusCode)
				}
			}
			// API keys: with events.ingest they ingest; without, refused.
			_, ingestKey := admin.createKey(t, ws, []string{"events.ingest"}, 30)
			if r := (sdk{e: e, key: ingestKey}).ingest(t, `{"events":[{"name":"server_side"}]}`); r.Accepted != 1 {
				t.Fatalf("API key ingestion %+v", r)
			}
			_, otherKey := admin.createKey(t, ws, []string{"members.read"}, 30)
			sdk{e: e, key: otherKey}.refused(t, "/v1/ingest/events", `{"events":[{"name":"a"}]}`, http.StatusForbidden, "permission_denied", "")
		})

		t.Run("schema", func(t *testing.T) {
			deep := `{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}`
			many := make([]string, 101)
			for i := range many {
				many[i] = fmt.Sprintf(`"k%d":1`, i)
			}
			events501 := strings.TrimSuffix(strings.Repeat(`{"name":"a"},`, 501), ",")
			for _, tc := range []struct {
				name, body, code, msg string
			}{
				{"not json", `{"events":[`, "body_invalid", "not valid JSON"},
				{"not an object", `[1,2]`, "body_invalid", "JSON object"},
				{"unknown top-level field", `{"events":[{"name":"a"}],"api_key":"x"}`, "unknown_field", "api_key"},
				{"events missing", `{}`, "events_missing", "events"},
				{"events empty", `{"events":[]}`, "events_empty", "empty"},
				{"too many events", `{"events":[` + events501 + `]}`, "too_many_events", "at most 500"},
				{"event not an object", `{"events":[{"name":"a"},"x"]}`, "event_invalid", "events[1]"},
				{"unknown event field", `{"events":[{"name":"a"},{"name":"b","ip":"1.2.3.4"}]}`, "unknown_field", "events[1].ip"},
				{"name missing", `{"events":[{"name":"a"},{"time":"2030-01-01T00:00:00Z"}]}`, "event_name_missing", "events[1].name"},
				{"name pattern", `{"events":[{"name":"Page View"}]}`, "event_name_invalid", "events[0].name"},
				{"name type", `{"events":[{"name":5}]}`, "field_type_invalid", "events[0].name: must be a string"},
				{"time format", `{"events":[{"name":"a","time":"yesterday"}]}`, "event_time_invalid", "events[0].time"},
				{"time far future", `{"events":[{"name":"a","time":"2999-01-01T00:00:00Z"}]}`, "event_time_invalid", "too far"},
				{"user id too long", `{"events":[{"name":"a","user_id":"` + strings.Repeat("u", 129) + `"}]}`, "event_id_invalid", "events[0].user_id"},
				{"properties not object", `{"events":[{"name":"a","properties":[1]}]}`, "properties_invalid", "events[0].properties"},
				{"properties too deep", `{"events":[{"name":"a","properties":` + deep + `}]}`, "properties_too_deep", "events[0].properties.a.b.c.d.e"},
				{"too many properties", `{"events":[{"name":"a","properties":{` + strings.Join(many, ",") + `}}]}`, "too_many_properties", "more than 100"},
				{"string too long", `{"events":[{"name":"a","properties":{"s":"` + strings.Repeat("x", 1025) + `"}}]}`, "property_too_long", "events[0].properties.s"},
				{"trailing data", `{"events":[{"name":"a"}]} {}`, "body_invalid", "after"},
				{"invalid utf-8", "{\"events\":[{\"name\":\"a\",\"properties\":{\"s\":\"\xff\"}}]}", "body_invalid", "UTF-8"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c.refused(t, "/v1/ingest/events", tc.body, http.StatusBadRequest, tc.code, tc.msg)
				})
			}
			res := c.post(t, "/v1/ingest/events", `{"events":[{"name":"a","properties":{"s":"`+strings.Repeat("x", 600<<10)+`"}}]}`)
			if res.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("oversized batch: status %d", res.StatusCode)
			}
			r := jsonRequest(t, "POST", "/v1/ingest/events", `{"events":[{"name":"a"}]}`, "Authorization", "Bearer "+pk.Key, "Content-Type", "text/html")
			if res := serve(e.h, r); res.StatusCode != http.StatusBadRequest {
				t.Fatalf("wrong content type: status %d", res.StatusCode)
			}
		})

		t.Run("scrubbing and storage", func(t *testing.T) {
			body := `{"events":[
				{"name":"checkout","time":"` + e.clk.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `","user_id":"jane@example.com","anonymous_id":"anon-1",
				 "properties":{"note":"write to jane.doe@example.org or call +44 20 7946 0958","total":42.5,"ok":true,"none":null,
				   "payment":{"card":"4111-1111-1111-1111","cards":["5500 0000 0000 0004","order 1234567890123"]},
				   "support@example.com":"key is an email","phone":"(415) 555-0100"}}]}` // gitleaks:allow (test card numbers)
			r := c.ingest(t, body)
			// email, phone in note; two cards; phone; key; user_id.
			if r.Accepted != 1 || r.Dropped != 0 || r.Scrubbed != 7 {
				t.Fatalf("result %+v, want 1 accepted with 7 values scrubbed", r)
			}
			var page readEvents
			admin.must(t, "GET", "/v1/workspaces/"+ws+"/ingest/events?limit=500", "", http.StatusOK, &page)
			var got string
			for _, ev := range page.Events {
				if ev.Name == "checkout" {
					b, _ := json.Marshal(ev)
					got = string(b)
					if ev.UserID != "[email]" || ev.AnonymousID != "anon-1" || ev.Retention != "12mo" {
						t.Errorf("stored event %s", got)
					}
					if d := ev.ExpiresAt.Sub(ev.ReceivedAt); d != 365*24*time.Hour {
						t.Errorf("retention %s, want 365 days", d)
					}
					if ev.Properties["total"] != 42.5 || ev.Properties["ok"] != true {
						t.Errorf("non-string properties changed: %v", ev.Properties)
					}
				}
			}
			for _, pii := range []string{"jane", "7946", "4111", "5500", "555-0100", "support@"} {
				if strings.Contains(got, pii) {
					t.Errorf("stored event holds %q: %s", pii, got)
				}
			}
			for _, want := range []string{`write to [email] or call [phone]`, `"card":"[card]"`, `"[card]","order 1234567890123"`, `"[email]":"key is an email"`, `"phone":"[phone]"`} {
				if !strings.Contains(got, want) {
					t.Errorf("stored event lacks %s: %s", want, got)
				}
			}
			// The 30-day key's events carry its class.
			sdk{e: e, key: short.Key}.ingest(t, `{"events":[{"name":"short_lived"}]}`)
			admin.must(t, "GET", "/v1/workspaces/"+ws+"/ingest/events?limit=500", "", http.StatusOK, &page)
			found := false
			for _, ev := range page.Events {
				if ev.Name == "short_lived" {
					found = true
					if ev.Retention != "30d" || ev.ExpiresAt.Sub(ev.ReceivedAt) != 30*24*time.Hour {
						t.Errorf("30d key's event: %+v", ev)
					}
				}
			}
			if !found {
				t.Errorf("30d key's event not stored")
			}
			// The raw rows hold ciphertext only.
			rows, err := e.a.Store.Events(context.Background(), ws, "", 100)
			if err != nil || len(rows) < 2 {
				t.Fatalf("raw rows: %d, %v", len(rows), err)
			}
			for _, row := range rows {
				for _, s := range []string{"checkout", "anon-1", "42.5", "[email]"} {
					if strings.Contains(string(row.Payload), s) {
						t.Fatalf("raw row %s holds %q in the clear", row.ID, s)
					}
				}
			}
		})

		t.Run("paging and reads audited", func(t *testing.T) {
			for i := range 5 {
				c.ingest(t, `{"events":[{"name":"page_view","properties":{"i":`+strconv.Itoa(i)+`}}]}`)
			}
			before := auditCount(t, e, ws, "ingest.events_read")
			var p1, p2 readEvents
			admin.must(t, "GET", "/v1/workspaces/"+ws+"/ingest/events?limit=3", "", http.StatusOK, &p1)
			if len(p1.Events) != 3 || p1.Next == "" {
				t.Fatalf("first page %d events, next %q", len(p1.Events), p1.Next)
			}
			admin.must(t, "GET", "/v1/workspaces/"+ws+"/ingest/events?limit=500&after="+p1.Next, "", http.StatusOK, &p2)
			if len(p2.Events) == 0 || p2.Next != "" || p2.Events[0].ID <= p1.Events[2].ID {
				t.Fatalf("second page %d events, next %q", len(p2.Events), p2.Next)
			}
			if n := auditCount(t, e, ws, "ingest.events_read"); n != before+2 {
				t.Fatalf("%d read events audited, want %d", n, before+2)
			}
			admin.refused(t, "GET", "/v1/workspaces/"+ws+"/ingest/events?limit=0", "", http.StatusBadRequest, "limit_invalid")
			admin.refused(t, "GET", "/v1/workspaces/"+ws+"/ingest/events?limit=x", "", http.StatusBadRequest, "limit_invalid")
			reader.refused(t, "GET", "/v1/workspaces/"+ws+"/ingest/events", "", http.StatusForbidden, "permission_denied")
		})

		t.Run("opt-outs", func(t *testing.T) {
			batch := `{"events":[{"name":"a","user_id":"u-42"},{"name":"b","user_id":"u-7"},{"name":"c","anonymous_id":"dev-9"}]}`
			if r := c.ingest(t, batch); r.Accepted != 3 {
				t.Fatalf("before opt-out %+v", r)
			}
			// The SDK records the user's choice with the publishable key.
			c.post(t, "/v1/ingest/opt-out", `{"user_id":"u-42"}`)
			if res := c.post(t, "/v1/ingest/opt-out", `{"user_id":"u-42"}`); res.StatusCode != http.StatusOK {
				t.Fatalf("opt-out: %d %s", res.StatusCode, res.body)
			}
			c.refused(t, "/v1/ingest/opt-out", `{"user_id":"a","anonymous_id":"b"}`, http.StatusBadRequest, "subject_invalid", "not both")
			c.refused(t, "/v1/ingest/opt-out", `{}`, http.StatusBadRequest, "subject_invalid", "")
			if r := c.ingest(t, batch); r.Accepted != 2 || r.Dropped != 1 {
				t.Fatalf("after opt-out %+v", r)
			}
			// An Admin records an anonymous opt-out, and undoes the user's.
			admin.must(t, "POST", "/v1/workspaces/"+ws+"/ingest/opt-outs/dev-9?kind=anonymous_id", "", http.StatusNoContent, nil)
			if r := c.ingest(t, batch); r.Accepted != 1 || r.Dropped != 2 {
				t.Fatalf("after anonymous opt-out %+v", r)
			}
			admin.must(t, "DELETE", "/v1/workspaces/"+ws+"/ingest/opt-outs/u-42", "", http.StatusNoContent, nil)
			admin.refused(t, "DELETE", "/v1/workspaces/"+ws+"/ingest/opt-outs/u-42", "", http.StatusNotFound, "opt_out_not_found")
			admin.refused(t, "POST", "/v1/workspaces/"+ws+"/ingest/opt-outs/x?kind=email", "", http.StatusBadRequest, "subject_invalid")
			if r := c.ingest(t, batch); r.Accepted != 2 || r.Dropped != 1 {
				t.Fatalf("after opt-in %+v", r)
			}
			if n := auditCount(t, e, ws, "ingest.opt_out"); n != 3 {
				t.Fatalf("%d opt-outs audited, want 3", n)
			}
			if n := auditCount(t, e, ws, "ingest.opt_in"); n != 1 {
				t.Fatalf("%d opt-ins audited, want 1", n)
			}
			// The audit trail names no user id.
			evs, _ := e.a.AuditLog.Query(context.Background(), audit.Filter{Workspace: ws, Action: "ingest.", AfterID: -1, Limit: 1000})
			for _, ev := range evs {
				if b, _ := json.Marshal(ev); strings.Contains(string(b), "u-42") || strings.Contains(string(b), "dev-9") {
					t.Fatalf("audit event holds a user id: %s", b)
				}
			}
		})

		t.Run("revocation", func(t *testing.T) {
			admin.must(t, "DELETE", "/v1/workspaces/"+ws+"/ingest/keys/"+pk.ID, "", http.StatusNoContent, nil)
			c.refused(t, "/v1/ingest/events", `{"events":[{"name":"a"}]}`, http.StatusUnauthorized, "publishable_key_invalid", "revoked")
			admin.refused(t, "DELETE", "/v1/workspaces/"+ws+"/ingest/keys/nosuchkey", "", http.StatusNotFound, "publishable_key_not_found")
			if n := auditCount(t, e, ws, "ingest.key_create"); n != 2 {
				t.Fatalf("%d key creations audited, want 2", n)
			}
			if n := auditCount(t, e, ws, "ingest.key_revoke"); n != 1 {
				t.Fatalf("%d key revocations audited, want 1", n)
			}
		})

		t.Run("cross tenant", func(t *testing.T) {
			other := newPerson(t, e, "other@example.com")
			other.enrolMFA(t)
			ows := other.createWorkspace(t, "Other").ID
			other.refused(t, "GET", "/v1/workspaces/"+ws+"/ingest/events", "", http.StatusNotFound, "workspace_not_found")
			other.refused(t, "DELETE", "/v1/workspaces/"+ws+"/ingest/keys/"+short.ID, "", http.StatusNotFound, "workspace_not_found")
			var page readEvents
			other.must(t, "GET", "/v1/workspaces/"+ows+"/ingest/events", "", http.StatusOK, &page)
			if len(page.Events) != 0 {
				t.Fatalf("a fresh workspace reads %d events", len(page.Events))
			}
			// Keys of one workspace cannot revoke or read another's.
			other.refused(t, "DELETE", "/v1/workspaces/"+ows+"/ingest/keys/"+short.ID, "", http.StatusNotFound, "publishable_key_not_found")
		})
	})
}

// TestIngestRateLimit: each workspace has its own GCRA budget of events;
// over it, 429 with Retry-After, and the budget refills with time.
func TestIngestRateLimit(t *testing.T) {
	e := newIngestTenv(t, func(c *config.Config) { c.Ingest.RatePerSecond, c.Ingest.Burst = 10, 20 })
	admin := newPerson(t, e, "admin@example.com")
	admin.enrolMFA(t)
	ws1 := admin.createWorkspace(t, "One").ID
	ws2 := admin.createWorkspace(t, "Two").ID
	c1 := sdk{e: e, key: createPublishableKey(t, admin, ws1, `{"name":"one"}`).Key}
	c2 := sdk{e: e, key: createPublishableKey(t, admin, ws2, `{"name":"two"}`).Key}
	batch := func(n int) string {
		return `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"name":"a"},`, n), ",") + `]}`
	}
	if r := c1.ingest(t, batch(15)); r.Accepted != 15 {
		t.Fatalf("first batch %+v", r)
	}
	res := c1.post(t, "/v1/ingest/events", batch(10))
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the burst: status %d", res.StatusCode)
	}
	if e := decodeError(t, res); e.Error.Code != "ingest_rate_limited" {
		t.Fatalf("code %q", e.Error.Code)
	}
	ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	if res.Header.Get("Access-Control-Expose-Headers") == "" || res.Header.Get("RateLimit-Policy") == "" {
		t.Fatalf("429 lacks CORS or RateLimit headers: %v", res.Header)
	}
	// Another workspace's budget is its own.
	if r := c2.ingest(t, batch(20)); r.Accepted != 20 {
		t.Fatalf("other workspace %+v", r)
	}
	// Two seconds refill 20 events at 10/s.
	e.clk.Advance(2 * time.Second)
	if r := c1.ingest(t, batch(10)); r.Accepted != 10 {
		t.Fatalf("after refill %+v", r)
	}
}

// TestIngestDisabled: with ingestion off, the endpoints do not exist.
func TestIngestDisabled(t *testing.T) {
	e := newIngestTenv(t, func(c *config.Config) { c.Ingest.Enabled = false })
	res := sdk{e: e, key: "rpk_x"}.post(t, "/v1/ingest/events", `{"events":[{"name":"a"}]}`)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("disabled ingestion answered %d", res.StatusCode)
	}
}

// TestIngestPreflight: browsers may call the SDK endpoints from any
// origin, without credentials.
func TestIngestPreflight(t *testing.T) {
	e := newIngestTenv(t)
	r := newRequest(t, "OPTIONS", "/v1/ingest/events", nil, "Origin", "https://shop.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	res := serve(e.h, r)
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") || res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
}

// benchBatch is 100 events as an SDK sends them, a third with personal
// data to scrub.
func benchBatch(at time.Time) string {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		note := "added to cart"
		if i%3 == 0 {
			note = "contact jane.doe@example.com or +1 415 555 0100"
		}
		fmt.Fprintf(&b, `{"name":"page_view","time":"%s","user_id":"user-%d","anonymous_id":"anon-%d","properties":{"path":"/products/%d","referrer":"https://search.example/?q=shoes","note":%q,"price":19.99,"qty":2,"tags":["a","b"],"ab":{"variant":"B","exp":"checkout-v2"}}}`, at.UTC().Format(time.RFC3339), i, i, i, note)
	}
	b.WriteString(`]}`)
	return b.String()
}

// BenchmarkIngest measures events per second through the real handler
// (authentication, schema, rate limit, opt-out lookup, scrubbing, sealing,
// one SQLite transaction) for a batch of 100 events, against decoding the
// same body with encoding/json into map[string]any in the same run.
func BenchmarkIngest(b *testing.B) {
	body := benchBatch(time.Now())
	var raw time.Duration
	b.Run("raw_json_decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		start := time.Now()
		for b.Loop() {
			var v map[string]any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				b.Fatal(err)
			}
		}
		raw = time.Since(start) / time.Duration(b.N)
		b.ReportMetric(100/raw.Seconds(), "events/s")
	})
	e := newIngestTenv(b, func(c *config.Config) { c.Ingest.RatePerSecond, c.Ingest.Burst = 1_000_000_000, 1_000_000_000 })
	admin := newPerson(b, e, "bench@example.com")
	admin.enrolMFA(b)
	ws := admin.createWorkspace(b, "Bench").ID
	c := sdk{e: e, key: createPublishableKey(b, admin, ws, `{"name":"bench"}`).Key}
	b.Run("handler", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		start := time.Now()
		for b.Loop() {
			res := c.post(b, "/v1/ingest/events", body)
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d: %s", res.StatusCode, res.body)
			}
		}
		per := time.Since(start) / time.Duration(b.N)
		b.ReportMetric(100/per.Seconds(), "events/s")
		if raw > 0 {
			b.ReportMetric(float64(per)/float64(raw), "x-of-raw")
		}
	})
}
