package waf

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// FuzzHandler throws request shapes (method, target, a header, content type,
// body) at the blocking WAF with response inspection on: it must never
// panic, and every answer is the upstream's 200 or a WAF verdict.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, target, header, ctype, body string }{
		{"GET", "/", "x", "", ""},
		{"POST", "/api", "y", "application/json", `{"a":[1,{"b":"<script>"}]}`},
		{"POST", "/form", "z", "application/x-www-form-urlencoded", "a=1&b=%27+OR+1%3D1--"},
		{"POST", "/up", "z", "multipart/form-data; boundary=xx", "--xx\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.php\"\r\n\r\n<?php\r\n--xx--\r\n"},
		{"POST", "/x", "z", "text/xml", "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>"},
		{"PUT", "/a/../../etc/passwd?x=${jndi:ldap://a}", "() { :; }; echo", "application/json", "{"},
		{"GET", "/static/app.css", "", "", ""},
		{"OPTIONS", "*", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.header, s.ctype, s.body)
	}
	cfg := Defaults()
	cfg.InspectResponses = true
	cfg.RequestBodyLimit, cfg.RequestBodyInMemoryLimit = 4096, 1024
	cfg.SkipExtensions = DefaultSkipExtensions()
	w, err := New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	h := w.Handler(echo, RouteOptions{}, nil, nil)
	f.Fuzz(func(t *testing.T, method, target, header, ctype, body string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: example.com\r\nUser-Agent: fuzz\r\nX-Fuzz: " + header +
			"\r\nContent-Type: " + ctype + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // not HTTP; net/http would have refused it before the WAF
		}
		r.RemoteAddr = "192.0.2.1:1234"
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, r)
		switch rw.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", rw.Code)
		}
	})
}
