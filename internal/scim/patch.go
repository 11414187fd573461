package scim

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// maxOperations bounds the operations of one PATCH request. Identity
// providers batch group membership changes, but not by the thousand.
const maxOperations = 1000

// PatchOp is a parsed PATCH request (RFC 7644 §3.5.2).
type PatchOp struct {
	Operations []Operation
}

// Operation is one PATCH operation.
type Operation struct {
	Op    string          // "add", "replace" or "remove", lower-cased
	Path  *Path           // nil when the operation has no path
	Value json.RawMessage // nil when absent or null
}

// ParsePatch parses a PATCH body. Operation names are case-insensitive
// (Azure AD sends "Replace"); "schemas", when present, must name the
// PatchOp message; add and replace need a value, remove needs a path.
// Errors are fault.Invalid with a scimType code.
func ParsePatch(body []byte) (PatchOp, error) {
	var in struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Op    json.RawMessage `json:"op"`
			Path  json.RawMessage `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if err := decodeObject(body, &in); err != nil {
		return PatchOp{}, err
	}
	if in.Schemas != nil && !hasSchema(in.Schemas, MessagePatchOp) {
		return PatchOp{}, invalid(TypeInvalidSyntax, "schemas must include "+MessagePatchOp)
	}
	if len(in.Operations) == 0 {
		return PatchOp{}, invalid(TypeInvalidSyntax, "Operations must list at least one operation")
	}
	if len(in.Operations) > maxOperations {
		return PatchOp{}, invalid(TypeInvalidSyntax, "too many operations")
	}
	out := PatchOp{Operations: make([]Operation, 0, len(in.Operations))}
	for _, o := range in.Operations {
		name, err := optString(o.Op, "op")
		if err != nil {
			return PatchOp{}, invalid(TypeInvalidSyntax, "op must be a string")
		}
		op := Operation{Op: strings.ToLower(strings.TrimSpace(name))}
		switch op.Op {
		case "add", "replace", "remove":
		default:
			return PatchOp{}, invalid(TypeInvalidSyntax, `op must be "add", "replace" or "remove"`)
		}
		ps, err := optString(o.Path, "path")
		if err != nil {
			return PatchOp{}, invalid(TypeInvalidPath, "path must be a string")
		}
		if ps = strings.TrimSpace(ps); ps != "" {
			p, err := ParsePath(ps)
			if err != nil {
				return PatchOp{}, err
			}
			op.Path = &p
		}
		if !isAbsent(o.Value) {
			op.Value = o.Value
		}
		switch {
		case op.Op == "remove" && op.Path == nil:
			return PatchOp{}, invalid(TypeNoTarget, "remove needs a path")
		case op.Op != "remove" && op.Value == nil:
			return PatchOp{}, invalid(TypeInvalidSyntax, op.Op+" needs a value")
		case op.Path == nil && !isObject(op.Value):
			return PatchOp{}, invalid(TypeInvalidValue, "without a path, the value must be an object of attributes")
		}
		out.Operations = append(out.Operations, op)
	}
	return out, nil
}

func isObject(raw json.RawMessage) bool {
	return bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{"))
}

// ApplyUserPatch applies p to u, all or nothing (RFC 7644 §3.5.2: on error
// the resource is unchanged). It changes userName, externalId, active and
// emails; other attributes (name, displayName, extension attributes, …)
// are accepted and ignored; id, meta, groups and schemas are read-only.
func ApplyUserPatch(u *User, p PatchOp) error {
	w := *u
	w.Emails = slices.Clone(u.Emails)
	for _, op := range p.Operations {
		var err error
		if op.Path == nil {
			err = eachAttribute(op.Value, SchemaUser, func(path Path, v json.RawMessage) error {
				return applyUser(&w, op.Op, path, v, true)
			})
		} else {
			err = applyUser(&w, op.Op, *op.Path, op.Value, false)
		}
		if err != nil {
			return err
		}
	}
	w.Emails = normalizeEmails(w.Emails)
	if err := w.validate(); err != nil {
		return err
	}
	*u = w
	return nil
}

// eachAttribute walks the attributes of a path-less operation's value in
// a fixed order. Keys may be paths ("name.givenName") or a schema URN
// holding an object of that schema's attributes.
func eachAttribute(raw json.RawMessage, core string, fn func(Path, json.RawMessage) error) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return invalid(TypeInvalidValue, "the value must be an object of attributes")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		if strings.HasPrefix(strings.ToLower(k), "urn:") && isObject(v) {
			if strings.EqualFold(k, core) {
				if err := eachAttribute(v, core, fn); err != nil {
					return err
				}
			}
			continue // another schema's extension: not stored
		}
		path, err := ParsePath(k)
		if err != nil {
			return err
		}
		if err := fn(path, v); err != nil {
			return err
		}
	}
	return nil
}

// applyUser applies one operation at path. implicit is true for attributes
// named as keys of a path-less value, where read-only attributes are
// skipped (clients echo whole resources) rather than refused.
func applyUser(u *User, op string, path Path, v json.RawMessage, implicit bool) error {
	if path.URI != "" && !strings.EqualFold(path.URI, SchemaUser) {
		return nil // extension attribute: not stored
	}
	attr := strings.ToLower(path.Attr)
	simple := path.Filter == nil && path.Sub == ""
	switch attr {
	case "username", "externalid", "active":
		if !simple {
			return invalid(TypeInvalidPath, path.Attr+" has no sub-attributes")
		}
	}
	switch attr {
	case "username":
		if op == "remove" {
			return invalid(TypeMutability, "userName is required")
		}
		s, err := optString(v, "userName")
		if err != nil {
			return err
		}
		u.UserName = s
	case "externalid":
		if op == "remove" {
			u.ExternalID = ""
			return nil
		}
		s, err := optString(v, "externalId")
		if err != nil {
			return err
		}
		u.ExternalID = s
	case "active":
		if op == "remove" {
			return invalid(TypeMutability, "active cannot be removed; set it to false")
		}
		b, err := ParseBool(v)
		if err != nil {
			return invalid(TypeInvalidValue, "active must be a boolean")
		}
		u.Active = b
	case "emails":
		list, err := applyEmails(u.Emails, op, path, v)
		if err != nil {
			return err
		}
		u.Emails = list
	case "id", "meta", "groups", "schemas":
		if !implicit {
			return invalid(TypeMutability, path.Attr+" is read-only")
		}
	}
	return nil
}

// applyEmails applies one operation to the emails list.
func applyEmails(list []Email, op string, path Path, v json.RawMessage) ([]Email, error) {
	if path.Filter == nil && path.Sub == "" {
		if op == "remove" && v == nil {
			return nil, nil
		}
		vals, err := parseEmails(v)
		if err != nil {
			return nil, err
		}
		switch op {
		case "replace":
			return vals, nil
		case "remove": // remove these values
			return slices.DeleteFunc(list, func(e Email) bool {
				return slices.ContainsFunc(vals, func(x Email) bool { return strings.EqualFold(x.Value, e.Value) })
			}), nil
		}
		for _, e := range vals { // add: merge by value
			if e.Primary {
				for i := range list {
					list[i].Primary = false
				}
			}
			if i := slices.IndexFunc(list, func(x Email) bool { return strings.EqualFold(x.Value, e.Value) }); i >= 0 {
				list[i] = e
			} else {
				list = append(list, e)
			}
		}
		return list, nil
	}
	// Select the elements the path's filter names (all, without one).
	var hit []int
	for i := range list {
		if path.Filter == nil || path.Filter.Match(emailAttrs(list[i])) {
			hit = append(hit, i)
		}
	}
	if op == "remove" {
		if path.Sub == "" || strings.EqualFold(path.Sub, "value") {
			return slices.DeleteFunc(list, func(e Email) bool {
				return path.Filter == nil || path.Filter.Match(emailAttrs(e))
			}), nil
		}
		for _, i := range hit {
			if err := setEmailSub(&list[i], path.Sub, nil); err != nil {
				return nil, err
			}
		}
		return list, nil
	}
	if len(hit) == 0 {
		if op == "replace" && path.Filter != nil {
			return nil, invalid(TypeNoTarget, "no email matches "+path.String())
		}
		// add (or replace of emails.value on an empty list): create the
		// element, with the equalities the filter demands.
		e := Email{Primary: len(list) == 0}
		if path.Filter != nil {
			for name, val := range equalities(path.Filter.root) {
				_ = setEmailSub(&e, name, val)
			}
		}
		list = append(list, e)
		hit = []int{len(list) - 1}
	}
	for _, i := range hit {
		if path.Sub == "" {
			var e Email
			if err := json.Unmarshal(v, &e); err != nil {
				return nil, asInvalid(err, "an email must be an object")
			}
			list[i] = e
			continue
		}
		if err := setEmailSub(&list[i], path.Sub, v); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// setEmailSub sets (or, with a nil value, clears) one sub-attribute.
func setEmailSub(e *Email, sub string, v json.RawMessage) error {
	switch strings.ToLower(sub) {
	case "value", "type":
		s, err := optString(v, "emails."+sub)
		if err != nil {
			return err
		}
		if strings.EqualFold(sub, "value") {
			e.Value = s
		} else {
			e.Type = s
		}
	case "primary":
		if v == nil {
			e.Primary = false
			return nil
		}
		b, err := ParseBool(v)
		if err != nil {
			return invalid(TypeInvalidValue, "emails.primary must be a boolean")
		}
		e.Primary = b
	}
	return nil // display and others: not stored
}

// equalities collects attr eq "literal" terms of an and-only filter, the
// shape of emails[type eq "work"].
func equalities(n node) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	var walk func(node) bool
	walk = func(n node) bool {
		switch x := n.(type) {
		case *logical:
			return x.and && walk(x.l) && walk(x.r)
		case *compare:
			if x.op != "eq" || x.path.Sub != "" {
				return false
			}
			b, _ := json.Marshal(x.lit)
			out[x.path.Attr] = b
			return true
		}
		return false
	}
	if !walk(n) {
		return nil
	}
	return out
}

func emailAttrs(e Email) Attrs {
	return Attrs{"value": e.Value, "type": e.Type, "primary": e.Primary}
}

// normalizeEmails trims values, drops empty ones and keeps at most one
// primary (RFC 7643 §2.4).
func normalizeEmails(list []Email) []Email {
	out := list[:0]
	primary := false
	for _, e := range list {
		e.Value = strings.TrimSpace(e.Value)
		if e.Value == "" {
			continue
		}
		if e.Primary {
			e.Primary = !primary
			primary = true
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ApplyGroupPatch applies p to g, all or nothing. Only members change:
// a Group is a Rampart role, so a displayName other than the role's name is
// refused (mutability), as are id, meta and schemas; other attributes are
// ignored.
func ApplyGroupPatch(g *Group, p PatchOp) error {
	w := *g
	w.Members = slices.Clone(g.Members)
	for _, op := range p.Operations {
		var err error
		if op.Path == nil {
			err = eachAttribute(op.Value, SchemaGroup, func(path Path, v json.RawMessage) error {
				return applyGroup(&w, op.Op, path, v, true)
			})
		} else {
			err = applyGroup(&w, op.Op, *op.Path, op.Value, false)
		}
		if err != nil {
			return err
		}
	}
	*g = w
	return nil
}

func applyGroup(g *Group, op string, path Path, v json.RawMessage, implicit bool) error {
	if path.URI != "" && !strings.EqualFold(path.URI, SchemaGroup) {
		return nil
	}
	switch strings.ToLower(path.Attr) {
	case "members":
		return applyMembers(g, op, path, v)
	case "displayname":
		if path.Filter != nil || path.Sub != "" {
			return invalid(TypeInvalidPath, "displayName has no sub-attributes")
		}
		if op == "remove" {
			return invalid(TypeMutability, "displayName is required")
		}
		s, err := optString(v, "displayName")
		if err != nil {
			return err
		}
		if !strings.EqualFold(strings.TrimSpace(s), g.DisplayName) {
			return invalid(TypeMutability, "groups are Rampart roles: rename the role in Rampart")
		}
	case "id", "meta", "schemas":
		if !implicit {
			return invalid(TypeMutability, path.Attr+" is read-only")
		}
	}
	return nil
}

func applyMembers(g *Group, op string, path Path, v json.RawMessage) error {
	if path.Sub != "" {
		return invalid(TypeInvalidPath, "change members as a whole, not "+path.String())
	}
	if path.Filter != nil {
		if op != "remove" {
			return invalid(TypeInvalidPath, "use add or remove on members, not "+op+" with a filter")
		}
		g.Members = slices.DeleteFunc(g.Members, func(m Member) bool {
			return path.Filter.Match(Attrs{"value": m.Value, "display": m.Display})
		})
		return nil
	}
	if op == "remove" && v == nil {
		g.Members = nil
		return nil
	}
	vals, err := parseMembers(v)
	if err != nil {
		return err
	}
	has := func(list []Member, id string) bool {
		return slices.ContainsFunc(list, func(m Member) bool { return m.Value == id })
	}
	switch op {
	case "remove":
		g.Members = slices.DeleteFunc(g.Members, func(m Member) bool { return has(vals, m.Value) })
		return nil
	case "replace":
		g.Members = nil
	}
	for _, m := range vals {
		if !has(g.Members, m.Value) {
			g.Members = append(g.Members, m)
		}
	}
	return nil
}

// MemberChanges compares a Group's members before and after a change:
// added lists the user ids gained (in after's order, once each), removed
// those lost (in before's order).
func MemberChanges(before, after []Member) (added, removed []string) {
	had := make(map[string]bool, len(before))
	for _, m := range before {
		had[m.Value] = true
	}
	keep := make(map[string]bool, len(after))
	for _, m := range after {
		if !had[m.Value] && !keep[m.Value] {
			added = append(added, m.Value)
		}
		keep[m.Value] = true
	}
	for _, m := range before {
		if !keep[m.Value] {
			removed = append(removed, m.Value)
			keep[m.Value] = true // once each
		}
	}
	return added, removed
}
