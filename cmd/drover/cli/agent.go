package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/droverhq/drover/control/jointoken"
	"github.com/droverhq/drover/control/master"
	"github.com/droverhq/drover/node/join"
)

type agentOptions struct {
	name, token, tokenFile, gossip, advertise, address, dataDir, logLevel, bridge string
	join                                                                          []string
	daemonPort                                                                    int
	insecureRegistries                                                            []string
	labels                                                                        map[string]string
	restartBackoff                                                                time.Duration
}

func newAgentCmd(s Streams) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent: join a cluster and run the pods scheduled here",
		Long: `Run a node agent on this machine (as root): it joins the masters' gossip with
a join token, registers this machine as a Node, and runs the pods bound to it
through libcontainer, with CNI networking and its own image store.

Get the join token from any master once the cluster has formed:
  cat /var/lib/drover/join-token            (on a master; or: <data-dir>/join-token)
Then, on the node:
  drover agent --join 10.0.0.1 --token-file join-token --address 10.0.0.21`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return agentRun(cmd.Context(), s, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "node name (default: the host name)")
	f.StringVar(&o.token, "token", "", "join token (drover-join....); prefer --token-file")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the join token (a master writes <data-dir>/join-token)")
	f.StringSliceVar(&o.join, "join", nil, fmt.Sprintf("gossip address(es) of masters, host[:port] (port %d)", master.DefaultGossipPort))
	f.StringVar(&o.gossip, "gossip", "", "this agent's gossip address, host[:port] (default: --address, port 7947)")
	f.StringVar(&o.advertise, "advertise-gossip", "", "gossip address others should use, if not --gossip")
	f.StringVar(&o.address, "address", "", "this node's IP: reported to the cluster and where masters reach the agent (required)")
	f.IntVar(&o.daemonPort, "daemon-port", 10250, "port masters call for logs and exec")
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/drover/agent", "images, pod volumes, logs and network state")
	f.StringVar(&o.bridge, "bridge", "drover0", "the CNI bridge pods attach to")
	f.StringSliceVar(&o.insecureRegistries, "insecure-registry", nil, "registries (host[:port]) reached over plain HTTP")
	f.StringToStringVar(&o.labels, "node-labels", nil, "labels for this Node, key=value,...")
	f.DurationVar(&o.restartBackoff, "restart-backoff", 10*time.Second,
		"first delay before restarting a crashed container or retrying a failed image pull; it doubles on each failure, up to 5m")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

func agentRun(ctx context.Context, s Streams, o *agentOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	log := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
	if o.name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("--name is required (could not read the host name)")
		}
		o.name = strings.ToLower(h)
	}
	if o.address == "" {
		return fmt.Errorf("--address is required: this node's IP, which masters use to reach it")
	}
	if o.restartBackoff <= 0 || o.restartBackoff > 5*time.Minute {
		return fmt.Errorf("--restart-backoff %s: want a duration above 0 and at most 5m", o.restartBackoff)
	}
	if len(o.join) == 0 {
		return fmt.Errorf("--join is required: a master's gossip address")
	}
	raw := o.token
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		raw = string(b)
	}
	if raw == "" {
		return fmt.Errorf("--token or --token-file is required (a master writes its join token to <data-dir>/join-token)")
	}
	tok, err := jointoken.Parse(raw)
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	var err2 error
	if o.gossip, err2 = withPort(o.gossip, o.address, 7947); err2 != nil {
		return err2
	}
	for i, j := range o.join {
		if o.join[i], err = withPort(j, "", master.DefaultGossipPort); err != nil {
			return err
		}
	}
	cl, err := join.Join(ctx, join.Config{Node: o.name, Token: tok, Bind: o.gossip, Advertise: o.advertise, Join: o.join,
		Version: Version, Logger: log.With("component", "join")})
	if err != nil {
		return err
	}
	defer cl.Leave()
	c, err := cl.Client()
	if err != nil {
		return err
	}
	log.Info("joined the cluster", "node", o.name, "masters", strings.Join(cl.APIAddrs(), ","))
	return runNodeAgent(ctx, nodeAgentConfig{name: o.name, dataDir: o.dataDir, address: o.address, daemonPort: o.daemonPort,
		bridge: o.bridge, insecure: o.insecureRegistries, labels: o.labels, restartBackoff: o.restartBackoff, client: c, clientCA: cl.CACert, log: log})
}
