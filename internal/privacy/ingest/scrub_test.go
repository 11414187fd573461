package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Card numbers are the issuers' published test numbers (Visa, Mastercard,
// Amex, Discover, JCB, Diners, as listed by payment processors such as
// Stripe and Adyen for integration testing); all pass the Luhn check.
var testCards = []string{
	"4111111111111111",    // gitleaks:allow Visa
	"4242424242424242",    // gitleaks:allow Visa
	"4000056655665556",    // gitleaks:allow Visa debit
	"5555555555554444",    // gitleaks:allow Mastercard
	"2223003122003222",    // gitleaks:allow Mastercard 2-series
	"378282246310005",     // gitleaks:allow Amex (15)
	"6011111111111117",    // gitleaks:allow Discover
	"3566002020360505",    // gitleaks:allow JCB
	"36227206271667",      // gitleaks:allow Diners (14)
	"4000000000000000006", // gitleaks:allow Visa 19 digits (Adyen)
}

func TestLuhn(t *testing.T) {
	for _, c := range testCards {
		if !luhn([]byte(c)) {
			t.Errorf("%s fails Luhn", c)
		}
	}
	for _, c := range []string{"4111111111111112", "1234567812345678", "79927398710"} {
		if luhn([]byte(c)) {
			t.Errorf("%s passes Luhn", c)
		}
	}
	if !luhn([]byte("79927398713")) { // the textbook example
		t.Error("79927398713 fails Luhn")
	}
}

func TestScrubString(t *testing.T) {
	for _, c := range testCards {
		if got, n := ScrubString("paid with " + c + "."); got != "paid with [card]." || n != 1 {
			t.Errorf("card %s: %q %d", c, got, n)
		}
	}
	for _, tc := range []struct {
		in, want string
		n        int
	}{
		// Emails.
		{"jane@example.com", "[email]", 1},
		{"Mail Jane.Doe+news@mail.example.co.uk today", "Mail [email] today", 1},
		{"a@b.io, c_d@e-f.org", "[email], [email]", 2},
		{"user@localhost", "user@localhost", 0}, // no dotted domain
		{"version 1.2@beta", "version 1.2@beta", 0},
		// Cards with separators.
		{"4111 1111 1111 1111", "[card]", 1},
		{"4111-1111-1111-1111", "[card]", 1},
		{"3782 822463 10005", "[card]", 1},
		{"4111 1111 1111 1112", "4111 1111 1111 1112", 0}, // not Luhn, 16 digits: not a phone either
		{"4111.1111.1111.1111", "4111.1111.1111.1111", 0}, // dots are not how cards are written; 16 digits is no phone
		// Phones.
		{"+14155550100", "[phone]", 1},
		{"call +44 20 7946 0958 now", "call [phone] now", 1},
		{"(415) 555-0100", "[phone]", 1},
		{"415-555-0100", "[phone]", 1},
		{"415.555.0100", "[phone]", 1},
		{"030 1234 5678", "[phone]", 1},
		{"+49 (30) 1234-5678", "[phone]", 1},
		// Not personal data: bare ids, timestamps, dates, addresses, versions.
		{"order 1234567890123", "order 1234567890123", 0},
		{"1700000000000", "1700000000000", 0},
		{"2024-01-15", "2024-01-15", 0},
		{"2024-01-15 10:30:00", "2024-01-15 10:30:00", 0},
		{"192.168.100.200", "192.168.100.200", 0},
		{"v1.22.333", "v1.22.333", 0},
		{"3 apples", "3 apples", 0},
		{"+1", "+1", 0},
		{"", "", 0},
		// Mixed.
		{"jane@example.com / +1 415 555 0100 / 4242 4242 4242 4242", "[email] / [phone] / [card]", 3},
	} {
		got, n := ScrubString(tc.in)
		if got != tc.want || n != tc.n {
			t.Errorf("ScrubString(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.n)
		}
		if again, m := ScrubString(got); again != got || m != 0 {
			t.Errorf("not idempotent on %q: %q, %d", got, again, m)
		}
	}
}

func TestScrubValue(t *testing.T) {
	var v map[string]any
	if err := json.Unmarshal([]byte(`{"a":"x@y.com","n":5,"b":true,"z":null,"l":["+1 415 555 0100",{"deep":"4111111111111111"}],"m@x.org":"k"}`), &v); err != nil { // gitleaks:allow
		t.Fatal(err)
	}
	out, n := ScrubValue(v)
	b, _ := json.Marshal(out)
	want := `{"[email]":"k","a":"[email]","b":true,"l":["[phone]",{"deep":"[card]"}],"n":5,"z":null}`
	if string(b) != want || n != 4 {
		t.Fatalf("ScrubValue = %s, %d; want %s, 4", b, n, want)
	}
}

func FuzzScrubString(f *testing.F) {
	for _, s := range []string{"jane@example.com", "+1 (415) 555-0100", "4111 1111 1111 1111", "a@b.c1 555 123 4567", // gitleaks:allow
		"((555) 123-4567", "1+1234567", "x@y.com555-123-4567", "12 4111111111111111", "++--..((", "\xff@\xfe.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once, n := ScrubString(s)
		twice, m := ScrubString(once)
		if twice != once || m != 0 {
			t.Fatalf("not idempotent: %q -> %q (%d) -> %q (%d)", s, once, n, twice, m)
		}
		if n == 0 && once != s {
			t.Fatalf("changed %q to %q with no count", s, once)
		}
		if len(once) > len(s)+len(PlaceholderEmail)*n {
			t.Fatalf("output grew: %q -> %q", s, once)
		}
	})
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"events":[{"name":"a","time":"2030-01-01T00:00:00Z","user_id":"u","anonymous_id":"x","properties":{"a":[1,{"b":"c"}]}}]}`,
		`{"events":[]}`, `{"events":null}`, `{"events":[1]}`, `{"events":[{"name":5}]}`, `{"x":1}`, `[]`, `null`, `{"events":[{"name":"a"}]}x`,
		`{"events":[{"name":"a","properties":{"a":{"b":{"c":{"d":{"e":{}}}}}}}]}`, `{"events":[{"name":"a","properties":"s"}]}`,
	} {
		f.Add([]byte(s))
	}
	lim := DefaultLimits()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := Decode(body, lim, now)
		if err != nil {
			if evs != nil {
				t.Fatal("events with an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > lim.MaxEvents {
			t.Fatalf("%d events accepted", len(evs))
		}
		for _, e := range evs {
			if !lim.NamePattern.MatchString(e.Name) || e.Time.IsZero() {
				t.Fatalf("accepted %+v", e)
			}
			// What is accepted re-encodes and scrubs without trouble.
			if e.Properties != nil {
				ScrubValue(e.Properties)
			}
			if _, err := json.Marshal(e); err != nil {
				t.Fatalf("accepted event does not encode: %v", err)
			}
		}
	})
}
