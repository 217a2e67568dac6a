package scheduler

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/droverhq/drover/client"
)

// Config configures a Scheduler.
type Config struct {
	// Client reaches the API server as a user that may list and watch
	// pods and nodes, create pods/binding, patch pods/status, and create
	// and patch events.
	Client *client.Client
	Logger *slog.Logger
	// Algorithm decides where pods go; nil means DefaultAlgorithm().
	Algorithm *Algorithm
	// BindWorkers is how many binds may be in flight at once (default
	// 16): decisions are made one at a time, binds overlap, and the store
	// commits concurrent writes together. The API server speaks HTTP/1.1
	// and the client keeps 25 idle connections per host: more requests
	// in flight than that open (and TLS-handshake) new connections.
	BindWorkers int
	// ReportWorkers write the condition and event of pods that fit
	// nowhere (default 4).
	ReportWorkers int
	// A pod that failed waits InitialBackoff before its next attempt,
	// doubling per failure up to MaxBackoff (defaults 1 s and 10 s, as
	// kube-scheduler).
	InitialBackoff, MaxBackoff time.Duration
	// RetryInterval: a pod that fits nowhere is tried again when a node
	// is added or changes, or a bound pod goes away — and in any case
	// after this long (default 30 s).
	RetryInterval time.Duration
	// RequestTimeout bounds each bind, status and event request (default
	// 30 s).
	RequestTimeout time.Duration
	// Instance names this scheduler in its events (reportingInstance);
	// default the host name.
	Instance string
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Algorithm == nil {
		c.Algorithm = DefaultAlgorithm()
	}
	if c.BindWorkers <= 0 {
		c.BindWorkers = 16
	}
	if c.ReportWorkers <= 0 {
		c.ReportWorkers = 4
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 30 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
}

// Scheduler assigns unbound pods to nodes. See the package documentation.
type Scheduler struct {
	cfg     Config
	log     *slog.Logger
	running atomic.Bool

	attempts, bound, unschedulable, bindErrors atomic.Int64
}

// New returns a Scheduler; Run starts it.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Client == nil {
		return nil, errors.New("scheduler: a client is required")
	}
	cfg.setDefaults()
	return &Scheduler{cfg: cfg, log: cfg.Logger}, nil
}

// Stats counts what a Scheduler has done, across all its runs.
type Stats struct {
	Attempts      int64 // scheduling decisions made
	Bound         int64 // binds the API server accepted
	Unschedulable int64 // decisions that found no node
	BindErrors    int64 // binds refused or failed (retried)
}

// Stats returns the counts so far.
func (s *Scheduler) Stats() Stats {
	return Stats{Attempts: s.attempts.Load(), Bound: s.bound.Load(), Unschedulable: s.unschedulable.Load(), BindErrors: s.bindErrors.Load()}
}

// Responsible reports whether this scheduler takes pod: its
// spec.schedulerName is "default-scheduler" or empty.
func Responsible(pod *corev1.Pod) bool {
	return pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == SchedulerName
}

// Run schedules pods until ctx ends, then returns once everything it
// started has stopped. Run it only on the Raft leader, after a barrier,
// and cancel ctx when leadership is lost: two schedulers running at once
// would not overcommit a node's pods through a bind (the API server binds
// a pod once), but could overcommit its resources. Every Run starts from
// nothing (a fresh list of nodes and pods), so it is safe to call again
// after it returned, in a later term; calling it while it runs is an
// error.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: already running")
	}
	defer s.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	a := api{c: s.cfg.Client}
	r := &run{
		s:     s,
		api:   a,
		cache: newCache(),
		q:     newQueue(s.cfg.InitialBackoff, s.cfg.MaxBackoff, time.Now),
		rec:   newRecorder(a, s.log, s.cfg.Instance, time.Now),
		binds: make(chan bindTask, s.cfg.BindWorkers),
	}
	nodes := &reflector{name: "nodes", rc: a.nodes(), sink: nodeSink{r}, log: s.log, backoff: time.Second, synced: make(chan struct{})}
	pods := &reflector{name: "pods", rc: a.pods(), sink: podSink{r}, log: s.log, backoff: time.Second, synced: make(chan struct{})}
	r.reports = make([]chan report, s.cfg.ReportWorkers)
	for i := range r.reports {
		r.reports[i] = make(chan report, 256)
	}

	var wg sync.WaitGroup
	goFn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	goFn(func() { nodes.run(ctx) })
	goFn(func() { pods.run(ctx) })
	goFn(func() { r.q.runBackoff(ctx) })
	goFn(func() { r.retryLoop(ctx) })
	for range s.cfg.BindWorkers {
		goFn(func() { r.bindLoop(ctx) })
	}
	for _, ch := range r.reports {
		goFn(func() { r.reportLoop(ctx, ch) })
	}
	goFn(func() {
		// Decide only on a full picture: every node and every bound pod.
		for _, c := range []chan struct{}{nodes.synced, pods.synced} {
			select {
			case <-c:
			case <-ctx.Done():
				return
			}
		}
		s.log.Info("scheduler: started", "nodes", len(r.cache.nodeNames()))
		r.scheduleLoop(ctx)
	})
	wg.Wait()
	s.log.Info("scheduler: stopped")
	return nil
}

// run is the state of one Run.
type run struct {
	s       *Scheduler
	api     api
	cache   *cache
	q       *queue
	rec     *recorder
	binds   chan bindTask
	reports []chan report
}

type bindTask struct {
	pod  *corev1.Pod
	node string
}

type report struct {
	pod *corev1.Pod
	msg string
}

// scheduleLoop decides for one pod at a time, each on a snapshot that
// includes the decisions before it, and hands the binds to the workers.
func (r *run) scheduleLoop(ctx context.Context) {
	alg := r.s.cfg.Algorithm
	start := 0
	for {
		pod, moves, ok := r.q.pop(ctx)
		if !ok {
			return
		}
		r.s.attempts.Add(1)
		p := NewPodInfo(pod)
		snap := r.cache.snapshot()
		snap.Start = start
		node, diag, examined := alg.schedule(p, snap)
		if len(snap.Nodes) > 0 {
			start = (start + examined) % len(snap.Nodes)
		}
		if node == "" {
			r.s.unschedulable.Add(1)
			msg := diag.Message()
			r.s.log.Debug("scheduler: pod fits nowhere", "pod", pod.Namespace+"/"+pod.Name, "why", msg)
			if latest, ok := r.q.unschedulable(pod.UID, moves); ok {
				r.report(report{pod: latest, msg: msg})
			}
			continue
		}
		if !r.cache.assume(p, node) {
			continue // bound by someone else meanwhile
		}
		r.q.assigned(pod.UID)
		select {
		case r.binds <- bindTask{pod: pod, node: node}:
		case <-ctx.Done():
			return
		}
	}
}

// bindLoop binds pods. A bind that fails is taken back and the pod tried
// again after its backoff; if it failed because the pod is bound already
// or gone (409, 404), the watch says so before long and the pod leaves the
// queue.
func (r *run) bindLoop(ctx context.Context) {
	for {
		var t bindTask
		select {
		case t = <-r.binds:
		case <-ctx.Done():
			return
		}
		rctx, cancel := context.WithTimeout(ctx, r.s.cfg.RequestTimeout)
		err := r.api.bind(rctx, t.pod, t.node)
		cancel()
		if err == nil {
			r.s.bound.Add(1)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		r.s.bindErrors.Add(1)
		r.cache.forget(t.pod.UID)
		r.q.retry(t.pod.UID)
		lvl := slog.LevelWarn
		if client.IsConflict(err) || client.IsNotFound(err) {
			lvl = slog.LevelDebug
		}
		r.s.log.Log(ctx, lvl, "scheduler: bind failed", "pod", t.pod.Namespace+"/"+t.pod.Name, "node", t.node, "err", err)
	}
}

// report hands a pod that fits nowhere to its reporter. Pods are sharded
// by UID, so one pod's reports are written in order. A full reporter
// drops the report: the pod's next attempt reports again.
func (r *run) report(rep report) {
	h := fnv.New32a()
	h.Write([]byte(rep.pod.UID))
	select {
	case r.reports[h.Sum32()%uint32(len(r.reports))] <- rep:
	default:
		r.s.log.Debug("scheduler: reporter busy, report dropped", "pod", rep.pod.Namespace+"/"+rep.pod.Name)
	}
}

// reportLoop writes PodScheduled=False and a FailedScheduling event.
func (r *run) reportLoop(ctx context.Context, ch chan report) {
	for {
		var rep report
		select {
		case rep = <-ch:
		case <-ctx.Done():
			return
		}
		if !r.q.pending(rep.pod.UID) {
			continue // bound or gone meanwhile
		}
		rctx, cancel := context.WithTimeout(ctx, r.s.cfg.RequestTimeout)
		if needsCondition(rep.pod, rep.msg) {
			err := r.api.setUnschedulable(rctx, rep.pod, rep.msg, metav1.Now())
			if err != nil && !client.IsConflict(err) && !client.IsNotFound(err) && ctx.Err() == nil {
				r.s.log.Warn("scheduler: writing the PodScheduled condition failed", "pod", rep.pod.Namespace+"/"+rep.pod.Name, "err", err)
			}
		}
		if err := r.rec.warn(rctx, rep.pod, ReasonFailedScheduling, rep.msg); err != nil && ctx.Err() == nil {
			r.s.log.Warn("scheduler: writing the FailedScheduling event failed", "pod", rep.pod.Namespace+"/"+rep.pod.Name, "err", err)
		}
		cancel()
	}
}

// needsCondition reports whether the pod's PodScheduled condition does
// not yet say msg.
func needsCondition(pod *corev1.Pod, msg string) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable || c.Message != msg
		}
	}
	return true
}

// retryLoop tries unschedulable pods again once they have waited
// RetryInterval, checking four times per interval.
func (r *run) retryLoop(ctx context.Context) {
	t := time.NewTicker(r.s.cfg.RetryInterval / 4)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.q.retryUnschedulable(r.s.cfg.RetryInterval)
		case <-ctx.Done():
			return
		}
	}
}

// podGone drops a pod from the queue and the recorder.
func (r *run) podGone(uid types.UID) {
	if r.q.delete(uid) {
		r.rec.forget(uid)
	}
}

// pod files one pod as the watch shows it. It reports whether the change
// may have made room for pods that fit nowhere.
func (r *run) pod(pod *corev1.Pod) bool {
	switch {
	case pod.Spec.NodeName != "":
		r.podGone(pod.UID) // bound: by this scheduler or another
		if finished(pod) {
			return r.cache.removePod(pod.UID)
		}
		r.cache.addPod(pod)
	case finished(pod) || pod.DeletionTimestamp != nil || !Responsible(pod):
		r.podGone(pod.UID)
	default:
		r.q.addOrUpdate(pod)
	}
	return false
}

// podSink files the pod watch: bound pods into the cache, unbound ones
// into the queue.
type podSink struct{ r *run }

func (ps podSink) replace(items []*unstructured.Unstructured) {
	r := ps.r
	seen := make(map[types.UID]bool, len(items))
	moved := false
	for _, u := range items {
		pod, err := fromUnstructured[corev1.Pod](u)
		if err != nil {
			r.s.log.Warn("scheduler: undecodable pod", "err", err)
			continue
		}
		seen[pod.UID] = true
		moved = r.pod(pod) || moved
	}
	for _, uid := range r.cache.podUIDs() {
		if !seen[uid] {
			moved = r.cache.removePod(uid) || moved
		}
	}
	for _, uid := range r.q.uids() {
		if !seen[uid] {
			r.podGone(uid)
		}
	}
	if moved {
		r.q.moveAll()
	}
}

func (ps podSink) event(typ watch.EventType, u *unstructured.Unstructured) {
	r := ps.r
	pod, err := fromUnstructured[corev1.Pod](u)
	if err != nil {
		r.s.log.Warn("scheduler: undecodable pod", "err", err)
		return
	}
	moved := false
	if typ == watch.Deleted {
		r.podGone(pod.UID)
		moved = r.cache.removePod(pod.UID) && pod.Spec.NodeName != ""
	} else {
		moved = r.pod(pod)
	}
	if moved {
		r.q.moveAll()
	}
}

// nodeSink files the node watch into the cache.
type nodeSink struct{ r *run }

func (ns nodeSink) replace(items []*unstructured.Unstructured) {
	r := ns.r
	seen := make(map[string]bool, len(items))
	moved := false
	for _, u := range items {
		node, err := fromUnstructured[corev1.Node](u)
		if err != nil {
			r.s.log.Warn("scheduler: undecodable node", "err", err)
			continue
		}
		seen[node.Name] = true
		moved = r.cache.setNode(node) || moved
	}
	for _, name := range r.cache.nodeNames() {
		if !seen[name] {
			r.cache.deleteNode(name)
		}
	}
	if moved {
		r.q.moveAll()
	}
}

func (ns nodeSink) event(typ watch.EventType, u *unstructured.Unstructured) {
	r := ns.r
	if typ == watch.Deleted {
		r.cache.deleteNode(u.GetName())
		return
	}
	node, err := fromUnstructured[corev1.Node](u)
	if err != nil {
		r.s.log.Warn("scheduler: undecodable node", "err", err)
		return
	}
	if r.cache.setNode(node) {
		r.q.moveAll()
	}
}
