package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/image"
)

var namespaces = client.Mapping{Version: "v1", Resource: "namespaces", Kind: "Namespace"}

// proc is one `drover` process the benchmark started.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

func startProc(name, bin string, args []string, logPath string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Killed with the benchmark however it ends (containers and shims
	// outlive the agent by design; cleanup removes them).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// bench holds the cluster, the node, the runc peer and the results.
type bench struct {
	cfg     config
	dir     string
	report  *Report
	bin     string
	masters []*proc
	mdirs   []string
	agent   *proc
	agentDD string // the agent's --data-dir
	c       *client.Client
	tr      *tracker
	stopTr  context.CancelFunc
	runc    *runcPeer
	podCIDR string
	acct    bool // our processes are in acctCgroup
	reps    []*repResult
	idleMem *memSnap
}

func (b *bench) masterIP(i int) string { return fmt.Sprintf("127.0.0.%d", masterIPBase+i) }

func (b *bench) setup() error {
	cfg := b.cfg
	os.WriteFile(workDirMarker, []byte(b.dir), 0o644)
	b.bin = cfg.droverBin
	if b.bin == "" {
		logf("building drover...")
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		b.bin = filepath.Join(b.dir, "drover")
		cmd := exec.Command("go", "build", "-o", b.bin, "./cmd/drover")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/drover: %w", err)
		}
	}
	if abs, err := filepath.Abs(b.bin); err == nil {
		b.bin = abs
	}
	b.report.Drover = b.bin
	if out, err := exec.Command(b.bin, "version").Output(); err == nil {
		b.report.DroverVersion = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	b.report.Runc = cfg.runcBin
	if out, err := exec.Command(cfg.runcBin, "--version").Output(); err == nil {
		b.report.RuncVersion = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}

	// Count our own CPU (and that of everything we start) apart from the
	// rest of the machine: a cpuacct group of our own (accounting only;
	// on this cgroup v1 host cpuacct is its own hierarchy, so scheduling is
	// unchanged).
	b.acct = enterAcct()

	// The image, imported offline into the agent's store before it starts.
	b.agentDD = filepath.Join(b.dir, "agent")
	if err := os.MkdirAll(b.agentDD, 0o700); err != nil {
		return err
	}
	img, err := image.BuildBusybox(image.DefaultBusybox, []string{"sh"})
	if err != nil {
		return err
	}
	tag, err := name.NewTag(imageRef)
	if err != nil {
		return err
	}
	archive := filepath.Join(b.dir, "busybox.tar")
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	if err := tarball.Write(tag, img, f); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if out, err := exec.Command(b.bin, "image", "import", "--data-dir", filepath.Join(b.agentDD, "images"), archive).CombinedOutput(); err != nil {
		return fmt.Errorf("drover image import: %v\n%s", err, out)
	}

	// The runc peer's rootfs and bundle template, from the same image.
	b.runc = &runcPeer{bin: cfg.runcBin, dir: filepath.Join(b.dir, "runc"), root: runcRoot}
	if err := b.runc.prepare(img); err != nil {
		return fmt.Errorf("runc bundle: %w", err)
	}

	// Masters.
	key, err := exec.Command(b.bin, "keygen").Output()
	if err != nil {
		return fmt.Errorf("drover keygen: %w", err)
	}
	gossip0 := net.JoinHostPort(b.masterIP(0), strconv.Itoa(masterPort+2))
	logf("starting %d master(s) on 127.0.0.%d-%d in %s...", cfg.masters, masterIPBase, masterIPBase+cfg.masters-1, b.dir)
	for i := 0; i < cfg.masters; i++ {
		ip := b.masterIP(i)
		md := filepath.Join(b.dir, fmt.Sprintf("m%d", i+1))
		if err := os.MkdirAll(md, 0o700); err != nil {
			return err
		}
		args := []string{"server", "--id", fmt.Sprintf("m%d", i+1), "--data-dir", md,
			"--listen", net.JoinHostPort(ip, strconv.Itoa(masterPort)),
			"--api", net.JoinHostPort(ip, strconv.Itoa(masterPort+1)),
			"--gossip", net.JoinHostPort(ip, strconv.Itoa(masterPort+2)),
			"--kube-api", net.JoinHostPort(ip, strconv.Itoa(masterPort+3)),
			"--bootstrap-expect", strconv.Itoa(cfg.masters), "--encrypt", strings.TrimSpace(string(key)),
			"--cluster-cidr", clusterCIDR}
		if i > 0 {
			args = append(args, "--join", gossip0)
		}
		p, err := startProc(fmt.Sprintf("m%d", i+1), b.bin, args, md+".log")
		if err != nil {
			return err
		}
		b.masters = append(b.masters, p)
		b.mdirs = append(b.mdirs, md)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := b.waitMasters(ctx); err != nil {
		return err
	}
	logf("masters ready in %.1fs", time.Since(t0).Seconds())

	// The agent joins with the join token, as an operator's would.
	tokenFile := filepath.Join(b.mdirs[0], "join-token")
	if err := waitFile(ctx, tokenFile); err != nil {
		return err
	}
	args := []string{"agent", "--name", nodeName, "--join", gossip0, "--token-file", tokenFile,
		"--address", agentIP, "--gossip", net.JoinHostPort(agentIP, strconv.Itoa(agentGossip)),
		"--daemon-port", strconv.Itoa(agentDaemon), "--data-dir", b.agentDD, "--bridge", bridgeName,
		"--log-level", cfg.agentLogLevel}
	if b.agent, err = startProc("agent", b.bin, args, filepath.Join(b.dir, "agent.log")); err != nil {
		return err
	}
	t0 = time.Now()
	if err := b.waitNode(ctx); err != nil {
		return err
	}
	logf("node %s Ready in %.1fs (pod CIDR %s)", nodeName, time.Since(t0).Seconds(), b.podCIDR)

	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CreateTyped(ctx, b.c.Resource(namespaces), nsObj); err != nil && !client.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	tctx, tcancel := context.WithCancel(context.Background())
	b.stopTr = tcancel
	b.tr = newTracker(b.c.Resource(client.Pods).Namespace(namespace))
	if err := b.tr.start(tctx); err != nil {
		return err
	}
	b.report.Setup = append(b.report.Setup, b.describe()...)
	return nil
}

// waitMasters waits for m1's admin kubeconfig and for every master to be
// written through (a namespace read through m1 succeeds).
func (b *bench) waitMasters(ctx context.Context) error {
	kc := filepath.Join(b.mdirs[0], "admin.kubeconfig")
	for {
		if fi, err := os.Stat(kc); err == nil && fi.Size() > 0 {
			break
		}
		for _, m := range b.masters {
			if !m.running() {
				return fmt.Errorf("%s exited during start-up (log %s):\n%s", m.name, m.logPath, tail(m.logPath, 2000))
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no %s after 120 s (log %s):\n%s", kc, b.masters[0].logPath, tail(b.masters[0].logPath, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c, _, err := client.NewFromKubeconfig(kc, "")
	if err != nil {
		return err
	}
	b.c = c
	for {
		_, err := b.c.Resource(namespaces).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the API never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitNode waits for the agent's Node to be Ready with a pod CIDR.
func (b *bench) waitNode(ctx context.Context) error {
	var last string
	for {
		if !b.agent.running() {
			return fmt.Errorf("the agent exited (log %s):\n%s", b.agent.logPath, tail(b.agent.logPath, 3000))
		}
		n, err := client.GetTyped[corev1.Node](ctx, b.c.Resource(client.Nodes), nodeName)
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "" {
					b.podCIDR = n.Spec.PodCIDR
					return nil
				}
			}
			last = fmt.Sprintf("conditions %v, podCIDR %q", n.Status.Conditions, n.Spec.PodCIDR)
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("node %s not Ready: %s (agent log %s):\n%s", nodeName, last, b.agent.logPath, tail(b.agent.logPath, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *bench) describe() []string {
	var ips []string
	for i := range b.masters {
		ips = append(ips, b.masterIP(i))
	}
	mode := "--bootstrap-expect 3 --join"
	if len(b.masters) == 1 {
		mode = "--bootstrap-expect 1"
	}
	out := []string{
		fmt.Sprintf("cluster: %d `drover server` on %s (ports %d-%d: member, etcd API, gossip, Kubernetes API), %s, gossip encryption, TLS, --cluster-cidr %s, default settings; the client (this program) talks to m1 over HTTPS with the admin kubeconfig; Raft leader: %s",
			len(b.masters), strings.Join(ips, ", "), masterPort, masterPort+3, mode, clusterCIDR, b.leader()),
		fmt.Sprintf("node: one `drover agent --name %s --address %s --bridge %s --log-level %s`, joined through gossip with m1's join token; pod CIDR %s; runtime state /run/drover/%s, cgroups /drover/%s (absolute, every v1 hierarchy)",
			nodeName, agentIP, bridgeName, b.cfg.agentLogLevel, b.podCIDR, nodeName, nodeName),
		fmt.Sprintf("pod: one container, image %s (busybox-static, built by node/image.BuildBusybox, imported with `drover image import`), imagePullPolicy Never, command %v, no resources, schedulerName default-scheduler; deleted with gracePeriodSeconds 0", imageRef, podCommand),
		fmt.Sprintf("runc: %s (%s), one bundle per container from `runc spec` (edited: the same busybox rootfs as a plain directory, read-write, terminal false, the same command, cgroupsPath %s/<id>), --root %s on tmpfs; detached runs' stdio to a file",
			b.runc.bin, b.report.RuncVersion, runcCgroup, runcRoot),
	}
	return out
}

// leader asks m1 who leads (drover raft status).
func (b *bench) leader() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, b.bin, "raft", "status", "--endpoint", net.JoinHostPort(b.masterIP(0), strconv.Itoa(masterPort)), "--data-dir", b.mdirs[0]).Output()
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "leader: "); ok {
			id, _, _ := strings.Cut(v, " ")
			return id
		}
	}
	return "unknown"
}

// teardown removes everything: pods through the API while the cluster
// runs (the agent tears their sandboxes down), then the agent, then
// whatever is left by force, the runc containers, the masters, and our
// cpuacct group. It reports anything it could not remove.
func (b *bench) teardown() {
	if b.stopTr != nil {
		b.stopTr()
	}
	if b.c != nil && b.agent.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		zero := int64(0)
		err := b.c.Resource(client.Pods).Namespace(namespace).DeleteCollection(ctx, &metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err == nil {
			for ctx.Err() == nil && (countDir(containersDir()) > 0 || countDir(filepath.Join(b.agentDD, "network", "sandboxes")) > 0) {
				time.Sleep(100 * time.Millisecond)
			}
		} else {
			logf("cleanup: deleting the pods failed: %v", err)
		}
		cancel()
	}
	if b.agent != nil {
		b.agent.stop(15 * time.Second)
	}
	cidr := b.podCIDR
	if cidr == "" {
		cidr = "10.254.0.0/24"
	}
	forceCleanup(b.agentDD, cidr)
	for _, m := range b.masters {
		m.stop(10 * time.Second)
	}
	if b.acct {
		leaveAcct()
	}
	if left := leftovers(); len(left) > 0 {
		logf("WARNING: left behind after cleanup: %s", strings.Join(left, "; "))
	}
}

func containersDir() string { return filepath.Join("/run/drover", nodeName, "containers") }

func countDir(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func waitFile(ctx context.Context, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s never appeared", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portsFree: the masters' and the agent's ports can be bound.
func portsFree(masters int) bool {
	try := func(ip string, port int, udp bool) bool {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		ln.Close()
		if udp {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			pc.Close()
		}
		return true
	}
	for i := 0; i < masters; i++ {
		ip := fmt.Sprintf("127.0.0.%d", masterIPBase+i)
		for off := 0; off < 4; off++ {
			if !try(ip, masterPort+off, off == 2) {
				return false
			}
		}
	}
	return try(agentIP, agentGossip, true) && try(agentIP, agentDaemon, false)
}

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("go.mod not found above the working directory; run from the drover checkout or give -drover")
		}
		d = up
	}
}

// tail is the last n bytes of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
