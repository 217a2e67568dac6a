package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/droverhq/drover/client"
)

type versionOptions struct {
	kube       kubeOptions
	clientOnly bool
	streams    Streams
}

func newVersionCmd(s Streams) *cobra.Command {
	o := &versionOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the drover version, and the server's when one is configured",
		Args:  cobra.NoArgs,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			return versionRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	cmd.Flags().BoolVar(&o.clientOnly, "client", false, "only the client version, without asking a server")
	return cmd
}

func clientVersion() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return v
}

// versionRun prints "Client Version: ..." and, when a kubeconfig names a
// server that answers, "Server Version: ..." from its /version. Having no
// kubeconfig is not an error; an unreachable server is reported on stderr
// without failing, since the client version is still the answer asked for.
func versionRun(ctx context.Context, o *versionOptions) error {
	if _, err := fmt.Fprintf(o.streams.Out, "Client Version: %s\n", clientVersion()); err != nil {
		return err
	}
	if o.clientOnly {
		return nil
	}
	kc, err := o.kube.loadKubeconfig()
	if errors.Is(err, client.ErrNoKubeconfig) {
		return nil
	}
	if err != nil {
		return err
	}
	rc, _, err := kc.RESTConfig(o.kube.context)
	if err != nil {
		return err
	}
	rc.Timeout = o.kube.requestTimeout
	if rc.Timeout == 0 {
		rc.Timeout = 5 * time.Second
	}
	c, err := client.New(rc)
	if err != nil {
		return err
	}
	v, err := c.ServerVersion(ctx)
	if err != nil {
		fmt.Fprintln(o.streams.Err, ErrorText(err))
		return nil
	}
	_, err = fmt.Fprintf(o.streams.Out, "Server Version: %s\n", v.GitVersion)
	return err
}
