package cli

import (
	"context"
	"fmt"
)

func keysCmd(ctx context.Context, args []string, pio IO) error {
	fmt.Fprintln(pio.Stderr, "rampart keys: not built yet")
	return errUsage
}
