package fsm_test

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/fsm"
	"github.com/droverhq/drover/raftstore/kv"
)

func grantLog(index uint64, id, ttl int64) *raft.Log {
	return raw(index, raft.LogCommand, command.EncodeLeaseGrant(id, ttl))
}

func revokeLog(index uint64, id int64) *raft.Log {
	return raw(index, raft.LogCommand, command.EncodeLeaseRevoke(id))
}

func putLeaseLog(index uint64, key, value string, lease int64) *raft.Log {
	return cmd(index, &command.Txn{Success: []command.Op{{Type: command.OpPut, Key: b(key), Value: b(value), Lease: lease}}})
}

// leaseKeys lists a lease's keys; nil if it does not exist.
func leaseKeys(s *kv.Store, id int64) []string {
	_, keys, ok := s.Lease(id)
	if !ok {
		return nil
	}
	out := []string{}
	for _, k := range keys {
		out = append(out, string(k))
	}
	return out
}

// checkLeasesEqual compares two stores' lease tables and attachments.
func checkLeasesEqual(t *testing.T, got, want *kv.Store) {
	t.Helper()
	gl, wl := got.Leases(), want.Leases()
	if !reflect.DeepEqual(gl, wl) {
		t.Fatalf("leases %+v, want %+v", gl, wl)
	}
	for _, l := range wl {
		if g, w := leaseKeys(got, l.ID), leaseKeys(want, l.ID); !reflect.DeepEqual(g, w) {
			t.Fatalf("lease %d keys %q, want %q", l.ID, g, w)
		}
	}
}

// renumber gives logs consecutive indexes from first.
func renumber(first uint64, logs ...*raft.Log) []*raft.Log {
	for i, l := range logs {
		l.Index = first + uint64(i)
	}
	return logs
}

func TestApplyBatchLeaseCommands(t *testing.T) {
	h := newHarness(t)
	logs := renumber(1,
		grantLog(0, 1, 10),                 // 0
		putLeaseLog(0, "a", "1", 1),        // 1: rev 1
		raw(0, raft.LogConfiguration, nil), // 2
		putLeaseLog(0, "b", "1", 2),        // 3: lease 2 unknown
		grantLog(0, 2, 20),                 // 4
		putLeaseLog(0, "b", "1", 2),        // 5: rev 2
		putLeaseLog(0, "c", "1", 1),        // 6: rev 3
		grantLog(0, 1, 99),                 // 7: exists
		raw(0, raft.LogBarrier, nil),       // 8
		revokeLog(0, 1),                    // 9: deletes a, c at rev 4
		putLog(0, "d", "1"),                // 10: rev 5
		revokeLog(0, 1),                    // 11: not found
		grantLog(0, 0, 5),                  // 12: ID 0 refused
		raw(0, raft.LogCommand, []byte{command.Version, 0x84}), // 13: ignorable unknown
		revokeLog(0, 2), // 14: deletes b at rev 6
	)
	out := h.fsm.ApplyBatch(logs)
	if len(out) != len(logs) {
		t.Fatalf("%d responses for %d entries", len(out), len(logs))
	}
	want := map[int]*command.Response{
		0:  {Revision: 0, Succeeded: true},
		1:  {Revision: 1, Succeeded: true, Results: []command.OpResult{{}}},
		3:  {Revision: 1, Err: command.ErrLeaseNotFound},
		4:  {Revision: 1, Succeeded: true},
		5:  {Revision: 2, Succeeded: true, Results: []command.OpResult{{}}},
		6:  {Revision: 3, Succeeded: true, Results: []command.OpResult{{}}},
		7:  {Revision: 3, Err: command.ErrLeaseExists},
		9:  {Revision: 4, Succeeded: true},
		10: {Revision: 5, Succeeded: true, Results: []command.OpResult{{}}},
		11: {Revision: 5, Err: command.ErrLeaseNotFound},
		12: {Revision: 5, Err: command.ErrLeaseExists},
		14: {Revision: 6, Succeeded: true},
	}
	for i := range logs {
		if w, ok := want[i]; ok {
			if got := resp(t, out[i]); !reflect.DeepEqual(got, w) {
				t.Errorf("entry %d: response %+v, want %+v", i, got, w)
			}
		} else if out[i] != nil {
			t.Errorf("entry %d (%v): response %v, want nil", i, logs[i].Type, out[i])
		}
	}
	if h.fsm.Index() != 15 {
		t.Fatalf("Index = %d, want 15", h.fsm.Index())
	}
	wantKVs := []command.KeyValue{{Key: b("d"), Value: b("1"), CreateRev: 5, ModRev: 5, Version: 1}}
	if got := dump(h.store); !reflect.DeepEqual(got, wantKVs) || h.store.Revision() != 6 {
		t.Fatalf("state %+v at %d, want %+v at 6", got, h.store.Revision(), wantKVs)
	}
	if got := h.store.Leases(); len(got) != 0 {
		t.Fatalf("leases %+v after revoking all", got)
	}
	if h.hub.Revision() != 6 {
		t.Fatalf("hub revision %d, want 6", h.hub.Revision())
	}
}

// TestRevokePublishesDeletes: a revoke reaches watchers as one response at
// one revision, every key's delete in key order with its previous state.
func TestRevokePublishesDeletes(t *testing.T) {
	h := newHarness(t)
	h.fsm.ApplyBatch(renumber(1,
		grantLog(0, 7, 60),
		putLeaseLog(0, "k/c", "3", 7), // 1
		putLeaseLog(0, "k/a", "1", 7), // 2
		putLog(0, "k/b", "2"),         // 3
		putLeaseLog(0, "z", "z", 7),   // 4: outside the watch
	))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	w, err := h.hub.Watch(ctx, b("k/"), command.PrefixEnd(b("k/")), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()

	h.fsm.ApplyBatch(renumber(6, revokeLog(0, 7), revokeLog(0, 7), grantLog(0, 8, 1), putLog(0, "k/d", "4")))
	want := []struct {
		rev  int64
		keys []string
		prev []string
	}{{5, []string{"k/a", "k/c"}, []string{"1", "3"}}, {6, []string{"k/d"}, nil}}
	for _, wr := range want {
		select {
		case r, ok := <-w.C():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			var keys, prev []string
			for _, ev := range r.Events {
				keys = append(keys, string(ev.KV.Key))
				if ev.Type == kv.EventDelete {
					if ev.KV.ModRev != wr.rev || ev.PrevKV == nil || ev.PrevKV.Lease != 7 {
						t.Fatalf("delete event %+v at %d", ev, wr.rev)
					}
					prev = append(prev, string(ev.PrevKV.Value))
				}
			}
			if r.Revision != wr.rev || !reflect.DeepEqual(keys, wr.keys) || !reflect.DeepEqual(prev, wr.prev) {
				t.Fatalf("watch got revision %d keys %q prev %q, want %d %q %q", r.Revision, keys, prev, wr.rev, wr.keys, wr.prev)
			}
		case <-ctx.Done():
			t.Fatalf("no watch response for revision %d", wr.rev)
		}
	}
}

// leaseHistory applies a history with leases to f, from index 1.
func leaseHistory(f interface {
	ApplyBatch([]*raft.Log) []interface{}
}) {
	f.ApplyBatch(renumber(1,
		grantLog(0, 1, 10),
		grantLog(0, 2, 20),
		grantLog(0, 3, 30),
		grantLog(0, -4, 40), // never used
		grantLog(0, 5, 50),
		putLeaseLog(0, "a", "1", 1),
		putLeaseLog(0, "b", "1", 1),
		putLeaseLog(0, "c", "1", 2),
		putLog(0, "d", "no lease"),
		putLeaseLog(0, "e", "1", 3),
		putLeaseLog(0, "f", "1", 1),
		putLeaseLog(0, "b", "moved", 2),    // b: 1 -> 2
		putLeaseLog(0, "f", "detached", 0), // f: 1 -> none
		putLeaseLog(0, "g", "1", 5),
		cmd(0, command.Delete(b("g"), nil, false)), // lease 5 emptied
		raw(0, raft.LogConfiguration, nil),
	))
}

func TestSnapshotRestoreLeases(t *testing.T) {
	src := newHarness(t)
	leaseHistory(src.fsm)
	data := persist(t, src.fsm)
	dst := restore(t, data)

	if got, want := dump(dst.store), dump(src.store); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored keys\n got %+v\nwant %+v", got, want)
	}
	checkLeasesEqual(t, dst.store, src.store)
	wantLeases := []kv.LeaseInfo{{ID: -4, TTL: 40}, {ID: 1, TTL: 10}, {ID: 2, TTL: 20}, {ID: 3, TTL: 30}, {ID: 5, TTL: 50}}
	if got := dst.store.Leases(); !reflect.DeepEqual(got, wantLeases) {
		t.Fatalf("restored leases %+v, want %+v", got, wantLeases)
	}
	for id, want := range map[int64][]string{-4: {}, 1: {"a"}, 2: {"b", "c"}, 3: {"e"}, 5: {}} {
		if got := leaseKeys(dst.store, id); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored lease %d keys %q, want %q", id, got, want)
		}
	}

	// Revoking after the restore deletes exactly the attached keys, on both.
	next := src.fsm.Index() + 1
	more := renumber(next,
		revokeLog(0, 2),
		revokeLog(0, 5),
		putLeaseLog(0, "d", "now leased", 3),
		revokeLog(0, 3),
		revokeLog(0, 2),
		grantLog(0, 2, 1),
		putLeaseLog(0, "a", "2", 2),
		revokeLog(0, 1), // a moved off lease 1: nothing left on it
	)
	outSrc := src.fsm.ApplyBatch(more)
	outDst := dst.fsm.ApplyBatch(more)
	if !reflect.DeepEqual(outSrc, outDst) {
		t.Fatalf("responses after restore differ")
	}
	if got := keysOf(dump(dst.store)); !reflect.DeepEqual(got, []string{"a", "f"}) {
		t.Fatalf("keys after revokes %q, want [a f]", got)
	}
	if r := resp(t, outDst[0]); !r.Succeeded || r.Err != 0 {
		t.Fatalf("revoke 2: %+v", r)
	}
	if r := resp(t, outDst[4]); r.Err != command.ErrLeaseNotFound {
		t.Fatalf("second revoke of 2: %+v", r)
	}
	if !reflect.DeepEqual(dump(dst.store), dump(src.store)) || dst.store.Revision() != src.store.Revision() {
		t.Fatalf("states diverged after restore")
	}
	checkLeasesEqual(t, dst.store, src.store)
	if got := dst.store.Leases(); !reflect.DeepEqual(got, []kv.LeaseInfo{{ID: -4, TTL: 40}, {ID: 2, TTL: 1}}) {
		t.Fatalf("leases %+v", got)
	}
	if a, b := persist(t, src.fsm), persist(t, dst.fsm); !bytes.Equal(a, b) {
		t.Fatalf("snapshots differ after identical applies")
	}
}

func TestSnapshotRestoreRevokeEvents(t *testing.T) {
	// The same revoke on a member that restored and on one that did not
	// publishes the same change.
	src := newHarness(t)
	leaseHistory(src.fsm)
	dst := restore(t, persist(t, src.fsm))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var got [2][]string
	for i, h := range []*harness{src, dst} {
		w, err := h.hub.Watch(ctx, b(""), b("\x00"), 0)
		if err != nil {
			t.Fatal(err)
		}
		h.fsm.ApplyBatch(renumber(h.fsm.Index()+1, revokeLog(0, 2)))
		select {
		case r := <-w.C():
			for _, ev := range r.Events {
				got[i] = append(got[i], ev.Type.String()+" "+string(ev.KV.Key))
			}
		case <-ctx.Done():
			t.Fatalf("no watch response")
		}
		w.Cancel()
	}
	want := []string{"DELETE b", "DELETE c"}
	if !reflect.DeepEqual(got[0], want) || !reflect.DeepEqual(got[1], want) {
		t.Fatalf("revoke events: source %q, restored %q, want %q", got[0], got[1], want)
	}
}

func TestSnapshotLeasesArePointInTime(t *testing.T) {
	src := newHarness(t)
	leaseHistory(src.fsm)
	wantKVs := dump(src.store)
	snap, err := src.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	src.fsm.ApplyBatch(renumber(src.fsm.Index()+1,
		revokeLog(0, 1),
		revokeLog(0, 2),
		grantLog(0, 9, 90),
		putLeaseLog(0, "d", "x", 9),
	))
	dst := restore(t, persistSnap(t, snap))
	if got := dump(dst.store); !reflect.DeepEqual(got, wantKVs) {
		t.Fatalf("snapshot shows later writes: %+v", got)
	}
	wantLeases := []kv.LeaseInfo{{ID: -4, TTL: 40}, {ID: 1, TTL: 10}, {ID: 2, TTL: 20}, {ID: 3, TTL: 30}, {ID: 5, TTL: 50}}
	if got := dst.store.Leases(); !reflect.DeepEqual(got, wantLeases) {
		t.Fatalf("snapshot leases %+v, want %+v", got, wantLeases)
	}
	if got := leaseKeys(dst.store, 2); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("lease 2 keys %q, want [b c]", got)
	}
}

func TestRestoreReplacesLeases(t *testing.T) {
	src := newHarness(t)
	src.fsm.ApplyBatch([]*raft.Log{grantLog(1, 1, 10), putLeaseLog(2, "keep", "src", 1)})
	data := persist(t, src.fsm)

	dst := newHarness(t)
	leaseHistory(dst.fsm)
	if err := dst.fsm.Restore(readCloserOf(data)); err != nil {
		t.Fatal(err)
	}
	if got := dst.store.Leases(); !reflect.DeepEqual(got, []kv.LeaseInfo{{ID: 1, TTL: 10}}) {
		t.Fatalf("leases after restore %+v", got)
	}
	if got := leaseKeys(dst.store, 1); !reflect.DeepEqual(got, []string{"keep"}) {
		t.Fatalf("lease 1 keys %q, want [keep]", got)
	}
	out := dst.fsm.ApplyBatch(renumber(3, putLeaseLog(0, "x", "1", 2), revokeLog(0, 3), revokeLog(0, 1)))
	if r := resp(t, out[0]); r.Err != command.ErrLeaseNotFound {
		t.Fatalf("put on a lease the restore dropped: %+v", r)
	}
	if r := resp(t, out[1]); r.Err != command.ErrLeaseNotFound {
		t.Fatalf("revoke of a lease the restore dropped: %+v", r)
	}
	if r := resp(t, out[2]); !r.Succeeded || r.Revision != 2 || dst.store.Len() != 0 {
		t.Fatalf("revoke of the restored lease: %+v, %d keys left", r, dst.store.Len())
	}
}

func readCloserOf(data []byte) *readCloser { return &readCloser{Reader: bytes.NewReader(data)} }

func keysOf(kvs []command.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// A snapshot whose lease table is inconsistent would make members diverge
// later (a revoke of lease 0, or of a lease a key names but the table lacks):
// Restore refuses it.
func TestRestoreRejectsInconsistentLeases(t *testing.T) {
	rec := func(key string, lease int64) []byte {
		return command.AppendKeyValue(nil, command.KeyValue{Key: []byte(key), Value: []byte("v"), CreateRev: 1, ModRev: 1, Version: 1, Lease: lease})
	}
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"lease ID zero", appendLeases(appendRecords(snapshotHeader(2, 1, 1, 1), rec("plain", 0)), kv.LeaseInfo{ID: 0, TTL: 5}), "zero or repeated"},
		{"repeated lease", appendLeases(appendRecords(snapshotHeader(2, 1, 1, 0)), kv.LeaseInfo{ID: 7, TTL: 5}, kv.LeaseInfo{ID: 7, TTL: 9}), "zero or repeated"},
		{"key names a missing lease", appendLeases(appendRecords(snapshotHeader(2, 1, 1, 1), rec("k", 42))), "lease 42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			err := h.fsm.Restore(io.NopCloser(bytes.NewReader(tc.data)))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Restore = %v, want an error naming %q", err, tc.msg)
			}
		})
	}
}

// Backups are zero-padded to 512 bytes (etcdctl's check); Restore accepts
// the padding and nothing else.
func TestRestoreAcceptsZeroPadding(t *testing.T) {
	src := newHarness(t)
	src.fsm.ApplyBatch([]*raft.Log{putLog(1, "k", "v")})
	var buf bytes.Buffer
	if err := fsm.WriteSnapshot(&buf, src.store.View(), 1); err != nil {
		t.Fatal(err)
	}
	buf.Write(make([]byte, 512-buf.Len()%512))
	dst := newHarness(t)
	if err := dst.fsm.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatalf("padded snapshot: %v", err)
	}
	if !reflect.DeepEqual(dump(dst.store), dump(src.store)) {
		t.Fatalf("restored %v, want %v", dump(dst.store), dump(src.store))
	}
}
