// Package agenttest runs a real node agent over the hollow runtime, image
// store and network, registered with a test API server
// (control/apiserver/apiservertest) and serving its daemon endpoint (logs
// and exec) on a loopback port, for tests of what reaches pods through the
// API: pods/log, pods/exec.
//
//	srv := apiservertest.Start(t)
//	n := agenttest.Start(t, srv)
//	p := n.RunPod(t, &corev1.Pod{...})
//	n.WriteLog(t, p, "main", 0, "2026-01-02T15:04:05Z stdout F hello")
//
// The hollow runtime writes no container logs; WriteLog writes the CRI log
// file a shim would, where the agent reads it. Exec understands what the
// hollow runtime does: "echo WORDS", "exit CODE", "cat".
package agenttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
	"github.com/droverhq/drover/node/agent"
	"github.com/droverhq/drover/node/agent/hollow"
	rthollow "github.com/droverhq/drover/node/runtime/hollow"
)

// Node is a running agent.
type Node struct {
	Name    string
	DataDir string
	Client  *client.Client // the admin's client of the API server
	Runtime *rthollow.Runtime
}

// Start starts an agent for node "n1" and stops it when the test ends.
func Start(t testing.TB, srv *apiservertest.Server) *Node {
	t.Helper()
	c, _, err := client.NewFromKubeconfig(srv.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Name: "n1", DataDir: t.TempDir(), Client: c, Runtime: rthollow.New(rthollow.Config{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var nw *hollow.Network
	a, err := agent.New(agent.Config{NodeName: n.Name, Client: c, Runtime: n.Runtime, Images: hollow.NewImages(),
		Network: func(cidr string) (agent.Network, error) {
			mu.Lock()
			defer mu.Unlock()
			if nw == nil {
				made, err := hollow.NewNetwork(cidr)
				if err != nil {
					return nil, err
				}
				nw = made
			}
			return nw, nil
		},
		DataDir: n.DataDir, Address: "127.0.0.1", DaemonPort: int32(ln.Addr().(*net.TCPAddr).Port), CPU: 4, MemoryBytes: 8 << 30,
		StatusInterval: 200 * time.Millisecond, ResyncInterval: 50 * time.Millisecond,
		BackoffInitial: 200 * time.Millisecond, BackoffMax: time.Second, Version: "test", RuntimeName: "hollow://test"})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone, serveDone := make(chan error, 1), make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	go func() { serveDone <- a.Serve(ctx, ln, srv.CA.CertPEM) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("agent: %v", err)
		}
		if err := <-serveDone; err != nil {
			t.Errorf("agent daemon endpoint: %v", err)
		}
	})
	return n
}

// RunPod creates p in its namespace ("default" if unset) on this node and
// waits until all its containers run.
func (n *Node) RunPod(t testing.TB, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	p = p.DeepCopy()
	p.Spec.NodeName = n.Name
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	pods := n.Client.Resource(client.Pods).Namespace(p.Namespace)
	ctx := context.Background()
	if _, err := client.CreateTyped(ctx, pods, p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := client.GetTyped[corev1.Pod](ctx, pods, p.Name)
		if err == nil {
			if err = allRunning(got); err == nil {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s not running within 15s: %v", p.Namespace, p.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allRunning(p *corev1.Pod) error {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return fmt.Errorf("phase %s, %d container statuses", p.Status.Phase, len(p.Status.ContainerStatuses))
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil {
			return fmt.Errorf("container %s: %+v", cs.Name, cs.State)
		}
	}
	return nil
}

// LogPath is the CRI log file of attempt (restart count) of a container,
// where the agent reads pods/log.
func (n *Node) LogPath(p *corev1.Pod, container string, attempt int) string {
	return filepath.Join(n.DataDir, "pods", string(p.UID), "logs", container, strconv.Itoa(attempt)+".log")
}

// WriteLog appends CRI log lines ("TIME STREAM F|P CONTENT"; a newline is
// added to each) to the log file of an attempt, as a shim would.
func (n *Node) WriteLog(t testing.TB, p *corev1.Pod, container string, attempt int, lines ...string) {
	t.Helper()
	path := n.LogPath(p, container, attempt)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	// One write: a follower never sees half a line of it.
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
