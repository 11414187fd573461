package sink

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/outbound"
)

// HTTPOptions configure an outbound HTTP client.
type HTTPOptions struct {
	// RootCAs verifies the server; nil means the system roots.
	RootCAs *x509.CertPool
	// AllowInsecure permits http:// to a non-loopback host. Off by default
	// (TLS-3): a webhook carries audit data and its signature does not hide
	// it from an eavesdropper.
	AllowInsecure bool
	// Timeout bounds one request, connection to last byte; default 15s,
	// the low end of the Standard Webhooks recommendation.
	Timeout time.Duration
}

const defaultHTTPTimeout = outbound.DefaultTimeout

// maxDrain bounds how much of a response body is read (to reuse the
// connection) and then discarded: a receiver cannot make us buffer much.
const maxDrain = 64 << 10

// NewHTTPClient validates endpoint and returns internal/outbound's client
// for it (TLS-3): TLS 1.2 or later with verification, every request
// re-checked so the client cannot be reused towards a plaintext remote
// host, and no redirects (a 3xx is a delivery failure, as the Standard
// Webhooks spec advises, and following one could downgrade to plaintext).
func NewHTTPClient(endpoint string, o HTTPOptions) (*http.Client, *url.URL, error) {
	u, err := checkEndpoint(endpoint, o.AllowInsecure)
	if err != nil {
		return nil, nil, err
	}
	c := outbound.Client(outbound.Options{AllowPlaintext: o.AllowInsecure, RootCAs: o.RootCAs, EnvironmentProxy: true}, o.Timeout)
	return c, u, nil
}

// checkEndpoint parses an http(s) URL and applies the plaintext rule. Its
// errors never quote the URL: incoming-webhook URLs (Slack's, for one) carry
// their secret in the path.
func checkEndpoint(endpoint string, allowInsecure bool) (*url.URL, error) {
	u, err := outbound.ParseURL(endpoint, allowInsecure)
	switch {
	case errors.Is(err, outbound.ErrPlaintextRefused):
		return nil, fault.Wrap(fault.Invalid, "endpoint_insecure", "plaintext http to a non-loopback host is refused; use https or allow insecure explicitly", err)
	case err != nil:
		return nil, fault.Wrap(fault.Invalid, "endpoint_invalid", "endpoint must be an absolute http(s) URL", err)
	}
	return u, nil
}

// Endpoint is a validated outbound HTTP endpoint with its client: the one
// way Rampart's webhooks, witnesses and alert channels post to the outside.
type Endpoint struct {
	client *http.Client
	url    *url.URL
}

// NewEndpoint validates rawURL (TLS-3) and builds its client.
func NewEndpoint(rawURL string, o HTTPOptions) (*Endpoint, error) {
	c, u, err := NewHTTPClient(rawURL, o)
	if err != nil {
		return nil, err
	}
	return &Endpoint{client: c, url: u}, nil
}

// Post sends body; header, if set, adds headers (a signature). A 2xx answer
// is success; anything else, 3xx included, is an Unavailable error for the
// caller to retry. The error names the status or the network failure, never
// the URL, which may carry a secret.
func (e *Endpoint) Post(ctx context.Context, contentType string, body []byte, header func(http.Header)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url.String(), bytes.NewReader(body))
	if err != nil {
		return fault.Wrap(fault.Internal, "request_build_failed", "could not build request", stripURL(err))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "Rampart")
	if header != nil {
		header(req.Header)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fault.Wrap(fault.Unavailable, "delivery_failed", "endpoint unreachable", stripURL(err))
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fault.New(fault.Unavailable, "delivery_failed", fmt.Sprintf("endpoint answered %d", resp.StatusCode))
	}
	return nil
}

// stripURL drops the *url.Error wrapper, whose message quotes the URL.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
