// Command storebench is drover's store benchmark beside etcd: one load
// generator, built on go.etcd.io/etcd/client/v3, run against a 3-master
// drover cluster and a 3-member etcd cluster started here on loopback, fsync
// on both, in alternating order for several repetitions, each on fresh data
// directories. It prints every row's median with min and max per store and
// the drover/etcd ratio. See docs/benchmarks-store.md.
//
//	go build -o bin/drover ./cmd/drover
//	go run ./bench/storebench -drover bin/drover            (full, ~10-15 min)
//	go run ./bench/storebench -drover bin/drover -quick     (smoke, ~2-3 min)
//	go run ./bench/storebench -drover bin/drover -fsync-check
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type options struct {
	droverBin, etcdBin    string
	droverHosts           []string
	etcdHosts             []string
	portOffset            int
	droverElection        time.Duration
	droverExtra           []string
	etcdTLS               bool
	etcdHeartbeatMS       int
	etcdElectionMS        int
	etcdSnapshotCount     int
	etcdExtra             []string
	reps                  int
	warm, dur             time.Duration
	keys, valueSize       int
	putConc               []int
	getConc               []int
	watchers, watchConns  int
	watchRate             float64
	failoverTrials        int
	scenarios             map[string]bool
	only                  string
	workdir               string
	keep                  bool
	perfDir               string
	out                   string
	fsyncCheck            bool
	fsyncDur              time.Duration
	quick                 bool
	startedAt             time.Time
	droverVersion, etcdVe string
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseInts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &n); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func main() {
	o := &options{startedAt: time.Now()}
	var droverHosts, etcdHosts, putConc, getConc, scen string
	var droverExtra, etcdExtra stringList
	flag.StringVar(&o.droverBin, "drover", "bin/drover", "drover binary (build it from this tree: go build -o bin/drover ./cmd/drover)")
	flag.StringVar(&o.etcdBin, "etcd", "etcd", "etcd binary (Debian etcd-server 3.4)")
	flag.StringVar(&droverHosts, "drover-hosts", "127.0.0.1,127.0.0.2,127.0.0.3", "loopback addresses of the three drover masters")
	flag.StringVar(&etcdHosts, "etcd-hosts", "127.0.0.11,127.0.0.12,127.0.0.13", "loopback addresses of the three etcd members")
	flag.IntVar(&o.portOffset, "port-offset", 0, "added to every port (drover 7379/7380/7946, etcd 2379/2380)")
	flag.DurationVar(&o.droverElection, "drover-election-timeout", 500*time.Millisecond, "drover --election-timeout (its default: hashicorp/raft checks for a dead leader every 1-2x this, comparable to etcd's 1s)")
	flag.Var(&droverExtra, "drover-arg", "extra argument for drover server (repeatable)")
	flag.BoolVar(&o.etcdTLS, "etcd-tls", true, "mutual TLS for etcd's client and peer traffic, as drover always has")
	flag.IntVar(&o.etcdHeartbeatMS, "etcd-heartbeat-interval", 100, "etcd --heartbeat-interval (ms)")
	flag.IntVar(&o.etcdElectionMS, "etcd-election-timeout", 1000, "etcd --election-timeout (ms)")
	flag.IntVar(&o.etcdSnapshotCount, "etcd-snapshot-count", 100000, "etcd --snapshot-count (3.4's default)")
	flag.Var(&etcdExtra, "etcd-arg", "extra argument for etcd (repeatable)")
	flag.IntVar(&o.reps, "reps", 3, "repetitions; the store order alternates (drover etcd, etcd drover, ...)")
	flag.DurationVar(&o.warm, "warmup", time.Second, "warm-up before each measured window")
	flag.DurationVar(&o.dur, "duration", 5*time.Second, "measured window per scenario")
	flag.IntVar(&o.keys, "keys", 100000, "keys prefilled as /bench/k/%08d")
	flag.IntVar(&o.valueSize, "value-size", 256, "value size in bytes")
	flag.StringVar(&putConc, "put-clients", "1,16,64,256", "concurrent clients (requests in flight) for the put rows")
	flag.StringVar(&getConc, "get-clients", "1,64", "concurrent clients for the get rows")
	flag.IntVar(&o.watchers, "watchers", 1000, "watchers on one prefix for the watch row")
	flag.IntVar(&o.watchConns, "watch-conns", 10, "client connections the watchers are spread over")
	flag.Float64Var(&o.watchRate, "watch-rate", 20, "puts per second under the watched prefix")
	flag.IntVar(&o.failoverTrials, "failover-trials", 2, "leader kills per store per repetition (the median is over all of them)")
	flag.StringVar(&scen, "scenarios", "rss,put,putleader,get,ryw,watch,watchidle,failover", "scenarios to run")
	flag.StringVar(&o.only, "only", "", "run one store only: drover or etcd (no ratio)")
	flag.StringVar(&o.workdir, "workdir", "", "where data dirs go (default: a new temp dir, removed afterwards)")
	flag.BoolVar(&o.keep, "keep", false, "keep data dirs and logs")
	flag.StringVar(&o.perfDir, "perf", "", "record `perf record -g` of each store's leader during put at 64 clients (first repetition) into this dir")
	flag.StringVar(&o.out, "json", "", "also write every repetition's raw values to this JSON file")
	flag.BoolVar(&o.fsyncCheck, "fsync-check", false, "instead of the benchmark: count fsync/fdatasync per acknowledged put with strace on one leader and one follower of each store")
	flag.DurationVar(&o.fsyncDur, "fsync-duration", 3*time.Second, "put load per strace window in -fsync-check")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 2 repetitions, 1 s windows, 250 ms warm-up, 1 failover trial each")
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["reps"] {
			o.reps = 2
		}
		if !set["duration"] {
			o.dur = time.Second
		}
		if !set["warmup"] {
			o.warm = 250 * time.Millisecond
		}
		if !set["failover-trials"] {
			o.failoverTrials = 1
		}
	}
	o.droverHosts = strings.Split(droverHosts, ",")
	o.etcdHosts = strings.Split(etcdHosts, ",")
	o.putConc, o.getConc = parseInts(putConc), parseInts(getConc)
	o.droverExtra, o.etcdExtra = droverExtra, etcdExtra
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(scen, ",") {
		o.scenarios[strings.TrimSpace(s)] = true
	}
	if len(o.droverHosts) != 3 || len(o.etcdHosts) != 3 {
		fatalf("need three hosts per store")
	}
	if p, err := exec.LookPath(o.droverBin); err == nil {
		o.droverBin, _ = filepath.Abs(p)
	} else {
		fatalf("drover binary %q: %v (build it: go build -o bin/drover ./cmd/drover)", o.droverBin, err)
	}
	if p, err := exec.LookPath(o.etcdBin); err == nil {
		o.etcdBin = p
	} else {
		fatalf("etcd binary %q: %v (apt-get install etcd-server)", o.etcdBin, err)
	}
	o.droverVersion = firstLine(exec.Command(o.droverBin, "version").CombinedOutput())
	o.etcdVe = firstLine(exec.Command(o.etcdBin, "--version").CombinedOutput())

	if o.workdir == "" {
		d, err := os.MkdirTemp("", "storebench-")
		if err != nil {
			fatalf("%v", err)
		}
		o.workdir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		killChildren()
	}()

	var err error
	if o.fsyncCheck {
		err = runFsyncCheck(ctx, o)
	} else {
		err = runBench(ctx, o)
	}
	killChildren()
	if err == nil && !o.keep {
		if keptFailures {
			logf("logs of clusters that did not form are kept in %s", o.workdir)
		} else {
			os.RemoveAll(o.workdir)
		}
	}
	if err != nil {
		fatalf("%v (data dirs and logs kept in %s)", err, o.workdir)
	}
}

func firstLine(b []byte, err error) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if err != nil && s == "" {
		return "?"
	}
	return s
}

func fatalf(f string, args ...any) {
	killChildren()
	fmt.Fprintf(os.Stderr, "storebench: "+f+"\n", args...)
	os.Exit(1)
}

func logf(f string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// keptFailures is set when a cluster that did not form was kept for its logs.
var keptFailures bool

var (
	childMu  sync.Mutex
	children = map[int]bool{}
)

func registerChild(pid int)   { childMu.Lock(); children[pid] = true; childMu.Unlock() }
func unregisterChild(pid int) { childMu.Lock(); delete(children, pid); childMu.Unlock() }

// killChildren kills the server processes this run started, by PID.
func killChildren() {
	childMu.Lock()
	defer childMu.Unlock()
	for pid := range children {
		syscall.Kill(pid, syscall.SIGKILL)
		delete(children, pid)
	}
}

// results holds one store's values: row -> one value per repetition (or per
// failover trial).
type results map[string][]float64

// startStore starts a fresh cluster in dir. A cluster that does not form
// is kept aside (dir.failed-N) and started again from scratch, up to three
// times; each failure is returned as a note.
func startStore(ctx context.Context, o *options, kind, dir string) (*cluster, []string, error) {
	var notes []string
	for attempt := 1; ; attempt++ {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, notes, err
		}
		var c *cluster
		var err error
		if kind == "drover" {
			c, err = startDrover(ctx, o, dir)
		} else {
			c, err = startEtcd(ctx, o, dir)
		}
		if err == nil || attempt == 3 || ctx.Err() != nil {
			return c, notes, err
		}
		failed := fmt.Sprintf("%s.failed-%d", dir, attempt)
		os.Rename(dir, failed)
		keptFailures = true
		notes = append(notes, fmt.Sprintf("%s cluster did not form (attempt %d): %v; logs kept in %s; started again with fresh data dirs", kind, attempt, err, failed))
		logf("%s", notes[len(notes)-1])
	}
}

func runBench(ctx context.Context, o *options) error {
	stores := []string{"drover", "etcd"}
	if o.only != "" {
		stores = []string{o.only}
	}
	all := map[string]results{}
	for _, s := range stores {
		all[s] = results{}
	}
	value := strings.Repeat("x", o.valueSize)
	var notes []string
	for rep := 0; rep < o.reps; rep++ {
		order := slices.Clone(stores)
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, kind := range order {
			logf("rep %d/%d: %s", rep+1, o.reps, kind)
			dir := filepath.Join(o.workdir, fmt.Sprintf("rep%d", rep+1), kind)
			n, err := runStore(ctx, o, kind, dir, rep, value, all[kind])
			notes = append(notes, n...)
			if err != nil {
				return fmt.Errorf("rep %d, %s: %w", rep+1, kind, err)
			}
			if !o.keep {
				os.RemoveAll(dir)
			}
		}
	}
	elapsed := time.Since(o.startedAt)
	printReport(os.Stdout, o, stores, all, notes, elapsed)
	if o.out != "" {
		b, _ := json.MarshalIndent(map[string]any{"date": o.startedAt.Format(time.RFC3339), "elapsed_s": elapsed.Seconds(), "results": all}, "", "  ")
		if err := os.WriteFile(o.out, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runStore runs every scenario against a fresh cluster of one store.
func runStore(ctx context.Context, o *options, kind, dir string, rep int, value string, res results) (notes []string, err error) {
	c, startNotes, err := startStore(ctx, o, kind, dir)
	for _, n := range startNotes {
		notes = append(notes, fmt.Sprintf("rep %d %s: %s", rep+1, kind, n))
	}
	if err != nil {
		return notes, err
	}
	defer c.stop()
	note := func(f string, args ...any) {
		s := fmt.Sprintf("rep %d %s: ", rep+1, kind) + fmt.Sprintf(f, args...)
		logf("%s", s)
		notes = append(notes, s)
	}
	admin, err := c.client()
	if err != nil {
		return nil, err
	}
	defer admin.Close()

	t := time.Now()
	if err := prefill(ctx, admin, o.keys, value, 100); err != nil {
		return notes, err
	}
	logf("  prefill %d keys: %.1fs", o.keys, time.Since(t).Seconds())
	if err := compact(ctx, admin); err != nil {
		return notes, fmt.Errorf("compact: %w", err)
	}
	if o.scenarios["rss"] {
		time.Sleep(2 * time.Second)
		var rss, disk float64
		for _, m := range c.members {
			rss += float64(procRSS(m.pid())) / 3 / (1 << 20)
			disk += float64(dirSize(m.dir)) / 3 / (1 << 20)
		}
		res["rss"] = append(res["rss"], rss)
		res["disk"] = append(res["disk"], disk)
		logf("  after %d keys: RSS %.1f MB, data dir %.1f MB per member", o.keys, rss, disk)
	}

	keyAt := func(rnd *rand.Rand) string { return keyOf(rnd.IntN(o.keys)) }
	putOp := func(ctx context.Context, cli *clientv3.Client, rnd *rand.Rand) error {
		_, err := cli.Put(ctx, keyAt(rnd), value)
		return err
	}
	record := func(id string, r loadResult) {
		res[id+"/rate"] = append(res[id+"/rate"], r.rate())
		res[id+"/p50"] = append(res[id+"/p50"], float64(pct(r.lat, 0.50).Microseconds())/1000)
		res[id+"/p99"] = append(res[id+"/p99"], float64(pct(r.lat, 0.99).Microseconds())/1000)
		res[id+"/cpu"] = append(res[id+"/cpu"], r.cpuPerOp())
		res[id+"/foreign"] = append(res[id+"/foreign"], r.foreign)
		logf("  %-16s %9.0f/s  p50 %7.2f ms  p99 %7.2f ms  server CPU %6.0f µs/op  errors %d  other load %.2f cores",
			id, r.rate(), float64(pct(r.lat, 0.50).Microseconds())/1000, float64(pct(r.lat, 0.99).Microseconds())/1000, r.cpuPerOp(), r.errs, r.foreign)
		if r.foreign > 0.2 {
			logf("    busiest other processes (cores): %s", r.others)
		}
		if r.errs > 0 {
			note("%s: %d errors, first: %v", id, r.errs, r.firstErr)
		}
	}
	run := func(id string, conc int, fn op, endpoints ...string) error {
		clis, err := c.clients(min(conc, 8), endpoints...)
		if err != nil {
			return err
		}
		defer closeAll(clis)
		var perf *exec.Cmd
		if o.perfDir != "" && rep < 2 && id == "put/c64" {
			perf = startPerf(ctx, o, c, kind)
		}
		r := closedLoop(ctx, clis, c.pids(), conc, o.warm, o.dur, fn)
		if perf != nil {
			perf.Wait()
		}
		record(id, r)
		return compact(ctx, admin)
	}

	if o.scenarios["put"] {
		for _, n := range o.putConc {
			if err := run(fmt.Sprintf("put/c%d", n), n, putOp); err != nil {
				return notes, err
			}
		}
	}
	if o.scenarios["putleader"] {
		li, err := c.leader(ctx)
		if err != nil {
			return notes, err
		}
		if err := run("putleader/c64", 64, putOp, c.members[li].endpoint); err != nil {
			return notes, err
		}
	}
	if o.scenarios["get"] {
		for _, ser := range []bool{false, true} {
			for _, n := range o.getConc {
				id := fmt.Sprintf("getlin/c%d", n)
				var opts []clientv3.OpOption
				if ser {
					id = fmt.Sprintf("getser/c%d", n)
					opts = append(opts, clientv3.WithSerializable())
				}
				fn := func(ctx context.Context, cli *clientv3.Client, rnd *rand.Rand) error {
					r, err := cli.Get(ctx, keyAt(rnd), opts...)
					if err == nil && len(r.Kvs) != 1 {
						return fmt.Errorf("get: %d keys", len(r.Kvs))
					}
					return err
				}
				if err := run(id, n, fn); err != nil {
					return notes, err
				}
			}
		}
	}
	if o.scenarios["watch"] {
		wr, err := watchFanout(ctx, c, o.watchers, o.watchConns, o.watchRate, o.warm, o.dur, o.valueSize)
		if err != nil {
			return notes, fmt.Errorf("watch: %w", err)
		}
		frac := 0.0
		if wr.expected > 0 {
			frac = 100 * float64(wr.delivered) / float64(wr.expected)
		}
		res["watch/p50"] = append(res["watch/p50"], float64(pct(wr.lat, 0.50).Microseconds())/1000)
		res["watch/p99"] = append(res["watch/p99"], float64(pct(wr.lat, 0.99).Microseconds())/1000)
		res["watch/delivered"] = append(res["watch/delivered"], frac)
		logf("  watch x%d: %d puts, %d/%d events (%.2f%%), p50 %.2f ms p99 %.2f ms", o.watchers, wr.puts, wr.delivered, wr.expected, frac,
			float64(pct(wr.lat, 0.50).Microseconds())/1000, float64(pct(wr.lat, 0.99).Microseconds())/1000)
		if wr.delivered != wr.expected {
			note("watch: %d of %d events delivered", wr.delivered, wr.expected)
		}
		compact(ctx, admin)
	}
	if n := compactFutureRev.Swap(0); n > 0 {
		note("Compact at a revision just read linearizably was refused as a future revision %d times (retried until accepted)", n)
	}
	if o.scenarios["watchidle"] {
		li, err := c.leader(ctx)
		if err != nil {
			return notes, err
		}
		for _, role := range []string{"leader", "follower"} {
			ep := c.members[li].endpoint
			if role == "follower" {
				ep = c.members[(li+1)%3].endpoint
			}
			wr, err := watchFanout(ctx, c, 1, 1, o.watchRate, o.warm, o.dur, o.valueSize, ep)
			if err != nil {
				return notes, fmt.Errorf("watch: %w", err)
			}
			p50, p99 := float64(pct(wr.lat, 0.50).Microseconds())/1000, float64(pct(wr.lat, 0.99).Microseconds())/1000
			res["watchidle-"+role+"/p50"] = append(res["watchidle-"+role+"/p50"], p50)
			res["watchidle-"+role+"/p99"] = append(res["watchidle-"+role+"/p99"], p99)
			logf("  watch x1 on the %s: %d/%d events, p50 %.2f ms p99 %.2f ms", role, wr.delivered, wr.expected, p50, p99)
		}
	}
	if o.scenarios["ryw"] {
		// Read your write on a follower: put through the leader, then a
		// linearizable get of that key through a follower.
		li, err := c.leader(ctx)
		if err != nil {
			return notes, err
		}
		lc, err := c.client(c.members[li].endpoint)
		if err != nil {
			return notes, err
		}
		fn := func(ctx context.Context, fc *clientv3.Client, rnd *rand.Rand) error {
			k := keyAt(rnd)
			p, err := lc.Put(ctx, k, value)
			if err != nil {
				return err
			}
			g, err := fc.Get(ctx, k)
			if err == nil && (len(g.Kvs) != 1 || g.Kvs[0].ModRevision < p.Header.Revision) {
				return fmt.Errorf("stale read of %s: want mod revision >= %d", k, p.Header.Revision)
			}
			return err
		}
		err = run("ryw/c1", 1, fn, c.members[(li+1)%3].endpoint)
		lc.Close()
		if err != nil {
			return notes, err
		}
	}
	if o.scenarios["failover"] {
		for i := 0; i < o.failoverTrials; i++ {
			took, victim, err := failoverTrial(ctx, c, 10*time.Millisecond)
			if err != nil {
				return notes, fmt.Errorf("failover trial %d: %w", i+1, err)
			}
			res["failover"] = append(res["failover"], took.Seconds())
			logf("  failover: killed %s, first write after %.3f s", victim, took.Seconds())
		}
	}
	return notes, nil
}

// startPerf records the leader's stacks for the warm-up plus measured window.
func startPerf(ctx context.Context, o *options, c *cluster, kind string) *exec.Cmd {
	li, err := c.leader(ctx)
	if err != nil {
		logf("perf: %v", err)
		return nil
	}
	os.MkdirAll(o.perfDir, 0o755)
	out := filepath.Join(o.perfDir, kind+"-leader-put64.perf.data")
	secs := fmt.Sprintf("%.1f", (o.warm + o.dur).Seconds())
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", fmt.Sprint(c.members[li].pid()), "-o", out, "--", "sleep", secs)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		logf("perf: %v", err)
		return nil
	}
	logf("  perf recording %s (pid %d) into %s", c.members[li].name, c.members[li].pid(), out)
	return cmd
}
