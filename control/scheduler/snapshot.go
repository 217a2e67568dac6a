package scheduler

import (
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Defaults kube-scheduler assumes, for scoring only, for a container that
// requests no CPU or memory (k8s.io/kubernetes pkg/scheduler/util
// DefaultMilliCPURequest and DefaultMemoryRequest). Fit uses the real
// requests: a pod that asks for nothing always fits.
const (
	DefaultMilliCPURequest = 100               // 0.1 core
	DefaultMemoryRequest   = 200 * 1024 * 1024 // 200 MiB
)

// Resources is an amount of the resources drover schedules by.
type Resources struct {
	MilliCPU         int64
	Memory           int64 // bytes
	EphemeralStorage int64 // bytes
}

// Add adds o to r.
func (r *Resources) Add(o Resources) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
}

// Sub subtracts o from r.
func (r *Resources) Sub(o Resources) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
}

// max sets each of r's amounts to the larger of r's and o's.
func (r *Resources) max(o Resources) {
	r.MilliCPU = max(r.MilliCPU, o.MilliCPU)
	r.Memory = max(r.Memory, o.Memory)
	r.EphemeralStorage = max(r.EphemeralStorage, o.EphemeralStorage)
}

// resourcesOf reads a ResourceList.
func resourcesOf(l corev1.ResourceList) Resources {
	var r Resources
	if q, ok := l[corev1.ResourceCPU]; ok {
		r.MilliCPU = q.MilliValue()
	}
	if q, ok := l[corev1.ResourceMemory]; ok {
		r.Memory = q.Value()
	}
	if q, ok := l[corev1.ResourceEphemeralStorage]; ok {
		r.EphemeralStorage = q.Value()
	}
	return r
}

// HostPort is a port a pod takes on its node's network. IP is "0.0.0.0"
// for every address.
type HostPort struct {
	IP       string
	Protocol corev1.Protocol
	Port     int32
}

// conflicts reports whether p and o cannot be held by two pods at once: the
// same port and protocol, on the same address or on every address.
func (p HostPort) conflicts(o HostPort) bool {
	return p.Port == o.Port && p.Protocol == o.Protocol && (p.IP == o.IP || p.IP == wildcardIP || o.IP == wildcardIP)
}

const wildcardIP = "0.0.0.0"

// PodInfo is a pod with what the filters and scorers read of it worked out
// once. It is read-only once made.
type PodInfo struct {
	Pod *corev1.Pod
	// Requests is what the pod asks for (containers summed, or the largest
	// init container if that is more), used for fit. NonZero is the same
	// with kube-scheduler's defaults for containers asking for no CPU or
	// memory, used for scoring.
	Requests Resources
	NonZero  Resources
	// HostPorts are the container ports bound on the node.
	HostPorts []HostPort
	// Owner is the UID of the pod's controller (its ReplicaSet, Job...),
	// "" for a pod without one.
	Owner types.UID
}

// NewPodInfo works out what scheduling needs of a pod.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		req := resourcesOf(c.Resources.Requests)
		pi.Requests.Add(req)
		pi.NonZero.Add(nonZero(req))
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := HostPort{IP: p.HostIP, Protocol: p.Protocol, Port: p.HostPort}
			if hp.IP == "" || hp.IP == "::" {
				hp.IP = wildcardIP
			}
			if hp.Protocol == "" {
				hp.Protocol = corev1.ProtocolTCP
			}
			pi.HostPorts = append(pi.HostPorts, hp)
		}
	}
	// Init containers run one at a time before the others: the pod needs
	// the largest of them, if that is more than its containers together.
	for i := range pod.Spec.InitContainers {
		req := resourcesOf(pod.Spec.InitContainers[i].Resources.Requests)
		pi.Requests.max(req)
		pi.NonZero.max(nonZero(req))
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		pi.Owner = ref.UID
	}
	return pi
}

func nonZero(r Resources) Resources {
	if r.MilliCPU == 0 {
		r.MilliCPU = DefaultMilliCPURequest
	}
	if r.Memory == 0 {
		r.Memory = DefaultMemoryRequest
	}
	return r
}

// NodeInfo is a node with the pods bound (or about to be bound) to it,
// summed. A NodeInfo in a Snapshot is never modified: the cache makes a
// changed copy instead.
type NodeInfo struct {
	Node *corev1.Node

	// Allocatable is what the node offers pods; AllowedPods how many pods
	// it takes (allocatable "pods").
	Allocatable Resources
	AllowedPods int64
	// Ready is the node's Ready condition being True.
	Ready bool

	// Pods is the number of pods on the node; Requested their requests
	// summed, NonZeroRequested the same with the scoring defaults.
	Pods             int64
	Requested        Resources
	NonZeroRequested Resources
	// UsedPorts counts the pods holding each host port.
	UsedPorts map[HostPort]int
	// Owners counts the node's pods per controller UID.
	Owners map[types.UID]int
}

// NewNodeInfo makes the NodeInfo of a node without pods.
func NewNodeInfo(node *corev1.Node) *NodeInfo {
	n := &NodeInfo{}
	n.setNode(node)
	return n
}

func (n *NodeInfo) setNode(node *corev1.Node) {
	n.Node = node
	n.Allocatable = resourcesOf(node.Status.Allocatable)
	n.AllowedPods = 0
	if q, ok := node.Status.Allocatable[corev1.ResourcePods]; ok {
		n.AllowedPods = q.Value()
	}
	n.Ready = false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			n.Ready = c.Status == corev1.ConditionTrue
		}
	}
}

// Name is the node's name.
func (n *NodeInfo) Name() string { return n.Node.Name }

// clone copies n so the copy can be changed.
func (n *NodeInfo) clone() *NodeInfo {
	c := *n
	c.UsedPorts = maps.Clone(n.UsedPorts)
	c.Owners = maps.Clone(n.Owners)
	return &c
}

// addPod counts a pod on the node.
func (n *NodeInfo) addPod(p *PodInfo) {
	n.Pods++
	n.Requested.Add(p.Requests)
	n.NonZeroRequested.Add(p.NonZero)
	if len(p.HostPorts) > 0 {
		if n.UsedPorts == nil {
			n.UsedPorts = map[HostPort]int{}
		}
		for _, hp := range p.HostPorts {
			n.UsedPorts[hp]++
		}
	}
	if p.Owner != "" {
		if n.Owners == nil {
			n.Owners = map[types.UID]int{}
		}
		n.Owners[p.Owner]++
	}
}

// removePod takes back what addPod counted.
func (n *NodeInfo) removePod(p *PodInfo) {
	n.Pods--
	n.Requested.Sub(p.Requests)
	n.NonZeroRequested.Sub(p.NonZero)
	for _, hp := range p.HostPorts {
		if n.UsedPorts[hp]--; n.UsedPorts[hp] <= 0 {
			delete(n.UsedPorts, hp)
		}
	}
	if p.Owner != "" {
		if n.Owners[p.Owner]--; n.Owners[p.Owner] <= 0 {
			delete(n.Owners, p.Owner)
		}
	}
}

// Snapshot is the cluster as one scheduling decision sees it: every node,
// in name order, with its pods summed. It is read-only.
type Snapshot struct {
	Nodes []*NodeInfo
	// Start is the node filtering starts from (wrapping around). When an
	// Algorithm scores only a share of the nodes, the runner moves it on
	// after every decision, as kube-scheduler does, so that every node
	// gets its turn.
	Start int
}

// NewSnapshot builds a snapshot from nodes and the pods bound to them
// (spec.nodeName set). Pods bound to nodes not in the list, and pods that
// have finished (Succeeded, Failed), are left out, as they take nothing.
func NewSnapshot(nodes []*corev1.Node, pods []*corev1.Pod) *Snapshot {
	byName := make(map[string]*NodeInfo, len(nodes))
	s := &Snapshot{Nodes: make([]*NodeInfo, 0, len(nodes))}
	for _, n := range nodes {
		ni := NewNodeInfo(n)
		byName[n.Name] = ni
		s.Nodes = append(s.Nodes, ni)
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name() < s.Nodes[j].Name() })
	for _, p := range pods {
		if ni := byName[p.Spec.NodeName]; ni != nil && !finished(p) {
			ni.addPod(NewPodInfo(p))
		}
	}
	return s
}

// finished reports a pod that has run to completion and takes nothing.
func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
