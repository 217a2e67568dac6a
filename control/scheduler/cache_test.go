package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func nodeByName(t *testing.T, s *Snapshot, name string) *NodeInfo {
	t.Helper()
	for _, n := range s.Nodes {
		if n.Name() == name {
			return n
		}
	}
	t.Fatalf("node %s not in the snapshot", name)
	return nil
}

func TestCacheAssumeConfirmForget(t *testing.T) {
	c := newCache()
	c.setNode(readyNode("a", "2", "2Gi", 10))
	c.setNode(readyNode("b", "2", "2Gi", 10))
	p := newPod("p", "500m", "1Gi")
	before := c.snapshot()
	if !c.assume(NewPodInfo(p), "a") {
		t.Fatal("assume refused")
	}
	after := c.snapshot()
	if got := nodeByName(t, after, "a").Requested.MilliCPU; got != 500 {
		t.Errorf("assumed: a requests %dm, want 500m", got)
	}
	if got := nodeByName(t, before, "a").Requested.MilliCPU; got != 0 {
		t.Errorf("an earlier snapshot changed: %dm", got)
	}
	if !c.isAssumed(p.UID) {
		t.Error("not assumed")
	}
	// The watch shows it bound there: confirmed, counted once.
	bound := p.DeepCopy()
	bound.Spec.NodeName = "a"
	c.addPod(bound)
	c.addPod(bound)
	if c.isAssumed(p.UID) {
		t.Error("still assumed after the watch showed it bound")
	}
	if n := nodeByName(t, c.snapshot(), "a"); n.Pods != 1 || n.Requested.MilliCPU != 500 {
		t.Errorf("after confirm: %d pods, %dm", n.Pods, n.Requested.MilliCPU)
	}
	// A late bind failure does not take back a confirmed pod.
	c.forget(p.UID)
	if n := nodeByName(t, c.snapshot(), "a"); n.Pods != 1 {
		t.Errorf("forget removed a confirmed pod")
	}
	// Nor may a pod the watch shows bound be assumed elsewhere.
	if c.assume(NewPodInfo(p), "b") {
		t.Error("assumed a bound pod")
	}

	q := newPod("q", "1", "")
	c.assume(NewPodInfo(q), "b")
	c.forget(q.UID)
	if n := nodeByName(t, c.snapshot(), "b"); n.Pods != 0 || n.Requested.MilliCPU != 0 {
		t.Errorf("after forget: %d pods, %dm", n.Pods, n.Requested.MilliCPU)
	}
}

func TestCacheBoundElsewhere(t *testing.T) {
	c := newCache()
	c.setNode(readyNode("a", "2", "2Gi", 10))
	c.setNode(readyNode("b", "2", "2Gi", 10))
	p := newPod("p", "1", "")
	c.assume(NewPodInfo(p), "a")
	// Someone else bound it to b first.
	bound := p.DeepCopy()
	bound.Spec.NodeName = "b"
	c.addPod(bound)
	s := c.snapshot()
	if a, b := nodeByName(t, s, "a"), nodeByName(t, s, "b"); a.Pods != 0 || b.Pods != 1 {
		t.Errorf("a has %d pods, b %d; want 0 and 1", a.Pods, b.Pods)
	}
}

func TestCacheNodesAndPodsInAnyOrder(t *testing.T) {
	c := newCache()
	// Pods bound to a node arrive before the node.
	c.addPod(newPod("x", "1", "", on("late"), hostPort(80, "", ""), ownedBy("rs")))
	c.setNode(readyNode("early", "2", "2Gi", 10))
	c.setNode(readyNode("late", "2", "2Gi", 10))
	n := nodeByName(t, c.snapshot(), "late")
	if n.Pods != 1 || n.Requested.MilliCPU != 1000 || n.Owners["rs"] != 1 || len(n.UsedPorts) != 1 {
		t.Errorf("late node: %+v", n)
	}
	// Deleting a node keeps its pods; they count again if it returns.
	c.deleteNode("late")
	if names := c.nodeNames(); !slices.Equal(names, []string{"early"}) {
		t.Errorf("nodes %v", names)
	}
	c.setNode(readyNode("late", "2", "2Gi", 10))
	if n := nodeByName(t, c.snapshot(), "late"); n.Pods != 1 {
		t.Errorf("returning node has %d pods", n.Pods)
	}
	if !c.removePod("uid-x") || c.removePod("uid-x") {
		t.Error("removePod: want true once, then false")
	}
	n = nodeByName(t, c.snapshot(), "late")
	if n.Pods != 0 || n.Requested.MilliCPU != 0 || len(n.Owners) != 0 || len(n.UsedPorts) != 0 {
		t.Errorf("after removal: %+v", n)
	}
}

func TestCacheSnapshotOrderAndIsolation(t *testing.T) {
	c := newCache()
	for _, name := range []string{"c", "a", "b"} {
		c.setNode(readyNode(name, "2", "2Gi", 10))
	}
	s1 := c.snapshot()
	c.setNode(readyNode("aa", "2", "2Gi", 10))
	c.deleteNode("c")
	c.setNode(readyNode("b", "4", "2Gi", 10))
	s2 := c.snapshot()
	names := func(s *Snapshot) []string {
		var out []string
		for _, n := range s.Nodes {
			out = append(out, n.Name())
		}
		return out
	}
	if got := names(s1); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("first snapshot: %v", got)
	}
	if got := names(s2); !slices.Equal(got, []string{"a", "aa", "b"}) {
		t.Errorf("second snapshot: %v", got)
	}
	if nodeByName(t, s1, "b").Allocatable.MilliCPU != 2000 || nodeByName(t, s2, "b").Allocatable.MilliCPU != 4000 {
		t.Error("an update showed in the earlier snapshot, or not in the later one")
	}
}

func TestNodeChangeMatters(t *testing.T) {
	base := readyNode("n", "2", "2Gi", 10)
	cases := []struct {
		name   string
		mutate func(*corev1.Node)
		want   bool
	}{
		{"heartbeat only", func(n *corev1.Node) { n.ResourceVersion = "99"; n.Status.Conditions[0].Reason = "still ready" }, false},
		{"became not ready", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }, true},
		{"cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }, true},
		{"label", func(n *corev1.Node) { n.Labels["disk"] = "ssd" }, true},
		{"taint", withTaints(corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule}), true},
		{"allocatable", func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("4") }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := newCache()
			cache.setNode(base)
			next := base.DeepCopy()
			c.mutate(next)
			if got := cache.setNode(next); got != c.want {
				t.Errorf("matters = %v, want %v", got, c.want)
			}
		})
	}
}
