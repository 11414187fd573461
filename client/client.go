// Package client is the public Go client for applications that sit behind
// or beside Rampart: it verifies the gateway's identity assertion, asks for
// authorization decisions, encrypts and decrypts fields, reads secrets and
// sends events. It depends only on the standard library and the JOSE
// library Rampart signs with, so importing it does not pull in Rampart.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls Rampart's JSON API with an API key (or an access token).
type Client struct {
	// BaseURL is Rampart's public URL, e.g. "https://auth.example.com".
	BaseURL string
	// Token is sent as "Authorization: Bearer <Token>": an API key
	// (rmp_…) or an OAuth access token.
	Token string
	// HTTP is the client used for requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// New returns a client for baseURL authenticating with token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// Error is an error answer from Rampart: the HTTP status and the stable
// error code and message of Rampart's one JSON error shape.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("rampart: %d %s: %s", e.Status, e.Code, e.Message)
}

// maxResponse bounds what the client reads from one answer.
const maxResponse = 64 << 20

// do sends in (if not nil) as JSON and decodes the answer into out (if not
// nil). Non-2xx answers become *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return errors.Join(errors.New("rampart: cannot decode answer"), err)
	}
	return nil
}
