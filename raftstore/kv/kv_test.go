package kv_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/kv"
)

func b(s string) []byte { return []byte(s) }

// apply applies one transaction and returns its response and change.
func apply(t testing.TB, s *kv.Store, txn *command.Txn) (*command.Response, kv.Change) {
	t.Helper()
	resps, changes := s.Apply([]*command.Txn{txn})
	if len(resps) != 1 || len(changes) != 1 {
		t.Fatalf("Apply of one txn returned %d responses and %d changes", len(resps), len(changes))
	}
	return resps[0], changes[0]
}

func put(t testing.TB, s *kv.Store, key, value string) *command.Response {
	t.Helper()
	r, _ := apply(t, s, command.Put(b(key), b(value), false))
	return r
}

func get(t testing.TB, s *kv.Store, key string) (command.KeyValue, bool) {
	t.Helper()
	r := s.Range(b(key), nil, 0, false)
	switch len(r.KVs) {
	case 0:
		return command.KeyValue{}, false
	case 1:
		return r.KVs[0], true
	}
	t.Fatalf("single-key range of %q returned %d keys", key, len(r.KVs))
	return command.KeyValue{}, false
}

func keysOf(kvs []command.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

func kvOf(key, value string, create, mod, version int64) command.KeyValue {
	return command.KeyValue{Key: b(key), Value: b(value), CreateRev: create, ModRev: mod, Version: version}
}

func TestNewStoreIsEmpty(t *testing.T) {
	s := kv.New()
	if s.Revision() != 0 || s.Len() != 0 {
		t.Fatalf("new store: revision %d, len %d; want 0, 0", s.Revision(), s.Len())
	}
	r := s.Range(b("\x00"), b("\x00"), 0, false)
	if r.Count != 0 || len(r.KVs) != 0 || r.More || r.Revision != 0 {
		t.Fatalf("range of an empty store = %+v", r)
	}
}

func TestBinaryKeyOrdering(t *testing.T) {
	keys := []string{
		"\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01",
		"a", "a\x00", "a\x00\x00", "a\x01", "a\xff", "aa", "b",
		"\x7f", "\x80", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
	}
	want := slices.Clone(keys)
	slices.SortFunc(want, func(x, y string) int { return bytes.Compare(b(x), b(y)) })

	s := kv.New()
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(keys)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		put(t, s, k, "v"+k)
	}

	all := s.Range(nil, b("\x00"), 0, false)
	if got := keysOf(all.KVs); !reflect.DeepEqual(got, want) {
		t.Fatalf("range order:\n got %q\nwant %q", got, want)
	}
	if all.Count != int64(len(keys)) {
		t.Fatalf("Count = %d, want %d", all.Count, len(keys))
	}
	var viewed []string
	s.View().Ascend(func(kv command.KeyValue) bool { viewed = append(viewed, string(kv.Key)); return true })
	if !reflect.DeepEqual(viewed, want) {
		t.Fatalf("view order:\n got %q\nwant %q", viewed, want)
	}

	ranges := []struct {
		key, end string
		want     []string
	}{
		{"\x00", "\x01", []string{"\x00", "\x00\x00", "\x00\x01", "\x00\xff"}},
		{"\x00\x00", "\x00\xff", []string{"\x00\x00", "\x00\x01"}},
		{"a", "a\x01", []string{"a", "a\x00", "a\x00\x00"}},
		{"a\x00", string(command.PrefixEnd(b("a\x00"))), []string{"a\x00", "a\x00\x00"}},
		{"a", string(command.PrefixEnd(b("a"))), []string{"a", "a\x00", "a\x00\x00", "a\x01", "aa", "a\xff"}},
		{"\xff", "\x00", []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}},
		{"\xff", string(command.PrefixEnd(b("\xff"))), []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}},
		{"\xff\x00", "\xff\xff", []string{"\xff\x00"}},
		{"\x80", "\xff", []string{"\x80", "\xfe\xff"}},
	}
	for _, rg := range ranges {
		r := s.Range(b(rg.key), b(rg.end), 0, false)
		if got := keysOf(r.KVs); !reflect.DeepEqual(got, rg.want) {
			t.Errorf("Range(%q, %q) = %q, want %q", rg.key, rg.end, got, rg.want)
		}
	}
	// Single keys containing 0x00 and 0xff are distinct.
	for _, k := range keys {
		got, ok := get(t, s, k)
		if !ok || string(got.Value) != "v"+k {
			t.Errorf("get(%q) = %+v, %v", k, got, ok)
		}
	}
}

func TestPutCreateAndUpdate(t *testing.T) {
	s := kv.New()
	type step struct {
		key, value string
		wantRev    int64
		wantKV     command.KeyValue
		wantPrev   *command.KeyValue
	}
	steps := []step{
		{"a", "1", 1, kvOf("a", "1", 1, 1, 1), nil},
		{"b", "1", 2, kvOf("b", "1", 2, 2, 1), nil},
		{"a", "2", 3, kvOf("a", "2", 1, 3, 2), ptr(kvOf("a", "1", 1, 1, 1))},
		{"a", "3", 4, kvOf("a", "3", 1, 4, 3), ptr(kvOf("a", "2", 1, 3, 2))},
		{"a", "3", 5, kvOf("a", "3", 1, 5, 4), ptr(kvOf("a", "3", 1, 4, 3))}, // same value still writes
		{"b", "2", 6, kvOf("b", "2", 2, 6, 2), ptr(kvOf("b", "1", 2, 2, 1))},
	}
	for i, st := range steps {
		resp, ch := apply(t, s, command.Put(b(st.key), b(st.value), true))
		if resp.Revision != st.wantRev || !resp.Succeeded || s.Revision() != st.wantRev {
			t.Fatalf("step %d: response %+v, store revision %d; want revision %d", i, resp, s.Revision(), st.wantRev)
		}
		if len(resp.Results) != 1 {
			t.Fatalf("step %d: %d results", i, len(resp.Results))
		}
		var wantPrevKVs []command.KeyValue
		if st.wantPrev != nil {
			wantPrevKVs = []command.KeyValue{*st.wantPrev}
		}
		if !reflect.DeepEqual(resp.Results[0].KVs, wantPrevKVs) {
			t.Errorf("step %d: PrevKV result %+v, want %+v", i, resp.Results[0].KVs, wantPrevKVs)
		}
		wantCh := kv.Change{Revision: st.wantRev, Events: []kv.Event{{Type: kv.EventPut, KV: st.wantKV, PrevKV: st.wantPrev}}}
		if !reflect.DeepEqual(ch, wantCh) {
			t.Errorf("step %d: change\n got %+v\nwant %+v", i, ch, wantCh)
		}
		if got, ok := get(t, s, st.key); !ok || !reflect.DeepEqual(got, st.wantKV) {
			t.Errorf("step %d: stored %+v, want %+v", i, got, st.wantKV)
		}
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
}

func ptr[T any](v T) *T { return &v }

func TestPutWithoutPrevKVReturnsNoKVs(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "1")
	resp := put(t, s, "a", "2")
	if len(resp.Results) != 1 || resp.Results[0].KVs != nil {
		t.Fatalf("put without PrevKV returned %+v", resp.Results)
	}
	// The change still carries PrevKV: watchers need it.
	_, ch := apply(t, s, command.Put(b("a"), b("3"), false))
	if ch.Events[0].PrevKV == nil || string(ch.Events[0].PrevKV.Value) != "2" {
		t.Fatalf("event PrevKV = %+v, want the value 2", ch.Events[0].PrevKV)
	}
}

func TestDelete(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "1") // rev 1
	put(t, s, "b", "1") // rev 2
	put(t, s, "a", "2") // rev 3

	resp, ch := apply(t, s, command.Delete(b("a"), nil, true))
	if resp.Revision != 4 || s.Revision() != 4 || !resp.Succeeded {
		t.Fatalf("delete response %+v, store revision %d; want 4", resp, s.Revision())
	}
	prev := kvOf("a", "2", 1, 3, 2)
	wantRes := command.OpResult{KVs: []command.KeyValue{prev}, Count: 1, Deleted: 1}
	if !reflect.DeepEqual(resp.Results, []command.OpResult{wantRes}) {
		t.Fatalf("delete result %+v, want %+v", resp.Results, wantRes)
	}
	wantCh := kv.Change{Revision: 4, Events: []kv.Event{{
		Type:   kv.EventDelete,
		KV:     command.KeyValue{Key: b("a"), ModRev: 4},
		PrevKV: &prev,
	}}}
	if !reflect.DeepEqual(ch, wantCh) {
		t.Fatalf("delete change\n got %+v\nwant %+v", ch, wantCh)
	}
	if _, ok := get(t, s, "a"); ok {
		t.Fatalf("deleted key still present")
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}

	// Recreating starts a new life: new create revision, version 1.
	_, ch = apply(t, s, command.Put(b("a"), b("3"), false))
	if want := kvOf("a", "3", 5, 5, 1); !reflect.DeepEqual(ch.Events[0].KV, want) || ch.Events[0].PrevKV != nil {
		t.Fatalf("recreate event %+v, want KV %+v and no PrevKV", ch.Events[0], want)
	}

	// Without PrevKV the result carries only the counts.
	resp, _ = apply(t, s, command.Delete(b("b"), nil, false))
	if want := (command.OpResult{Count: 1, Deleted: 1}); !reflect.DeepEqual(resp.Results[0], want) {
		t.Fatalf("delete without PrevKV result %+v, want %+v", resp.Results[0], want)
	}
}

func TestDeleteMissingDoesNotBumpRevision(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "1")
	put(t, s, "c", "1")
	tests := []struct {
		name string
		txn  *command.Txn
	}{
		{"missing key", command.Delete(b("b"), nil, true)},
		{"empty range", command.Delete(b("b"), b("c"), true)},
		{"range past the end", command.Delete(b("d"), b("\x00"), false)},
		{"inverted range", command.Delete(b("z"), b("a"), false)},
		{"two missing keys", &command.Txn{Success: []command.Op{
			{Type: command.OpDelete, Key: b("x")},
			{Type: command.OpDelete, Key: b("y")},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, ch := apply(t, s, tc.txn)
			if resp.Revision != 2 || s.Revision() != 2 {
				t.Fatalf("revision %d (store %d), want 2", resp.Revision, s.Revision())
			}
			if !resp.Succeeded {
				t.Fatalf("not succeeded")
			}
			for _, r := range resp.Results {
				if r.Deleted != 0 || r.Count != 0 || r.KVs != nil {
					t.Fatalf("result %+v, want nothing deleted", r)
				}
			}
			if ch.Revision != 2 || len(ch.Events) != 0 {
				t.Fatalf("change %+v, want revision 2 and no events", ch)
			}
		})
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
}

func TestDeleteRange(t *testing.T) {
	tests := []struct {
		name     string
		key, end string
		deleted  []string
		left     []string
	}{
		{"[a,c)", "a", "c", []string{"a", "a\x00", "b"}, []string{"\x00", "c", "d", "\xff"}},
		{"prefix a", "a", string(command.PrefixEnd(b("a"))), []string{"a", "a\x00"}, []string{"\x00", "b", "c", "d", "\xff"}},
		{"to the end", "c", "\x00", []string{"c", "d", "\xff"}, []string{"\x00", "a", "a\x00", "b"}},
		{"everything", "", "\x00", []string{"\x00", "a", "a\x00", "b", "c", "d", "\xff"}, []string{}},
		{"from 0x00", "\x00", "\x00", []string{"\x00", "a", "a\x00", "b", "c", "d", "\xff"}, []string{}},
		{"only 0xff", "\xff", "\x00", []string{"\xff"}, []string{"\x00", "a", "a\x00", "b", "c", "d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := kv.New()
			all := []string{"\x00", "a", "a\x00", "b", "c", "d", "\xff"}
			for _, k := range all {
				put(t, s, k, "v")
			}
			before := s.Revision()
			resp, ch := apply(t, s, command.Delete(b(tc.key), b(tc.end), true))
			want := before + 1
			if resp.Revision != want || ch.Revision != want || s.Revision() != want {
				t.Fatalf("revisions %d/%d/%d, want %d", resp.Revision, ch.Revision, s.Revision(), want)
			}
			res := resp.Results[0]
			if res.Deleted != int64(len(tc.deleted)) || res.Count != res.Deleted {
				t.Fatalf("Deleted %d Count %d, want %d", res.Deleted, res.Count, len(tc.deleted))
			}
			if got := keysOf(res.KVs); !reflect.DeepEqual(got, tc.deleted) {
				t.Fatalf("PrevKVs %q, want %q", got, tc.deleted)
			}
			if len(ch.Events) != len(tc.deleted) {
				t.Fatalf("%d events, want %d", len(ch.Events), len(tc.deleted))
			}
			for i, ev := range ch.Events {
				if ev.Type != kv.EventDelete || string(ev.KV.Key) != tc.deleted[i] || ev.KV.ModRev != want ||
					ev.KV.Value != nil || ev.KV.Version != 0 || ev.KV.CreateRev != 0 {
					t.Errorf("event %d = %+v", i, ev)
				}
				if ev.PrevKV == nil || string(ev.PrevKV.Key) != tc.deleted[i] || string(ev.PrevKV.Value) != "v" {
					t.Errorf("event %d PrevKV = %+v", i, ev.PrevKV)
				}
			}
			left := s.Range(nil, b("\x00"), 0, false)
			if got := keysOf(left.KVs); !reflect.DeepEqual(got, tc.left) {
				t.Fatalf("left %q, want %q", got, tc.left)
			}
		})
	}
}

func TestMultiOpTxnIsOneRevision(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "old") // rev 1
	put(t, s, "c", "old") // rev 2
	txn := &command.Txn{Success: []command.Op{
		{Type: command.OpPut, Key: b("a"), Value: b("new")},
		{Type: command.OpPut, Key: b("b"), Value: b("new"), PrevKV: true},
		{Type: command.OpRange, Key: b("a"), End: b("\x00")},
		{Type: command.OpDelete, Key: b("c"), PrevKV: true},
		{Type: command.OpDelete, Key: b("zz")}, // missing: no event
	}}
	resp, ch := apply(t, s, txn)
	if resp.Revision != 3 || s.Revision() != 3 || ch.Revision != 3 {
		t.Fatalf("revisions %d/%d/%d, want one bump to 3", resp.Revision, s.Revision(), ch.Revision)
	}
	if len(resp.Results) != len(txn.Success) {
		t.Fatalf("%d results for %d ops", len(resp.Results), len(txn.Success))
	}
	wantEvents := []kv.Event{
		{Type: kv.EventPut, KV: kvOf("a", "new", 1, 3, 2), PrevKV: ptr(kvOf("a", "old", 1, 1, 1))},
		{Type: kv.EventPut, KV: kvOf("b", "new", 3, 3, 1)},
		{Type: kv.EventDelete, KV: command.KeyValue{Key: b("c"), ModRev: 3}, PrevKV: ptr(kvOf("c", "old", 2, 2, 1))},
	}
	if !reflect.DeepEqual(ch.Events, wantEvents) {
		t.Fatalf("events\n got %+v\nwant %+v", ch.Events, wantEvents)
	}
	// Every write of the transaction carries the same revision.
	for _, k := range []string{"a", "b"} {
		if got, _ := get(t, s, k); got.ModRev != 3 {
			t.Errorf("%s ModRev = %d, want 3", k, got.ModRev)
		}
	}
	// The range saw the transaction's own earlier writes.
	if got := keysOf(resp.Results[2].KVs); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("range inside txn saw %q", got)
	}
}

func TestReadOnlyTxnDoesNotBumpRevision(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "1")
	put(t, s, "b", "1")
	tests := []struct {
		name      string
		txn       *command.Txn
		succeeded bool
	}{
		{"empty txn", &command.Txn{}, true},
		{"range only", &command.Txn{Success: []command.Op{{Type: command.OpRange, Key: b("a"), End: b("\x00")}}}, true},
		{"compare only", &command.Txn{Compares: []command.Compare{{Key: b("a"), Target: command.TargetVersion, Result: command.Equal, Int: 1}}}, true},
		{"failed compare with no failure ops", &command.Txn{
			Compares: []command.Compare{{Key: b("a"), Target: command.TargetVersion, Result: command.Equal, Int: 9}},
			Success:  []command.Op{{Type: command.OpPut, Key: b("a"), Value: b("x")}},
		}, false},
		{"failed compare with range failure", &command.Txn{
			Compares: []command.Compare{{Key: b("a"), Target: command.TargetVersion, Result: command.Equal, Int: 9}},
			Success:  []command.Op{{Type: command.OpPut, Key: b("a"), Value: b("x")}},
			Failure:  []command.Op{{Type: command.OpRange, Key: b("a")}},
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, ch := apply(t, s, tc.txn)
			if resp.Revision != 2 || s.Revision() != 2 || ch.Revision != 2 || len(ch.Events) != 0 {
				t.Fatalf("response %+v change %+v store revision %d; want revision 2, no events", resp, ch, s.Revision())
			}
			if resp.Succeeded != tc.succeeded {
				t.Fatalf("Succeeded = %v, want %v", resp.Succeeded, tc.succeeded)
			}
		})
	}
	if got, _ := get(t, s, "a"); string(got.Value) != "1" {
		t.Fatalf("a = %q, want unchanged 1", got.Value)
	}
}

// compareState builds a store where key "k" has CreateRev 2, ModRev 4,
// Version 2 and value "m", at revision 5.
func compareState(t *testing.T) *kv.Store {
	s := kv.New()
	put(t, s, "other", "x") // 1
	put(t, s, "k", "a")     // 2
	put(t, s, "other", "y") // 3
	put(t, s, "k", "m")     // 4
	put(t, s, "other", "z") // 5
	want := kvOf("k", "m", 2, 4, 2)
	if got, _ := get(t, s, "k"); !reflect.DeepEqual(got, want) {
		t.Fatalf("setup: k = %+v, want %+v", got, want)
	}
	return s
}

func TestCompares(t *testing.T) {
	type cmpCase struct {
		target command.Target
		result command.Result
		int    int64
		value  string
		want   bool
	}
	var cases []cmpCase
	// For each numeric target, the key's actual value and operands below,
	// at and above it, against every result.
	actual := map[command.Target]int64{command.TargetVersion: 2, command.TargetCreateRev: 2, command.TargetModRev: 4}
	for _, tg := range []command.Target{command.TargetVersion, command.TargetCreateRev, command.TargetModRev} {
		v := actual[tg]
		for _, op := range []int64{v - 1, v, v + 1} {
			cases = append(cases,
				cmpCase{tg, command.Equal, op, "", v == op},
				cmpCase{tg, command.NotEqual, op, "", v != op},
				cmpCase{tg, command.Less, op, "", v < op},
				cmpCase{tg, command.Greater, op, "", v > op},
			)
		}
	}
	for _, op := range []string{"", "a", "m", "m\x00", "z", "\xff"} {
		c := bytes.Compare(b("m"), b(op))
		cases = append(cases,
			cmpCase{command.TargetValue, command.Equal, 0, op, c == 0},
			cmpCase{command.TargetValue, command.NotEqual, 0, op, c != 0},
			cmpCase{command.TargetValue, command.Less, 0, op, c < 0},
			cmpCase{command.TargetValue, command.Greater, 0, op, c > 0},
		)
	}
	// Spot checks written out, so the table above is not its own oracle.
	cases = append(cases,
		cmpCase{command.TargetVersion, command.Equal, 2, "", true},
		cmpCase{command.TargetModRev, command.Less, 5, "", true},
		cmpCase{command.TargetModRev, command.Greater, 5, "", false},
		cmpCase{command.TargetCreateRev, command.NotEqual, 2, "", false},
		cmpCase{command.TargetValue, command.Equal, 0, "m", true},
		cmpCase{command.TargetValue, command.Less, 0, "n", true},
		cmpCase{command.TargetValue, command.Greater, 0, "", true},
	)

	s := compareState(t)
	for _, tc := range cases {
		name := fmt.Sprintf("target%d/result%d/%d/%q", tc.target, tc.result, tc.int, tc.value)
		t.Run(name, func(t *testing.T) {
			before := s.Revision()
			c := command.Compare{Key: b("k"), Target: tc.target, Result: tc.result, Int: tc.int}
			if tc.target == command.TargetValue {
				c.Value = b(tc.value)
			}
			resp, _ := apply(t, s, &command.Txn{
				Compares: []command.Compare{c},
				Success:  []command.Op{{Type: command.OpRange, Key: b("k")}},
				Failure:  []command.Op{{Type: command.OpRange, Key: b("other")}},
			})
			if resp.Succeeded != tc.want {
				t.Fatalf("Succeeded = %v, want %v", resp.Succeeded, tc.want)
			}
			wantKey := "other"
			if tc.want {
				wantKey = "k"
			}
			if got := keysOf(resp.Results[0].KVs); !reflect.DeepEqual(got, []string{wantKey}) {
				t.Fatalf("ran the wrong branch: read %q, want %q", got, wantKey)
			}
			if s.Revision() != before {
				t.Fatalf("a read-only txn bumped the revision")
			}
		})
	}
}

func TestComparesOnAbsentKey(t *testing.T) {
	s := compareState(t)
	tests := []struct {
		name string
		c    command.Compare
		want bool
	}{
		{"version = 0", command.Compare{Target: command.TargetVersion, Result: command.Equal, Int: 0}, true},
		{"version != 0", command.Compare{Target: command.TargetVersion, Result: command.NotEqual, Int: 0}, false},
		{"version < 1", command.Compare{Target: command.TargetVersion, Result: command.Less, Int: 1}, true},
		{"version > 0", command.Compare{Target: command.TargetVersion, Result: command.Greater, Int: 0}, false},
		{"version > -1", command.Compare{Target: command.TargetVersion, Result: command.Greater, Int: -1}, true},
		{"create = 0", command.Compare{Target: command.TargetCreateRev, Result: command.Equal, Int: 0}, true},
		{"create < 3", command.Compare{Target: command.TargetCreateRev, Result: command.Less, Int: 3}, true},
		{"mod = 0", command.Compare{Target: command.TargetModRev, Result: command.Equal, Int: 0}, true},
		{"mod != 5", command.Compare{Target: command.TargetModRev, Result: command.NotEqual, Int: 5}, true},
		{"mod > 0", command.Compare{Target: command.TargetModRev, Result: command.Greater, Int: 0}, false},
		// Value compares on an absent key are false whatever the result.
		{"value = empty", command.Compare{Target: command.TargetValue, Result: command.Equal}, false},
		{"value = x", command.Compare{Target: command.TargetValue, Result: command.Equal, Value: b("x")}, false},
		{"value != x", command.Compare{Target: command.TargetValue, Result: command.NotEqual, Value: b("x")}, false},
		{"value < x", command.Compare{Target: command.TargetValue, Result: command.Less, Value: b("x")}, false},
		{"value > empty", command.Compare{Target: command.TargetValue, Result: command.Greater}, false},
		{"value != empty", command.Compare{Target: command.TargetValue, Result: command.NotEqual}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, key := range []string{"absent", "", "\x00", "\xff"} {
				c := tc.c
				c.Key = b(key)
				resp, _ := apply(t, s, &command.Txn{Compares: []command.Compare{c}})
				if resp.Succeeded != tc.want {
					t.Fatalf("key %q: Succeeded = %v, want %v", key, resp.Succeeded, tc.want)
				}
			}
		})
	}
	// Value compare on an existing key with an empty value works.
	put(t, s, "empty", "")
	resp, _ := apply(t, s, &command.Txn{Compares: []command.Compare{{Key: b("empty"), Target: command.TargetValue, Result: command.Equal}}})
	if !resp.Succeeded {
		t.Fatalf("value = empty on a key holding an empty value should hold")
	}
}

func TestCreateIfAbsentAndCAS(t *testing.T) {
	s := kv.New()
	create := func(key, value string) *command.Txn {
		return &command.Txn{
			Compares: []command.Compare{{Key: b(key), Target: command.TargetVersion, Result: command.Equal, Int: 0}},
			Success:  []command.Op{{Type: command.OpPut, Key: b(key), Value: b(value)}},
			Failure:  []command.Op{{Type: command.OpRange, Key: b(key)}},
		}
	}
	cas := func(key string, modRev int64, value string) *command.Txn {
		return &command.Txn{
			Compares: []command.Compare{{Key: b(key), Target: command.TargetModRev, Result: command.Equal, Int: modRev}},
			Success:  []command.Op{{Type: command.OpPut, Key: b(key), Value: b(value)}},
		}
	}
	steps := []struct {
		txn       *command.Txn
		succeeded bool
		rev       int64
		value     string
	}{
		{create("lock", "owner1"), true, 1, "owner1"},
		{create("lock", "owner2"), false, 1, "owner1"},
		{cas("lock", 0, "stale"), false, 1, "owner1"},
		{cas("lock", 1, "owner1b"), true, 2, "owner1b"},
		{cas("lock", 1, "again"), false, 2, "owner1b"},
		{command.Delete(b("lock"), nil, false), true, 3, ""},
		{create("lock", "owner3"), true, 4, "owner3"},
	}
	for i, st := range steps {
		resp, _ := apply(t, s, st.txn)
		if resp.Succeeded != st.succeeded || resp.Revision != st.rev {
			t.Fatalf("step %d: succeeded %v revision %d, want %v %d", i, resp.Succeeded, resp.Revision, st.succeeded, st.rev)
		}
		got, _ := get(t, s, "lock")
		if string(got.Value) != st.value {
			t.Fatalf("step %d: value %q, want %q", i, got.Value, st.value)
		}
	}
	if resp, _ := apply(t, s, create("lock", "x")); len(resp.Results) != 1 || string(resp.Results[0].KVs[0].Value) != "owner3" {
		t.Fatalf("failure branch should read the current owner, got %+v", resp.Results)
	}
}

func TestAllComparesMustHold(t *testing.T) {
	s := compareState(t)
	ok := command.Compare{Key: b("k"), Target: command.TargetVersion, Result: command.Equal, Int: 2}
	bad := command.Compare{Key: b("k"), Target: command.TargetVersion, Result: command.Equal, Int: 3}
	tests := []struct {
		name     string
		compares []command.Compare
		want     bool
	}{
		{"none", nil, true},
		{"one ok", []command.Compare{ok}, true},
		{"two ok", []command.Compare{ok, ok}, true},
		{"bad first", []command.Compare{bad, ok}, false},
		{"bad last", []command.Compare{ok, ok, bad}, false},
	}
	for _, tc := range tests {
		resp, _ := apply(t, s, &command.Txn{Compares: tc.compares})
		if resp.Succeeded != tc.want {
			t.Errorf("%s: Succeeded = %v, want %v", tc.name, resp.Succeeded, tc.want)
		}
	}
}

func TestSuccessAndFailureBranches(t *testing.T) {
	for _, succeed := range []bool{true, false} {
		t.Run(strconv.FormatBool(succeed), func(t *testing.T) {
			s := kv.New()
			put(t, s, "k", "v")
			operand := int64(1)
			if !succeed {
				operand = 7
			}
			resp, ch := apply(t, s, &command.Txn{
				Compares: []command.Compare{{Key: b("k"), Target: command.TargetVersion, Result: command.Equal, Int: operand}},
				Success: []command.Op{
					{Type: command.OpPut, Key: b("s1"), Value: b("1")},
					{Type: command.OpPut, Key: b("s2"), Value: b("2")},
				},
				Failure: []command.Op{
					{Type: command.OpDelete, Key: b("k"), PrevKV: true},
				},
			})
			if resp.Succeeded != succeed || resp.Revision != 2 || ch.Revision != 2 {
				t.Fatalf("response %+v", resp)
			}
			var wantKeys []string
			wantResults := 2
			if succeed {
				wantKeys = []string{"k", "s1", "s2"}
			} else {
				wantKeys = []string{}
				wantResults = 1
			}
			if len(resp.Results) != wantResults {
				t.Fatalf("%d results, want one per op of the branch taken (%d)", len(resp.Results), wantResults)
			}
			if got := keysOf(s.Range(nil, b("\x00"), 0, false).KVs); !reflect.DeepEqual(got, wantKeys) {
				t.Fatalf("keys %q, want %q", got, wantKeys)
			}
		})
	}
}

func TestRange(t *testing.T) {
	s := kv.New()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		put(t, s, k, "v"+k)
	}
	all := []string{"a", "b", "c", "d", "e"}
	tests := []struct {
		name      string
		key, end  string
		limit     int64
		countOnly bool
		keys      []string
		count     int64
		more      bool
	}{
		{"single key", "c", "", 0, false, []string{"c"}, 1, false},
		{"single missing key", "cc", "", 0, false, []string{}, 0, false},
		{"single key limit ignored", "c", "", 1, false, []string{"c"}, 1, false},
		{"single key count only", "c", "", 0, true, []string{}, 1, false},
		{"[b,d)", "b", "d", 0, false, []string{"b", "c"}, 2, false},
		{"[b,dd)", "b", "dd", 0, false, []string{"b", "c", "d"}, 2 + 1, false},
		{"[bb,c)", "bb", "c", 0, false, []string{}, 0, false},
		{"end below key", "d", "b", 0, false, []string{}, 0, false},
		{"end equals key", "b", "b", 0, false, []string{}, 0, false},
		{"to the end", "c", "\x00", 0, false, []string{"c", "d", "e"}, 3, false},
		{"everything", "", "\x00", 0, false, all, 5, false},
		{"everything from 0x00", "\x00", "\x00", 0, false, all, 5, false},
		{"prefix", "b", string(command.PrefixEnd(b("b"))), 0, false, []string{"b"}, 1, false},
		{"limit cuts", "", "\x00", 2, false, []string{"a", "b"}, 5, true},
		{"limit one", "b", "e", 1, false, []string{"b"}, 3, true},
		{"limit equals count", "", "\x00", 5, false, all, 5, false},
		{"limit above count", "", "\x00", 50, false, all, 5, false},
		{"negative limit is no limit", "", "\x00", -1, false, all, 5, false},
		{"count only", "", "\x00", 0, true, []string{}, 5, false},
		{"count only with limit", "", "\x00", 2, true, []string{}, 5, false},
		{"count only range", "b", "d", 0, true, []string{}, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var end []byte
			if tc.end != "" {
				end = b(tc.end)
			}
			for _, src := range []struct {
				name string
				fn   func() kv.RangeResult
			}{
				{"store", func() kv.RangeResult { return s.Range(b(tc.key), end, tc.limit, tc.countOnly) }},
				{"view", func() kv.RangeResult { return s.View().Range(b(tc.key), end, tc.limit, tc.countOnly) }},
				{"txn", func() kv.RangeResult {
					resp, _ := apply(t, s, &command.Txn{Success: []command.Op{{
						Type: command.OpRange, Key: b(tc.key), End: end, Limit: tc.limit, CountOnly: tc.countOnly,
					}}})
					r := resp.Results[0]
					return kv.RangeResult{KVs: r.KVs, Count: r.Count, More: r.More, Revision: resp.Revision}
				}},
			} {
				r := src.fn()
				if got := keysOf(r.KVs); !reflect.DeepEqual(got, tc.keys) {
					t.Errorf("%s: keys %q, want %q", src.name, got, tc.keys)
				}
				if r.Count != tc.count || r.More != tc.more || r.Revision != 5 {
					t.Errorf("%s: Count %d More %v Revision %d, want %d %v 5", src.name, r.Count, r.More, r.Revision, tc.count, tc.more)
				}
				for _, kv := range r.KVs {
					if string(kv.Value) != "v"+string(kv.Key) {
						t.Errorf("%s: %q has value %q", src.name, kv.Key, kv.Value)
					}
				}
			}
		})
	}
}

func TestTxnReadsItsOwnWrites(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "old") // 1
	put(t, s, "b", "old") // 2
	resp, _ := apply(t, s, &command.Txn{Success: []command.Op{
		{Type: command.OpRange, Key: b("a")},                          // 0: before any write
		{Type: command.OpPut, Key: b("a"), Value: b("new")},           // 1
		{Type: command.OpRange, Key: b("a")},                          // 2: sees the put
		{Type: command.OpDelete, Key: b("b")},                         // 3
		{Type: command.OpRange, Key: b("b")},                          // 4: sees the delete
		{Type: command.OpPut, Key: b("c"), Value: b("new")},           // 5
		{Type: command.OpRange, Key: b(""), End: b("\x00")},           // 6
		{Type: command.OpPut, Key: b("b"), Value: b("again")},         // 7
		{Type: command.OpRange, Key: b(""), End: b("\x00"), Limit: 1}, // 8
		{Type: command.OpRange, Key: b("b")},                          // 9: recreated
	}})
	r := resp.Results
	if resp.Revision != 3 {
		t.Fatalf("revision %d, want 3", resp.Revision)
	}
	if want := []command.KeyValue{kvOf("a", "old", 1, 1, 1)}; !reflect.DeepEqual(r[0].KVs, want) {
		t.Errorf("read before write: %+v, want %+v", r[0].KVs, want)
	}
	if want := []command.KeyValue{kvOf("a", "new", 1, 3, 2)}; !reflect.DeepEqual(r[2].KVs, want) {
		t.Errorf("read after put: %+v, want %+v", r[2].KVs, want)
	}
	if r[4].Count != 0 || r[4].KVs != nil {
		t.Errorf("read after delete: %+v, want nothing", r[4])
	}
	if got := keysOf(r[6].KVs); !reflect.DeepEqual(got, []string{"a", "c"}) || r[6].Count != 2 {
		t.Errorf("range after writes: %q count %d, want [a c] 2", got, r[6].Count)
	}
	if r[8].Count != 3 || !r[8].More || len(r[8].KVs) != 1 {
		t.Errorf("limited range: %+v, want count 3, more, one kv", r[8])
	}
	if want := []command.KeyValue{kvOf("b", "again", 3, 3, 1)}; !reflect.DeepEqual(r[9].KVs, want) {
		t.Errorf("recreated key: %+v, want %+v", r[9].KVs, want)
	}
}

func TestCompareSeesStateBeforeTxn(t *testing.T) {
	// Compares are evaluated before any op of the txn runs.
	s := kv.New()
	resp, _ := apply(t, s, &command.Txn{
		Compares: []command.Compare{{Key: b("a"), Target: command.TargetVersion, Result: command.Equal, Int: 0}},
		Success:  []command.Op{{Type: command.OpPut, Key: b("a"), Value: b("1")}},
	})
	if !resp.Succeeded || resp.Revision != 1 {
		t.Fatalf("response %+v", resp)
	}
}

func TestApplyBatch(t *testing.T) {
	s := kv.New()
	put(t, s, "x", "0") // 1
	txns := []*command.Txn{
		command.Put(b("a"), b("1"), false),                            // 2
		{Success: []command.Op{{Type: command.OpRange, Key: b("a")}}}, // read: stays 2, sees a
		command.Delete(b("missing"), nil, false),                      // no-op: stays 2
		command.Put(b("a"), b("2"), true),                             // 3
		command.Delete(b("x"), nil, true),                             // 4
	}
	resps, changes := s.Apply(txns)
	if len(resps) != len(txns) || len(changes) != len(txns) {
		t.Fatalf("%d responses, %d changes for %d txns", len(resps), len(changes), len(txns))
	}
	wantRevs := []int64{2, 2, 2, 3, 4}
	wantEvents := []int{1, 0, 0, 1, 1}
	for i := range txns {
		if resps[i].Revision != wantRevs[i] || changes[i].Revision != wantRevs[i] || len(changes[i].Events) != wantEvents[i] {
			t.Errorf("txn %d: response revision %d, change %+v; want revision %d with %d events",
				i, resps[i].Revision, changes[i], wantRevs[i], wantEvents[i])
		}
	}
	if got := resps[1].Results[0].KVs; len(got) != 1 || string(got[0].Value) != "1" {
		t.Errorf("a later txn of the batch did not see an earlier one: %+v", got)
	}
	if got := changes[3].Events[0].PrevKV; got == nil || !reflect.DeepEqual(*got, kvOf("a", "1", 2, 2, 1)) {
		t.Errorf("PrevKV across the batch = %+v", got)
	}
	if s.Revision() != 4 {
		t.Fatalf("revision %d, want 4", s.Revision())
	}
	if r, c := s.Apply(nil); len(r) != 0 || len(c) != 0 || s.Revision() != 4 {
		t.Fatalf("empty batch: %v %v, revision %d", r, c, s.Revision())
	}
}

func TestEmptyValuesAndKeys(t *testing.T) {
	s := kv.New()
	put(t, s, "", "empty key")
	put(t, s, "k", "")
	if got, ok := get(t, s, ""); !ok || string(got.Value) != "empty key" {
		t.Fatalf("empty key: %+v %v", got, ok)
	}
	if got, ok := get(t, s, "k"); !ok || len(got.Value) != 0 || got.Version != 1 {
		t.Fatalf("empty value: %+v %v", got, ok)
	}
	if got := keysOf(s.Range(nil, b("\x00"), 0, false).KVs); !reflect.DeepEqual(got, []string{"", "k"}) {
		t.Fatalf("keys %q", got)
	}
}

func TestViewIsImmutable(t *testing.T) {
	s := kv.New()
	put(t, s, "a", "1")
	put(t, s, "b", "1")
	put(t, s, "c", "1")
	v := s.View()
	snapshot := func(v *kv.View) []command.KeyValue {
		var out []command.KeyValue
		v.Ascend(func(kv command.KeyValue) bool { out = append(out, kv); return true })
		return out
	}
	before := snapshot(v)

	put(t, s, "a", "2")
	apply(t, s, command.Delete(b("b"), nil, false))
	put(t, s, "d", "1")
	for i := 0; i < 1000; i++ { // enough writes to split and copy tree nodes
		put(t, s, fmt.Sprintf("k%04d", i), "x")
	}
	apply(t, s, command.Delete(b("k0"), b("k1"), false))

	if v.Revision() != 3 || v.Len() != 3 {
		t.Fatalf("view revision %d len %d, want 3 3", v.Revision(), v.Len())
	}
	if got := snapshot(v); !reflect.DeepEqual(got, before) {
		t.Fatalf("view changed:\n got %+v\nwant %+v", got, before)
	}
	want := []command.KeyValue{kvOf("a", "1", 1, 1, 1), kvOf("b", "1", 2, 2, 1), kvOf("c", "1", 3, 3, 1)}
	if !reflect.DeepEqual(before, want) {
		t.Fatalf("view %+v, want %+v", before, want)
	}
	if r := v.Range(b("b"), nil, 0, false); r.Count != 1 || r.Revision != 3 {
		t.Fatalf("view range of b = %+v", r)
	}
	// The store moved on.
	if s.Revision() != 1007 || s.Len() != 3 {
		t.Fatalf("store revision %d len %d, want 1007 3", s.Revision(), s.Len())
	}
	// Two views taken at different times are independent.
	v2 := s.View()
	put(t, s, "z", "1")
	if v2.Len() != 3 || v2.Revision() != 1007 || v.Len() != 3 {
		t.Fatalf("second view changed: len %d rev %d", v2.Len(), v2.Revision())
	}
	// Early stop of Ascend.
	n := 0
	v.Ascend(func(command.KeyValue) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Ascend visited %d keys after fn returned false at 2", n)
	}
}

// TestConcurrentReadersAndWriter runs under -race: readers take views and
// range the store while one writer applies. Txn i writes key k(i%16) = i, so
// the state at any revision r is known exactly: every view must match it.
func TestConcurrentReadersAndWriter(t *testing.T) {
	const (
		writes = 2000
		nkeys  = 16
	)
	s := kv.New()
	expected := func(rev int64) map[string]string {
		m := map[string]string{}
		for i := int64(1); i <= rev; i++ {
			m[fmt.Sprintf("k%02d", i%nkeys)] = strconv.FormatInt(i, 10)
		}
		return m
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := int64(1); i <= writes; i++ {
			txn := command.Put(b(fmt.Sprintf("k%02d", i%nkeys)), b(strconv.FormatInt(i, 10)), false)
			if i%50 == 0 && i < writes { // sometimes a batch of two
				i++
				txn2 := command.Put(b(fmt.Sprintf("k%02d", i%nkeys)), b(strconv.FormatInt(i, 10)), false)
				s.Apply([]*command.Txn{txn, txn2})
				continue
			}
			s.Apply([]*command.Txn{txn})
		}
	}()
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var views []*kv.View
			for {
				select {
				case <-done:
					// Every view is still exactly its revision's state.
					for _, v := range views {
						if err := checkView(v, expected(v.Revision())); err != nil {
							errs <- err
							return
						}
					}
					return
				default:
				}
				v := s.View()
				if err := checkView(v, expected(v.Revision())); err != nil {
					errs <- err
					return
				}
				if len(views) < 50 {
					views = append(views, v)
				}
				rr := s.Range(nil, b("\x00"), 0, false)
				if err := checkKVs(rr.KVs, expected(rr.Revision)); err != nil {
					errs <- fmt.Errorf("store range: %w", err)
					return
				}
				_ = s.Revision()
				_ = s.Len()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.Revision() != writes {
		t.Fatalf("revision %d, want %d", s.Revision(), writes)
	}
}

func checkView(v *kv.View, want map[string]string) error {
	var kvs []command.KeyValue
	v.Ascend(func(kv command.KeyValue) bool { kvs = append(kvs, kv); return true })
	if v.Len() != len(kvs) {
		return fmt.Errorf("view at %d: Len %d but Ascend saw %d", v.Revision(), v.Len(), len(kvs))
	}
	if err := checkKVs(kvs, want); err != nil {
		return fmt.Errorf("view at %d: %w", v.Revision(), err)
	}
	return nil
}

func checkKVs(kvs []command.KeyValue, want map[string]string) error {
	if len(kvs) != len(want) {
		return fmt.Errorf("%d keys, want %d", len(kvs), len(want))
	}
	for i, kv := range kvs {
		if i > 0 && bytes.Compare(kvs[i-1].Key, kv.Key) >= 0 {
			return fmt.Errorf("keys out of order: %q then %q", kvs[i-1].Key, kv.Key)
		}
		if want[string(kv.Key)] != string(kv.Value) {
			return fmt.Errorf("%q = %q, want %q", kv.Key, kv.Value, want[string(kv.Key)])
		}
		if strconv.FormatInt(kv.ModRev, 10) != string(kv.Value) {
			return fmt.Errorf("%q: ModRev %d but value %q", kv.Key, kv.ModRev, kv.Value)
		}
	}
	return nil
}

func TestRestoreFromBuilder(t *testing.T) {
	s := kv.New()
	put(t, s, "stale", "gone after restore")
	v := s.View()

	kvs := []command.KeyValue{
		kvOf("\x00", "zero", 1, 1, 1),
		kvOf("a", "1", 2, 40, 7),
		kvOf("b", "2", 3, 3, 1),
		kvOf("\xff\xff", "ff", 10, 41, 3),
	}
	bld := kv.NewBuilder()
	for _, i := range []int{2, 0, 3, 1} { // any order works
		bld.Add(kvs[i])
	}
	s.Restore(bld, 42)

	if s.Revision() != 42 || s.Len() != len(kvs) {
		t.Fatalf("after restore: revision %d len %d, want 42 %d", s.Revision(), s.Len(), len(kvs))
	}
	all := s.Range(nil, b("\x00"), 0, false)
	if !reflect.DeepEqual(all.KVs, kvs) || all.Revision != 42 {
		t.Fatalf("after restore:\n got %+v\nwant %+v", all, kvs)
	}
	if _, ok := get(t, s, "stale"); ok {
		t.Fatalf("restore kept a key that was not in the snapshot")
	}
	// A view taken before the restore still shows the old state.
	if v.Len() != 1 || v.Revision() != 1 {
		t.Fatalf("old view changed by restore: len %d rev %d", v.Len(), v.Revision())
	}

	// Writing continues from the restored revision and metadata.
	resp, ch := apply(t, s, command.Put(b("a"), b("new"), true))
	if resp.Revision != 43 {
		t.Fatalf("revision after restore+put = %d, want 43", resp.Revision)
	}
	want := kvOf("a", "new", 2, 43, 8)
	if !reflect.DeepEqual(ch.Events[0].KV, want) || !reflect.DeepEqual(resp.Results[0].KVs, []command.KeyValue{kvs[1]}) {
		t.Fatalf("put after restore: event %+v prev %+v, want %+v", ch.Events[0].KV, resp.Results[0].KVs, want)
	}

	// A later Add of the same key replaces it; restoring an empty builder
	// empties the store.
	bld = kv.NewBuilder()
	bld.Add(kvOf("k", "1", 1, 1, 1))
	bld.Add(kvOf("k", "2", 1, 2, 2))
	s.Restore(bld, 2)
	if got, _ := get(t, s, "k"); string(got.Value) != "2" || s.Len() != 1 {
		t.Fatalf("duplicate Add: %+v len %d", got, s.Len())
	}
	s.Restore(kv.NewBuilder(), 0)
	if s.Len() != 0 || s.Revision() != 0 {
		t.Fatalf("empty restore: len %d revision %d", s.Len(), s.Revision())
	}
}

func TestEventsGroupedWithPrevKV(t *testing.T) {
	s := kv.New()
	put(t, s, "p/a", "1")
	put(t, s, "p/b", "1")
	put(t, s, "q", "1")
	_, ch := apply(t, s, &command.Txn{Success: []command.Op{
		{Type: command.OpPut, Key: b("q"), Value: b("2")},
		{Type: command.OpDelete, Key: b("p/"), End: command.PrefixEnd(b("p/"))},
		{Type: command.OpPut, Key: b("r"), Value: b("1")},
	}})
	want := kv.Change{Revision: 4, Events: []kv.Event{
		{Type: kv.EventPut, KV: kvOf("q", "2", 3, 4, 2), PrevKV: ptr(kvOf("q", "1", 3, 3, 1))},
		{Type: kv.EventDelete, KV: command.KeyValue{Key: b("p/a"), ModRev: 4}, PrevKV: ptr(kvOf("p/a", "1", 1, 1, 1))},
		{Type: kv.EventDelete, KV: command.KeyValue{Key: b("p/b"), ModRev: 4}, PrevKV: ptr(kvOf("p/b", "1", 2, 2, 1))},
		{Type: kv.EventPut, KV: kvOf("r", "1", 4, 4, 1)},
	}}
	if !reflect.DeepEqual(ch, want) {
		t.Fatalf("change\n got %+v\nwant %+v", ch, want)
	}
	if kv.EventPut.String() != "PUT" || kv.EventDelete.String() != "DELETE" {
		t.Fatalf("EventType strings: %s %s", kv.EventPut, kv.EventDelete)
	}
}
