package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func accessReview(ctx context.Context, args []string, pio IO) error {
	var remind bool
	a, err := openApp(ctx, "access-review", args, pio, func(fs *flag.FlagSet) {
		fs.BoolVar(&remind, "remind", false, "mail the Admins of every workspace whose review is due")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	list, err := a.ReviewStatuses(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(pio.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKSPACE\tNAME\tMEMBERS\tLAST REVIEW\tDUE\tSTATE")
	overdue := 0
	for _, st := range list {
		last := "never"
		if !st.LastReview.IsZero() {
			last = st.LastReview.UTC().Format(time.DateOnly)
		}
		state := "ok"
		if st.Overdue {
			state, overdue = "OVERDUE", overdue+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", st.WorkspaceID, oneLine(st.Name), st.Members, last, st.DueAt.UTC().Format(time.DateOnly), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(pio.Stdout, "\n%d workspaces, %d with a review overdue\n", len(list), overdue)
	if remind {
		n, err := a.Tenancy.RemindDueReviews(ctx)
		fmt.Fprintf(pio.Stdout, "reminded the Admins of %d workspaces\n", n)
		return err
	}
	return nil
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

func operatorsAdd(ctx context.Context, args []string, pio IO) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(pio.Stderr, "usage: rampart operators add EMAIL [--network CIDR]... [flags]\n")
		return errUsage
	}
	email := args[0]
	var nets listFlag
	a, err := openApp(ctx, "operators add", args[1:], pio, func(fs *flag.FlagSet) {
		fs.Var(&nets, "network", "a CIDR the operator may act from (repeatable); none = any network")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	op, err := a.AddOperator(ctx, email, nets)
	if err != nil {
		return err
	}
	where := "any network"
	if len(op.AllowedNetworks) > 0 {
		where = strings.Join(op.AllowedNetworks, ", ")
	}
	fmt.Fprintf(pio.Stdout, "%s is now operator staff (MFA always required; from %s)\n", email, where)
	return nil
}
