package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/fault"
)

// Limits bound what one request may carry. Every bound is checked before
// anything is stored, so a client learns from one 400 which event and
// field broke which rule.
type Limits struct {
	MaxEvents     int            // events in one batch
	MaxEventBytes int            // one event's JSON
	NamePattern   *regexp.Regexp // event names; anchored by the caller
	MaxNameLen    int
	MaxIDLen      int // user_id and anonymous_id
	MaxProperties int // keys and array items, counted across the whole tree
	MaxDepth      int // nesting of objects and arrays below "properties"
	MaxKeyLen     int
	MaxStringLen  int // one string value, in bytes
	MaxClockSkew  time.Duration
}

// DefaultLimits are the limits of the default configuration.
func DefaultLimits() Limits {
	return Limits{MaxEvents: 500, MaxEventBytes: 16 << 10, NamePattern: regexp.MustCompile(`^[a-z][a-z0-9_.:-]*$`),
		MaxNameLen: 64, MaxIDLen: 128, MaxProperties: 100, MaxDepth: 5, MaxKeyLen: 128, MaxStringLen: 1024,
		MaxClockSkew: 24 * time.Hour}
}

// Event is one event as the SDK sends it, after validation.
type Event struct {
	Name        string         `json:"name"`
	Time        time.Time      `json:"time"`
	UserID      string         `json:"user_id,omitempty"`
	AnonymousID string         `json:"anonymous_id,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
}

// wireEvent is the accepted shape: these fields and no others.
type wireEvent struct {
	Name        *string         `json:"name"`
	Time        *string         `json:"time"`
	UserID      *string         `json:"user_id"`
	AnonymousID *string         `json:"anonymous_id"`
	Properties  json.RawMessage `json:"properties"`
}

type wireBatch struct {
	Events []json.RawMessage `json:"events"`
}

// invalid builds the 400 that names the offending place, e.g.
// "events[3].properties.cart.items: more than 100 properties".
func invalid(code, where, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if where != "" {
		msg = where + ": " + msg
	}
	return fault.New(fault.Invalid, code, msg)
}

// Decode parses and checks a batch. received is the arrival time: events
// without a time get it, and times further than MaxClockSkew from it are
// refused. It never panics on any input (fuzzed).
func Decode(body []byte, lim Limits, received time.Time) ([]Event, error) {
	if !utf8.Valid(body) {
		return nil, invalid("body_invalid", "", "the body is not valid UTF-8")
	}
	var b wireBatch
	if err := strictUnmarshal(body, &b); err != nil {
		return nil, jsonProblem(err, "")
	}
	if b.Events == nil {
		return nil, invalid("events_missing", "events", "is required (a list of events)")
	}
	if len(b.Events) == 0 {
		return nil, invalid("events_empty", "events", "the list is empty")
	}
	if len(b.Events) > lim.MaxEvents {
		return nil, invalid("too_many_events", "events", "at most %d events in one batch, got %d", lim.MaxEvents, len(b.Events))
	}
	out := make([]Event, len(b.Events))
	for i, raw := range b.Events {
		where := fmt.Sprintf("events[%d]", i)
		if len(raw) > lim.MaxEventBytes {
			return nil, invalid("event_too_large", where, "an event is at most %d bytes", lim.MaxEventBytes)
		}
		if err := decodeEvent(raw, lim, received, where, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeEvent(raw []byte, lim Limits, received time.Time, where string, e *Event) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return invalid("event_invalid", where, "an event is a JSON object")
	}
	var w wireEvent
	if err := strictUnmarshal(raw, &w); err != nil {
		return jsonProblem(err, where)
	}
	switch {
	case w.Name == nil || *w.Name == "":
		return invalid("event_name_missing", where+".name", "is required")
	case len(*w.Name) > lim.MaxNameLen:
		return invalid("event_name_invalid", where+".name", "is longer than %d characters", lim.MaxNameLen)
	case lim.NamePattern != nil && !lim.NamePattern.MatchString(*w.Name):
		return invalid("event_name_invalid", where+".name", "must match %s", lim.NamePattern.String())
	}
	e.Name = *w.Name
	e.Time = received.UTC()
	if w.Time != nil {
		t, err := time.Parse(time.RFC3339Nano, *w.Time)
		if err != nil {
			return invalid("event_time_invalid", where+".time", "is not an RFC 3339 time")
		}
		if d := t.Sub(received); d > lim.MaxClockSkew || d < -maxAge {
			return invalid("event_time_invalid", where+".time", "is too far from now")
		}
		e.Time = t.UTC()
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{{"user_id", w.UserID, &e.UserID}, {"anonymous_id", w.AnonymousID, &e.AnonymousID}} {
		if f.v == nil {
			continue
		}
		if len(*f.v) > lim.MaxIDLen {
			return invalid("event_id_invalid", where+"."+f.name, "is longer than %d characters", lim.MaxIDLen)
		}
		if strings.IndexFunc(*f.v, isControl) >= 0 {
			return invalid("event_id_invalid", where+"."+f.name, "contains control characters")
		}
		*f.dst = *f.v
	}
	if len(w.Properties) > 0 && !bytes.Equal(bytes.TrimSpace(w.Properties), []byte("null")) {
		if t := bytes.TrimSpace(w.Properties); t[0] != '{' {
			return invalid("properties_invalid", where+".properties", "is a JSON object")
		}
		dec := json.NewDecoder(bytes.NewReader(w.Properties))
		dec.UseNumber()
		var props map[string]any
		if err := dec.Decode(&props); err != nil {
			return invalid("properties_invalid", where+".properties", "is not a valid JSON object")
		}
		count := 0
		if err := checkValue(props, lim, where+".properties", 0, &count); err != nil {
			return err
		}
		e.Properties = props
	}
	return nil
}

// maxAge bounds how old an event's time may be: a year, so a replayed or
// mis-clocked batch cannot write history.
const maxAge = 366 * 24 * time.Hour

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkValue walks a properties tree counting keys and items.
func checkValue(v any, lim Limits, where string, depth int, count *int) error {
	switch t := v.(type) {
	case string:
		if len(t) > lim.MaxStringLen {
			return invalid("property_too_long", where, "a string is at most %d bytes", lim.MaxStringLen)
		}
	case map[string]any:
		if depth >= lim.MaxDepth {
			return invalid("properties_too_deep", where, "properties nest at most %d levels", lim.MaxDepth)
		}
		for k, e := range t {
			*count++
			if *count > lim.MaxProperties {
				return invalid("too_many_properties", where, "more than %d properties", lim.MaxProperties)
			}
			if k == "" || len(k) > lim.MaxKeyLen {
				return invalid("property_key_invalid", where, "keys are 1 to %d characters", lim.MaxKeyLen)
			}
			if err := checkValue(e, lim, where+"."+safeKey(k), depth+1, count); err != nil {
				return err
			}
		}
	case []any:
		if depth >= lim.MaxDepth {
			return invalid("properties_too_deep", where, "properties nest at most %d levels", lim.MaxDepth)
		}
		for i, e := range t {
			*count++
			if *count > lim.MaxProperties {
				return invalid("too_many_properties", where, "more than %d properties", lim.MaxProperties)
			}
			if err := checkValue(e, lim, fmt.Sprintf("%s[%d]", where, i), depth+1, count); err != nil {
				return err
			}
		}
	case json.Number, bool, nil:
	default:
		return invalid("properties_invalid", where, "unsupported value")
	}
	return nil
}

// safeKey is a key as it may appear in an error message: it could hold an
// email, so it is scrubbed, and it is cut short.
func safeKey(k string) string {
	k, _ = ScrubString(k)
	if len(k) > 40 {
		k = k[:40] + "…"
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, k)
}

// strictUnmarshal decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}

var errTrailing = errors.New("trailing data")

// jsonProblem turns a decoding error into a 400 naming the field, without
// quoting the body.
func jsonProblem(err error, where string) error {
	prefix := where
	if prefix != "" {
		prefix += "."
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = strings.TrimSuffix(prefix, ".")
			if field == "" {
				return invalid("body_invalid", "", "the body is a JSON object {\"events\":[…]}")
			}
			return invalid("event_invalid", field, "has the wrong type")
		}
		return invalid("field_type_invalid", prefix+field, "must be a %s", jsonType(te.Type.Kind().String()))
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("body_invalid", "", "the body is not valid JSON")
	case errors.Is(err, errTrailing):
		return invalid("body_invalid", where, "unexpected data after the JSON value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid("unknown_field", prefix+safeKey(name), "is not a known field")
	}
	return invalid("body_invalid", where, "the JSON could not be decoded")
}

func jsonType(kind string) string {
	switch kind {
	case "ptr", "string":
		return "string"
	case "slice":
		return "list"
	case "map", "struct":
		return "object"
	}
	return kind
}
