package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/image"
)

// agentCluster is three masters and one real node agent (libcontainer,
// CNI, image store) joined through gossip with the masters' join token.
type agentCluster struct {
	t       *testing.T
	cfg     agentClusterConfig
	kc      string // admin kubeconfig
	agent   *proc
	dataDir string
	node    string
	cl      *client.Client // api()
}

// agentClusterConfig places a cluster on this machine: tests that run
// agents each need their own addresses, ports, pod range, bridge and node
// name. Zero values take TestAgentRunsPods' settings.
type agentClusterConfig struct {
	masterIP    int    // masters on 127.0.0.<masterIP>, +1, +2 (default 11)
	masterPorts int    // each master's port base (default 18980)
	agentIP     string // the agent's --address (default 127.0.0.21)
	agentPort   int    // the agent's gossip port; its daemon port is +1 (default 18995)
	clusterCIDR string // default 10.252.0.0/16
	bridge      string // default dre2e0
	node        string // default e2e-<pid>
	// masterArgs and agentArgs are extra flags of `drover server` and
	// `drover agent`.
	masterArgs, agentArgs []string
}

func (cfg *agentClusterConfig) defaults() {
	if cfg.masterIP == 0 {
		cfg.masterIP = 11
	}
	if cfg.masterPorts == 0 {
		cfg.masterPorts = 18980
	}
	if cfg.agentIP == "" {
		cfg.agentIP = "127.0.0.21"
	}
	if cfg.agentPort == 0 {
		cfg.agentPort = 18995
	}
	if cfg.clusterCIDR == "" {
		// A cluster CIDR of its own: a dev server on this machine uses 10.244/16.
		cfg.clusterCIDR = "10.252.0.0/16"
	}
	if cfg.bridge == "" {
		cfg.bridge = "dre2e0"
	}
	if cfg.node == "" {
		cfg.node = fmt.Sprintf("e2e-%d", os.Getpid()%100000)
	}
}

// requireAgentHost skips (fails in CI) unless this machine can run
// containers: root and Debian's busybox-static.
func requireAgentHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test runs containers and needs root")
		}
		t.Skip("needs root")
	}
	if _, err := os.Stat(image.DefaultBusybox); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (.ci/run installs busybox-static)", image.DefaultBusybox)
		}
		t.Skip("busybox-static not installed")
	}
}

// startAgentCluster needs root: the agent runs real containers.
func startAgentCluster(t *testing.T) *agentCluster {
	t.Helper()
	return startAgentClusterWith(t, agentClusterConfig{})
}

// startAgentClusterWith starts three masters and an agent as cfg says,
// with the busybox image imported offline as e2e.local/busybox:v1. Its
// cleanup removes the agent's pods, mounts, runtime state, cgroups and
// bridge, also when the test failed.
func startAgentClusterWith(t *testing.T, cfg agentClusterConfig) *agentCluster {
	t.Helper()
	requireAgentHost(t)
	cfg.defaults()
	key := gossipKey(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var ms []*master
	for i := range dirs {
		args := []string{"--bootstrap-expect", "3", "--encrypt", key, "--cluster-cidr", cfg.clusterCIDR}
		if i > 0 {
			args = append(args, "--join", ms[0].gossip)
		}
		args = append(args, cfg.masterArgs...)
		ms = append(ms, startMaster(t, fmt.Sprintf("m%d", i+1), cfg.masterIP+i, cfg.masterPorts, dirs[i], args...))
	}
	c := &agentCluster{t: t, cfg: cfg, kc: waitKubeconfig(t, dirs[0]), dataDir: t.TempDir(), node: cfg.node}
	tokenFile := filepath.Join(dirs[0], "join-token")
	waitFile(t, tokenFile)

	// The demo image, imported offline into the agent's store.
	img, err := image.BuildBusybox(image.DefaultBusybox, []string{"sh"})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("e2e.local/busybox:v1")
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	f, _ := os.Create(archive)
	if err := tarball.Write(tag, img, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(droverBin, "image", "import", "--data-dir", filepath.Join(c.dataDir, "images"), archive).CombinedOutput(); err != nil {
		t.Fatalf("drover image import: %v\n%s", err, out)
	}

	c.agent = &proc{t: t, id: "agent", dir: c.dataDir, logs: &logBuffer{}, args: append([]string{"agent", "--name", c.node,
		"--join", ms[0].gossip, "--token-file", tokenFile, "--address", cfg.agentIP, "--gossip", fmt.Sprintf("%s:%d", cfg.agentIP, cfg.agentPort),
		"--daemon-port", fmt.Sprint(cfg.agentPort + 1), "--data-dir", c.dataDir, "--bridge", cfg.bridge, "--log-level", "debug"}, cfg.agentArgs...)}
	c.agent.start()
	t.Cleanup(func() {
		// Containers outlive their agent by design: have the agent remove
		// what is left before it stops (starting it again if the test
		// left it killed: it also tears down the pods' network sandboxes
		// and port forwards), then unmount anything still there.
		if c.agent.cmd == nil {
			c.agent.start()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		exec.CommandContext(ctx, droverBin, "--kubeconfig", c.kc, "delete", "pods", "--all", "--grace-period", "0").Run()
		cancel()
		c.agent.kill()
		if t.Failed() {
			dumpLogs(t, c.agent)
			dumpLogs(t, ms[0].proc)
		}
		c.removeLeftovers()
	})
	return c
}

// removeLeftovers removes what a killed agent leaves on the machine:
// containers still running (killed through their cgroups), mounts under
// its data dir, the runtime's per-node state root, its cgroup parents and
// its bridge.
func (c *agentCluster) removeLeftovers() {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*/drover/" + c.node)
	for _, h := range hierarchies {
		killCgroupTree(h)
	}
	unmountUnder(c.dataDir)
	os.RemoveAll(filepath.Join("/run/drover", c.node))
	// A cgroup can only be removed once its killed processes are gone.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := 0
		for _, h := range hierarchies {
			removeCgroupTree(h)
			if _, err := os.Stat(h); err == nil {
				left++
			}
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
	}
	exec.Command("ip", "link", "del", c.cfg.bridge).Run() // the node's bridge
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drover runs the CLI against the cluster.
func (c *agentCluster) drover(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, droverBin, append([]string{"--kubeconfig", c.kc}, args...)...).CombinedOutput()
	return string(out), err
}

func (c *agentCluster) must(args ...string) string {
	c.t.Helper()
	out, err := c.drover(args...)
	if err != nil {
		c.t.Fatalf("drover %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// waitOutput polls a CLI command until its output matches re.
func (c *agentCluster) waitOutput(re string, within time.Duration, args ...string) string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(within)
	var out string
	for time.Now().Before(deadline) {
		out, _ = c.drover(args...)
		if rx.MatchString(out) {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("drover %s never matched %q; last output:\n%s", strings.Join(args, " "), re, out)
	return ""
}

const e2eWebPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: httpd
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "echo started; mkdir -p /www; echo hello-from-pod > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports:
    - containerPort: 80
`

// A pod goes from a manifest to a running container on a node that joined
// through gossip; it answers HTTP on its pod IP, its logs and exec work
// through the API, it survives the agent being killed (adopted, not
// restarted), and deleting it leaves nothing behind.
func TestAgentRunsPods(t *testing.T) {
	c := startAgentCluster(t)
	c.waitOutput(`(?m)^`+c.node+`\s+Ready\s`, 60*time.Second, "get", "nodes")

	manifest := filepath.Join(t.TempDir(), "web.yaml")
	os.WriteFile(manifest, []byte(e2eWebPod), 0o644)
	c.must("apply", "-f", manifest)
	out := c.waitOutput(`(?m)^web\s+1/1\s+Running\s+0\s`, 60*time.Second, "get", "pod", "web", "-o", "wide")
	ip := regexp.MustCompile(`10\.252\.\d+\.\d+`).FindString(out)
	if ip == "" {
		t.Fatalf("no pod IP in:\n%s", out)
	}
	body := waitHTTP(t, "http://"+ip+"/")
	if body != "hello-from-pod\n" {
		t.Fatalf("pod answered %q", body)
	}
	if logs := c.must("logs", "web"); !strings.Contains(logs, "started") {
		t.Fatalf("logs: %q", logs)
	}
	if got := c.must("exec", "web", "--", "cat", "/www/index.html"); got != "hello-from-pod\n" {
		t.Fatalf("exec: %q", got)
	}
	if _, err := c.drover("exec", "web", "--", "sh", "-c", "exit 3"); err == nil {
		t.Fatal("exec of a failing command succeeded")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("exec exit code: %v", err)
	}
	before, _ := c.container("web")

	// kill -9 the agent, start it again: the container is adopted.
	c.agent.kill()
	if got := waitHTTP(t, "http://"+ip+"/"); got != "hello-from-pod\n" {
		t.Fatalf("pod stopped answering while its agent was down: %q", got)
	}
	c.agent.start()
	c.waitOutput(`(?m)^web\s+1/1\s+Running\s+0\s`, 30*time.Second, "get", "pod", "web")
	if after, restarts := c.container("web"); after != before || restarts != 0 {
		t.Fatalf("the container was not adopted: %s -> %s, %d restarts", before, after, restarts)
	}

	// Delete: stopped, removed, nothing left.
	c.must("delete", "pod", "web")
	c.waitOutput(`No resources found`, 60*time.Second, "get", "pods")
	if entries, _ := os.ReadDir(filepath.Join(c.dataDir, "pods")); len(entries) != 0 {
		t.Fatalf("pod directories left: %v", entries)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mounts, []byte(c.dataDir)) {
		t.Fatalf("mounts left under the agent's data dir")
	}
	if entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup/memory/drover", c.node)); len(entries) > 0 {
		for _, e := range entries {
			if e.IsDir() {
				t.Fatalf("cgroup left: %s", e.Name())
			}
		}
	}
}

func waitHTTP(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountUnder lazily unmounts every mount below dir (deepest first), so a
// failed test does not leave the temp dir undeletable.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			targets = append(targets, f[4])
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		syscall.Unmount(targets[i], syscall.MNT_DETACH)
	}
}

// container reads a pod's first container ID and restart count.
func (c *agentCluster) container(pod string) (string, int32) {
	c.t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(c.must("get", "pod", pod, "-o", "json")), &p); err != nil || len(p.Status.ContainerStatuses) == 0 {
		c.t.Fatalf("pod %s: %v %+v", pod, err, p.Status)
	}
	return p.Status.ContainerStatuses[0].ContainerID, p.Status.ContainerStatuses[0].RestartCount
}

// killCgroupTree SIGKILLs every process in a cgroup directory and below
// (containers a killed agent left running; their shims exit with them).
func killCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			killCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(b)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeCgroupTree removes a cgroup directory and its (empty) children.
func removeCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	syscall.Rmdir(dir)
}
