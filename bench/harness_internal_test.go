package bench

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestHarnessDrivesRealSignIn checks that the harness's requests take the
// real path: a correct password signs in and yields a session the identity
// service accepts, and a wrong one is refused, so a benchmark could not
// silently be measuring error answers.
func TestHarnessDrivesRealSignIn(t *testing.T) {
	a := newApp(t)
	accts := createAccounts(t, a, 2)
	warmUp(t, a.Handler, accts)

	code, tok := signIn(a.Handler, accts[1], workerAddr(7))
	if code != http.StatusOK || tok == "" {
		t.Fatalf("sign-in: status %d, token set %v", code, tok != "")
	}
	if _, err := a.Identity.Authenticate(context.Background(), tok); err != nil {
		t.Fatalf("Authenticate(new session) = %v", err)
	}

	wrong := accts[0]
	wrong.password += "x"
	if code, tok := signIn(a.Handler, wrong, workerAddr(8)); code != http.StatusUnauthorized || tok != "" {
		t.Fatalf("wrong password: status %d, token set %v; want 401 and none", code, tok != "")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"single", ms(5), 99, 5 * time.Millisecond},
		{"median of odd", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 rounds up to the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"tiny q gives the min", ms(4, 2, 9), 0.1, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.q); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
			}
		})
	}
}
