package waf

import (
	"io"
	"net/http"

	"github.com/corazawaf/coraza/v3/types"
)

// respInterceptor runs phases 3 and 4 on a response. The status line is held
// back only while a body Coraza can inspect (text, HTML, XML, JSON within
// the response limit) is being buffered; anything else, and everything past
// the limit, streams straight through with Flush working.
type respInterceptor struct {
	s           *txState
	rw          http.ResponseWriter
	status      int
	wroteHeader bool // next called WriteHeader (or wrote)
	sentHeader  bool // the status went downstream
	passthrough bool
	blocked     bool
}

func (ri *respInterceptor) Header() http.Header { return ri.rw.Header() }

// Unwrap lets http.ResponseController reach deadlines on the real writer.
func (ri *respInterceptor) Unwrap() http.ResponseWriter { return ri.rw }

func (ri *respInterceptor) WriteHeader(code int) {
	if ri.wroteHeader || ri.blocked {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		ri.rw.WriteHeader(code) // informational (103 Early Hints): nothing to inspect
		return
	}
	ri.wroteHeader, ri.status = true, code
	tx := ri.s.tx
	for k, vs := range ri.rw.Header() {
		for _, v := range vs {
			tx.AddResponseHeader(k, v)
		}
	}
	if ri.verdict(tx.ProcessResponseHeaders(code, ri.s.r.Proto), 3) {
		return
	}
	if code == http.StatusSwitchingProtocols || tx.IsInterrupted() ||
		!tx.IsResponseBodyAccessible() || !tx.IsResponseBodyProcessable() {
		ri.passthrough = true
		ri.sendHeader()
	}
}

func (ri *respInterceptor) sendHeader() {
	if !ri.sentHeader {
		ri.sentHeader = true
		ri.rw.WriteHeader(ri.status)
	}
}

func (ri *respInterceptor) Write(b []byte) (int, error) {
	if !ri.wroteHeader && !ri.blocked {
		ri.WriteHeader(http.StatusOK)
	}
	if ri.blocked {
		return len(b), nil // the response was replaced; swallow the rest
	}
	if ri.passthrough {
		return ri.rw.Write(b)
	}
	tx := ri.s.tx
	it, n, err := tx.WriteResponseBody(b)
	if err != nil {
		return n, err
	}
	if it != nil || n < len(b) {
		// The inspection limit was reached and Coraza has run phase 4 on
		// what it holds: decide now, then stream the rest uninspected.
		if ri.verdict(it, 4) {
			return len(b), nil
		}
		if err := ri.release(); err != nil {
			return n, err
		}
		m, err := ri.rw.Write(b[n:])
		return n + m, err
	}
	return n, nil
}

// Flush passes through once the body is streaming; while a body is being
// buffered for inspection it has nothing to send yet.
func (ri *respInterceptor) Flush() {
	if !ri.wroteHeader && !ri.blocked {
		ri.WriteHeader(http.StatusOK)
	}
	if ri.passthrough && !ri.blocked {
		if f, ok := ri.rw.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// release sends the held status and buffered body and switches to streaming.
func (ri *respInterceptor) release() error {
	ri.passthrough = true
	ri.sendHeader()
	rd, err := ri.s.tx.ResponseBodyReader()
	if err != nil {
		return err
	}
	_, err = io.Copy(ri.rw, rd)
	return err
}

// finish runs phase 4 on a fully buffered body once next has returned.
func (ri *respInterceptor) finish() {
	if ri.blocked {
		return
	}
	if !ri.wroteHeader {
		ri.WriteHeader(ri.status)
		if ri.blocked {
			return
		}
	}
	if ri.passthrough {
		return
	}
	it, err := ri.s.tx.ProcessResponseBody()
	if err != nil {
		// Fail closed: a body that could not be inspected is not sent.
		ri.s.h.w.log.Error("waf could not inspect a response body", "err", err)
		ri.clear()
		ri.blocked = true
		ri.rw.WriteHeader(http.StatusBadGateway)
		return
	}
	if ri.verdict(it, 4) {
		return
	}
	_ = ri.release()
}

func (ri *respInterceptor) clear() {
	h := ri.rw.Header()
	for k := range h {
		delete(h, k)
	}
}

// verdict reports a response-phase interruption (or, in detection-only
// engine mode, the first would-be interruption not yet reported) and blocks
// when the route blocks. It returns true when the response was replaced.
func (ri *respInterceptor) verdict(it *types.Interruption, phase int) bool {
	s := ri.s
	if it == nil {
		if s.reported {
			return false
		}
		if it = s.tx.(detectionInterrupter).DetectionOnlyInterruption(); it == nil {
			return false
		}
	}
	s.reported = true
	conv := s.convert(it, phase)
	if !s.h.block || ri.sentHeader {
		// Too late to block (already streaming) or a detect route: report.
		s.h.interrupted(nil, s.r, conv, false)
		return false
	}
	ri.clear() // upstream headers (cookies, caching) must not ride on the block page
	ri.blocked = true
	s.h.interrupted(ri.rw, s.r, conv, true)
	return true
}

// wrapWriter exposes the interceptor with the optional interfaces callers
// probe for. Pusher is dropped (HTTP/2 push is obsolete); Hijack is reached
// through Unwrap, and upgrade requests are never intercepted anyway.
func wrapWriter(ri *respInterceptor) http.ResponseWriter { return ri }
