package agent_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
	"github.com/droverhq/drover/node/agent"
	"github.com/droverhq/drover/node/agent/hollow"
	"github.com/droverhq/drover/node/runtime"
	rthollow "github.com/droverhq/drover/node/runtime/hollow"
)

// node is one agent over the hollow runtime, image store and network,
// against a real API server.
type node struct {
	t       *testing.T
	name    string
	c       *client.Client
	rt      *rthollow.Runtime
	images  *hollow.Images
	net     *hollow.Network
	dataDir string
	cancel  context.CancelFunc
	done    chan error
}

func newNode(t *testing.T, srv *apiservertest.Server, name string) *node {
	c, _, err := client.NewFromKubeconfig(srv.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, c: c, rt: rthollow.New(rthollow.Config{}), images: hollow.NewImages(), dataDir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	n.startWith(nil)
}

// startWith starts the agent; with srv it also serves the daemon endpoint
// on a loopback port, reported in the Node's status.
func (n *node) startWith(srv *apiservertest.Server) {
	var mu sync.Mutex
	var ln net.Listener
	port := int32(0)
	if srv != nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			n.t.Fatal(err)
		}
		port = int32(ln.Addr().(*net.TCPAddr).Port)
	}
	a, err := agent.New(agent.Config{NodeName: n.name, Client: n.c, Runtime: n.rt, Images: n.images,
		Network: func(cidr string) (agent.Network, error) {
			mu.Lock()
			defer mu.Unlock()
			if n.net == nil {
				nw, err := hollow.NewNetwork(cidr)
				if err != nil {
					return nil, err
				}
				n.net = nw
			}
			return n.net, nil
		},
		DataDir: n.dataDir, Address: n.address(srv), DaemonPort: port, CPU: 4, MemoryBytes: 8 << 30,
		StatusInterval: 200 * time.Millisecond, ResyncInterval: 50 * time.Millisecond,
		BackoffInitial: 200 * time.Millisecond, BackoffMax: time.Second, Version: "test", RuntimeName: "hollow://test"})
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done = make(chan error, 1)
	go func() { n.done <- a.Run(ctx) }()
	if ln != nil {
		go a.Serve(ctx, ln, srv.CA.CertPEM)
	}
}

func (n *node) address(srv *apiservertest.Server) string {
	if srv != nil {
		return "127.0.0.1" // the daemon endpoint listens here
	}
	return "192.0.2.10"
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("agent: %v", err)
	}
	n.cancel = nil
}

func eventually(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func podOn(nodeName, name string, policy corev1.RestartPolicy, args ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: nodeName, RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: args}}}}
}

func (n *node) pods() client.ResourceClient { return n.c.Resource(client.Pods).Namespace("default") }

func (n *node) create(p *corev1.Pod) *corev1.Pod {
	n.t.Helper()
	out, err := client.CreateTyped(context.Background(), n.pods(), p)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func (n *node) get(name string) (*corev1.Pod, error) {
	return client.GetTyped[corev1.Pod](context.Background(), n.pods(), name)
}

// waitPod polls a pod until check accepts it.
func (n *node) waitPod(name string, check func(*corev1.Pod) error) *corev1.Pod {
	n.t.Helper()
	var last *corev1.Pod
	eventually(n.t, 15*time.Second, func() error {
		p, err := n.get(name)
		if err != nil {
			return err
		}
		last = p
		return check(p)
	})
	return last
}

func running(p *corev1.Pod) error {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
		return fmt.Errorf("not running: phase %s %+v", p.Status.Phase, p.Status.ContainerStatuses)
	}
	return nil
}

func TestNodeRegistersAndRunsPods(t *testing.T) {
	srv := apiservertest.Start(t)
	n := newNode(t, srv, "n1")
	ctx := context.Background()
	var node *corev1.Node
	eventually(t, 10*time.Second, func() error {
		var err error
		node, err = client.GetTyped[corev1.Node](ctx, n.c.Resource(client.Nodes), "n1")
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node not ready: %+v", node.Status.Conditions)
	})
	if cpu := node.Status.Allocatable.Cpu().Value(); cpu != 4 || node.Spec.PodCIDR == "" || node.Labels["kubernetes.io/hostname"] != "n1" {
		t.Fatalf("node: cpu %d podCIDR %q labels %v", cpu, node.Spec.PodCIDR, node.Labels)
	}
	eventually(t, 10*time.Second, func() error {
		_, err := client.GetTyped[coordinationv1.Lease](ctx, n.c.Resource(client.Leases).Namespace("kube-node-lease"), "n1")
		return err
	})

	n.create(podOn("n1", "web", corev1.RestartPolicyAlways, "sleep", "1d"))
	p := n.waitPod("web", func(p *corev1.Pod) error {
		if err := running(p); err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
				return fmt.Errorf("not ready")
			}
		}
		return nil
	})
	_, cidr, _ := net.ParseCIDR(node.Spec.PodCIDR)
	if ip := net.ParseIP(p.Status.PodIP); ip == nil || !cidr.Contains(ip) || p.Status.HostIP != "192.0.2.10" {
		t.Fatalf("pod IP %q (node CIDR %s), host IP %q", p.Status.PodIP, node.Spec.PodCIDR, p.Status.HostIP)
	}
	if cs := p.Status.ContainerStatuses[0]; !cs.Ready || cs.RestartCount != 0 || cs.ContainerID == "" {
		t.Fatalf("container status: %+v", cs)
	}

	// Graceful deletion: the agent stops the containers, removes the
	// sandbox and deletes the pod.
	if err := n.pods().Delete(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if _, err := n.get("web"); !client.IsNotFound(err) {
			return fmt.Errorf("pod still there: %v", err)
		}
		if n.rt.Len() != 0 || n.net.Sandboxes() != 0 {
			return fmt.Errorf("left behind: %d containers, %d sandboxes", n.rt.Len(), n.net.Sandboxes())
		}
		return nil
	})
}

func TestRestartPolicies(t *testing.T) {
	srv := apiservertest.Start(t)
	n := newNode(t, srv, "n1")
	n.create(podOn("n1", "crash", corev1.RestartPolicyAlways, "exit", "3", "after", "50ms"))
	n.create(podOn("n1", "ok-once", corev1.RestartPolicyNever, "exit", "0", "after", "50ms"))
	n.create(podOn("n1", "fail-once", corev1.RestartPolicyNever, "exit", "2", "after", "50ms"))
	n.create(podOn("n1", "retry", corev1.RestartPolicyOnFailure, "exit", "1", "after", "50ms"))

	// Always: restarted with back-off, the last exit kept as lastState,
	// CrashLoopBackOff shown while waiting.
	seenBackOff := false
	n.waitPod("crash", func(p *corev1.Pod) error {
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 {
			return fmt.Errorf("no status")
		}
		if w := cs[0].State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			seenBackOff = true
			// It has run: Running, not Pending (as the kubelet says).
			if p.Status.Phase != corev1.PodRunning {
				t.Errorf("phase %s in CrashLoopBackOff, want Running", p.Status.Phase)
			}
		}
		if cs[0].RestartCount < 2 || !seenBackOff {
			return fmt.Errorf("restarts %d, back-off seen %v", cs[0].RestartCount, seenBackOff)
		}
		if lt := cs[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 3 {
			return fmt.Errorf("last termination: %+v", cs[0].LastTerminationState)
		}
		return nil
	})
	n.waitPod("ok-once", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		if t := p.Status.ContainerStatuses[0].State.Terminated; t == nil || t.ExitCode != 0 || t.Reason != "Completed" {
			return fmt.Errorf("terminated: %+v", p.Status.ContainerStatuses[0].State)
		}
		return nil
	})
	n.waitPod("fail-once", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed || p.Status.ContainerStatuses[0].RestartCount != 0 {
			return fmt.Errorf("phase %s restarts %d", p.Status.Phase, p.Status.ContainerStatuses[0].RestartCount)
		}
		return nil
	})
	n.waitPod("retry", func(p *corev1.Pod) error {
		if p.Status.ContainerStatuses[0].RestartCount < 1 {
			return fmt.Errorf("OnFailure did not restart")
		}
		return nil
	})
}

func TestImagePullErrors(t *testing.T) {
	srv := apiservertest.Start(t)
	n := newNode(t, srv, "n1")
	n.images.Missing["nope:latest"] = true
	p := podOn("n1", "bad", corev1.RestartPolicyAlways, "sleep", "1d")
	p.Spec.Containers[0].Image = "nope:latest"
	n.create(p)
	seen := map[string]bool{}
	n.waitPod("bad", func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil {
			seen[p.Status.ContainerStatuses[0].State.Waiting.Reason] = true
		}
		if !seen["ErrImagePull"] || !seen["ImagePullBackOff"] {
			return fmt.Errorf("reasons seen: %v", seen)
		}
		return nil
	})
	// The image appears: the pod starts on the next attempt.
	n.images.Missing = map[string]bool{}
	n.waitPod("bad", running)
}

// A restarted agent adopts running containers (no restart) and removes
// those of pods deleted while it was down.
func TestAgentRestartAdoptsContainers(t *testing.T) {
	srv := apiservertest.Start(t)
	n := newNode(t, srv, "n1")
	n.create(podOn("n1", "keep", corev1.RestartPolicyAlways, "sleep", "1d"))
	n.create(podOn("n1", "drop", corev1.RestartPolicyAlways, "sleep", "1d"))
	before := n.waitPod("keep", running)
	n.waitPod("drop", running)
	n.stop()
	// While the agent is down: one pod is force-deleted from the API.
	zero := int64(0)
	if err := n.pods().Delete(context.Background(), "drop", &metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if n.rt.Len() != 2 {
		t.Fatalf("containers while the agent is down: %d", n.rt.Len())
	}
	n.start()
	eventually(t, 10*time.Second, func() error {
		cs, _ := n.rt.List(context.Background())
		if len(cs) != 1 {
			return fmt.Errorf("%d containers", len(cs))
		}
		if cs[0].State != runtime.StateRunning || "drover://"+cs[0].ID != before.Status.ContainerStatuses[0].ContainerID {
			return fmt.Errorf("container %s %s, was %s", cs[0].ID, cs[0].State, before.Status.ContainerStatuses[0].ContainerID)
		}
		if n.net.Sandboxes() != 1 {
			return fmt.Errorf("%d sandboxes", n.net.Sandboxes())
		}
		return nil
	})
	after := n.waitPod("keep", running)
	if after.Status.ContainerStatuses[0].RestartCount != 0 || after.Status.PodIP != before.Status.PodIP {
		t.Fatalf("adopted pod changed: restarts %d, IP %s -> %s", after.Status.ContainerStatuses[0].RestartCount, before.Status.PodIP, after.Status.PodIP)
	}
}

// pods/log and pods/exec go from the API server to the agent's daemon
// endpoint and back.
func TestLogsAndExecThroughTheAPI(t *testing.T) {
	srv := apiservertest.Start(t)
	c, _, err := client.NewFromKubeconfig(srv.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: "n1", c: c, rt: rthollow.New(rthollow.Config{}), images: hollow.NewImages(), dataDir: t.TempDir()}
	n.startWith(srv)
	t.Cleanup(n.stop)
	p := n.create(podOn("n1", "web", corev1.RestartPolicyAlways, "sleep", "1d"))
	n.waitPod("web", running)
	// The hollow runtime writes no logs: write what a shim would.
	logFile := filepath.Join(n.dataDir, "pods", string(p.UID), "logs", "main", "0.log")
	lines := "2026-01-02T15:04:05.000000001Z stdout F first line\n2026-01-02T15:04:06.000000001Z stderr F second line\n"
	if err := os.WriteFile(logFile, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/v1/namespaces/default/pods/web/log"); code != 200 || body != "first line\nsecond line\n" {
		t.Fatalf("logs: %d %q", code, body)
	}
	if code, body := get("/api/v1/namespaces/default/pods/web/log?tailLines=1&timestamps=true"); code != 200 || body != "2026-01-02T15:04:06.000000001Z second line\n" {
		t.Fatalf("tail with timestamps: %d %q", code, body)
	}
	if code, body := get("/api/v1/namespaces/default/pods/web/log?container=nope"); code != 400 || !strings.Contains(body, "container nope is not valid") {
		t.Fatalf("unknown container: %d %s", code, body)
	}
	if code, body := get("/api/v1/namespaces/default/pods/web/log?previous=true"); code != 400 || !strings.Contains(body, "previous terminated container") {
		t.Fatalf("previous without one: %d %s", code, body)
	}

	// exec over WebSocket with Kubernetes' channel protocol.
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.CA.Pool()}, Subprotocols: []string{"v4.channel.k8s.io"}}
	u := strings.Replace(srv.URL, "https://", "wss://", 1) + "/api/v1/namespaces/default/pods/web/exec?command=echo&command=hello&stdout=true&stderr=true"
	conn, resp, err := d.Dial(u, http.Header{"Authorization": {"Bearer " + srv.Token}})
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("exec dial: %v %s", err, body)
	}
	defer conn.Close()
	var stdout strings.Builder
	var status string
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			break
		}
		switch msg[0] {
		case 1:
			stdout.Write(msg[1:])
		case 3:
			status = string(msg[1:])
		}
	}
	if stdout.String() != "hello\n" || !strings.Contains(status, `"status":"Success"`) {
		t.Fatalf("exec: stdout %q status %s", stdout.String(), status)
	}
	// A non-zero exit comes back as a NonZeroExitCode status.
	u = strings.Replace(srv.URL, "https://", "wss://", 1) + "/api/v1/namespaces/default/pods/web/exec?command=exit&command=3&stdout=true"
	conn2, _, err := d.Dial(u, http.Header{"Authorization": {"Bearer " + srv.Token}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	status = ""
	for {
		_, msg, err := conn2.ReadMessage()
		if err != nil {
			break
		}
		if msg[0] == 3 {
			status = string(msg[1:])
		}
	}
	if !strings.Contains(status, "NonZeroExitCode") || !strings.Contains(status, `"message":"3"`) {
		t.Fatalf("exit status: %s", status)
	}
}
