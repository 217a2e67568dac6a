package raftstore_test

// Benchmarks of the replicated store through its Go API (raftstore.Store),
// on in-process clusters whose members talk over real TCP on 127.0.0.x and
// keep real, fsynced raft-boltdb logs in temporary directories. Every member
// runs raftstore.DefaultConfig (Raft timings, MaxAppendEntries, snapshots,
// watch history): see docs/benchmarks.md for the recorded figures and the
// exact commands.
//
// Client-side benchmarks run b.N operations split across a fixed number of
// closed-loop clients (each yields the processor after each call, as a
// remote client's request would) and report, besides ns/op (wall time per
// operation, the inverse of throughput):
//
//	ops/s        operations completed per second of wall time
//	p50-ms       median latency of one operation, in milliseconds
//	p99-ms       99th percentile latency
//	cpu-us/op    CPU time of this process (every member and client) per op
//	kcpu-us/op   CPU time of kernel threads (block I/O, journal) per op
//	other-cpu-%  CPU used by other processes during the run, in % of the
//	             machine: a noise gauge; runs above a few % were disturbed
//
// Latencies go into a log-linear histogram (about 1% resolution), so long
// runs cost no memory.
//
// Repetitions: -count N repeats each sub-benchmark on the same cluster
// (clusters are built once per top-level benchmark). For repetitions on fresh
// clusters, run the go test command N times. -bench.keys (default 100000)
// shrinks the key space for a quick smoke run:
//
//	go test -run '^$' -bench . -benchtime 1x ./raftstore/ -bench.keys=2000

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/raftstoretest"
)

var benchKeysFlag = flag.Int("bench.keys", 100_000, "keys prefilled (and loaded by BenchmarkMemory); lower it for a quick smoke run")

const (
	benchValueLen    = 256
	benchKeyPrefix   = "/bench/k/"
	benchWatchPrefix = "/bench/w/"
	benchWatchKeys   = 1000 // keys the watch benchmark writes, under benchWatchPrefix
)

// benchKeyFor is the i-th key of the prefilled key space, /bench/k/%08d.
func benchKeyFor(i int) []byte { return fmt.Appendf(nil, benchKeyPrefix+"%08d", i) }

// benchKeyList returns the keys of the prefilled key space, in order.
func benchKeyList() [][]byte {
	keys := make([][]byte, *benchKeysFlag)
	for i := range keys {
		keys[i] = benchKeyFor(i)
	}
	return keys
}

func benchValue(rng *rand.Rand) []byte {
	v := make([]byte, benchValueLen)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	return v
}

// benchConfigure gives every member raftstore's defaults, keeping only the
// identity, directory, transport and bootstrap list the harness set.
func benchConfigure(cfg *raftstore.Config) {
	d := raftstore.DefaultConfig()
	d.ID, d.Dir, d.Transport, d.Bootstrap = cfg.ID, cfg.Dir, cfg.Transport, cfg.Bootstrap
	d.Logger, d.RaftLogger = cfg.Logger, cfg.RaftLogger
	*cfg = d
}

// benchCluster is a running cluster and its leader at the start.
type benchCluster struct {
	c      *raftstoretest.Cluster
	leader int
}

func (bc *benchCluster) store(i int) *raftstore.Store  { return bc.c.Store(i) }
func (bc *benchCluster) leaderStore() *raftstore.Store { return bc.c.Store(bc.leader) }

// followers returns every member but the leader.
func (bc *benchCluster) followers() []*raftstore.Store {
	var out []*raftstore.Store
	for i := range bc.c.Members {
		if i != bc.leader {
			out = append(out, bc.c.Store(i))
		}
	}
	return out
}

// newBenchCluster starts n members over TCP with default settings, waits for
// a ready leader and, with prefill, writes the key space through it. The
// cluster is closed, and its directories removed, when b ends; a goroutine
// check then verifies that nothing the benchmark started is left running.
func newBenchCluster(b *testing.B, n int, prefill bool) *benchCluster {
	b.Helper()
	benchLeakCheck(b)
	start := time.Now()
	c := raftstoretest.New(b, n, raftstoretest.Options{TCP: true, Configure: benchConfigure})
	bc := &benchCluster{c: c, leader: c.Leader(30 * time.Second)}
	elected := time.Since(start)
	keys := 0
	if prefill {
		benchPrefill(b, bc)
		keys = *benchKeysFlag
	}
	b.Logf("cluster of %d ready: leader %s elected in %s, %d keys prefilled in %s",
		n, c.Members[bc.leader].ID, elected.Round(time.Millisecond), keys,
		(time.Since(start) - elected).Round(time.Millisecond))
	return bc
}

// benchPrefill writes every key of the key space with a 256-byte value,
// 128 keys per transaction from 8 concurrent clients, then waits until every
// member has applied it all.
func benchPrefill(b *testing.B, bc *benchCluster) {
	b.Helper()
	const batch, clients = 128, 8
	s := bc.leaderStore()
	keys := benchKeyList()
	val := benchValue(rand.New(rand.NewPCG(1, 2)))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for {
				lo := int(next.Add(batch)) - batch
				if lo >= len(keys) {
					return
				}
				t := &raftstore.Txn{}
				for _, k := range keys[lo:min(lo+batch, len(keys))] {
					t.Success = append(t.Success, raftstore.Op{Type: command.OpPut, Key: k, Value: val})
				}
				if _, err := s.Txn(context.Background(), t); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("prefill: %v", err)
	}
	benchWaitApplied(b, bc, s.Revision())
}

// benchWaitApplied waits until every member has applied revision rev.
func benchWaitApplied(b *testing.B, bc *benchCluster, rev int64) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i := range bc.c.Members {
		for bc.store(i).Revision() < rev {
			if time.Now().After(deadline) {
				b.Fatalf("member %d stuck at revision %d, want %d", i, bc.store(i).Revision(), rev)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// benchBegin prepares one run: if leadership moved (an earlier run was
// disturbed), it finds the new leader; it waits until every member has
// applied everything, and returns the leader's term.
func benchBegin(b *testing.B, bc *benchCluster) uint64 {
	b.Helper()
	if !bc.leaderStore().IsLeader() {
		old := bc.leader
		bc.leader = bc.c.Leader(30 * time.Second)
		b.Logf("leadership moved from %s to %s before this run", bc.c.Members[old].ID, bc.c.Members[bc.leader].ID)
	}
	benchWaitApplied(b, bc, bc.leaderStore().Revision())
	return benchTerm(b, bc)
}

// benchTerm is the leader's current term, to notice an election during a run.
func benchTerm(b *testing.B, bc *benchCluster) uint64 {
	b.Helper()
	st, err := bc.leaderStore().Status(context.Background())
	if err != nil {
		b.Fatalf("status: %v", err)
	}
	return st.Term
}

// benchCheckLeader fails the benchmark if leadership moved since term: its
// figures would not mean what their name says.
func benchCheckLeader(b *testing.B, bc *benchCluster, term uint64) {
	b.Helper()
	if !bc.leaderStore().IsLeader() {
		b.Fatalf("member %s lost leadership during the run", bc.c.Members[bc.leader].ID)
	}
	if now := benchTerm(b, bc); now != term {
		b.Fatalf("an election happened during the run: term %d -> %d", term, now)
	}
}

// benchUsage samples the CPU time used by this process, by kernel threads
// and by the whole machine, so a run can report how much CPU other processes
// took from it.
type benchUsage struct {
	self    time.Duration // user+system time of this process
	kthread time.Duration // kernel threads (block I/O, journal: partly ours)
	machine time.Duration // busy time of all CPUs (/proc/stat), 0 if unknown
	at      time.Time
}

const benchTick = time.Second / 100 // USER_HZ, 100 on Linux

func benchUsageNow() benchUsage {
	u := benchUsage{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		if len(f) > 8 && f[0] == "cpu" {
			var busy uint64
			for _, i := range []int{1, 2, 3, 6, 7, 8} {
				n, _ := strconv.ParseUint(f[i], 10, 64)
				busy += n
			}
			u.machine = time.Duration(busy) * benchTick
		}
	}
	// Kernel threads are children of kthreadd (pid 2).
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + p.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:])) // state ppid ... utime stime at [11] [12]
		if len(f) > 12 && (f[1] == "2" || p.Name() == "2") {
			ut, _ := strconv.ParseUint(f[11], 10, 64)
			st, _ := strconv.ParseUint(f[12], 10, 64)
			u.kthread += time.Duration(ut+st) * benchTick
		}
	}
	return u
}

// report adds cpu-us/op (this process's CPU time, every member and client
// together, per operation), kcpu-us/op (kernel threads' CPU time per
// operation: block I/O and journal work, most of it caused by the run) and
// other-cpu-% (CPU taken by other processes during the run, in % of the
// whole machine: a noise indicator; runs with more than a few % were
// disturbed).
func (u0 benchUsage) report(b *testing.B, ops int) {
	for unit, v := range u0.metrics(ops) {
		b.ReportMetric(v, unit)
	}
}

func (u0 benchUsage) metrics(ops int) map[string]float64 {
	u := benchUsageNow()
	// A kernel thread that exits during the run takes its time with it.
	self, kthread := u.self-u0.self, max(u.kthread-u0.kthread, 0)
	m := map[string]float64{
		"cpu-us/op":  float64(self.Microseconds()) / float64(ops),
		"kcpu-us/op": float64(kthread.Microseconds()) / float64(ops),
	}
	if u0.machine > 0 && u.machine > 0 {
		wall := u.at.Sub(u0.at)
		other := float64(u.machine-u0.machine-self-kthread) / float64(wall) / float64(runtime.NumCPU()) * 100
		m["other-cpu-%"] = max(other, 0)
	}
	return m
}

// benchLeakCheck checks, after every cleanup registered later has run (the
// cluster's close among them), that no goroutine started during the
// benchmark is left running.
func benchLeakCheck(b *testing.B) {
	before := benchGoroutines()
	b.Cleanup(func() {
		var stray []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			stray = stray[:0]
			for id, g := range benchGoroutines() {
				if before[id] == "" && !strings.Contains(g, "benchLeakCheck") {
					stray = append(stray, g)
				}
			}
			if len(stray) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(stray) > 0 {
			b.Errorf("after the cluster closed, %d goroutines started during the benchmark are left:\n%s",
				len(stray), strings.Join(stray, "\n\n"))
		}
	})
}

// benchGoroutines returns every goroutine's stack by goroutine ID.
func benchGoroutines() map[string]string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if f := strings.Fields(g); len(f) > 1 && f[0] == "goroutine" {
			out[f[1]] = g
		}
	}
	return out
}

// latHist is a log-linear latency histogram in nanoseconds: exact below 128
// ns, then 64 buckets per power of two (relative error under 1%).
type latHist struct{ counts [4096]uint64 }

func latIndex(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 128 {
		return int(v)
	}
	shift := bits.Len64(v) - 7
	return shift*64 + int(v>>shift)
}

// latValue is the middle of bucket i, in nanoseconds.
func latValue(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	shift := i/64 - 1
	lo := uint64(i%64+64) << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

func (h *latHist) add(d time.Duration)       { h.counts[latIndex(d)]++ }
func (h *latHist) addAtomic(d time.Duration) { atomic.AddUint64(&h.counts[latIndex(d)], 1) }

func (h *latHist) merge(o *latHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

func (h *latHist) total() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	return n
}

// quantileMs is the q-quantile (0 < q <= 1) in milliseconds.
func (h *latHist) quantileMs(q float64) float64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(n))), 1)
	var cum uint64
	for i, c := range h.counts {
		if cum += c; cum >= rank {
			return latValue(i) / 1e6
		}
	}
	return 0
}

func (h *latHist) report(b *testing.B, prefix string) {
	b.ReportMetric(h.quantileMs(0.50), prefix+"p50-ms")
	b.ReportMetric(h.quantileMs(0.99), prefix+"p99-ms")
}

// benchClients runs b.N calls of op split across n closed-loop clients,
// timing each call, and reports ops/s, p50-ms and p99-ms. op gets the client
// number and a per-client random source. Each client yields the processor
// after each call.
func benchClients(b *testing.B, n int, op func(client int, rng *rand.Rand) error) {
	hists := make([]*latHist, n)
	rngs := make([]*rand.Rand, n)
	for i := range n {
		hists[i] = new(latHist)
		rngs[i] = rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	total := int64(b.N)
	b.ResetTimer()
	u0 := benchUsageNow()
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			h, rng := hists[i], rngs[i]
			for next.Add(1) <= total && !failed.Load() {
				t0 := time.Now()
				err := op(i, rng)
				h.add(time.Since(t0))
				if err != nil {
					if failed.CompareAndSwap(false, true) {
						b.Errorf("client %d: %v", i, err)
					}
					return
				}
				// A remote client's request ends in network I/O and so yields
				// the processor; one that never blocks (a serializable read)
				// would otherwise starve Raft's heartbeats on 2 cores.
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	u0.report(b, b.N)
	b.StopTimer()
	var all latHist
	for _, h := range hists {
		all.merge(h)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	all.report(b, "")
}

// BenchmarkPut: Put of a 256-byte value to a key drawn uniformly from the
// prefilled key space, on a 3-member cluster, by 1 to 256 concurrent
// writers, through the leader or through the two followers (which forward
// to the leader over the member RPC; writers alternate between them).
//
// The last variant repeats 64 writers through the leader while 10,000
// watchers watch another prefix (/bench/w/) on every member: none of them
// receives anything, so any difference is the cost of watchers that merely
// exist (as Kubernetes keeps many, on other resources' prefixes).
func BenchmarkPut(b *testing.B) {
	bc := newBenchCluster(b, 3, true)
	keys := benchKeyList()
	run := func(b *testing.B, via string, writers int) {
		term := benchBegin(b, bc)
		targets := []*raftstore.Store{bc.leaderStore()}
		if via == "follower" {
			targets = bc.followers()
		}
		vals := make([][]byte, writers)
		for i := range vals {
			vals[i] = benchValue(rand.New(rand.NewPCG(uint64(i), 7)))
		}
		ctx := context.Background()
		benchClients(b, writers, func(cl int, rng *rand.Rand) error {
			_, _, err := targets[cl%len(targets)].Put(ctx, keys[rng.IntN(len(keys))], vals[cl], false)
			return err
		})
		benchCheckLeader(b, bc, term)
	}
	for _, via := range []string{"leader", "follower"} {
		for _, writers := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("via=%s/writers=%d", via, writers), func(b *testing.B) {
				run(b, via, writers)
			})
		}
	}
	b.Run("via=leader/idle-watchers=10000/writers=64", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()
		for i := range 10000 {
			w, err := bc.store(i%len(bc.c.Members)).WatchPrefix(ctx, []byte(benchWatchPrefix), 0)
			if err != nil {
				b.Fatalf("watch: %v", err)
			}
			wg.Go(func() {
				for range w.C() { // progress notifications only
				}
			})
		}
		run(b, "leader", 64)
	})
}

// BenchmarkCompareAndSwap is the Kubernetes update path: each client owns a
// disjoint share of the prefilled keys, knows each key's mod revision (as an
// apiserver knows it from its watch cache) and replaces the value with
// CompareAndSwap on that revision, through the leader. Swaps never conflict
// by construction; a conflict would fail the benchmark.
func BenchmarkCompareAndSwap(b *testing.B) {
	bc := newBenchCluster(b, 3, true)
	keys := benchKeyList()
	r, err := bc.leaderStore().Range(context.Background(), raftstore.RangeRequest{Key: []byte(benchKeyPrefix), Prefix: true, Consistency: raftstore.Serializable})
	if err != nil {
		b.Fatal(err)
	}
	if len(r.KVs) != len(keys) {
		b.Fatalf("prefix holds %d keys, want %d", len(r.KVs), len(keys))
	}
	modRev := make([]int64, len(keys)) // keys are zero-padded: sorted order is numeric order
	for i, kv := range r.KVs {
		modRev[i] = kv.ModRev
	}
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("via=leader/clients=%d", clients), func(b *testing.B) {
			term := benchBegin(b, bc)
			s := bc.leaderStore()
			vals := make([][]byte, clients)
			for i := range vals {
				vals[i] = benchValue(rand.New(rand.NewPCG(uint64(i), 9)))
			}
			ctx := context.Background()
			per := len(keys) / clients
			benchClients(b, clients, func(cl int, rng *rand.Rand) error {
				k := rng.IntN(per)*clients + cl // a key of this client's share
				rev, err := s.CompareAndSwap(ctx, keys[k], vals[cl], modRev[k])
				if err != nil {
					return err
				}
				modRev[k] = rev
				return nil
			})
			benchCheckLeader(b, bc, term)
		})
	}
}

// BenchmarkGet reads one key drawn uniformly from the prefilled key space
// with Store.Get, linearizable (read index confirmed by the leader) or
// serializable (local state), on the leader or on one follower.
func BenchmarkGet(b *testing.B) {
	bc := newBenchCluster(b, 3, true)
	keys := benchKeyList()
	for _, mode := range []struct {
		name string
		c    raftstore.Consistency
	}{{"linearizable", raftstore.Linearizable}, {"serializable", raftstore.Serializable}} {
		for _, on := range []string{"leader", "follower"} {
			for _, clients := range []int{1, 64} {
				b.Run(fmt.Sprintf("%s/on=%s/clients=%d", mode.name, on, clients), func(b *testing.B) {
					term := benchBegin(b, bc)
					s := bc.leaderStore()
					if on == "follower" {
						s = bc.followers()[0]
					}
					ctx := context.Background()
					benchClients(b, clients, func(cl int, rng *rand.Rand) error {
						kv, _, err := s.Get(ctx, keys[rng.IntN(len(keys))], mode.c)
						if err == nil && len(kv.Value) != benchValueLen {
							err = fmt.Errorf("read a %d-byte value", len(kv.Value))
						}
						return err
					})
					benchCheckLeader(b, bc, term)
				})
			}
		}
	}
}

// BenchmarkWatch measures watch delivery latency: from just before Put is
// called to the event arriving at each watcher, over every delivery. All
// watchers watch the prefix /bench/w/ on one member; one writer puts a
// 256-byte value to a random key under it, through the leader, and waits
// until every watcher has the event before the next put (so latency is not
// queueing behind earlier puts). Variants: watchers on a follower; and a
// background load of 64 writers putting to other keys (/bench/k/) through the
// leader. Metrics: p50-ms/p99-ms over deliveries, put-p50-ms/put-p99-ms of
// the Put calls themselves, deliveries/s.
func BenchmarkWatch(b *testing.B) {
	bc := newBenchCluster(b, 3, false)
	for _, tc := range []struct {
		on       string
		watchers int
		load     int
	}{
		{"leader", 1, 0},
		{"leader", 1000, 0},
		{"leader", 10000, 0},
		{"follower", 1, 0},
		{"leader", 1, 64},
	} {
		name := fmt.Sprintf("on=%s/watchers=%d", tc.on, tc.watchers)
		if tc.load > 0 {
			name += fmt.Sprintf("/load-writers=%d", tc.load)
		}
		b.Run(name, func(b *testing.B) {
			term := benchBegin(b, bc)
			ws := bc.leaderStore()
			if tc.on == "follower" {
				ws = bc.followers()[0]
			}
			benchWatch(b, bc, ws, tc.watchers, tc.load)
			benchCheckLeader(b, bc, term)
		})
	}
}

func benchWatch(b *testing.B, bc *benchCluster, ws *raftstore.Store, watchers, load int) {
	// benchBegin waited until this member applied every earlier write; the
	// values are tagged too, so no earlier put is taken for one of ours.
	nonce := rand.Uint64()
	ctx, cancel := context.WithCancel(context.Background())
	base := time.Now()
	var deliveries latHist
	var remaining, foreign, ended atomic.Int64
	done := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer func() {
		cancel() // closes every watcher's channel, ending its goroutine
		wg.Wait()
	}()
	for range watchers {
		w, err := ws.WatchPrefix(ctx, []byte(benchWatchPrefix), 0)
		if err != nil {
			b.Fatalf("watch: %v", err)
		}
		wg.Go(func() {
			for r := range w.C() {
				now := time.Since(base)
				for _, ev := range r.Events {
					if len(ev.KV.Value) != benchValueLen || binary.LittleEndian.Uint64(ev.KV.Value[8:]) != nonce {
						if foreign.Add(1) == 1 {
							b.Errorf("watcher got a foreign event: %q at revision %d", ev.KV.Key, r.Revision)
						}
						continue
					}
					sent := time.Duration(binary.LittleEndian.Uint64(ev.KV.Value))
					deliveries.addAtomic(now - sent)
					if remaining.Add(-1) == 0 {
						done <- struct{}{}
					}
				}
			}
			if err := w.Err(); !errors.Is(err, context.Canceled) && ended.Add(1) == 1 {
				b.Errorf("watch ended: %v", err)
			}
		})
	}

	var loadOps, loadErrs atomic.Int64
	stopLoad := make(chan struct{})
	var loadWG sync.WaitGroup
	if load > 0 {
		keys := benchKeyList()
		for i := range load {
			loadWG.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(i), 11))
				val := benchValue(rng)
				for {
					select {
					case <-stopLoad:
						return
					default:
					}
					if _, _, err := bc.leaderStore().Put(ctx, keys[rng.IntN(len(keys))], val, false); err != nil {
						if loadErrs.Add(1) == 1 && ctx.Err() == nil {
							b.Errorf("background put: %v", err)
						}
						return
					}
					loadOps.Add(1)
				}
			})
		}
		time.Sleep(500 * time.Millisecond) // let the load reach its steady state
	}
	defer func() {
		close(stopLoad)
		loadWG.Wait()
	}()

	s := bc.leaderStore()
	rng := rand.New(rand.NewPCG(3, 4))
	var puts latHist
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	b.ResetTimer()
	loadStart := loadOps.Load()
	u0 := benchUsageNow()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		remaining.Store(int64(watchers))
		key := fmt.Appendf(nil, benchWatchPrefix+"%08d", rng.IntN(benchWatchKeys))
		val := make([]byte, benchValueLen)
		binary.LittleEndian.PutUint64(val[8:], nonce)
		binary.LittleEndian.PutUint64(val, uint64(time.Since(base)))
		t0 := time.Now()
		if _, _, err := s.Put(ctx, key, val, false); err != nil {
			b.Fatalf("put: %v", err)
		}
		puts.add(time.Since(t0))
		timer.Reset(30 * time.Second)
		select {
		case <-done:
		case <-timer.C:
			b.Fatalf("put %d: %d of %d watchers still waiting after 30s", i, remaining.Load(), watchers)
		}
	}
	elapsed := time.Since(start)
	u0.report(b, b.N)
	b.StopTimer()
	deliveries.report(b, "")
	puts.report(b, "put-")
	b.ReportMetric(float64(b.N*watchers)/elapsed.Seconds(), "deliveries/s")
	if load > 0 {
		b.ReportMetric(float64(loadOps.Load()-loadStart)/elapsed.Seconds(), "load-ops/s")
	}
}

// benchMemResult is one memory measurement, kept so that the benchmark
// framework's calls with b.N > 1 report it instead of loading again.
var benchMemResult map[string]float64

// BenchmarkMemory100k loads 100k keys with 256-byte values into a 1-member
// store (default settings, TCP, fsync on) with individual Puts from 64
// writers, and reports the Go heap (live bytes after runtime.GC) and process
// memory grown by the load. The baseline is taken on the same store, open,
// leader and empty. It measures once per -count; ns/op is not reported.
//
//	heap-B/key   (heap after - heap before) / keys
//	heap-MB      heap after load
//	rss-MB       process VmRSS after load (whole test process)
//	rss-anon-MB  anonymous part of it (RssAnon); the rest is mostly the
//	             memory-mapped raft.db
//	rss-B/key    (VmRSS after - VmRSS before) / keys
//	disk-MB      size of the data directory (Raft log and snapshots)
//	load-ops/s   Put throughput of the load (1 member, 64 writers), with
//	             load-cpu-us/op and load-other-cpu-% as in the other benchmarks
//
// Run it in its own go test invocation for a meaningful rss-MB: the process
// keeps memory earlier benchmarks grew.
func BenchmarkMemory100k(b *testing.B) {
	if b.N > 1 && benchMemResult != nil {
		for unit, v := range benchMemResult {
			b.ReportMetric(v, unit)
		}
		b.ReportMetric(0, "ns/op")
		return
	}
	bc := newBenchCluster(b, 1, false)
	s := bc.leaderStore()
	keys := benchKeyList()

	heap0, rss0, _ := benchMemNow(b)

	const writers = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	u0 := benchUsageNow()
	start := time.Now()
	for i := range writers {
		wg.Go(func() {
			val := benchValue(rand.New(rand.NewPCG(uint64(i), 5)))
			for {
				k := int(next.Add(1)) - 1
				if k >= len(keys) {
					return
				}
				if _, _, err := s.Put(context.Background(), keys[k], val, false); err != nil {
					b.Errorf("load: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	loadRate := float64(len(keys)) / time.Since(start).Seconds()
	loadUsage := u0.metrics(len(keys))
	if b.Failed() {
		return
	}
	if n := s.Revision(); n != int64(len(keys)) {
		b.Fatalf("revision %d after loading %d keys", n, len(keys))
	}

	heap1, rss1, anon1 := benchMemNow(b)
	n := float64(len(keys))
	benchMemResult = map[string]float64{
		"heap-B/key":  float64(int64(heap1)-int64(heap0)) / n,
		"heap-MB":     float64(heap1) / 1e6,
		"rss-MB":      float64(rss1) / 1e6,
		"rss-anon-MB": float64(anon1) / 1e6,
		"rss-B/key":   float64(int64(rss1)-int64(rss0)) / n,
		"disk-MB":     float64(benchDirSize(b, bc.c.Members[0].Dir)) / 1e6,
		"load-ops/s":  loadRate,
	}
	for unit, v := range loadUsage {
		benchMemResult["load-"+unit] = v
	}
	for unit, v := range benchMemResult {
		b.ReportMetric(v, unit)
	}
	b.ReportMetric(0, "ns/op")
}

// benchMemNow collects garbage, returns freed memory to the OS and reports
// the live heap, VmRSS and RssAnon, in bytes.
func benchMemNow(b *testing.B) (heap, rss, anon uint64) {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Logf("no /proc/self/status: %v", err)
		return ms.HeapAlloc, 0, 0
	}
	field := func(name string) uint64 {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, name+":"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				return kb << 10
			}
		}
		return 0
	}
	return ms.HeapAlloc, field("VmRSS"), field("RssAnon")
}

func benchDirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		b.Logf("size of %s: %v", dir, err)
	}
	return n
}
