package scheduler

import (
	"maps"
	"slices"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cache is the scheduler's view of the cluster: every node, and every pod
// bound to one — as the watches report them, plus the pods this scheduler
// has just decided to bind ("assumed") before the watch shows them bound,
// so that consecutive decisions account for each other.
//
// NodeInfos are copy-on-write: a change replaces a node's NodeInfo with a
// changed copy, and the node list handed out by snapshot is copied before
// it is next changed. A Snapshot therefore never changes under its reader,
// and taking one costs nothing when nothing changed.
type cache struct {
	mu     sync.Mutex
	list   []*NodeInfo    // known nodes, in name order
	index  map[string]int // node name -> position in list
	shared bool           // list was handed out; copy before changing

	pods     map[types.UID]*cachedPod
	nodePods map[string]map[types.UID]struct{} // node name -> its pods, also of nodes not (yet) known
}

type cachedPod struct {
	info    *PodInfo
	node    string
	assumed bool // bound by this scheduler; the watch has not shown it yet
}

func newCache() *cache {
	return &cache{index: map[string]int{}, pods: map[types.UID]*cachedPod{}, nodePods: map[string]map[types.UID]struct{}{}}
}

// snapshot returns the current nodes. The caller must not change them.
func (c *cache) snapshot() *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shared = true
	return &Snapshot{Nodes: c.list}
}

// set puts ni in place of the node's NodeInfo (the node must be known).
func (c *cache) set(ni *NodeInfo) {
	if c.shared {
		c.list = slices.Clone(c.list)
		c.shared = false
	}
	c.list[c.index[ni.Name()]] = ni
}

func (c *cache) reindex() {
	clear(c.index)
	for i, n := range c.list {
		c.index[n.Name()] = i
	}
}

// setNode adds or updates a node. It reports whether the change could let
// a pod that fit nowhere fit now: a new node, or a change to what the
// filters read.
func (c *cache) setNode(node *corev1.Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[node.Name]; ok {
		old := c.list[i]
		ni := old.clone()
		ni.setNode(node)
		c.set(ni)
		return nodeChangeMatters(old, ni)
	}
	ni := NewNodeInfo(node)
	for uid := range c.nodePods[node.Name] {
		ni.addPod(c.pods[uid].info)
	}
	i := sort.Search(len(c.list), func(i int) bool { return c.list[i].Name() >= node.Name })
	c.list = slices.Insert(slices.Clip(c.list), i, ni)
	c.shared = false
	c.reindex()
	return true
}

// nodeChangeMatters reports a change to what the filters read of a node.
func nodeChangeMatters(old, cur *NodeInfo) bool {
	o, n := old.Node, cur.Node
	return old.Ready != cur.Ready ||
		old.Allocatable != cur.Allocatable || old.AllowedPods != cur.AllowedPods ||
		o.Spec.Unschedulable != n.Spec.Unschedulable ||
		!maps.Equal(o.Labels, n.Labels) ||
		!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints)
}

// deleteNode forgets a node. Its pods stay known, in case it comes back.
func (c *cache) deleteNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[name]
	if !ok {
		return
	}
	c.list = slices.Delete(slices.Clone(c.list), i, i+1)
	c.shared = false
	c.reindex()
}

// nodeNames lists the known nodes.
func (c *cache) nodeNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, len(c.list))
	for i, n := range c.list {
		names[i] = n.Name()
	}
	return names
}

// addPod records a bound pod as the watch shows it; an assumed pod is
// confirmed (and moved, if it was bound elsewhere after all).
func (c *cache) addPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.pods[pod.UID]; ok {
		if cp.node == pod.Spec.NodeName && !cp.assumed {
			return // requests, ports and owner cannot change
		}
		c.removeLocked(pod.UID, cp)
	}
	info := NewPodInfo(pod)
	// Only what was summed is needed from here on: keep no more of the
	// pod than its identity (a cluster's bound pods add up).
	info.Pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID}}
	info.Pod.Spec.NodeName = pod.Spec.NodeName
	c.addLocked(pod.UID, &cachedPod{info: info, node: pod.Spec.NodeName})
}

// assume counts a pod on a node before the bind is done. It refuses (false)
// a pod the watch has already shown bound.
func (c *cache) assume(p *PodInfo, node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.pods[p.Pod.UID]; ok {
		if !cp.assumed {
			return false
		}
		c.removeLocked(p.Pod.UID, cp)
	}
	c.addLocked(p.Pod.UID, &cachedPod{info: p, node: node, assumed: true})
	return true
}

// forget takes back an assumption whose bind failed. A pod the watch has
// shown bound in the meantime stays.
func (c *cache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.pods[uid]; ok && cp.assumed {
		c.removeLocked(uid, cp)
	}
}

// removePod forgets a pod (deleted, or finished). It reports whether the
// pod was counted on a node.
func (c *cache) removePod(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.pods[uid]
	if ok {
		c.removeLocked(uid, cp)
	}
	return ok
}

// isAssumed reports an assumed pod.
func (c *cache) isAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.pods[uid]
	return ok && cp.assumed
}

// podUIDs lists the pods the cache counts.
func (c *cache) podUIDs() []types.UID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Keys(c.pods))
}

func (c *cache) addLocked(uid types.UID, cp *cachedPod) {
	c.pods[uid] = cp
	set := c.nodePods[cp.node]
	if set == nil {
		set = map[types.UID]struct{}{}
		c.nodePods[cp.node] = set
	}
	set[uid] = struct{}{}
	if i, ok := c.index[cp.node]; ok {
		ni := c.list[i].clone()
		ni.addPod(cp.info)
		c.set(ni)
	}
}

func (c *cache) removeLocked(uid types.UID, cp *cachedPod) {
	delete(c.pods, uid)
	if set := c.nodePods[cp.node]; set != nil {
		delete(set, uid)
		if len(set) == 0 {
			delete(c.nodePods, cp.node)
		}
	}
	if i, ok := c.index[cp.node]; ok {
		ni := c.list[i].clone()
		ni.removePod(cp.info)
		c.set(ni)
	}
}
