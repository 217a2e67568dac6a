// Package raftstoretest runs N-member store clusters inside one process, over
// the in-memory network (links can be cut) or real TCP on 127.0.0.x, with
// real raft-boltdb logs on disk so members can be killed and restarted.
package raftstoretest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/transport"
)

// Options shape a test cluster.
type Options struct {
	// TCP runs members over real TCP on 127.0.0.<i+1>; otherwise over the
	// in-memory network.
	TCP bool
	// Configure adjusts each member's config before it opens.
	Configure func(*raftstore.Config)
	// Verbose sends member logs to t.Log.
	Verbose bool
}

// Member is one store member of a test cluster.
type Member struct {
	ID    string
	Addr  string
	Dir   string
	Store *raftstore.Store // nil while killed
}

// Cluster is a running test cluster.
type Cluster struct {
	t       testing.TB
	opts    Options
	Net     *transport.Network // nil over TCP
	mu      sync.Mutex
	Members []*Member
}

// FastConfig is a config with timings tight enough for tests.
func FastConfig() raftstore.Config {
	cfg := raftstore.DefaultConfig()
	// Tight, but with room for the race detector on a busy 2-core machine:
	// tests must not see leadership churn they did not cause.
	cfg.HeartbeatTimeout = 250 * time.Millisecond
	cfg.ElectionTimeout = 250 * time.Millisecond
	cfg.LeaderLeaseTimeout = 150 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.DefaultTimeout = 5 * time.Second
	return cfg
}

// New starts n members bootstrapped as one cluster and closes them when the
// test ends.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: opts}
	if !opts.TCP {
		c.Net = transport.NewNetwork()
	}
	trans := make([]transport.Transport, n)
	var boot []raftstore.Server
	for i := 0; i < n; i++ {
		m := &Member{ID: fmt.Sprintf("m%d", i+1), Dir: t.TempDir()}
		tr, err := c.newTransport(m, i)
		if err != nil {
			t.Fatalf("transport for %s: %v", m.ID, err)
		}
		trans[i] = tr
		c.Members = append(c.Members, m)
		boot = append(boot, raftstore.Server{ID: m.ID, Address: m.Addr})
	}
	for i, m := range c.Members {
		if err := c.open(m, trans[i], boot); err != nil {
			t.Fatalf("open %s: %v", m.ID, err)
		}
	}
	t.Cleanup(c.Close)
	return c
}

func (c *Cluster) newTransport(m *Member, i int) (transport.Transport, error) {
	if c.Net != nil {
		if m.Addr == "" {
			m.Addr = m.ID
		}
		return c.Net.Join(raft.ServerAddress(m.Addr)), nil
	}
	bind := m.Addr
	if bind == "" {
		bind = fmt.Sprintf("127.0.0.%d:0", i+1)
	}
	var tr *transport.TCP
	var err error
	// A restarted member reuses its port; the old socket may linger briefly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr, err = transport.NewTCP(transport.TCPConfig{Bind: bind, Timeout: 2 * time.Second})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	m.Addr = string(tr.LocalAddr())
	return tr, nil
}

func (c *Cluster) config(m *Member, tr transport.Transport, boot []raftstore.Server) raftstore.Config {
	cfg := FastConfig()
	cfg.ID, cfg.Dir, cfg.Transport, cfg.Bootstrap = m.ID, m.Dir, tr, boot
	if c.opts.Verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(&testWriter{t: c.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if c.opts.Configure != nil {
		c.opts.Configure(&cfg)
	}
	return cfg
}

func (c *Cluster) open(m *Member, tr transport.Transport, boot []raftstore.Server) error {
	s, err := raftstore.Open(c.config(m, tr, boot))
	if err != nil {
		tr.Close()
		return err
	}
	c.mu.Lock()
	m.Store = s
	c.mu.Unlock()
	return nil
}

// Put writes key=value through member i, retrying while the outcome is a
// timeout or no leader (a put of the same value is idempotent). For tests
// that exercise something other than write availability.
func (c *Cluster) Put(ctx context.Context, i int, key, value string) int64 {
	c.t.Helper()
	for {
		rev, _, err := c.Store(i).Put(ctx, []byte(key), []byte(value), false)
		if err == nil {
			return rev
		}
		if !errors.Is(err, raftstore.ErrTimeout) && !errors.Is(err, raftstore.ErrNotLeader) || ctx.Err() != nil {
			c.t.Fatalf("put %s through %s: %v", key, c.Members[i].ID, err)
		}
	}
}

// Close stops every member.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		if s := c.store(m); s != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.Close() }()
		}
	}
	wg.Wait()
}

func (c *Cluster) store(m *Member) *raftstore.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.Store
}

// Store returns member i's store (nil while it is down).
func (c *Cluster) Store(i int) *raftstore.Store { return c.store(c.Members[i]) }

// Kill stops member i without handing off leadership. Every acknowledged
// write is already fsynced in its log, so this loses what a crash loses.
func (c *Cluster) Kill(i int) {
	m := c.Members[i]
	c.mu.Lock()
	s := m.Store
	m.Store = nil
	c.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// Restart reopens member i from its data directory at the same address.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.Members[i]
	tr, err := c.newTransport(m, i)
	if err != nil {
		c.t.Fatalf("restart %s: transport: %v", m.ID, err)
	}
	if err := c.open(m, tr, nil); err != nil {
		c.t.Fatalf("restart %s: %v", m.ID, err)
	}
}

// Leader waits for a member that is leader and ready, and returns its index.
func (c *Cluster) Leader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, m := range c.Members {
			if s := c.store(m); s != nil && s.IsLeader() {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				_, err := s.Range(ctx, raftstore.RangeRequest{Key: []byte("\x00leader-probe")})
				cancel()
				if err == nil && s.IsLeader() {
					return i
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %s", timeout)
	return -1
}

func (c *Cluster) addrs(idx []int) []raft.ServerAddress {
	out := make([]raft.ServerAddress, len(idx))
	for j, i := range idx {
		out[j] = raft.ServerAddress(c.Members[i].Addr)
	}
	return out
}

// Partition splits the in-memory network into the given groups of member
// indexes; members in no group are isolated.
func (c *Cluster) Partition(groups ...[]int) {
	c.mustInmem()
	var g [][]raft.ServerAddress
	for _, grp := range groups {
		g = append(g, c.addrs(grp))
	}
	c.Net.Partition(g...)
}

// Heal restores every link.
func (c *Cluster) Heal() { c.mustInmem(); c.Net.Heal() }

func (c *Cluster) mustInmem() {
	if c.Net == nil {
		c.t.Fatalf("partitions need the in-memory network")
	}
}

// WaitConverged waits until every running member has applied the same
// revision and holds the same keys.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var rev int64 = -1
		same := true
		for _, m := range c.Members {
			s := c.store(m)
			if s == nil {
				continue
			}
			r := s.Revision()
			if rev == -1 {
				rev = r
			} else if r != rev {
				same = false
				last = fmt.Sprintf("%s at revision %d, others at %d", m.ID, r, rev)
			}
		}
		if same {
			if diff := c.diffState(); diff == "" {
				return
			} else {
				last = diff
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("members did not converge within %s: %s", timeout, last)
}

func (c *Cluster) diffState() string {
	var ref []raftstore.KeyValue
	var refID string
	for _, m := range c.Members {
		s := c.store(m)
		if s == nil {
			continue
		}
		r, err := s.Range(context.Background(), raftstore.RangeRequest{Key: []byte{0}, End: []byte{0}, Consistency: raftstore.Serializable})
		if err != nil {
			return err.Error()
		}
		if refID == "" {
			ref, refID = r.KVs, m.ID
			continue
		}
		if len(r.KVs) != len(ref) {
			return fmt.Sprintf("%s has %d keys, %s has %d", m.ID, len(r.KVs), refID, len(ref))
		}
		for k := range ref {
			a, b := ref[k], r.KVs[k]
			if string(a.Key) != string(b.Key) || string(a.Value) != string(b.Value) || a.ModRev != b.ModRev || a.CreateRev != b.CreateRev || a.Version != b.Version {
				return fmt.Sprintf("%s and %s differ at %q", refID, m.ID, a.Key)
			}
		}
	}
	return ""
}

type testWriter struct {
	t  testing.TB
	mu sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() { recover() }() // the test may have finished
	w.t.Log(string(p))
	return len(p), nil
}
