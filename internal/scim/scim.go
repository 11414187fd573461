// Package scim is the SCIM 2.0 protocol (RFC 7643, RFC 7644) as Rampart
// speaks it: the JSON shapes of Users, Groups, list responses and errors,
// the filter language, PATCH operations and the discovery documents. It
// knows nothing of HTTP serving or storage: the web package maps requests
// onto it and the tenancy service holds the state.
//
// Rampart keeps little per provisioned person — the address (userName), the
// identity provider's externalId, the active flag and role membership — so
// attributes outside that set are accepted and ignored rather than refused:
// identity providers send whatever their attribute mapping holds, and
// refusing a givenName would break provisioning for no benefit.
package scim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// Schema and message URNs.
const (
	SchemaUser                  = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup                 = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaServiceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	MessageListResponse         = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	MessagePatchOp              = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	MessageError                = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// ContentType is the media type of every SCIM response (RFC 7644 §3.1).
const ContentType = "application/scim+json"

// MaxResults is the most resources one list response holds; a larger count
// is lowered to it (RFC 7644 §3.4.2.4 lets the server return fewer).
const MaxResults = 200

// scimType values (RFC 7644 §3.12). Errors from this package are
// fault.Invalid with one of these as Code, so the web layer can give the
// scimType without a second error vocabulary.
const (
	TypeInvalidFilter = "invalidFilter"
	TypeTooMany       = "tooMany"
	TypeUniqueness    = "uniqueness"
	TypeMutability    = "mutability"
	TypeInvalidSyntax = "invalidSyntax"
	TypeInvalidPath   = "invalidPath"
	TypeNoTarget      = "noTarget"
	TypeInvalidValue  = "invalidValue"
	TypeInvalidVers   = "invalidVers"
	TypeSensitive     = "sensitive"
)

// IsType reports whether code is a scimType of RFC 7644 §3.12.
func IsType(code string) bool {
	switch code {
	case TypeInvalidFilter, TypeTooMany, TypeUniqueness, TypeMutability, TypeInvalidSyntax,
		TypeInvalidPath, TypeNoTarget, TypeInvalidValue, TypeInvalidVers, TypeSensitive:
		return true
	}
	return false
}

func invalid(scimType, detail string) *fault.Error {
	return fault.New(fault.Invalid, scimType, detail)
}

// Error is the SCIM error response body (RFC 7644 §3.12). SCIM is the one
// part of Rampart whose errors do not use the {"error":{…}} shape: identity
// providers parse this one.
type Error struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// NewError builds an error body; status is the HTTP status.
func NewError(status int, scimType, detail string) Error {
	return Error{Schemas: []string{MessageError}, Status: strconv.Itoa(status), ScimType: scimType, Detail: detail}
}

// Meta is a resource's metadata (RFC 7643 §3.1).
type Meta struct {
	ResourceType string    `json:"resourceType"`
	Created      time.Time `json:"created,omitzero"`
	LastModified time.Time `json:"lastModified,omitzero"`
	Location     string    `json:"location,omitempty"`
}

// Email is one of a User's addresses.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// UnmarshalJSON accepts "primary" as a JSON boolean or as the strings
// "true"/"false", which some identity providers send.
func (e *Email) UnmarshalJSON(b []byte) error {
	var in struct {
		Value   json.RawMessage `json:"value"`
		Type    json.RawMessage `json:"type"`
		Primary json.RawMessage `json:"primary"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return invalid(TypeInvalidValue, "an email must be an object")
	}
	var out Email
	var err error
	if out.Value, err = optString(in.Value, "emails.value"); err != nil {
		return err
	}
	if out.Type, err = optString(in.Type, "emails.type"); err != nil {
		return err
	}
	if isAbsent(in.Primary) {
		out.Primary = false
	} else if out.Primary, err = ParseBool(in.Primary); err != nil {
		return invalid(TypeInvalidValue, "emails.primary must be a boolean")
	}
	*e = out
	return nil
}

// GroupRef is a group a User belongs to (the User's read-only "groups").
type GroupRef struct {
	Value   string `json:"value"`
	Ref     string `json:"$ref,omitempty"`
	Display string `json:"display,omitempty"`
}

// User is the SCIM User resource as Rampart stores it. ID is the Rampart
// user id; UserName is the person's email address.
type User struct {
	Schemas    []string   `json:"schemas"`
	ID         string     `json:"id,omitempty"`
	ExternalID string     `json:"externalId,omitempty"`
	UserName   string     `json:"userName"`
	Active     bool       `json:"active"`
	Emails     []Email    `json:"emails,omitempty"`
	Groups     []GroupRef `json:"groups,omitempty"`
	Meta       *Meta      `json:"meta,omitempty"`
}

// Attr is the User as filter input (see Resource).
func (u *User) Attr(name string) any {
	switch {
	case strings.EqualFold(name, "userName"):
		return u.UserName
	case strings.EqualFold(name, "id"):
		return u.ID
	case strings.EqualFold(name, "externalId"):
		return u.ExternalID
	case strings.EqualFold(name, "active"):
		return u.Active
	case strings.EqualFold(name, "emails"):
		emails := make([]any, len(u.Emails))
		for i, e := range u.Emails {
			emails[i] = map[string]any{"value": e.Value, "type": e.Type, "primary": e.Primary}
		}
		return emails
	case strings.EqualFold(name, "groups"):
		groups := make([]any, len(u.Groups))
		for i, g := range u.Groups {
			groups[i] = map[string]any{"value": g.Value, "display": g.Display}
		}
		return groups
	case strings.EqualFold(name, "schemas"):
		return stringsAny(u.Schemas)
	case strings.EqualFold(name, "meta") && u.Meta != nil:
		return metaAttrs(u.Meta)
	}
	return nil
}

// Member is one member of a Group: a user id.
type Member struct {
	Value   string `json:"value"`
	Ref     string `json:"$ref,omitempty"`
	Display string `json:"display,omitempty"`
}

// Group is the SCIM Group resource. Rampart maps each role of a workspace
// to a Group: ID is the role id, DisplayName the role name.
type Group struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id,omitempty"`
	ExternalID  string   `json:"externalId,omitempty"`
	DisplayName string   `json:"displayName"`
	// Members is nil when left out of a response (excludedAttributes=members).
	Members []Member `json:"members,omitempty"`
	Meta    *Meta    `json:"meta,omitempty"`
}

// Attr is the Group as filter input (see Resource).
func (g *Group) Attr(name string) any {
	switch {
	case strings.EqualFold(name, "displayName"):
		return g.DisplayName
	case strings.EqualFold(name, "id"):
		return g.ID
	case strings.EqualFold(name, "externalId"):
		return g.ExternalID
	case strings.EqualFold(name, "members"):
		members := make([]any, len(g.Members))
		for i, m := range g.Members {
			members[i] = map[string]any{"value": m.Value, "display": m.Display}
		}
		return members
	case strings.EqualFold(name, "schemas"):
		return stringsAny(g.Schemas)
	case strings.EqualFold(name, "meta") && g.Meta != nil:
		return metaAttrs(g.Meta)
	}
	return nil
}

func metaAttrs(m *Meta) map[string]any {
	out := map[string]any{"resourceType": m.ResourceType, "location": m.Location}
	if !m.Created.IsZero() {
		out["created"] = m.Created
	}
	if !m.LastModified.IsZero() {
		out["lastModified"] = m.LastModified
	}
	return out
}

func stringsAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// ListResponse is the answer to a query (RFC 7644 §3.4.2).
type ListResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

// NewListResponse builds a list response for one page of a result of total
// resources starting at the 1-based startIndex.
func NewListResponse[T any](total, startIndex int, page []T) ListResponse {
	res := make([]any, len(page))
	for i := range page {
		res[i] = page[i]
	}
	return ListResponse{Schemas: []string{MessageListResponse}, TotalResults: total, StartIndex: startIndex, ItemsPerPage: len(page), Resources: res}
}

// ParsePage reads the startIndex and count query parameters (either may be
// ""). Per RFC 7644 §3.4.2.4 a startIndex below 1 means 1 and a negative
// count means 0; count defaults to, and is capped at, MaxResults.
func ParsePage(startIndex, count string) (start, n int, err error) {
	start, n = 1, MaxResults
	if startIndex != "" {
		v, ok := atoi(startIndex)
		if !ok {
			return 0, 0, invalid(TypeInvalidValue, "startIndex must be an integer")
		}
		start = max(v, 1)
	}
	if count != "" {
		v, ok := atoi(count)
		if !ok {
			return 0, 0, invalid(TypeInvalidValue, "count must be an integer")
		}
		n = min(max(v, 0), MaxResults)
	}
	return start, n, nil
}

// atoi parses a decimal integer, saturating instead of overflowing: an
// absurd startIndex is just past the end.
func atoi(s string) (int, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || len(s) > 64 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<40 {
			n = n*10 + int(c-'0')
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// Window returns the slice bounds [lo, hi) of the page within total items.
func Window(total, start, count int) (lo, hi int) {
	lo = min(start-1, total)
	hi = min(lo+count, total)
	return lo, hi
}

// Limits on what one User or Group may carry. Rampart stores little; these
// bound what it parses.
const (
	maxUserName   = 320
	maxExternalID = 256
	maxEmails     = 20
	maxMemberID   = 256
)

// ParseUser reads a User from a POST or PUT body. Unknown attributes are
// ignored (see the package comment); "active" defaults to true and may be a
// boolean or the string "True"/"False"; "schemas", when present, must name
// the User schema.
func ParseUser(body []byte) (User, error) {
	var in struct {
		Schemas    []string        `json:"schemas"`
		ExternalID json.RawMessage `json:"externalId"`
		UserName   json.RawMessage `json:"userName"`
		Active     json.RawMessage `json:"active"`
		Emails     json.RawMessage `json:"emails"`
	}
	if err := decodeObject(body, &in); err != nil {
		return User{}, err
	}
	if in.Schemas != nil && !hasSchema(in.Schemas, SchemaUser) {
		return User{}, invalid(TypeInvalidSyntax, "schemas must include "+SchemaUser)
	}
	u := User{Schemas: []string{SchemaUser}, Active: true}
	var err error
	if u.UserName, err = optString(in.UserName, "userName"); err != nil {
		return User{}, err
	}
	if u.ExternalID, err = optString(in.ExternalID, "externalId"); err != nil {
		return User{}, err
	}
	if !isAbsent(in.Active) {
		if u.Active, err = ParseBool(in.Active); err != nil {
			return User{}, invalid(TypeInvalidValue, "active must be a boolean")
		}
	}
	if !isAbsent(in.Emails) {
		if u.Emails, err = parseEmails(in.Emails); err != nil {
			return User{}, err
		}
	}
	if err := u.validate(); err != nil {
		return User{}, err
	}
	return u, nil
}

// validate checks the User's invariants after parsing or patching.
func (u *User) validate() error {
	u.UserName = strings.TrimSpace(u.UserName)
	u.ExternalID = strings.TrimSpace(u.ExternalID)
	switch {
	case u.UserName == "":
		return invalid(TypeInvalidValue, "userName is required")
	case len(u.UserName) > maxUserName:
		return invalid(TypeInvalidValue, "userName is too long")
	case len(u.ExternalID) > maxExternalID:
		return invalid(TypeInvalidValue, "externalId is too long")
	case len(u.Emails) > maxEmails:
		return invalid(TypeInvalidValue, "too many emails")
	}
	return nil
}

// ParseGroup reads a Group from a PUT body: displayName and members.
func ParseGroup(body []byte) (Group, error) {
	var in struct {
		Schemas     []string        `json:"schemas"`
		DisplayName json.RawMessage `json:"displayName"`
		Members     json.RawMessage `json:"members"`
	}
	if err := decodeObject(body, &in); err != nil {
		return Group{}, err
	}
	if in.Schemas != nil && !hasSchema(in.Schemas, SchemaGroup) {
		return Group{}, invalid(TypeInvalidSyntax, "schemas must include "+SchemaGroup)
	}
	g := Group{Schemas: []string{SchemaGroup}}
	var err error
	if g.DisplayName, err = optString(in.DisplayName, "displayName"); err != nil {
		return Group{}, err
	}
	if !isAbsent(in.Members) {
		if g.Members, err = parseMembers(in.Members); err != nil {
			return Group{}, err
		}
	}
	return g, nil
}

// decodeObject decodes one JSON object, tolerating unknown fields (SCIM
// clients send many) but not trailing data.
func decodeObject(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return invalid(TypeInvalidSyntax, "the body is not a valid JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return invalid(TypeInvalidSyntax, "the body must hold a single JSON object")
	}
	return nil
}

func hasSchema(list []string, urn string) bool {
	for _, s := range list {
		if strings.EqualFold(s, urn) {
			return true
		}
	}
	return false
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// optString reads a JSON string; null or absent is "".
func optString(raw json.RawMessage, name string) (string, error) {
	if isAbsent(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(TypeInvalidValue, name+" must be a string")
	}
	return s, nil
}

// ParseBool reads a JSON boolean, or a string "true"/"false" in any case:
// Azure AD (Entra ID) has long sent {"op":"Replace","path":"active",
// "value":"False"}.
func ParseBool(raw json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, invalid(TypeInvalidValue, "expected a boolean")
}

// parseEmails reads an array of emails, or a single email object.
func parseEmails(raw json.RawMessage) ([]Email, error) {
	var list []Email
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		var e Email
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, asInvalid(err, "emails must be a list of objects")
		}
		list = []Email{e}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, asInvalid(err, "emails must be a list of objects")
	}
	if len(list) > maxEmails {
		return nil, invalid(TypeInvalidValue, "too many emails")
	}
	return list, nil
}

// parseMembers reads an array of members, or a single member object.
func parseMembers(raw json.RawMessage) ([]Member, error) {
	type member struct {
		Value   json.RawMessage `json:"value"`
		Display json.RawMessage `json:"display"`
	}
	var list []member
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		var m member
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, invalid(TypeInvalidValue, "members must be a list of objects")
		}
		list = []member{m}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid(TypeInvalidValue, "members must be a list of objects")
	}
	out := make([]Member, 0, len(list))
	for _, m := range list {
		v, err := optString(m.Value, "members.value")
		if err != nil {
			return nil, err
		}
		v = strings.TrimSpace(v)
		if v == "" || len(v) > maxMemberID {
			return nil, invalid(TypeInvalidValue, "each member needs a value (a user id)")
		}
		d, _ := optString(m.Display, "members.display")
		out = append(out, Member{Value: v, Display: d})
	}
	return out, nil
}

// asInvalid keeps a kinded error from a nested decoder and replaces any
// other (a json error that would echo input) with detail.
func asInvalid(err error, detail string) error {
	if fault.Is(err, fault.Invalid) {
		return err
	}
	return invalid(TypeInvalidValue, detail)
}
