package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/client"
)

// Event and condition wording, as kube-scheduler's.
const (
	// SchedulerName is the spec.schedulerName of the pods this scheduler
	// takes (or none), and the component its events come from.
	SchedulerName          = corev1.DefaultSchedulerName
	ReasonFailedScheduling = "FailedScheduling"
)

// maxRemembered bounds how many repeated events the recorder remembers;
// past it, a repeat starts a new Event object.
const maxRemembered = 10000

// eventRepeatInterval: a repeat with the same message is written at most
// this often (kube's event correlator lets one through per object every
// 5 minutes once its burst is spent). Every attempt is still counted; the
// next write carries the count.
const eventRepeatInterval = 5 * time.Minute

// eventWriter is what the recorder needs of the API.
type eventWriter interface {
	createEvent(ctx context.Context, ev *corev1.Event) error
	updateEvent(ctx context.Context, ns, name string, count int32, msg string, last metav1.Time) error
}

// recorder writes Warning events about pods, one Event object per pod and
// reason: a repeat (the next failed attempt) updates that object's count,
// message and lastTimestamp instead of creating another — at once when
// the message changed, else at most every eventRepeatInterval — so a pod
// retried for an hour has one FailedScheduling event, not hundreds, and
// ten thousand pods that fit nowhere do not keep the API server busy.
type recorder struct {
	api      eventWriter
	log      *slog.Logger
	instance string
	now      func() time.Time

	mu   sync.Mutex
	seen map[eventKey]*seenEvent
}

type eventKey struct {
	uid    types.UID
	reason string
}

type seenEvent struct {
	name    string
	count   int32     // attempts, written or not
	msg     string    // as last written
	written time.Time // when last written
}

func newRecorder(a eventWriter, log *slog.Logger, instance string, now func() time.Time) *recorder {
	return &recorder{api: a, log: log, instance: instance, now: now, seen: map[eventKey]*seenEvent{}}
}

// warn records a Warning event about pod. Calls for one pod must not run
// concurrently (the reporters shard pods by UID).
func (r *recorder) warn(ctx context.Context, pod *corev1.Pod, reason, msg string) error {
	key := eventKey{pod.UID, reason}
	t := r.now()
	now := metav1.NewTime(t)
	r.mu.Lock()
	se := r.seen[key]
	var count int32
	if se != nil {
		se.count++
		if se.msg == msg && t.Sub(se.written) < eventRepeatInterval {
			r.mu.Unlock()
			return nil
		}
		count = se.count
	}
	r.mu.Unlock()
	if se != nil {
		err := r.api.updateEvent(ctx, pod.Namespace, se.name, count, msg, now)
		if err == nil {
			r.mu.Lock()
			se.msg, se.written = msg, t
			r.mu.Unlock()
		}
		if err == nil || !client.IsNotFound(err) {
			return err
		}
		// Deleted (or expired) meanwhile: start a new one.
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()), Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Reason:              reason,
		Message:             msg,
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: SchedulerName},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Action:              "Scheduling",
		ReportingController: SchedulerName,
		ReportingInstance:   r.instance,
	}
	if err := r.api.createEvent(ctx, ev); err != nil {
		return err
	}
	r.mu.Lock()
	if len(r.seen) >= maxRemembered {
		for k := range r.seen {
			delete(r.seen, k)
			break
		}
	}
	r.seen[key] = &seenEvent{name: ev.Name, count: 1, msg: msg, written: t}
	r.mu.Unlock()
	return nil
}

// forget drops what is remembered of a pod's events (it was bound or is
// gone).
func (r *recorder) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, eventKey{uid, ReasonFailedScheduling})
}
