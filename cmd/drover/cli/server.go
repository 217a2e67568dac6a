package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/transport"
)

type serverOptions struct {
	dev        bool
	id         string
	dataDir    string
	listen     string
	advertise  string
	bootstrap  []string
	logLevel   string
	snapThresh uint64
	trailing   uint64
	history    int
	election   time.Duration
}

func newServerCmd(s Streams) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a drover master (for now: one member of the replicated store)",
		Long: `Run one member of drover's replicated store.

With --dev, everything has a default: a single member named "dev", data in
./drover-data, listening on 127.0.0.1:7380 (plaintext, loopback only). The
first start bootstraps a one-member cluster; later starts reuse the data.

Without --dev, name the member, its data directory and address, and on the
very first start of a new cluster give every member the same --bootstrap
list:
  drover server --id m1 --data-dir /var/lib/drover --listen 10.0.0.1:7380 \
    --bootstrap m1=10.0.0.1:7380,m2=10.0.0.2:7380,m3=10.0.0.3:7380`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serverRun(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.dev, "dev", false, "development mode: one member, local data dir, loopback only, plaintext")
	f.StringVar(&o.id, "id", "", "this member's stable ID (default: dev in --dev mode, else required)")
	f.StringVar(&o.dataDir, "data-dir", "", "where the Raft log and snapshots live (default ./drover-data with --dev)")
	f.StringVar(&o.listen, "listen", "", "member address to listen on, host:port (default 127.0.0.1:7380 with --dev)")
	f.StringVar(&o.advertise, "advertise", "", "member address peers should use, if different from --listen")
	f.StringSliceVar(&o.bootstrap, "bootstrap", nil, "ID=host:port of every voter, to bootstrap a new cluster (ignored once data exists)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.Uint64Var(&o.snapThresh, "snapshot-threshold", raftstore.DefaultConfig().SnapshotThreshold, "log entries between snapshots")
	f.Uint64Var(&o.trailing, "trailing-logs", raftstore.DefaultConfig().TrailingLogs, "log entries kept after a snapshot for slow followers")
	f.DurationVar(&o.election, "election-timeout", 0, "Raft heartbeat and election timeout (default 1s; 200ms with --dev)")
	f.IntVar(&o.history, "watch-history", raftstore.DefaultConfig().Watch.HistorySize, "revisions kept in memory for watch replay")
	return cmd
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
			o.listen = "127.0.0.1:7380"
		}
		host, _, err := net.SplitHostPort(o.listen)
		if err != nil {
			return fmt.Errorf("--listen %q: %v", o.listen, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("--dev serves plaintext and only on loopback; --listen %s is not a loopback address", o.listen)
		}
		if len(o.bootstrap) == 0 {
			o.bootstrap = []string{o.id + "=" + firstNonEmpty(o.advertise, o.listen)}
		}
	}
	switch {
	case o.id == "":
		return fmt.Errorf("--id is required (or use --dev)")
	case o.dataDir == "":
		return fmt.Errorf("--data-dir is required (or use --dev)")
	case o.listen == "":
		return fmt.Errorf("--listen is required (or use --dev)")
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func parseBootstrap(list []string) ([]raftstore.Server, error) {
	var out []raftstore.Server
	for _, item := range list {
		id, addr, ok := strings.Cut(item, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--bootstrap entry %q: want ID=host:port", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--bootstrap entry %q: %v", item, err)
		}
		out = append(out, raftstore.Server{ID: id, Address: addr})
	}
	return out, nil
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
	boot, err := parseBootstrap(o.bootstrap)
	if err != nil {
		return err
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("data dir %q: %w", o.dataDir, err)
	}
	tr, err := transport.NewTCP(transport.TCPConfig{Bind: o.listen, Advertise: o.advertise, Logger: logger})
	if err != nil {
		return err
	}
	cfg := raftstore.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Transport, cfg.Bootstrap, cfg.Logger = o.id, dataDir, tr, boot, logger
	cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.Watch.HistorySize = o.snapThresh, o.trailing, o.history
	if o.dev {
		// One member: elections are instant, so a short timeout is safe.
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	}
	if o.election > 0 {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = o.election, o.election
		cfg.LeaderLeaseTimeout = min(cfg.LeaderLeaseTimeout, o.election)
	}
	store, err := raftstore.Open(cfg)
	if err != nil {
		tr.Close()
		return err
	}
	addr := string(tr.LocalAddr())
	if o.dev {
		exe := "drover"
		if p, err := os.Executable(); err == nil {
			if rel, err := filepath.Rel(mustGetwd(), p); err == nil && !strings.HasPrefix(rel, "..") {
				exe = "./" + rel
			}
		}
		fmt.Fprintf(s.Out, `drover server is running in development mode.
  member:   %s (id %q), plaintext, loopback only
  data:     %s

Try it from another terminal:
  %[4]s kv put /hello world
  %[4]s kv get /hello
  %[4]s kv watch /hello           (then put again)
  %[4]s raft status

Stop with Ctrl-C; the data stays in %[3]s.
`, addr, o.id, dataDir, exe)
	} else {
		logger.Info("store member started", "id", o.id, "addr", addr, "data", dataDir)
		logger.Warn("member traffic is plaintext in this version; keep it on a trusted network")
	}

	<-ctx.Done()
	// Shutdown order: stop Raft and member traffic, end watches, close the
	// log (Store.Close does it in that order).
	fmt.Fprintln(s.Err, "shutting down")
	return store.Close()
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}
