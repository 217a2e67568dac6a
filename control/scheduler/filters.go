package scheduler

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Filter decides whether a pod may go on a node. Filter returns nil when it
// may, and otherwise the reasons it may not, in kube-scheduler's words
// ("Insufficient cpu"); the diagnosis counts nodes per reason. Filters read
// the pod and the node and change neither.
type Filter interface {
	Name() string
	Filter(p *PodInfo, n *NodeInfo) []string
}

// Reasons, as kube-scheduler words them.
const (
	ReasonNotReady        = "node(s) were not ready"
	ReasonUnschedulable   = "node(s) were unschedulable"
	ReasonNodeAffinity    = "node(s) didn't match Pod's node affinity/selector"
	ReasonHostPorts       = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods     = "Too many pods"
	ReasonInsufficientCPU = "Insufficient cpu"
	ReasonInsufficientMem = "Insufficient memory"
	ReasonInsufficientEph = "Insufficient ephemeral-storage"
)

// Read-only one-reason answers, so a failing filter does not allocate.
var (
	notReady      = []string{ReasonNotReady}
	unschedulable = []string{ReasonUnschedulable}
	affinity      = []string{ReasonNodeAffinity}
	hostPorts     = []string{ReasonHostPorts}
)

// DefaultFilters are the filters in the order they run, cheapest and most
// decisive first, as kube-scheduler orders its plugins. A node is rejected
// by the first filter that fails.
func DefaultFilters() []Filter {
	return []Filter{NodeReady{}, NodeUnschedulable{}, TaintToleration{}, NodeAffinity{}, NodePorts{}, NodeResourcesFit{}}
}

// Taints kube's node lifecycle controller would put on a node that is not
// ready or is cordoned; a pod tolerating them (a DaemonSet's) may go there.
var (
	notReadyTaint      = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}
)

// NodeReady rejects nodes whose Ready condition is not True, unless the pod
// tolerates the node.kubernetes.io/not-ready:NoSchedule taint.
type NodeReady struct{}

func (NodeReady) Name() string { return "NodeReady" }

func (NodeReady) Filter(p *PodInfo, n *NodeInfo) []string {
	if n.Ready || tolerates(p.Pod.Spec.Tolerations, &notReadyTaint) {
		return nil
	}
	return notReady
}

// NodeUnschedulable rejects cordoned nodes (spec.unschedulable), unless
// the pod tolerates the node.kubernetes.io/unschedulable:NoSchedule taint.
type NodeUnschedulable struct{}

func (NodeUnschedulable) Name() string { return "NodeUnschedulable" }

func (NodeUnschedulable) Filter(p *PodInfo, n *NodeInfo) []string {
	if !n.Node.Spec.Unschedulable || tolerates(p.Pod.Spec.Tolerations, &unschedulableTaint) {
		return nil
	}
	return unschedulable
}

// TaintToleration rejects nodes with a NoSchedule or NoExecute taint the
// pod does not tolerate. PreferNoSchedule taints only lower the score.
type TaintToleration struct{}

func (TaintToleration) Name() string { return "TaintToleration" }

func (TaintToleration) Filter(p *PodInfo, n *NodeInfo) []string {
	for i := range n.Node.Spec.Taints {
		t := &n.Node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(p.Pod.Spec.Tolerations, t) {
			return []string{fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)}
		}
	}
	return nil
}

func tolerates(tols []corev1.Toleration, t *corev1.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(t) {
			return true
		}
	}
	return false
}

// NodeAffinity rejects nodes that do not match the pod's nodeSelector or
// its required node affinity (In, NotIn, Exists, DoesNotExist, Gt, Lt on
// labels; In, NotIn on metadata.name).
type NodeAffinity struct{}

func (NodeAffinity) Name() string { return "NodeAffinity" }

func (NodeAffinity) Filter(p *PodInfo, n *NodeInfo) []string {
	if (len(p.Pod.Spec.NodeSelector) == 0 || matchesNodeSelector(p.Pod, n.Node)) && matchesRequiredAffinity(p.Pod, n.Node) {
		return nil
	}
	return affinity
}

func matchesNodeSelector(pod *corev1.Pod, node *corev1.Node) bool {
	for k, v := range pod.Spec.NodeSelector {
		if lv, ok := node.Labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

func matchesRequiredAffinity(pod *corev1.Pod, node *corev1.Node) bool {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	// The terms are ORed; no terms match no node.
	for i := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if matchesTerm(&a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// matchesTerm ANDs a term's label expressions and field expressions; an
// empty term matches nothing, as in Kubernetes.
func matchesTerm(t *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for i := range t.MatchExpressions {
		r := &t.MatchExpressions[i]
		v, ok := node.Labels[r.Key]
		if !matchesRequirement(r, v, ok) {
			return false
		}
	}
	for i := range t.MatchFields {
		r := &t.MatchFields[i]
		if r.Key != "metadata.name" {
			return false
		}
		if r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn {
			return false
		}
		if !matchesRequirement(r, node.Name, true) {
			return false
		}
	}
	return true
}

// matchesRequirement checks one requirement against a value v (present
// tells whether the label is set at all).
func matchesRequirement(r *corev1.NodeSelectorRequirement, v string, present bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// NodePorts rejects nodes where another pod holds a host port the pod
// asks for (same port and protocol, on the same address or on 0.0.0.0).
type NodePorts struct{}

func (NodePorts) Name() string { return "NodePorts" }

func (NodePorts) Filter(p *PodInfo, n *NodeInfo) []string {
	if len(p.HostPorts) == 0 || len(n.UsedPorts) == 0 {
		return nil
	}
	for _, want := range p.HostPorts {
		for used := range n.UsedPorts {
			if want.conflicts(used) {
				return hostPorts
			}
		}
	}
	return nil
}

// NodeResourcesFit rejects nodes without room for the pod's requests:
// allocatable minus what the node's pods request, and the pod count. A
// resource the pod does not request never fails, even on an overcommitted
// node.
type NodeResourcesFit struct{}

func (NodeResourcesFit) Name() string { return "NodeResourcesFit" }

func (NodeResourcesFit) Filter(p *PodInfo, n *NodeInfo) []string {
	var reasons []string
	if n.Pods+1 > n.AllowedPods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	r, free := p.Requests, n.Allocatable
	free.Sub(n.Requested)
	if r.MilliCPU > 0 && r.MilliCPU > free.MilliCPU {
		reasons = append(reasons, ReasonInsufficientCPU)
	}
	if r.Memory > 0 && r.Memory > free.Memory {
		reasons = append(reasons, ReasonInsufficientMem)
	}
	if r.EphemeralStorage > 0 && r.EphemeralStorage > free.EphemeralStorage {
		reasons = append(reasons, ReasonInsufficientEph)
	}
	return reasons
}
