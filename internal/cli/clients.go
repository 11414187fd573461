package cli

import (
	"context"
	"fmt"
)

func clientsCmd(ctx context.Context, args []string, pio IO) error {
	fmt.Fprintln(pio.Stderr, "rampart clients: not built yet")
	return errUsage
}
