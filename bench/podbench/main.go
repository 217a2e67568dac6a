// Command podbench measures pod startup on a real drover node beside runc
// on the same machine: a cluster of real `drover server` masters on
// loopback (127.0.0.51-53) and one real `drover agent` (127.0.0.61, bridge
// drbench0, pods from 10.254.0.0/16) that joins with the masters' join
// token and runs pods through libcontainer, with a busybox image imported
// offline (imagePullPolicy Never). Rows:
//
//   - single pod: create -> Running observed through a watch, pods created
//     one after another (each deleted, and its teardown awaited, before the
//     next), p50 / p99 against Kubernetes' pod startup SLO (p99 <= 5 s);
//   - burst: 50 pods created at once on the one node, p50 / p99 and the
//     time until the last is Running;
//   - where the time goes, per pod: API create, scheduling, agent pickup,
//     network sandbox (CNI), volumes, image check, rootfs + spec, runtime
//     start (shim + libcontainer), status report;
//   - the peer: Debian's runc on a bundle of the same busybox rootfs and
//     the same command (`runc run -d`, returning once the process started;
//     singly and 50 at once), and `runc run` of /bin/true to exit;
//   - memory: the agent's RSS and its shims' (count, RSS, PSS) with 50 pods
//     running.
//
// drover and runc alternate in order over repetitions; cells are median
// [min–max] over repetitions, with the CPU other processes used during
// each side's windows. It needs root, and cleans up (containers, cgroups,
// /run/drover/podbench, mounts, the bridge) however it ends. See
// docs/benchmarks.md.
//
//	make bench-pods                                  # about 3 minutes
//	make bench-pods BENCH_PODS_FLAGS="-json /tmp/bench-pods.json"
//	go build -o bin/podbench ./bench/podbench && sudo ./bin/podbench -drover bin/drover -quick
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fixed names and addresses: no test uses them, and cleanup can find
// everything a crashed run left.
const (
	nodeName     = "podbench"
	bridgeName   = "drbench0"
	clusterCIDR  = "10.254.0.0/16"
	masterIPBase = 51 // 127.0.0.51-53
	masterPort   = 19500
	agentIP      = "127.0.0.61"
	agentGossip  = 19510
	agentDaemon  = 19511
	namespace    = "podbench"
	imageRef     = "podbench.local/busybox:v1"
	containerNm  = "c"
	runcCgroup   = "/drbench-runc"
	runcRoot     = "/run/drbench-runc"
	acctCgroup   = "/sys/fs/cgroup/cpuacct/drbench-podbench"
)

// podCommand is what every container runs, pod and runc alike.
var podCommand = []string{"sleep", "3600"}

type config struct {
	droverBin, runcBin string
	dir                string
	keep               bool
	jsonOut            string
	masters            int
	reps               int
	single             int
	burst              int
	bursts             int
	runcTrue           int
	gap                time.Duration
	podTimeout         time.Duration
	agentLogLevel      string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "podbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "podbench: "+format+"\n", args...)
}

func run() error {
	var cfg config
	flag.StringVar(&cfg.droverBin, "drover", "", "drover binary (default: build ./cmd/drover into the work dir)")
	flag.StringVar(&cfg.runcBin, "runc", "", "runc binary (default: /usr/sbin/runc, /usr/bin/runc or runc on PATH)")
	flag.StringVar(&cfg.dir, "dir", "", "work dir for data dirs, bundles and logs (default: a temp dir, removed unless -keep)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work dir (master and agent logs)")
	flag.StringVar(&cfg.jsonOut, "json", "", "also write the results (with every pod's timeline) as JSON to this file")
	flag.IntVar(&cfg.masters, "masters", 3, "masters: 1 or 3")
	flag.IntVar(&cfg.reps, "reps", 5, "repetitions; drover and runc alternate in order")
	flag.IntVar(&cfg.single, "single", 30, "single pods per repetition, one after another")
	flag.IntVar(&cfg.burst, "burst", 50, "pods per burst (created at once on the one node)")
	flag.IntVar(&cfg.bursts, "bursts", 1, "bursts per repetition")
	flag.IntVar(&cfg.runcTrue, "runc-true", 10, "`runc run` of /bin/true to exit, per repetition")
	flag.DurationVar(&cfg.gap, "gap", 250*time.Millisecond, "pause between single pods (after the previous one is torn down)")
	flag.DurationVar(&cfg.podTimeout, "pod-timeout", 90*time.Second, "a pod not Running by then is an error")
	flag.StringVar(&cfg.agentLogLevel, "agent-log-level", "info", "the agent's --log-level")
	quick := flag.Bool("quick", false, "smoke run: 1 repetition of 5 single pods and a burst of 10 (flags given explicitly win)")
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"reps": "1", "single": "5", "burst": "10", "runc-true": "3"} {
			if !set[name] {
				flag.Set(name, v)
			}
		}
	}
	if cfg.masters != 1 && cfg.masters != 3 {
		return fmt.Errorf("-masters %d: want 1 or 3", cfg.masters)
	}
	if cfg.reps < 1 || cfg.single < 1 || cfg.burst < 1 || cfg.bursts < 0 || cfg.runcTrue < 0 {
		return errors.New("-reps, -single and -burst must be at least 1")
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it runs a real drover agent (containers through libcontainer, CNI networking on a bridge, cgroups, mounts) and runc.\n" +
			"Run it as root, e.g. `sudo make bench-pods`")
	}
	if err := checkPrereqs(&cfg); err != nil {
		return err
	}
	if !portsFree(cfg.masters) {
		return fmt.Errorf("ports %d-%d on 127.0.0.%d-%d or %d-%d on %s are in use: is another podbench running? Refusing to start (and to clean up after it)",
			masterPort, masterPort+3, masterIPBase, masterIPBase+cfg.masters-1, agentGossip, agentDaemon, agentIP)
	}
	started := time.Now()
	rep := &Report{Command: commandLine(), Started: started.UTC().Format("2006-01-02 15:04:05 UTC"), Machine: machine(), Go: runtime.Version()}
	rep.Commit, rep.Tree = gitState()

	dir := cfg.dir
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "podbench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}

	// Whatever a crashed earlier run left behind goes first.
	if left := leftovers(); len(left) > 0 {
		logf("cleaning up what an earlier run left: %s", strings.Join(left, "; "))
		forceCleanup("", "10.254.0.0/24")
	}

	b := &bench{cfg: cfg, dir: dir, report: rep}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			b.teardown()
			if !cfg.keep {
				unmountUnder(dir)
				os.RemoveAll(dir)
			} else {
				fmt.Fprintf(os.Stderr, "podbench: work dir kept: %s\n", dir)
			}
		})
	}
	defer cleanup()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigc
		logf("%v: cleaning up", s)
		cleanup()
		os.Exit(130)
	}()

	if err := b.setup(); err != nil {
		return err
	}
	if err := b.measure(); err != nil {
		return err
	}
	rep.WallSeconds = time.Since(started).Seconds()
	b.summarize()
	writeText(os.Stdout, rep)
	if cfg.jsonOut != "" {
		if err := writeJSON(cfg.jsonOut, rep); err != nil {
			return err
		}
		logf("wrote %s", cfg.jsonOut)
	}
	return nil
}

// checkPrereqs finds runc, busybox-static and the CNI plugins, and says
// which Debian package to install when one is missing.
func checkPrereqs(cfg *config) error {
	var missing []string
	if cfg.runcBin == "" {
		for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc"} {
			if _, err := os.Stat(p); err == nil {
				cfg.runcBin = p
				break
			}
		}
		if cfg.runcBin == "" {
			if p, err := exec.LookPath("runc"); err == nil {
				cfg.runcBin = p
			}
		}
	}
	if cfg.runcBin == "" {
		missing = append(missing, "runc (the peer)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "busybox-static (/bin/busybox: the image)")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		if _, err2 := os.Stat("/opt/cni/bin/bridge"); err2 != nil {
			missing = append(missing, "containernetworking-plugins (the pod network)")
		}
	}
	if _, err := exec.LookPath("iptables-save"); err != nil {
		missing = append(missing, "iptables")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "iproute2")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s; on Debian: apt-get install runc busybox-static containernetworking-plugins iptables iproute2 (`make bench-pods` installs them as root)", strings.Join(missing, ", "))
	}
	return nil
}
