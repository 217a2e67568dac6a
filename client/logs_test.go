package client_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
	"github.com/droverhq/drover/node/agent/agenttest"
)

// podEnv is an API server with one hollow node running pod "web" (one
// container, "main") whose log holds two lines.
type podEnv struct {
	srv  *apiservertest.Server
	node *agenttest.Node
	c    *client.Client
	pod  *corev1.Pod
}

const (
	line1 = "2026-01-02T15:04:05.000000001Z stdout F first line"
	line2 = "2026-01-02T15:04:06.000000001Z stderr F second line"
)

func sleeper(name string, containers ...string) *corev1.Pod {
	if len(containers) == 0 {
		containers = []string{"main"}
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox", Command: []string{"sleep", "1d"}})
	}
	return p
}

func newPodEnv(t *testing.T) *podEnv {
	t.Helper()
	srv := apiservertest.Start(t)
	n := agenttest.Start(t, srv)
	c, err := client.New(restConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	p := n.RunPod(t, sleeper("web"))
	n.WriteLog(t, p, "main", 0, line1, line2)
	return &podEnv{srv: srv, node: n, c: c, pod: p}
}

func readLogs(t *testing.T, c *client.Client, pod string, opts *corev1.PodLogOptions) (string, error) {
	t.Helper()
	rc, err := c.PodLogs(context.Background(), "default", pod, opts)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func ptr[T any](v T) *T { return &v }

func TestPodLogs(t *testing.T) {
	e := newPodEnv(t)
	since := metav1.NewTime(time.Date(2026, 1, 2, 15, 4, 6, 0, time.UTC))
	for _, tc := range []struct {
		name string
		opts *corev1.PodLogOptions
		want string
	}{
		{"all", nil, "first line\nsecond line\n"},
		{"container named", &corev1.PodLogOptions{Container: "main"}, "first line\nsecond line\n"},
		{"tail", &corev1.PodLogOptions{TailLines: ptr(int64(1))}, "second line\n"},
		{"tail 0", &corev1.PodLogOptions{TailLines: ptr(int64(0))}, ""},
		{"timestamps", &corev1.PodLogOptions{Timestamps: true}, "2026-01-02T15:04:05.000000001Z first line\n2026-01-02T15:04:06.000000001Z second line\n"},
		{"since time", &corev1.PodLogOptions{SinceTime: &since}, "second line\n"},
		{"limit bytes", &corev1.PodLogOptions{LimitBytes: ptr(int64(5))}, "first"},
	} {
		got, err := readLogs(t, e.c, "web", tc.opts)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}

	// Errors are StatusErrors, worded by the server.
	for _, tc := range []struct {
		pod    string
		opts   *corev1.PodLogOptions
		reason metav1.StatusReason
		msg    string
	}{
		{"web", &corev1.PodLogOptions{Previous: true}, metav1.StatusReasonBadRequest, `previous terminated container "main" in pod "web" not found`},
		{"web", &corev1.PodLogOptions{Container: "nope"}, metav1.StatusReasonBadRequest, "container nope is not valid for pod web"},
		{"nope", nil, metav1.StatusReasonNotFound, `pods "nope" not found`},
	} {
		_, err := readLogs(t, e.c, tc.pod, tc.opts)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Status.Reason != tc.reason || se.Error() != tc.msg {
			t.Errorf("%s %+v: %v, want %s %q", tc.pod, tc.opts, err, tc.reason, tc.msg)
		}
	}
	// sinceSeconds counts back from the node's clock.
	e.node.WriteLog(t, e.pod, "main", 0, time.Now().UTC().Format(time.RFC3339Nano)+" stdout F just now")
	if got, err := readLogs(t, e.c, "web", &corev1.PodLogOptions{SinceSeconds: ptr(int64(3600))}); err != nil || got != "just now\n" {
		t.Errorf("since seconds: %q %v", got, err)
	}
	if _, err := e.c.PodLogs(context.Background(), "", "web", nil); err == nil {
		t.Error("logs without a namespace")
	}
}

func TestPodLogsPrevious(t *testing.T) {
	e := newPodEnv(t)
	// A second attempt's log makes the first the previous one.
	e.node.WriteLog(t, e.pod, "main", 1, "2026-01-02T15:05:00Z stdout F after the restart")
	if got, err := readLogs(t, e.c, "web", &corev1.PodLogOptions{Previous: true}); err != nil || got != "first line\nsecond line\n" {
		t.Errorf("previous: %q %v", got, err)
	}
	if got, err := readLogs(t, e.c, "web", nil); err != nil || got != "after the restart\n" {
		t.Errorf("current: %q %v", got, err)
	}
}

// syncBuffer collects what a goroutine reads, for polling.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPodLogsFollow(t *testing.T) {
	e := newPodEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := e.c.PodLogs(ctx, "default", "web", &corev1.PodLogOptions{Follow: true, TailLines: ptr(int64(1))})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got syncBuffer
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(&got, rc)
		copied <- err
	}()
	waitFor(t, 10*time.Second, "the existing line", func() bool { return got.String() == "second line\n" })
	e.node.WriteLog(t, e.pod, "main", 0, "2026-01-02T15:04:07Z stdout F third line")
	waitFor(t, 10*time.Second, "the appended line", func() bool { return got.String() == "second line\nthird line\n" })
	cancel()
	select {
	case err := <-copied:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("a canceled follow ends with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("canceling the context does not end a follow")
	}
}
