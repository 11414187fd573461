package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/oauth/signing"
)

const keysUsage = `usage: rampart keys list [--json] [flags]
       rampart keys rotate [--immediate [--revoke]] [flags]
       rampart keys revoke --kid KID [flags]

  list    every signing key: state (pending, active, retired) and its times
  rotate  a new key, published now, signing after signing.publish_ahead;
          --immediate: it signs at once and the signing key is retired now
          (its tokens still verify until they expire);
          --revoke (with --immediate): the old keys also leave the JWKS at
          once, so every token they signed stops verifying (key compromise)
  revoke  remove one key from the JWKS now; its tokens stop verifying
`

// keysCmd runs `rampart keys list|rotate|revoke` (SES-2).
func keysCmd(ctx context.Context, args []string, pio IO) error {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return keysList(ctx, args[1:], pio)
		case "rotate":
			return keysRotate(ctx, args[1:], pio)
		case "revoke":
			return keysRevoke(ctx, args[1:], pio)
		}
	}
	fmt.Fprint(pio.Stderr, keysUsage)
	return errUsage
}

// keyJSON is one key in `keys list --json`.
type keyJSON struct {
	ID          string     `json:"kid"`
	Algorithm   string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActiveFrom  time.Time  `json:"active_from"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	DeleteAfter *time.Time `json:"delete_after,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func keysList(ctx context.Context, args []string, pio IO) error {
	var asJSON bool
	a, err := openApp(ctx, "keys list", args, pio, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the keys as JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	printKeys(pio.Stdout, a.Signing.Keys(), asJSON)
	return nil
}

func printKeys(w io.Writer, keys []signing.KeyInfo, asJSON bool) {
	if asJSON {
		out := make([]keyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, keyJSON{ID: k.ID, Algorithm: string(k.Algorithm), State: k.State, CreatedAt: k.CreatedAt.UTC(),
				ActiveFrom: k.ActiveFrom.UTC(), RetiredAt: optTime(k.RetiredAt.UTC()), DeleteAfter: optTime(k.DeleteAfter.UTC())})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tUNPUBLISHED AFTER")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, stamp(k.CreatedAt), stamp(k.ActiveFrom), stamp(k.RetiredAt), stamp(k.DeleteAfter))
	}
	_ = tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func keysRotate(ctx context.Context, args []string, pio IO) error {
	var immediate, revoke bool
	a, err := openApp(ctx, "keys rotate", args, pio, func(fs *flag.FlagSet) {
		fs.BoolVar(&immediate, "immediate", false, "the new key signs at once and the signing key is retired now (suspected compromise)")
		fs.BoolVar(&revoke, "revoke", false, "with --immediate: also remove the old keys from the JWKS now, breaking their outstanding tokens")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if revoke && !immediate {
		fmt.Fprintln(pio.Stderr, "rampart keys rotate: --revoke needs --immediate")
		return errUsage
	}
	before := a.Signing.Keys()
	info, err := a.Signing.Rotate(ctx, immediate)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	if revoke {
		if err := revokeOld(ctx, a, before, info.ID, pio); err != nil {
			return err
		}
	}
	if immediate {
		fmt.Fprintf(pio.Stdout, "key %s (%s) signs now\n", info.ID, info.Algorithm)
	} else {
		fmt.Fprintf(pio.Stdout, "key %s (%s) is published and signs from %s\n", info.ID, info.Algorithm, stamp(info.ActiveFrom))
	}
	printKeys(pio.Stdout, a.Signing.Keys(), false)
	return nil
}

// revokeOld revokes every key that had signed before the rotation (pending
// keys never signed and are kept).
func revokeOld(ctx context.Context, a *app.App, before []signing.KeyInfo, keep string, pio IO) error {
	for _, k := range before {
		if k.ID == keep || k.State == signing.StatePending {
			continue
		}
		if err := a.Signing.Revoke(ctx, k.ID); err != nil {
			return fmt.Errorf("keys revoke %s: %w", k.ID, err)
		}
		fmt.Fprintf(pio.Stdout, "key %s revoked: its tokens no longer verify\n", k.ID)
	}
	return nil
}

func keysRevoke(ctx context.Context, args []string, pio IO) error {
	var kid string
	a, err := openApp(ctx, "keys revoke", args, pio, func(fs *flag.FlagSet) {
		fs.StringVar(&kid, "kid", "", "the key to revoke (see rampart keys list)")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if kid == "" {
		fmt.Fprint(pio.Stderr, keysUsage)
		return errUsage
	}
	if err := a.Signing.Revoke(ctx, kid); err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	fmt.Fprintf(pio.Stdout, "key %s revoked: its tokens no longer verify\n", kid)
	printKeys(pio.Stdout, a.Signing.Keys(), false)
	return nil
}
