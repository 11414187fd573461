package ratelimit

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WriteHeaders publishes the policy and the current state on a response,
// in the form of the IETF draft "RateLimit header fields for HTTP"
// (draft-ietf-httpapi-ratelimit-headers-10), whose fields are Structured
// Field lists (RFC 9651):
//
//	RateLimit-Policy: "api";q=100;w=60
//	RateLimit: "api";r=42;t=18
//
// q is the quota (Limit) per window w (Period, in seconds), r the requests
// remaining now and t the seconds until the key is rested. A denied result
// also gets Retry-After (RFC 9110), in whole seconds rounded up so that a
// client honouring it is never refused again for retrying early.
func WriteHeaders(h http.Header, p Policy, r Result) {
	name := sfString(p.Name)
	limit := r.Limit
	if limit == 0 {
		limit = p.Limit
	}
	h.Set("RateLimit-Policy", name+";q="+strconv.Itoa(limit)+";w="+strconv.FormatInt(ceilSeconds(p.Period, 1), 10))
	h.Set("RateLimit", name+";r="+strconv.Itoa(max(r.Remaining, 0))+";t="+strconv.FormatInt(ceilSeconds(r.ResetAfter, 0), 10))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(ceilSeconds(r.RetryAfter, 1), 10))
	}
}

// ceilSeconds rounds d up to whole seconds, at least floor.
func ceilSeconds(d time.Duration, floor int64) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return max(s, floor)
}

// sfString encodes name as a Structured Field String: printable ASCII in
// double quotes, with '"' and '\' escaped. Anything else is replaced, so a
// policy name can never inject a header line or break the list.
func sfString(name string) string {
	if name == "" {
		name = "default"
	}
	var b strings.Builder
	b.Grow(len(name) + 2)
	b.WriteByte('"')
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
