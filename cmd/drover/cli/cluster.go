package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/raft"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/droverhq/drover/control/master"
	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/transport"
)

func newClusterCmd(s Streams) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect the masters' gossip membership"}
	o.addFlags(cmd)
	members := &cobra.Command{
		Use:   "members",
		Short: "List the members seen through gossip, with their Raft role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := o.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var list []master.MemberInfo
			if err := c.Call(ctx, "Cluster.Members", master.MembersArgs{}, &list); err != nil {
				return fmt.Errorf("list members via %s: %w", o.endpoint, err)
			}
			w := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tGOSSIP\tSTATUS\tROLE\tRAFT\tMEMBER ADDR\tAPI\tVERSION\tSINCE")
			for _, m := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Addr, m.State, m.Role, m.RaftRole, m.RaftAddr, m.APIAddr, orDash(m.Version), time.Since(m.Since).Round(time.Second))
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(members)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newKeygenCmd(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new gossip encryption key (for --encrypt)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return err
			}
			fmt.Fprintln(s.Out, base64.StdEncoding.EncodeToString(k))
			return nil
		},
	}
}

func newRaftTransferCmd(s Streams, o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand Raft leadership to the master ID (default: the most up-to-date follower)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := o.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			if err := c.TransferLeadership(ctx, id); err != nil {
				return err
			}
			st, err := c.Status(ctx)
			if err == nil {
				fmt.Fprintf(s.Out, "leader is now %s (%s)\n", st.LeaderID, st.LeaderAddr)
			}
			return nil
		},
	}
}

func newRaftRecoverCmd(s Streams) *cobra.Command {
	var dataDir, id string
	var members []string
	var yes bool
	cmd := &cobra.Command{
		Use:   "recover --data-dir DIR --id ID --members ID=HOST:PORT,...",
		Short: "Rebuild a cluster that lost quorum from its surviving masters (offline)",
		Long: `When a majority of masters is gone for good, the survivors cannot elect a
leader. Recover them:

 1. Stop every surviving master.
 2. On each survivor run, with the SAME --members list (the survivors only):
      drover raft recover --data-dir DIR --id ID --members m1=10.0.0.1:7380,m2=10.0.0.2:7380
 3. Start the survivors again. They form a cluster of exactly those members,
    with every write that any of them had committed; writes only the lost
    masters had seen are lost.

Never run it while a master is up, and never give survivors different lists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" || id == "" || len(members) == 0 {
				return fmt.Errorf("--data-dir, --id and --members are all required")
			}
			servers, err := parseMembers(members)
			if err != nil {
				return err
			}
			self := false
			for _, srv := range servers {
				self = self || srv.ID == id
			}
			if !self {
				return fmt.Errorf("--members must include this master (%s)", id)
			}
			if !yes {
				fmt.Fprintf(s.Out, "This rewrites the Raft configuration in %s to exactly: %s\nType yes to go on: ", dataDir, strings.Join(members, ", "))
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if strings.TrimSpace(line) != "yes" {
					return fmt.Errorf("aborted")
				}
			}
			// A transport is needed by the API only; nothing is sent.
			tr := transport.NewNetwork().Join("recover")
			cfg := raftstore.DefaultConfig()
			cfg.ID, cfg.Dir, cfg.Transport = id, dataDir, tr
			if err := raftstore.Recover(cfg, servers); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "recovered: %s now holds the configuration %s.\nStart the survivors; they form a cluster of those members.\n", dataDir, strings.Join(members, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the stopped master's data dir")
	cmd.Flags().StringVar(&id, "id", "", "the master's ID")
	cmd.Flags().StringSliceVar(&members, "members", nil, "every surviving master, ID=HOST:PORT (member address)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

func parseMembers(list []string) ([]raftstore.Server, error) {
	var out []raftstore.Server
	for _, item := range list {
		id, addr, ok := strings.Cut(item, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--members entry %q: want ID=HOST:PORT", item)
		}
		out = append(out, raftstore.Server{ID: id, Address: addr})
	}
	return out, nil
}

func newStoreCmd(s Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Back up and restore the whole store"}
	snap := &cobra.Command{Use: "snapshot", Short: "Save or restore a snapshot of the whole store"}
	var api, dataDir, cacert, cert, key string
	var timeout time.Duration
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of every key to FILE (from a running master's etcd API)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := &clientOptions{dataDir: dataDir, cacert: cacert, cert: cert, key: key}
			tc, err := o.tlsConfig()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{api}, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx})
			if err != nil {
				return fmt.Errorf("connect to %s: %w", api, err)
			}
			defer cli.Close()
			rc, err := cli.Snapshot(ctx)
			if err != nil {
				return fmt.Errorf("snapshot from %s: %w", api, err)
			}
			defer rc.Close()
			tmp := args[0] + ".part"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, rc)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(tmp)
				return fmt.Errorf("write %s: %w", args[0], err)
			}
			if err := os.Rename(tmp, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "saved %d bytes to %s\n", n, args[0])
			return nil
		},
	}
	save.Flags().StringVar(&api, "api", "127.0.0.1:7379", "a master's etcd API address")
	save.Flags().StringVar(&dataDir, "data-dir", "drover-data", "a master's data dir, to find its admin certificate (pki/)")
	save.Flags().StringVar(&cacert, "cacert", "", "cluster CA certificate (default <data-dir>/pki/ca.crt)")
	save.Flags().StringVar(&cert, "cert", "", "client certificate (default <data-dir>/pki/admin.crt)")
	save.Flags().StringVar(&key, "key", "", "client key (default <data-dir>/pki/admin.key)")
	save.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long the whole save may take")

	var rDir, rID, rListen string
	restore := &cobra.Command{
		Use:   "restore FILE --data-dir NEW_DIR --id ID --listen HOST:PORT",
		Short: "Start a new cluster's first master from a snapshot (offline)",
		Long: `Restore writes a snapshot into a NEW data directory as a one-master
cluster holding every key of the snapshot, with their revisions. Then start
that master with the same --data-dir, --id and --listen, and join the other
masters to it with empty data directories; they receive the data from it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rDir == "" || rID == "" || rListen == "" {
				return fmt.Errorf("--data-dir, --id and --listen are required")
			}
			if entries, err := os.ReadDir(rDir); err == nil && len(entries) > 0 {
				return fmt.Errorf("--data-dir %s is not empty: restore only into a new directory", rDir)
			}
			body, size, err := openSnapshotFile(args[0])
			if err != nil {
				return err
			}
			defer body.Close()
			rev, keys, err := restoreInto(cmd.Context(), body, size, rDir, rID, rListen)
			if err != nil {
				os.RemoveAll(rDir)
				return err
			}
			fmt.Fprintf(s.Out, "restored %d keys at revision %d into %s.\nStart it: drover server --id %s --data-dir %s --listen %s --bootstrap-expect 1\n", keys, rev, rDir, rID, rDir, rListen)
			return nil
		},
	}
	restore.Flags().StringVar(&rDir, "data-dir", "", "a new, empty data dir for the first master")
	restore.Flags().StringVar(&rID, "id", "", "that master's ID")
	restore.Flags().StringVar(&rListen, "listen", "", "that master's member address, HOST:PORT")
	snap.AddCommand(save, restore)
	cmd.AddCommand(snap)
	return cmd
}

// openSnapshotFile checks the trailing SHA-256 that the API appends and
// returns the snapshot without it.
func openSnapshotFile(path string) (io.ReadCloser, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() < sha256.Size+5 {
		f.Close()
		return nil, 0, fmt.Errorf("%s is too small to be a drover snapshot", path)
	}
	body := fi.Size() - sha256.Size
	h := sha256.New()
	if _, err := io.CopyN(h, f, body); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		f.Close()
		return nil, 0, err
	}
	if string(h.Sum(nil)) != string(want) {
		f.Close()
		return nil, 0, fmt.Errorf("%s is corrupt: its SHA-256 does not match", path)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, body), f}, body, nil
}

// restoreInto bootstraps a one-member store in dir and restores the
// snapshot into it through Raft.
func restoreInto(ctx context.Context, body io.Reader, size int64, dir, id, listen string) (int64, int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	dir, _ = filepath.Abs(dir)
	tr := transport.NewNetwork().Join(raft.ServerAddress(listen))
	cfg := raftstore.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Transport = id, dir, tr
	cfg.Bootstrap = []raftstore.Server{{ID: id, Address: listen}}
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	st, err := raftstore.Open(cfg)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for !st.IsLeader() {
		if ctx.Err() != nil {
			return 0, 0, fmt.Errorf("the restore member did not become leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := st.RestoreSnapshot(ctx, body, size); err != nil {
		return 0, 0, err
	}
	if err := st.Snapshot(); err != nil {
		return 0, 0, err
	}
	return st.Revision(), st.LocalStatus().Keys, nil
}
