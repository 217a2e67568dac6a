package scheduler

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Algorithm is a chain of filters, then weighted scorers. It holds no
// state: one Algorithm may decide for many pods at once.
type Algorithm struct {
	Filters []Filter
	Scorers []WeightedScorer
	// PercentageOfNodesToScore is kube-scheduler's setting of that name:
	// filtering stops once this share of the nodes (but at least 100) is
	// found feasible, and only those are scored. 0 means kube-scheduler's
	// adaptive default: 50% less 1% per 125 nodes, at least 5% (all of
	// up to 100 nodes, 420 of 1,000, 500 of 5,000). 100 scores every node.
	PercentageOfNodesToScore int
}

// Bounds of the adaptive share, as kube-scheduler's.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// DefaultAlgorithm is what Schedule runs: DefaultFilters, then
// DefaultScorers, with the adaptive share of nodes to score.
func DefaultAlgorithm() *Algorithm {
	return &Algorithm{Filters: DefaultFilters(), Scorers: DefaultScorers()}
}

var defaultAlgorithm = DefaultAlgorithm()

// Schedule picks a node for pod from snap with the default algorithm: ""
// and a diagnosis saying why no node would do, when none would. It reads
// snap and the pod and changes neither, and the same snapshot always gives
// the same answer.
func Schedule(pod *corev1.Pod, snap *Snapshot) (node string, diag *Diagnosis) {
	return defaultAlgorithm.Schedule(pod, snap)
}

// Schedule picks a node for pod from snap; see the package function.
func (a *Algorithm) Schedule(pod *corev1.Pod, snap *Snapshot) (string, *Diagnosis) {
	node, diag, _ := a.schedule(NewPodInfo(pod), snap)
	return node, diag
}

// nodesToFind is how many feasible nodes are enough, of n.
func (a *Algorithm) nodesToFind(n int) int {
	if n < minFeasibleNodesToFind {
		return n
	}
	pct := a.PercentageOfNodesToScore
	if pct <= 0 {
		pct = max(50-n/125, minFeasibleNodesPercentageToFind)
	}
	return min(n, max(n*pct/100, minFeasibleNodesToFind))
}

// schedule filters nodes from snap.Start on (wrapping around) until
// enough are feasible, scores those and returns the best; ties go to the
// first examined. It also returns how many nodes it examined, for the
// runner to start the next decision after them. Only when no node is
// feasible does it build a Diagnosis, in a second pass over every node
// (the filters are pure), so a decision that finds a node allocates
// nothing for rejections.
func (a *Algorithm) schedule(p *PodInfo, snap *Snapshot) (string, *Diagnosis, int) {
	n := len(snap.Nodes)
	if n == 0 {
		return "", &Diagnosis{}, 0
	}
	start := snap.Start % n
	if start < 0 {
		start = 0
	}
	want := a.nodesToFind(n)
	feasible := make([]*NodeInfo, 0, want)
	examined := 0
	for ; examined < n && len(feasible) < want; examined++ {
		ni := snap.Nodes[(start+examined)%n]
		if _, reasons := a.filter(p, ni); reasons == nil {
			feasible = append(feasible, ni)
		}
	}
	switch len(feasible) {
	case 0:
		diag := &Diagnosis{NumNodes: n, NodeReasons: make(map[string][]string, n), Filters: map[string]int{}}
		for _, ni := range snap.Nodes {
			filter, reasons := a.filter(p, ni)
			diag.NodeReasons[ni.Name()] = reasons
			diag.Filters[filter]++
		}
		return "", diag, examined
	case 1:
		return feasible[0].Name(), nil, examined
	}
	return feasible[a.best(p, feasible)].Name(), nil, examined
}

// filter runs the filters in order and stops at the first that rejects.
func (a *Algorithm) filter(p *PodInfo, n *NodeInfo) (string, []string) {
	for _, f := range a.Filters {
		if reasons := f.Filter(p, n); len(reasons) > 0 {
			return f.Name(), reasons
		}
	}
	return "", nil
}

// best returns the index of the feasible node with the highest weighted
// score.
func (a *Algorithm) best(p *PodInfo, feasible []*NodeInfo) int {
	total := make([]int64, len(feasible))
	raw := make([]int64, len(feasible))
	for _, s := range a.Scorers {
		for i, n := range feasible {
			raw[i] = s.Score(p, n)
		}
		if nz, ok := s.Scorer.(Normalizer); ok {
			nz.Normalize(raw)
		}
		for i := range raw {
			total[i] += raw[i] * s.Weight
		}
	}
	best := 0
	for i := range total {
		if total[i] > total[best] {
			best = i
		}
	}
	return best
}

// Diagnosis says why a pod fits no node.
type Diagnosis struct {
	// NumNodes is how many nodes were considered.
	NumNodes int
	// NodeReasons maps each node to the reasons the first filter that
	// rejected it gave.
	NodeReasons map[string][]string
	// Filters counts the nodes each filter rejected, by filter name.
	Filters map[string]int
}

// MessageNoNodes is kube-scheduler's message when there are no nodes.
const MessageNoNodes = "no nodes available to schedule pods"

// Message is kube-scheduler's summary: "0/3 nodes are available: 1 node(s)
// didn't match Pod's node affinity/selector, 2 Insufficient cpu." — the
// number of nodes per reason, sorted as strings, as kube-scheduler sorts
// them. A node rejected for two resources counts under both.
func (d *Diagnosis) Message() string {
	if d == nil || d.NumNodes == 0 {
		return MessageNoNodes
	}
	counts := map[string]int{}
	for _, reasons := range d.NodeReasons {
		for _, r := range reasons {
			counts[r]++
		}
	}
	parts := make([]string, 0, len(counts))
	for r, c := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", c, r))
	}
	sort.Strings(parts)
	msg := fmt.Sprintf("0/%d nodes are available", d.NumNodes)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, ", ")
	}
	return msg + "."
}

// Error makes a Diagnosis an error, with Message as its text.
func (d *Diagnosis) Error() string { return d.Message() }
