package trust

import (
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

var stNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func fullSecurityTxt() SecurityTxt {
	return SecurityTxt{
		Contact:            []string{"mailto:security@example.com", "https://example.com/report", "tel:+1-201-555-0123"},
		Expires:            time.Date(2026, 12, 31, 23, 0, 0, 500, time.FixedZone("CET", 3600)),
		Encryption:         []string{"https://example.com/pgp-key.txt", "openpgp4fpr:5f2de5521c63a801ab59ccb603d49de44b29100f"},
		Acknowledgments:    []string{"https://example.com/hall-of-fame"},
		Policy:             []string{"https://example.com/disclosure"},
		Hiring:             []string{"https://example.com/jobs"},
		Canonical:          []string{"https://example.com/.well-known/security.txt"},
		PreferredLanguages: []string{"en", "de-CH"},
	}
}

func TestSecurityTxtRender(t *testing.T) {
	want := "Acknowledgments: https://example.com/hall-of-fame\n" +
		"Canonical: https://example.com/.well-known/security.txt\n" +
		"Contact: mailto:security@example.com\n" +
		"Contact: https://example.com/report\n" +
		"Contact: tel:+1-201-555-0123\n" +
		"Encryption: https://example.com/pgp-key.txt\n" +
		"Encryption: openpgp4fpr:5f2de5521c63a801ab59ccb603d49de44b29100f\n" +
		"Expires: 2026-12-31T22:00:00Z\n" +
		"Hiring: https://example.com/jobs\n" +
		"Policy: https://example.com/disclosure\n" +
		"Preferred-Languages: en, de-CH\n"
	if got := string(fullSecurityTxt().Render()); got != want {
		t.Errorf("Render:\n%s\nwant:\n%s", got, want)
	}
}

func TestSecurityTxtRenderOneLinePerValue(t *testing.T) {
	s := SecurityTxt{Contact: []string{"mailto:a@example.com\nPolicy: https://evil.example"}}
	if got := string(s.Render()); strings.Count(got, "\n") != 1 || strings.Contains(got, "\nPolicy") {
		t.Errorf("value injected a field: %q", got)
	}
}

func TestSecurityTxtValidate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*SecurityTxt)
		wantErr string // substring; "" means valid
	}{
		{"full", func(*SecurityTxt) {}, ""},
		{"minimal", func(s *SecurityTxt) {
			*s = SecurityTxt{Contact: []string{"mailto:security@example.com"}, Expires: stNow.AddDate(0, 6, 0)}
		}, ""},
		{"dns key", func(s *SecurityTxt) {
			s.Encryption = []string{"dns:5d2d37ab76d47d36._openpgpkey.example.com?type=OPENPGPKEY"}
		}, ""},
		{"missing contact", func(s *SecurityTxt) { s.Contact = nil }, "at least one Contact"},
		{"http contact", func(s *SecurityTxt) { s.Contact = []string{"http://example.com/report"} }, "must use https"},
		{"bare email", func(s *SecurityTxt) { s.Contact = []string{"security@example.com"} }, "mailto:, https: or tel:"},
		{"mailto without address", func(s *SecurityTxt) { s.Contact = []string{"mailto:"} }, "email address"},
		{"mailto with name", func(s *SecurityTxt) { s.Contact = []string{"mailto:Sec <sec@example.com>"} }, "plain email"},
		{"bad tel", func(s *SecurityTxt) { s.Contact = []string{"tel:call-us"} }, "phone number"},
		{"https contact without host", func(s *SecurityTxt) { s.Contact = []string{"https:///report"} }, "needs a host"},
		{"missing expires", func(s *SecurityTxt) { s.Expires = time.Time{} }, "Expires is required"},
		{"past expiry", func(s *SecurityTxt) { s.Expires = stNow.Add(-time.Second) }, "has passed"},
		{"expires now", func(s *SecurityTxt) { s.Expires = stNow }, "has passed"},
		{"expiry over a year", func(s *SecurityTxt) { s.Expires = stNow.AddDate(1, 0, 1) }, "more than a year"},
		{"http policy", func(s *SecurityTxt) { s.Policy = []string{"http://example.com/policy"} }, "Policy"},
		{"http hiring", func(s *SecurityTxt) { s.Hiring = []string{"http://example.com/jobs"} }, "Hiring"},
		{"http acknowledgments", func(s *SecurityTxt) { s.Acknowledgments = []string{"http://example.com/thanks"} }, "Acknowledgments"},
		{"http encryption", func(s *SecurityTxt) { s.Encryption = []string{"http://example.com/key"} }, "must use https"},
		{"ftp encryption", func(s *SecurityTxt) { s.Encryption = []string{"ftp://example.com/key"} }, "Encryption"},
		{"canonical elsewhere", func(s *SecurityTxt) { s.Canonical = []string{"https://example.com/security.txt"} }, "must point at /.well-known/security.txt"},
		{"http canonical", func(s *SecurityTxt) { s.Canonical = []string{"http://example.com/.well-known/security.txt"} }, "must use https"},
		{"bad language", func(s *SecurityTxt) { s.PreferredLanguages = []string{"en, de"} }, "language tag"},
		{"newline in contact", func(s *SecurityTxt) { s.Contact = []string{"https://example.com/a\nPolicy: x"} }, "Contact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fullSecurityTxt()
			tt.modify(&s)
			err := s.Validate(stNow)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
			}
			if !fault.Is(err, fault.Invalid) {
				t.Errorf("kind %s, want invalid", fault.KindOf(err))
			}
		})
	}
}

func TestSecurityTxtValidateReportsAll(t *testing.T) {
	s := SecurityTxt{Contact: []string{"http://example.com"}, Expires: stNow.Add(-time.Hour)}
	err := s.Validate(stNow)
	if err == nil || !strings.Contains(err.Error(), "must use https") || !strings.Contains(err.Error(), "has passed") {
		t.Errorf("want both problems, got %v", err)
	}
}
