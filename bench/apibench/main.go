// Command apibench measures drover's Kubernetes API: a real 3-master
// cluster of `drover server` processes on 127.0.0.1-3 (gossip encryption,
// TLS, --bootstrap-expect 3 --join), driven over HTTPS with the admin
// bearer token and the cluster CA from in-process HTTP clients. Rows:
// create, get, update (PUT with resourceVersion), list of a namespace of
// 1,000 and 10,000 pods (JSON, and Table in pages of 500 as kubectl get
// asks), and watch fan-out to 1,000 watchers; each against the Kubernetes
// API call latency SLO (p99 <= 1 s for single objects, <= 5 s for a
// namespace list). See docs/benchmarks.md.
//
//	go run ./bench/apibench                 # builds drover, about 3 minutes
//	go run ./bench/apibench -quick          # smoke run, about 1 minute
//	make bench-api BENCH_API_FLAGS="-json /tmp/bench-api.json"
//	go run ./bench/apibench -merge run1.json run2.json run3.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

type bench struct {
	cl        *cluster
	api       *api
	pool      pool
	rows      []*Row
	warmup    time.Duration
	duration  time.Duration
	maxExtra  time.Duration
	opTimeout time.Duration
	updateSet int

	watchers   int
	watchPods  int
	watchRates []float64
	watchDur   time.Duration
	watchDrain time.Duration

	fillSink func(*corev1.Pod)
	leaderID string

	profile    bool
	profDir    string
	profNames  []string
	profFiles  []string
	mu         sync.Mutex
	errSamples []string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run() error {
	var (
		droverBin   = flag.String("drover", "", "drover binary (default: build ./cmd/drover into the work dir)")
		workDir     = flag.String("dir", "", "work dir for data dirs and logs (default: a temp dir, removed unless -keep)")
		keep        = flag.Bool("keep", false, "keep the work dir (data dirs, master logs)")
		jsonOut     = flag.String("json", "", "also write the results as JSON to this file")
		basePort    = flag.Int("base-port", 0, "first of 4 ports per master (member, etcd API, gossip, Kubernetes API); 0 picks free ones")
		clientsFlag = flag.String("clients", "1,16,64", "concurrent workers for create/get/update rows")
		listClients = flag.String("list-clients", "1,16", "concurrent workers for list rows")
		duration    = flag.Duration("duration", 5*time.Second, "measured window per row (list rows run longer if needed for their minimum number of lists)")
		warmup      = flag.Duration("warmup", time.Second, "unmeasured warm-up per row")
		small       = flag.Int("pods-small", 1000, "pods in the smaller list namespace")
		large       = flag.Int("pods-large", 10000, "pods in the larger list namespace")
		updateSet   = flag.Int("update-set", 1000, "updates pick pods among the first N created")
		watchers    = flag.Int("watchers", 1000, "watch streams for the fan-out row")
		watchPods   = flag.Int("watch-pods", 100, "pods the fan-out writer updates (round robin)")
		watchRate   = flag.String("watch-rate", "2,10", "updates per second during the fan-out; a list runs one phase per rate over the same streams")
		watchDur    = flag.Duration("watch-duration", 20*time.Second, "how long the fan-out writer writes")
		watchDrain  = flag.Duration("watch-drain", 30*time.Second, "how long to wait after the last write for every watcher to catch up")
		opTimeout   = flag.Duration("op-timeout", 60*time.Second, "per-request timeout (a timeout counts as an error)")
		quick       = flag.Bool("quick", false, "smoke run: 2 s rows, 1,000 and 3,000 pods, 200 watchers for 5 s (flags given explicitly win)")
		schedName   = flag.String("scheduler-name", schedulerName, "spec.schedulerName of the benchmark's pods; the default leaves them to no scheduler, so the rows measure the API alone; \"default-scheduler\" lets drover's scheduler (on the Raft leader) act on every pod (with no nodes: an Unschedulable status write and an Event per pod)")
		merge       = flag.Bool("merge", false, "instead of running, print median [min–max] over the -json reports named as arguments")
		profile     = flag.Bool("profile", false, "run the masters under a wrapper that writes a CPU profile of each master for each row (bench/apibench/profdrover; same server code, different main); profiles go to the work dir, which is kept")
	)
	flag.Parse()
	if *merge {
		return mergeReports(os.Stdout, flag.Args())
	}
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"duration": "2s", "pods-small": "1000", "pods-large": "3000", "watchers": "200", "watch-duration": "5s"} {
			if !set[name] {
				flag.Set(name, v)
			}
		}
	}
	schedulerName = *schedName
	clients, err := parseInts(*clientsFlag)
	if err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	lclients, err := parseInts(*listClients)
	if err != nil {
		return fmt.Errorf("-list-clients: %w", err)
	}
	var rates []float64
	for _, f := range strings.Split(*watchRate, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("-watch-rate: bad rate %q", f)
		}
		rates = append(rates, r)
	}
	started := time.Now()
	rep := &Report{Command: commandLine(), Started: started.UTC().Format("2006-01-02 15:04"), Machine: machine(), Go: runtime.Version(), FillRates: map[string]float64{}}
	rep.Commit, rep.Tree = gitState()

	dir := *workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "apibench-"); err != nil {
			return err
		}
		if !*keep && !*profile {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := *droverBin
	if *profile {
		fmt.Fprintln(os.Stderr, "apibench: building the profiling wrapper (bench/apibench/profdrover)...")
		if bin, err = buildBinary("./bench/apibench/profdrover", dir, "profdrover"); err != nil {
			return err
		}
	} else if bin == "" {
		fmt.Fprintln(os.Stderr, "apibench: building drover...")
		if bin, err = buildBinary("./cmd/drover", dir, "drover"); err != nil {
			return err
		}
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	rep.Drover = bin

	fmt.Fprintf(os.Stderr, "apibench: starting 3 masters in %s...\n", dir)
	cl, err := startCluster(bin, dir, *basePort, nil)
	if err != nil {
		return err
	}
	defer cl.stop()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigc
		fmt.Fprintln(os.Stderr, "apibench: interrupted; stopping the masters")
		cl.stop()
		os.Exit(130)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	tReady := time.Now()
	err = cl.waitReady(ctx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "apibench: cluster ready in %.1fs\n", time.Since(tReady).Seconds())

	b := &bench{cl: cl, api: newAPI(cl), warmup: *warmup, duration: *duration, maxExtra: 60 * time.Second, opTimeout: *opTimeout,
		updateSet: *updateSet, watchers: *watchers, watchPods: *watchPods, watchRates: rates, watchDur: *watchDur, watchDrain: *watchDrain,
		profile: *profile, profDir: dir}
	defer b.api.close()
	if err := b.api.createNamespace(context.Background(), nsCRUD); err != nil {
		return err
	}
	alpn := tlsProto(cl)
	leaderAtStart := cl.leader()
	b.leaderID, _, _ = strings.Cut(leaderAtStart, " ")
	// Idle baseline: what the three masters burn with no client at all.
	i0 := b.snap()
	time.Sleep(3 * time.Second)
	i1 := b.snap()
	idle := &Row{}
	cpuBetween(idle, i0, i1, 0)
	rep.IdleCores = idle.ServerCores
	var idleBy []string
	for i, m := range cl.masters {
		role := ""
		if m.id == b.leaderID {
			role = " (leader)"
		}
		idleBy = append(idleBy, fmt.Sprintf("%s%s %.3f", m.id, role, (i1.masters[i].CPU-i0.masters[i].CPU).Seconds()/i1.at.Sub(i0.at).Seconds()))
	}
	rep.IdleByMaster = strings.Join(idleBy, ", ")
	rep.Setup = append(rep.Setup,
		fmt.Sprintf("cluster: 3 `drover server` processes on 127.0.0.1, 127.0.0.2, 127.0.0.3 (member port %s), --bootstrap-expect 3 --join, gossip encryption (--encrypt), TLS from the cluster CA, default settings (--election-timeout 500ms), fsync on", strings.Split(cl.masters[0].args[6], ":")[1]),
		fmt.Sprintf("clients: in this process, HTTPS with the admin bearer token and the cluster CA; one keep-alive transport per master, operation k of worker i on master (i+k) mod 3, so every worker and every row spreads evenly over the masters; one connection per worker and master (server ALPN: %s)", alpn),
		fmt.Sprintf("rows: %s warm-up + %s measured, closed loop; create/get/update at %s workers, lists at %s workers (list rows run until at least max(10, 3 x workers) lists completed in the window)", *warmup, *duration, *clientsFlag, *listClients),
		"latency is client-side (request sent -> response body read, TLS and the client included), stricter than the SLI (server receipt -> last byte sent); CPU is utime+stime of the 3 masters (/proc/<pid>/stat) over the measured window",
		fmt.Sprintf("pod: one container, labels, env, ports, requests/limits, readiness probe (%d B JSON as sent), schedulerName %q", podSize(), schedulerName),
	)
	if len(b.errSamples) > 0 {
		return fmt.Errorf("setup failed")
	}

	memSnap := func(when string, pods int) {
		for _, m := range cl.masters {
			ps := readProc(m.pid())
			rep.Masters = append(rep.Masters, MasterMem{When: when, Pods: pods, ID: m.id, RSSMB: float64(ps.RSS) / (1 << 20), AnonMB: float64(ps.Anon) / (1 << 20), FileMB: float64(ps.File) / (1 << 20), PeakRSSMB: float64(ps.HWM) / (1 << 20),
				CPUSeconds: ps.CPU.Seconds(), DataDirMB: float64(dirSize(m.dir)) / (1 << 20)})
		}
	}
	memSnap("started, empty", 0)
	// Lists first, so that the memory snapshot after them holds just the
	// two list namespaces' pods.
	for _, size := range []int{*small, *large} {
		ns := "bench-" + thousands(size)
		rate, err := b.fill(ns, size)
		if err != nil {
			return err
		}
		rep.FillRates[ns] = rate
		for _, c := range lclients {
			b.rows = append(b.rows, b.listRow(ns, size, c))
		}
		for _, c := range lclients {
			b.rows = append(b.rows, b.tableRow(ns, size, c))
		}
	}
	memSnap(fmt.Sprintf("after filling %s and %s pods and the list rows", thousands(*small), thousands(*large)), *small+*large)
	for _, c := range clients {
		b.rows = append(b.rows, b.createRow(c))
	}
	if len(b.pool.pods) == 0 {
		return fmt.Errorf("no pod was created; see %s", cl.masters[0].logPath)
	}
	for _, c := range clients {
		b.rows = append(b.rows, b.getRow(c))
	}
	for _, c := range clients {
		b.rows = append(b.rows, b.updateRow(c))
	}
	crudPods := len(b.pool.pods)
	if *watchers > 0 {
		rows, wr, err := b.watchFanout()
		if err != nil {
			return err
		}
		b.rows = append(b.rows, rows...)
		rep.Watch = wr
		rep.Setup = append(rep.Setup, fmt.Sprintf("watch: %d streams `GET /api/v1/namespaces/%s/pods?watch=true&resourceVersion=N` (one connection each, spread over the masters), one writer PUTs %d pods round robin at %s updates/s (one phase each, same streams) for %s each, through the masters in turn; latency from the PUT's response to each watcher reading the event",
			*watchers, nsWatch, *watchPods, *watchRate, *watchDur))
	}
	end := "end of the run"
	if *watchers > 0 {
		end += ", watch streams just closed"
	}
	memSnap(end, *small+*large+crudPods+min(*watchers, 1)*(*watchPods))
	for _, m := range cl.masters {
		if !m.running() {
			rep.ErrorSamples = append(rep.ErrorSamples, fmt.Sprintf("%s exited during the run (log %s)", m.id, m.logPath))
		}
	}
	rep.Setup = append(rep.Setup, "HTTP versions seen: "+strings.Join(b.api.protocols(), ", "))
	rep.Leader = fmt.Sprintf("%s at the start, %s at the end", leaderAtStart, cl.leader())
	rep.Setup = append(rep.Setup, "Raft leader: "+rep.Leader)
	// Report in the order create, get, update, lists, watch (lists ran
	// first, see above).
	rank := map[string]int{"create": 0, "get": 1, "update": 2, "list": 3, "list-table": 3, "watch": 4, "update-fanout": 4}
	slices.SortStableFunc(b.rows, func(x, y *Row) int { return rank[x.Op] - rank[y.Op] })
	rep.Rows = b.rows
	rep.ErrorSamples = append(rep.ErrorSamples, b.errSamples...)
	rep.Profiles = b.profFiles
	rep.WallSeconds = time.Since(started).Seconds()
	writeText(os.Stdout, rep)
	if *keep || *profile {
		fmt.Printf("\nwork dir kept: %s\n", dir)
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, rep); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "apibench: wrote %s\n", *jsonOut)
	}
	return nil
}

func podSize() int {
	b, _ := json.Marshal(newPod("bench-crud", "r0-w0-0"))
	return len(b)
}

func commandLine() string {
	args := []string{}
	for _, a := range os.Args {
		if strings.ContainsAny(a, " \"'$") {
			a = strconv.Quote(a)
		}
		args = append(args, a)
	}
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		args[0] = "go run ./bench/apibench"
	}
	return strings.Join(args, " ")
}

func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					mem = fmt.Sprintf("%.0f GB RAM", kb/(1<<20))
				}
			}
		}
	}
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
			model = " (" + strings.TrimSpace(string(m[1])) + ")"
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs%s, %s, %s", runtime.NumCPU(), model, mem, kernel)
}

// gitState is the short commit and whether server code in the working
// tree differs from it (other people's test-only changes do not count).
func gitState() (string, string) {
	root, err := moduleRoot()
	if err != nil {
		return "unknown", "not a checkout"
	}
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown", "git failed"
	}
	commit := strings.TrimSpace(string(out))
	st, _ := exec.Command("git", "-C", root, "status", "--porcelain").Output()
	var changed []string
	for _, line := range strings.Split(string(st), "\n") {
		if len(line) < 4 {
			continue
		}
		p := strings.TrimSpace(line[3:])
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") && !strings.HasPrefix(p, "bench/") {
			changed = append(changed, p)
		}
	}
	if len(changed) == 0 {
		return commit, "no uncommitted non-test Go changes outside bench/"
	}
	return commit, "uncommitted changes to " + strings.Join(changed, ", ")
}

// profileStart asks every master (under the profdrover wrapper) to start
// a CPU profile for the row.
func (b *bench) profileStart(spec rowSpec) {
	if !b.profile {
		return
	}
	slug := regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(fmt.Sprintf("%02d-%s-c%d", len(b.rows)+1, spec.name, spec.clients)), "-")
	slug = strings.Trim(slug, "-")
	b.profNames = b.profNames[:0]
	for _, m := range b.cl.masters {
		path := filepath.Join(b.profDir, "profiles", slug+"-"+m.id+".pprof")
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.Remove(path + ".done")
		if err := os.WriteFile(m.dir+".profctl", []byte(path), 0o644); err != nil {
			continue
		}
		m.cmd.Process.Signal(syscall.SIGUSR1)
		b.profNames = append(b.profNames, path)
	}
}

// profileStop stops the profiles and waits for them to be written.
func (b *bench) profileStop() {
	if !b.profile {
		return
	}
	for _, m := range b.cl.masters {
		m.cmd.Process.Signal(syscall.SIGUSR2)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range b.profNames {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(p + ".done"); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.profFiles = append(b.profFiles, p)
	}
}
