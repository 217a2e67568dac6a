package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

// recorder posts Kubernetes Events about pods (Pulling, Started, BackOff,
// Killing...) without blocking the workers: events queue and a repeat of
// the same event on the same object bumps its count instead of making a
// new one, as the kubelet's recorder does.
type recorder struct {
	c    *client.Client
	node string
	now  func() time.Time
	log  *slog.Logger
	q    chan *corev1.Event
	seen map[string]*corev1.Event // by dedup key; only touched by run
}

func newRecorder(c *client.Client, node string, now func() time.Time, log *slog.Logger) *recorder {
	return &recorder{c: c, node: node, now: now, log: log, q: make(chan *corev1.Event, 1000), seen: map[string]*corev1.Event{}}
}

// event queues an event about pod; fieldPath names the container
// ("spec.containers{web}") or is empty.
func (r *recorder) event(pod *corev1.Pod, typ, reason, fieldPath, format string, args ...any) {
	now := metav1.NewTime(r.now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace,
			Name: fmt.Sprintf("%s.%x", pod.Name, r.now().UnixNano())},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			APIVersion: "v1", ResourceVersion: pod.ResourceVersion, FieldPath: fieldPath},
		Reason: reason, Message: fmt.Sprintf(format, args...), Type: typ,
		Source:         corev1.EventSource{Component: "drover-agent", Host: r.node},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "drover-agent", ReportingInstance: r.node,
	}
	select {
	case r.q <- ev:
	default:
		r.log.Debug("event queue full; dropping", "reason", reason, "pod", pod.Name)
	}
}

func (r *recorder) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.q:
			if err := r.post(ctx, ev); err != nil && ctx.Err() == nil {
				r.log.Debug("posting an event failed", "reason", ev.Reason, "err", err)
			}
		}
	}
}

func (r *recorder) post(ctx context.Context, ev *corev1.Event) error {
	events := r.c.Resource(client.Events).Namespace(ev.Namespace)
	key := string(ev.InvolvedObject.UID) + "/" + ev.InvolvedObject.FieldPath + "/" + ev.Reason + "/" + ev.Message
	if prev, ok := r.seen[key]; ok {
		prev.Count++
		prev.LastTimestamp = ev.LastTimestamp
		updated, err := client.UpdateTyped(ctx, events, prev)
		if err == nil {
			r.seen[key] = updated
			return nil
		}
		delete(r.seen, key) // gone or changed: start a new one
	}
	created, err := client.CreateTyped(ctx, events, ev)
	if err != nil {
		return err
	}
	if len(r.seen) > 4096 {
		clear(r.seen)
	}
	r.seen[key] = created
	return nil
}
