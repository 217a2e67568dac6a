// Command drover is the whole of drover in one binary: the server, and the
// command-line client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/droverhq/drover/cmd/drover/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := cli.NewRoot(cli.Streams{Out: os.Stdout, Err: os.Stderr})
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, cli.ErrorText(err))
		os.Exit(1)
	}
}
