package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/fault"
)

// FuzzDecodeJSON feeds arbitrary bytes to parseJSON for every request type
// of the API. It must never panic; every refusal is fault.Invalid with a
// short message; and whatever it accepts survives a round trip.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `null`, `[]`, `"x"`, `0`, `{"email":"a@example.com","password":"pw"}`,
		`{"email":"a@example.com"}{}`, `{"email":"a@example.com"} x`, `{"email":`, `{"admin":true}`,
		`{"code":"123456"}`, `{"code":123456}`, `{"token":"t"}`, `{"current_password":"a","new_password":"b"}`,
		`{"token":"t","new_password":"b"}`, `{"password":"p","code":"1"}`, "{\"email\":\"\x00\xff\"}",
		`{"email":"\ud800"}`, `{"email":1e999}`, `[[[[[[[[[[]]]]]]]]]]`, "\xef\xbb\xbf{}",
		`{"` + strings.Repeat("k", 200) + `":1}`, `{"Email":"case"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkParse[credentials](t, body)
		checkParse[codeBody](t, body)
		checkParse[tokenBody](t, body)
		checkParse[emailBody](t, body)
		checkParse[passwordChange](t, body)
		checkParse[resetConfirm](t, body)
		checkParse[totpDisable](t, body)
	})
}

func checkParse[T any](t *testing.T, body []byte) {
	t.Helper()
	v, err := parseJSON[T](body)
	if err != nil {
		fe := fault.As(err)
		if fe.Kind != fault.Invalid || fe.Code == "" {
			t.Fatalf("%T: error %v is %s/%q, want Invalid with a code", v, err, fe.Kind, fe.Code)
		}
		if len(fe.Message) > 200 {
			t.Fatalf("%T: %d-byte message reflects the input", v, len(fe.Message))
		}
		if st := status(fe.Kind); st != http.StatusBadRequest {
			t.Fatalf("%T: maps to %d", v, st)
		}
		return
	}
	// Accepted: the value re-encodes and decodes to itself.
	b, merr := json.Marshal(v)
	if merr != nil {
		t.Fatalf("%T: accepted value does not marshal: %v", v, merr)
	}
	again, err := parseJSON[T](b)
	if err != nil {
		t.Fatalf("%T: re-encoded %s refused: %v", v, b, err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Fatalf("%T: round trip changed %+v to %+v", v, v, again)
	}
}

// FuzzDecodeJSONRequest drives decodeJSON with the request-level checks
// (content type, size) in front of the parser.
func FuzzDecodeJSONRequest(f *testing.F) {
	f.Add("application/json", []byte(`{"email":"a@example.com","password":"pw"}`))
	f.Add("application/json; charset=utf-8", []byte(`{}`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("", []byte(`{"code":"1"}`))
	f.Add(";;", []byte(``))
	f.Add("application/merge-patch+json", []byte(`{"x":1}`))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/signin", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", ctype)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<20)
		_, err := decodeJSON[credentials](r)
		if err == nil {
			return
		}
		if errors.Is(err, errBodyTooLarge) {
			if len(body) <= maxJSONBody {
				t.Fatalf("%d-byte body called too large", len(body))
			}
			return
		}
		fe, st := publicError(err)
		if fe.Kind != fault.Invalid || st != http.StatusBadRequest {
			t.Fatalf("error %v → %s, %d", err, fe.Kind, st)
		}
	})
}
