package kv_test

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/kv"
)

func grantCmd(id, ttl int64) command.Command {
	return command.Command{Type: command.TypeLeaseGrant, Lease: &command.LeaseCmd{ID: id, TTL: ttl}}
}

func revokeCmd(id int64) command.Command {
	return command.Command{Type: command.TypeLeaseRevoke, Lease: &command.LeaseCmd{ID: id}}
}

func txnCmd(t *command.Txn) command.Command { return command.Command{Type: command.TypeTxn, Txn: t} }

func putLeaseTxn(key, value string, lease int64) *command.Txn {
	return &command.Txn{Success: []command.Op{{Type: command.OpPut, Key: b(key), Value: b(value), Lease: lease, PrevKV: true}}}
}

// applyCmd applies one command and returns its response and change.
func applyCmd(t testing.TB, s *kv.Store, c command.Command) (*command.Response, kv.Change) {
	t.Helper()
	resps, changes := s.ApplyCommands([]command.Command{c})
	if len(resps) != 1 || len(changes) != 1 {
		t.Fatalf("ApplyCommands of one command returned %d responses and %d changes", len(resps), len(changes))
	}
	return resps[0], changes[0]
}

func grant(t testing.TB, s *kv.Store, id, ttl int64) {
	t.Helper()
	rev := s.Revision()
	r, ch := applyCmd(t, s, grantCmd(id, ttl))
	if want := (&command.Response{Revision: rev, Succeeded: true}); !reflect.DeepEqual(r, want) {
		t.Fatalf("grant %d: response %+v, want %+v", id, r, want)
	}
	if want := (kv.Change{Revision: rev}); !reflect.DeepEqual(ch, want) {
		t.Fatalf("grant %d: change %+v, want %+v", id, ch, want)
	}
}

func putLease(t testing.TB, s *kv.Store, key, value string, lease int64) kv.Change {
	t.Helper()
	r, ch := applyCmd(t, s, txnCmd(putLeaseTxn(key, value, lease)))
	if !r.Succeeded || r.Err != command.ErrNone || len(ch.Events) != 1 {
		t.Fatalf("put %q with lease %d: response %+v change %+v", key, lease, r, ch)
	}
	return ch
}

// leaseKeys lists the keys attached to a lease; nil if it does not exist.
func leaseKeys(t testing.TB, s *kv.Store, id int64) []string {
	t.Helper()
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

func kvLease(key, value string, create, mod, version, lease int64) command.KeyValue {
	kv := kvOf(key, value, create, mod, version)
	kv.Lease = lease
	return kv
}

// checkLeaseInvariant: a key is attached to exactly the lease its Lease field
// names, and that lease exists.
func checkLeaseInvariant(t testing.TB, s *kv.Store) {
	t.Helper()
	byLease := map[int64][]string{}
	for _, kv := range dumpStore(s) {
		if kv.Lease != 0 {
			byLease[kv.Lease] = append(byLease[kv.Lease], string(kv.Key))
		}
	}
	granted := map[int64]bool{}
	for _, l := range s.Leases() {
		granted[l.ID] = true
		want := byLease[l.ID]
		if want == nil {
			want = []string{}
		}
		if got := leaseKeys(t, s, l.ID); !reflect.DeepEqual(got, want) {
			t.Fatalf("lease %d has keys %q, but the keys naming it are %q", l.ID, got, want)
		}
	}
	for id, keys := range byLease {
		if !granted[id] {
			t.Fatalf("keys %q name lease %d, which does not exist", keys, id)
		}
	}
}

func dumpStore(s *kv.Store) []command.KeyValue { return s.Range(nil, b("\x00"), 0, false).KVs }

func TestLeaseGrant(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "1")
	put(t, s, "b", "1")
	if got := s.Leases(); len(got) != 0 {
		t.Fatalf("new store has leases %+v", got)
	}
	if ttl, keys, ok := s.Lease(1); ok || ttl != 0 || keys != nil {
		t.Fatalf("Lease(1) of a store without leases = %d %q %v", ttl, keys, ok)
	}

	// A grant changes no key and does not bump the revision.
	grant(t, s, 1, 10)
	if s.Revision() != 2 {
		t.Fatalf("revision %d after a grant, want 2", s.Revision())
	}
	if ttl, keys, ok := s.Lease(1); !ok || ttl != 10 || len(keys) != 0 {
		t.Fatalf("Lease(1) = %d %q %v, want 10, no keys, true", ttl, keys, ok)
	}

	// Granting an existing ID, or ID 0, is refused and changes nothing.
	for _, c := range []command.Command{grantCmd(1, 99), grantCmd(0, 5)} {
		r, ch := applyCmd(t, s, c)
		want := &command.Response{Revision: 2, Err: command.ErrLeaseExists}
		if !reflect.DeepEqual(r, want) || !reflect.DeepEqual(ch, kv.Change{Revision: 2}) {
			t.Fatalf("grant %d again: response %+v change %+v, want %+v and no change", c.Lease.ID, r, ch, want)
		}
	}
	if ttl, _, _ := s.Lease(1); ttl != 10 {
		t.Fatalf("a refused grant changed the TTL to %d", ttl)
	}
	if _, _, ok := s.Lease(0); ok {
		t.Fatalf("lease 0 exists after a refused grant")
	}

	// Any other ID works, and Leases lists them by ID.
	grant(t, s, math.MaxInt64, 1)
	grant(t, s, -5, 0)
	grant(t, s, math.MinInt64, -1)
	grant(t, s, 3, 30)
	want := []kv.LeaseInfo{{ID: math.MinInt64, TTL: -1}, {ID: -5, TTL: 0}, {ID: 1, TTL: 10}, {ID: 3, TTL: 30}, {ID: math.MaxInt64, TTL: 1}}
	if got := s.Leases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Leases = %+v, want %+v", got, want)
	}
	if got := s.View().Leases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("View().Leases = %+v, want %+v", got, want)
	}
	if s.Revision() != 2 || s.Len() != 2 {
		t.Fatalf("grants changed the key space: revision %d len %d", s.Revision(), s.Len())
	}
	// Leases returns a copy taken when called.
	before := s.Leases()
	grant(t, s, 4, 40)
	if len(before) != len(want) {
		t.Fatalf("an earlier Leases result grew to %+v", before)
	}
}

func TestPutAttachesToLease(t *testing.T) {
	s := kv.New()
	grant(t, s, 7, 60)
	ch := putLease(t, s, "a", "1", 7)
	want := kv.Change{Revision: 1, Events: []kv.Event{{Type: kv.EventPut, KV: kvLease("a", "1", 1, 1, 1, 7)}}}
	if !reflect.DeepEqual(ch, want) {
		t.Fatalf("put with lease: change\n got %+v\nwant %+v", ch, want)
	}
	if got, _ := get(t, s, "a"); !reflect.DeepEqual(got, kvLease("a", "1", 1, 1, 1, 7)) {
		t.Fatalf("stored %+v", got)
	}
	if got := leaseKeys(t, s, 7); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("lease 7 keys %q, want [a]", got)
	}
	// Re-putting on the same lease keeps it attached; the previous
	// key-value carries the lease.
	r, ch := applyCmd(t, s, txnCmd(putLeaseTxn("a", "2", 7)))
	prev := kvLease("a", "1", 1, 1, 1, 7)
	if !reflect.DeepEqual(r.Results[0].KVs, []command.KeyValue{prev}) || !reflect.DeepEqual(ch.Events[0].PrevKV, &prev) {
		t.Fatalf("re-put: result %+v, event %+v; want PrevKV %+v", r.Results[0].KVs, ch.Events[0], prev)
	}
	if got := leaseKeys(t, s, 7); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("lease 7 keys %q, want [a]", got)
	}
	// The attachment is visible to a lease compare.
	for _, tc := range []struct {
		key    string
		result command.Result
		lease  int64
		want   bool
	}{
		{"a", command.Equal, 7, true},
		{"a", command.NotEqual, 7, false},
		{"a", command.Greater, 6, true},
		{"a", command.Less, 7, false},
		{"a", command.Equal, 0, false},
		{"absent", command.Equal, 0, true}, // an absent key has no lease
		{"absent", command.Less, 1, true},
	} {
		r, _ := apply(t, s, &command.Txn{Compares: []command.Compare{{Key: b(tc.key), Target: command.TargetLease, Result: tc.result, Int: tc.lease}}})
		if r.Succeeded != tc.want {
			t.Errorf("compare lease of %q %d %d: %v, want %v", tc.key, tc.result, tc.lease, r.Succeeded, tc.want)
		}
	}
	checkLeaseInvariant(t, s)
}

func TestPutWithUnknownLeaseChangesNothing(t *testing.T) {
	s := kv.New()
	grant(t, s, 1, 10)
	put(t, s, "a", "1")         // 1
	putLease(t, s, "c", "1", 1) // 2
	before := dumpStore(s)

	notFound := &command.Response{Revision: 2, Err: command.ErrLeaseNotFound}
	tests := []struct {
		name string
		txn  *command.Txn
	}{
		{"single put", putLeaseTxn("b", "1", 99)},
		{"put of an existing key", putLeaseTxn("a", "2", 99)},
		{"negative lease", putLeaseTxn("a", "2", -1)},
		{"unknown lease after valid ops", &command.Txn{Success: []command.Op{
			{Type: command.OpPut, Key: b("a"), Value: b("2"), Lease: 1},
			{Type: command.OpDelete, Key: b("c")},
			{Type: command.OpRange, Key: b("a")},
			{Type: command.OpPut, Key: b("b"), Value: b("2")},
			{Type: command.OpPut, Key: b("z"), Value: b("2"), Lease: 2},
		}}},
		{"unknown lease on the failure branch taken", &command.Txn{
			Compares: []command.Compare{{Key: b("a"), Target: command.TargetVersion, Result: command.Equal, Int: 9}},
			Success:  []command.Op{{Type: command.OpPut, Key: b("a"), Value: b("ok")}},
			Failure: []command.Op{
				{Type: command.OpDelete, Key: b("a")},
				{Type: command.OpPut, Key: b("a"), Value: b("x"), Lease: 3},
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ch := applyCmd(t, s, txnCmd(tc.txn))
			if !reflect.DeepEqual(r, notFound) || !reflect.DeepEqual(ch, kv.Change{Revision: 2}) {
				t.Fatalf("response %+v change %+v, want %+v and no change", r, ch, notFound)
			}
			if got := dumpStore(s); !reflect.DeepEqual(got, before) || s.Revision() != 2 {
				t.Fatalf("state changed: %+v revision %d", got, s.Revision())
			}
			if got := leaseKeys(t, s, 1); !reflect.DeepEqual(got, []string{"c"}) {
				t.Fatalf("lease 1 keys %q, want [c]", got)
			}
			if _, _, ok := s.Lease(99); ok {
				t.Fatalf("a put created lease 99")
			}
		})
	}

	// Only the branch that runs is checked, and only puts carry a lease.
	r, _ := applyCmd(t, s, txnCmd(&command.Txn{
		Compares: []command.Compare{{Key: b("a"), Target: command.TargetVersion, Result: command.Equal, Int: 1}},
		Success: []command.Op{
			{Type: command.OpPut, Key: b("a"), Value: b("2")},
			{Type: command.OpDelete, Key: b("nothing"), Lease: 99},
			{Type: command.OpRange, Key: b("a"), Lease: 99},
		},
		Failure: []command.Op{{Type: command.OpPut, Key: b("a"), Value: b("x"), Lease: 99}},
	}))
	if !r.Succeeded || r.Err != command.ErrNone || r.Revision != 3 {
		t.Fatalf("txn with an unknown lease only where it does not apply: %+v", r)
	}
	if got, _ := get(t, s, "a"); !reflect.DeepEqual(got, kvOf("a", "2", 1, 3, 2)) {
		t.Fatalf("a = %+v", got)
	}
	checkLeaseInvariant(t, s)
}

func TestLeaseMoveAndDetach(t *testing.T) {
	s := kv.New()
	grant(t, s, 1, 10)
	grant(t, s, 2, 20)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		putLease(t, s, k, "v", 1)
	}
	checkLeaseInvariant(t, s)

	// Re-putting moves a key to another lease.
	ch := putLease(t, s, "a", "moved", 2)
	if want := kvLease("a", "moved", 1, 6, 2, 2); !reflect.DeepEqual(ch.Events[0].KV, want) || ch.Events[0].PrevKV.Lease != 1 {
		t.Fatalf("move event %+v, want KV %+v and a PrevKV on lease 1", ch.Events[0], want)
	}
	// Lease 0 detaches it.
	putLease(t, s, "b", "detached", 0)
	if got, _ := get(t, s, "b"); got.Lease != 0 {
		t.Fatalf("b still names lease %d", got.Lease)
	}
	// A delete detaches, single and range.
	apply(t, s, command.Delete(b("c"), nil, false))
	apply(t, s, command.Delete(b("d"), b("e"), false))
	if got := leaseKeys(t, s, 1); !reflect.DeepEqual(got, []string{"e"}) {
		t.Fatalf("lease 1 keys %q, want [e]", got)
	}
	if got := leaseKeys(t, s, 2); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("lease 2 keys %q, want [a]", got)
	}
	checkLeaseInvariant(t, s)

	// Several puts of one key in one txn: the last one decides.
	r, _ := apply(t, s, &command.Txn{Success: []command.Op{
		{Type: command.OpPut, Key: b("f"), Value: b("1"), Lease: 1},
		{Type: command.OpPut, Key: b("f"), Value: b("2"), Lease: 2},
		{Type: command.OpPut, Key: b("g"), Value: b("1"), Lease: 2},
		{Type: command.OpPut, Key: b("g"), Value: b("2")},
		{Type: command.OpPut, Key: b("h"), Value: b("1"), Lease: 1},
		{Type: command.OpDelete, Key: b("h")},
	}})
	if r.Revision != 10 || r.Err != command.ErrNone {
		t.Fatalf("txn: %+v", r)
	}
	if got := leaseKeys(t, s, 1); !reflect.DeepEqual(got, []string{"e"}) {
		t.Fatalf("lease 1 keys %q, want [e]", got)
	}
	if got := leaseKeys(t, s, 2); !reflect.DeepEqual(got, []string{"a", "f"}) {
		t.Fatalf("lease 2 keys %q, want [a f]", got)
	}
	checkLeaseInvariant(t, s)

	// Revoking lease 1 deletes only what is still on it.
	r, rch := applyCmd(t, s, revokeCmd(1))
	if r.Revision != 11 || len(rch.Events) != 1 || string(rch.Events[0].KV.Key) != "e" {
		t.Fatalf("revoke 1: response %+v change %+v, want e deleted at 11", r, rch)
	}
	if got := keysOf(dumpStore(s)); !reflect.DeepEqual(got, []string{"a", "b", "f", "g"}) {
		t.Fatalf("keys after revoke %q, want [a b f g]", got)
	}
	checkLeaseInvariant(t, s)
}

func TestLeaseRevoke(t *testing.T) {
	s := kv.New()
	grant(t, s, 5, 60)
	grant(t, s, 6, 60)
	putLease(t, s, "b", "vb", 5)    // 1
	put(t, s, "x", "no lease")      // 2
	putLease(t, s, "\x00", "v0", 5) // 3
	putLease(t, s, "y", "vy", 6)    // 4
	putLease(t, s, "c", "vc", 5)    // 5
	putLease(t, s, "a", "va", 5)    // 6
	putLease(t, s, "b", "vb2", 5)   // 7

	r, ch := applyCmd(t, s, revokeCmd(5))
	if want := (&command.Response{Revision: 8, Succeeded: true}); !reflect.DeepEqual(r, want) {
		t.Fatalf("revoke: response %+v, want %+v", r, want)
	}
	del := func(key string, prev command.KeyValue) kv.Event {
		return kv.Event{Type: kv.EventDelete, KV: command.KeyValue{Key: b(key), ModRev: 8}, PrevKV: &prev}
	}
	// Every key at one revision, in key order, with its previous state.
	want := kv.Change{Revision: 8, Events: []kv.Event{
		del("\x00", kvLease("\x00", "v0", 3, 3, 1, 5)),
		del("a", kvLease("a", "va", 6, 6, 1, 5)),
		del("b", kvLease("b", "vb2", 1, 7, 2, 5)),
		del("c", kvLease("c", "vc", 5, 5, 1, 5)),
	}}
	if !reflect.DeepEqual(ch, want) {
		t.Fatalf("revoke: change\n got %+v\nwant %+v", ch, want)
	}
	if s.Revision() != 8 {
		t.Fatalf("revision %d, want 8", s.Revision())
	}
	wantKVs := []command.KeyValue{kvOf("x", "no lease", 2, 2, 1), kvLease("y", "vy", 4, 4, 1, 6)}
	if got := dumpStore(s); !reflect.DeepEqual(got, wantKVs) {
		t.Fatalf("after revoke:\n got %+v\nwant %+v", got, wantKVs)
	}
	if _, _, ok := s.Lease(5); ok {
		t.Fatalf("lease 5 still exists")
	}
	if got := s.Leases(); !reflect.DeepEqual(got, []kv.LeaseInfo{{ID: 6, TTL: 60}}) {
		t.Fatalf("Leases = %+v", got)
	}

	// Revoking it again, or a lease that never was, changes nothing.
	for _, id := range []int64{5, 404, 0} {
		r, ch := applyCmd(t, s, revokeCmd(id))
		want := &command.Response{Revision: 8, Err: command.ErrLeaseNotFound}
		if !reflect.DeepEqual(r, want) || !reflect.DeepEqual(ch, kv.Change{Revision: 8}) {
			t.Fatalf("revoke %d: response %+v change %+v, want %+v and no change", id, r, ch, want)
		}
	}
	// The revoked lease is gone for puts, and can be granted afresh.
	if r, _ := applyCmd(t, s, txnCmd(putLeaseTxn("a", "1", 5))); r.Err != command.ErrLeaseNotFound {
		t.Fatalf("put on a revoked lease: %+v", r)
	}
	grant(t, s, 5, 1)
	if ttl, keys, ok := s.Lease(5); !ok || ttl != 1 || len(keys) != 0 {
		t.Fatalf("re-granted lease 5: %d %q %v", ttl, keys, ok)
	}
	checkLeaseInvariant(t, s)
}

func TestRevokeEmptyLeaseDoesNotBumpRevision(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "1")
	grant(t, s, 1, 10)
	grant(t, s, 2, 10)
	// Lease 2 had keys, all moved away or deleted before the revoke.
	putLease(t, s, "b", "1", 2)                     // 2
	putLease(t, s, "c", "1", 2)                     // 3
	putLease(t, s, "b", "2", 1)                     // 4
	apply(t, s, command.Delete(b("c"), nil, false)) // 5

	for _, id := range []int64{2, 3} {
		if id == 3 {
			grant(t, s, 3, 10) // never had a key
		}
		r, ch := applyCmd(t, s, revokeCmd(id))
		want := &command.Response{Revision: 5, Succeeded: true}
		if !reflect.DeepEqual(r, want) || !reflect.DeepEqual(ch, kv.Change{Revision: 5}) {
			t.Fatalf("revoke %d: response %+v change %+v, want %+v and no events", id, r, ch, want)
		}
		if _, _, ok := s.Lease(id); ok {
			t.Fatalf("lease %d survived its revoke", id)
		}
	}
	want := []command.KeyValue{kvOf("a", "1", 1, 1, 1), kvLease("b", "2", 2, 4, 2, 1)}
	if got := dumpStore(s); !reflect.DeepEqual(got, want) || s.Revision() != 5 {
		t.Fatalf("state %+v revision %d, want %+v at 5", got, s.Revision(), want)
	}
	checkLeaseInvariant(t, s)
}

func TestApplyCommandsBatch(t *testing.T) {
	s := kv.New()
	cmds := []command.Command{
		grantCmd(1, 10),                            // 0
		txnCmd(putLeaseTxn("a", "1", 1)),           // 1
		txnCmd(putLeaseTxn("b", "1", 1)),           // 2
		txnCmd(putLeaseTxn("c", "1", 2)),           // 3: lease 2 not yet granted
		grantCmd(2, 20),                            // 4
		txnCmd(putLeaseTxn("c", "1", 2)),           // 5
		revokeCmd(1),                               // 6
		txnCmd(command.Put(b("d"), b("1"), false)), // 7
		revokeCmd(1),                               // 8: already revoked
		grantCmd(1, 11),                            // 9: granted again
		grantCmd(2, 22),                            // 10: exists
		txnCmd(putLeaseTxn("d", "2", 1)),           // 11
	}
	resps, changes := s.ApplyCommands(cmds)
	if len(resps) != len(cmds) || len(changes) != len(cmds) {
		t.Fatalf("%d responses, %d changes for %d commands", len(resps), len(changes), len(cmds))
	}
	wantRevs := []int64{0, 1, 2, 2, 2, 3, 4, 5, 5, 5, 5, 6}
	wantErrs := map[int]command.ErrCode{3: command.ErrLeaseNotFound, 8: command.ErrLeaseNotFound, 10: command.ErrLeaseExists}
	wantEvents := []int{0, 1, 1, 0, 0, 1, 2, 1, 0, 0, 0, 1}
	for i := range cmds {
		if resps[i].Revision != wantRevs[i] || changes[i].Revision != wantRevs[i] ||
			resps[i].Err != wantErrs[i] || resps[i].Succeeded != (wantErrs[i] == 0) || len(changes[i].Events) != wantEvents[i] {
			t.Errorf("command %d: response %+v change %+v; want revision %d err %d with %d events",
				i, resps[i], changes[i], wantRevs[i], wantErrs[i], wantEvents[i])
		}
	}
	if k := []string{string(changes[6].Events[0].KV.Key), string(changes[6].Events[1].KV.Key)}; !reflect.DeepEqual(k, []string{"a", "b"}) {
		t.Errorf("revoke deleted %q, want [a b]", k)
	}
	want := []command.KeyValue{kvLease("c", "1", 3, 3, 1, 2), kvLease("d", "2", 5, 6, 2, 1)}
	if got := dumpStore(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("state\n got %+v\nwant %+v", got, want)
	}
	if got := s.Leases(); !reflect.DeepEqual(got, []kv.LeaseInfo{{ID: 1, TTL: 11}, {ID: 2, TTL: 20}}) {
		t.Fatalf("Leases = %+v", got)
	}
	checkLeaseInvariant(t, s)
}

func TestViewCapturesLeases(t *testing.T) {
	s := kv.New()
	empty := s.View()
	grant(t, s, 1, 10)
	grant(t, s, 2, 20)
	putLease(t, s, "a", "1", 1)
	putLease(t, s, "b", "1", 2)
	v := s.View()

	grant(t, s, 3, 30)
	applyCmd(t, s, revokeCmd(1))
	putLease(t, s, "b", "2", 3)

	if got := empty.Leases(); len(got) != 0 {
		t.Fatalf("view taken before any grant has leases %+v", got)
	}
	want := []kv.LeaseInfo{{ID: 1, TTL: 10}, {ID: 2, TTL: 20}}
	if got := v.Leases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("view leases changed to %+v, want %+v", got, want)
	}
	wantKVs := []command.KeyValue{kvLease("a", "1", 1, 1, 1, 1), kvLease("b", "1", 2, 2, 1, 2)}
	var got []command.KeyValue
	v.Ascend(func(kv command.KeyValue) bool { got = append(got, kv); return true })
	if !reflect.DeepEqual(got, wantKVs) || v.Revision() != 2 {
		t.Fatalf("view keys %+v at %d, want %+v at 2", got, v.Revision(), wantKVs)
	}
	if got := s.Leases(); !reflect.DeepEqual(got, []kv.LeaseInfo{{ID: 2, TTL: 20}, {ID: 3, TTL: 30}}) {
		t.Fatalf("store leases %+v", got)
	}
}

// rebuild copies a view into a new store through a Builder, as a snapshot
// restore does.
func rebuild(v *kv.View, addLeasesFirst bool) *kv.Store {
	bld := kv.NewBuilder()
	addLeases := func() {
		for _, l := range v.Leases() {
			bld.AddLease(l)
		}
	}
	if addLeasesFirst {
		addLeases()
	}
	v.Ascend(func(kv command.KeyValue) bool { bld.Add(kv); return true })
	if !addLeasesFirst {
		addLeases()
	}
	s := kv.New()
	s.Restore(bld, v.Revision())
	return s
}

func TestRestoreReattachesLeases(t *testing.T) {
	src := kv.New()
	grant(t, src, 1, 10)
	grant(t, src, 2, 20)
	grant(t, src, 3, 30) // no keys
	putLease(t, src, "a", "1", 1)
	putLease(t, src, "b", "1", 2)
	put(t, src, "c", "no lease")
	putLease(t, src, "d", "1", 1)
	putLease(t, src, "e", "1", 1)
	putLease(t, src, "e", "2", 2) // moved
	apply(t, src, command.Delete(b("d"), nil, false))

	for _, first := range []bool{true, false} {
		t.Run(fmt.Sprintf("leases first %v", first), func(t *testing.T) {
			dst := rebuild(src.View(), first)
			if got, want := dst.Leases(), src.Leases(); !reflect.DeepEqual(got, want) {
				t.Fatalf("leases %+v, want %+v", got, want)
			}
			for _, id := range []int64{1, 2, 3} {
				if got, want := leaseKeys(t, dst, id), leaseKeys(t, src, id); !reflect.DeepEqual(got, want) {
					t.Fatalf("lease %d keys %q, want %q", id, got, want)
				}
			}
			if got, want := dumpStore(dst), dumpStore(src); !reflect.DeepEqual(got, want) || dst.Revision() != src.Revision() {
				t.Fatalf("state differs")
			}
			checkLeaseInvariant(t, dst)
			// Both go on identically: a revoke deletes the same keys.
			cmds := []command.Command{revokeCmd(2), txnCmd(putLeaseTxn("c", "now leased", 3)), revokeCmd(1), revokeCmd(3)}
			r1, c1 := cloneStore(t, src).ApplyCommands(cmds)
			r2, c2 := dst.ApplyCommands(cmds)
			if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(c1, c2) {
				t.Fatalf("restored store diverged:\n got %+v %+v\nwant %+v %+v", r2, c2, r1, c1)
			}
			if ev := c2[0].Events; len(ev) != 2 || string(ev[0].KV.Key) != "b" || string(ev[1].KV.Key) != "e" {
				t.Fatalf("revoke of lease 2 after restore deleted %+v, want b and e", c2[0].Events)
			}
			if len(dst.Leases()) != 0 || dst.Len() != 0 {
				t.Fatalf("after revoking every lease: leases %+v, %d keys", dst.Leases(), dst.Len())
			}
		})
	}
}

// cloneStore copies a store through a view and a builder.
func cloneStore(t *testing.T, s *kv.Store) *kv.Store {
	t.Helper()
	return rebuild(s.View(), true)
}

func TestRestoreReplacesLeases(t *testing.T) {
	s := kv.New()
	grant(t, s, 9, 90)
	putLease(t, s, "old", "1", 9)

	bld := kv.NewBuilder()
	bld.AddLease(kv.LeaseInfo{ID: 1, TTL: 10})
	bld.Add(kvLease("new", "1", 4, 4, 1, 1))
	bld.Add(kvLease("plain", "1", 5, 5, 1, 0))
	s.Restore(bld, 5)

	if got := s.Leases(); !reflect.DeepEqual(got, []kv.LeaseInfo{{ID: 1, TTL: 10}}) {
		t.Fatalf("Leases after restore = %+v", got)
	}
	if _, _, ok := s.Lease(9); ok {
		t.Fatalf("lease 9 survived the restore")
	}
	if got := leaseKeys(t, s, 1); !reflect.DeepEqual(got, []string{"new"}) {
		t.Fatalf("lease 1 keys %q, want [new]", got)
	}
	if r, _ := applyCmd(t, s, txnCmd(putLeaseTxn("x", "1", 9))); r.Err != command.ErrLeaseNotFound {
		t.Fatalf("put on a lease the restore dropped: %+v", r)
	}
	checkLeaseInvariant(t, s)

	// An empty restore drops every lease.
	s.Restore(kv.NewBuilder(), 0)
	if len(s.Leases()) != 0 {
		t.Fatalf("leases after empty restore: %+v", s.Leases())
	}
}

// leaseModel is a straightforward model of the key space with leases.
type leaseModel struct {
	rev    int64
	kvs    map[string]modelKV
	leases map[int64]int64 // ID -> TTL
}

type modelKV struct {
	value string
	lease int64
}

func (m *leaseModel) apply(c command.Command) command.ErrCode {
	switch c.Type {
	case command.TypeLeaseGrant:
		if _, ok := m.leases[c.Lease.ID]; ok || c.Lease.ID == 0 {
			return command.ErrLeaseExists
		}
		m.leases[c.Lease.ID] = c.Lease.TTL
	case command.TypeLeaseRevoke:
		if _, ok := m.leases[c.Lease.ID]; !ok {
			return command.ErrLeaseNotFound
		}
		delete(m.leases, c.Lease.ID)
		deleted := false
		for k, v := range m.kvs {
			if v.lease == c.Lease.ID {
				delete(m.kvs, k)
				deleted = true
			}
		}
		if deleted {
			m.rev++
		}
	case command.TypeTxn:
		for _, op := range c.Txn.Success {
			if _, ok := m.leases[op.Lease]; op.Type == command.OpPut && op.Lease != 0 && !ok {
				return command.ErrLeaseNotFound
			}
		}
		wrote := false
		for _, op := range c.Txn.Success {
			switch op.Type {
			case command.OpPut:
				m.kvs[string(op.Key)] = modelKV{string(op.Value), op.Lease}
				wrote = true
			case command.OpDelete:
				for k := range m.kvs {
					if len(op.End) == 0 && k == string(op.Key) || len(op.End) > 0 && k >= string(op.Key) && k < string(op.End) {
						delete(m.kvs, k)
						wrote = true
					}
				}
			}
		}
		if wrote {
			m.rev++
		}
	}
	return command.ErrNone
}

func (m *leaseModel) check(t *testing.T, s *kv.Store, step int) {
	t.Helper()
	if s.Revision() != m.rev {
		t.Fatalf("step %d: revision %d, model %d", step, s.Revision(), m.rev)
	}
	got := map[string]modelKV{}
	for _, kv := range dumpStore(s) {
		got[string(kv.Key)] = modelKV{string(kv.Value), kv.Lease}
	}
	if !reflect.DeepEqual(got, m.kvs) {
		t.Fatalf("step %d: keys\n got %v\nwant %v", step, got, m.kvs)
	}
	var leases []kv.LeaseInfo
	for id, ttl := range m.leases {
		leases = append(leases, kv.LeaseInfo{ID: id, TTL: ttl})
	}
	sort.Slice(leases, func(i, j int) bool { return leases[i].ID < leases[j].ID })
	if gotL := s.Leases(); len(gotL) != len(leases) || len(leases) > 0 && !reflect.DeepEqual(gotL, leases) {
		t.Fatalf("step %d: leases %+v, want %+v", step, gotL, leases)
	}
	checkLeaseInvariant(t, s)
}

// TestLeaseModel runs random grants, revokes, puts on leases and deletes
// against a model, and checks that a store rebuilt from a view at any point
// goes on exactly like the original.
func TestLeaseModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	keys := []string{"a", "b", "c", "d", "e", "f"}
	key := func() string { return keys[rng.IntN(len(keys))] }
	lease := func() int64 { return int64(rng.IntN(5)) - 1 } // -1..3, 0 = none
	s := kv.New()
	m := &leaseModel{kvs: map[string]modelKV{}, leases: map[int64]int64{}}
	var restored *kv.Store
	for step := 0; step < 3000; step++ {
		var c command.Command
		switch n := rng.IntN(10); {
		case n == 0:
			c = grantCmd(lease(), int64(rng.IntN(100)))
		case n == 1:
			c = revokeCmd(lease())
		default:
			txn := &command.Txn{}
			for range 1 + rng.IntN(3) {
				if rng.IntN(4) == 0 {
					op := command.Op{Type: command.OpDelete, Key: b(key())}
					if rng.IntN(2) == 0 {
						op.End = b(key())
					}
					txn.Success = append(txn.Success, op)
				} else {
					txn.Success = append(txn.Success, command.Op{Type: command.OpPut, Key: b(key()), Value: b(fmt.Sprint(step)), Lease: lease()})
				}
			}
			c = txnCmd(txn)
		}
		wantErr := m.apply(c)
		r, _ := applyCmd(t, s, c)
		if r.Err != wantErr || r.Revision != m.rev {
			t.Fatalf("step %d: %+v: response %+v, want err %d revision %d", step, c, r, wantErr, m.rev)
		}
		m.check(t, s, step)
		if restored != nil {
			r2, _ := applyCmd(t, restored, c)
			if !reflect.DeepEqual(r, r2) {
				t.Fatalf("step %d: restored store answered %+v, want %+v", step, r2, r)
			}
			m.check(t, restored, step)
		}
		if step%500 == 250 {
			restored = cloneStore(t, s)
			m.check(t, restored, step)
		}
	}
}

// TestLeaseReadsConcurrentWithApply runs under -race.
func TestLeaseReadsConcurrentWithApply(t *testing.T) {
	s := kv.New()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := int64(1); i <= 500; i++ {
			s.ApplyCommands([]command.Command{
				grantCmd(i, i),
				txnCmd(putLeaseTxn(fmt.Sprintf("k%d", i%8), "v", i)),
			})
			if i%3 == 0 {
				s.ApplyCommands([]command.Command{revokeCmd(i - 1)})
			}
		}
	}()
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				v := s.View()
				ls := v.Leases()
				if !slices.IsSortedFunc(ls, func(a, b kv.LeaseInfo) int { return cmp.Compare(a.ID, b.ID) }) {
					t.Errorf("view leases out of order: %+v", ls)
					return
				}
				for _, l := range s.Leases() {
					s.Lease(l.ID)
				}
			}
		}()
	}
	wg.Wait()
	checkLeaseInvariant(t, s)
}
