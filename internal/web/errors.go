package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/rampartsec/rampart/internal/fault"
)

// status maps an error kind to its HTTP status. This is the only place in
// Rampart where that mapping exists.
func status(k fault.Kind) int {
	switch k {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.Unauthenticated:
		return http.StatusUnauthorized
	case fault.Forbidden:
		return http.StatusForbidden
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.RateLimited:
		return http.StatusTooManyRequests
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is the one JSON error shape of the API.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// publicError turns any error into what may be shown: internal errors keep
// their cause for the log and show a generic message.
func publicError(err error) (*fault.Error, int) {
	fe := fault.As(err)
	if errors.Is(err, errBodyTooLarge) {
		fe = fault.New(fault.Invalid, "body_too_large", "the request body is too large")
		return fe, http.StatusRequestEntityTooLarge
	}
	if fe == errMethodNotAllowed {
		return fe, http.StatusMethodNotAllowed
	}
	st := status(fe.Kind)
	if st == http.StatusInternalServerError {
		return &fault.Error{Kind: fault.Internal, Code: "internal", Message: "internal error"}, st
	}
	return fe, st
}

// writeError writes err as the JSON error shape and logs internal failures
// with their cause (never the request body).
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	fe, st := publicError(err)
	if st >= 500 {
		s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "status", st, "request_id", requestID(r.Context()), "err", err)
	}
	if fe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(fe.RetryAfter.Seconds()+0.999)))
	}
	writeJSON(w, st, errorBody{Error: errorDetail{Code: fe.Code, Message: fe.Message, RequestID: requestID(r.Context())}})
}

func writeJSON(w http.ResponseWriter, st int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(st)
	if v == nil {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		slog.Default().Debug("write json", "err", err)
	}
}
