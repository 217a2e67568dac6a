package scheduler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// benchSnapshot is n nodes with 10 pods each, from 100 owners.
func benchSnapshot(n int) *Snapshot {
	var nodes []*corev1.Node
	var pods []*corev1.Pod
	for i := range n {
		name := fmt.Sprintf("node-%05d", i)
		nodes = append(nodes, readyNode(name, "4", "16Gi", 110))
		for j := range 10 {
			pods = append(pods, benchPod(fmt.Sprintf("p-%d-%d", i, j), (i*10+j)%100, name))
		}
	}
	return NewSnapshot(nodes, pods)
}

func benchPod(name string, owner int, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name),
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: fmt.Sprint(owner), UID: types.UID(fmt.Sprintf("owner-%d", owner)), Controller: new(true)}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
		}}}}},
	}
}

// BenchmarkSchedule is one decision over 1,000 and 5,000 nodes with 10
// pods each: with the adaptive share of nodes to score (420 of 1,000, 500
// of 5,000), and scoring every node.
func BenchmarkSchedule(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		snap := benchSnapshot(n)
		pod := NewPodInfo(benchPod("new", 7, ""))
		for _, pct := range []int{0, 100} {
			name := fmt.Sprintf("nodes=%d/score=adaptive", n)
			if pct == 100 {
				name = fmt.Sprintf("nodes=%d/score=all", n)
			}
			alg := &Algorithm{Filters: DefaultFilters(), Scorers: DefaultScorers(), PercentageOfNodesToScore: pct}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				start := 0
				for b.Loop() {
					snap.Start = start
					node, _, examined := alg.schedule(pod, snap)
					if node == "" {
						b.Fatal("no node")
					}
					start = (start + examined) % n
				}
			})
		}
	}
}
