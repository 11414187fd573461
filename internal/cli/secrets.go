package cli

import (
	"context"
	"fmt"
)

func secretsCmd(ctx context.Context, args []string, pio IO) error {
	fmt.Fprintln(pio.Stderr, "rampart secrets: not built yet")
	return errUsage
}
