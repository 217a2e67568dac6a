package scheduler

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// scores runs one scorer over a snapshot's nodes, normalized, as the
// algorithm does.
func scores(s Scorer, p *corev1.Pod, snap *Snapshot) []int64 {
	pi := NewPodInfo(p)
	out := make([]int64, len(snap.Nodes))
	for i, n := range snap.Nodes {
		out[i] = s.Score(pi, n)
	}
	if nz, ok := s.(Normalizer); ok {
		nz.Normalize(out)
	}
	return out
}

func TestScorers(t *testing.T) {
	preferred := func(terms ...corev1.PreferredSchedulingTerm) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: terms}}
		}
	}
	soft := func(key string) corev1.Taint {
		return corev1.Taint{Key: key, Effect: corev1.TaintEffectPreferNoSchedule}
	}
	cases := []struct {
		name   string
		scorer Scorer
		pod    *corev1.Pod
		nodes  []*corev1.Node
		pods   []*corev1.Pod
		want   []int64
	}{
		{
			name: "least allocated: the share left free, cpu and memory averaged", scorer: LeastAllocated{},
			pod:   newPod("p", "1", "1Gi"),
			nodes: []*corev1.Node{readyNode("a", "4", "4Gi", 10), readyNode("b", "2", "8Gi", 10), readyNode("c", "1", "1Gi", 10)},
			pods:  []*corev1.Pod{newPod("x", "1", "1Gi", on("a"))},
			// a: cpu (4-2)/4=50, mem (4-2)/4=50; b: cpu 50, mem 87; c: 0, 0.
			want: []int64{50, 68, 0},
		},
		{
			name: "least allocated: no requests count as 100m and 200Mi", scorer: LeastAllocated{},
			pod:   newPod("p", "", ""),
			nodes: []*corev1.Node{readyNode("a", "1", "2000Mi", 10), readyNode("b", "1", "2000Mi", 10)},
			pods:  []*corev1.Pod{newPod("x", "", "", on("b"))},
			// a: cpu 90, mem 90; b: cpu 80, mem 80.
			want: []int64{90, 80},
		},
		{
			name: "least allocated: more than the node has scores 0", scorer: LeastAllocated{},
			pod:   newPod("p", "8", "1Gi"),
			nodes: []*corev1.Node{readyNode("a", "4", "2Gi", 10)},
			want:  []int64{25},
		},
		{
			name: "owner spread: fewer siblings is better", scorer: OwnerSpread{},
			pod:   newPod("p", "", "", ownedBy("rs")),
			nodes: []*corev1.Node{readyNode("a", "4", "4Gi", 10), readyNode("b", "4", "4Gi", 10), readyNode("c", "4", "4Gi", 10)},
			pods: []*corev1.Pod{
				newPod("x1", "", "", on("a"), ownedBy("rs")), newPod("x2", "", "", on("a"), ownedBy("rs")),
				newPod("x3", "", "", on("b"), ownedBy("rs")), newPod("y", "", "", on("c"), ownedBy("other")),
			},
			want: []int64{0, 50, 100},
		},
		{
			name: "owner spread: no siblings anywhere", scorer: OwnerSpread{},
			pod:   newPod("p", "", "", ownedBy("rs")),
			nodes: []*corev1.Node{readyNode("a", "4", "4Gi", 10), readyNode("b", "4", "4Gi", 10)},
			want:  []int64{100, 100},
		},
		{
			name: "owner spread: a pod without an owner", scorer: OwnerSpread{},
			pod:   newPod("p", "", ""),
			nodes: []*corev1.Node{readyNode("a", "4", "4Gi", 10), readyNode("b", "4", "4Gi", 10)},
			pods:  []*corev1.Pod{newPod("x", "", "", on("a"), ownedBy("rs"))},
			want:  []int64{100, 100},
		},
		{
			name: "preferred affinity: matched weights, relative to the best", scorer: PreferredNodeAffinity{},
			pod: newPod("p", "", "", preferred(
				corev1.PreferredSchedulingTerm{Weight: 80, Preference: term(expr("disk", corev1.NodeSelectorOpIn, "ssd"))},
				corev1.PreferredSchedulingTerm{Weight: 20, Preference: term(expr("zone", corev1.NodeSelectorOpIn, "a"))},
			)),
			nodes: []*corev1.Node{
				readyNode("a", "4", "4Gi", 10, withLabels("disk", "ssd", "zone", "a")),
				readyNode("b", "4", "4Gi", 10, withLabels("disk", "ssd")),
				readyNode("c", "4", "4Gi", 10, withLabels("zone", "a")),
				readyNode("d", "4", "4Gi", 10),
			},
			want: []int64{100, 80, 20, 0},
		},
		{
			name: "preferred affinity: none asked", scorer: PreferredNodeAffinity{},
			pod:   newPod("p", "", ""),
			nodes: []*corev1.Node{readyNode("a", "4", "4Gi", 10, withLabels("disk", "ssd")), readyNode("b", "4", "4Gi", 10)},
			want:  []int64{0, 0},
		},
		{
			name: "PreferNoSchedule taints: fewer untolerated is better", scorer: TaintPreferNoSchedule{},
			pod: newPod("p", "", "", withTolerations(corev1.Toleration{Key: "tolerated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectPreferNoSchedule})),
			nodes: []*corev1.Node{
				readyNode("a", "4", "4Gi", 10, withTaints(soft("x"), soft("y"))),
				readyNode("b", "4", "4Gi", 10, withTaints(soft("x"), soft("tolerated"))),
				readyNode("c", "4", "4Gi", 10, withTaints(corev1.Taint{Key: "hard", Effect: corev1.TaintEffectNoSchedule})),
			},
			want: []int64{0, 50, 100},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := scores(c.scorer, c.pod, NewSnapshot(c.nodes, c.pods))
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.scorer.Name(), got, c.want)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	cordoned := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	cases := []struct {
		name  string
		pod   *corev1.Pod
		nodes []*corev1.Node
		pods  []*corev1.Pod
		want  string // node, or the diagnosis message
	}{
		{
			name:  "the least allocated node",
			pod:   newPod("p", "500m", "512Mi"),
			nodes: []*corev1.Node{readyNode("a", "2", "2Gi", 10), readyNode("b", "2", "2Gi", 10), readyNode("c", "2", "2Gi", 10)},
			pods:  []*corev1.Pod{newPod("x", "1", "1Gi", on("a")), newPod("y", "500m", "512Mi", on("c"))},
			want:  "b",
		},
		{
			name:  "ties go to the first node by name",
			pod:   newPod("p", "", ""),
			nodes: []*corev1.Node{readyNode("c", "2", "2Gi", 10), readyNode("a", "2", "2Gi", 10), readyNode("b", "2", "2Gi", 10)},
			want:  "a",
		},
		{
			name:  "the only node that fits",
			pod:   newPod("p", "1500m", ""),
			nodes: []*corev1.Node{readyNode("a", "1", "2Gi", 10), readyNode("b", "2", "2Gi", 10), readyNode("c", "1", "2Gi", 10)},
			want:  "b",
		},
		{
			name:  "siblings spread even onto a fuller node",
			pod:   newPod("p", "100m", "128Mi", ownedBy("rs")),
			nodes: []*corev1.Node{readyNode("big", "8", "16Gi", 110), readyNode("small", "2", "4Gi", 110)},
			pods:  []*corev1.Pod{newPod("x", "100m", "128Mi", on("big"), ownedBy("rs")), newPod("y", "1", "1Gi", on("small"))},
			// big: least allocated 97, spread 0 -> 97; small: 58 + 2*100 -> 258.
			want: "small",
		},
		{
			name: "preferred affinity outweighs free room",
			pod: newPod("p", "", "", func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 10, Preference: term(expr("disk", corev1.NodeSelectorOpIn, "ssd"))},
				}}}
			}),
			nodes: []*corev1.Node{readyNode("a", "8", "16Gi", 110), readyNode("b", "2", "2Gi", 110, withLabels("disk", "ssd"))},
			want:  "b",
		},
		{
			name: "the example from kube-scheduler's documentation",
			pod:  newPod("p", "2", "", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }),
			nodes: []*corev1.Node{
				readyNode("a", "1", "2Gi", 10, withLabels("disk", "ssd")),
				readyNode("b", "1", "2Gi", 10, withLabels("disk", "ssd")),
				readyNode("c", "8", "2Gi", 10),
			},
			want: "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.",
		},
		{
			name: "every filter's reason, counted and sorted",
			pod:  newPod("p", "2", "2Gi", hostPort(80, corev1.ProtocolTCP, "")),
			nodes: []*corev1.Node{
				readyNode("cordoned", "8", "8Gi", 10, cordoned),
				readyNode("down", "8", "8Gi", 10, func(n *corev1.Node) { n.Status.Conditions = nil }),
				readyNode("tainted", "8", "8Gi", 10, withTaints(corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})),
				readyNode("port", "8", "8Gi", 10),
				readyNode("small1", "1", "1Gi", 10),
				readyNode("small2", "1", "8Gi", 10),
			},
			pods: []*corev1.Pod{newPod("x", "", "", on("port"), hostPort(80, corev1.ProtocolTCP, ""))},
			want: "0/6 nodes are available: 1 Insufficient memory, 1 node(s) didn't have free ports for the requested pod ports, " +
				"1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were not ready, 1 node(s) were unschedulable, 2 Insufficient cpu.",
		},
		{
			name: "no nodes",
			pod:  newPod("p", "", ""),
			want: "no nodes available to schedule pods",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := NewSnapshot(c.nodes, c.pods)
			node, diag := Schedule(c.pod, snap)
			got := node
			if node == "" {
				got = diag.Message()
			} else if diag != nil {
				t.Errorf("a diagnosis with a node: %+v", diag)
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestDiagnosis(t *testing.T) {
	snap := NewSnapshot([]*corev1.Node{
		readyNode("a", "1", "1Gi", 10), readyNode("b", "1", "1Gi", 10, withLabels("disk", "ssd")),
	}, nil)
	_, diag := Schedule(newPod("p", "2", "2Gi", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }), snap)
	if diag == nil {
		t.Fatal("no diagnosis")
	}
	if want := []string{ReasonNodeAffinity}; !slices.Equal(diag.NodeReasons["a"], want) {
		t.Errorf("a: %q", diag.NodeReasons["a"])
	}
	if want := []string{ReasonInsufficientCPU, ReasonInsufficientMem}; !slices.Equal(diag.NodeReasons["b"], want) {
		t.Errorf("b: %q", diag.NodeReasons["b"])
	}
	if diag.Filters["NodeAffinity"] != 1 || diag.Filters["NodeResourcesFit"] != 1 || len(diag.Filters) != 2 {
		t.Errorf("filters: %v", diag.Filters)
	}
	// A node short of two resources counts under both.
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector."
	if diag.Message() != want || diag.Error() != want {
		t.Errorf("message %q, want %q", diag.Message(), want)
	}
	// Counts sort as strings, as kube-scheduler sorts them.
	d := &Diagnosis{NumNodes: 12, NodeReasons: map[string][]string{}}
	for i := range 12 {
		r := ReasonInsufficientCPU
		if i < 2 {
			r = ReasonUnschedulable
		}
		d.NodeReasons[string(rune('a'+i))] = []string{r}
	}
	if want := "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."; d.Message() != want {
		t.Errorf("message %q, want %q", d.Message(), want)
	}
}

func TestScheduleDoesNotChangeTheSnapshot(t *testing.T) {
	snap := NewSnapshot([]*corev1.Node{readyNode("a", "2", "2Gi", 10), readyNode("b", "2", "2Gi", 10)},
		[]*corev1.Pod{newPod("x", "1", "1Gi", on("a"), ownedBy("rs"))})
	before := *snap.Nodes[0]
	for range 3 {
		if node, _ := Schedule(newPod("p", "500m", "", ownedBy("rs")), snap); node != "b" {
			t.Fatalf("got %q, want b every time", node)
		}
	}
	after := *snap.Nodes[0]
	if after.Requested != before.Requested || after.Pods != before.Pods || after.Owners["rs"] != 1 {
		t.Errorf("the snapshot changed: %+v -> %+v", before, after)
	}
}

func TestResponsible(t *testing.T) {
	for name, want := range map[string]bool{"": true, "default-scheduler": true, "my-scheduler": false} {
		p := newPod("p", "", "", func(p *corev1.Pod) { p.Spec.SchedulerName = name })
		if Responsible(p) != want {
			t.Errorf("schedulerName %q: responsible = %v", name, !want)
		}
	}
}

func TestNodesToFind(t *testing.T) {
	cases := []struct{ pct, nodes, want int }{
		{0, 0, 0}, {0, 50, 50}, {0, 100, 100}, {0, 150, 100}, {0, 1000, 420}, {0, 5000, 500}, {0, 20000, 1000},
		{100, 1000, 1000}, {30, 1000, 300}, {1, 1000, 100}, {1, 80, 80},
	}
	for _, c := range cases {
		a := &Algorithm{PercentageOfNodesToScore: c.pct}
		if got := a.nodesToFind(c.nodes); got != c.want {
			t.Errorf("%d%% of %d nodes: %d, want %d", c.pct, c.nodes, got, c.want)
		}
	}
}

func TestScheduleSamplesFromStart(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 200 {
		nodes = append(nodes, readyNode(fmt.Sprintf("n%03d", i), "2", "2Gi", 10))
	}
	snap := NewSnapshot(nodes, nil)
	alg := DefaultAlgorithm()
	p := NewPodInfo(newPod("p", "1", ""))
	// 200 nodes: 100 are enough. All score the same: the first examined
	// wins, and the next decision starts after the 100 examined.
	snap.Start = 150
	node, diag, examined := alg.schedule(p, snap)
	if node != "n150" || diag != nil || examined != 100 {
		t.Fatalf("from 150: %q %v examined %d; want n150, 100 examined", node, diag, examined)
	}
	// A node that wins on score outside the window is not seen...
	better := NewSnapshot(append(slices.Clone(nodes), readyNode("n199x", "64", "64Gi", 10)), nil)
	better.Start = 0
	if node, _, _ := alg.schedule(p, better); node == "n199x" {
		t.Fatal("scored a node beyond the first 100 feasible")
	}
	// ...unless every node is scored.
	all := &Algorithm{Filters: DefaultFilters(), Scorers: DefaultScorers(), PercentageOfNodesToScore: 100}
	if node, _, examined := all.schedule(p, better); node != "n199x" || examined != 201 {
		t.Fatalf("scoring all: %q, %d examined", node, examined)
	}
	// Nothing fits: every node examined, every node in the diagnosis.
	snap.Start = 73
	node, diag, examined = alg.schedule(NewPodInfo(newPod("big", "3", "")), snap)
	if node != "" || examined != 200 || len(diag.NodeReasons) != 200 || diag.Message() != "0/200 nodes are available: 200 Insufficient cpu." {
		t.Fatalf("nothing fits: %q, %d examined, %q", node, examined, diag.Message())
	}
}
