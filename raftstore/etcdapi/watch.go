package etcdapi

import (
	"context"
	"errors"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/kv"
)

type watchServer struct{ s *Server }

// maxEventsPerResponse splits a huge transaction's events across responses
// when the client allows fragments.
const maxEventsPerResponse = 1000

// Watch serves one client stream carrying any number of watches. A
// goroutine per watch forwards store events; one sender serializes writes
// to the stream.
func (w *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	out := make(chan *pb.WatchResponse, 64)
	sendErr := make(chan error, 1)
	go func() {
		for {
			select {
			case r := <-out:
				if err := stream.Send(r); err != nil {
					sendErr <- err
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	send := func(r *pb.WatchResponse) bool {
		select {
		case out <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}

	var mu sync.Mutex
	watches := map[int64]context.CancelFunc{}
	var nextID int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	for {
		req, err := stream.Recv()
		if err != nil {
			select {
			case e := <-sendErr:
				return e
			default:
			}
			if ctx.Err() != nil && stream.Context().Err() == nil {
				return nil
			}
			return nil // client closed the stream
		}
		switch r := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			cr := r.CreateRequest
			mu.Lock()
			id := cr.WatchId
			if id == 0 {
				for watches[nextID] != nil {
					nextID++
				}
				id = nextID
				nextID++
			} else if watches[id] != nil {
				mu.Unlock()
				send(&pb.WatchResponse{Header: w.s.header(0), WatchId: id, Created: true, Canceled: true, CancelReason: "etcdserver: duplicate watch ID"})
				continue
			}
			wctx, wcancel := context.WithCancel(ctx)
			watches[id] = wcancel
			mu.Unlock()
			watcher, err := w.s.store.Watch(wctx, cr.Key, cr.RangeEnd, cr.StartRevision)
			if err != nil {
				resp := &pb.WatchResponse{Header: w.s.header(0), WatchId: id, Created: true, Canceled: true, CancelReason: err.Error()}
				var ce *raftstore.CompactedError
				if errors.As(err, &ce) {
					resp.CompactRevision = ce.Oldest
				}
				mu.Lock()
				delete(watches, id)
				mu.Unlock()
				wcancel()
				send(resp)
				continue
			}
			if !send(&pb.WatchResponse{Header: w.s.header(0), WatchId: id, Created: true}) {
				wcancel()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.forward(wctx, id, cr, watcher, send)
				mu.Lock()
				delete(watches, id)
				mu.Unlock()
			}()
		case *pb.WatchRequest_CancelRequest:
			mu.Lock()
			c := watches[r.CancelRequest.WatchId]
			delete(watches, r.CancelRequest.WatchId)
			mu.Unlock()
			if c != nil {
				c()
				send(&pb.WatchResponse{Header: w.s.header(0), WatchId: r.CancelRequest.WatchId, Canceled: true})
			}
		case *pb.WatchRequest_ProgressRequest:
			// WatchId -1 marks a stream-wide progress response, as in etcd.
			send(&pb.WatchResponse{Header: w.s.header(0), WatchId: -1})
		}
	}
}

func (w *watchServer) forward(ctx context.Context, id int64, cr *pb.WatchCreateRequest, watcher *raftstore.Watcher, send func(*pb.WatchResponse) bool) {
	noPut, noDelete := false, false
	for _, f := range cr.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			noPut = true
		case pb.WatchCreateRequest_NODELETE:
			noDelete = true
		}
	}
	for {
		var r raftstore.WatchResponse
		var ok bool
		select {
		case r, ok = <-watcher.C():
		case <-ctx.Done():
			return
		}
		if !ok {
			if ctx.Err() != nil {
				return
			}
			// The store ended the watch (too slow, compacted, shut down):
			// tell the client, which re-creates it or relists.
			err := watcher.Err()
			resp := &pb.WatchResponse{Header: w.s.header(0), WatchId: id, Canceled: true, CancelReason: err.Error()}
			var ce *raftstore.CompactedError
			if errors.As(err, &ce) {
				resp.CompactRevision = ce.Oldest
			}
			send(resp)
			return
		}
		if r.Progress {
			if cr.ProgressNotify {
				send(&pb.WatchResponse{Header: w.s.header(r.Revision), WatchId: id})
			}
			continue
		}
		events := make([]*mvccpb.Event, 0, len(r.Events))
		for _, ev := range r.Events {
			if (ev.Type == kv.EventPut && noPut) || (ev.Type == kv.EventDelete && noDelete) {
				continue
			}
			e := &mvccpb.Event{Kv: toMVCC(ev.KV, false)}
			if ev.Type == kv.EventDelete {
				e.Type = mvccpb.DELETE
			}
			if cr.PrevKv && ev.PrevKV != nil {
				e.PrevKv = toMVCC(*ev.PrevKV, false)
			}
			events = append(events, e)
		}
		if len(events) == 0 {
			continue
		}
		for len(events) > maxEventsPerResponse && cr.Fragment {
			if !send(&pb.WatchResponse{Header: w.s.header(r.Revision), WatchId: id, Events: events[:maxEventsPerResponse], Fragment: true}) {
				return
			}
			events = events[maxEventsPerResponse:]
		}
		if !send(&pb.WatchResponse{Header: w.s.header(r.Revision), WatchId: id, Events: events}) {
			return
		}
	}
}
