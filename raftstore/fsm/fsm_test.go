package fsm_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/fsm"
	"github.com/droverhq/drover/raftstore/kv"
	"github.com/droverhq/drover/raftstore/watch"
)

// waitFor bounds how long a test waits for something that should happen
// promptly; it is a deadline, never a sleep.
const waitFor = 10 * time.Second

type harness struct {
	fsm   *fsm.FSM
	store *kv.Store
	hub   *watch.Hub
	logs  *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{store: kv.New(), logs: &syncBuffer{}}
	cfg := watch.DefaultConfig()
	cfg.ProgressInterval = 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	h.hub = watch.NewHub(cfg, 0)
	t.Cleanup(h.hub.Close)
	h.fsm = fsm.New(h.store, h.hub, slog.New(slog.NewTextHandler(h.logs, nil)))
	return h
}

func b(s string) []byte { return []byte(s) }

func cmd(index uint64, txn *command.Txn) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: command.EncodeTxn(txn)}
}

func raw(index uint64, typ raft.LogType, data []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: typ, Data: data}
}

func putLog(index uint64, key, value string) *raft.Log {
	return cmd(index, command.Put(b(key), b(value), false))
}

// dump is the whole key space, with metadata, in key order.
func dump(s *kv.Store) []command.KeyValue {
	return s.Range(nil, b("\x00"), 0, false).KVs
}

func resp(t *testing.T, v interface{}) *command.Response {
	t.Helper()
	r, ok := v.(*command.Response)
	if !ok || r == nil {
		t.Fatalf("response is %T %v, want *command.Response", v, v)
	}
	return r
}

func TestApplyBatchMixedEntries(t *testing.T) {
	h := newHarness(t)
	ignorable := []byte{command.Version, byte(command.IgnoreUnknown | 9), 1, 2, 3}
	logs := []*raft.Log{
		raw(1, raft.LogConfiguration, []byte("not a command")),
		putLog(2, "a", "1"),
		raw(3, raft.LogNoop, nil),
		putLog(4, "b", "1"),
		raw(5, raft.LogBarrier, nil),
		cmd(6, &command.Txn{Success: []command.Op{{Type: command.OpRange, Key: b("a"), End: b("\x00")}}}),
		raw(7, raft.LogCommand, ignorable),
		cmd(8, command.Delete(b("a"), nil, true)),
		raw(9, raft.LogConfiguration, nil),
	}
	out := h.fsm.ApplyBatch(logs)
	if len(out) != len(logs) {
		t.Fatalf("%d responses for %d entries", len(out), len(logs))
	}
	for _, i := range []int{0, 2, 4, 6, 8} {
		if out[i] != nil {
			t.Errorf("entry %d (%v): response %v, want nil", logs[i].Index, logs[i].Type, out[i])
		}
	}
	// Responses are aligned with their entries.
	if r := resp(t, out[1]); r.Revision != 1 || !r.Succeeded {
		t.Errorf("put a: %+v", r)
	}
	if r := resp(t, out[3]); r.Revision != 2 {
		t.Errorf("put b: %+v", r)
	}
	r := resp(t, out[5])
	if r.Revision != 2 || len(r.Results) != 1 || r.Results[0].Count != 2 {
		t.Errorf("range: %+v", r)
	}
	r = resp(t, out[7])
	if r.Revision != 3 || r.Results[0].Deleted != 1 || len(r.Results[0].KVs) != 1 || string(r.Results[0].KVs[0].Value) != "1" {
		t.Errorf("delete: %+v", r)
	}
	if got := h.fsm.Index(); got != 9 {
		t.Fatalf("Index = %d, want 9 (the last entry, even a non-command)", got)
	}
	if h.store.Revision() != 3 || h.store.Len() != 1 {
		t.Fatalf("store revision %d len %d, want 3 1", h.store.Revision(), h.store.Len())
	}
}

func TestApplySingle(t *testing.T) {
	h := newHarness(t)
	r := resp(t, h.fsm.Apply(putLog(1, "k", "v")))
	if r.Revision != 1 || !r.Succeeded {
		t.Fatalf("Apply: %+v", r)
	}
	if got := h.fsm.Apply(raw(2, raft.LogConfiguration, nil)); got != nil {
		t.Fatalf("Apply(configuration) = %v, want nil", got)
	}
	if h.fsm.Index() != 2 {
		t.Fatalf("Index = %d, want 2", h.fsm.Index())
	}
}

func TestIndexAdvances(t *testing.T) {
	h := newHarness(t)
	if h.fsm.Index() != 0 {
		t.Fatalf("new FSM Index = %d", h.fsm.Index())
	}
	steps := []struct {
		logs []*raft.Log
		want uint64
	}{
		{[]*raft.Log{putLog(1, "a", "1")}, 1},
		{[]*raft.Log{putLog(2, "a", "2"), putLog(3, "a", "3"), putLog(4, "a", "4")}, 4},
		{[]*raft.Log{raw(5, raft.LogConfiguration, nil)}, 5},
		{[]*raft.Log{raw(6, raft.LogConfiguration, nil), raw(10, raft.LogConfiguration, nil)}, 10},
		{nil, 10}, // an empty batch changes nothing
		{[]*raft.Log{}, 10},
	}
	for i, st := range steps {
		out := h.fsm.ApplyBatch(st.logs)
		if len(out) != len(st.logs) {
			t.Fatalf("step %d: %d responses for %d entries", i, len(out), len(st.logs))
		}
		if got := h.fsm.Index(); got != st.want {
			t.Fatalf("step %d: Index = %d, want %d", i, got, st.want)
		}
	}
}

func TestWaitIndex(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// Index 0 is always reached.
	if err := h.fsm.WaitIndex(ctx, 0); err != nil {
		t.Fatalf("WaitIndex(0) = %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- h.fsm.WaitIndex(ctx, 5) }()

	h.fsm.ApplyBatch([]*raft.Log{putLog(1, "a", "1"), putLog(2, "a", "2")})
	h.fsm.ApplyBatch([]*raft.Log{raw(3, raft.LogConfiguration, nil)})
	h.fsm.ApplyBatch([]*raft.Log{putLog(4, "a", "4")})
	select {
	case err := <-done:
		t.Fatalf("WaitIndex(5) returned %v at index %d", err, h.fsm.Index())
	default:
	}

	h.fsm.ApplyBatch([]*raft.Log{putLog(5, "a", "5"), putLog(6, "a", "6")})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitIndex(5) = %v", err)
		}
	case <-time.After(waitFor):
		t.Fatalf("WaitIndex(5) did not return after index reached %d", h.fsm.Index())
	}

	// Already reached: returns at once, for lower indexes too.
	for _, idx := range []uint64{1, 5, 6} {
		if err := h.fsm.WaitIndex(ctx, idx); err != nil {
			t.Fatalf("WaitIndex(%d) = %v", idx, err)
		}
	}
}

func TestWaitIndexManyWaiters(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	const n = 20
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		go func() { errs <- h.fsm.WaitIndex(ctx, uint64(i)) }()
	}
	for i := 1; i <= n; i++ {
		h.fsm.ApplyBatch([]*raft.Log{putLog(uint64(i), "k", fmt.Sprint(i))})
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("waiter: %v", err)
		}
	}
}

func TestWaitIndexRespectsContext(t *testing.T) {
	h := newHarness(t)
	h.fsm.ApplyBatch([]*raft.Log{putLog(1, "a", "1")})

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.fsm.WaitIndex(ctx, 100) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitIndex = %v, want context.Canceled", err)
			}
		case <-time.After(waitFor):
			t.Fatalf("WaitIndex ignored cancellation")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if err := h.fsm.WaitIndex(ctx, 100); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitIndex = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.fsm.WaitIndex(ctx, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitIndex(unreached) = %v, want context.Canceled", err)
		}
		// A reached index wins over a done context.
		if err := h.fsm.WaitIndex(ctx, 1); err != nil {
			t.Fatalf("WaitIndex(reached) = %v, want nil", err)
		}
	})
	t.Run("applies do not end the wait early", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.fsm.WaitIndex(ctx, 100) }()
		for i := uint64(2); i < 20; i++ {
			h.fsm.ApplyBatch([]*raft.Log{putLog(i, "a", "x")})
		}
		select {
		case err := <-done:
			t.Fatalf("WaitIndex(100) returned %v at index %d", err, h.fsm.Index())
		default:
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitIndex = %v, want context.Canceled", err)
		}
	})
}

// sink is a raft.SnapshotSink over a buffer.
type sink struct {
	bytes.Buffer
	closed, cancelled int
	failWrites        bool
}

func (s *sink) ID() string { return "test-snapshot" }

func (s *sink) Write(p []byte) (int, error) {
	if s.failWrites {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}

func (s *sink) Close() error  { s.closed++; return nil }
func (s *sink) Cancel() error { s.cancelled++; return nil }

var _ raft.SnapshotSink = (*sink)(nil)

// readCloser records whether Restore closed its input.
type readCloser struct {
	io.Reader
	closed bool
}

func (r *readCloser) Close() error { r.closed = true; return nil }

func persist(t *testing.T, f *fsm.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	return persistSnap(t, snap)
}

func persistSnap(t *testing.T, snap raft.FSMSnapshot) []byte {
	t.Helper()
	s := &sink{}
	if err := snap.Persist(s); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if s.closed != 1 || s.cancelled != 0 {
		t.Fatalf("Persist closed the sink %d times and cancelled it %d times, want 1 and 0", s.closed, s.cancelled)
	}
	return s.Bytes()
}

func restore(t *testing.T, data []byte) *harness {
	t.Helper()
	h := newHarness(t)
	rc := &readCloser{Reader: bytes.NewReader(data)}
	if err := h.fsm.Restore(rc); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !rc.closed {
		t.Fatalf("Restore did not close its input")
	}
	return h
}

// populate applies a varied history: binary keys, updates, deletes, empty
// values, a range delete and non-command entries.
func populate(t *testing.T, f *fsm.FSM) {
	t.Helper()
	var logs []*raft.Log
	idx := uint64(0)
	add := func(l *raft.Log) { idx++; l.Index = idx; logs = append(logs, l) }
	add(raw(0, raft.LogConfiguration, nil))
	for i := 0; i < 300; i++ {
		add(putLog(0, fmt.Sprintf("key/%03d", i), fmt.Sprintf("value %d", i)))
	}
	add(putLog(0, "\x00", "zero"))
	add(putLog(0, "\xff\xff", "ff"))
	add(putLog(0, "a\x00b", ""))
	add(putLog(0, "key/007", "updated"))
	add(putLog(0, "key/007", "updated again"))
	add(cmd(0, command.Delete(b("key/010"), nil, false)))
	add(cmd(0, command.Delete(b("key/1"), b("key/2"), false)))
	add(raw(0, raft.LogBarrier, nil))
	add(cmd(0, &command.Txn{Success: []command.Op{
		{Type: command.OpPut, Key: b("txn/a"), Value: b("1")},
		{Type: command.OpPut, Key: b("txn/b"), Value: bytes.Repeat([]byte{0xfe}, 10000)},
	}}))
	// Leases: some with keys, one emptied, one never used, one revoked.
	for _, id := range []int64{100, 200, 300, 400, math.MaxInt64, -7} {
		add(grantLog(0, id, id%1000+1))
	}
	for i := 0; i < 40; i++ {
		add(putLeaseLog(0, fmt.Sprintf("leased/%02d", i), "v", []int64{100, 200, 300}[i%3]))
	}
	add(putLeaseLog(0, "key/007", "now leased", math.MaxInt64))
	add(putLeaseLog(0, "leased/00", "moved", 200))
	add(putLeaseLog(0, "leased/01", "detached", 0))
	add(cmd(0, command.Delete(b("leased/3"), b("leased/4"), false)))
	add(revokeLog(0, 300))
	add(revokeLog(0, -7))
	for len(logs) > 0 {
		n := min(len(logs), 64)
		f.ApplyBatch(logs[:n])
		logs = logs[n:]
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := newHarness(t)
	populate(t, src.fsm)
	data := persist(t, src.fsm)

	dst := restore(t, data)
	if got, want := dst.fsm.Index(), src.fsm.Index(); got != want {
		t.Fatalf("restored Index = %d, want %d", got, want)
	}
	if got, want := dst.store.Revision(), src.store.Revision(); got != want {
		t.Fatalf("restored revision = %d, want %d", got, want)
	}
	if got, want := dump(dst.store), dump(src.store); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state differs: %d keys, want %d", len(got), len(want))
	}
	checkLeasesEqual(t, dst.store, src.store)
	if dst.hub.Revision() != src.store.Revision() {
		t.Fatalf("hub revision after restore = %d, want %d", dst.hub.Revision(), src.store.Revision())
	}
	// A WaitIndex on the restored index returns at once.
	if err := dst.fsm.WaitIndex(context.Background(), src.fsm.Index()); err != nil {
		t.Fatal(err)
	}

	// Both members go on identically from the same log.
	next := src.fsm.Index() + 1
	more := []*raft.Log{
		putLog(next, "key/007", "after"),
		cmd(next+1, command.Delete(b("key/"), command.PrefixEnd(b("key/")), true)),
		putLog(next+2, "new", "1"),
		revokeLog(next+3, 200),
		revokeLog(next+4, 100),
		grantLog(next+5, 300, 1),
		putLeaseLog(next+6, "new", "2", 300),
		revokeLog(next+7, 400),
	}
	outSrc := src.fsm.ApplyBatch(more)
	outDst := dst.fsm.ApplyBatch(more)
	if !reflect.DeepEqual(outSrc, outDst) {
		t.Fatalf("responses after restore differ")
	}
	if !reflect.DeepEqual(dump(dst.store), dump(src.store)) || dst.store.Revision() != src.store.Revision() {
		t.Fatalf("states diverged after restore")
	}
	checkLeasesEqual(t, dst.store, src.store)

	// Snapshot of the restored member is byte-identical to the source's.
	if a, b := persist(t, src.fsm), persist(t, dst.fsm); !bytes.Equal(a, b) {
		t.Fatalf("snapshots differ after identical applies")
	}
}

func TestSnapshotEmpty(t *testing.T) {
	src := newHarness(t)
	data := persist(t, src.fsm)
	dst := newHarness(t)
	// Give dst some state, which the empty snapshot must replace.
	dst.fsm.ApplyBatch([]*raft.Log{putLog(1, "a", "1"), putLog(2, "b", "1")})
	if err := dst.fsm.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if dst.store.Len() != 0 || dst.store.Revision() != 0 || dst.fsm.Index() != 0 {
		t.Fatalf("after empty restore: len %d revision %d index %d", dst.store.Len(), dst.store.Revision(), dst.fsm.Index())
	}
}

func TestRestoreReplacesState(t *testing.T) {
	src := newHarness(t)
	src.fsm.ApplyBatch([]*raft.Log{putLog(1, "keep", "src")})
	data := persist(t, src.fsm)

	dst := newHarness(t)
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, putLog(i, fmt.Sprintf("dst%d", i), "x"))
	}
	dst.fsm.ApplyBatch(logs)
	if err := dst.fsm.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	want := []command.KeyValue{{Key: b("keep"), Value: b("src"), CreateRev: 1, ModRev: 1, Version: 1}}
	if got := dump(dst.store); !reflect.DeepEqual(got, want) {
		t.Fatalf("state %+v, want %+v", got, want)
	}
	if dst.store.Revision() != 1 || dst.fsm.Index() != 1 {
		t.Fatalf("revision %d index %d, want 1 1", dst.store.Revision(), dst.fsm.Index())
	}
}

func TestSnapshotIsPointInTime(t *testing.T) {
	src := newHarness(t)
	populate(t, src.fsm)
	wantState, wantRev, wantIndex := dump(src.store), src.store.Revision(), src.fsm.Index()
	snap, err := src.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()

	// The FSM keeps applying before the snapshot is persisted.
	next := wantIndex + 1
	var logs []*raft.Log
	for i := 0; i < 500; i++ {
		logs = append(logs, putLog(next, fmt.Sprintf("later/%03d", i), "x"))
		next++
	}
	logs = append(logs, putLog(next, "key/000", "changed"), cmd(next+1, command.Delete(b(""), b("\x00"), false)))
	src.fsm.ApplyBatch(logs)
	if src.store.Len() != 0 {
		t.Fatalf("setup: store not emptied")
	}

	dst := restore(t, persistSnap(t, snap))
	if got := dump(dst.store); !reflect.DeepEqual(got, wantState) {
		t.Fatalf("snapshot shows later writes: %d keys, want %d", len(got), len(wantState))
	}
	if dst.store.Revision() != wantRev || dst.fsm.Index() != wantIndex {
		t.Fatalf("snapshot revision %d index %d, want %d %d", dst.store.Revision(), dst.fsm.Index(), wantRev, wantIndex)
	}
}

func TestPersistWriteErrorCancelsSink(t *testing.T) {
	h := newHarness(t)
	populate(t, h.fsm)
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{failWrites: true}
	err = snap.Persist(s)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Persist = %v, want the sink's error", err)
	}
	if s.cancelled != 1 || s.closed != 0 {
		t.Fatalf("sink cancelled %d closed %d times, want 1 and 0", s.cancelled, s.closed)
	}
}

// snapshotHeader is the start of a snapshot stream: magic, version, index,
// revision and record count.
func snapshotHeader(version byte, index uint64, rev int64, count uint64) []byte {
	out := append([]byte("DRVS"), version)
	out = binary.AppendUvarint(out, index)
	out = binary.AppendVarint(out, rev)
	return binary.AppendUvarint(out, count)
}

// appendRecords appends length-prefixed key-value records.
func appendRecords(out []byte, records ...[]byte) []byte {
	for _, r := range records {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
	}
	return out
}

// appendLeases appends the lease section: count, then ID and TTL pairs.
func appendLeases(out []byte, leases ...kv.LeaseInfo) []byte {
	out = binary.AppendUvarint(out, uint64(len(leases)))
	for _, l := range leases {
		out = binary.AppendVarint(out, l.ID)
		out = binary.AppendVarint(out, l.TTL)
	}
	return out
}

// snapshotBytes builds a version 2 snapshot stream by hand, without leases.
func snapshotBytes(index uint64, rev int64, records ...[]byte) []byte {
	return snapshotWithLeases(index, rev, nil, records...)
}

func snapshotWithLeases(index uint64, rev int64, leases []kv.LeaseInfo, records ...[]byte) []byte {
	out := snapshotHeader(2, index, rev, uint64(len(records)))
	out = appendRecords(out, records...)
	return appendLeases(out, leases...)
}

func TestSnapshotFormat(t *testing.T) {
	// A hand-built stream restores: this pins the format documented in fsm.go.
	rec := command.AppendKeyValue(nil, command.KeyValue{Key: b("k"), Value: b("v"), CreateRev: 3, ModRev: 5, Version: 2})
	h := restore(t, snapshotBytes(17, 5, rec))
	want := []command.KeyValue{{Key: b("k"), Value: b("v"), CreateRev: 3, ModRev: 5, Version: 2}}
	if got := dump(h.store); !reflect.DeepEqual(got, want) || h.store.Revision() != 5 || h.fsm.Index() != 17 {
		t.Fatalf("restored %+v rev %d index %d", got, h.store.Revision(), h.fsm.Index())
	}
	if got := h.store.Leases(); len(got) != 0 {
		t.Fatalf("restored leases %+v, want none", got)
	}
	// And Persist writes exactly that stream.
	if got := persist(t, h.fsm); !bytes.Equal(got, snapshotBytes(17, 5, rec)) {
		t.Fatalf("Persist wrote % x\nwant % x", got, snapshotBytes(17, 5, rec))
	}
	// The same, byte by byte: an empty lease section is one zero byte.
	literal := []byte{'D', 'R', 'V', 'S', 2, 17, 10, 1, 8, 1, 'k', 1, 'v', 6, 10, 4, 0, 0}
	if got := snapshotBytes(17, 5, rec); !bytes.Equal(got, literal) {
		t.Fatalf("snapshotBytes = % x, want % x", got, literal)
	}
}

func TestSnapshotFormatWithLeases(t *testing.T) {
	kvs := []command.KeyValue{
		{Key: b("a"), Value: b("1"), CreateRev: 1, ModRev: 1, Version: 1, Lease: 3},
		{Key: b("b"), Value: b("2"), CreateRev: 2, ModRev: 2, Version: 1},
		{Key: b("c"), Value: b("3"), CreateRev: 3, ModRev: 4, Version: 2, Lease: -9},
		{Key: b("d"), Value: b("4"), CreateRev: 4, ModRev: 4, Version: 1, Lease: 3},
	}
	var recs [][]byte
	for _, kv := range kvs {
		recs = append(recs, command.AppendKeyValue(nil, kv))
	}
	leases := []kv.LeaseInfo{{ID: -9, TTL: 5}, {ID: 3, TTL: 60}, {ID: 300, TTL: -1}}
	data := snapshotWithLeases(21, 4, leases, recs...)
	h := restore(t, data)
	if got := dump(h.store); !reflect.DeepEqual(got, kvs) || h.store.Revision() != 4 || h.fsm.Index() != 21 {
		t.Fatalf("restored %+v rev %d index %d", got, h.store.Revision(), h.fsm.Index())
	}
	if got := h.store.Leases(); !reflect.DeepEqual(got, leases) {
		t.Fatalf("restored leases %+v, want %+v", got, leases)
	}
	for id, want := range map[int64][]string{-9: {"c"}, 3: {"a", "d"}, 300: {}} {
		if got := leaseKeys(h.store, id); !reflect.DeepEqual(got, want) {
			t.Fatalf("lease %d keys %q, want %q", id, got, want)
		}
	}
	if got := persist(t, h.fsm); !bytes.Equal(got, data) {
		t.Fatalf("Persist wrote % x\nwant % x", got, data)
	}
	// The lease section byte by byte: count 3, then zigzag (ID, TTL) pairs,
	// by ID.
	tail := []byte{3, 17, 10, 6, 120, 0xd8, 0x04, 1}
	if !bytes.HasSuffix(data, tail) {
		t.Fatalf("snapshot ends % x, want % x", data[len(data)-len(tail):], tail)
	}
	// Leases may come in any order in a stream; Persist writes them by ID.
	shuffled := snapshotWithLeases(21, 4, []kv.LeaseInfo{leases[2], leases[0], leases[1]}, recs...)
	h = restore(t, shuffled)
	if got := h.store.Leases(); !reflect.DeepEqual(got, leases) {
		t.Fatalf("restored leases %+v, want %+v", got, leases)
	}
	if got := persist(t, h.fsm); !bytes.Equal(got, data) {
		t.Fatalf("Persist of a shuffled restore wrote % x\nwant % x", got, data)
	}
}

func TestRestoreGarbage(t *testing.T) {
	good := command.AppendKeyValue(nil, command.KeyValue{Key: b("k"), Value: b("v"), CreateRev: 1, ModRev: 1, Version: 1})
	leased := command.AppendKeyValue(nil, command.KeyValue{Key: b("k"), Value: b("v"), CreateRev: 1, ModRev: 1, Version: 1, Lease: 5})
	hdr := func(rest ...byte) []byte { return append([]byte("DRVS\x02"), rest...) }
	// Declare two records but write only the first.
	twoRecordsOneWritten := appendRecords(snapshotHeader(2, 1, 1, 2), good)
	oneRecord := appendRecords(snapshotHeader(2, 1, 1, 1), good)
	// A version 1 stream: no lease section, no lease in the records.
	v1 := command.AppendKeyValue(nil, command.KeyValue{Key: b("k"), Value: b("v"), CreateRev: 1, ModRev: 1, Version: 1})
	v1 = appendRecords(snapshotHeader(1, 1, 1, 1), v1[:len(v1)-1])
	overflow := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "read header"},
		{"short header", []byte("DRV"), "read header"},
		{"wrong magic", []byte("ABCD\x01\x00\x00\x00"), "not a drover snapshot"},
		{"version 1", []byte("DRVS\x01\x00\x00\x00"), "not a drover snapshot"},
		{"version 1 snapshot", v1, "not a drover snapshot"},
		{"version 3", append([]byte("DRVS\x03"), snapshotBytes(1, 1)[5:]...), "not a drover snapshot"},
		{"text", []byte("hello, this is not a snapshot"), "not a drover snapshot"},
		{"no index", hdr(), "read index"},
		{"bad index", hdr(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "read index"},
		{"no revision", hdr(1), "read revision"},
		{"no count", hdr(1, 2), "read count"},
		{"missing record", hdr(1, 2, 1), "record 0"},
		{"second record missing", twoRecordsOneWritten, "record 1"},
		{"record cut short", hdr(1, 2, 1, 20, 'x'), "record 0"},
		{"record length too big", hdr(1, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), "is corrupt"},
		{"corrupt record", snapshotBytes(1, 1, []byte{0x05, 'k'}), "record 0: corrupt"},
		{"record with trailing bytes", snapshotBytes(1, 1, append(bytes.Clone(good), 0)), "record 0: corrupt"},
		{"empty record", snapshotBytes(1, 1, nil), "record 0: corrupt"},
		{"no lease count", oneRecord, "read lease count"},
		{"no lease count without records", hdr(1, 2, 0), "read lease count"},
		{"lease count overflow", append(bytes.Clone(oneRecord), overflow...), "read lease count"},
		{"lease missing", appendLeases(bytes.Clone(oneRecord), kv.LeaseInfo{ID: 1})[:len(oneRecord)+1], "lease 0"},
		{"lease ttl missing", append(bytes.Clone(oneRecord), 1, 2), "lease 0"},
		{"lease ttl truncated", append(bytes.Clone(oneRecord), 1, 2, 0x80), "lease 0"},
		{"lease id overflow", append(append(bytes.Clone(oneRecord), 1), append(overflow, 2)...), "lease 0"},
		{"second lease missing", append(bytes.Clone(oneRecord), 2, 2, 4), "lease 1"},
		{"huge lease count", append(bytes.Clone(oneRecord), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2, 4), "lease 1"},
		{"trailing byte after leases", append(snapshotWithLeases(1, 1, []kv.LeaseInfo{{ID: 5, TTL: 1}}, leased), 7), "unexpected data"},
		{"trailing byte without leases", append(snapshotBytes(1, 1, good), 0, 0, 9), "unexpected data"},
		// An undeclared record after the declared one: its length is read
		// as the lease count, its bytes as leases, until they run out.
		{"more records than declared", appendLeases(appendRecords(snapshotHeader(2, 1, 1, 1), good, good)), "is zero or repeated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fsm.ApplyBatch([]*raft.Log{grantLog(1, 9, 90), putLeaseLog(1, "existing", "1", 9)})
			before := dump(h.store)
			rc := &readCloser{Reader: bytes.NewReader(tc.data)}
			err := h.fsm.Restore(rc)
			if err == nil {
				t.Fatalf("Restore accepted % x", tc.data)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "restore snapshot") {
				t.Fatalf("Restore error %q does not name the problem (%q)", err, tc.msg)
			}
			if !rc.closed {
				t.Errorf("Restore did not close its input")
			}
			// A failed restore leaves the state alone.
			if got := dump(h.store); !reflect.DeepEqual(got, before) || h.store.Revision() != 1 || h.fsm.Index() != 1 {
				t.Fatalf("failed restore changed the state: %+v rev %d index %d", got, h.store.Revision(), h.fsm.Index())
			}
			if got := h.store.Leases(); !reflect.DeepEqual(got, []kv.LeaseInfo{{ID: 9, TTL: 90}}) || !reflect.DeepEqual(leaseKeys(h.store, 9), []string{"existing"}) {
				t.Fatalf("failed restore changed the leases: %+v", got)
			}
		})
	}
}

// TestRestoreTruncated cuts a valid snapshot at every byte offset: every
// prefix must fail with an error, never panic and never restore.
func TestRestoreTruncated(t *testing.T) {
	src := newHarness(t)
	src.fsm.ApplyBatch([]*raft.Log{
		putLog(1, "a", "1"),
		putLog(2, "\x00\xff", ""),
		cmd(3, &command.Txn{Success: []command.Op{{Type: command.OpPut, Key: b("c"), Value: bytes.Repeat([]byte("x"), 200)}}}),
		grantLog(4, 1, 10),
		grantLog(5, 300, 3000),
		grantLog(6, -2, 1<<40),
		putLeaseLog(7, "d", "1", 300),
	})
	data := persist(t, src.fsm)
	if restore(t, data).store.Len() != 4 {
		t.Fatalf("setup: the whole snapshot does not restore")
	}
	for i := 0; i < len(data); i++ {
		h := newHarness(t)
		if err := h.fsm.Restore(io.NopCloser(bytes.NewReader(data[:i]))); err == nil {
			t.Fatalf("Restore of the first %d of %d bytes succeeded", i, len(data))
		}
		if h.store.Len() != 0 || h.fsm.Index() != 0 || len(h.store.Leases()) != 0 {
			t.Fatalf("Restore of %d bytes changed the state", i)
		}
	}
}

func TestApplyUndecodableCommandPanics(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "too short"},
		{"bad version", []byte{9, 1, 0, 0, 0}, "format version"},
		{"truncated", command.EncodeTxn(command.Put(b("k"), b("v"), false))[:6], "corrupt"},
		{"unknown type not ignorable", []byte{command.Version, 7}, "unknown type 7"},
		{"truncated grant", command.EncodeLeaseGrant(1, 300)[:3], "bad varint"},
		{"grant without ttl", command.EncodeLeaseGrant(1, 1)[:3], "bad varint"},
		{"revoke with trailing byte", append(command.EncodeLeaseRevoke(1), 0), "trailing bytes"},
		{"revoke without id", []byte{command.Version, byte(command.TypeLeaseRevoke)}, "bad varint"},
		{"put without its lease", []byte{1, 1, 0, 1, byte(command.OpPut), 0, 1, 'k', 1, 'v', 0}, "corrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fsm.ApplyBatch([]*raft.Log{putLog(1, "a", "1")})
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				h.fsm.ApplyBatch([]*raft.Log{
					putLog(2, "b", "1"),
					raw(3, raft.LogCommand, tc.data),
				})
			}()
			if recovered == nil {
				t.Fatalf("ApplyBatch of an undecodable command did not panic")
			}
			msg := fmt.Sprint(recovered)
			if !strings.Contains(msg, "log entry 3") || !strings.Contains(msg, tc.msg) {
				t.Fatalf("panic %q should name entry 3 and %q", msg, tc.msg)
			}
			if h.fsm.Index() != 1 {
				t.Fatalf("Index advanced to %d past an entry that was not applied", h.fsm.Index())
			}
		})
	}
}

func TestApplyIgnorableUnknownIsSkipped(t *testing.T) {
	h := newHarness(t)
	h.fsm.ApplyBatch([]*raft.Log{putLog(1, "a", "1")})
	before, rev := dump(h.store), h.store.Revision()

	entries := [][]byte{
		{command.Version, byte(command.IgnoreUnknown | 4)},
		append([]byte{command.Version, byte(command.IgnoreUnknown | command.TypeLeaseGrant)}, command.EncodeLeaseGrant(1, 10)[2:]...),
		append([]byte{command.Version, byte(command.IgnoreUnknown | command.TypeLeaseRevoke)}, command.EncodeLeaseRevoke(1)[2:]...),
		{command.Version, byte(command.IgnoreUnknown | 0x7f), 0xff, 0xff, 0xff},
		append([]byte{command.Version, byte(command.IgnoreUnknown | command.TypeTxn)},
			command.EncodeTxn(command.Put(b("a"), b("overwritten?"), false))[2:]...),
	}
	var logs []*raft.Log
	for i, data := range entries {
		logs = append(logs, raw(uint64(2+i), raft.LogCommand, data))
	}
	last := uint64(2 + len(entries))
	logs = append(logs, putLog(last, "b", "1"))
	var out []interface{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("ignorable unknown command panicked: %v", r)
			}
		}()
		out = h.fsm.ApplyBatch(logs)
	}()
	for i := range entries {
		if out[i] != nil {
			t.Errorf("skipped entry %d: response %v, want nil", i, out[i])
		}
	}
	if r := resp(t, out[len(entries)]); r.Revision != rev+1 {
		t.Fatalf("the command after the skipped ones: %+v", r)
	}
	if h.fsm.Index() != last {
		t.Fatalf("Index = %d, want %d", h.fsm.Index(), last)
	}
	if got := h.store.Leases(); len(got) != 0 {
		t.Fatalf("a skipped grant created leases %+v", got)
	}
	after := dump(h.store)
	if !reflect.DeepEqual(after[:1], before) || len(after) != 2 || h.store.Revision() != rev+1 {
		t.Fatalf("skipped entries changed the state: %+v rev %d", after, h.store.Revision())
	}
	if logged := h.logs.String(); strings.Count(logged, "skipping unknown ignorable command") != len(entries) {
		t.Fatalf("want one warning per skipped entry, logged:\n%s", logged)
	}
}

func TestApplyPublishesToHub(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	w, err := h.hub.Watch(ctx, b("a"), b("\x00"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()

	h.fsm.ApplyBatch([]*raft.Log{
		putLog(1, "a", "1"),
		raw(2, raft.LogConfiguration, nil),
		cmd(3, &command.Txn{Success: []command.Op{{Type: command.OpRange, Key: b("a")}}}), // no change
		cmd(4, &command.Txn{Success: []command.Op{
			{Type: command.OpPut, Key: b("a"), Value: b("2")},
			{Type: command.OpPut, Key: b("b"), Value: b("1")},
		}}),
	})
	want := []struct {
		rev  int64
		keys []string
	}{{1, []string{"a"}}, {2, []string{"a", "b"}}}
	for _, wr := range want {
		select {
		case r, ok := <-w.C():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			var keys []string
			for _, ev := range r.Events {
				keys = append(keys, string(ev.KV.Key))
			}
			if r.Revision != wr.rev || !reflect.DeepEqual(keys, wr.keys) {
				t.Fatalf("watch got revision %d keys %q, want %d %q", r.Revision, keys, wr.rev, wr.keys)
			}
		case <-ctx.Done():
			t.Fatalf("no watch response for revision %d", wr.rev)
		}
	}
	if h.hub.Revision() != 2 {
		t.Fatalf("hub revision %d, want 2", h.hub.Revision())
	}
}

// A corrupt record length must fail on the short input, not allocate it.
func TestRestoreHugeRecordLengthFailsCheaply(t *testing.T) {
	data := []byte("DRVS\x02\x01\x02\x01\x80\x80\x80\x80\x08")
	f := newHarness(t).fsm
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	err := f.Restore(io.NopCloser(bytes.NewReader(data)))
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("restore of a truncated huge record succeeded")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("restore allocated %d bytes for a %d-byte snapshot", grew, len(data))
	}
}
