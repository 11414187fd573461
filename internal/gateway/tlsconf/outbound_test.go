package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"testing"
)

// The rule is tested in internal/outbound; this checks the names the
// gateway and the TLS-3 live check use still carry it.
func TestOutboundDelegates(t *testing.T) {
	tr := Outbound(OutboundOptions{})
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://192.0.2.1/probe", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrPlaintextRefused) {
		t.Fatalf("plaintext to 192.0.2.1: %v", err)
	}
	if c := tr.TLSClientConfig; c == nil || c.InsecureSkipVerify || c.MinVersion < tls.VersionTLS12 {
		t.Fatal("transport does not verify TLS 1.2+")
	}
	if CheckPlaintext("10.0.0.5:6379", false) == nil || CheckPlaintext("127.0.0.1:6379", false) != nil || !IsLoopback("::1") {
		t.Fatal("CheckPlaintext/IsLoopback do not apply the rule")
	}
	if _, err := (Dialer{}).DialContext(context.Background(), "tcp", "192.0.2.1:6379"); !errors.Is(err, ErrPlaintextRefused) {
		t.Fatalf("Dialer: %v", err)
	}
}
