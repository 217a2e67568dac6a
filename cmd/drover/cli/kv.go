package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/droverhq/drover/raftstore"
)

type clientOptions struct {
	endpoint string
	timeout  time.Duration
	dataDir  string
	cacert   string
	cert     string
	key      string
}

func (o *clientOptions) addFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&o.endpoint, "endpoint", "127.0.0.1:7380", "a master's member address, host:port")
	cmd.PersistentFlags().DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for an answer")
	cmd.PersistentFlags().StringVar(&o.dataDir, "data-dir", "drover-data", "a master's data dir, to find its admin certificate (pki/)")
	cmd.PersistentFlags().StringVar(&o.cacert, "cacert", "", "cluster CA certificate (default <data-dir>/pki/ca.crt if present)")
	cmd.PersistentFlags().StringVar(&o.cert, "cert", "", "client certificate (default <data-dir>/pki/admin.crt if present)")
	cmd.PersistentFlags().StringVar(&o.key, "key", "", "client key (default <data-dir>/pki/admin.key if present)")
}

// tlsConfig finds the admin credentials; none means a plaintext (dev)
// master.
func (o *clientOptions) tlsConfig() (*tls.Config, error) {
	ca, cert, key := o.cacert, o.cert, o.key
	if ca == "" {
		if p := filepath.Join(o.dataDir, "pki", "ca.crt"); fileExists(p) {
			ca = p
		}
	}
	if cert == "" && key == "" {
		if p := filepath.Join(o.dataDir, "pki", "admin.crt"); fileExists(p) {
			cert, key = p, filepath.Join(o.dataDir, "pki", "admin.key")
		}
	}
	if ca == "" && cert == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate", ca)
		}
		conf.RootCAs = pool
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (o *clientOptions) dial(ctx context.Context) (*raftstore.Client, context.Context, context.CancelFunc, error) {
	tc, err := o.tlsConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	c, err := raftstore.Dial(ctx, o.endpoint, tc)
	if err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("%w (is a drover server running there? start one with: drover server --dev)", err)
	}
	return c, ctx, func() { c.Close(); cancel() }, nil
}

func newKVCmd(s Streams) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write keys in the store directly (debugging)",
	}
	o.addFlags(cmd)

	var serializable, prefix, keysOnly bool
	var limit int64
	get := &cobra.Command{
		Use:   "get KEY [END]",
		Short: "Read a key, a range [KEY, END), or with --prefix every key under KEY",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := o.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			req := raftstore.RangeRequest{Key: []byte(args[0]), Prefix: prefix, Limit: limit}
			if len(args) == 2 {
				req.End = []byte(args[1])
			}
			if serializable {
				req.Consistency = raftstore.Serializable
			}
			r, err := c.Range(ctx, req)
			if err != nil {
				return err
			}
			if len(r.KVs) == 0 && !prefix && len(req.End) == 0 {
				return fmt.Errorf("key %q not found (revision %d)", args[0], r.Revision)
			}
			for _, kv := range r.KVs {
				if keysOnly {
					fmt.Fprintf(s.Out, "%s\n", kv.Key)
				} else {
					fmt.Fprintf(s.Out, "%s\n%s\n", kv.Key, kv.Value)
				}
			}
			if r.More {
				fmt.Fprintf(s.Err, "(%d of %d keys shown; continue from %q)\n", len(r.KVs), r.Count, r.NextKey)
			}
			return nil
		},
	}
	get.Flags().BoolVar(&serializable, "serializable", false, "read this member's state without asking the leader (may be stale)")
	get.Flags().BoolVar(&prefix, "prefix", false, "read every key starting with KEY")
	get.Flags().BoolVar(&keysOnly, "keys-only", false, "print keys only")
	get.Flags().Int64Var(&limit, "limit", 0, "at most this many keys (0: all)")

	put := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set a key",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := o.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			rev, err := c.Put(ctx, []byte(args[0]), []byte(args[1]))
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "OK (revision %d)\n", rev)
			return nil
		},
	}

	var delPrefix bool
	del := &cobra.Command{
		Use:   "del KEY [END]",
		Short: "Delete a key, a range [KEY, END), or with --prefix every key under KEY",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := o.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var end []byte
			if len(args) == 2 {
				end = []byte(args[1])
			}
			if delPrefix {
				end = prefixEnd([]byte(args[0]))
			}
			n, err := c.Delete(ctx, []byte(args[0]), end)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "%d\n", n)
			return nil
		},
	}
	del.Flags().BoolVar(&delPrefix, "prefix", false, "delete every key starting with KEY")

	var watchPrefix bool
	var fromRev int64
	watch := &cobra.Command{
		Use:   "watch KEY",
		Short: "Print every change to a key (or with --prefix, to keys under it) until Ctrl-C",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc, err := o.tlsConfig()
			if err != nil {
				return err
			}
			c, err := raftstore.Dial(cmd.Context(), o.endpoint, tc)
			if err != nil {
				return fmt.Errorf("%w (is a drover server running there?)", err)
			}
			defer c.Close()
			var end []byte
			if watchPrefix {
				end = prefixEnd([]byte(args[0]))
			}
			err = c.Watch(cmd.Context(), []byte(args[0]), end, fromRev, func(evs []raftstore.WatchEvent) error {
				for _, ev := range evs {
					if ev.Delete {
						fmt.Fprintf(s.Out, "DELETE %s (revision %d)\n", ev.KV.Key, ev.Revision)
					} else {
						fmt.Fprintf(s.Out, "PUT %s %s (revision %d)\n", ev.KV.Key, ev.KV.Value, ev.Revision)
					}
				}
				return nil
			})
			if cmd.Context().Err() != nil {
				return nil // interrupted
			}
			return err
		},
	}
	watch.Flags().BoolVar(&watchPrefix, "prefix", false, "watch every key starting with KEY")
	watch.Flags().Int64Var(&fromRev, "rev", 0, "start from this revision (0: from now)")

	cmd.AddCommand(get, put, del, watch)
	return cmd
}

func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] < 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return []byte{0}
}
