// Package cli holds Rampart's commands and flags. It parses arguments, loads
// the configuration and hands over to the app package; it is the only
// package that imports app.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/trust"
)

// Version is set at build time with -ldflags "-X …/cli.Version=…".
var Version = "dev"

// IO is the process's standard streams and environment.
type IO struct {
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string
}

const usage = `rampart — the security backbone of a SaaS, in one binary

Usage:
  rampart serve      [flags]          run the HTTPS server (and the admin listener)
  rampart migrate    [flags]          apply database migrations and print their status
  rampart controls   [--json] [flags] run every control's live check and print the results
  rampart config validate [--print] [flags]  check the configuration; --print shows it (secrets redacted)
  rampart access-review [--remind] [flags]   every workspace's access-review standing; --remind mails the Admins of overdue ones
  rampart operators add EMAIL [--network CIDR]… [flags]  make an existing account operator staff (always MFA; optionally network-limited)
  rampart audit verify [--witness FILE]… [--json] | export [--workspace ID] [--since T] [--until T] [--action A] [flags]  prove the audit log untampered (exit 1 if not) | print events as JSON Lines
  rampart keys …                      OAuth/assertion signing keys: list | rotate
  rampart clients …                   OAuth clients: create | list | delete
  rampart vault …                     key hierarchy: status | rotate-root | rotate-workspace | rewrap
  rampart secrets …                   secrets store: list | get | put | promote | rotate | delete | restore | destroy
  rampart version                     print the version

Common flags (every command that reads configuration):
  --config FILE        YAML configuration file (or RAMPART_CONFIG)
  --data-dir DIR       data directory (default ./rampart-data)
  --listen ADDR        HTTPS listen address (default :8443)
  --admin-listen ADDR  metrics and health listen address (default 127.0.0.1:9090)
  --database URL       empty for SQLite in the data dir, or postgres://…
  --public-url URL     external base URL used in mailed links
  --upstream URL       put the gateway in front of this app (gateway.upstream)
  --dev                development mode

Every setting can also come from the file or a RAMPART_* environment variable;
see docs/CONFIG.md.
`

// Run executes args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, pio IO) int {
	if len(args) == 0 {
		fmt.Fprint(pio.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], pio)
	case "migrate":
		err = migrate(ctx, args[1:], pio)
	case "controls":
		err = controls(ctx, args[1:], pio)
	case "config":
		if len(args) < 2 || args[1] != "validate" {
			fmt.Fprint(pio.Stderr, "usage: rampart config validate [--print] [flags]\n")
			return 2
		}
		err = validate(args[2:], pio)
	case "access-review":
		err = accessReview(ctx, args[1:], pio)
	case "operators":
		if len(args) < 2 || args[1] != "add" {
			fmt.Fprint(pio.Stderr, "usage: rampart operators add EMAIL [--network CIDR]... [flags]\n")
			return 2
		}
		err = operatorsAdd(ctx, args[2:], pio)
	case "audit":
		err = auditCmd(ctx, args[1:], pio)
	case "keys": // keys.go (OAuth signing keys)
		err = keysCmd(ctx, args[1:], pio)
	case "clients": // clients.go (OAuth clients)
		err = clientsCmd(ctx, args[1:], pio)
	case "vault": // vault.go (key hierarchy, workspace keys, root-key rotation)
		err = vaultCmd(ctx, args[1:], pio)
	case "secrets": // secrets.go (secrets store)
		err = secretsCmd(ctx, args[1:], pio)
	case "version", "--version":
		fmt.Fprintln(pio.Stdout, "rampart", Version)
	case "help", "-h", "--help":
		fmt.Fprint(pio.Stdout, usage)
	default:
		fmt.Fprintf(pio.Stderr, "rampart: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(pio.Stderr, "rampart:", err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// loadConfig parses the common flags plus extra ones and builds the config.
func loadConfig(name string, args []string, pio IO, extra func(fs *flag.FlagSet)) (config.Config, error) {
	fs := flag.NewFlagSet("rampart "+name, flag.ContinueOnError)
	fs.SetOutput(pio.Stderr)
	f := config.BindFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Config{}, err
		}
		return config.Config{}, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(pio.Stderr, "rampart %s: unexpected argument %q\n", name, fs.Arg(0))
		return config.Config{}, errUsage
	}
	return config.FromFlags(fs, f, pio.Environ)
}

// openApp parses a command's flags (the common ones plus extra), builds and
// validates the configuration and wires the app; the caller closes it.
func openApp(ctx context.Context, name string, args []string, pio IO, extra func(*flag.FlagSet)) (*app.App, error) {
	cfg, err := loadConfig(name, args, pio, extra)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, app.Options{Stderr: pio.Stderr, Environ: pio.Environ})
}

func serve(ctx context.Context, args []string, pio IO) error {
	cfg, err := loadConfig("serve", args, pio, nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, app.Options{Stderr: pio.Stderr, Environ: pio.Environ})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, func(l app.Listening) {
		fmt.Fprintf(pio.Stdout, "Rampart is running: %s (admin http://%s). Press Ctrl-C to stop.\n", cfg.PublicURL, l.Admin)
	})
}

func migrate(ctx context.Context, args []string, pio IO) error {
	a, err := openApp(ctx, "migrate", args, pio, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	applied, pending, err := a.Store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(pio.Stdout, "database: %s; migrations applied: %d; pending: %d\n", a.Store.Engine(), len(applied), len(pending))
	return nil
}

func controls(ctx context.Context, args []string, pio IO) error {
	var asJSON bool
	a, err := openApp(ctx, "controls", args, pio, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON (the /trust.json document)")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	reports := a.Trust.Run(ctx)
	if asJSON {
		return trust.WriteJSON(pio.Stdout, reports)
	}
	if err := trust.WriteText(pio.Stdout, reports); err != nil {
		return err
	}
	sum := trust.Summary(reports)
	fmt.Fprintf(pio.Stdout, "\n%d passing, %d failing, %d attested, %d planned\n", sum[trust.Passing], sum[trust.Failing], sum[trust.Attested], sum[trust.Planned])
	if sum[trust.Failing] > 0 {
		return fmt.Errorf("%d controls failing", sum[trust.Failing])
	}
	return nil
}

func validate(args []string, pio IO) error {
	var print bool
	cfg, err := loadConfig("config validate", args, pio, func(fs *flag.FlagSet) {
		fs.BoolVar(&print, "print", false, "print the effective configuration (secrets redacted)")
	})
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintln(pio.Stdout, "configuration is invalid:")
			for _, p := range ve.Problems {
				fmt.Fprintln(pio.Stdout, "  -", p)
			}
			return errors.New("invalid configuration")
		}
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(pio.Stdout, "warning:", w)
	}
	if print {
		if err := config.WriteYAML(pio.Stdout, cfg); err != nil {
			return err
		}
	}
	fmt.Fprintln(pio.Stdout, "configuration is valid")
	return nil
}
