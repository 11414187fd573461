package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/rotate"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

const secretsUsage = `usage: rampart secrets COMMAND [flags]   (operator-level secrets)
  list [--deleted] [--json]                    names, versions and rotation state (no values)
  get NAME [--version N | --stage S]           print a value (the read is audited)
  put NAME (--from-file PATH | --from-env VAR | --generate N) [--cas N] [--pending]
                                               write a new version (never pass a value as an argument)
  promote NAME --version N                     make a pending version current
  rotate NAME                                  run the secret's rotation policy now
  delete NAME | restore NAME                   soft delete (recoverable) / undo it
  destroy NAME --confirm NAME                  wipe every value for good
`

// cliActor is the CLI as the audit trail records it: the local operator
// who holds the configuration and the root key.
var cliActor = secrets.Actor{Type: audit.ActorSystem, ID: "cli"}

func secretsCmd(ctx context.Context, args []string, pio IO) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(pio.Stderr, secretsUsage)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	name := ""
	if sub != "list" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprint(pio.Stderr, secretsUsage)
			return errUsage
		}
		name, rest = rest[0], rest[1:]
		if !secrets.ValidName(name) {
			return errors.New("not a secret name: 1 to 128 letters, digits, '.', '_' or '-'")
		}
	}
	var (
		deleted, asJSON, pending    bool
		version, cas, generate      int
		stage, fromFile, fromEnv, c string
	)
	cas = -1
	extra := func(fs *flag.FlagSet) {
		switch sub {
		case "list":
			fs.BoolVar(&deleted, "deleted", false, "list soft-deleted secrets")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		case "get":
			fs.IntVar(&version, "version", 0, "version to read (default: current)")
			fs.StringVar(&stage, "stage", "", "stage to read: current, previous or pending")
		case "put":
			fs.StringVar(&fromFile, "from-file", "", "read the value from this file")
			fs.StringVar(&fromEnv, "from-env", "", "read the value from this environment variable")
			fs.IntVar(&generate, "generate", 0, "generate a random alphanumeric value of this length")
			fs.IntVar(&cas, "cas", -1, "check-and-set: the latest version you expect (0: must not exist)")
			fs.BoolVar(&pending, "pending", false, "write the version as pending instead of current")
		case "promote":
			fs.IntVar(&version, "version", 0, "the pending version")
		case "destroy":
			fs.StringVar(&c, "confirm", "", "the secret's name again")
		}
	}
	switch sub {
	case "list", "get", "put", "promote", "rotate", "delete", "restore", "destroy":
	default:
		fmt.Fprint(pio.Stderr, secretsUsage)
		return errUsage
	}
	a, err := openApp(ctx, "secrets "+sub, rest, pio, extra)
	if err != nil {
		return err
	}
	defer a.Close()
	svc := a.Secrets
	switch sub {
	case "list":
		list, err := svc.List(ctx, "", deleted)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(pio.Stdout)
			enc.SetIndent("", "  ")
			type row struct {
				Name    string `json:"name"`
				Current int    `json:"current_version"`
				Latest  int    `json:"latest_version"`
				Policy  string `json:"rotation_policy,omitempty"`
				Status  string `json:"rotation_status,omitempty"`
			}
			rows := []row{}
			for _, s := range list {
				rows = append(rows, row{s.Name, s.Current, s.Latest, s.Rotation.Policy, s.Rotation.Status})
			}
			return enc.Encode(rows)
		}
		for _, s := range list {
			rot := ""
			if s.Rotation.Policy != "" {
				rot = fmt.Sprintf("  rotation %s: %s", s.Rotation.Policy, s.Rotation.Status)
			}
			fmt.Fprintf(pio.Stdout, "%s  current v%d  latest v%d%s\n", s.Name, s.Current, s.Latest, rot)
		}
		return nil
	case "get":
		sel := secrets.Selector{Version: version}
		if stage != "" {
			if sel.Stage, err = secrets.ParseStage(stage); err != nil {
				return err
			}
		}
		v, err := svc.Get(ctx, cliActor, "", name, sel)
		if err != nil {
			return err
		}
		_, err = pio.Stdout.Write(append(v.Value, '\n'))
		return err
	case "put":
		value, err := cliValue(fromFile, fromEnv, generate, pio.Environ)
		if err != nil {
			return err
		}
		o := secrets.PutOptions{}
		if cas >= 0 {
			o.CAS = &cas
		}
		if pending {
			o.Stage = secrets.StagePending
		}
		_, v, err := svc.Put(ctx, cliActor, "", name, value, o)
		clear(value)
		if err != nil {
			return err
		}
		fmt.Fprintf(pio.Stdout, "%s: wrote version %d (%s)\n", name, v, o.Stage.OrCurrent())
		return nil
	case "promote":
		if err := svc.Promote(ctx, cliActor, "", name, version); err != nil {
			return err
		}
		fmt.Fprintf(pio.Stdout, "%s: version %d is current\n", name, version)
		return nil
	case "rotate":
		v, err := a.RotateSecret(ctx, cliActor, "", name)
		if err != nil {
			return err
		}
		fmt.Fprintf(pio.Stdout, "%s: rotated to version %d\n", name, v)
		return nil
	case "delete":
		if err := svc.Delete(ctx, cliActor, "", name); err != nil {
			return err
		}
		fmt.Fprintf(pio.Stdout, "%s: deleted (restore with: rampart secrets restore %s)\n", name, name)
		return nil
	case "restore":
		if err := svc.Restore(ctx, cliActor, "", name); err != nil {
			return err
		}
		fmt.Fprintf(pio.Stdout, "%s: restored\n", name)
		return nil
	default: // destroy
		if c != name {
			return errors.New("destroy wipes every value for good: repeat the name with --confirm")
		}
		if err := svc.Destroy(ctx, cliActor, "", name); err != nil {
			return err
		}
		fmt.Fprintf(pio.Stdout, "%s: destroyed\n", name)
		return nil
	}
}

// cliValue takes the value from exactly one source; values never come from
// arguments, which shells keep in their history.
func cliValue(file, env string, generate int, environ []string) ([]byte, error) {
	n := 0
	for _, set := range []bool{file != "", env != "", generate > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("give exactly one of --from-file, --from-env, --generate")
	}
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, errors.Unwrap(err))
		}
		return []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")), nil
	case env != "":
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok && k == env {
				return []byte(v), nil
			}
		}
		return nil, fmt.Errorf("environment variable %s is not set", env)
	default:
		return (&rotate.Random{Length: generate}).Generate(context.Background())
	}
}
