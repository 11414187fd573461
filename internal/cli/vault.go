package cli

import (
	"context"
	"fmt"
)

func vaultCmd(ctx context.Context, args []string, pio IO) error {
	fmt.Fprintln(pio.Stderr, "rampart vault: not built yet")
	return errUsage
}
