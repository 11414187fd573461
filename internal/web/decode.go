package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/internal/fault"
)

// maxJSONBody bounds every JSON request body of the API.
const maxJSONBody = 64 << 10

var errBodyTooLarge = errors.New("body too large")

// decodeJSON reads exactly one JSON object of type T from r, refusing
// unknown fields, trailing data, a wrong content type and oversized bodies,
// each with a clear 4xx error.
func decodeJSON[T any](r *http.Request) (T, error) {
	var v T
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return v, fault.New(fault.Invalid, "unsupported_media_type", "send a JSON body with Content-Type: application/json")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return v, errBodyTooLarge
		}
		return v, fault.Wrap(fault.Invalid, "body_unreadable", "the request body could not be read", err)
	}
	if len(body) > maxJSONBody {
		return v, errBodyTooLarge
	}
	return parseJSON[T](body)
}

// parseJSON is the part of decodeJSON that sees untrusted bytes; it is fuzzed.
func parseJSON[T any](body []byte) (T, error) {
	var v T
	if len(bytes.TrimSpace(body)) == 0 {
		return v, fault.New(fault.Invalid, "body_missing", "a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fault.Wrap(fault.Invalid, "body_invalid", jsonErrorMessage(err), err)
	}
	if dec.More() {
		return v, fault.New(fault.Invalid, "body_invalid", "the body must hold a single JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, fault.New(fault.Invalid, "body_invalid", "the body must hold a single JSON object")
	}
	return v, nil
}

// jsonErrorMessage explains a decoding error without echoing the input.
func jsonErrorMessage(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "the body is not valid JSON"
	case errors.As(err, &te):
		if te.Field != "" {
			return "field " + te.Field + " has the wrong type"
		}
		return "the body must be a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The field name is input: name it (it helps the client) but only
		// briefly, so a 64 KiB key is not reflected back whole.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(name) > 66 {
			name = strings.ToValidUTF8(name[:64], "") + `…"`
		}
		return "unknown field " + name
	default:
		return "the body is not valid JSON"
	}
}
