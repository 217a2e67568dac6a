package scheduler

import (
	"container/heap"
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// Where an unbound pod is in the queue. A pod enters active, is popped
// (inFlight), and then is either assumed and bound (assigned, until the
// watch shows it bound or gone), or fits nowhere (unschedulable), or its
// bind failed (backoff). A cluster change that might make room moves
// unschedulable pods to active (or to backoff, if their backoff has not
// run out); so does the periodic retry.
//
//	         add                 pop                  fits
//	(watch) -----> active -----------------> inFlight ------> assigned --> (watch: bound or gone)
//	                ^  ^                      |    |             |
//	     backoff up |  | change, retry        |    | no fit      | bind failed
//	                |  +---- unschedulable <--+    |             |
//	             backoff <-------------------------+-------------+
//	                 (change during the attempt)
type podState int

const (
	stateActive podState = iota
	stateBackoff
	stateUnschedulable
	stateInFlight
	stateAssigned
)

// qEntry is one unbound pod this scheduler is responsible for.
type qEntry struct {
	pod      *corev1.Pod // the latest the watch showed
	state    podState
	attempts int       // scheduling attempts that failed
	seq      int64     // FIFO order among equal priorities
	last     time.Time // when its last attempt failed
	ready    time.Time // end of its backoff
	index    int       // position in the active or backoff heap
	// changed: the pod changed while in flight; if the attempt fails it
	// is retried at once.
	changed bool
}

func (e *qEntry) priority() int32 {
	if e.pod.Spec.Priority != nil {
		return *e.pod.Spec.Priority
	}
	return 0
}

// queue holds the unbound pods this scheduler is responsible for.
type queue struct {
	mu      sync.Mutex
	entries map[types.UID]*qEntry
	active  activeHeap
	backoff backoffHeap
	parked  map[types.UID]*qEntry // unschedulable, waiting for a change
	seq     int64
	// moves counts move requests (cluster changes); an attempt that
	// started before the latest one must not park its pod as
	// unschedulable, since the change may have been what it needed.
	moves int64

	initialBackoff, maxBackoff time.Duration
	now                        func() time.Time
	wake                       chan struct{} // active got a pod
	wakeBackoff                chan struct{} // backoff got an earlier deadline
}

func newQueue(initialBackoff, maxBackoff time.Duration, now func() time.Time) *queue {
	return &queue{
		entries: map[types.UID]*qEntry{}, parked: map[types.UID]*qEntry{},
		initialBackoff: initialBackoff, maxBackoff: maxBackoff, now: now,
		wake: make(chan struct{}, 1), wakeBackoff: make(chan struct{}, 1),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// addOrUpdate records an unbound pod as the watch shows it.
func (q *queue) addOrUpdate(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[pod.UID]
	if !ok {
		e = &qEntry{pod: pod}
		q.entries[pod.UID] = e
		q.pushActive(e)
		return
	}
	specChanged := !equality.Semantic.DeepEqual(e.pod.Spec, pod.Spec)
	e.pod = pod
	switch e.state {
	case stateInFlight:
		e.changed = e.changed || specChanged
	case stateUnschedulable:
		// A status change (the scheduler's own condition, say) is no
		// reason to try again; a spec change (a new toleration) is.
		if specChanged {
			delete(q.parked, pod.UID)
			q.pushActive(e)
		}
	}
}

// delete forgets a pod: bound (by anyone) or gone.
func (q *queue) delete(uid types.UID) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[uid]
	if !ok {
		return false
	}
	delete(q.entries, uid)
	switch e.state {
	case stateActive:
		heap.Remove(&q.active, e.index)
	case stateBackoff:
		heap.Remove(&q.backoff, e.index)
	case stateUnschedulable:
		delete(q.parked, uid)
	}
	return true
}

// pop waits for a pod to try and marks it in flight. It returns the move
// count at that moment, for unschedulable, and false when ctx ends.
func (q *queue) pop(ctx context.Context) (*corev1.Pod, int64, bool) {
	for {
		q.mu.Lock()
		if q.active.Len() > 0 {
			e := heap.Pop(&q.active).(*qEntry)
			e.state = stateInFlight
			e.changed = false
			pod, moves := e.pod, q.moves
			if q.active.Len() > 0 {
				signal(q.wake)
			}
			q.mu.Unlock()
			return pod, moves, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, 0, false
		}
	}
}

// assigned marks a pod whose bind has been sent: it stays known, and out
// of the way, until the watch shows it bound or gone.
func (q *queue) assigned(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.entries[uid]; ok {
		e.state = stateAssigned
	}
}

// unschedulable parks a pod that fit nowhere until a cluster change or
// the periodic retry. moves is what pop returned. It reports whether the
// pod is still waiting (false: deleted or bound meanwhile), and the pod as
// last seen.
func (q *queue) unschedulable(uid types.UID, moves int64) (*corev1.Pod, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[uid]
	if !ok || e.state != stateInFlight {
		return nil, false
	}
	e.attempts++
	e.last = q.now()
	if e.changed || q.moves != moves {
		q.pushBackoff(e)
		return e.pod, true
	}
	e.state = stateUnschedulable
	q.parked[uid] = e
	return e.pod, true
}

// retry puts a pod whose bind failed back, after its backoff.
func (q *queue) retry(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.entries[uid]; ok && (e.state == stateAssigned || e.state == stateInFlight) {
		e.attempts++
		e.last = q.now()
		q.pushBackoff(e)
	}
}

// pending reports whether a pod still waits for a node: known, and not
// assigned one.
func (q *queue) pending(uid types.UID) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[uid]
	return ok && e.state != stateAssigned
}

// moveAll is a cluster change that may make room: every unschedulable
// pod is tried again (after its backoff).
func (q *queue) moveAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moves++
	for uid, e := range q.parked {
		delete(q.parked, uid)
		q.pushBackoff(e)
	}
}

// retryUnschedulable moves the pods unschedulable for at least age: the
// periodic retry, for changes no event announced.
func (q *queue) retryUnschedulable(age time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for uid, e := range q.parked {
		if now.Sub(e.last) >= age {
			delete(q.parked, uid)
			q.pushBackoff(e)
		}
	}
}

// flushBackoff moves pods whose backoff has run out to active and returns
// when the next one runs out (zero if none waits).
func (q *queue) flushBackoff() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for q.backoff.Len() > 0 {
		e := q.backoff[0]
		if e.ready.After(now) {
			return e.ready
		}
		heap.Pop(&q.backoff)
		q.pushActive(e)
	}
	return time.Time{}
}

// runBackoff moves pods out of backoff as their time comes, until ctx
// ends.
func (q *queue) runBackoff(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := q.flushBackoff()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-q.wakeBackoff:
		case <-ctx.Done():
			return
		}
	}
}

// backoffFor is 1s, 2s, 4s... up to the maximum, by failed attempts.
func (q *queue) backoffFor(attempts int) time.Duration {
	d := q.initialBackoff
	for i := 1; i < attempts && d < q.maxBackoff; i++ {
		d *= 2
	}
	return min(d, q.maxBackoff)
}

func (q *queue) pushActive(e *qEntry) {
	e.state = stateActive
	q.seq++
	e.seq = q.seq
	heap.Push(&q.active, e)
	signal(q.wake)
}

// pushBackoff queues a pod that failed, for the end of its backoff
// (counted from its last failed attempt); a pod that has already waited
// that long goes to active.
func (q *queue) pushBackoff(e *qEntry) {
	e.ready = e.last.Add(q.backoffFor(e.attempts))
	if !e.ready.After(q.now()) {
		q.pushActive(e)
		return
	}
	e.state = stateBackoff
	heap.Push(&q.backoff, e)
	if q.backoff[0] == e {
		signal(q.wakeBackoff)
	}
}

// counts reports how many pods are in each state.
func (q *queue) counts() (active, backoff, unschedulable, inFlight int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.parked), len(q.entries) - q.active.Len() - q.backoff.Len() - len(q.parked)
}

// uids lists every pod the queue knows.
func (q *queue) uids() []types.UID {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]types.UID, 0, len(q.entries))
	for uid := range q.entries {
		out = append(out, uid)
	}
	return out
}

// activeHeap orders pods by priority, highest first, then first come.
type activeHeap []*qEntry

func (h activeHeap) Len() int { return len(h) }
func (h activeHeap) Less(i, j int) bool {
	if pi, pj := h[i].priority(), h[j].priority(); pi != pj {
		return pi > pj
	}
	return h[i].seq < h[j].seq
}
func (h activeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *activeHeap) Push(x any)   { e := x.(*qEntry); e.index = len(*h); *h = append(*h, e) }
func (h *activeHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// backoffHeap orders pods by the end of their backoff.
type backoffHeap []*qEntry

func (h backoffHeap) Len() int           { return len(h) }
func (h backoffHeap) Less(i, j int) bool { return h[i].ready.Before(h[j].ready) }
func (h backoffHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *backoffHeap) Push(x any)        { e := x.(*qEntry); e.index = len(*h); *h = append(*h, e) }
func (h *backoffHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
