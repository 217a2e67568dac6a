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
}

// DefaultAlgorithm is what Schedule runs: DefaultFilters, then
// DefaultScorers.
func DefaultAlgorithm() *Algorithm {
	return &Algorithm{Filters: DefaultFilters(), Scorers: DefaultScorers()}
}

var defaultAlgorithm = DefaultAlgorithm()

// Schedule picks a node for pod from snap with the default algorithm: ""
// and a diagnosis saying why no node would do, when none would. It reads
// snap and the pod and changes neither.
func Schedule(pod *corev1.Pod, snap *Snapshot) (node string, diag *Diagnosis) {
	return defaultAlgorithm.Schedule(pod, snap)
}

// Schedule picks a node for pod from snap; see the package function.
func (a *Algorithm) Schedule(pod *corev1.Pod, snap *Snapshot) (string, *Diagnosis) {
	return a.schedule(NewPodInfo(pod), snap)
}

// schedule filters every node, scores the feasible ones and returns the
// best; ties go to the first in name order, so the same snapshot always
// gives the same answer.
func (a *Algorithm) schedule(p *PodInfo, snap *Snapshot) (string, *Diagnosis) {
	if len(snap.Nodes) == 0 {
		return "", &Diagnosis{}
	}
	feasible := make([]*NodeInfo, 0, len(snap.Nodes))
	var diag *Diagnosis
	for _, n := range snap.Nodes {
		filter, reasons := a.filter(p, n)
		if reasons == nil {
			feasible = append(feasible, n)
			continue
		}
		if diag == nil {
			diag = &Diagnosis{NumNodes: len(snap.Nodes), NodeReasons: map[string][]string{}, Filters: map[string]int{}}
		}
		diag.NodeReasons[n.Name()] = reasons
		diag.Filters[filter]++
	}
	switch len(feasible) {
	case 0:
		return "", diag
	case 1:
		return feasible[0].Name(), nil
	}
	return feasible[a.best(p, feasible)].Name(), nil
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
