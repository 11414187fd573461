package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"
)

const vaultUsage = `usage: rampart vault status [--json] [flags]
       rampart vault rotate-workspace WORKSPACE_ID [flags]   (use "operator" for Rampart's own scope)
       rampart vault rotate-root (--new-key-file PATH | --new-key-env NAME | --new-pkcs11-label LABEL) [flags]
       rampart vault rewrap [flags]
`

// vaultCmd runs `rampart vault status|rotate-workspace|rotate-root|rewrap`.
func vaultCmd(ctx context.Context, args []string, pio IO) error {
	if len(args) == 0 {
		fmt.Fprint(pio.Stderr, vaultUsage)
		return errUsage
	}
	switch args[0] {
	case "status":
		return vaultStatus(ctx, args[1:], pio)
	case "rotate-workspace":
		if len(args) < 2 || len(args[1]) == 0 || args[1][0] == '-' {
			fmt.Fprint(pio.Stderr, vaultUsage)
			return errUsage
		}
		return vaultRotateWorkspace(ctx, args[1], args[2:], pio)
	case "rotate-root":
		return vaultRotateRoot(ctx, args[1:], pio)
	case "rewrap":
		return vaultRewrap(ctx, args[1:], pio)
	}
	fmt.Fprint(pio.Stderr, vaultUsage)
	return errUsage
}

func vaultStatus(ctx context.Context, args []string, pio IO) error {
	var asJSON bool
	a, err := openApp(ctx, "vault status", args, pio, func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") })
	if err != nil {
		return err
	}
	defer a.Close()
	st, err := a.VaultStatus(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(pio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(pio.Stdout, "root key: %s (id %s)\n\n", st.RootSource, st.RootID)
	tw := tabwriter.NewWriter(pio.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tCURRENT\tMIN\tVERSIONS\tCURRENT SINCE\tROTATION DUE")
	for _, s := range st.Scopes {
		name := s.Scope
		if name == "" {
			name = "operator"
		}
		fmt.Fprintf(tw, "%s\tv%d\tv%d\t%d\t%s\t%v\n", name, s.CurrentVersion, s.MinVersion, s.Versions, s.CurrentSince.UTC().Format(time.RFC3339), s.RotationDue)
	}
	tw.Flush()
	fmt.Fprintln(pio.Stdout, "\nre-wrap of Rampart's stored ciphertexts (this process; run `rampart vault rewrap` for a pass now):")
	for _, p := range st.Rewrap {
		fmt.Fprintf(pio.Stdout, "  %s: scanned %d, current %d, rewrapped %d, failed %d\n", p.Source, p.Scanned, p.Current, p.Rewrapped, p.Failed)
	}
	return nil
}

func vaultRotateWorkspace(ctx context.Context, ws string, args []string, pio IO) error {
	a, err := openApp(ctx, "vault rotate-workspace", args, pio, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	scope := ws
	if ws == "operator" {
		scope = ""
	}
	v, err := a.RotateWorkspaceKey(ctx, scope)
	if err != nil {
		return err
	}
	fmt.Fprintf(pio.Stdout, "%s: key-encryption key rotated to v%d; older versions still decrypt\n", ws, v)
	return nil
}

func vaultRotateRoot(ctx context.Context, args []string, pio IO) error {
	var file, env, label string
	a, err := openApp(ctx, "vault rotate-root", args, pio, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "new-key-file", "", "key file of the new root (created with a fresh key when missing)")
		fs.StringVar(&env, "new-key-env", "", "environment variable holding the new root key")
		fs.StringVar(&label, "new-pkcs11-label", "", "label of the new AES key on the configured PKCS#11 token")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	n := 0
	kind, value := "", ""
	for k, v := range map[string]string{"file": file, "env": env, "pkcs11": label} {
		if v != "" {
			n++
			kind, value = k, v
		}
	}
	if n != 1 {
		fmt.Fprint(pio.Stderr, "rampart vault rotate-root: give exactly one of --new-key-file, --new-key-env, --new-pkcs11-label\n")
		return errUsage
	}
	next, err := a.OpenNewRoot(kind, value)
	if err != nil {
		return err
	}
	count, err := a.RotateRoot(ctx, next)
	if err != nil {
		return err
	}
	fmt.Fprintf(pio.Stdout, "re-wrapped %d key-encryption keys under the new root (%s, id %s).\n", count, next.Source(), next.ID())
	fmt.Fprintf(pio.Stdout, "Now configure the new root (%s) and restart every node; the old root no longer opens anything.\n", kind)
	return nil
}

func vaultRewrap(ctx context.Context, args []string, pio IO) error {
	a, err := openApp(ctx, "vault rewrap", args, pio, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	progress, err := a.Rewrap(ctx)
	for _, p := range progress {
		fmt.Fprintf(pio.Stdout, "%s: scanned %d, current %d, rewrapped %d, failed %d\n", p.Source, p.Scanned, p.Current, p.Rewrapped, p.Failed)
	}
	return err
}
