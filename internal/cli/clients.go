package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/oauth"
)

const clientsUsage = `usage: rampart clients create --name NAME [--public] [--first-party] [--redirect-uri URI]...
                              [--post-logout-uri URI]... [--grant TYPE]... [--scope SCOPE]...
                              [--audience AUD]... [--workspace WS --permission PERM...] [--json] [flags]
       rampart clients list [--workspace WS] [--json] [flags]
       rampart clients delete --id ID [flags]

  create  register an OAuth client; a confidential client's secret is printed
          once and only its SHA-256 is stored. Grant types: authorization_code
          and refresh_token (default), client_credentials (service clients;
          with --workspace they carry --permission values of that workspace)
  list    registered clients (every one, or one workspace's)
  delete  delete a client; its tokens stop working at once
`

// clientsCmd runs `rampart clients create|list|delete` (SES-4).
func clientsCmd(ctx context.Context, args []string, pio IO) error {
	if len(args) > 0 {
		switch args[0] {
		case "create":
			return clientsCreate(ctx, args[1:], pio)
		case "list":
			return clientsList(ctx, args[1:], pio)
		case "delete":
			return clientsDelete(ctx, args[1:], pio)
		}
	}
	fmt.Fprint(pio.Stderr, clientsUsage)
	return errUsage
}

// clientsActor is the operator at the console, for the audit trail.
var clientsActor = oauth.Actor{Type: audit.ActorOperator, ID: "cli"}

func clientsCreate(ctx context.Context, args []string, pio IO) error {
	var spec oauth.ClientSpec
	var ws string
	var asJSON bool
	var redirects, logouts, grants, scopes, aud, perms listFlag
	a, err := openApp(ctx, "clients create", args, pio, func(fs *flag.FlagSet) {
		fs.StringVar(&spec.Name, "name", "", "the client's display name (shown on the consent page)")
		fs.BoolVar(&spec.Public, "public", false, "a public client (no secret; PKCE only), e.g. a SPA or native app")
		fs.BoolVar(&spec.FirstParty, "first-party", false, "skip the consent screen (your own apps)")
		fs.Var(&redirects, "redirect-uri", "an allowed redirect URI, matched exactly (repeatable)")
		fs.Var(&logouts, "post-logout-uri", "an allowed post-logout redirect URI (repeatable)")
		fs.Var(&grants, "grant", "a grant type (repeatable)")
		fs.Var(&scopes, "scope", "an allowed scope (repeatable)")
		fs.Var(&aud, "audience", "an allowed audience (repeatable)")
		fs.StringVar(&ws, "workspace", "", "the workspace a service client belongs to")
		fs.Var(&perms, "permission", "a permission of the workspace the service client carries (repeatable)")
		fs.BoolVar(&asJSON, "json", false, "print the client as JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	spec.RedirectURIs, spec.PostLogoutRedirectURIs, spec.GrantTypes = redirects, logouts, grants
	spec.Scopes, spec.Audience, spec.Permissions = scopes, aud, perms
	c, secret, err := a.OAuth.CreateClient(ctx, clientsActor, ws, spec)
	if err != nil {
		return fmt.Errorf("clients create: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(pio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Client clientOut `json:"client"`
			Secret string    `json:"client_secret,omitempty"`
		}{toClientOut(*c), secret})
	}
	fmt.Fprintf(pio.Stdout, "client_id:     %s\n", c.ID)
	if secret != "" {
		fmt.Fprintf(pio.Stdout, "client_secret: %s\n", secret)
		fmt.Fprintln(pio.Stdout, "The secret is shown only now; Rampart keeps only its hash.")
	}
	printClients(pio.Stdout, []oauth.Client{*c})
	return nil
}

// clientOut is one client in JSON output; it never holds the secret hash.
type clientOut struct {
	ID           string   `json:"id"`
	Workspace    string   `json:"workspace,omitempty"`
	Name         string   `json:"name"`
	Public       bool     `json:"public"`
	FirstParty   bool     `json:"first_party"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	GrantTypes   []string `json:"grant_types"`
	Scopes       []string `json:"scopes,omitempty"`
	Permissions  []string `json:"permissions,omitempty"`
}

func toClientOut(c oauth.Client) clientOut {
	return clientOut{ID: c.ID, Workspace: c.Workspace, Name: c.Name, Public: c.Public, FirstParty: c.FirstParty,
		RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes, Scopes: c.Scopes, Permissions: c.Permissions}
}

func printClients(w io.Writer, list []oauth.Client) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tWORKSPACE\tTYPE\tGRANTS\tSCOPES")
	for _, c := range list {
		typ := "confidential"
		if c.Public {
			typ = "public"
		}
		if c.FirstParty {
			typ += ",first-party"
		}
		ws := c.Workspace
		if ws == "" {
			ws = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, ws, typ, strings.Join(c.GrantTypes, ","), strings.Join(c.Scopes, " "))
	}
	_ = tw.Flush()
}

func clientsList(ctx context.Context, args []string, pio IO) error {
	var ws string
	var asJSON bool
	a, err := openApp(ctx, "clients list", args, pio, func(fs *flag.FlagSet) {
		fs.StringVar(&ws, "workspace", "", "only this workspace's clients")
		fs.BoolVar(&asJSON, "json", false, "print the clients as JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	list, err := a.OAuth.Clients(ctx, ws, ws == "")
	if err != nil {
		return fmt.Errorf("clients list: %w", err)
	}
	if asJSON {
		out := make([]clientOut, 0, len(list))
		for _, c := range list {
			out = append(out, toClientOut(c))
		}
		enc := json.NewEncoder(pio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printClients(pio.Stdout, list)
	return nil
}

func clientsDelete(ctx context.Context, args []string, pio IO) error {
	var id string
	a, err := openApp(ctx, "clients delete", args, pio, func(fs *flag.FlagSet) {
		fs.StringVar(&id, "id", "", "the client id")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if id == "" {
		fmt.Fprintln(pio.Stderr, "rampart clients delete: --id is required")
		return errUsage
	}
	if err := a.OAuth.DeleteClient(ctx, clientsActor, "", id); err != nil {
		return fmt.Errorf("clients delete: %w", err)
	}
	fmt.Fprintf(pio.Stdout, "client %s deleted\n", id)
	return nil
}
