package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/droverhq/drover/control/registry"
	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/kv"
)

// watchEvent is one line of a watch stream.
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// watch streams changes to a collection as Kubernetes watch events:
// ADDED, MODIFIED, DELETED (an object leaving the selectors counts as
// deleted, one entering as added), BOOKMARK on idle streams when asked,
// and ERROR with a 410 Status when the start revision is too old (the
// client relists). resourceVersion "" or "0" starts with the current
// objects as ADDED events.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, ri *requestInfo, out output) {
	res := ri.resource
	ls, fs, err := selectors(r, res)
	if err != nil {
		writeStatus(w, err)
		return
	}
	q := r.URL.Query()
	bookmarks := q.Get("allowWatchBookmarks") == "true" && !out.table
	timeout := time.Duration(1800+rand.IntN(1800)) * time.Second // spread reconnects, as Kubernetes does
	if t := q.Get("timeoutSeconds"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("timeoutSeconds must be a non-negative integer, got %q", t)))
			return
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	var initial []runtime.Object
	var from int64
	switch rv := q.Get("resourceVersion"); rv {
	case "", "0":
		lr, err := s.storage.List(ctx, res, ri.namespace, registry.ListOptions{Labels: ls, Fields: fs, Serializable: rv == "0"})
		if err != nil {
			writeStatus(w, err)
			return
		}
		initial, from = lr.Items, lr.Revision+1
	default:
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion must be a non-negative integer, got %q", rv)))
			return
		}
		from = n + 1
	}
	watcher, werr := s.storage.Watch(ctx, res, ri.namespace, from)

	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	enc := &watchEncoder{s: s, w: w, flusher: flusher, res: res, out: out}
	if werr != nil {
		enc.sendError(werr)
		return
	}
	for _, obj := range initial {
		if !enc.send("ADDED", obj) {
			return
		}
	}
	enc.flush()
	for {
		select {
		case <-ctx.Done():
			return
		case resp, ok := <-watcher.C():
			if !ok {
				if err := watcher.Err(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					enc.sendError(err)
				}
				return
			}
			if resp.Progress {
				if bookmarks {
					bm := res.New()
					m, _ := meta.Accessor(bm)
					m.SetResourceVersion(strconv.FormatInt(resp.Revision, 10))
					bm.GetObjectKind().SetGroupVersionKind(res.GVK())
					if !enc.send("BOOKMARK", bm) {
						return
					}
					enc.flush()
				}
				continue
			}
			for i := range resp.Events {
				if !enc.event(&resp.Events[i], ls, fs) {
					return
				}
			}
			enc.flush()
		}
	}
}

type watchEncoder struct {
	s       *Server
	w       http.ResponseWriter
	flusher http.Flusher
	res     *registry.Resource
	out     output
	failed  bool
}

// event turns one store event into at most one watch event. Without
// selectors or a Table, the stored JSON goes out as it is (with its
// resourceVersion set): no decoding per watcher. Otherwise objects are
// decoded through a cache shared by all watchers, so one change is decoded
// once however many watch it.
func (e *watchEncoder) event(ev *raftstore.Event, ls labels.Selector, fs fields.Selector) bool {
	if !e.out.table && ls.Empty() && fs.Empty() {
		switch {
		case ev.Type == kv.EventPut && ev.PrevKV != nil:
			return e.sendRaw("MODIFIED", registry.WithResourceVersion(ev.KV.Value, ev.KV.ModRev))
		case ev.Type == kv.EventPut:
			return e.sendRaw("ADDED", registry.WithResourceVersion(ev.KV.Value, ev.KV.ModRev))
		case ev.PrevKV != nil:
			return e.sendRaw("DELETED", registry.WithResourceVersion(ev.PrevKV.Value, ev.KV.ModRev))
		}
		return true
	}
	var cur, prev runtime.Object
	if ev.PrevKV != nil {
		prev = e.s.decoded.get(e.res, ev.PrevKV)
	}
	if ev.Type == kv.EventPut {
		if cur = e.s.decoded.get(e.res, &ev.KV); cur == nil {
			return true
		}
	}
	inNow := cur != nil && registry.Matches(cur, ls, fs)
	inBefore := prev != nil && registry.Matches(prev, ls, fs)
	switch {
	case inNow && inBefore:
		return e.send("MODIFIED", cur)
	case inNow:
		return e.send("ADDED", cur)
	case inBefore && cur != nil:
		return e.send("DELETED", cur) // left the selection
	case inBefore:
		// Deleted: the last state, at the revision of the delete. The cached
		// object is shared: change a copy.
		gone := prev.DeepCopyObject()
		m, _ := meta.Accessor(gone)
		m.SetResourceVersion(strconv.FormatInt(ev.KV.ModRev, 10))
		return e.send("DELETED", gone)
	}
	return true
}

func (e *watchEncoder) sendRaw(typ string, obj []byte) bool {
	if e.failed {
		return false
	}
	line, _ := json.Marshal(watchEvent{Type: typ, Object: obj})
	if _, err := e.w.Write(append(line, '\n')); err != nil {
		e.failed = true
		return false
	}
	return true
}

func (e *watchEncoder) send(typ string, obj runtime.Object) bool {
	if e.failed {
		return false
	}
	var payload any = obj
	if e.out.table {
		t, err := e.s.table(e.res, []runtime.Object{obj}, e.out.includeObject)
		if err != nil {
			e.s.log.Warn("watch: table conversion failed", "err", err)
			return true
		}
		payload = t
	}
	b, err := json.Marshal(payload)
	if err != nil {
		e.s.log.Warn("watch: encoding failed", "err", err)
		return true
	}
	line, _ := json.Marshal(watchEvent{Type: typ, Object: b})
	if _, err := e.w.Write(append(line, '\n')); err != nil {
		e.failed = true
		return false
	}
	return true
}

func (e *watchEncoder) sendError(err error) {
	st := toStatus(err)
	st.Kind, st.APIVersion = "Status", "v1"
	b, _ := json.Marshal(st)
	line, _ := json.Marshal(watchEvent{Type: "ERROR", Object: b})
	e.w.Write(append(line, '\n'))
	e.flush()
}

func (e *watchEncoder) flush() {
	if e.flusher != nil {
		e.flusher.Flush()
	}
}
