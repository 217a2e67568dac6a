package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// op is one request of a closed-loop scenario, on client cli, by worker w.
type op func(ctx context.Context, cli *clientv3.Client, rnd *rand.Rand) error

// loadResult is what one closed-loop run measured.
type loadResult struct {
	ops      int64
	errs     int64
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // sorted
	cpu      time.Duration   // server CPU (all members) over the window
	// foreign is the CPU (in cores) used by processes other than the
	// servers and this generator during the window: other people's load on
	// a shared machine.
	foreign float64
	others  string // the busiest of them
}

func (r loadResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r loadResult) cpuPerOp() float64 {
	if r.ops == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.ops)
}

func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	i := int(q*float64(len(lat))+0.5) - 1
	i = max(0, min(i, len(lat)-1))
	return lat[i]
}

// closedLoop runs conc workers over the clients (worker i uses client
// i%len), each issuing fn back to back. Requests completing within the
// measured window (after warm-up, for dur) count; server CPU is sampled at
// the window's edges.
func closedLoop(ctx context.Context, clis []*clientv3.Client, pids []int, conc int, warm, dur time.Duration, fn op) loadResult {
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		mu       sync.Mutex
		res      loadResult
		lats     [][]time.Duration
		errs     atomic.Int64
		firstErr atomic.Value
	)
	begin := time.Now()
	winStart := begin.Add(warm)
	winEnd := winStart.Add(dur)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cli := clis[w%len(clis)]
			rnd := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano())))
			var mine []time.Duration
			for !stop.Load() {
				t0 := time.Now()
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := fn(rctx, cli, rnd)
				cancel()
				t1 := time.Now()
				if t0.Before(winStart) || t1.After(winEnd) {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("%w", err))
					continue
				}
				mine = append(mine, t1.Sub(t0))
			}
			mu.Lock()
			lats = append(lats, mine)
			mu.Unlock()
		}(w)
	}
	time.Sleep(time.Until(winStart))
	cpu0, self0, busy0, all0 := clusterCPU(pids), procCPU(os.Getpid()), machineBusy(), allCPU()
	time.Sleep(time.Until(winEnd))
	cpu1, self1, busy1, all1 := clusterCPU(pids), procCPU(os.Getpid()), machineBusy(), allCPU()
	res.others = topOthers(all0, all1, pids, dur, 3)
	stop.Store(true)
	wg.Wait()
	for _, l := range lats {
		res.lat = append(res.lat, l...)
	}
	slices.Sort(res.lat)
	res.ops = int64(len(res.lat))
	res.errs = errs.Load()
	if e, ok := firstErr.Load().(error); ok {
		res.firstErr = e
	}
	res.elapsed = dur
	res.cpu = cpu1 - cpu0
	res.foreign = max(0, (busy1-busy0-res.cpu-(self1-self0)).Seconds()/dur.Seconds())
	return res
}

// keyOf is the prefill key i.
func keyOf(i int) string { return fmt.Sprintf("/bench/k/%08d", i) }

// prefill writes keys /bench/k/00000000.. with valueSize-byte values, in
// transactions of batch puts, 16 in flight.
func prefill(ctx context.Context, cli *clientv3.Client, keys int, value string, batch int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(int64(batch))) - batch
				if start >= keys || firstErr.Load() != nil {
					return
				}
				var ops []clientv3.Op
				for i := start; i < min(start+batch, keys); i++ {
					ops = append(ops, clientv3.OpPut(keyOf(i), value))
				}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := cli.Txn(rctx).Then(ops...).Commit()
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("prefill at %d: %w", start, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return e
	}
	return nil
}

// compact compacts to the current revision and waits for it (physical), the
// same call on both stores; drover keeps no history, so it is a no-op there.
func compact(ctx context.Context, cli *clientv3.Client) error {
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	r, err := cli.Get(rctx, "/bench/ready")
	if err != nil {
		return err
	}
	// A member that has not applied that revision yet may call it a future
	// revision (drover checks against its local state): retry briefly.
	for {
		_, err = cli.Compact(rctx, r.Header.Revision, clientv3.WithCompactPhysical())
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil // nothing written since the last compaction
		}
		if err == nil || !errors.Is(err, rpctypes.ErrFutureRev) {
			return err
		}
		compactFutureRev.Add(1)
		select {
		case <-rctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compactFutureRev counts Compact calls refused as a future revision
// although the revision had been read linearizably just before.
var compactFutureRev atomic.Int64

// watchResult is what the watch fan-out measured.
type watchResult struct {
	lat       []time.Duration // sorted, put issued -> event received
	expected  int64           // successful puts in the window x watchers
	delivered int64           // events received for those puts
	puts      int64
}

// watchFanout opens nw watchers on one prefix spread over nconn clients,
// then puts to keys under the prefix at rate per second for warm+dur; each
// value carries its send time, so every watcher measures put -> event.
// Watchers connect to watchEps (default: all endpoints, round robin).
func watchFanout(ctx context.Context, c *cluster, nw, nconn int, rate float64, warm, dur time.Duration, valueSize int, watchEps ...string) (watchResult, error) {
	var res watchResult
	clis, err := c.clients(nconn, watchEps...)
	if err != nil {
		return res, err
	}
	defer closeAll(clis)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const prefix = "/bench/w/"
	epoch := time.Now()
	var winStart, winEnd atomic.Int64 // ns since epoch; 0 until set
	winStart.Store(1 << 62)
	winEnd.Store(1 << 62)
	var (
		mu        sync.Mutex
		lats      [][]time.Duration
		delivered atomic.Int64
		wg        sync.WaitGroup
		created   sync.WaitGroup
		createErr atomic.Value
	)
	for i := 0; i < nw; i++ {
		ch := clis[i%nconn].Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		wg.Add(1)
		created.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			first := true
			for wr := range ch {
				now := time.Since(epoch)
				if first {
					first = false
					if err := wr.Err(); err != nil {
						createErr.CompareAndSwap(nil, err)
					}
					created.Done()
					if wr.Created {
						continue
					}
				}
				if err := wr.Err(); err != nil {
					createErr.CompareAndSwap(nil, err)
					continue
				}
				for _, ev := range wr.Events {
					if len(ev.Kv.Value) < 8 {
						continue
					}
					sent := int64(binary.BigEndian.Uint64(ev.Kv.Value))
					if sent >= winStart.Load() && sent < winEnd.Load() {
						mine = append(mine, now-time.Duration(sent))
						delivered.Add(1)
					}
				}
			}
			if first {
				created.Done()
			}
			mu.Lock()
			lats = append(lats, mine)
			mu.Unlock()
		}()
	}
	waitDone := make(chan struct{})
	go func() { created.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(60 * time.Second):
		return res, fmt.Errorf("watchers not created within 60s")
	}
	if e, ok := createErr.Load().(error); ok {
		return res, fmt.Errorf("watch: %w", e)
	}
	writer, err := c.client()
	if err != nil {
		return res, err
	}
	defer writer.Close()
	val := make([]byte, valueSize)
	for i := range val {
		val[i] = 'v'
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	winStart.Store(int64(start.Add(warm).Sub(epoch)))
	winEnd.Store(int64(start.Add(warm + dur).Sub(epoch)))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var puts int64
	var firstPutErr error
	for n := 0; time.Since(start) < warm+dur; n++ {
		<-tick.C
		sent := time.Since(epoch)
		binary.BigEndian.PutUint64(val, uint64(sent))
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := writer.Put(pctx, fmt.Sprintf("%s%06d", prefix, n%1000), string(val))
		pcancel()
		if err != nil {
			if firstPutErr == nil {
				firstPutErr = err
			}
			continue
		}
		if int64(sent) >= winStart.Load() && int64(sent) < winEnd.Load() {
			puts++
		}
	}
	// Let stragglers arrive.
	deadline := time.Now().Add(5 * time.Second)
	for delivered.Load() < puts*int64(nw) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for _, l := range lats {
		res.lat = append(res.lat, l...)
	}
	slices.Sort(res.lat)
	res.puts = puts
	res.expected = puts * int64(nw)
	res.delivered = delivered.Load()
	if firstPutErr != nil && puts == 0 {
		return res, firstPutErr
	}
	return res, nil
}

// failoverTrial kills the leader with SIGKILL and measures the time from the
// kill until the first write to succeed. Probes start every probeEvery, each
// with its own timeout, so a probe stuck on the dead or a leaderless member
// does not hide the recovery. Then the killed member is restarted and the
// cluster waited for.
func failoverTrial(ctx context.Context, c *cluster, probeEvery time.Duration) (time.Duration, string, error) {
	li, err := c.leader(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("find leader: %w", err)
	}
	cli, err := c.client()
	if err != nil {
		return 0, "", err
	}
	defer cli.Close()
	// Connections to every member are up before the kill.
	for i := 0; i < 6; i++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.Put(pctx, "/bench/failover", "before")
		cancel()
		if err != nil {
			return 0, "", fmt.Errorf("put before kill: %w", err)
		}
	}
	victim := c.members[li]
	t0 := time.Now()
	victim.kill()
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	okCh := make(chan time.Time, 1)
	var wg sync.WaitGroup
	tick := time.NewTicker(probeEvery)
	var took time.Duration
loop:
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, rcancel := context.WithTimeout(pctx, 5*time.Second)
			defer rcancel()
			if _, err := cli.Put(rctx, "/bench/failover", "after"); err == nil {
				select {
				case okCh <- time.Now():
				default:
				}
			}
		}()
		select {
		case at := <-okCh:
			took = at.Sub(t0)
			break loop
		case <-pctx.Done():
			break loop
		case <-tick.C:
		}
	}
	tick.Stop()
	cancel()
	wg.Wait()
	if took == 0 {
		if ctx.Err() != nil {
			return 0, victim.name, ctx.Err()
		}
		return 0, victim.name, fmt.Errorf("no write succeeded within 60s after killing %s", victim.name)
	}
	// Bring the member back and wait until it serves linearizable reads.
	if err := victim.start(); err != nil {
		return took, victim.name, err
	}
	if err := c.waitReady(ctx, 90*time.Second); err != nil {
		return took, victim.name, fmt.Errorf("after restarting %s: %w", victim.name, err)
	}
	time.Sleep(500 * time.Millisecond)
	return took, victim.name, nil
}
