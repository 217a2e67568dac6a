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
	"sort"
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
	mu     sync.RWMutex
	tree   *btree.BTreeG[*entry]
	rev    int64
	leases map[int64]*lease
}

// lease is a granted lease: its TTL and the keys attached to it. Expiry is
// not state: the leader keeps time and proposes a revoke.
type lease struct {
	ttl  int64
	keys map[string]struct{}
}

// LeaseInfo describes one lease.
type LeaseInfo struct {
	ID  int64
	TTL int64
}

const degree = 32

// New returns an empty key space at revision 0.
func New() *Store {
	return &Store{tree: btree.NewG(degree, lessEntry), leases: map[int64]*lease{}}
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
	cmds := make([]command.Command, len(txns))
	for i, t := range txns {
		cmds[i] = command.Command{Type: command.TypeTxn, Txn: t}
	}
	return s.ApplyCommands(cmds)
}

// ApplyCommands applies commands of every type, as Apply does.
func (s *Store) ApplyCommands(cmds []command.Command) ([]*command.Response, []Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resps := make([]*command.Response, len(cmds))
	changes := make([]Change, len(cmds))
	for i, c := range cmds {
		switch {
		case c.Txn != nil:
			resps[i], changes[i] = s.applyTxn(c.Txn)
		case c.Type == command.TypeLeaseGrant && c.Lease != nil:
			resps[i], changes[i] = s.grant(c.Lease)
		case c.Type == command.TypeLeaseRevoke && c.Lease != nil:
			resps[i], changes[i] = s.revoke(c.Lease)
		default:
			resps[i], changes[i] = &command.Response{Revision: s.rev}, Change{Revision: s.rev}
		}
	}
	return resps, changes
}

func (s *Store) grant(l *command.LeaseCmd) (*command.Response, Change) {
	if _, ok := s.leases[l.ID]; ok || l.ID == 0 {
		return &command.Response{Revision: s.rev, Err: command.ErrLeaseExists}, Change{Revision: s.rev}
	}
	s.leases[l.ID] = &lease{ttl: l.TTL, keys: map[string]struct{}{}}
	return &command.Response{Revision: s.rev, Succeeded: true}, Change{Revision: s.rev}
}

// revoke deletes the lease and, at one new revision, every key on it.
func (s *Store) revoke(l *command.LeaseCmd) (*command.Response, Change) {
	ls, ok := s.leases[l.ID]
	if !ok {
		return &command.Response{Revision: s.rev, Err: command.ErrLeaseNotFound}, Change{Revision: s.rev}
	}
	delete(s.leases, l.ID)
	keys := make([]string, 0, len(ls.keys))
	for k := range ls.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys) // events in key order, the same on every member
	next := s.rev + 1
	var events []Event
	for _, k := range keys {
		e, ok := s.tree.Get(&entry{key: k})
		if !ok {
			continue
		}
		s.tree.Delete(e)
		prev := e.kv
		events = append(events, Event{Type: EventDelete, KV: command.KeyValue{Key: prev.Key, ModRev: next}, PrevKV: &prev})
	}
	if len(events) > 0 {
		s.rev = next
	}
	return &command.Response{Revision: s.rev, Succeeded: true}, Change{Revision: s.rev, Events: events}
}

// ReadTxn evaluates a transaction that writes nothing (IsWrite false)
// under the read lock: compares, then the chosen branch's range reads.
func (s *Store) ReadTxn(t *command.Txn) *command.Response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ok, ops := s.branch(t)
	resp := &command.Response{Revision: s.rev, Succeeded: ok, Results: make([]command.OpResult, len(ops))}
	for i := range ops {
		if op := &ops[i]; op.Type == command.OpRange {
			r := rangeTree(s.tree, s.rev, op.Key, op.End, op.Limit, op.CountOnly)
			resp.Results[i] = command.OpResult{KVs: r.KVs, Count: r.Count, More: r.More}
		}
	}
	return resp
}

// branch evaluates the compares and returns the ops to run.
func (s *Store) branch(t *command.Txn) (bool, []command.Op) {
	for i := range t.Compares {
		if !s.compare(&t.Compares[i]) {
			return false, t.Failure
		}
	}
	return true, t.Success
}

func (s *Store) applyTxn(t *command.Txn) (*command.Response, Change) {
	ok, ops := s.branch(t)
	for i := range ops {
		if l := ops[i].Lease; ops[i].Type == command.OpPut && l != 0 {
			if _, found := s.leases[l]; !found {
				return &command.Response{Revision: s.rev, Err: command.ErrLeaseNotFound}, Change{Revision: s.rev}
			}
		}
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
	kv := command.KeyValue{Key: op.Key, Value: op.Value, CreateRev: rev, ModRev: rev, Version: 1, Lease: op.Lease}
	ev := Event{Type: EventPut}
	if old, ok := s.tree.Get(&entry{key: k}); ok {
		kv.CreateRev = old.kv.CreateRev
		kv.Version = old.kv.Version + 1
		s.detach(old.kv.Lease, k)
		prev := old.kv
		ev.PrevKV = &prev
		if op.PrevKV {
			res.KVs = []command.KeyValue{prev}
		}
	}
	ev.KV = kv
	s.tree.ReplaceOrInsert(&entry{key: k, kv: kv})
	if op.Lease != 0 {
		s.leases[op.Lease].keys[k] = struct{}{}
	}
	return ev
}

func (s *Store) detach(leaseID int64, key string) {
	if ls, ok := s.leases[leaseID]; ok {
		delete(ls.keys, key)
	}
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
		s.detach(e.kv.Lease, e.key)
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
	case command.TargetLease:
		v = kv.Lease
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
	tree   *btree.BTreeG[*entry]
	rev    int64
	leases []LeaseInfo
}

// View captures the current state.
func (s *Store) View() *View {
	s.mu.Lock() // Clone must not run concurrently with writes or other clones.
	defer s.mu.Unlock()
	return &View{tree: s.tree.Clone(), rev: s.rev, leases: s.leasesLocked()}
}

func (s *Store) leasesLocked() []LeaseInfo {
	out := make([]LeaseInfo, 0, len(s.leases))
	for id, l := range s.leases {
		out = append(out, LeaseInfo{ID: id, TTL: l.ttl})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Leases lists every lease, by ID.
func (s *Store) Leases() []LeaseInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.leasesLocked()
}

// Lease returns a lease's TTL and its keys in order; ok is false if it does
// not exist.
func (s *Store) Lease(id int64) (ttl int64, keys [][]byte, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.leases[id]
	if !ok {
		return 0, nil, false
	}
	names := make([]string, 0, len(l.keys))
	for k := range l.keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		keys = append(keys, []byte(k))
	}
	return l.ttl, keys, true
}

// Leases lists the view's leases, by ID (a copy).
func (v *View) Leases() []LeaseInfo { return append([]LeaseInfo(nil), v.leases...) }

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
	tree   *btree.BTreeG[*entry]
	leases map[int64]*lease
}

// NewBuilder starts an empty rebuild.
func NewBuilder() *Builder {
	return &Builder{tree: btree.NewG(degree, lessEntry), leases: map[int64]*lease{}}
}

// Add adds one key. Keys are expected in ascending order; any order works.
func (b *Builder) Add(kv command.KeyValue) {
	b.tree.ReplaceOrInsert(&entry{key: string(kv.Key), kv: kv})
}

// AddLease adds a lease.
func (b *Builder) AddLease(l LeaseInfo) {
	b.leases[l.ID] = &lease{ttl: l.TTL, keys: map[string]struct{}{}}
}

// Restore replaces the store's whole state with the built one at rev.
// Keys are attached to their leases here, from each key's lease field.
func (s *Store) Restore(b *Builder, rev int64) {
	b.tree.Ascend(func(e *entry) bool {
		if l, ok := b.leases[e.kv.Lease]; ok {
			l.keys[e.key] = struct{}{}
		}
		return true
	})
	delete(b.leases, 0) // 0 means "no lease"
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree = b.tree
	s.leases = b.leases
	s.rev = rev
}
