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
	"github.com/droverhq/drover/node/runtime/lcrun"
)

func main() {
	// The binary re-executes itself as libcontainer's init and as container
	// shims; those never return from here.
	lcrun.MaybeRunChild()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := cli.NewRoot(cli.Streams{Out: os.Stdout, Err: os.Stderr})
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, cli.ErrorText(err))
		os.Exit(cli.ExitCode(err))
	}
}
