// Command rampart is the security backbone of a SaaS in one binary. See the
// README for the two set-up commands and docs/ for configuration and API.
package main

import (
	"context"
	"os"

	"github.com/rampartsec/rampart/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.IO{Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}))
}
