package web_test

import (
	"net/http"
	"testing"
)

// BenchmarkMiddlewareStatic is the fixed cost every request pays (request
// id, headers, CSRF check, metrics) plus a small static file.
func BenchmarkMiddlewareStatic(b *testing.B) {
	h := newApp(b).Handler
	for b.Loop() {
		res := serve(h, newRequest(b, http.MethodGet, "/static/style.css", nil))
		if res.StatusCode != http.StatusOK {
			b.Fatal(res.StatusCode)
		}
	}
}

// BenchmarkRefusedBody is the cost of refusing a malformed API body: it
// must stay cheap, since anyone can send it.
func BenchmarkRefusedBody(b *testing.B) {
	h := newApp(b).Handler
	for b.Loop() {
		res := serve(h, jsonRequest(b, http.MethodPost, "/v1/signin", `{"email":"a@example.com","password":"x","extra":1}`))
		if res.StatusCode != http.StatusBadRequest {
			b.Fatal(res.StatusCode)
		}
	}
}
