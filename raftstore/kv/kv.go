// Package kv is the store's revisioned key space: an ordered in-memory B-tree
// of key -> {value, create revision, mod revision, version} and one global
// revision that grows by one per write transaction, as in etcd.
//
// It knows nothing of Raft or the network: the FSM feeds it decoded
// transactions in log order and it must stay deterministic. Stored entries are
// never modified in place, so values handed to readers stay valid, and a
// snapshot is a lazy copy-on-write clone of the tree.
package kv

import (
	"bytes"
	"sync"

	"github.com/google/btree"

	"github.com/droverhq/drover/raftstore/command"
)

// EventType says whether a key was written or deleted.
type EventType byte

const (
	EventPut    EventType = 1
	EventDelete EventType = 2
)

func (t EventType) String() string {
	if t == EventPut {
		return "PUT"
	}
	return "DELETE"
}

// Event is one key change. For a delete, KV carries the key and the
// revision of the delete (ModRev) and nothing else. PrevKV is the key's
// previous state, nil if it did not exist.
type Event struct {
	Type   EventType
	KV     command.KeyValue
	PrevKV *command.KeyValue
}

// Change is everything one write transaction did, at one revision.
type Change struct {
	Revision int64
	Events   []Event
}

type entry struct {
	key string
	kv  command.KeyValue
}

func lessEntry(a, b *entry) bool { return a.key < b.key }

// Store is the key space. Readers may run concurrently with each other;
// Apply excludes them for the duration of a batch.
type Store struct {
	mu   sync.RWMutex
	tree *btree.BTreeG[*entry]
	rev  int64
}

const degree = 32

// New returns an empty key space at revision 0.
func New() *Store {
	return &Store{tree: btree.NewG(degree, lessEntry)}
}

// Revision is the revision of the last write transaction.
func (s *Store) Revision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Len is the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Len()
}

// RangeResult is what a range read returns, with the revision it reflects.
type RangeResult struct {
	KVs      []command.KeyValue
	Count    int64
	More     bool
	Revision int64
}

// Range reads key, or [key, end) when end is non-empty ("\x00" = to the end).
// Returned slices are shared with the store and must not be modified.
func (s *Store) Range(key, end []byte, limit int64, countOnly bool) RangeResult {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return rangeTree(s.tree, s.rev, key, end, limit, countOnly)
}

func rangeTree(t *btree.BTreeG[*entry], rev int64, key, end []byte, limit int64, countOnly bool) RangeResult {
	res := RangeResult{Revision: rev}
	if len(end) == 0 {
		if e, ok := t.Get(&entry{key: string(key)}); ok {
			res.Count = 1
			if !countOnly {
				res.KVs = []command.KeyValue{e.kv}
			}
		}
		return res
	}
	visit := func(e *entry) bool {
		res.Count++
		if countOnly {
			return true
		}
		if limit > 0 && int64(len(res.KVs)) >= limit {
			res.More = true
			// Keep counting: etcd reports the full count with a limit.
			return true
		}
		res.KVs = append(res.KVs, e.kv)
		return true
	}
	if isToEnd(end) {
		t.AscendGreaterOrEqual(&entry{key: string(key)}, visit)
	} else {
		t.AscendRange(&entry{key: string(key)}, &entry{key: string(end)}, visit)
	}
	return res
}

func isToEnd(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// Apply applies write transactions in order and returns each one's response
// and change (a change with no events when it wrote nothing). The whole batch
// holds the write lock once: readers see either none or all of it.
func (s *Store) Apply(txns []*command.Txn) ([]*command.Response, []Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resps := make([]*command.Response, len(txns))
	changes := make([]Change, len(txns))
	for i, t := range txns {
		resps[i], changes[i] = s.applyTxn(t)
	}
	return resps, changes
}

func (s *Store) applyTxn(t *command.Txn) (*command.Response, Change) {
	ok := true
	for i := range t.Compares {
		if !s.compare(&t.Compares[i]) {
			ok = false
			break
		}
	}
	ops := t.Success
	if !ok {
		ops = t.Failure
	}
	next := s.rev + 1
	resp := &command.Response{Succeeded: ok, Results: make([]command.OpResult, len(ops))}
	var events []Event
	for i := range ops {
		op := &ops[i]
		switch op.Type {
		case command.OpRange:
			// Reads inside a transaction see its earlier writes; a write
			// already made here carries ModRev == next.
			r := rangeTree(s.tree, s.rev, op.Key, op.End, op.Limit, op.CountOnly)
			resp.Results[i] = command.OpResult{KVs: r.KVs, Count: r.Count, More: r.More}
		case command.OpPut:
			events = append(events, s.put(op, next, &resp.Results[i]))
		case command.OpDelete:
			events = s.delete(op, next, &resp.Results[i], events)
		}
	}
	if len(events) > 0 {
		s.rev = next
	}
	resp.Revision = s.rev
	return resp, Change{Revision: s.rev, Events: events}
}

func (s *Store) put(op *command.Op, rev int64, res *command.OpResult) Event {
	k := string(op.Key)
	kv := command.KeyValue{Key: op.Key, Value: op.Value, CreateRev: rev, ModRev: rev, Version: 1}
	ev := Event{Type: EventPut}
	if old, ok := s.tree.Get(&entry{key: k}); ok {
		kv.CreateRev = old.kv.CreateRev
		kv.Version = old.kv.Version + 1
		prev := old.kv
		ev.PrevKV = &prev
		if op.PrevKV {
			res.KVs = []command.KeyValue{prev}
		}
	}
	ev.KV = kv
	s.tree.ReplaceOrInsert(&entry{key: k, kv: kv})
	return ev
}

func (s *Store) delete(op *command.Op, rev int64, res *command.OpResult, events []Event) []Event {
	var doomed []*entry
	if len(op.End) == 0 {
		if e, ok := s.tree.Get(&entry{key: string(op.Key)}); ok {
			doomed = append(doomed, e)
		}
	} else {
		collect := func(e *entry) bool { doomed = append(doomed, e); return true }
		if isToEnd(op.End) {
			s.tree.AscendGreaterOrEqual(&entry{key: string(op.Key)}, collect)
		} else {
			s.tree.AscendRange(&entry{key: string(op.Key)}, &entry{key: string(op.End)}, collect)
		}
	}
	for _, e := range doomed {
		s.tree.Delete(e)
		prev := e.kv
		events = append(events, Event{Type: EventDelete, KV: command.KeyValue{Key: prev.Key, ModRev: rev}, PrevKV: &prev})
		if op.PrevKV {
			res.KVs = append(res.KVs, prev)
		}
	}
	res.Deleted = int64(len(doomed))
	res.Count = res.Deleted
	return events
}

func (s *Store) compare(c *command.Compare) bool {
	e, exists := s.tree.Get(&entry{key: string(c.Key)})
	var kv command.KeyValue
	if exists {
		kv = e.kv
	}
	if c.Target == command.TargetValue {
		if !exists {
			return false
		}
		return holds(bytes.Compare(kv.Value, c.Value), c.Result)
	}
	var v int64
	switch c.Target {
	case command.TargetVersion:
		v = kv.Version
	case command.TargetCreateRev:
		v = kv.CreateRev
	case command.TargetModRev:
		v = kv.ModRev
	}
	switch {
	case v < c.Int:
		return holds(-1, c.Result)
	case v > c.Int:
		return holds(1, c.Result)
	}
	return holds(0, c.Result)
}

func holds(cmp int, r command.Result) bool {
	switch r {
	case command.Equal:
		return cmp == 0
	case command.NotEqual:
		return cmp != 0
	case command.Less:
		return cmp < 0
	case command.Greater:
		return cmp > 0
	}
	return false
}

// View is an immutable point-in-time copy of the key space, cheap to take
// (copy-on-write) and safe to read while the store keeps applying.
type View struct {
	tree *btree.BTreeG[*entry]
	rev  int64
}

// View captures the current state.
func (s *Store) View() *View {
	s.mu.Lock() // Clone must not run concurrently with writes or other clones.
	defer s.mu.Unlock()
	return &View{tree: s.tree.Clone(), rev: s.rev}
}

// Revision is the revision the view reflects.
func (v *View) Revision() int64 { return v.rev }

// Len is the number of keys in the view.
func (v *View) Len() int { return v.tree.Len() }

// Ascend calls fn for every key in order until fn returns false.
func (v *View) Ascend(fn func(command.KeyValue) bool) {
	v.tree.Ascend(func(e *entry) bool { return fn(e.kv) })
}

// Range reads from the view as Store.Range does.
func (v *View) Range(key, end []byte, limit int64, countOnly bool) RangeResult {
	return rangeTree(v.tree, v.rev, key, end, limit, countOnly)
}

// Builder rebuilds a key space from a snapshot stream.
type Builder struct {
	tree *btree.BTreeG[*entry]
}

// NewBuilder starts an empty rebuild.
func NewBuilder() *Builder { return &Builder{tree: btree.NewG(degree, lessEntry)} }

// Add adds one key. Keys are expected in ascending order; any order works.
func (b *Builder) Add(kv command.KeyValue) {
	b.tree.ReplaceOrInsert(&entry{key: string(kv.Key), kv: kv})
}

// Restore replaces the store's whole state with the built tree at rev.
func (s *Store) Restore(b *Builder, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree = b.tree
	s.rev = rev
}
