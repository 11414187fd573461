package scim

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Bounds on untrusted filter and path text. A filter an identity provider
// sends is one or two comparisons; these only stop abuse (deep nesting that
// would exhaust the stack, huge inputs).
const (
	maxFilterLen = 4096
	maxPathLen   = 1024
	maxDepth     = 32
)

// Path is an attribute path: [URI ":"] attr ["[" filter "]"] ["." sub].
// A value filter (a "valuePath") only appears in PATCH paths and inside
// filters; Sub after a value filter only in PATCH paths.
type Path struct {
	URI    string  // schema URN prefix, "" when none
	Attr   string  // top-level attribute name, as written
	Filter *Filter // value filter selecting elements of a multi-valued attribute
	Sub    string  // sub-attribute name, "" when none
}

// String renders the path in SCIM syntax.
func (p Path) String() string {
	var b strings.Builder
	p.write(&b)
	return b.String()
}

func (p Path) write(b *strings.Builder) {
	if p.URI != "" {
		b.WriteString(p.URI)
		b.WriteByte(':')
	}
	b.WriteString(p.Attr)
	if p.Filter != nil {
		b.WriteByte('[')
		p.Filter.root.write(b)
		b.WriteByte(']')
	}
	if p.Sub != "" {
		b.WriteByte('.')
		b.WriteString(p.Sub)
	}
}

// Filter is a parsed SCIM filter (RFC 7644 §3.4.2.2).
type Filter struct {
	root node
}

// String renders the filter in SCIM syntax with explicit parentheses around
// every logical expression, so the parse is visible.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	var b strings.Builder
	f.root.write(&b)
	return b.String()
}

// Resource is what a filter is evaluated against. Attr returns the value of
// a top-level attribute or extension schema, named case-insensitively, or
// nil: a string, bool, number or time.Time, a map[string]any for a complex
// value, a []any for a multi-valued one. *User and *Group implement it
// without building the whole resource, so matching a list is cheap.
type Resource interface {
	Attr(name string) any
}

// Attrs is a JSON-shaped map as a Resource.
type Attrs map[string]any

// Attr looks name up case-insensitively.
func (a Attrs) Attr(name string) any { return get(a, name) }

// Match reports whether r satisfies the filter. A nil filter matches
// everything.
func (f *Filter) Match(r Resource) bool {
	if f == nil {
		return true
	}
	return f.root.eval(r)
}

// ParseFilter parses a filter: attribute paths, the operators eq ne co sw
// ew gt ge lt le and pr, and/or/not with the RFC's precedence (not binds
// tightest, then and, then or), parentheses, value filters such as
// emails[type eq "work"], and string, number, boolean and null literals.
// Keywords and attribute names are case-insensitive. Errors are
// fault.Invalid with code invalidFilter.
func ParseFilter(s string) (*Filter, error) {
	if len(s) > maxFilterLen {
		return nil, invalid(TypeInvalidFilter, "the filter is too long")
	}
	p, err := newParser(s, TypeInvalidFilter)
	if err != nil {
		return nil, err
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "unexpected "+t.describe())
	}
	return &Filter{root: n}, nil
}

// ParsePath parses a PATCH operation path (RFC 7644 §3.5.2): an attribute
// path, optionally with a value filter and a sub-attribute after it, as in
// members[value eq "2819c223"] or emails[type eq "work"].value. Errors are
// fault.Invalid with code invalidPath.
func ParsePath(s string) (Path, error) {
	if len(s) > maxPathLen {
		return Path{}, invalid(TypeInvalidPath, "the path is too long")
	}
	p, err := newParser(s, TypeInvalidPath)
	if err != nil {
		return Path{}, err
	}
	t := p.next()
	if t.kind != tWord {
		return Path{}, p.errAt(t, "expected an attribute name")
	}
	path, err := parseAttrPath(t.text)
	if err != nil {
		return Path{}, p.errAt(t, err.Error())
	}
	if p.peek().kind == tLBrack {
		if path.Sub != "" {
			return Path{}, p.errAt(t, "a value filter follows the attribute, not a sub-attribute")
		}
		p.next()
		p.parent = strings.ToLower(path.Attr)
		p.depth = 1
		n, err := p.parseOr()
		if err != nil {
			return Path{}, err
		}
		if c := p.next(); c.kind != tRBrack {
			return Path{}, p.errAt(c, "expected ]")
		}
		path.Filter = &Filter{root: n}
		if w := p.peek(); w.kind == tWord && strings.HasPrefix(w.text, ".") {
			p.next()
			sub := w.text[1:]
			if !validName(sub) {
				return Path{}, p.errAt(w, "invalid sub-attribute name")
			}
			path.Sub = sub
		}
	}
	if t := p.peek(); t.kind != tEOF {
		return Path{}, p.errAt(t, "unexpected "+t.describe())
	}
	return path, nil
}

// parseAttrPath splits [URI ":"] attr ["." sub]. The URI is everything up to
// the last colon: schema URNs contain dots ("…:2.0:User"), names do not
// contain colons.
func parseAttrPath(w string) (Path, error) {
	var p Path
	rest := w
	if i := strings.LastIndexByte(w, ':'); i >= 0 {
		p.URI, rest = w[:i], w[i+1:]
		if !strings.HasPrefix(strings.ToLower(p.URI), "urn:") {
			return Path{}, errText("a schema prefix must be a URN")
		}
	}
	attr, sub, hasSub := strings.Cut(rest, ".")
	if !validName(attr) || (hasSub && !validName(sub)) {
		return Path{}, errText("invalid attribute name")
	}
	p.Attr, p.Sub = attr, sub
	return p, nil
}

// validName reports whether s is an ATTRNAME (RFC 7643 §2.1), allowing the
// "$ref" sub-attribute.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		switch {
		case i == 0 && (alpha || c == '$'):
		case i > 0 && (alpha || (c >= '0' && c <= '9') || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

type errText string

func (e errText) Error() string { return string(e) }

// --- lexer ---

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tLBrack
	tRBrack
	tWord   // names, keywords, operators, numbers, true/false/null
	tString // a JSON string literal, decoded into str
)

type token struct {
	kind tokKind
	text string // the source text
	str  string // the decoded value of a tString
	pos  int
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "string"
	default:
		if len(t.text) > 32 {
			return strconv.Quote(t.text[:32] + "…")
		}
		return strconv.Quote(t.text)
	}
}

func lex(s string, code string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '[' || c == ']':
			k := tLParen
			switch c {
			case ')':
				k = tRParen
			case '[':
				k = tLBrack
			case ']':
				k = tRBrack
			}
			toks = append(toks, token{kind: k, text: s[i : i+1], pos: i})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, invalid(code, "unterminated string at offset "+strconv.Itoa(i))
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, invalid(code, "invalid string at offset "+strconv.Itoa(i))
			}
			toks = append(toks, token{kind: tString, text: s[i : j+1], str: v, pos: i})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()[]\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{kind: tWord, text: s[i:j], pos: i})
			i = j
		}
	}
	return append(toks, token{kind: tEOF, pos: len(s)}), nil
}

// --- parser ---

type parser struct {
	toks   []token
	i      int
	code   string // scimType of errors
	depth  int
	parent string // lower-case attribute a value filter applies to, "" at top level
}

func newParser(s, code string) (*parser, error) {
	toks, err := lex(s, code)
	if err != nil {
		return nil, err
	}
	return &parser{toks: toks, code: code}, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, msg string) error {
	return invalid(p.code, msg+" at offset "+strconv.Itoa(t.pos))
}

func (p *parser) isKeyword(t token, kw string) bool {
	return t.kind == tWord && strings.EqualFold(t.text, kw)
}

func (p *parser) parseOr() (node, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKeyword(p.peek(), "or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &logical{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (node, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isKeyword(p.peek(), "and") {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = &logical{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(t, "the expression is nested too deeply")
	}
	return nil
}

func (p *parser) parseUnary() (node, error) {
	t := p.peek()
	switch {
	case p.isKeyword(t, "not") && p.toks[p.i+1].kind == tLParen:
		p.next()
		n, err := p.parseParen()
		if err != nil {
			return nil, err
		}
		return &not{x: n}, nil
	case t.kind == tLParen:
		return p.parseParen()
	case t.kind == tWord:
		return p.parseAttrExpr()
	default:
		return nil, p.errAt(t, "expected an attribute, \"not\" or \"(\" but found "+t.describe())
	}
}

func (p *parser) parseParen() (node, error) {
	open := p.next() // "("
	if err := p.enter(open); err != nil {
		return nil, err
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if c := p.next(); c.kind != tRParen {
		return nil, p.errAt(c, "expected )")
	}
	p.depth--
	return n, nil
}

func isCompareOp(op string) bool {
	switch op {
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
		return true
	}
	return false
}

func (p *parser) parseAttrExpr() (node, error) {
	t := p.next()
	path, err := parseAttrPath(t.text)
	if err != nil {
		return nil, p.errAt(t, err.Error())
	}
	full := strings.ToLower(path.Attr)
	if p.parent != "" {
		full = p.parent + "." + full
	}
	if path.Sub != "" {
		full += "." + strings.ToLower(path.Sub)
	}
	opTok := p.next()
	if opTok.kind == tLBrack {
		if p.parent != "" {
			return nil, p.errAt(opTok, "value filters cannot nest")
		}
		if path.Sub != "" {
			return nil, p.errAt(opTok, "a value filter follows the attribute, not a sub-attribute")
		}
		if err := p.enter(opTok); err != nil {
			return nil, err
		}
		p.parent = strings.ToLower(path.Attr)
		inner, err := p.parseOr()
		p.parent = ""
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRBrack {
			return nil, p.errAt(c, "expected ]")
		}
		p.depth--
		return &valuePath{path: path, f: inner}, nil
	}
	if opTok.kind != tWord {
		return nil, p.errAt(opTok, "expected an operator but found "+opTok.describe())
	}
	op := strings.ToLower(opTok.text)
	if op == "pr" {
		return &present{path: path}, nil
	}
	if !isCompareOp(op) {
		return nil, p.errAt(opTok, "unknown operator "+opTok.describe())
	}
	v := p.next()
	var lit any
	switch v.kind {
	case tString:
		lit = v.str
	case tWord:
		switch strings.ToLower(v.text) {
		case "true":
			lit = true
		case "false":
			lit = false
		case "null":
			lit = nil
		default:
			f, err := strconv.ParseFloat(v.text, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, p.errAt(v, "expected a value but found "+v.describe())
			}
			lit = f
		}
	default:
		return nil, p.errAt(v, "expected a value but found "+v.describe())
	}
	if lit == nil && op != "eq" && op != "ne" {
		return nil, p.errAt(v, "null compares only with eq and ne")
	}
	if _, isBool := lit.(bool); isBool && op != "eq" && op != "ne" {
		return nil, p.errAt(v, "a boolean compares only with eq and ne")
	}
	return &compare{path: path, op: op, lit: lit, caseExact: isCaseExact(full)}, nil
}

// isCaseExact reports whether an attribute's strings compare
// case-sensitively (RFC 7643 §4, §8.7: ids and references); everything
// else — userName, emails, displayName — compares case-insensitively.
func isCaseExact(lowerPath string) bool {
	switch lowerPath {
	case "id", "externalid", "meta.location", "members", "members.value", "groups", "groups.value":
		return true
	}
	return false
}

// --- evaluation ---

type node interface {
	eval(m Resource) bool
	write(b *strings.Builder)
}

type logical struct {
	and  bool
	l, r node
}

func (n *logical) eval(m Resource) bool {
	if n.and {
		return n.l.eval(m) && n.r.eval(m)
	}
	return n.l.eval(m) || n.r.eval(m)
}

func (n *logical) write(b *strings.Builder) {
	b.WriteByte('(')
	n.l.write(b)
	if n.and {
		b.WriteString(" and ")
	} else {
		b.WriteString(" or ")
	}
	n.r.write(b)
	b.WriteByte(')')
}

type not struct{ x node }

func (n *not) eval(m Resource) bool { return !n.x.eval(m) }

func (n *not) write(b *strings.Builder) {
	b.WriteString("not (")
	n.x.write(b)
	b.WriteByte(')')
}

type present struct{ path Path }

func (n *present) eval(m Resource) bool {
	for _, v := range values(m, n.path) {
		if nonEmpty(v) {
			return true
		}
	}
	return false
}

func (n *present) write(b *strings.Builder) {
	n.path.write(b)
	b.WriteString(" pr")
}

type valuePath struct {
	path Path
	f    node
}

func (n *valuePath) eval(m Resource) bool {
	switch v := lookup(m, n.path).(type) {
	case map[string]any:
		return n.f.eval(Attrs(v))
	case []any:
		for _, e := range v {
			if em, ok := e.(map[string]any); ok && n.f.eval(Attrs(em)) {
				return true
			}
		}
	}
	return false
}

func (n *valuePath) write(b *strings.Builder) {
	n.path.write(b)
	b.WriteByte('[')
	n.f.write(b)
	b.WriteByte(']')
}

type compare struct {
	path      Path
	op        string
	lit       any // string, float64, bool or nil
	caseExact bool
}

func (n *compare) write(b *strings.Builder) {
	n.path.write(b)
	b.WriteByte(' ')
	b.WriteString(n.op)
	b.WriteByte(' ')
	lit, _ := json.Marshal(n.lit)
	b.Write(lit)
}

// eval: a multi-valued attribute matches when any value does; "ne" is the
// negation of "eq", so it also matches an absent attribute.
func (n *compare) eval(m Resource) bool {
	vals := values(m, n.path)
	if n.lit == nil {
		has := false
		for _, v := range vals {
			has = has || nonEmpty(v)
		}
		return has == (n.op == "ne")
	}
	op := n.op
	if op == "ne" {
		op = "eq"
	}
	hit := false
	for _, v := range vals {
		if n.match(op, v) {
			hit = true
			break
		}
	}
	if n.op == "ne" {
		return !hit
	}
	return hit
}

func (n *compare) match(op string, v any) bool {
	switch lit := n.lit.(type) {
	case bool:
		b, ok := v.(bool)
		return ok && b == lit // op is eq here: the parser refuses other ops
	case float64:
		f, ok := toFloat(v)
		if !ok {
			return false
		}
		return order(op, cmpFloat(f, lit))
	case string:
		switch s := v.(type) {
		case string:
			if op == "eq" {
				return s == lit || (!n.caseExact && strings.EqualFold(s, lit))
			}
			a, l := s, lit
			if !n.caseExact {
				a, l = strings.ToLower(a), strings.ToLower(l)
			}
			switch op {
			case "co":
				return strings.Contains(a, l)
			case "sw":
				return strings.HasPrefix(a, l)
			case "ew":
				return strings.HasSuffix(a, l)
			}
			return order(op, strings.Compare(a, l))
		case time.Time:
			t, err := time.Parse(time.RFC3339Nano, lit)
			if err != nil || op == "co" || op == "sw" || op == "ew" {
				return false
			}
			return order(op, s.Compare(t))
		}
	}
	return false
}

func order(op string, c int) bool {
	switch op {
	case "eq":
		return c == 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func nonEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case map[string]any:
		for _, e := range x {
			if nonEmpty(e) {
				return true
			}
		}
		return false
	case []any:
		for _, e := range x {
			if nonEmpty(e) {
				return true
			}
		}
		return false
	}
	return true
}

// lookup finds the top-level attribute of p, inside the extension object
// named by p.URI when the resource has one (core schema URNs fall through to
// the top level).
func lookup(r Resource, p Path) any {
	if p.URI != "" {
		if ext, ok := r.Attr(p.URI).(map[string]any); ok {
			return get(ext, p.Attr)
		}
	}
	return r.Attr(p.Attr)
}

// get is a case-insensitive map lookup: SCIM attribute names are
// case-insensitive (RFC 7643 §2.1).
func get(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// values yields the values a comparison sees: for a multi-valued complex
// attribute without a sub-attribute, each element's "value" (RFC 7644
// §3.4.2.2); nils are dropped.
func values(r Resource, p Path) []any {
	base := lookup(r, p)
	var out []any
	add := func(v any) {
		switch x := v.(type) {
		case nil:
		case []any:
			for _, e := range x {
				if e != nil {
					out = append(out, e)
				}
			}
		default:
			out = append(out, v)
		}
	}
	switch x := base.(type) {
	case []any:
		for _, e := range x {
			em, isMap := e.(map[string]any)
			switch {
			case isMap && p.Sub != "":
				add(get(em, p.Sub))
			case isMap:
				add(get(em, "value"))
			case p.Sub == "":
				add(e)
			}
		}
	case map[string]any:
		if p.Sub != "" {
			add(get(x, p.Sub))
		} else {
			add(x)
		}
	default:
		if p.Sub == "" {
			add(x)
		}
	}
	return out
}
