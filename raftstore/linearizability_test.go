package raftstore_test

// Linearizability under faults, checked with porcupine.
//
// Each history runs concurrent clients doing Put, linearizable Get,
// CompareAndSwap and Delete on a few keys through random members of a fresh
// in-memory cluster, while a nemesis partitions the network, kills members
// (often the leader) and restarts them from their on-disk logs, and heals.
// Every value written is unique, so a read names the write it saw. The
// history is then checked against a per-key register model that also tracks
// mod revisions, plus two cross-key checks porcupine's per-key partitions
// cannot see: revisions name one write each, and the store revision a client
// observes never goes backwards in real time.
//
// Write outcomes:
//   - success and *CompareFailedError are definite;
//   - a *TimeoutError not marked Indeterminate is the store's promise that
//     the write was not applied: the op is left out of the history, so the
//     model rejects any read of its value;
//   - every other error is indeterminate: the op is kept with a return time
//     at the end of time, and the model accepts it having applied (anywhere
//     after its call) or not.
//
// Reads that fail are dropped. After the faults stop, the cluster is healed
// and every member reads every key: those reads join the history, and they
// must succeed (liveness).
//
// go test runs one fault-free history and 20 faulty ones (-lin.histories=N
// for more). A failure prints the seed; -lin.seed=S replays that scenario
// (same cluster size, clients, keys and fault schedule; the interleaving is
// the scheduler's; -lin.nofaults replays a fault-free one), -lin.duration
// sets the operations' duration. On an illegal history the porcupine
// visualization is written to a temporary directory and its path printed.
// Faulty histories run as parallel subtests (-parallel, GOMAXPROCS by
// default).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/raftstoretest"
)

var (
	linHistories = flag.Int("lin.histories", 20, "faulty histories checked by TestLinearizabilityUnderFaults")
	linSeed      = flag.Int64("lin.seed", 0, "check only the history with this seed (replay a failure)")
	linNoFaults  = flag.Bool("lin.nofaults", false, "with -lin.seed: replay a fault-free history")
	linDuration  = flag.Duration("lin.duration", 0, "client operations per history (0: 1.5s, 1.2s under -race)")
)

const (
	linOpTimeout    = time.Second
	linCheckTimeout = 2 * time.Minute
)

// linScenario is everything a seed decides.
type linScenario struct {
	seed    int64
	faults  bool
	members int
	clients int
	keys    int
	dur     time.Duration
}

func newLinScenario(seed int64, faults bool) linScenario {
	r := rand.New(rand.NewSource(seed))
	sc := linScenario{seed: seed, faults: faults, members: 3 + 2*r.Intn(2), clients: 6 + r.Intn(5), keys: 3 + r.Intn(3)}
	sc.dur = *linDuration
	if sc.dur <= 0 {
		sc.dur = 1500 * time.Millisecond
		if raceEnabled {
			sc.dur = 1200 * time.Millisecond
		}
	}
	return sc
}

func (sc linScenario) name() string {
	if sc.faults {
		return fmt.Sprintf("faults/seed=%d", sc.seed)
	}
	return fmt.Sprintf("nofaults/seed=%d", sc.seed)
}

func (sc linScenario) replay() string {
	extra := ""
	if !sc.faults {
		extra = " -lin.nofaults"
	}
	return fmt.Sprintf("go test -run TestLinearizabilityUnderFaults ./raftstore/ -lin.seed=%d%s", sc.seed, extra)
}

func TestLinearizabilityUnderFaults(t *testing.T) {
	if *linSeed != 0 {
		sc := newLinScenario(*linSeed, !*linNoFaults)
		t.Run(sc.name(), func(t *testing.T) { runLinHistory(t, sc) })
		return
	}
	base := time.Now().UnixNano()%1_000_000_000_000 + 1
	t.Logf("seeds %d..%d", base, base+int64(*linHistories))
	sc := newLinScenario(base, false)
	t.Run(sc.name(), func(t *testing.T) { runLinHistory(t, sc) })
	for i := 1; i <= *linHistories; i++ {
		sc := newLinScenario(base+int64(i), true)
		t.Run(sc.name(), func(t *testing.T) {
			t.Parallel()
			runLinHistory(t, sc)
		})
	}
}

// TestLinearizabilityModelCatchesAnomalies makes sure the model and the
// cross-checks reject what they are meant to, so a passing fault test means
// something.
func TestLinearizabilityModelCatchesAnomalies(t *testing.T) {
	type op struct {
		call, ret int64
		in        linInput
		out       linOutput
	}
	put := func(call, ret int64, key, val string, rev int64) op {
		return op{call, ret, linInput{Kind: linPut, Key: key, Value: val}, linOutput{Rev: rev, StoreRev: rev}}
	}
	get := func(call, ret int64, key, val string, rev, storeRev int64) op {
		return op{call, ret, linInput{Kind: linGet, Key: key}, linOutput{Present: val != "", Value: val, Rev: rev, StoreRev: storeRev}}
	}
	unknownPut := func(call int64, key, val string) op {
		return op{call, math.MaxInt64, linInput{Kind: linPut, Key: key, Value: val}, linOutput{Unknown: true}}
	}
	cas := func(call, ret int64, key, val, expVal string, expRev int64, out linOutput) op {
		return op{call, ret, linInput{Kind: linCAS, Key: key, Value: val, ExpVal: expVal, ExpRev: expRev}, out}
	}
	for _, tc := range []struct {
		name  string
		ops   []op
		model bool // porcupine accepts it
		cross bool // the cross-checks accept it
	}{
		{"sequential", []op{put(1, 2, "a", "v1", 1), get(3, 4, "a", "v1", 1, 1), put(5, 6, "a", "v2", 2), get(7, 8, "a", "v2", 2, 2)}, true, true},
		{"stale read", []op{put(1, 2, "a", "v1", 1), put(3, 4, "a", "v2", 2), get(5, 6, "a", "v1", 1, 2)}, false, true},
		{"read of a value never written", []op{put(1, 2, "a", "v1", 1), get(3, 4, "a", "v9", 2, 2)}, false, true},
		{"indeterminate put seen", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(5, 6, "a", "v2", 2, 2)}, true, true},
		{"indeterminate put not seen", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(5, 6, "a", "v1", 1, 1)}, true, true},
		{"indeterminate put seen, then lost", []op{unknownPut(1, "a", "v2"), get(3, 4, "a", "v2", 1, 1), get(5, 6, "a", "", 0, 1)}, false, true},
		{"write applied twice", []op{put(1, 2, "a", "v1", 1), put(3, 4, "a", "v2", 2), get(5, 6, "a", "v1", 3, 3)}, false, false},
		{"mod revision changed under a value", []op{put(1, 2, "a", "v1", 1), get(3, 4, "a", "v1", 2, 2)}, false, false},
		{"cas on the current revision", []op{put(1, 2, "a", "v1", 1), cas(3, 4, "a", "v2", "v1", 1, linOutput{OK: true, Rev: 2, StoreRev: 2}), get(5, 6, "a", "v2", 2, 2)}, true, true},
		{"cas swapped a stale revision", []op{put(1, 2, "a", "v1", 1), put(3, 4, "a", "v2", 2), cas(5, 6, "a", "v3", "v1", 1, linOutput{OK: true, Rev: 3, StoreRev: 3})}, false, true},
		{"cas failed on the current revision", []op{put(1, 2, "a", "v1", 1), cas(3, 4, "a", "v2", "v1", 1, linOutput{Present: true, Value: "v1", Rev: 1, StoreRev: 1})}, false, true},
		{"two writes at one revision", []op{put(1, 2, "a", "v1", 1), put(3, 4, "b", "w1", 1)}, true, false},
		{"store revision went back", []op{put(1, 2, "a", "v1", 1), put(3, 4, "b", "w1", 2), get(5, 6, "a", "v1", 1, 1)}, true, false},
		{"concurrent reads may differ", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(4, 10, "a", "v2", 2, 2), get(5, 9, "a", "v1", 1, 1)}, true, true},
		{"later read older than an earlier one", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(4, 5, "a", "v2", 2, 2), get(6, 7, "a", "v1", 1, 1)}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ops []porcupine.Operation
			for i, o := range tc.ops {
				ops = append(ops, porcupine.Operation{ClientId: i, Input: o.in, Call: o.call, Output: o.out, Return: o.ret})
			}
			if got := porcupine.CheckOperations(linModel, ops); got != tc.model {
				t.Errorf("porcupine says linearizable=%v, want %v", got, tc.model)
			}
			if errs := linCrossCheck(ops); (len(errs) == 0) != tc.cross {
				t.Errorf("cross-checks: %v, want ok=%v", errs, tc.cross)
			}
		})
	}
}

// The model: one register per key (porcupine partitions by key), whose state
// is the current value and what is known of its mod revision.

type linKind uint8

const (
	linGet linKind = iota
	linPut
	linCAS
	linDelete
)

type linInput struct {
	Kind   linKind
	Key    string
	Value  string // put, cas: the new (unique) value
	ExpRev int64  // cas: the expected mod revision; 0 expects the key absent
	ExpVal string // cas: the value the client saw at ExpRev
}

type linOutput struct {
	Unknown bool   // a write whose outcome is indeterminate
	OK      bool   // cas: swapped; delete: deleted the key
	Present bool   // get, failed cas: the key exists
	Value   string // get, failed cas: its value
	// Rev is the write's revision (put, swapped cas, delete that deleted),
	// or the key's mod revision (get, failed cas, when present).
	Rev int64
	// StoreRev is the store revision the response reported.
	StoreRev int64
}

type linState struct {
	Exists bool
	Value  string
	// Rev is the last write's exact revision when Exact; otherwise a strict
	// lower bound of it (after an indeterminate write).
	Rev   int64
	Exact bool
}

func linStep(st linState, in linInput, out linOutput) (bool, linState) {
	// observe checks a read of the key against the state and learns its
	// exact revision.
	observe := func(present bool, val string, rev int64) (bool, linState) {
		if !present {
			return !st.Exists, st
		}
		if !st.Exists || st.Value != val {
			return false, st
		}
		if (st.Exact && rev != st.Rev) || (!st.Exact && rev <= st.Rev) {
			return false, st
		}
		return true, linState{Exists: true, Value: val, Rev: rev, Exact: true}
	}
	switch in.Kind {
	case linGet:
		return observe(out.Present, out.Value, out.Rev)
	case linPut:
		if out.Unknown {
			return true, linState{Exists: true, Value: in.Value, Rev: st.Rev}
		}
		return out.Rev > st.Rev, linState{Exists: true, Value: in.Value, Rev: out.Rev, Exact: true}
	case linDelete:
		if out.Unknown {
			if !st.Exists {
				return true, st
			}
			return true, linState{Rev: st.Rev}
		}
		if out.OK {
			return st.Exists && out.Rev > st.Rev, linState{Rev: out.Rev, Exact: true}
		}
		return !st.Exists, st
	case linCAS:
		// Values are unique and (checked separately) each revision is one
		// write, so "mod revision == ExpRev" is "value == ExpVal".
		match := !st.Exists
		floor := st.Rev
		if in.ExpRev != 0 {
			match = st.Exists && st.Value == in.ExpVal &&
				((st.Exact && st.Rev == in.ExpRev) || (!st.Exact && in.ExpRev > st.Rev))
			floor = max(floor, in.ExpRev)
		}
		switch {
		case out.Unknown:
			if !match {
				return true, st
			}
			return true, linState{Exists: true, Value: in.Value, Rev: floor}
		case out.OK:
			return match && out.Rev > floor, linState{Exists: true, Value: in.Value, Rev: out.Rev, Exact: true}
		}
		if match {
			return false, st
		}
		return observe(out.Present, out.Value, out.Rev)
	}
	return false, st
}

func describeLinOp(in linInput, out linOutput) string {
	res := "?"
	switch in.Kind {
	case linGet:
		res = "absent"
		if out.Present {
			res = fmt.Sprintf("%s@%d", out.Value, out.Rev)
		}
		return fmt.Sprintf("get(%s) -> %s", in.Key, res)
	case linPut:
		if !out.Unknown {
			res = fmt.Sprintf("@%d", out.Rev)
		}
		return fmt.Sprintf("put(%s, %s) -> %s", in.Key, in.Value, res)
	case linCAS:
		exp := "absent"
		if in.ExpRev != 0 {
			exp = fmt.Sprintf("%s@%d", in.ExpVal, in.ExpRev)
		}
		switch {
		case out.Unknown:
		case out.OK:
			res = fmt.Sprintf("ok@%d", out.Rev)
		case out.Present:
			res = fmt.Sprintf("failed, is %s@%d", out.Value, out.Rev)
		default:
			res = "failed, is absent"
		}
		return fmt.Sprintf("cas(%s, %s, expect %s) -> %s", in.Key, in.Value, exp, res)
	case linDelete:
		switch {
		case out.Unknown:
		case out.OK:
			res = fmt.Sprintf("deleted@%d", out.Rev)
		default:
			res = "nothing to delete"
		}
		return fmt.Sprintf("delete(%s) -> %s", in.Key, res)
	}
	return "?"
}

var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return linState{Exact: true} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		return linStep(state.(linState), input.(linInput), output.(linOutput))
	},
	Equal: func(a, b interface{}) bool { return a.(linState) == b.(linState) },
	DescribeOperation: func(input, output interface{}) string {
		return describeLinOp(input.(linInput), output.(linOutput))
	},
	DescribeOperationMetadata: func(m interface{}) string {
		if s, ok := m.(string); ok {
			return s
		}
		return ""
	},
	DescribeState: func(state interface{}) string {
		st := state.(linState)
		rev := fmt.Sprintf("@%d", st.Rev)
		if !st.Exact {
			rev = fmt.Sprintf("@>%d", st.Rev)
		}
		if !st.Exists {
			return "absent" + rev
		}
		return st.Value + rev
	},
}

// linHistory collects one history.
type linHistory struct {
	sc     linScenario
	start  time.Time
	keys   []string
	values atomic.Int64
	ids    atomic.Int64 // porcupine client ids; a client takes a new one after an indeterminate op

	mu     sync.Mutex
	ops    []porcupine.Operation
	failed []string // values of writes the store said were not applied
	stats  map[string]int
}

func (h *linHistory) now() int64 { return int64(time.Since(h.start)) + 1 }

func (h *linHistory) newValue() string { return fmt.Sprintf("v%d", h.values.Add(1)) }

// pickStore returns a random running member, or nil when none runs.
func pickStore(c *raftstoretest.Cluster, n int, rng *rand.Rand) (*raftstore.Store, int) {
	i := rng.Intn(n)
	for k := 0; k < n; k++ {
		j := (i + k) % n
		if s := c.Store(j); s != nil {
			return s, j
		}
	}
	return nil, -1
}

// waitOrStop waits d; false if stop closed first.
func waitOrStop(d time.Duration, stop <-chan struct{}) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
		return false
	}
}

// notApplied reports whether the store promises a failed write was not
// applied: a timeout it does not mark indeterminate.
func notApplied(err error) bool {
	var te *raftstore.TimeoutError
	return errors.As(err, &te) && !te.Indeterminate
}

type linKnown struct {
	present bool
	val     string
	rev     int64
}

func (h *linHistory) client(c *raftstoretest.Cluster, id int, stop <-chan struct{}, rng *rand.Rand) {
	var ops []porcupine.Operation
	var failed []string
	stats := map[string]int{}
	defer func() {
		h.mu.Lock()
		h.ops = append(h.ops, ops...)
		h.failed = append(h.failed, failed...)
		for k, v := range stats {
			h.stats[k] += v
		}
		h.mu.Unlock()
	}()
	known := map[string]linKnown{}
	for {
		select {
		case <-stop:
			return
		default:
		}
		s, m := pickStore(c, h.sc.members, rng)
		if s == nil {
			if !waitOrStop(5*time.Millisecond, stop) {
				return
			}
			continue
		}
		key := h.keys[rng.Intn(len(h.keys))]
		in := linInput{Key: key}
		var out linOutput
		var err error
		ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
		call := h.now()
		switch p := rng.Intn(100); {
		case p < 35:
			in.Kind = linGet
			var kv raftstore.KeyValue
			kv, out.StoreRev, err = s.Get(ctx, []byte(key), raftstore.Linearizable)
			if err == nil {
				out.Present, out.Value, out.Rev = true, string(kv.Value), kv.ModRev
			} else if errors.Is(err, raftstore.ErrNotFound) {
				err = nil
			}
		case p < 65:
			in.Kind, in.Value = linPut, h.newValue()
			out.Rev, _, err = s.Put(ctx, []byte(key), []byte(in.Value), false)
			out.StoreRev = out.Rev
		case p < 90:
			in.Kind, in.Value = linCAS, h.newValue()
			if k := known[key]; k.present {
				in.ExpRev, in.ExpVal = k.rev, k.val
			}
			out.Rev, err = s.CompareAndSwap(ctx, []byte(key), []byte(in.Value), in.ExpRev)
			out.StoreRev = out.Rev
			var cf *raftstore.CompareFailedError
			if err == nil {
				out.OK = true
			} else if errors.As(err, &cf) {
				err = nil
				out.Rev, out.StoreRev = 0, cf.Revision
				if cf.Current != nil {
					out.Present, out.Value, out.Rev = true, string(cf.Current.Value), cf.Current.ModRev
				}
			}
		default:
			in.Kind = linDelete
			var deleted int64
			deleted, out.Rev, err = s.Delete(ctx, []byte(key))
			out.OK, out.StoreRev = deleted == 1, out.Rev
		}
		ret := h.now()
		cancel()
		kind := [...]string{"get", "put", "cas", "delete"}[in.Kind]
		switch {
		case err != nil && in.Kind == linGet:
			stats["get failed"]++
			continue
		case err != nil && notApplied(err):
			stats[kind+" not applied"]++
			failed = append(failed, in.Value)
			continue
		case err != nil:
			stats[kind+" indeterminate"]++
			out = linOutput{Unknown: true}
			ops = append(ops, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: math.MaxInt64, Metadata: fmt.Sprintf("via %s, returned at %v: %v", c.Members[m].ID, time.Duration(ret), err)})
			id = int(h.ids.Add(1))
			continue
		}
		stats[kind+" ok"]++
		ops = append(ops, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret, Metadata: "via " + c.Members[m].ID})
		switch {
		case in.Kind == linGet || (in.Kind == linCAS && !out.OK):
			known[key] = linKnown{present: out.Present, val: out.Value, rev: out.Rev}
		case in.Kind == linDelete:
			known[key] = linKnown{}
		default:
			known[key] = linKnown{present: true, val: in.Value, rev: out.Rev}
		}
	}
}

// finalReads reads every key through every member once the faults are over.
// They must all succeed, and they join the history.
func (h *linHistory) finalReads(t *testing.T, c *raftstoretest.Cluster) {
	deadline := time.Now().Add(15 * time.Second)
	for i := range c.Members {
		for _, key := range h.keys {
			id := int(h.ids.Add(1))
			for {
				s := c.Store(i)
				if s == nil {
					t.Fatalf("member %s is down after the faults ended", c.Members[i].ID)
				}
				ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
				call := h.now()
				kv, rev, err := s.Get(ctx, []byte(key), raftstore.Linearizable)
				ret := h.now()
				cancel()
				if err == nil || errors.Is(err, raftstore.ErrNotFound) {
					out := linOutput{StoreRev: rev}
					if err == nil {
						out.Present, out.Value, out.Rev = true, string(kv.Value), kv.ModRev
					}
					h.ops = append(h.ops, porcupine.Operation{ClientId: id, Input: linInput{Kind: linGet, Key: key}, Call: call, Output: out, Return: ret, Metadata: "via " + c.Members[i].ID + " (final read)"})
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after healing, member %s cannot read %q: %v", c.Members[i].ID, key, err)
				}
				<-time.After(10 * time.Millisecond)
			}
		}
	}
}

func runLinHistory(t *testing.T, sc linScenario) {
	t.Logf("%d members, %d clients, %d keys, %s of operations; replay: %s", sc.members, sc.clients, sc.keys, sc.dur, sc.replay())
	c := raftstoretest.New(t, sc.members, raftstoretest.Options{})
	c.Leader(10 * time.Second)

	h := &linHistory{sc: sc, start: time.Now(), stats: map[string]int{}}
	for i := 0; i < sc.keys; i++ {
		h.keys = append(h.keys, fmt.Sprintf("/lin/k%d", i))
	}
	h.ids.Store(int64(sc.clients - 1))

	stop := make(chan struct{})
	var nem *nemesis
	nemDone := make(chan struct{})
	if sc.faults {
		nem = newNemesis(c, sc.members, sc.seed, h.start)
		go func() {
			defer close(nemDone)
			nem.run(stop)
		}()
	} else {
		close(nemDone)
	}
	var wg sync.WaitGroup
	for i := 0; i < sc.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.client(c, i, stop, rand.New(rand.NewSource(sc.seed*100+int64(i)+1)))
		}()
	}
	<-time.After(sc.dur)
	close(stop)
	<-nemDone
	if nem != nil {
		nem.finish()
	}
	wg.Wait()
	h.finalReads(t, c)
	c.WaitConverged(15 * time.Second)

	var stats []string
	for k, v := range h.stats {
		stats = append(stats, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(stats)
	t.Logf("%d ops in the history: %s", len(h.ops), strings.Join(stats, " "))
	if nem != nil {
		t.Logf("nemesis: %s", nem.summary())
	}
	if !sc.faults {
		// Without faults everything should go through (a generous bound,
		// for slow machines and the race detector).
		if bad := h.stats["get failed"] + h.stats["put indeterminate"] + h.stats["cas indeterminate"] + h.stats["delete indeterminate"]; bad*20 > len(h.ops) {
			t.Errorf("fault-free history: %d of %d operations failed", bad, len(h.ops))
		}
	}
	for _, kind := range []string{"get", "put", "cas"} {
		if h.stats[kind+" ok"] == 0 {
			t.Errorf("no %s succeeded: the history checks nothing", kind)
		}
	}

	where := fmt.Sprintf("seed %d; replay: %s", sc.seed, sc.replay())
	notApplied := map[string]bool{}
	for _, v := range h.failed {
		notApplied[v] = true
	}
	for _, op := range h.ops {
		if out := op.Output.(linOutput); out.Present && notApplied[out.Value] {
			t.Errorf("a write of %s failed with an error saying it was not applied, but it was read: %s (%s)", out.Value, describeOp(op), where)
		}
	}
	for _, msg := range linCrossCheck(h.ops) {
		t.Errorf("%s (%s)", msg, where)
	}
	checkStart := time.Now()
	res := porcupine.CheckOperationsTimeout(linModel, h.ops, linCheckTimeout)
	t.Logf("porcupine: %s in %s", res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Unknown:
		t.Errorf("porcupine could not decide within %s (%s)", linCheckTimeout, where)
	case porcupine.Illegal:
		t.Errorf("history is not linearizable (%s)", where)
	}
	if !t.Failed() {
		return
	}
	_, info := porcupine.CheckOperationsVerbose(linModel, h.ops, linCheckTimeout)
	if nem != nil {
		info.AddAnnotations(nem.annotations())
	}
	dir, err := os.MkdirTemp("", "raftstore-lin-")
	if err == nil {
		path := filepath.Join(dir, fmt.Sprintf("seed-%d.html", sc.seed))
		if err = porcupine.VisualizePath(linModel, info, path); err == nil {
			t.Logf("porcupine visualization (nemesis steps annotated): %s", path)
			return
		}
	}
	t.Logf("cannot write the porcupine visualization: %v", err)
}

// describeOp names an operation in failure messages.
func describeOp(op porcupine.Operation) string {
	d := describeLinOp(op.Input.(linInput), op.Output.(linOutput))
	if m, ok := op.Metadata.(string); ok && m != "" {
		d += " [" + m + "]"
	}
	return d
}

// linCrossCheck checks what the per-key model cannot: each revision is one
// write (no write applied twice, no two writes at one revision), and the
// store revision clients observe never goes back in real time (a read that
// starts after an operation returned sees at least its revision; a write
// that starts after it gets a later one).
func linCrossCheck(ops []porcupine.Operation) []string {
	var errs []string
	revOf := map[string]int64{}   // key=value -> revision
	writeAt := map[int64]string{} // revision -> key=value or key deleted
	note := func(rev int64, what string, value string, op porcupine.Operation) {
		if value != "" {
			if r, ok := revOf[value]; ok && r != rev {
				errs = append(errs, fmt.Sprintf("%s is seen at revisions %d and %d (%s)", value, r, rev, describeOp(op)))
			}
			revOf[value] = rev
		}
		if w, ok := writeAt[rev]; ok && w != what {
			errs = append(errs, fmt.Sprintf("revision %d is both %s and %s", rev, w, what))
		}
		writeAt[rev] = what
	}
	type timed struct {
		call, ret, rev int64
		write          bool
		op             porcupine.Operation
	}
	var rt []timed
	for _, op := range ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		if out.Unknown {
			continue
		}
		wrote := (in.Kind == linPut) || (in.Kind == linCAS && out.OK) || (in.Kind == linDelete && out.OK)
		switch {
		case in.Kind == linDelete && out.OK:
			note(out.Rev, in.Key+" deleted", "", op)
		case wrote:
			note(out.Rev, in.Key+"="+in.Value, in.Key+"="+in.Value, op)
		case out.Present:
			note(out.Rev, in.Key+"="+out.Value, in.Key+"="+out.Value, op)
		}
		if out.Present && out.StoreRev < out.Rev {
			errs = append(errs, fmt.Sprintf("store revision %d is older than the key's mod revision: %s", out.StoreRev, describeOp(op)))
		}
		rt = append(rt, timed{call: op.Call, ret: op.Return, rev: out.StoreRev, write: wrote, op: op})
	}
	byRet := append([]timed(nil), rt...)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].ret < byRet[j].ret })
	sort.Slice(rt, func(i, j int) bool { return rt[i].call < rt[j].call })
	j := 0
	var best timed
	for _, b := range rt {
		for j < len(byRet) && byRet[j].ret < b.call {
			if byRet[j].rev > best.rev {
				best = byRet[j]
			}
			j++
		}
		if b.rev < best.rev || (b.write && b.rev == best.rev) {
			errs = append(errs, fmt.Sprintf("revision went back in real time: %q (returned at %v) shows store revision %d, but %q (called at %v, later) shows %d",
				describeOp(best.op), time.Duration(best.ret), best.rev, describeOp(b.op), time.Duration(b.call), b.rev))
		}
	}
	if len(errs) > 20 {
		errs = append(errs[:20], fmt.Sprintf("... and %d more", len(errs)-20))
	}
	return errs
}

// nemesis injects faults from a seeded source: partitions (isolating the
// leader, minority/majority splits, splits with no majority), kills of the
// leader or another member followed by a restart from its data directory,
// and heals. At most one member is down at a time.
type nemesis struct {
	c     *raftstoretest.Cluster
	n     int
	rng   *rand.Rand
	start time.Time

	mu     sync.Mutex
	events []nemesisEvent
	open   int // index of the partition in force, -1 when none
}

type nemesisEvent struct {
	start, end time.Duration // end 0: lasted to the end
	what       string
}

func newNemesis(c *raftstoretest.Cluster, n int, seed int64, start time.Time) *nemesis {
	return &nemesis{c: c, n: n, rng: rand.New(rand.NewSource(seed ^ 0x5eed)), start: start, open: -1}
}

func (nm *nemesis) begin(what string) int {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.events = append(nm.events, nemesisEvent{start: time.Since(nm.start), what: what})
	return len(nm.events) - 1
}

func (nm *nemesis) end(i int) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.events[i].end = time.Since(nm.start)
}

// leader returns a member that believes it leads (there may briefly be
// two; the first in perm order), or perm[0] when none does. It draws nothing
// from the random source, so a seed's schedule of faults does not depend on
// timing.
func (nm *nemesis) leader(perm []int) int {
	for _, i := range perm {
		if s := nm.c.Store(i); s != nil && s.IsLeader() {
			return i
		}
	}
	return perm[0]
}

func (nm *nemesis) ids(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, nm.c.Members[i].ID)
	}
	return strings.Join(s, ",")
}

func (nm *nemesis) partition(groups ...[]int) {
	var desc []string
	for _, g := range groups {
		desc = append(desc, "{"+nm.ids(g)+"}")
	}
	nm.closePartition()
	nm.c.Partition(groups...)
	i := nm.begin("partition " + strings.Join(desc, " "))
	nm.mu.Lock()
	nm.open = i
	nm.mu.Unlock()
}

func (nm *nemesis) closePartition() {
	nm.mu.Lock()
	i := nm.open
	nm.open = -1
	nm.mu.Unlock()
	if i >= 0 {
		nm.end(i)
	}
}

func (nm *nemesis) heal() {
	nm.closePartition()
	nm.c.Heal()
	nm.end(nm.begin("heal"))
}

// run injects faults until stop is closed. Every step draws the same
// numbers from the source whatever happens, so a seed replays the same
// schedule (the leader it picks depends on the run).
func (nm *nemesis) run(stop <-chan struct{}) {
	for {
		pause := time.Duration(50+nm.rng.Intn(200)) * time.Millisecond
		step := nm.rng.Intn(10)
		perm := nm.rng.Perm(nm.n)
		minority := 1 + nm.rng.Intn((nm.n-1)/2)
		hold := time.Duration(100+nm.rng.Intn(400)) * time.Millisecond
		if !waitOrStop(pause, stop) {
			return
		}
		switch {
		case step < 2: // isolate the leader from everyone
			l := nm.leader(perm)
			var rest []int
			for _, i := range perm {
				if i != l {
					rest = append(rest, i)
				}
			}
			nm.partition([]int{l}, rest)
		case step < 4: // a minority and a majority
			nm.partition(perm[:minority], perm[minority:])
		case step < 5: // no side has a majority
			if nm.n == 3 {
				nm.partition(perm[:1], perm[1:2], perm[2:])
			} else {
				nm.partition(perm[:2], perm[2:4], perm[4:])
			}
		case step < 8: // kill a member, mostly the leader; restart it later
			victim := perm[0]
			what := "kill " + nm.c.Members[victim].ID
			if step < 7 {
				victim = nm.leader(perm)
				what = "kill leader " + nm.c.Members[victim].ID
			}
			i := nm.begin(what)
			nm.c.Kill(victim)
			waitOrStop(hold, stop)
			nm.c.Restart(victim)
			nm.end(i)
		default:
			nm.heal()
		}
	}
}

// finish restarts whatever is down and heals the network.
func (nm *nemesis) finish() {
	for i := 0; i < nm.n; i++ {
		if nm.c.Store(i) == nil {
			nm.c.Restart(i)
		}
	}
	nm.heal()
}

func (nm *nemesis) summary() string {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	var s []string
	for _, e := range nm.events {
		end := "end"
		if e.end != 0 {
			end = e.end.Round(time.Millisecond).String()
		}
		s = append(s, fmt.Sprintf("[%s-%s %s]", e.start.Round(time.Millisecond), end, e.what))
	}
	return strings.Join(s, " ")
}

func (nm *nemesis) annotations() []porcupine.Annotation {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	var out []porcupine.Annotation
	for _, e := range nm.events {
		a := porcupine.Annotation{Tag: "nemesis", Start: int64(e.start) + 1, End: int64(e.end) + 1, Description: e.what}
		if e.end == 0 {
			a.End = a.Start
		}
		out = append(out, a)
	}
	return out
}
