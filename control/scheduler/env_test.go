package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
	"github.com/droverhq/drover/control/scheduler"
)

var (
	podsM   = client.Mapping{Version: "v1", Resource: "pods", Kind: "Pod", Namespaced: true}
	nodesM  = client.Mapping{Version: "v1", Resource: "nodes", Kind: "Node"}
	eventsM = client.Mapping{Version: "v1", Resource: "events", Kind: "Event", Namespaced: true}
)

// env is a real API server over HTTPS, a client for it, and (once
// started) a scheduler running against it.
type env struct {
	t     testing.TB
	srv   *apiservertest.Server
	c     *client.Client
	sched *scheduler.Scheduler
	stop  func()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := apiservertest.Start(t)
	c, _, err := client.NewFromKubeconfig(srv.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, c: c}
}

// start runs a scheduler until the test ends (or stop is called).
func (e *env) start(cfg scheduler.Config) {
	e.t.Helper()
	// A client of its own, as the master would give it: its connections
	// are not shared with the test's.
	c, _, err := client.NewFromKubeconfig(e.srv.Kubeconfig, "")
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.Client = c
	if cfg.Logger == nil {
		cfg.Logger = testLogger(e.t)
	}
	s, err := scheduler.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sched = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			e.t.Error(err)
		}
	}()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(e.stop)
}

// testLogger logs warnings and errors to the test log (-v shows them).
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SCHED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func toUnstructured(t testing.TB, obj runtime.Object, apiVersion, kind string) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	return u
}

func fromUnstructured[T any](t testing.TB, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// hollowNode is a Node object as an agent would register it: capacity,
// allocatable, Ready. No agent runs.
func hollowNode(name, cpu, mem string, pods int64, mutate ...func(*corev1.Node)) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(mem),
		corev1.ResourcePods:   *resource.NewQuantity(pods, resource.DecimalSI),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res.DeepCopy(),
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
			}},
		},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func (e *env) createNode(ctx context.Context, n *corev1.Node) error {
	_, err := e.c.Resource(nodesM).Create(ctx, toUnstructured(e.t, n, "v1", "Node"), metav1.CreateOptions{})
	return err
}

func (e *env) addNode(n *corev1.Node) {
	e.t.Helper()
	if err := e.createNode(context.Background(), n); err != nil {
		e.t.Fatalf("creating node %s: %v", n.Name, err)
	}
}

func (e *env) patchNode(name, patch string) {
	e.t.Helper()
	if _, err := e.c.Resource(nodesM).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("patching node %s: %v", name, err)
	}
}

// pod is a one-container pod asking for cpu and memory ("" for none).
func pod(name, cpu, mem string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: req},
		}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func (e *env) createPod(ctx context.Context, p *corev1.Pod) error {
	_, err := e.c.Resource(podsM).Namespace(p.Namespace).Create(ctx, toUnstructured(e.t, p, "v1", "Pod"), metav1.CreateOptions{})
	return err
}

func (e *env) addPod(p *corev1.Pod) {
	e.t.Helper()
	if err := e.createPod(context.Background(), p); err != nil {
		e.t.Fatalf("creating pod %s: %v", p.Name, err)
	}
}

func (e *env) getPod(name string) *corev1.Pod {
	e.t.Helper()
	u, err := e.c.Resource(podsM).Namespace("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("getting pod %s: %v", name, err)
	}
	return fromUnstructured[corev1.Pod](e.t, u)
}

func (e *env) listPods() []*corev1.Pod {
	e.t.Helper()
	var out []*corev1.Pod
	opts := metav1.ListOptions{Limit: 1000}
	for {
		l, err := e.c.Resource(podsM).List(context.Background(), opts)
		if err != nil {
			e.t.Fatal(err)
		}
		for i := range l.Items {
			out = append(out, fromUnstructured[corev1.Pod](e.t, &l.Items[i]))
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out
		}
	}
}

// events lists the events about a pod.
func (e *env) events(podName string) []*corev1.Event {
	e.t.Helper()
	l, err := e.c.Resource(eventsM).Namespace("default").List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + podName,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*corev1.Event
	for i := range l.Items {
		out = append(out, fromUnstructured[corev1.Event](e.t, &l.Items[i]))
	}
	return out
}

// eventually polls cond until it returns nil, failing the test with its
// last error at the deadline.
func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitBound waits until the pod is bound and returns its node.
func (e *env) waitBound(name string) string {
	e.t.Helper()
	var node string
	eventually(e.t, 20*time.Second, func() error {
		node = e.getPod(name).Spec.NodeName
		if node == "" {
			return fmt.Errorf("pod %s is not bound", name)
		}
		return nil
	})
	return node
}

// waitUnschedulable waits until the pod has PodScheduled=False and returns
// the condition's message.
func (e *env) waitUnschedulable(name string) string {
	e.t.Helper()
	var msg string
	eventually(e.t, 20*time.Second, func() error {
		p := e.getPod(name)
		if p.Spec.NodeName != "" {
			e.t.Fatalf("pod %s was bound to %s", name, p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				msg = c.Message
				return nil
			}
		}
		return errors.New("no PodScheduled=False condition yet")
	})
	return msg
}

// fastConfig retries quickly, so tests wait less.
func fastConfig() scheduler.Config {
	return scheduler.Config{InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, RetryInterval: 2 * time.Second}
}
