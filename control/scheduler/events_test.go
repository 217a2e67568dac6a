package scheduler

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/droverhq/drover/client"
)

// fakeEvents is an event store in memory.
type fakeEvents struct {
	events  map[string]*corev1.Event
	creates int
	updates int
}

func (f *fakeEvents) createEvent(_ context.Context, ev *corev1.Event) error {
	f.creates++
	f.events[ev.Name] = ev.DeepCopy()
	return nil
}

func (f *fakeEvents) updateEvent(_ context.Context, ns, name string, count int32, msg string, last metav1.Time) error {
	ev, ok := f.events[name]
	if !ok {
		gr := schema.GroupResource{Resource: "events"}
		return &client.StatusError{Status: metav1.Status{Reason: metav1.StatusReasonNotFound, Code: 404, Message: gr.String() + " not found"}}
	}
	f.updates++
	ev.Count, ev.Message, ev.LastTimestamp = count, msg, last
	return nil
}

func TestRecorderOneEventPerPod(t *testing.T) {
	clk := newFakeClock()
	store := &fakeEvents{events: map[string]*corev1.Event{}}
	r := newRecorder(store, slog.New(slog.DiscardHandler), "test", clk.now)
	ctx := context.Background()
	p := newPod("p", "", "")
	warn := func(msg string) {
		t.Helper()
		if err := r.warn(ctx, p, ReasonFailedScheduling, msg); err != nil {
			t.Fatal(err)
		}
	}
	only := func() *corev1.Event {
		t.Helper()
		if len(store.events) != 1 {
			t.Fatalf("%d events, want 1", len(store.events))
		}
		for _, ev := range store.events {
			return ev
		}
		return nil
	}

	warn("0/1 nodes are available: 1 Insufficient cpu.")
	ev := only()
	if ev.Count != 1 || ev.Type != corev1.EventTypeWarning || ev.Reason != ReasonFailedScheduling || ev.Source.Component != "default-scheduler" ||
		ev.InvolvedObject.UID != p.UID || ev.Namespace != "default" || ev.ReportingInstance != "test" {
		t.Fatalf("event %+v", ev)
	}
	// The same message again, soon: counted, not written.
	clk.step(30 * time.Second)
	warn("0/1 nodes are available: 1 Insufficient cpu.")
	if store.updates != 0 {
		t.Fatalf("%d updates for a repeat within %v", store.updates, eventRepeatInterval)
	}
	// A new message is written at once, with the attempts so far.
	clk.step(30 * time.Second)
	warn("0/2 nodes are available: 2 Insufficient cpu.")
	if ev := only(); store.updates != 1 || ev.Count != 3 || ev.Message != "0/2 nodes are available: 2 Insufficient cpu." || !ev.LastTimestamp.Time.Equal(clk.now()) {
		t.Fatalf("after a new message: %d updates, event %+v", store.updates, ev)
	}
	// The same message after the interval is written too.
	clk.step(eventRepeatInterval)
	warn("0/2 nodes are available: 2 Insufficient cpu.")
	if ev := only(); store.updates != 2 || ev.Count != 4 {
		t.Fatalf("after the interval: %d updates, count %d", store.updates, ev.Count)
	}
	// Someone deleted it: the next write starts a new one.
	clear(store.events)
	warn("0/3 nodes are available: 3 Insufficient cpu.")
	if ev := only(); store.creates != 2 || ev.Count != 1 {
		t.Fatalf("after deletion: %d creates, count %d", store.creates, ev.Count)
	}
	// Another pod has its own; a forgotten pod starts over.
	warn2 := newPod("q", "", "")
	if err := r.warn(ctx, warn2, ReasonFailedScheduling, "x"); err != nil || store.creates != 3 {
		t.Fatalf("second pod: %v, %d creates", err, store.creates)
	}
	r.forget(p.UID)
	warn("0/3 nodes are available: 3 Insufficient cpu.")
	if store.creates != 4 {
		t.Fatalf("after forget: %d creates, want a new event", store.creates)
	}
}
