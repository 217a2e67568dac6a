package cluster_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/cluster"
	"github.com/droverhq/drover/raftstore/raftstoretest"
	"github.com/droverhq/drover/raftstore/transport"
)

// master is one in-process master: store over TCP, gossip, manager.
type master struct {
	id                   string
	ip                   string
	dir                  string
	raftPort, gossipPort int // kept across restarts
	store                *raftstore.Store
	gossip               *cluster.Gossip
	cancel               context.CancelFunc
	done                 chan struct{}
}

type testCluster struct {
	t       *testing.T
	key     []byte
	expect  int
	dead    time.Duration
	masters map[string]*master
	seed    string // a gossip address to join
}

func newTestCluster(t *testing.T, expect int, dead time.Duration) *testCluster {
	key := make([]byte, 32)
	rand.Read(key)
	tc := &testCluster{t: t, key: key, expect: expect, dead: dead, masters: map[string]*master{}}
	t.Cleanup(func() {
		for _, m := range tc.masters {
			m.stop(false)
		}
	})
	return tc
}

// start runs master id on 127.0.0.<n> (fresh or from its data dir).
func (tc *testCluster) start(id string, n int, join bool) *master {
	t := tc.t
	t.Helper()
	m := tc.masters[id]
	if m == nil {
		m = &master{id: id, ip: fmt.Sprintf("127.0.0.%d", n), dir: t.TempDir()}
		tc.masters[id] = m
	}
	tr, err := transport.NewTCP(transport.TCPConfig{Bind: fmt.Sprintf("%s:%d", m.ip, m.raftPort)})
	if err != nil {
		t.Fatal(err)
	}
	m.raftPort = portOf(t, string(tr.LocalAddr()))
	cfg := raftstoretest.FastConfig()
	cfg.ID, cfg.Dir, cfg.Transport = id, m.dir, tr
	m.store, err = raftstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.gossip, err = cluster.Start(cluster.Config{
		Name: id, Bind: fmt.Sprintf("%s:%d", m.ip, m.gossipPort), SecretKey: tc.key, Local: true,
		Meta: cluster.Meta{ID: id, Role: cluster.RoleMaster, RaftAddr: string(tr.LocalAddr()), Expect: tc.expect},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.gossipPort = portOf(t, m.gossip.LocalAddr())
	if tc.seed == "" {
		tc.seed = m.gossip.LocalAddr()
	} else if join {
		if _, err := m.gossip.Join([]string{tc.seed}); err != nil {
			t.Fatalf("%s join: %v", id, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	mgr := cluster.NewManager(m.gossip, m.store, cluster.ManagerConfig{BootstrapExpect: tc.expect, DeadServerTimeout: tc.dead, Interval: 100 * time.Millisecond})
	go func() { defer close(m.done); mgr.Run(ctx) }()
	if join && tc.seed != m.gossip.LocalAddr() {
		// As the master process does: keep re-joining, so a master whose
		// address changed is accepted once its old address is declared dead.
		seed := tc.seed
		go func() {
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					m.gossip.Join([]string{seed})
				}
			}
		}()
	}
	return m
}

// moveTo gives a stopped master a new loopback address (an IP change).
func (m *master) moveTo(n int) {
	m.ip = fmt.Sprintf("127.0.0.%d", n)
	m.raftPort, m.gossipPort = 0, 0
}

func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func (m *master) stop(leave bool) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	m.cancel = nil
	if leave {
		m.gossip.Leave(2 * time.Second)
	} else {
		m.gossip.Shutdown()
	}
	m.store.Close()
}

// waitVoters waits until the leader's configuration has exactly these
// voters.
func (tc *testCluster) waitVoters(want ...string) {
	tc.t.Helper()
	start := time.Now()
	defer func() { tc.t.Logf("voters %v after %s", want, time.Since(start).Round(time.Millisecond)) }()
	sort.Strings(want)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		for _, m := range tc.masters {
			if m.cancel == nil || !m.store.IsLeader() {
				continue
			}
			conf, err := m.store.Configuration()
			if err != nil {
				continue
			}
			var got []string
			for _, s := range conf {
				if s.Voter {
					got = append(got, s.ID)
				}
			}
			sort.Strings(got)
			last = strings.Join(got, ",")
			if last == strings.Join(want, ",") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatalf("voters = %q, want %q", last, strings.Join(want, ","))
}

func (tc *testCluster) write(via string, key string) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := tc.masters[via].store.Put(ctx, []byte(key), []byte("v"), false)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			tc.t.Fatalf("write via %s: %v", via, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBootstrapExpectJoinLeaveAndDeadRemoval(t *testing.T) {
	tc := newTestCluster(t, 3, 2*time.Second)
	tc.start("m1", 1, true)
	tc.start("m2", 2, true)
	// Two of three: no cluster may form yet.
	if tc.masters["m1"].store.HasState() || tc.masters["m2"].store.HasState() {
		t.Fatal("bootstrapped with 2 of 3 expected masters")
	}
	tc.start("m3", 3, true)
	tc.waitVoters("m1", "m2", "m3")
	tc.write("m2", "/a")

	// A 4th and 5th master (expecting 3 too) join the existing cluster.
	tc.start("m4", 4, true)
	tc.start("m5", 5, true)
	tc.waitVoters("m1", "m2", "m3", "m4", "m5")
	tc.write("m5", "/b")

	// A graceful leave is removed at once.
	tc.masters["m5"].stop(true)
	tc.waitVoters("m1", "m2", "m3", "m4")

	// A master that dies is removed after the dead-server timeout, since
	// the three others stay a majority.
	tc.masters["m4"].stop(false)
	tc.waitVoters("m1", "m2", "m3")
	tc.write("m1", "/c")

	// A restarted master with its data rejoins without any manual step.
	tc.masters["m2"].stop(false)
	tc.start("m2", 2, true)
	tc.write("m2", "/d")
	tc.waitVoters("m1", "m2", "m3")

	// A master whose IP address changed rejoins too: the leader updates its
	// Raft address from gossip.
	tc.masters["m3"].stop(false)
	tc.masters["m3"].moveTo(13)
	m3 := tc.start("m3", 13, true)
	deadline := time.Now().Add(60 * time.Second)
	start := time.Now()
	for {
		conf, err := m3.store.Configuration()
		moved := false
		for _, s := range conf {
			moved = moved || err == nil && s.ID == "m3" && strings.HasPrefix(s.Address, "127.0.0.13:")
		}
		if moved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m3's Raft address did not follow its new IP: %+v", conf)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("m3's new address adopted after %s", time.Since(start).Round(time.Millisecond))
	tc.write("m3", "/e")
	tc.waitVoters("m1", "m2", "m3")
}
