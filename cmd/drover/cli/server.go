package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/leader"
	"github.com/droverhq/drover/control/master"
	"github.com/droverhq/drover/control/scheduler"
	"github.com/droverhq/drover/raftstore"
)

type serverOptions struct {
	dev             bool
	config          string
	id              string
	dataDir         string
	listen          string
	api             string
	gossip          string
	advertise       string
	advertiseAPI    string
	advertiseGossip string
	join            []string
	expect          int
	encrypt         string
	caCert, caKey   string
	logLevel        string
	snapThresh      uint64
	trailing        uint64
	history         int
	election        time.Duration
	deadTimeout     time.Duration
	leaveOnTerm     bool
	kubeAPI         string
	advertiseKube   string
	serviceCIDR     string
	nodePorts       string
	maxBody         int64
	clusterCIDR     string
	nodeMask        int
	noAgent         bool
}

func newServerCmd(s Streams) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a drover master",
		Long: `Run a drover master: a member of the replicated store, gossip with the
other masters, and the store's etcd v3 API.

Development (one master, plaintext, loopback only, data in ./drover-data):
  drover server --dev

Production, three masters bootstrapping a new cluster. Start the first:
  drover server --id m1 --data-dir /var/lib/drover --listen 10.0.0.1:7380 --bootstrap-expect 3
It generates a gossip encryption key and prints it; start the others with it:
  drover server --id m2 --data-dir /var/lib/drover --listen 10.0.0.2:7380 --bootstrap-expect 3 \
    --join 10.0.0.1 --encrypt KEY
Once the expected masters see each other they bootstrap Raft together,
agree on a cluster CA (created at bootstrap, or given with --ca-cert/--ca-key)
and talk TLS from then on. Restarting with the same data dir needs no flags
beyond --id, --data-dir and --listen.

Flags may also come from a YAML file (--config), keyed by flag name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyConfigFile(cmd.Flags(), o.config); err != nil {
				return err
			}
			return serverRun(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.dev, "dev", false, "development mode: one master with a node agent (as root), ./drover-data, loopback only, plaintext store and gossip")
	f.BoolVar(&o.noAgent, "no-agent", false, "with --dev: do not run a node agent in the server")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (flag name: value); command-line flags win")
	f.StringVar(&o.id, "id", "", "this master's unique, stable ID (default: the host name; dev in --dev mode)")
	f.StringVar(&o.dataDir, "data-dir", "", "where Raft's log, snapshots, keys and certificates live (default ./drover-data with --dev)")
	f.StringVar(&o.listen, "listen", "", fmt.Sprintf("member address for Raft and member traffic, host[:port] (port %d; default 127.0.0.1 with --dev)", master.DefaultMemberPort))
	f.StringVar(&o.api, "api", "", fmt.Sprintf("etcd v3 API address, host[:port] (default: the --listen host, port %d)", master.DefaultAPIPort))
	f.StringVar(&o.gossip, "gossip", "", fmt.Sprintf("gossip address, host[:port] (default: the --listen host, port %d)", master.DefaultGossipPort))
	f.StringVar(&o.kubeAPI, "kube-api", "", fmt.Sprintf("Kubernetes API address (kubectl, drover get ...), host[:port] (default: the --listen host, port %d)", master.DefaultKubeAPIPort))
	f.StringVar(&o.advertiseKube, "advertise-kube-api", "", "Kubernetes API address clients should use, if not --kube-api")
	f.StringVar(&o.serviceCIDR, "service-cidr", "10.96.0.0/12", "IPv4 range Service cluster IPs are allocated from")
	f.StringVar(&o.nodePorts, "node-port-range", "30000-32767", "port range NodePort Services are allocated from")
	f.Int64Var(&o.maxBody, "max-request-bytes", 3<<20, "largest API request body accepted")
	f.StringVar(&o.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "IPv4 range pod addresses come from; each node gets one subnet of it")
	f.IntVar(&o.nodeMask, "node-cidr-mask-size", 24, "prefix length of each node's pod subnet within --cluster-cidr")
	f.StringVar(&o.advertise, "advertise", "", "member address other masters should use, if not --listen")
	f.StringVar(&o.advertiseAPI, "advertise-api", "", "API address clients should use, if not --api")
	f.StringVar(&o.advertiseGossip, "advertise-gossip", "", "gossip address others should use, if not --gossip")
	f.StringSliceVar(&o.join, "join", nil, "gossip address(es) of existing masters, host[:port],...")
	f.IntVar(&o.expect, "bootstrap-expect", 0, "bootstrap a new cluster once this many masters (counting this one) see each other; 0 joins an existing cluster")
	f.StringVar(&o.encrypt, "encrypt", "", "gossip encryption key, base64 (default: the one in the data dir, else generated and printed)")
	f.StringVar(&o.caCert, "ca-cert", "", "PEM file of a cluster CA certificate to use instead of generating one")
	f.StringVar(&o.caKey, "ca-key", "", "PEM file of that CA's private key")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.Uint64Var(&o.snapThresh, "snapshot-threshold", raftstore.DefaultConfig().SnapshotThreshold, "log entries between Raft snapshots")
	f.Uint64Var(&o.trailing, "trailing-logs", raftstore.DefaultConfig().TrailingLogs, "log entries kept after a snapshot for slow followers")
	f.IntVar(&o.history, "watch-history", raftstore.DefaultConfig().Watch.HistorySize, "revisions kept in memory for watch replay")
	f.DurationVar(&o.election, "election-timeout", 0, "Raft heartbeat and election timeout (default 500ms; 200ms with --dev)")
	f.BoolVar(&o.leaveOnTerm, "leave-on-terminate", false, "on SIGTERM/Ctrl-C leave the cluster for good (removed from Raft at once) instead of just stopping")
	f.DurationVar(&o.deadTimeout, "dead-server-timeout", 5*time.Minute, "remove a master from Raft after it has been unreachable this long (only while quorum stays safe)")
	return cmd
}

// applyConfigFile sets every flag named in the YAML file that was not given
// on the command line.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	for name, v := range values {
		fl := fs.Lookup(name)
		if fl == nil {
			return fmt.Errorf("--config %s: unknown setting %q (settings are flag names, e.g. data-dir)", path, name)
		}
		if fl.Changed {
			continue
		}
		var str string
		switch t := v.(type) {
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			str = strings.Join(parts, ",")
		case float64:
			str = strconv.FormatFloat(t, 'f', -1, 64)
		default:
			str = fmt.Sprint(t)
		}
		if err := fs.Set(name, str); err != nil {
			return fmt.Errorf("--config %s: %s: %w", path, name, err)
		}
	}
	return nil
}

// withPort adds the default port to host, or takes host from fallback.
func withPort(addr, fallbackHost string, port int) (string, error) {
	if addr == "" {
		addr = fallbackHost
	}
	if addr == "" {
		return "", nil
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr, nil
	}
	if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "[") {
		addr = "[" + addr + "]"
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port)), nil
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (o *serverOptions) complete() error {
	if o.dev {
		if o.id == "" {
			o.id = "dev"
		}
		if o.dataDir == "" {
			o.dataDir = "drover-data"
		}
		if o.listen == "" {
			o.listen = "127.0.0.1"
		}
		if o.expect == 0 {
			o.expect = 1
		}
	}
	if o.id == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("--id is required (could not read the host name)")
		}
		o.id = h
	}
	switch {
	case o.dataDir == "":
		return fmt.Errorf("--data-dir is required (or use --dev)")
	case o.listen == "":
		return fmt.Errorf("--listen is required (or use --dev)")
	case o.expect < 0:
		return fmt.Errorf("--bootstrap-expect must be >= 0, got %d", o.expect)
	case (o.caCert == "") != (o.caKey == ""):
		return fmt.Errorf("--ca-cert and --ca-key go together")
	}
	var err error
	if o.listen, err = withPort(o.listen, "", master.DefaultMemberPort); err != nil {
		return err
	}
	if o.api, err = withPort(o.api, hostOf(o.listen), master.DefaultAPIPort); err != nil {
		return err
	}
	if o.gossip, err = withPort(o.gossip, hostOf(o.listen), master.DefaultGossipPort); err != nil {
		return err
	}
	if o.kubeAPI, err = withPort(o.kubeAPI, hostOf(o.listen), master.DefaultKubeAPIPort); err != nil {
		return err
	}
	for i, j := range o.join {
		if o.join[i], err = withPort(j, "", master.DefaultGossipPort); err != nil {
			return err
		}
	}
	if o.dev && o.encrypt != "" {
		return fmt.Errorf("--dev runs without gossip encryption; drop --encrypt or --dev")
	}
	return nil
}

func serverRun(ctx context.Context, s Streams, o *serverOptions) error {
	if err := o.complete(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("data dir %q: %w", o.dataDir, err)
	}
	sc := raftstore.DefaultConfig()
	sc.SnapshotThreshold, sc.TrailingLogs, sc.Watch.HistorySize = o.snapThresh, o.trailing, o.history
	if o.dev && o.election == 0 {
		o.election = 200 * time.Millisecond
	}
	if o.election > 0 {
		sc.HeartbeatTimeout, sc.ElectionTimeout = o.election, o.election
		sc.LeaderLeaseTimeout = min(sc.LeaderLeaseTimeout, o.election)
	}
	m, err := master.Start(master.Config{
		ID: o.id, DataDir: dataDir,
		Member: o.listen, API: o.api, Gossip: o.gossip,
		AdvertiseMember: o.advertise, AdvertiseAPI: o.advertiseAPI, AdvertiseGossip: o.advertiseGossip,
		Join: o.join, BootstrapExpect: o.expect, EncryptKey: o.encrypt,
		CACert: o.caCert, CAKey: o.caKey, Insecure: o.dev, Local: o.dev,
		KubeAPI: o.kubeAPI, AdvertiseKubeAPI: o.advertiseKube,
		ServiceCIDR: o.serviceCIDR, NodePortRange: o.nodePorts, MaxRequestBytes: o.maxBody,
		ClusterCIDR: o.clusterCIDR, NodeCIDRMaskSize: o.nodeMask,
		LeaderWork: func(c *client.Client) []leader.Work {
			// Its own connections: binds come many at a time (no HTTP/2 yet).
			sc, err := c.Clone()
			if err != nil {
				logger.Error("scheduler not started", "err", err)
				return nil
			}
			sched, err := scheduler.New(scheduler.Config{Client: sc, Logger: logger.With("component", "scheduler")})
			if err != nil {
				logger.Error("scheduler not started", "err", err)
				return nil
			}
			return []leader.Work{{Name: "scheduler", Run: func(ctx context.Context) {
				if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
					logger.Error("scheduler stopped", "err", err)
				}
			}}}
		},
		DeadServerTimeout: o.deadTimeout, Store: sc, Version: Version, Logger: logger,
	})
	if err != nil {
		return err
	}
	exe := exeName()
	stopAgent := func() {}
	agentNote := ""
	if o.dev && !o.noAgent {
		if stopAgent, agentNote, err = startDevAgent(ctx, m, dataDir, o.id, logger); err != nil {
			m.Close(false)
			return err
		}
	}
	if o.dev {
		fmt.Fprintf(s.Out, `drover server is running in development mode: one master, loopback only, the store
and gossip in plaintext (the Kubernetes API is HTTPS with a local CA).
  member:   %[1]s (id %[2]q)
  etcd API: %[3]s
  Kubernetes API: https://%[6]s
  data:     %[4]s
  %[8]s

Try it from another terminal:
  export KUBECONFIG=%[7]s
  %[5]s get nodes                  (kubectl works too, with the same KUBECONFIG)
  %[5]s apply -f examples/web.yaml
  %[5]s get pods -o wide           (then: curl http://<pod IP>/)
  %[5]s logs web
  %[5]s exec web -- ls /www
  %[5]s kv put /hello world
  %[5]s kv get /hello
  %[5]s kv watch /hello           (then put again)
  %[5]s raft status
  %[5]s cluster members
  etcdctl --endpoints %[3]s get /hello

Stop with Ctrl-C; the data stays in %[4]s.
`, o.listen, o.id, m.APIAddr(), dataDir, exe, m.KubeAPIAddr(), m.KubeconfigPath(), agentNote)
	} else {
		logger.Info("master started", "id", o.id, "member", o.listen, "api", m.APIAddr(), "gossip", m.GossipAddr(), "data", dataDir)
		if m.KeyNote != "" {
			fmt.Fprintf(s.Out, `A gossip encryption key was generated (saved in %s/gossip.key).
Start the other masters with it:
  %s server --id NAME --data-dir DIR --listen HOST --bootstrap-expect %d --join %s --encrypt %s
`, dataDir, exe, o.expect, m.GossipAddr(), m.KeyNote)
		}
		fmt.Fprintf(s.Out, "Kubernetes API: https://%s (admin kubeconfig: %s, written once the cluster has formed)\n", m.KubeAPIAddr(), m.KubeconfigPath())
		fmt.Fprintf(s.Out, "etcd API: https://%s (etcdctl --endpoints %s --cacert %s/ca.crt --cert %s/admin.crt --key %s/admin.key ...)\n",
			m.APIAddr(), m.APIAddr(), m.PKIDir, m.PKIDir, m.PKIDir)
	}

	<-ctx.Done()
	stopAgent()
	if o.leaveOnTerm {
		fmt.Fprintln(s.Err, "shutting down: leaving the cluster (it will remove this master from Raft)")
	} else {
		fmt.Fprintln(s.Err, "shutting down: this master stays a member and rejoins when restarted")
	}
	return m.Close(o.leaveOnTerm)
}

func exeName() string {
	exe := "drover"
	if p, err := os.Executable(); err == nil {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
				exe = "./" + rel
			}
		}
	}
	return exe
}
