package raftstore_test

// Linearizability under faults, checked with porcupine.
//
// Each history runs concurrent clients doing Put, linearizable Get,
// CompareAndSwap and Delete on a few keys through random members of a fresh
// in-memory cluster, while a nemesis partitions the network, kills members
// (often the leader) and restarts them from their on-disk logs, and heals.
// Every value written is unique, so a read names the write it saw. The
// history is then checked (package lincheck) against a per-key register
// model that also tracks mod revisions, plus two cross-key checks
// porcupine's per-key partitions cannot see: revisions name one write each,
// and the store revision a client observes never goes backwards in real
// time.
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
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/raftstoretest"
	"github.com/droverhq/drover/raftstore/raftstoretest/lincheck"
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

// linHistory collects one history.
type linHistory struct {
	sc   linScenario
	lin  *lincheck.History
	keys []string

	mu    sync.Mutex
	stats map[string]int
}

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

func (h *linHistory) client(c *raftstoretest.Cluster, stop <-chan struct{}, rng *rand.Rand) {
	id := h.lin.NewClient()
	stats := map[string]int{}
	defer func() {
		h.mu.Lock()
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
		in := lincheck.Input{Key: key}
		var out lincheck.Output
		var err error
		ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
		call := h.lin.Now()
		switch p := rng.Intn(100); {
		case p < 35:
			in.Kind = lincheck.Get
			var kv raftstore.KeyValue
			kv, out.StoreRev, err = s.Get(ctx, []byte(key), raftstore.Linearizable)
			if err == nil {
				out.Present, out.Value, out.Rev = true, string(kv.Value), kv.ModRev
			} else if errors.Is(err, raftstore.ErrNotFound) {
				err = nil
			}
		case p < 65:
			in.Kind, in.Value = lincheck.Put, h.lin.NewValue()
			out.Rev, _, err = s.Put(ctx, []byte(key), []byte(in.Value), false)
			out.StoreRev = out.Rev
		case p < 90:
			in.Kind, in.Value = lincheck.CAS, h.lin.NewValue()
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
			in.Kind = lincheck.Delete
			var deleted int64
			deleted, out.Rev, err = s.Delete(ctx, []byte(key))
			out.OK, out.StoreRev = deleted == 1, out.Rev
		}
		ret := h.lin.Now()
		cancel()
		op := lincheck.Op{Client: id, Input: in, Output: out, Call: call, Return: ret, Note: "via " + c.Members[m].ID}
		switch {
		case err != nil && in.Kind == lincheck.Get:
			stats["get failed"]++
			continue
		case err != nil && notApplied(err):
			stats[in.Kind.String()+" not applied"]++
			h.lin.Add(op, lincheck.NotApplied)
			continue
		case err != nil:
			stats[in.Kind.String()+" indeterminate"]++
			op.Note = fmt.Sprintf("via %s, returned at %v: %v", c.Members[m].ID, time.Duration(ret), err)
			h.lin.Add(op, lincheck.Indeterminate)
			id = h.lin.NewClient()
			continue
		}
		stats[in.Kind.String()+" ok"]++
		h.lin.Add(op, lincheck.Done)
		switch {
		case in.Kind == lincheck.Get || (in.Kind == lincheck.CAS && !out.OK):
			known[key] = linKnown{present: out.Present, val: out.Value, rev: out.Rev}
		case in.Kind == lincheck.Delete:
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
			id := h.lin.NewClient()
			for {
				s := c.Store(i)
				if s == nil {
					t.Fatalf("member %s is down after the faults ended", c.Members[i].ID)
				}
				ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
				call := h.lin.Now()
				kv, rev, err := s.Get(ctx, []byte(key), raftstore.Linearizable)
				ret := h.lin.Now()
				cancel()
				if err == nil || errors.Is(err, raftstore.ErrNotFound) {
					out := lincheck.Output{StoreRev: rev}
					if err == nil {
						out.Present, out.Value, out.Rev = true, string(kv.Value), kv.ModRev
					}
					h.lin.Add(lincheck.Op{Client: id, Input: lincheck.Input{Kind: lincheck.Get, Key: key}, Output: out, Call: call, Return: ret, Note: "via " + c.Members[i].ID + " (final read)"}, lincheck.Done)
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

	h := &linHistory{sc: sc, lin: lincheck.NewHistory(), stats: map[string]int{}}
	for i := 0; i < sc.keys; i++ {
		h.keys = append(h.keys, fmt.Sprintf("/lin/k%d", i))
	}

	stop := make(chan struct{})
	var nem *nemesis
	nemDone := make(chan struct{})
	if sc.faults {
		nem = newNemesis(c, sc.members, sc.seed, h.lin.Start())
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
			h.client(c, stop, rand.New(rand.NewSource(sc.seed*100+int64(i)+1)))
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
	t.Logf("%d ops in the history: %s", h.lin.Len(), strings.Join(stats, " "))
	if nem != nil {
		t.Logf("nemesis: %s", nem.summary())
	}
	if !sc.faults {
		// Without faults everything should go through (a generous bound,
		// for slow machines and the race detector).
		if bad := h.stats["get failed"] + h.stats["put indeterminate"] + h.stats["cas indeterminate"] + h.stats["delete indeterminate"]; bad*20 > h.lin.Len() {
			t.Errorf("fault-free history: %d of %d operations failed", bad, h.lin.Len())
		}
	}
	for _, kind := range []string{"get", "put", "cas"} {
		if h.stats[kind+" ok"] == 0 {
			t.Errorf("no %s succeeded: the history checks nothing", kind)
		}
	}

	where := fmt.Sprintf("seed %d; replay: %s", sc.seed, sc.replay())
	checkStart := time.Now()
	res, problems := h.lin.Check(linCheckTimeout)
	for _, msg := range problems {
		t.Errorf("%s (%s)", msg, where)
	}
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
	var notes []porcupine.Annotation
	if nem != nil {
		notes = nem.annotations()
	}
	dir, err := os.MkdirTemp("", "raftstore-lin-")
	if err == nil {
		path := filepath.Join(dir, fmt.Sprintf("seed-%d.html", sc.seed))
		if err = h.lin.WriteVisualization(path, linCheckTimeout, notes); err == nil {
			t.Logf("porcupine visualization (nemesis steps annotated): %s", path)
			return
		}
	}
	t.Logf("cannot write the porcupine visualization: %v", err)
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
