package scheduler

import (
	"context"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/droverhq/drover/client"
)

// listPageSize is how many objects one list request asks for.
const listPageSize = 500

// sink receives what a reflector lists and watches.
type sink interface {
	// replace is a full list: everything not in it is gone.
	replace(items []*unstructured.Unstructured)
	// event is one watch event (ADDED, MODIFIED, DELETED).
	event(typ watch.EventType, obj *unstructured.Unstructured)
}

// reflector lists a resource, then watches it from the list's
// resourceVersion, and lists again when the watch history has moved past
// it (410) or after an error, as client-go's reflector does.
type reflector struct {
	name    string
	rc      client.ResourceClient
	sink    sink
	log     *slog.Logger
	backoff time.Duration // after a failed list or watch
	synced  chan struct{} // closed after the first full list
}

func (r *reflector) run(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		rv, err := r.list(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("scheduler: list failed", "resource", r.name, "err", err)
				sleep(ctx, r.backoff)
			}
			continue
		}
		if first {
			close(r.synced)
			first = false
		}
		r.watch(ctx, rv)
	}
}

// list reads everything, page by page, and hands it over. Pages after the
// first read the current state (drover keeps no old versions), so the
// watch starts from the first page's resourceVersion: changes made while
// paging are then seen again as events, never missed.
func (r *reflector) list(ctx context.Context) (string, error) {
	var items []*unstructured.Unstructured
	var rv string
	opts := metav1.ListOptions{Limit: listPageSize}
	for {
		l, err := r.rc.List(ctx, opts)
		if err != nil {
			return "", err
		}
		if rv == "" {
			rv = l.GetResourceVersion()
		}
		for i := range l.Items {
			items = append(items, &l.Items[i])
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			break
		}
	}
	r.sink.replace(items)
	return rv, nil
}

// watch follows changes from rv until the watch fails in a way that needs
// a new list. A stream the server ended cleanly is picked up again from
// the last resourceVersion seen.
func (r *reflector) watch(ctx context.Context, rv string) {
	for ctx.Err() == nil {
		w, err := r.rc.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			if ctx.Err() == nil && !client.IsGone(err) {
				r.log.Warn("scheduler: watch failed", "resource", r.name, "err", err)
				sleep(ctx, r.backoff)
			}
			return
		}
		gone := false
		for ev := range w.Events() {
			switch ev.Type {
			case watch.Error:
				if !client.IsGone(ev.Err) {
					r.log.Warn("scheduler: watch error", "resource", r.name, "err", ev.Err)
				}
				gone = true
			case watch.Bookmark:
				rv = ev.Object.GetResourceVersion()
			default:
				rv = ev.Object.GetResourceVersion()
				r.sink.event(ev.Type, ev.Object)
			}
			if gone {
				break
			}
		}
		w.Stop()
		if gone {
			return
		}
		if err := w.Err(); err != nil && ctx.Err() == nil {
			// Resume from the last resourceVersion seen; if that is too
			// old by now, the server says 410 and we list again.
			r.log.Warn("scheduler: watch stream broke", "resource", r.name, "err", err)
			sleep(ctx, r.backoff)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
