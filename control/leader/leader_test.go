package leader

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore/raftstoretest"
)

// Over a real three-member store: the work runs on exactly the leader, and
// moves with leadership when the leader dies.
func TestWorkFollowsLeadership(t *testing.T) {
	c := raftstoretest.New(t, 3, raftstoretest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running [3]atomic.Int32
	var wg sync.WaitGroup
	cancels := make([]context.CancelFunc, 3)
	for i := 0; i < 3; i++ {
		mctx, mcancel := context.WithCancel(ctx)
		cancels[i] = mcancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			Run(mctx, c.Store(i), 10*time.Millisecond, nil, Work{Name: "probe", Run: func(wctx context.Context) {
				running[i].Add(1)
				<-wctx.Done()
				running[i].Add(-1)
			}})
		}()
	}
	waitFor := func(cond func() bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	leader := c.Leader(10 * time.Second)
	waitFor(func() bool { return running[leader].Load() == 1 }, "work on the leader")
	for i := 0; i < 3; i++ {
		if i != leader && running[i].Load() != 0 {
			t.Fatalf("work runs on follower %d", i)
		}
	}
	// The leader dies: its work stops, and a new leader starts it.
	cancels[leader]()
	c.Kill(leader)
	waitFor(func() bool { return running[leader].Load() == 0 }, "work stopped on the old leader")
	var next int
	waitFor(func() bool {
		for i := 0; i < 3; i++ {
			if i != leader && running[i].Load() == 1 {
				next = i
				return true
			}
		}
		return false
	}, "work on the new leader")
	for i := 0; i < 3; i++ {
		if i != next && running[i].Load() != 0 {
			t.Fatalf("work runs on %d besides the new leader %d", i, next)
		}
	}
	cancel()
	wg.Wait()
}
