package e2e

// The partition proof: three `drover server` processes, each in its own
// network namespace on a private bridge (netns_test.go), serve a concurrent
// put/get/CAS workload through their etcd v3 APIs while one master at a
// time is cut off from the others: first the leader, then a follower. The
// test asserts that
//
//   - the cut-off master serves no linearizable read and no write: every
//     request to it that starts after the cut and ends before the heal
//     fails, within its timeout;
//   - the majority goes on: writes succeed through both of its members
//     during the cut;
//   - after healing, every member serves reads and writes again and all
//     three converge on the same revision and the same key-values;
//   - the whole history (workload, probes of the cut-off member, final
//     reads) is linearizable, checked by package lincheck (porcupine
//     against a per-key register model that tracks mod revisions, plus
//     cross-key checks of revisions: one write per revision; no going back
//     in real time), as raftstore's in-process fault tests are.
//
// Errored writes are indeterminate (they may have applied: their return
// time is the end of the history); errored reads are dropped. A failure
// prints the seed (DROVER_SEED=S replays the same choices; the interleaving
// is the scheduler's) and keeps the servers' logs and data, the history
// and, for an illegal history, porcupine's visualization.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/droverhq/drover/raftstore/pki"
	"github.com/droverhq/drover/raftstore/raftstoretest/lincheck"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

const (
	partOpTimeout    = time.Second            // every client request
	partSlack        = 750 * time.Millisecond // how late past its timeout a failing request may return
	partGrace        = 50 * time.Millisecond  // requests to a cut-off master must fail if they start this long after the cut
	partHold         = 3 * time.Second
	partSettle       = 1500 * time.Millisecond
	partAPIPort      = "7379"
	partCheckTimeout = 30 * time.Second // porcupine's

	// partUseGossipCA lets the masters settle their CA over gossip, as
	// `drover server` does without --ca-cert (true), or gives them one CA
	// by flags (false).
	partUseGossipCA = true
)

func TestPartitionIsolatedMasterServesNothing(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("DROVER_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewSource(seed))
	nw := newNSNet(t, 3)

	base, err := os.MkdirTemp("", "drover-partition-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DROVER_KEEP") != "" {
			t.Logf("seed %d (replay with DROVER_SEED=%d); server logs, data and the history are kept in %s", seed, seed, base)
			return
		}
		os.RemoveAll(base)
	})
	t.Logf("seed %d; namespaces %s*", seed, nw.name)

	c := startPartitionCluster(t, nw, base)
	leader := c.waitLeader(t, 45*time.Second)
	for i := range c.members {
		c.waitWritable(t, i, 20*time.Second)
	}
	t.Logf("cluster up in %s; leader %s", time.Since(c.started).Round(time.Millisecond), c.members[leader].id)

	h := &partHistory{lin: lincheck.NewHistory(), keys: []string{"/part/k0", "/part/k1", "/part/k2"}, c: c}
	h.cut.Store(-1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	spawn := func(n int64, kinds string, target func(r *rand.Rand) int) {
		wg.Add(1)
		r := rand.New(rand.NewSource(seed + n))
		go func() {
			defer wg.Done()
			h.run(r, stop, func() int { return target(r) }, kinds)
		}()
	}
	// The workload: clients on random members.
	for i := 0; i < 6; i++ {
		spawn(int64(i+1), "mix", func(r *rand.Rand) int { return r.Intn(len(c.members)) })
	}
	// Probes, during a cut only: a read and a write always in flight to the
	// cut-off master, and writes through the majority.
	spawn(101, "read", func(*rand.Rand) int { return int(h.cut.Load()) })
	spawn(102, "write", func(*rand.Rand) int { return int(h.cut.Load()) })
	spawn(103, "write", func(r *rand.Rand) int {
		cut := int(h.cut.Load())
		if cut < 0 {
			return -1
		}
		return (cut + 1 + r.Intn(len(c.members)-1)) % len(c.members)
	})

	var stopOnce sync.Once
	halt := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt) // on t.Fatal below; runs before the clients are closed

	time.Sleep(time.Second)
	// Cut off the leader, a follower (another master than before), and the
	// leader again.
	prev := -1
	for round, what := range []string{"leader", "follower", "leader"} {
		l, err := c.leader(5 * time.Second)
		if err != nil {
			t.Errorf("round %d: no leader before the cut: %v", round+1, err)
			break
		}
		victim := l
		if what == "follower" {
			victim = (l + 1 + rng.Intn(2)) % 3
			if victim == prev {
				victim = 3 - l - prev
			}
		}
		if err := nw.Cut(victim); err != nil {
			t.Fatal(err)
		}
		w := partWindow{member: victim, what: what, cutAt: h.now()}
		h.cut.Store(int32(victim))
		t.Logf("+%s: cut off %s %s", time.Duration(w.cutAt).Round(time.Millisecond), what, c.members[victim].id)
		if what == "leader" {
			// The majority elects a new leader while the old one is away.
			nl, err := c.leaderAmong(victim, partHold)
			if err != nil {
				t.Errorf("cut of leader %s: the majority elected no leader: %v", c.members[victim].id, err)
			} else {
				t.Logf("+%s: the majority's new leader is %s (%s after the cut)", time.Duration(h.now()).Round(time.Millisecond),
					c.members[nl].id, time.Duration(h.now()-w.cutAt).Round(time.Millisecond))
			}
		}
		time.Sleep(time.Until(h.lin.Start().Add(time.Duration(w.cutAt) + partHold)))
		h.cut.Store(-1)
		w.healAt = h.now()
		if err := nw.Heal(victim); err != nil {
			t.Fatal(err)
		}
		h.windows = append(h.windows, w)
		t.Logf("+%s: healed %s", time.Duration(w.healAt).Round(time.Millisecond), c.members[victim].id)
		prev = victim
		time.Sleep(partSettle)
	}
	halt()
	workloadEnd := h.now()

	// After healing every member serves writes and reads again.
	h.finalOps(t)
	c.checkConverged(t, h, 15*time.Second)
	c.checkAlive(t)

	h.report(t, workloadEnd)
	h.checkWindows(t)
	h.checkLinearizable(t, base, seed)
}

// ---- the cluster ----

type partMember struct {
	id, ns, addr string
	endpoint     string
	cli          *clientv3.Client
	cmd          *exec.Cmd
	logPath      string
	exited       chan struct{}
	exitErr      error
}

type partCluster struct {
	members []*partMember
	started time.Time
}

func startPartitionCluster(t *testing.T, nw *nsNet, base string) *partCluster {
	t.Helper()
	out, err := exec.Command(droverBin, "keygen").Output()
	if err != nil {
		t.Fatalf("drover keygen: %v", err)
	}
	key := strings.TrimSpace(string(out))
	// An operator-provided cluster CA (--ca-cert/--ca-key): the CA the
	// masters would otherwise agree on over gossip can split at bootstrap
	// (see partUseGossipCA), which is not what this test is about.
	var caFlags []string
	if !partUseGossipCA {
		ca, err := pki.NewCA("drover partition test CA")
		if err != nil {
			t.Fatal(err)
		}
		caDir := filepath.Join(base, "ca")
		if err := ca.Save(caDir); err != nil {
			t.Fatal(err)
		}
		caFlags = []string{"--ca-cert", filepath.Join(caDir, "ca.crt"), "--ca-key", filepath.Join(caDir, "ca.key")}
	}
	c := &partCluster{started: time.Now()}
	for i, host := range nw.Hosts {
		m := &partMember{id: fmt.Sprintf("m%d", i+1), ns: host.NS, addr: host.Addr,
			endpoint: "https://" + host.Addr + ":" + partAPIPort, exited: make(chan struct{})}
		dir := filepath.Join(base, m.id)
		m.logPath = dir + ".log"
		args := []string{"server", "--id", m.id, "--data-dir", dir, "--listen", host.Addr,
			"--api", host.Addr + ":" + partAPIPort, "--bootstrap-expect", "3", "--encrypt", key,
			"--election-timeout", "300ms", "--log-level", "debug"}
		args = append(args, caFlags...)
		if i > 0 {
			args = append(args, "--join", nw.Hosts[0].Addr)
		}
		logf, err := os.Create(m.logPath)
		if err != nil {
			t.Fatal(err)
		}
		m.cmd = nw.Command(i, droverBin, args...)
		m.cmd.Stdout, m.cmd.Stderr = logf, logf
		if err := m.cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("start %s: %v", m.id, err)
		}
		go func() {
			m.exitErr = m.cmd.Wait()
			logf.Close()
			close(m.exited)
		}()
		t.Cleanup(func() {
			m.cmd.Process.Signal(syscall.SIGKILL)
			<-m.exited
		})
		c.members = append(c.members, m)
	}

	// The admin client certificate appears in m1's data dir once the
	// cluster CA is settled, just before bootstrap.
	pkiDir := filepath.Join(base, "m1", "pki")
	var tlsConf *tls.Config
	deadline := time.Now().Add(45 * time.Second)
	for {
		if tlsConf, err = partAdminTLS(pkiDir); err == nil {
			break
		}
		c.checkAlive(t)
		if time.Now().After(deadline) {
			t.Fatalf("no admin certificate in %s after 45s: %v", pkiDir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range c.members {
		m.cli, err = clientv3.New(clientv3.Config{
			Endpoints:   []string{m.endpoint},
			TLS:         tlsConf,
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(nsDialer(m.ns))},
			Logger:      zap.NewNop(),
		})
		if err != nil {
			t.Fatalf("etcd client for %s: %v", m.id, err)
		}
		t.Cleanup(func() { m.cli.Close() })
	}
	return c
}

func partAdminTLS(dir string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s/ca.crt", dir)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// checkAlive fails the test if a server exited.
func (c *partCluster) checkAlive(t *testing.T) {
	t.Helper()
	for _, m := range c.members {
		select {
		case <-m.exited:
			t.Fatalf("%s exited: %v (log: %s)", m.id, m.exitErr, m.logPath)
		default:
		}
	}
}

// leader asks every member for its status and returns the member that a
// majority reports as leader.
func (c *partCluster) leader(within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	var last error
	for {
		votes := map[uint64]int{}
		self := map[uint64]int{}
		for i, m := range c.members {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			st, err := m.cli.Status(ctx, m.endpoint)
			cancel()
			if err != nil {
				last = fmt.Errorf("status of %s: %w", m.id, err)
				continue
			}
			self[st.Header.MemberId] = i
			if st.Leader != 0 {
				votes[st.Leader]++
			}
		}
		for id, n := range votes {
			if i, ok := self[id]; ok && n >= 2 {
				return i, nil
			}
		}
		if last == nil {
			last = fmt.Errorf("no leader agreed by a majority: %v", votes)
		}
		if time.Now().After(deadline) {
			return -1, last
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaderAmong waits until every member but the cut-off one reports the
// same leader, one of them.
func (c *partCluster) leaderAmong(cut int, within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for {
		seen := map[uint64]int{}
		self := map[uint64]int{}
		var last error
		for i, m := range c.members {
			if i == cut {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
			st, err := m.cli.Status(ctx, m.endpoint)
			cancel()
			if err != nil {
				last = err
				continue
			}
			self[st.Header.MemberId] = i
			seen[st.Leader]++
		}
		for id, n := range seen {
			if i, ok := self[id]; ok && n == len(c.members)-1 {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("leaders reported: %v (last error: %v)", seen, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *partCluster) waitLeader(t *testing.T, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		l, err := c.leader(time.Second)
		if err == nil {
			return l
		}
		c.checkAlive(t)
		if time.Now().After(deadline) {
			t.Fatalf("no leader within %s: %v", within, err)
		}
	}
}

func (c *partCluster) waitWritable(t *testing.T, i int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), partOpTimeout)
		_, err := c.members[i].cli.Put(ctx, "/part/ready", c.members[i].id)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write through %s within %s: %v", c.members[i].id, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkConverged waits until every member reports the same revision and
// serves the same key-values from its own state (serializable reads), which
// must be what the final linearizable reads saw.
func (c *partCluster) checkConverged(t *testing.T, h *partHistory, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var revs []int64
		var states []string
		var problem error
		for _, m := range c.members {
			ctx, cancel := context.WithTimeout(context.Background(), partOpTimeout)
			st, err := m.cli.Status(ctx, m.endpoint)
			if err != nil {
				cancel()
				problem = fmt.Errorf("status of %s: %w", m.id, err)
				break
			}
			revs = append(revs, st.Header.Revision)
			var kvs []string
			for _, k := range h.keys {
				r, err := m.cli.Get(ctx, k, clientv3.WithSerializable())
				if err != nil {
					problem = fmt.Errorf("serializable get of %s from %s: %w", k, m.id, err)
					break
				}
				if len(r.Kvs) == 0 {
					kvs = append(kvs, k+"=absent")
				} else {
					kvs = append(kvs, fmt.Sprintf("%s=%s@%d", k, r.Kvs[0].Value, r.Kvs[0].ModRevision))
				}
			}
			cancel()
			states = append(states, strings.Join(kvs, " "))
		}
		if problem == nil {
			same := true
			for i := range revs {
				same = same && revs[i] == revs[0] && states[i] == states[0]
			}
			if same {
				if states[0] != h.finalState {
					t.Errorf("members converged on %s, but the final linearizable reads saw %s", states[0], h.finalState)
				}
				t.Logf("converged: every member at revision %d: %s", revs[0], states[0])
				return
			}
			problem = fmt.Errorf("revisions %v, states %q", revs, states)
		}
		if time.Now().After(deadline) {
			t.Errorf("members did not converge within %s: %v", within, problem)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- the history ----

type partWindow struct {
	member        int
	what          string
	cutAt, healAt int64
}

type partRec struct {
	client int // porcupine client id
	member int
	probe  bool
	in     lincheck.Input
	out    lincheck.Output
	call   int64
	ret    int64
	err    error
}

type partHistory struct {
	c          *partCluster
	lin        *lincheck.History // the clock, client ids and values; the model check
	keys       []string
	cut        atomic.Int32 // the cut-off member, -1 when none
	windows    []partWindow
	finalState string

	mu   sync.Mutex
	recs []partRec
}

func (h *partHistory) now() int64 { return h.lin.Now() }

type partKnown struct {
	present bool
	val     string
	rev     int64
}

// run issues requests until stop: to the member target picks (none if it
// returns -1), of the given kinds: "read", "write" or "mix".
func (h *partHistory) run(rng *rand.Rand, stop <-chan struct{}, target func() int, kinds string) {
	id := h.lin.NewClient()
	known := map[string]partKnown{}
	var recs []partRec
	defer func() {
		h.mu.Lock()
		h.recs = append(h.recs, recs...)
		h.mu.Unlock()
	}()
	for {
		select {
		case <-stop:
			return
		default:
		}
		mi := target()
		if mi < 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		key := h.keys[rng.Intn(len(h.keys))]
		p := rng.Intn(100)
		switch kinds {
		case "read":
			p = 0
		case "write":
			p = 35 + p%65
		}
		var kind lincheck.Kind
		switch {
		case p < 35:
			kind = lincheck.Get
		case p < 65:
			kind = lincheck.Put
		default:
			kind = lincheck.CAS
		}
		r := h.do(mi, kind, key, known[key])
		r.client, r.probe = id, kinds != "mix"
		recs = append(recs, r)
		switch {
		case r.err != nil && kind != lincheck.Get:
			id = h.lin.NewClient() // the indeterminate op stays open to the end
		case r.err != nil:
		case kind == lincheck.Get || (kind == lincheck.CAS && !r.out.OK):
			known[key] = partKnown{present: r.out.Present, val: r.out.Value, rev: r.out.Rev}
		default:
			known[key] = partKnown{present: true, val: r.in.Value, rev: r.out.Rev}
		}
	}
}

// do runs one request against member mi.
func (h *partHistory) do(mi int, kind lincheck.Kind, key string, k partKnown) partRec {
	cli := h.c.members[mi].cli
	r := partRec{member: mi, in: lincheck.Input{Kind: kind, Key: key}}
	if kind != lincheck.Get {
		r.in.Value = h.lin.NewValue()
	}
	ctx, cancel := context.WithTimeout(context.Background(), partOpTimeout)
	defer cancel()
	r.call = h.now()
	switch kind {
	case lincheck.Get:
		resp, err := cli.Get(ctx, key)
		r.ret, r.err = h.now(), err
		if err == nil {
			r.out.StoreRev = resp.Header.Revision
			if len(resp.Kvs) > 0 {
				r.out.Present, r.out.Value, r.out.Rev = true, string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
			}
		}
	case lincheck.Put:
		resp, err := cli.Put(ctx, key, r.in.Value)
		r.ret, r.err = h.now(), err
		if err == nil {
			r.out.Rev, r.out.StoreRev = resp.Header.Revision, resp.Header.Revision
		}
	case lincheck.CAS:
		if k.present {
			r.in.ExpRev, r.in.ExpVal = k.rev, k.val
		}
		resp, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", r.in.ExpRev)).
			Then(clientv3.OpPut(key, r.in.Value)).
			Else(clientv3.OpGet(key)).Commit()
		r.ret, r.err = h.now(), err
		if err == nil {
			r.out.StoreRev = resp.Header.Revision
			if resp.Succeeded {
				r.out.OK, r.out.Rev = true, resp.Header.Revision
			} else if len(resp.Responses) == 1 && resp.Responses[0].GetResponseRange() != nil {
				if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
					r.out.Present, r.out.Value, r.out.Rev = true, string(kvs[0].Value), kvs[0].ModRevision
				}
			} else {
				r.err = fmt.Errorf("failed compare without the else branch's range response: %v", resp)
			}
		}
	}
	return r
}

// finalOps writes through, then reads every key through, every member;
// both must succeed (retrying for a while) and join the history.
func (h *partHistory) finalOps(t *testing.T) {
	t.Helper()
	start := time.Now()
	var state []string
	for mi, m := range h.c.members {
		for _, kind := range []lincheck.Kind{lincheck.Put, lincheck.Get} {
			for ki, key := range h.keys {
				if kind == lincheck.Put && ki > 0 {
					continue // one write per member
				}
				deadline := time.Now().Add(15 * time.Second)
				for {
					r := h.do(mi, kind, key, partKnown{})
					r.client = h.lin.NewClient()
					h.recs = append(h.recs, r)
					if r.err == nil {
						if kind == lincheck.Get && mi == len(h.c.members)-1 {
							if r.out.Present {
								state = append(state, fmt.Sprintf("%s=%s@%d", key, r.out.Value, r.out.Rev))
							} else {
								state = append(state, key+"=absent")
							}
						}
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after healing, %s cannot %s %s: %v", m.id, kind, key, r.err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
	}
	h.finalState = strings.Join(state, " ")
	t.Logf("after healing every member served a write and linearizable reads (%s)", time.Since(start).Round(time.Millisecond))
}

func (h *partHistory) report(t *testing.T, workloadEnd int64) {
	stats := map[string]int{}
	for _, r := range h.recs {
		res := "ok"
		if r.err != nil {
			res = "failed"
		}
		stats[fmt.Sprintf("%s %s", r.in.Kind, res)]++
	}
	var s []string
	for k, v := range stats {
		s = append(s, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(s)
	t.Logf("%d requests over %s: %s", len(h.recs), time.Duration(workloadEnd).Round(time.Millisecond), strings.Join(s, " "))
}

// checkWindows checks each cut: nothing served by the cut-off member,
// progress through the majority.
func (h *partHistory) checkWindows(t *testing.T) {
	t.Helper()
	for _, w := range h.windows {
		id := h.c.members[w.member].id
		reads, writes, served := 0, 0, 0
		errs := map[string]int{}
		var slowest time.Duration
		firstWrite := map[int]partRec{}
		for _, r := range h.recs {
			if r.call < w.cutAt || r.ret > w.healAt {
				continue
			}
			if r.member != w.member {
				if r.err == nil && r.in.Kind != lincheck.Get {
					if f, ok := firstWrite[r.member]; !ok || r.ret < f.ret {
						firstWrite[r.member] = r
					}
				}
				continue
			}
			if r.call < w.cutAt+int64(partGrace) {
				continue
			}
			if r.in.Kind == lincheck.Get {
				reads++
			} else {
				writes++
			}
			d := time.Duration(r.ret - r.call)
			slowest = max(slowest, d)
			if r.err == nil {
				if served++; served <= 10 {
					t.Errorf("%s %s was cut off, yet it served %s (called %s after the cut, took %s; log %s)",
						w.what, id, lincheck.Describe(r.in, r.out), time.Duration(r.call-w.cutAt).Round(time.Millisecond), d.Round(time.Millisecond), h.c.members[w.member].logPath)
				}
				continue
			}
			if d > partOpTimeout+partSlack {
				t.Errorf("cut-off %s: %s failed only after %s (timeout %s): %v", id, lincheck.Describe(r.in, lincheck.Output{Unknown: true}), d, partOpTimeout, r.err)
			}
			errs[errorClass(r.err)]++
		}
		if served > 10 {
			t.Errorf("... cut-off %s served %d requests in all", id, served)
		}
		var es []string
		for e, n := range errs {
			es = append(es, fmt.Sprintf("%q x%d", e, n))
		}
		sort.Strings(es)
		t.Logf("cut of %s %s (%s): %d linearizable reads and %d writes to it, %d failed, slowest in %s: %s",
			w.what, id, time.Duration(w.healAt-w.cutAt).Round(time.Millisecond), reads, writes, reads+writes-served, slowest.Round(time.Millisecond), strings.Join(es, ", "))
		if reads == 0 || writes == 0 {
			t.Errorf("cut of %s: only %d reads and %d writes to it were checked; the probes did not run", id, reads, writes)
		}
		for mi, m := range h.c.members {
			if mi == w.member {
				continue
			}
			f, ok := firstWrite[mi]
			if !ok {
				t.Errorf("cut of %s %s: no write succeeded through %s, on the majority side, during the cut", w.what, id, m.id)
				continue
			}
			t.Logf("  majority member %s: first write acknowledged %s after the cut (sent at +%s)", m.id,
				time.Duration(f.ret-w.cutAt).Round(time.Millisecond), time.Duration(f.call-w.cutAt).Round(time.Millisecond))
		}
	}
}

func errorClass(err error) string {
	s := err.Error()
	if i := strings.Index(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	return s
}

func (h *partHistory) checkLinearizable(t *testing.T, base string, seed int64) {
	t.Helper()
	for _, r := range h.recs {
		op := lincheck.Op{Client: r.client, Input: r.in, Output: r.out, Call: r.call, Return: r.ret, Note: "via " + h.c.members[r.member].id}
		if r.err != nil {
			// Failed reads tell nothing; failed writes stay open to the end.
			op.Note += ": " + r.err.Error()
			h.lin.Add(op, lincheck.Indeterminate)
			continue
		}
		h.lin.Add(op, lincheck.Done)
	}
	h.dump(filepath.Join(base, "history.txt"))
	start := time.Now()
	res, problems := h.lin.Check(partCheckTimeout)
	for _, msg := range problems {
		t.Errorf("%s (seed %d)", msg, seed)
	}
	t.Logf("porcupine: %d operations: %s in %s", h.lin.Len(), res, time.Since(start).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Errorf("porcupine could not decide within %s (seed %d)", partCheckTimeout, seed)
		return
	}
	var notes []porcupine.Annotation
	for _, w := range h.windows {
		notes = append(notes, porcupine.Annotation{Tag: "nemesis", Start: w.cutAt, End: w.healAt, Description: "cut off " + h.c.members[w.member].id})
	}
	path := filepath.Join(base, "history.html")
	if err := h.lin.WriteVisualization(path, partCheckTimeout, notes); err != nil {
		path = "visualization failed: " + err.Error()
	}
	t.Errorf("history is not linearizable (seed %d); visualization: %s; history: %s", seed, path, filepath.Join(base, "history.txt"))
}

func (h *partHistory) dump(path string) {
	recs := append([]partRec(nil), h.recs...)
	sort.Slice(recs, func(i, j int) bool { return recs[i].call < recs[j].call })
	var b strings.Builder
	for _, w := range h.windows {
		fmt.Fprintf(&b, "cut %s (%s) from %d to %d\n", h.c.members[w.member].id, w.what, w.cutAt, w.healAt)
	}
	for _, r := range recs {
		res := lincheck.Describe(r.in, r.out)
		if r.err != nil {
			res = lincheck.Describe(r.in, lincheck.Output{Unknown: true}) + " ERROR " + r.err.Error()
		}
		fmt.Fprintf(&b, "%d %d client=%d via=%s probe=%v %s\n", r.call, r.ret, r.client, h.c.members[r.member].id, r.probe, res)
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
}
