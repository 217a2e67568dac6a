package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
)

// Event is one watch event. For ERROR events Object is the zero value and
// Err holds the Status the server sent (IsGone(Err) means: relist).
// BOOKMARK objects carry only kind, apiVersion and metadata.resourceVersion.
type Event[T any] struct {
	Type   watch.EventType
	Object T
	Err    *StatusError
}

// Watcher delivers the events of one watch stream. Events is closed when the
// stream ends: the server closed it, the context was canceled, Stop was
// called, or the stream could not be decoded; Err then says which.
type Watcher[T any] struct {
	events chan Event[T]
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Events is the event channel.
func (w *Watcher[T]) Events() <-chan Event[T] { return w.events }

// Stop ends the watch and waits for its goroutine to finish.
func (w *Watcher[T]) Stop() {
	w.cancel()
	<-w.done
}

// Err is why the stream ended: nil for a clean end of stream or a cancel.
// Valid once Events is closed.
func (w *Watcher[T]) Err() error {
	<-w.done
	return w.err
}

// Watch streams changes to a resource from opts.ResourceVersion ("" means
// the current state as ADDED events first). Bookmarks are always requested.
func (r ResourceClient) Watch(ctx context.Context, opts metav1.ListOptions) (*Watcher[*unstructured.Unstructured], error) {
	return startWatch(ctx, r, opts, "", decodeObject)
}

// WatchTable streams changes rendered as Tables of one row each, the way
// kubectl get --watch asks for them.
func (r ResourceClient) WatchTable(ctx context.Context, opts metav1.ListOptions) (*Watcher[*metav1.Table], error) {
	return startWatch(ctx, r, opts, acceptTable, func(b []byte) (*metav1.Table, error) {
		var t metav1.Table
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, err
		}
		return &t, nil
	})
}

func startWatch[T any](ctx context.Context, r ResourceClient, opts metav1.ListOptions, accept string, decode func([]byte) (T, error)) (*Watcher[T], error) {
	opts.Watch = true
	opts.AllowWatchBookmarks = true
	ctx, cancel := context.WithCancel(ctx)
	body, err := r.c.stream(ctx, request{method: http.MethodGet, path: r.path(""), query: listQuery(opts), accept: accept})
	if err != nil {
		cancel()
		return nil, err
	}
	return newWatcher(ctx, cancel, body, decode), nil
}

// newWatcher decodes a stream of {"type":..., "object":...} documents, as
// the server writes them into a chunked response, until it ends.
func newWatcher[T any](ctx context.Context, cancel context.CancelFunc, body io.ReadCloser, decode func([]byte) (T, error)) *Watcher[T] {
	w := &Watcher[T]{events: make(chan Event[T]), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.events)
		defer cancel()
		defer body.Close()
		w.err = decodeWatchStream(ctx, body, decode, w.events)
	}()
	return w
}

func decodeWatchStream[T any](ctx context.Context, body io.Reader, decode func([]byte) (T, error), out chan<- Event[T]) error {
	dec := json.NewDecoder(body)
	for {
		var raw struct {
			Type   watch.EventType `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&raw); err != nil {
			// A cancel shows up as a read error; that is not a failure.
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch stream: %w", err)
		}
		ev := Event[T]{Type: raw.Type}
		switch raw.Type {
		case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
			obj, err := decode(raw.Object)
			if err != nil {
				return fmt.Errorf("watch stream: %s event: %w", raw.Type, err)
			}
			ev.Object = obj
		case watch.Error:
			var st metav1.Status
			if err := json.Unmarshal(raw.Object, &st); err != nil {
				return fmt.Errorf("watch stream: ERROR event: %w", err)
			}
			ev.Err = &StatusError{Status: st}
		default:
			return fmt.Errorf("watch stream: unknown event type %q", raw.Type)
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return nil
		}
	}
}
