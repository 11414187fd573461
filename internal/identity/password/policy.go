package password

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/rampartsec/rampart/internal/fault"
)

// Policy defaults. NIST SP 800-63B requires a minimum of at least 8 and a
// maximum of at least 64; a generous maximum lets passphrases and password
// managers through while keeping the input to argon2 bounded.
const (
	DefaultMinLength = 8
	DefaultMaxLength = 256
)

// commonPasswordsGz is the @zxcvbn-ts/language-common password list (see
// README.md), one lowercase password per line, gzip-compressed. It is
// read-only data; each NewPolicy builds its own lookup set from it.
//
//go:embed common-passwords.txt.gz
var commonPasswordsGz []byte

// Policy checks new passwords per NIST SP 800-63B: length bounds, no common
// or breached passwords, no context words, and deliberately no composition
// rules (they push users to predictable patterns). Build it with NewPolicy;
// it is read-only afterwards and safe for concurrent use.
type Policy struct {
	MinLength int // in Unicode code points after NFKC
	MaxLength int // in Unicode code points after NFKC
	common    map[string]struct{}
}

// NewPolicy loads the embedded common-password list. Zero lengths take the
// defaults; lengths NIST does not allow (min < 8, max < 64) are refused.
func NewPolicy(minLen, maxLen int) (*Policy, error) {
	if minLen == 0 {
		minLen = DefaultMinLength
	}
	if maxLen == 0 {
		maxLen = DefaultMaxLength
	}
	if minLen < 8 || maxLen < 64 || maxLen < minLen {
		return nil, fmt.Errorf("password: policy lengths [%d,%d] invalid: need min >= 8, max >= 64 and max >= min", minLen, maxLen)
	}
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		return nil, fmt.Errorf("password: opening common list: %w", err)
	}
	common := make(map[string]struct{}, 50000)
	fold := cases.Fold()
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := sc.Text(); w != "" {
			common[fold.String(norm.NFKC.String(w))] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("password: reading common list: %w", err)
	}
	return &Policy{MinLength: minLen, MaxLength: maxLen, common: common}, nil
}

// Check returns nil if pw is acceptable as a new password, or a
// fault.Invalid error with code password_too_short, password_too_long,
// password_common or password_contextual. context holds words the password
// must not equal, such as the account's email address and the service name;
// for a word containing '@' its local part is checked too. Comparisons are
// case-insensitive after Unicode NFKC normalization, so "PASSWORD" and a
// full-width "ｐａｓｓｗｏｒｄ" are caught alike. Messages never echo pw.
func (p *Policy) Check(pw string, context ...string) error {
	n := norm.NFKC.String(pw)
	switch l := utf8.RuneCountInString(n); {
	case l < p.MinLength:
		return fault.Invalidf("password_too_short", "password must be at least %d characters", p.MinLength)
	case l > p.MaxLength:
		return fault.Invalidf("password_too_long", "password must be at most %d characters", p.MaxLength)
	}
	c := cases.Fold().String(n)
	if _, ok := p.common[c]; ok {
		return fault.Invalidf("password_common", "this password is too common or has appeared in a breach; choose another")
	}
	for _, w := range context {
		words := []string{w}
		if local, _, ok := strings.Cut(w, "@"); ok {
			words = append(words, local)
		}
		for _, w := range words {
			if w != "" && canonical(w) == c {
				return fault.Invalidf("password_contextual", "password must not be your email address, user name or the service name")
			}
		}
	}
	return nil
}

// IsCommon reports whether pw is on the common/breached list. Sign-in uses
// it to flag accounts whose existing password should be changed (AUTH-6).
func (p *Policy) IsCommon(pw string) bool {
	_, ok := p.common[canonical(pw)]
	return ok
}

// canonical is the form passwords are compared in: NFKC, then Unicode case
// folding. A Caser is stateful, so each call makes its own.
func canonical(s string) string {
	return cases.Fold().String(norm.NFKC.String(s))
}
