package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore"
)

// TestAcknowledgedWritesSurviveKillAll starts three `drover server`
// processes, writes through all of them concurrently, kills -9 every member
// in the middle of the load, restarts them from their data directories, and
// checks that every acknowledged write is there with the value and revision
// it was acknowledged with. Repeated over several rounds on the same data.
func TestAcknowledgedWritesSurviveKillAll(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("DROVER_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d (replay with DROVER_SEED=%d)", seed, seed)

	key := gossipKey(t)
	var procs []*proc
	var addrs []string
	var first *master
	for i := 0; i < 3; i++ {
		extra := []string{"--bootstrap-expect", "3", "--encrypt", key}
		if first != nil {
			extra = append(extra, "--join", first.gossip)
		}
		m := startMaster(t, fmt.Sprintf("m%d", i+1), i+1, 17381, t.TempDir(), extra...)
		if first == nil {
			first = m
		}
		procs = append(procs, m.proc)
		addrs = append(addrs, m.member)
	}
	tc := adminTLS(t, first.dir)

	type ack struct {
		value string
		rev   int64
	}
	acked := map[string]ack{}
	var mu sync.Mutex
	for round := 0; round < 3; round++ {
		waitWritable(t, addrs[rng.Intn(3)], tc, 30*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 12; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := raftstore.Dial(ctx, addrs[w%3], tc)
				if err != nil {
					return
				}
				defer c.Close()
				for i := 0; ctx.Err() == nil; i++ {
					key := fmt.Sprintf("/dur/r%d/w%d/%d", round, w, i)
					val := fmt.Sprintf("v-%d-%d-%d", round, w, i)
					wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
					rev, err := c.Put(wctx, []byte(key), []byte(val))
					wcancel()
					if err != nil {
						if ctx.Err() != nil || errors.Is(err, raftstore.ErrShutdown) {
							return
						}
						continue // indeterminate: not counted as acknowledged
					}
					mu.Lock()
					acked[key] = ack{val, rev}
					mu.Unlock()
				}
			}()
		}
		// Let the load run, then kill every member at once, mid-write.
		deadline := time.After(time.Duration(300+rng.Intn(700)) * time.Millisecond)
		<-deadline
		for _, p := range procs {
			p.kill()
		}
		cancel()
		wg.Wait()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		t.Logf("round %d: %d writes acknowledged so far; all members killed", round, n)
		for _, p := range procs {
			p.start()
		}
	}

	waitWritable(t, addrs[0], tc, 30*time.Second)
	c := dial(t, addrs[1], tc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.Range(ctx, raftstore.RangeRequest{Key: []byte("/dur/"), Prefix: true})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	got := map[string]raftstore.KeyValue{}
	for _, kv := range r.KVs {
		got[string(kv.Key)] = kv
	}
	if len(acked) == 0 {
		t.Fatalf("no write was acknowledged: the test proved nothing")
	}
	lost := 0
	for k, a := range acked {
		kv, ok := got[k]
		if !ok || string(kv.Value) != a.value || kv.ModRev != a.rev {
			lost++
			if lost < 10 {
				t.Errorf("acknowledged write %s=%s at revision %d: found %+v (present=%v)", k, a.value, a.rev, kv, ok)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
	t.Logf("all %d acknowledged writes survived 3 kill -9 rounds of every member (%d keys present)", len(acked), len(got))
}
