// Package fault defines the small set of error kinds that cross package
// boundaries in Rampart. Capability packages return errors of these kinds;
// only the web package turns a kind into an HTTP status, so the mapping lives
// in one place and internal details never reach a response.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds. Internal is the zero value so that an unclassified error is
// treated as an internal failure (fail closed) rather than as user error.
const (
	Internal Kind = iota
	Invalid
	Unauthenticated
	Forbidden
	NotFound
	Conflict
	RateLimited
	Unavailable
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	NotFound:        "not_found",
	Conflict:        "conflict",
	RateLimited:     "rate_limited",
	Unavailable:     "unavailable",
}

func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}

// Error is an error with a kind, a stable machine-readable code and a
// message that is safe to show to the caller. Err, if set, is the internal
// cause: it is logged, never shown.
type Error struct {
	Kind    Kind
	Code    string // stable, snake_case, e.g. "password_too_short"
	Message string // safe for the client
	// RetryAfter is set on RateLimited and Unavailable errors when the
	// caller should wait before trying again.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a public code and message.
func New(k Kind, code, message string) *Error {
	return &Error{Kind: k, Code: code, Message: message}
}

// Wrap returns an error of kind k whose internal cause is err.
func Wrap(k Kind, code, message string, err error) *Error {
	return &Error{Kind: k, Code: code, Message: message, Err: err}
}

// KindOf reports the kind of err; errors without a kind are Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// As returns the *Error inside err, or a generic internal error wrapping it.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Code: "internal", Message: "internal error", Err: err}
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// Convenience constructors for the common kinds.

func Invalidf(code, format string, args ...any) *Error {
	return New(Invalid, code, fmt.Sprintf(format, args...))
}

func NotFoundf(code, format string, args ...any) *Error {
	return New(NotFound, code, fmt.Sprintf(format, args...))
}

func Conflictf(code, format string, args ...any) *Error {
	return New(Conflict, code, fmt.Sprintf(format, args...))
}

// ErrNotFound is the store's plain "no such row" answer; capability code
// turns it into a kinded error with its own message where that matters.
var ErrNotFound = New(NotFound, "not_found", "not found")
