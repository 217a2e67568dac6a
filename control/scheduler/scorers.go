package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// MaxNodeScore is the best score a scorer gives a node, as in
// kube-scheduler.
const MaxNodeScore = 100

// Scorer ranks a node that passed the filters for a pod. Score returns a
// raw score; a Scorer that also implements Normalizer gets the raw scores
// of all feasible nodes and maps them onto 0..MaxNodeScore, otherwise
// Score already answers in that range. Higher is better.
type Scorer interface {
	Name() string
	Score(p *PodInfo, n *NodeInfo) int64
}

// Normalizer maps raw scores, one per feasible node, onto 0..MaxNodeScore
// in place.
type Normalizer interface {
	Normalize(scores []int64)
}

// WeightedScorer is a Scorer and how much it counts in the total.
type WeightedScorer struct {
	Scorer
	Weight int64
}

// DefaultScorers are the scorers with kube-scheduler's default weights
// for the matching plugins (NodeResourcesFit 1, PodTopologySpread 2,
// NodeAffinity 2, TaintToleration 3).
func DefaultScorers() []WeightedScorer {
	return []WeightedScorer{
		{LeastAllocated{}, 1},
		{OwnerSpread{}, 2},
		{PreferredNodeAffinity{}, 2},
		{TaintPreferNoSchedule{}, 3},
	}
}

// LeastAllocated prefers the node with the most room left, as
// kube-scheduler's default NodeResourcesFit scoring: for CPU and memory,
// the share of allocatable still free once the pod is on the node,
// averaged. It counts requests with the defaults for containers that ask
// for nothing (DefaultMilliCPURequest, DefaultMemoryRequest), so pods
// without requests still spread out.
type LeastAllocated struct{}

func (LeastAllocated) Name() string { return "LeastAllocated" }

func (LeastAllocated) Score(p *PodInfo, n *NodeInfo) int64 {
	cpu := leastAllocated(n.NonZeroRequested.MilliCPU+p.NonZero.MilliCPU, n.Allocatable.MilliCPU)
	mem := leastAllocated(n.NonZeroRequested.Memory+p.NonZero.Memory, n.Allocatable.Memory)
	return (cpu + mem) / 2
}

func leastAllocated(requested, allocatable int64) int64 {
	if allocatable <= 0 || requested > allocatable {
		return 0
	}
	return (allocatable - requested) * MaxNodeScore / allocatable
}

// OwnerSpread spreads the pods of one controller (ReplicaSet, Job...)
// across nodes: the fewer of the pod's siblings a node already has, the
// better, relative to the most any feasible node has.
type OwnerSpread struct{}

func (OwnerSpread) Name() string { return "OwnerSpread" }

func (OwnerSpread) Score(p *PodInfo, n *NodeInfo) int64 {
	if p.Owner == "" {
		return 0
	}
	return int64(n.Owners[p.Owner])
}

func (OwnerSpread) Normalize(scores []int64) {
	most := maxOf(scores)
	for i, s := range scores {
		if most == 0 {
			scores[i] = MaxNodeScore
		} else {
			scores[i] = MaxNodeScore * (most - s) / most
		}
	}
}

// PreferredNodeAffinity sums the weights of the pod's preferred node
// affinity terms a node matches, relative to the best feasible node.
type PreferredNodeAffinity struct{}

func (PreferredNodeAffinity) Name() string { return "PreferredNodeAffinity" }

func (PreferredNodeAffinity) Score(p *PodInfo, n *NodeInfo) int64 {
	a := p.Pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return 0
	}
	var sum int64
	for i := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		t := &a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i]
		if t.Weight != 0 && matchesTerm(&t.Preference, n.Node) {
			sum += int64(t.Weight)
		}
	}
	return sum
}

func (PreferredNodeAffinity) Normalize(scores []int64) {
	most := maxOf(scores)
	for i, s := range scores {
		if most <= 0 {
			scores[i] = 0
		} else {
			scores[i] = MaxNodeScore * s / most
		}
	}
}

// TaintPreferNoSchedule prefers nodes with fewer PreferNoSchedule taints
// the pod does not tolerate.
type TaintPreferNoSchedule struct{}

func (TaintPreferNoSchedule) Name() string { return "TaintPreferNoSchedule" }

func (TaintPreferNoSchedule) Score(p *PodInfo, n *NodeInfo) int64 {
	var count int64
	for i := range n.Node.Spec.Taints {
		t := &n.Node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for j := range p.Pod.Spec.Tolerations {
			tol := &p.Pod.Spec.Tolerations[j]
			if (tol.Effect == "" || tol.Effect == corev1.TaintEffectPreferNoSchedule) && tol.ToleratesTaint(t) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			count++
		}
	}
	return count
}

func (TaintPreferNoSchedule) Normalize(scores []int64) {
	most := maxOf(scores)
	for i, s := range scores {
		if most == 0 {
			scores[i] = MaxNodeScore
		} else {
			scores[i] = MaxNodeScore * (most - s) / most
		}
	}
}

func maxOf(s []int64) int64 {
	var m int64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
