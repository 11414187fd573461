package scim

// The discovery documents (RFC 7644 §4, RFC 7643 §5–7) describe exactly
// what Rampart supports, so an identity provider that reads them does not
// try bulk, sorting, ETags or password changes. They are built on each call
// from constants: no shared mutable state.

// Supported is a {"supported": bool} member.
type Supported struct {
	Supported bool `json:"supported"`
}

// ServiceProviderConfig is the /ServiceProviderConfig document.
type ServiceProviderConfig struct {
	Schemas               []string     `json:"schemas"`
	DocumentationURI      string       `json:"documentationUri,omitempty"`
	Patch                 Supported    `json:"patch"`
	Bulk                  BulkConfig   `json:"bulk"`
	Filter                FilterConf   `json:"filter"`
	ChangePassword        Supported    `json:"changePassword"`
	Sort                  Supported    `json:"sort"`
	ETag                  Supported    `json:"etag"`
	AuthenticationSchemes []AuthScheme `json:"authenticationSchemes"`
	Meta                  *Meta        `json:"meta,omitempty"`
}

// BulkConfig is the "bulk" member.
type BulkConfig struct {
	Supported      bool `json:"supported"`
	MaxOperations  int  `json:"maxOperations"`
	MaxPayloadSize int  `json:"maxPayloadSize"`
}

// FilterConf is the "filter" member.
type FilterConf struct {
	Supported  bool `json:"supported"`
	MaxResults int  `json:"maxResults"`
}

// AuthScheme is one authentication scheme.
type AuthScheme struct {
	Type             string `json:"type"`
	Name             string `json:"name"`
	Description      string `json:"description"`
	SpecURI          string `json:"specUri,omitempty"`
	DocumentationURI string `json:"documentationUri,omitempty"`
	Primary          bool   `json:"primary"`
}

// NewServiceProviderConfig describes Rampart's SCIM service. base is the
// absolute URL of the SCIM root (…/scim/v2), used for meta.location.
func NewServiceProviderConfig(base string) ServiceProviderConfig {
	return ServiceProviderConfig{
		Schemas: []string{SchemaServiceProviderConfig},
		Patch:   Supported{true},
		Bulk:    BulkConfig{Supported: false},
		Filter:  FilterConf{Supported: true, MaxResults: MaxResults},
		AuthenticationSchemes: []AuthScheme{{
			Type: "oauthbearertoken", Name: "OAuth Bearer Token",
			Description: "A workspace's SCIM token (rscim_…), created by a workspace admin, in Authorization: Bearer.",
			SpecURI:     "https://www.rfc-editor.org/info/rfc6750", Primary: true,
		}},
		Meta: &Meta{ResourceType: "ServiceProviderConfig", Location: base + "/ServiceProviderConfig"},
	}
}

// ResourceType is one /ResourceTypes entry.
type ResourceType struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Endpoint    string   `json:"endpoint"`
	Description string   `json:"description"`
	Schema      string   `json:"schema"`
	Meta        *Meta    `json:"meta,omitempty"`
}

// ResourceTypes lists User and Group.
func ResourceTypes(base string) []ResourceType {
	return []ResourceType{
		{Schemas: []string{SchemaResourceType}, ID: "User", Name: "User", Endpoint: "/Users",
			Description: "A member of the workspace, identified by email address", Schema: SchemaUser,
			Meta: &Meta{ResourceType: "ResourceType", Location: base + "/ResourceTypes/User"}},
		{Schemas: []string{SchemaResourceType}, ID: "Group", Name: "Group", Endpoint: "/Groups",
			Description: "A role of the workspace; membership grants the role", Schema: SchemaGroup,
			Meta: &Meta{ResourceType: "ResourceType", Location: base + "/ResourceTypes/Group"}},
	}
}

// Attribute is an attribute definition of a Schema (RFC 7643 §7).
type Attribute struct {
	Name            string      `json:"name"`
	Type            string      `json:"type"`
	MultiValued     bool        `json:"multiValued"`
	Description     string      `json:"description,omitempty"`
	Required        bool        `json:"required"`
	CaseExact       bool        `json:"caseExact"`
	Mutability      string      `json:"mutability"`
	Returned        string      `json:"returned"`
	Uniqueness      string      `json:"uniqueness"`
	ReferenceTypes  []string    `json:"referenceTypes,omitempty"`
	SubAttributes   []Attribute `json:"subAttributes,omitempty"`
	CanonicalValues []string    `json:"canonicalValues,omitempty"`
}

// Schema is one /Schemas entry.
type Schema struct {
	Schemas     []string    `json:"schemas"`
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Attributes  []Attribute `json:"attributes"`
	Meta        *Meta       `json:"meta,omitempty"`
}

func attr(name, typ, mut, desc string) Attribute {
	return Attribute{Name: name, Type: typ, Description: desc, Mutability: mut, Returned: "default", Uniqueness: "none"}
}

// Schemas describes the attributes Rampart stores: userName, active,
// emails and groups of a User; displayName and members of a Group.
func Schemas(base string) []Schema {
	userName := attr("userName", "string", "readWrite", "The person's email address; unique in the workspace.")
	userName.Required, userName.Uniqueness = true, "server"
	emails := attr("emails", "complex", "readWrite", "Email addresses; Rampart keeps one, the userName.")
	emails.MultiValued = true
	emails.SubAttributes = []Attribute{
		attr("value", "string", "readWrite", "The address."),
		attr("type", "string", "readWrite", "work, home or other."),
		attr("primary", "boolean", "readWrite", "Whether this is the primary address."),
	}
	groups := attr("groups", "complex", "readOnly", "The workspace roles the person holds.")
	groups.MultiValued = true
	gv := attr("value", "string", "readOnly", "The role id.")
	gv.CaseExact = true
	groups.SubAttributes = []Attribute{gv, attr("display", "string", "readOnly", "The role name.")}

	displayName := attr("displayName", "string", "immutable", "The role name; roles are managed in Rampart.")
	displayName.Required = true
	members := attr("members", "complex", "readWrite", "The people holding the role.")
	members.MultiValued = true
	mv := attr("value", "string", "immutable", "The user id.")
	mv.CaseExact = true
	members.SubAttributes = []Attribute{mv, attr("display", "string", "readOnly", "The person's email address.")}

	return []Schema{
		{Schemas: []string{SchemaSchema}, ID: SchemaUser, Name: "User", Description: "Workspace member",
			Attributes: []Attribute{userName, attr("active", "boolean", "readWrite", "False suspends all access at once."), emails, groups},
			Meta:       &Meta{ResourceType: "Schema", Location: base + "/Schemas/" + SchemaUser}},
		{Schemas: []string{SchemaSchema}, ID: SchemaGroup, Name: "Group", Description: "Workspace role",
			Attributes: []Attribute{displayName, members},
			Meta:       &Meta{ResourceType: "Schema", Location: base + "/Schemas/" + SchemaGroup}},
	}
}
