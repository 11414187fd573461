package ingest

import (
	"regexp"
	"strings"
)

// Placeholders that replace personal data. They hold no digit and no "@",
// so scrubbing scrubbed text finds nothing more (the scrubber is
// idempotent), and their brackets cannot join two neighbouring runs of
// digits into a new one.
const (
	PlaceholderEmail = "[email]"
	PlaceholderPhone = "[phone]"
	PlaceholderCard  = "[card]"
)

// emailRE is deliberately broad in the local part (what people type) and
// requires a dotted domain with an alphabetic top-level label, so "a@b" in
// a version string or a handle stays. Go's regexp runs in linear time, so
// hostile input cannot make it backtrack.
var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)

// ScrubString replaces emails, card numbers (13 to 19 digits that pass the
// Luhn check, spaces or dashes allowed between groups) and phone numbers
// in s by placeholders and reports how many it replaced.
//
// Phone numbers are runs of digits that either start with "+" (7 to 15
// digits, E.164) or are written with separators (9 to 15 digits, groups
// split by spaces, dashes, dots or parentheses, as "(555) 123-4567" or
// "030 1234 5678"). A bare run of digits is not taken for a phone: order
// numbers, timestamps and ids are bare digits far more often than phone
// numbers are, and scrubbing them would destroy the analytics the events
// exist for. Runs written with dots count only when their last group has
// four or more digits, so IPv4 addresses and version numbers stay, and
// runs ending in a group of one or two digits ("2024-01-15 10:30") are
// dates and times, not phones; national formats written in pairs without
// "+" ("01 23 45 67 89") are therefore not recognised.
func ScrubString(s string) (string, int) {
	n := 0
	if strings.IndexByte(s, '@') >= 0 {
		s = emailRE.ReplaceAllStringFunc(s, func(string) string { n++; return PlaceholderEmail })
	}
	if !hasDigitRun(s) {
		return s, n
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !(c == '+' || c == '(' || isDigit(c)) {
			i++
			continue
		}
		end, r := scanRun(s, i)
		if end <= i {
			i++
			continue
		}
		if kind := r.classify(); kind != "" {
			if b.Len() == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[last:i])
			b.WriteString(kind)
			last = end
			n++
		}
		i = end
	}
	if last == 0 {
		return s, n
	}
	b.WriteString(s[last:])
	return b.String(), n
}

// hasDigitRun is the cheap pre-check: no seven digits, no phone or card.
func hasDigitRun(s string) bool {
	d := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			d++
			if d >= 7 {
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// run describes a maximal candidate: digits with single separators
// between them, optionally led by "+" or "(".
type run struct {
	digits     [19]byte
	nd         int  // digits seen (may exceed 19)
	plus       bool // led by "+"
	seps       bool // any separator inside
	dots       bool // a dot separator inside
	onlySpDash bool // every separator is a space or a dash
	lastGroup  int  // digits in the final group
}

// scanRun reads the candidate starting at i and returns where it ends
// (just after its last digit) and its description. A run never ends on a
// separator, so text after it is left as it was.
func scanRun(s string, i int) (int, run) {
	r := run{onlySpDash: true}
	j := i
	switch s[j] {
	case '+':
		r.plus = true
		j++
	case '(':
		// "(" opens an area code; it counts as a separator.
		r.seps, r.onlySpDash = true, false
		j++
	}
	end := i
	group := 0
	var pending byte // the separator after the last digit, if any
	for j < len(s) {
		c := s[j]
		switch {
		case isDigit(c):
			if pending != 0 {
				// The separator sits between digits: it is part of the run.
				if pending == '.' {
					r.dots = true
				}
				if pending != ' ' && pending != '-' {
					r.onlySpDash = false
				}
				r.seps = true
				group = 0
				pending = 0
			}
			if r.nd < len(r.digits) {
				r.digits[r.nd] = c
			}
			r.nd++
			group++
			j++
			end = j
		case (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') && r.nd > 0:
			// One separator between groups, or ") " / " (" around an
			// area code.
			if pending != 0 && !(pending == ')' && c == ' ' || pending == ' ' && c == '(') {
				return end, r.finish(group)
			}
			if pending == 0 || c == '(' {
				pending = c
			} else {
				pending = ')'
			}
			j++
		default:
			return end, r.finish(group)
		}
	}
	return end, r.finish(group)
}

func (r run) finish(group int) run {
	if group > 0 {
		r.lastGroup = group
	}
	return r
}

// classify names what the run is: a card, a phone number, or nothing.
func (r run) classify() string {
	if r.nd >= 13 && r.nd <= 19 && r.onlySpDash && luhn(r.digits[:r.nd]) {
		return PlaceholderCard
	}
	if r.nd > 15 {
		return ""
	}
	if r.plus && r.nd >= 7 {
		return PlaceholderPhone
	}
	if r.seps && r.nd >= 9 && r.lastGroup >= 3 && (!r.dots || r.lastGroup >= 4) {
		return PlaceholderPhone
	}
	return ""
}

// luhn reports whether the digits pass the Luhn (mod 10) check that every
// payment card number carries.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ScrubValue scrubs every string in a decoded JSON value (object keys
// included, at any depth) in place where it can and returns the value with
// the number of replacements. Objects whose keys collide after scrubbing
// keep the later value.
func ScrubValue(v any) (any, int) {
	switch t := v.(type) {
	case string:
		return ScrubString(t)
	case map[string]any:
		n := 0
		for k, e := range t {
			e2, m := ScrubValue(e)
			n += m
			k2, m := ScrubString(k)
			n += m
			if m > 0 {
				delete(t, k)
			}
			t[k2] = e2
		}
		return t, n
	case []any:
		n := 0
		for i, e := range t {
			var m int
			t[i], m = ScrubValue(e)
			n += m
		}
		return t, n
	}
	return v, 0
}
