package raftstore_test

// Watch under faults: writers change keys under one prefix through random
// members while the nemesis of the linearizability test partitions, kills
// and restarts members and heals; several watchers watch the prefix from
// revision 1. A watcher whose watch ends (its member was killed, an error)
// or that decides to move, re-attaches to another running member from the
// revision after the last one it saw. At the end every watcher must hold
// exactly the committed history: one response per revision 1..final, all
// watchers identical, each event consistent with the one before it on its
// key, the replayed history equal to every member's final state, and every
// acknowledged write at the revision it returned.
//
// Members never snapshot (SnapshotThreshold is huge), so a restarted member
// replays its whole log and its watch history covers every revision again;
// the watch history is large enough to hold the whole test. Small watcher
// buffers and readers that sometimes dawdle push watchers through the hub's
// unsynced (replay) path.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/kv"
	"github.com/droverhq/drover/raftstore/raftstoretest"
)

var (
	watchFaultRuns     = flag.Int("watchfaults.runs", 5, "seeds run by TestWatchUnderFaults")
	watchFaultSeed     = flag.Int64("watchfaults.seed", 0, "run TestWatchUnderFaults with only this seed (replay a failure)")
	watchFaultDuration = flag.Duration("watchfaults.duration", 0, "writes per run (0: 2s, 1.2s under -race)")
)

const wfPrefix = "/wf/"

type wfScenario struct {
	seed     int64
	members  int
	writers  int
	watchers int
	keys     int
	dur      time.Duration
}

func newWFScenario(seed int64) wfScenario {
	r := rand.New(rand.NewSource(seed))
	sc := wfScenario{seed: seed, members: 3 + 2*r.Intn(2), writers: 3 + r.Intn(3), keys: 4 + r.Intn(5)}
	sc.watchers = sc.members + 1 + r.Intn(2)
	sc.dur = *watchFaultDuration
	if sc.dur <= 0 {
		sc.dur = 2 * time.Second
		if raceEnabled {
			sc.dur = 1200 * time.Millisecond
		}
	}
	return sc
}

func TestWatchUnderFaults(t *testing.T) {
	if *watchFaultSeed != 0 {
		sc := newWFScenario(*watchFaultSeed)
		t.Run(fmt.Sprintf("seed=%d", sc.seed), func(t *testing.T) { runWatchFaults(t, sc) })
		return
	}
	base := time.Now().UnixNano()%1_000_000_000_000 + 1
	for i := 0; i < *watchFaultRuns; i++ {
		sc := newWFScenario(base + int64(i))
		t.Run(fmt.Sprintf("seed=%d", sc.seed), func(t *testing.T) {
			t.Parallel()
			runWatchFaults(t, sc)
		})
	}
}

// wfWrite is one write attempt.
type wfWrite struct {
	desc    string
	puts    map[string]string // key -> value it puts
	deletes []string          // keys it deletes
	outcome wfOutcome
	rev     int64
	deleted int64 // single delete: keys deleted
	casFail bool  // a CompareAndSwap that did not swap
}

type wfOutcome uint8

const (
	wfAcked wfOutcome = iota
	wfNotApplied
	wfIndeterminate
)

type wfRun struct {
	sc     wfScenario
	c      *raftstoretest.Cluster
	keys   []string
	values atomic.Int64

	mu     sync.Mutex
	writes []*wfWrite
	stats  map[string]int
}

func (r *wfRun) count(what string) {
	r.mu.Lock()
	r.stats[what]++
	r.mu.Unlock()
}

func (r *wfRun) writer(stop <-chan struct{}, rng *rand.Rand) {
	var mine []*wfWrite
	defer func() {
		r.mu.Lock()
		r.writes = append(r.writes, mine...)
		r.mu.Unlock()
	}()
	lastRev := map[string]int64{}
	for {
		select {
		case <-stop:
			return
		default:
		}
		s, _ := pickStore(r.c, r.sc.members, rng)
		if s == nil {
			if !waitOrStop(5*time.Millisecond, stop) {
				return
			}
			continue
		}
		perm := rng.Perm(len(r.keys))
		key := r.keys[perm[0]]
		w := &wfWrite{puts: map[string]string{}}
		val := func() string { return fmt.Sprintf("w%d", r.values.Add(1)) }
		ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
		var err error
		switch p := rng.Intn(100); {
		case p < 50:
			v := val()
			w.desc, w.puts[key] = fmt.Sprintf("put %s=%s", key, v), v
			w.rev, _, err = s.Put(ctx, []byte(key), []byte(v), rng.Intn(2) == 0)
		case p < 60:
			w.desc, w.deletes = "delete "+key, []string{key}
			w.deleted, w.rev, err = s.Delete(ctx, []byte(key))
		case p < 80:
			// Several puts and a delete at one revision.
			txn := &raftstore.Txn{}
			var desc []string
			for _, i := range perm[:2] {
				v := val()
				w.puts[r.keys[i]] = v
				txn.Success = append(txn.Success, raftstore.Op{Type: command.OpPut, Key: []byte(r.keys[i]), Value: []byte(v)})
				desc = append(desc, r.keys[i]+"="+v)
			}
			dk := r.keys[perm[2]]
			w.deletes = []string{dk}
			txn.Success = append(txn.Success, raftstore.Op{Type: command.OpDelete, Key: []byte(dk)})
			w.desc = "txn put " + strings.Join(desc, ",") + " delete " + dk
			var resp *raftstore.Response
			if resp, err = s.Txn(ctx, txn); err == nil {
				w.rev = resp.Revision
			}
		default:
			v := val()
			w.desc, w.puts[key] = fmt.Sprintf("cas %s=%s if mod revision %d", key, v, lastRev[key]), v
			w.rev, err = s.CompareAndSwap(ctx, []byte(key), []byte(v), lastRev[key])
			var cf *raftstore.CompareFailedError
			if errors.As(err, &cf) {
				err, w.casFail = nil, true
				if cf.Current != nil {
					lastRev[key] = cf.Current.ModRev
				}
			}
		}
		cancel()
		switch {
		case err == nil:
			w.outcome = wfAcked
			for k := range w.puts {
				if !w.casFail {
					lastRev[k] = w.rev
				}
			}
			r.count("acked")
		case notApplied(err):
			w.outcome = wfNotApplied
			r.count("not applied")
		default:
			w.outcome = wfIndeterminate
			r.count("indeterminate")
		}
		mine = append(mine, w)
	}
}

// wfWatcher follows the prefix from revision 1 across members.
type wfWatcher struct {
	id     int
	run    *wfRun
	rng    *rand.Rand
	member atomic.Int32
	last   atomic.Int64 // last revision received

	mu       sync.Mutex
	problems []string

	// Owned by the watcher's goroutine until it ends.
	log      []raftstore.WatchResponse
	reasons  map[string]int // why it re-attached
	progress int
}

func (w *wfWatcher) problem(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) < 10 {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

func (w *wfWatcher) problemList() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.problems...)
}

// next picks a running member other than cur, if there is one.
func (w *wfWatcher) next(cur int) int {
	n := w.run.sc.members
	start := w.rng.Intn(n)
	for k := 0; k < n; k++ {
		if i := (start + k) % n; i != cur && w.run.c.Store(i) != nil {
			return i
		}
	}
	return cur
}

func (w *wfWatcher) watch(stop <-chan struct{}) {
	n := w.run.sc.members
	cur := w.id % n
	compacted := map[int]bool{} // members that cannot serve last+1
	for {
		w.member.Store(int32(cur))
		select {
		case <-stop:
			return
		default:
		}
		s := w.run.c.Store(cur)
		if s == nil {
			w.reasons["member down"]++
			cur = w.next(cur)
			if !waitOrStop(5*time.Millisecond, stop) {
				return
			}
			continue
		}
		from := w.last.Load() + 1
		ctx, cancel := context.WithCancel(context.Background())
		wt, err := s.WatchPrefix(ctx, []byte(wfPrefix), from)
		if err != nil {
			cancel()
			var ce *raftstore.CompactedError
			if errors.As(err, &ce) {
				w.reasons["compacted"]++
				compacted[cur] = true
				if len(compacted) == n {
					w.problem("no member can serve revision %d: %v", from, err)
					return
				}
			} else {
				w.reasons["watch: "+err.Error()]++
			}
			cur = w.next(cur)
			if !waitOrStop(5*time.Millisecond, stop) {
				return
			}
			continue
		}
		clear(compacted)
		move := time.NewTimer(time.Duration(200+w.rng.Intn(800)) * time.Millisecond)
		reason := ""
	recv:
		for {
			select {
			case resp, ok := <-wt.C():
				if !ok {
					reason = fmt.Sprint("watch ended: ", wt.Err())
					break recv
				}
				w.receive(resp)
				if w.rng.Intn(40) == 0 {
					// A slow reader: its buffer fills and the hub must
					// replay to it from history.
					if !waitOrStop(time.Duration(5+w.rng.Intn(30))*time.Millisecond, stop) {
						cancel()
						move.Stop()
						return
					}
				}
			case <-move.C:
				reason = "moved on purpose"
				break recv
			case <-stop:
				cancel()
				move.Stop()
				return
			}
		}
		cancel()
		move.Stop()
		w.reasons[reason]++
		cur = w.next(cur)
	}
}

func (w *wfWatcher) receive(resp raftstore.WatchResponse) {
	last := w.last.Load()
	if resp.Progress {
		w.progress++
		// Every revision touches the prefix, so "everything up to P was
		// delivered" means P is the last revision received.
		if resp.Revision != last {
			w.problem("progress notification at revision %d on %s, but the last revision received is %d",
				resp.Revision, w.run.c.Members[w.member.Load()].ID, last)
		}
		return
	}
	if resp.Revision != last+1 {
		w.problem("received revision %d after %d on %s (gap or duplicate)", resp.Revision, last, w.run.c.Members[w.member.Load()].ID)
	}
	if len(resp.Events) == 0 {
		w.problem("revision %d came with no events", resp.Revision)
	}
	for _, ev := range resp.Events {
		if ev.KV.ModRev != resp.Revision {
			w.problem("event on %q at revision %d has mod revision %d", ev.KV.Key, resp.Revision, ev.KV.ModRev)
		}
	}
	w.log = append(w.log, resp)
	if resp.Revision > last {
		w.last.Store(resp.Revision)
	}
}

func runWatchFaults(t *testing.T, sc wfScenario) {
	t.Logf("%d members, %d writers, %d watchers, %d keys, %s of writes; replay: go test -run TestWatchUnderFaults ./raftstore/ -watchfaults.seed=%d",
		sc.members, sc.writers, sc.watchers, sc.keys, sc.dur, sc.seed)
	c := raftstoretest.New(t, sc.members, raftstoretest.Options{Configure: func(cfg *raftstore.Config) {
		// No snapshots: a restarted member replays its whole log, so its
		// watch history covers every revision again.
		cfg.SnapshotThreshold = 1 << 40
		cfg.SnapshotInterval = 24 * time.Hour
		cfg.Watch.HistorySize = 1 << 16
		cfg.Watch.BufferSize = 4
		cfg.Watch.ProgressInterval = 20 * time.Millisecond
	}})
	c.Leader(10 * time.Second)
	r := &wfRun{sc: sc, c: c, stats: map[string]int{}}
	for i := 0; i < sc.keys; i++ {
		r.keys = append(r.keys, fmt.Sprintf("%sk%d", wfPrefix, i))
	}

	stopWatch := make(chan struct{})
	var watchWG sync.WaitGroup
	watchers := make([]*wfWatcher, sc.watchers)
	for i := range watchers {
		w := &wfWatcher{id: i, run: r, rng: rand.New(rand.NewSource(sc.seed*100 + 50 + int64(i))), reasons: map[string]int{}}
		watchers[i] = w
		watchWG.Add(1)
		go func() {
			defer watchWG.Done()
			w.watch(stopWatch)
		}()
	}
	defer func() {
		select {
		case <-stopWatch:
		default:
			close(stopWatch)
		}
		watchWG.Wait()
	}()

	start := time.Now()
	stop := make(chan struct{})
	nem := newNemesis(c, sc.members, sc.seed, start)
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		nem.run(stop)
	}()
	var wg sync.WaitGroup
	for i := 0; i < sc.writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.writer(stop, rand.New(rand.NewSource(sc.seed*100+int64(i)+1)))
		}()
	}
	<-time.After(sc.dur)
	close(stop)
	<-nemDone
	nem.finish()
	wg.Wait()
	t.Logf("nemesis: %s", nem.summary())
	t.Logf("writes: %v", r.stats)
	c.WaitConverged(20 * time.Second)
	final := c.Store(0).Revision()
	// A write whose writer gave up (indeterminate) may still sit in a
	// leader's log and commit after the members looked converged: the
	// final revision is the one that stays put for two election timeouts.
	for stableSince := time.Now(); time.Since(stableSince) < 2*raftstoretest.FastConfig().ElectionTimeout; {
		<-time.After(50 * time.Millisecond)
		c.WaitConverged(20 * time.Second)
		if r := c.Store(0).Revision(); r != final {
			final, stableSince = r, time.Now()
		}
	}

	// Every watcher must reach the final revision.
	deadline := time.Now().Add(20 * time.Second)
	for {
		behind := ""
		for _, w := range watchers {
			if l := w.last.Load(); l < final {
				behind += fmt.Sprintf(" watcher %d at %d on %s %v;", w.id, l, c.Members[w.member.Load()].ID, w.problemList())
			}
		}
		if behind == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watchers did not reach the final revision %d:%s", final, behind)
		}
		<-time.After(10 * time.Millisecond)
	}
	close(stopWatch)
	watchWG.Wait()
	for _, w := range watchers {
		t.Logf("watcher %d: %d revisions, %d progress notifications, re-attached: %v", w.id, len(w.log), w.progress, w.reasons)
		for _, p := range w.problemList() {
			t.Errorf("watcher %d: %s (seed %d)", w.id, p, sc.seed)
		}
	}
	if final < 10 || r.stats["acked"] == 0 {
		t.Errorf("only %d revisions and %d acknowledged writes: the run checks little", final, r.stats["acked"])
	}
	// Every member, restarted ones included, replays the whole history to a
	// new watcher.
	for i := range c.Members {
		w := &wfWatcher{id: len(watchers), run: r, rng: rand.New(rand.NewSource(sc.seed)), reasons: map[string]int{}}
		w.member.Store(int32(i))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		wt, err := c.Store(i).WatchPrefix(ctx, []byte(wfPrefix), 1)
		if err != nil {
			cancel()
			t.Errorf("watch from revision 1 on %s after the run: %v", c.Members[i].ID, err)
			continue
		}
		for w.last.Load() < final {
			resp, ok := <-wt.C()
			if !ok {
				t.Errorf("watch from revision 1 on %s after the run ended at revision %d of %d: %v", c.Members[i].ID, w.last.Load(), final, wt.Err())
				break
			}
			w.receive(resp)
		}
		cancel()
		for _, p := range w.problemList() {
			t.Errorf("replay on %s: %s (seed %d)", c.Members[i].ID, p, sc.seed)
		}
		watchers = append(watchers, w)
	}
	for _, msg := range wfCheck(c, r, watchers, final) {
		t.Errorf("%s (seed %d)", msg, sc.seed)
	}
}

func sameKV(a, b *raftstore.KeyValue) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.CreateRev == b.CreateRev && a.ModRev == b.ModRev && a.Version == b.Version
}

func fmtKV(kv *raftstore.KeyValue) string {
	if kv == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s=%s (create %d, mod %d, version %d)", kv.Key, kv.Value, kv.CreateRev, kv.ModRev, kv.Version)
}

func fmtEvents(evs []raftstore.Event) string {
	var s []string
	for _, ev := range evs {
		if ev.Type == kv.EventDelete {
			s = append(s, fmt.Sprintf("DELETE %s (was %s)", ev.KV.Key, fmtKV(ev.PrevKV)))
		} else {
			s = append(s, fmt.Sprintf("PUT %s (was %s)", fmtKV(&ev.KV), fmtKV(ev.PrevKV)))
		}
	}
	return strings.Join(s, "; ")
}

// wfCheck compares the watchers' logs with each other, with themselves
// (each event follows from the previous one on its key), with the members'
// final state and with the writes.
func wfCheck(c *raftstoretest.Cluster, r *wfRun, watchers []*wfWatcher, final int64) []string {
	var errs []string
	fail := func(format string, args ...any) bool {
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		return false
	}
	ref := watchers[0].log
	if int64(len(ref)) != final {
		fail("watcher 0 holds %d revisions, want %d", len(ref), final)
	}
	for i, resp := range ref {
		if resp.Revision != int64(i+1) {
			fail("watcher 0: position %d holds revision %d", i, resp.Revision)
			break
		}
	}
	for _, w := range watchers[1:] {
		if len(w.log) != len(ref) {
			fail("watcher %d holds %d revisions, watcher 0 holds %d", w.id, len(w.log), len(ref))
		}
		for i := 0; i < len(w.log) && i < len(ref); i++ {
			a, b := ref[i], w.log[i]
			same := a.Revision == b.Revision && len(a.Events) == len(b.Events)
			for j := 0; same && j < len(a.Events); j++ {
				ea, eb := a.Events[j], b.Events[j]
				same = ea.Type == eb.Type && sameKV(&ea.KV, &eb.KV) && sameKV(ea.PrevKV, eb.PrevKV)
			}
			if !same {
				fail("watchers 0 and %d differ at position %d: revision %d [%s] vs revision %d [%s]",
					w.id, i, a.Revision, fmtEvents(a.Events), b.Revision, fmtEvents(b.Events))
				break
			}
		}
	}

	// Replay the history, checking each event against the state before it.
	state := map[string]raftstore.KeyValue{}
	seen := map[string]int64{} // value -> revision that put it
	for _, resp := range ref {
		for _, ev := range resp.Events {
			k := string(ev.KV.Key)
			if !strings.HasPrefix(k, wfPrefix) {
				fail("revision %d: event on %q outside the prefix", resp.Revision, k)
			}
			var prev *raftstore.KeyValue
			if p, ok := state[k]; ok {
				prev = &p
			}
			if !sameKV(prev, ev.PrevKV) {
				fail("revision %d: event on %s says the previous state was %s, the history says %s", resp.Revision, k, fmtKV(ev.PrevKV), fmtKV(prev))
			}
			if ev.Type == kv.EventDelete {
				if prev == nil {
					fail("revision %d: delete of absent key %s", resp.Revision, k)
				}
				delete(state, k)
				continue
			}
			want := raftstore.KeyValue{Key: ev.KV.Key, Value: ev.KV.Value, CreateRev: resp.Revision, ModRev: resp.Revision, Version: 1}
			if prev != nil {
				want.CreateRev, want.Version = prev.CreateRev, prev.Version+1
			}
			if !sameKV(&want, &ev.KV) {
				fail("revision %d: put is %s, want %s", resp.Revision, fmtKV(&ev.KV), fmtKV(&want))
			}
			if r0, dup := seen[string(ev.KV.Value)]; dup {
				fail("value %s was put twice, at revisions %d and %d (a write applied twice)", ev.KV.Value, r0, resp.Revision)
			}
			seen[string(ev.KV.Value)] = resp.Revision
			state[k] = ev.KV
		}
	}

	// The replayed history is every member's final state.
	for i := range c.Members {
		s := c.Store(i)
		res, err := s.Range(context.Background(), raftstore.RangeRequest{Key: []byte(wfPrefix), Prefix: true, Consistency: raftstore.Serializable})
		if err != nil {
			fail("final read of %s: %v", c.Members[i].ID, err)
			continue
		}
		if res.Revision != final {
			fail("%s is at revision %d, want %d", c.Members[i].ID, res.Revision, final)
		}
		if len(res.KVs) != len(state) {
			fail("%s holds %d keys, the watch history %d", c.Members[i].ID, len(res.KVs), len(state))
		}
		for _, kv := range res.KVs {
			want, ok := state[string(kv.Key)]
			if !ok || !sameKV(&want, &kv) {
				fail("%s holds %s, the watch history says %s", c.Members[i].ID, fmtKV(&kv), fmtKV(&want))
			}
		}
	}

	// Writes: acknowledged ones are at their revision, ones the store said
	// were not applied are nowhere, and every value in the history was
	// written by someone.
	written := map[string]*wfWrite{}
	for _, w := range r.writes {
		for _, v := range w.puts {
			written[v] = w
		}
	}
	for v, rev := range seen {
		w, ok := written[v]
		switch {
		case !ok:
			fail("revision %d puts %s, which nobody wrote", rev, v)
		case w.outcome == wfNotApplied:
			fail("%q failed with an error saying it was not applied, but revision %d applied it", w.desc, rev)
		case w.casFail:
			fail("%q failed its compare, but revision %d applied it", w.desc, rev)
		}
	}
	at := func(rev int64) []raftstore.Event {
		if rev < 1 || rev > int64(len(ref)) {
			return nil
		}
		return ref[rev-1].Events
	}
	for _, w := range r.writes {
		if w.outcome != wfAcked || w.casFail || (len(w.puts) == 0 && w.deleted == 0) {
			continue
		}
		evs := at(w.rev)
		got := map[string]raftstore.Event{}
		for _, ev := range evs {
			got[string(ev.KV.Key)] = ev
		}
		for k, v := range w.puts {
			ev, ok := got[k]
			if !ok || ev.Type == kv.EventDelete || string(ev.KV.Value) != v {
				fail("acknowledged %q at revision %d, but that revision is [%s]", w.desc, w.rev, fmtEvents(evs))
			}
		}
		for _, k := range w.deletes {
			if _, put := w.puts[k]; put {
				continue
			}
			if ev, ok := got[k]; ok && ev.Type != kv.EventDelete {
				fail("acknowledged %q at revision %d, but that revision is [%s]", w.desc, w.rev, fmtEvents(evs))
			}
			if len(w.puts) == 0 {
				if ev, ok := got[k]; !ok || ev.Type != kv.EventDelete {
					fail("acknowledged %q (deleted %d) at revision %d, but that revision is [%s]", w.desc, w.deleted, w.rev, fmtEvents(evs))
				}
			}
		}
		if n := len(w.puts) + len(w.deletes); len(evs) > n {
			fail("acknowledged %q at revision %d, but that revision has more events: [%s]", w.desc, w.rev, fmtEvents(evs))
		}
	}
	return errs
}
