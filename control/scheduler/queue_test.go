package scheduler

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) step(d time.Duration)    { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Unix(1_000_000, 0)} }
func testQueue(c *fakeClock) *queue          { return newQueue(time.Second, 10*time.Second, c.now) }
func withPriority(p int32) func(*corev1.Pod) { return func(pod *corev1.Pod) { pod.Spec.Priority = &p } }

// popNow pops without waiting: "" when nothing is active.
func popNow(t *testing.T, q *queue) (string, int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.mu.Lock()
	empty := q.active.Len() == 0
	q.mu.Unlock()
	if empty {
		return "", 0
	}
	p, moves, ok := q.pop(ctx)
	if !ok {
		t.Fatal("pop failed with pods active")
	}
	return p.Name, moves
}

func TestQueueOrder(t *testing.T) {
	q := testQueue(newFakeClock())
	q.addOrUpdate(newPod("first", "", ""))
	q.addOrUpdate(newPod("second", "", ""))
	q.addOrUpdate(newPod("urgent", "", "", withPriority(1000)))
	q.addOrUpdate(newPod("low", "", "", withPriority(-5)))
	var got []string
	for {
		name, _ := popNow(t, q)
		if name == "" {
			break
		}
		got = append(got, name)
	}
	want := []string{"urgent", "first", "second", "low"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestQueueUnschedulableWaitsForAChange(t *testing.T) {
	clk := newFakeClock()
	q := testQueue(clk)
	p := newPod("p", "", "")
	q.addOrUpdate(p)
	_, moves := popNow(t, q)
	if _, ok := q.unschedulable(p.UID, moves); !ok {
		t.Fatal("unschedulable: pod unknown")
	}
	clk.step(time.Minute)
	q.flushBackoff()
	if name, _ := popNow(t, q); name != "" {
		t.Fatalf("an unschedulable pod came back without a change: %s", name)
	}
	// A status change (its own condition) is not a reason to retry.
	withCond := p.DeepCopy()
	withCond.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.addOrUpdate(withCond)
	if name, _ := popNow(t, q); name != "" {
		t.Fatal("a status change brought the pod back")
	}
	// A cluster change is: its backoff (1 s after one failure) is long
	// over, so it is active at once.
	q.moveAll()
	if name, _ := popNow(t, q); name != "p" {
		t.Fatalf("after a change: popped %q", name)
	}
}

func TestQueueBackoff(t *testing.T) {
	clk := newFakeClock()
	q := testQueue(clk)
	p := newPod("p", "", "")
	q.addOrUpdate(p)
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		_, moves := popNow(t, q)
		q.unschedulable(p.UID, moves)
		q.moveAll() // right away: the pod must sit out its backoff
		if name, _ := popNow(t, q); name != "" {
			t.Fatalf("attempt %d: popped during the backoff", attempt+1)
		}
		clk.step(wait - time.Millisecond)
		q.flushBackoff()
		if name, _ := popNow(t, q); name != "" {
			t.Fatalf("attempt %d: popped %v before its %v backoff ended", attempt+1, wait-time.Millisecond, wait)
		}
		clk.step(time.Millisecond)
		if next := q.flushBackoff(); !next.IsZero() {
			t.Fatalf("attempt %d: still waiting until %v", attempt+1, next)
		}
		if name, _ := popNow(t, q); name != "p" {
			t.Fatalf("attempt %d: not back after %v", attempt+1, wait)
		}
	}
}

func TestQueueChangeDuringAttempt(t *testing.T) {
	clk := newFakeClock()
	q := testQueue(clk)
	p := newPod("p", "", "")
	q.addOrUpdate(p)
	_, moves := popNow(t, q)
	// A node was added while the pod was being decided on a snapshot
	// without it: the pod must not wait for the next change.
	q.moveAll()
	q.unschedulable(p.UID, moves)
	if _, _, unsched, _ := q.counts(); unsched != 0 {
		t.Fatal("parked as unschedulable despite the change")
	}
	clk.step(time.Second)
	q.flushBackoff()
	if name, _ := popNow(t, q); name != "p" {
		t.Fatal("not retried after its backoff")
	}
	// A change to the pod itself during the attempt counts too.
	_, moves = popNow(t, q)
	q.addOrUpdate(newPod("p", "", "", withTolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})))
	q.unschedulable(p.UID, moves)
	if _, _, unsched, _ := q.counts(); unsched != 0 {
		t.Fatal("parked as unschedulable despite a spec change during the attempt")
	}
}

func TestQueueSpecChangeRetries(t *testing.T) {
	q := testQueue(newFakeClock())
	p := newPod("p", "", "")
	q.addOrUpdate(p)
	_, moves := popNow(t, q)
	q.unschedulable(p.UID, moves)
	q.addOrUpdate(newPod("p", "", "", withTolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})))
	if name, _ := popNow(t, q); name != "p" {
		t.Fatal("a new toleration did not bring the pod back")
	}
}

func TestQueuePeriodicRetry(t *testing.T) {
	clk := newFakeClock()
	q := testQueue(clk)
	a, b := newPod("a", "", ""), newPod("b", "", "")
	q.addOrUpdate(a)
	_, moves := popNow(t, q)
	q.unschedulable(a.UID, moves)
	clk.step(20 * time.Second)
	q.addOrUpdate(b)
	_, moves = popNow(t, q)
	q.unschedulable(b.UID, moves)
	clk.step(10 * time.Second)
	q.retryUnschedulable(30 * time.Second)
	if name, _ := popNow(t, q); name != "a" {
		t.Fatalf("popped %q, want a (30 s unschedulable)", name)
	}
	if name, _ := popNow(t, q); name != "" {
		t.Fatalf("popped %q: b has waited only 10 s", name)
	}
}

func TestQueueAssignedAndDeleted(t *testing.T) {
	q := testQueue(newFakeClock())
	p := newPod("p", "", "")
	q.addOrUpdate(p)
	popNow(t, q)
	q.assigned(p.UID)
	if q.pending(p.UID) {
		t.Error("an assigned pod is pending")
	}
	// The watch shows it again, unbound (its bind is in flight): it
	// stays assigned, not queued a second time.
	q.addOrUpdate(p)
	if name, _ := popNow(t, q); name != "" {
		t.Fatal("an assigned pod was queued again")
	}
	// The bind failed: back after the backoff.
	q.retry(p.UID)
	if !q.pending(p.UID) {
		t.Error("a pod whose bind failed is not pending")
	}
	if !q.delete(p.UID) || q.delete(p.UID) {
		t.Error("delete: want true once, then false")
	}
	if q.pending(p.UID) {
		t.Error("a deleted pod is pending")
	}
	if _, ok := q.unschedulable(p.UID, 0); ok {
		t.Error("unschedulable accepted a deleted pod")
	}
}

func TestQueuePopWaits(t *testing.T) {
	q := testQueue(newFakeClock())
	got := make(chan string)
	go func() {
		p, _, ok := q.pop(context.Background())
		if ok {
			got <- p.Name
		}
	}()
	q.addOrUpdate(newPod("late", "", ""))
	if name := <-got; name != "late" {
		t.Fatalf("popped %q", name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, ok := q.pop(ctx); ok {
		t.Fatal("pop returned a pod from an empty queue")
	}
}
