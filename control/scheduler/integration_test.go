package scheduler_test

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestBindsPods(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("n1", "4", "8Gi", 110))
	e.addNode(hollowNode("n2", "4", "8Gi", 110))
	e.start(fastConfig())
	e.addPod(pod("p1", "100m", "128Mi"))
	e.addPod(pod("p2", "", ""))
	n1, n2 := e.waitBound("p1"), e.waitBound("p2")
	if n1 == n2 {
		t.Errorf("both pods went to %s; least-allocated should spread them", n1)
	}
}

func TestFitsNowhereThenNodeAdded(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("small", "1", "1Gi", 110, func(n *corev1.Node) { n.Labels["disk"] = "ssd" }))
	e.addNode(hollowNode("labelled", "8", "16Gi", 110, func(n *corev1.Node) { n.Labels["disk"] = "hdd" }))
	e.start(fastConfig())
	e.addPod(pod("big", "2", "1Gi", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }))
	msg := e.waitUnschedulable("big")
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector."
	if msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
	var evs []*corev1.Event
	eventually(t, 10*time.Second, func() error {
		evs = e.events("big")
		if len(evs) == 0 {
			return errors.New("no event yet")
		}
		return nil
	})
	ev := evs[0]
	if len(evs) != 1 || ev.Type != corev1.EventTypeWarning || ev.Reason != "FailedScheduling" || ev.Message != want ||
		ev.Source.Component != "default-scheduler" || ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.UID == "" {
		t.Fatalf("events: %+v", evs)
	}
	e.addNode(hollowNode("fast", "4", "8Gi", 110, func(n *corev1.Node) { n.Labels["disk"] = "ssd" }))
	if node := e.waitBound("big"); node != "fast" {
		t.Fatalf("bound to %s, want fast", node)
	}
}
