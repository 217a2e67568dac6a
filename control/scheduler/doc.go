// Package scheduler assigns pods to nodes, as kube-scheduler does for the
// subset of the pod spec drover supports.
//
// # The decision: a pure function of a snapshot
//
// Schedule(pod, snapshot) picks a node or says why none fits. The Snapshot
// is read-only: every node with its bound pods summed (requests, host
// ports, pods per controller). An Algorithm is two chains of small
// interfaces:
//
//   - Filters (Filter), run in order per node; the first that rejects a node
//     gives the reasons: NodeReady (Ready condition True), NodeUnschedulable
//     (not cordoned), TaintToleration (NoSchedule and NoExecute taints
//     tolerated), NodeAffinity (nodeSelector and required node affinity:
//     In, NotIn, Exists, DoesNotExist, Gt, Lt), NodePorts (host ports
//     free), NodeResourcesFit (cpu, memory, ephemeral-storage requests fit
//     allocatable minus what the node's pods request; the pod count fits
//     allocatable "pods"). A pod tolerating node.kubernetes.io/not-ready
//     or node.kubernetes.io/unschedulable (NoSchedule) passes the first
//     two, as a DaemonSet's pods pass the taints Kubernetes puts there.
//   - Scorers (Scorer, optionally Normalizer), with kube-scheduler's
//     default weights: LeastAllocated (1), OwnerSpread (2: fewer pods of
//     the same controller on the node), PreferredNodeAffinity (2),
//     TaintPreferNoSchedule (3). The highest total wins; ties go to the
//     first node examined, so a snapshot always gives the same answer.
//
// As kube-scheduler does (percentageOfNodesToScore), filtering stops once
// enough nodes are feasible — all of up to 100 nodes, then a share falling
// from 50% by 1% per 125 nodes to at least 5%: 420 of 1,000, 500 of 5,000
// — and only those are scored. It starts at Snapshot.Start, which the
// runner moves past the nodes examined after every decision, so every
// node gets its turn. Algorithm.PercentageOfNodesToScore = 100 scores
// every node.
//
// Requests: a container that asks for nothing counts as zero for fit (a
// pod without requests fits any node with room for one more pod), and as
// kube-scheduler's defaults, 100m CPU and 200 MiB, for LeastAllocated,
// so such pods still spread out. Init containers count as in Kubernetes:
// the largest of them, if that is more than the containers together.
//
// When no node fits, the Diagnosis says why in kube-scheduler's words:
//
//	0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.
//
// # The runner
//
// Scheduler.Run list-watches nodes and all pods (relisting on 410 Gone or
// after an error). Bound pods go into the cache, which the snapshots are
// taken from; unbound pods whose spec.schedulerName is "default-scheduler"
// (or empty) go into the queue, by priority, then first come. One loop
// decides for one pod at a time on a fresh snapshot, then "assumes" the
// pod on its node in the cache — so the next decision counts it even
// before the watch shows it bound — and hands the bind (POST
// pods/<name>/binding, with the pod's UID as a precondition) to one of
// BindWorkers concurrent workers. A bind that fails is taken back and the
// pod tried again after a backoff (1 s doubling to 10 s); a 409 (bound
// already, being deleted) or 404 is expected and not logged as a warning:
// the watch soon shows the pod bound or gone, and it leaves the queue.
//
// A pod that fits nowhere gets PodScheduled=False, reason Unschedulable,
// with the diagnosis as message (a strategic merge patch of pods/status,
// only when the message changes, with the pod's resourceVersion as a
// precondition so that a pod bound meanwhile is left alone), and a
// Warning event, reason FailedScheduling, source default-scheduler. Each
// pod has one such Event object: later failed attempts update its count,
// message and lastTimestamp — at once when the message changes, otherwise
// at most every 5 minutes (the attempts in between are counted), so that
// many pods that fit nowhere do not keep the API server busy. The pod waits until something changes that
// could make room: a node added, or changed in what the filters read
// (readiness, cordon, labels, taints, allocatable — not heartbeats), or a
// bound pod deleted or finished; and in any case about RetryInterval
// (30 s) after its last attempt. A change that happens while a pod is being
// decided sends that pod round again rather than leaving it parked.
//
// Pods that are terminating still hold their node's resources until they
// are gone, as in Kubernetes.
//
// # Leadership
//
// Run only on the Raft leader, after a barrier, and cancel its context on
// leadership loss (control/leader). The API server binds a pod at most
// once, so two schedulers could not bind one pod twice, but each would
// count only its own assumptions, and together they could overcommit a
// node. Every Run starts from nothing — a fresh list of nodes and pods, an
// empty queue and cache — so the same Scheduler may Run again in a later
// term; a second Run while one is going is refused.
//
// Not implemented: preemption, inter-pod (anti-)affinity, topology spread
// constraints, extended resources, volume topology, multiple profiles.
// Pods bound by someone else are counted when the watch shows them; a
// decision made in between may overcommit a node (a kubelet refuses such
// a pod at admission; drover's node agent should too).
package scheduler
