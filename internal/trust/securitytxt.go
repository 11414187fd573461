package trust

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// SecurityTxtPath is where RFC 9116 says the file lives; Canonical must
// point here.
const SecurityTxtPath = "/.well-known/security.txt"

// SecurityTxt is the content of /.well-known/security.txt (RFC 9116, OPS-3):
// how researchers reach the operator. Fields hold URIs as the RFC requires.
type SecurityTxt struct {
	Contact            []string  // required: mailto:, https: or tel: URIs, preferred first
	Expires            time.Time // required: in the future, less than a year away
	Encryption         []string  // https:, dns: or openpgp4fpr: URIs of the key
	Acknowledgments    []string  // https: hall of fame
	Policy             []string  // https: disclosure policy (safe harbour)
	Hiring             []string  // https: security jobs
	Canonical          []string  // https: URLs ending in /.well-known/security.txt
	PreferredLanguages []string  // RFC 5646 tags, e.g. "en", "de-CH"
}

// Validate reports every problem with s at time now, joined into one error
// of kind Invalid. An expiry more than a year away is refused, not just
// warned about: the RFC recommends less than a year so stale contact data
// ages out, and an error is what makes an operator notice.
func (s SecurityTxt) Validate(now time.Time) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fault.Invalidf("security_txt_invalid", "security.txt: "+format, args...))
	}

	if len(s.Contact) == 0 {
		bad("at least one Contact is required")
	}
	for _, c := range s.Contact {
		if err := checkContact(c); err != nil {
			bad("Contact %q %v", c, err)
		}
	}

	switch {
	case s.Expires.IsZero():
		bad("Expires is required")
	case !s.Expires.After(now):
		bad("Expires %s has passed", s.Expires.UTC().Format(time.RFC3339))
	case s.Expires.After(now.AddDate(1, 0, 0)):
		bad("Expires %s is more than a year away", s.Expires.UTC().Format(time.RFC3339))
	}

	for _, e := range s.Encryption {
		if err := checkEncryption(e); err != nil {
			bad("Encryption %q %v", e, err)
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"Acknowledgments", s.Acknowledgments}, {"Hiring", s.Hiring}, {"Policy", s.Policy}} {
		for _, v := range f.values {
			if err := checkHTTPS(v); err != nil {
				bad("%s %q %v", f.name, v, err)
			}
		}
	}
	for _, c := range s.Canonical {
		if err := checkHTTPS(c); err != nil {
			bad("Canonical %q %v", c, err)
		} else if u, _ := url.Parse(c); u.Path != SecurityTxtPath {
			bad("Canonical %q must point at %s", c, SecurityTxtPath)
		}
	}
	for _, l := range s.PreferredLanguages {
		if !isLanguageTag(l) {
			bad("Preferred-Languages %q is not a language tag", l)
		}
	}
	return errors.Join(errs...)
}

// Render returns the file. Fields appear in the order RFC 9116 section 2.5
// defines them; repeatable fields get one line per value, and
// Preferred-Languages (allowed once) is one comma-separated line. Render
// does not validate: call Validate first.
func (s SecurityTxt) Render() []byte {
	var b bytes.Buffer
	field := func(name string, values []string) {
		for _, v := range values {
			fmt.Fprintf(&b, "%s: %s\n", name, oneLine(v))
		}
	}
	field("Acknowledgments", s.Acknowledgments)
	field("Canonical", s.Canonical)
	field("Contact", s.Contact)
	field("Encryption", s.Encryption)
	if !s.Expires.IsZero() {
		fmt.Fprintf(&b, "Expires: %s\n", s.Expires.UTC().Format(time.RFC3339))
	}
	field("Hiring", s.Hiring)
	field("Policy", s.Policy)
	if len(s.PreferredLanguages) > 0 {
		langs := make([]string, len(s.PreferredLanguages))
		for i, l := range s.PreferredLanguages {
			langs[i] = oneLine(l)
		}
		fmt.Fprintf(&b, "Preferred-Languages: %s\n", strings.Join(langs, ", "))
	}
	return b.Bytes()
}

// oneLine keeps an unvalidated value from adding fields of its own.
func oneLine(v string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(strings.TrimSpace(v))
}

func checkContact(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URI")
	}
	switch u.Scheme {
	case "https":
		return checkHTTPS(raw)
	case "http":
		return fmt.Errorf("must use https")
	case "mailto":
		addr, err := url.PathUnescape(u.Opaque)
		if err != nil || addr == "" {
			return fmt.Errorf("needs an email address")
		}
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr {
			return fmt.Errorf("needs a plain email address")
		}
		return nil
	case "tel":
		if !isPhone(u.Opaque) {
			return fmt.Errorf("needs a phone number")
		}
		return nil
	default:
		return fmt.Errorf("must be a mailto:, https: or tel: URI")
	}
}

// checkEncryption accepts the key locations RFC 9116 names: a web URI
// (https only), an OPENPGPKEY DNS record, or a key fingerprint.
func checkEncryption(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URI")
	}
	switch u.Scheme {
	case "https", "http":
		return checkHTTPS(raw)
	case "dns", "openpgp4fpr":
		if u.Opaque == "" && u.Path == "" && u.Host == "" {
			return fmt.Errorf("is empty")
		}
		return nil
	default:
		return fmt.Errorf("must be an https:, dns: or openpgp4fpr: URI")
	}
}

// isPhone accepts a global tel: number (RFC 3966): "+" then digits and
// visual separators.
func isPhone(s string) bool {
	if len(s) < 2 || s[0] != '+' {
		return false
	}
	digits := 0
	for _, c := range s[1:] {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return false
		}
	}
	return digits > 0
}

// isLanguageTag is a shape check for RFC 5646 tags: alphabetic primary
// subtag of 2–8 letters, then alphanumeric subtags of 1–8, joined by '-'.
func isLanguageTag(s string) bool {
	for i, sub := range strings.Split(s, "-") {
		if len(sub) < 1 || len(sub) > 8 || (i == 0 && len(sub) < 2) {
			return false
		}
		for _, c := range sub {
			alpha := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
			if !alpha && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}
