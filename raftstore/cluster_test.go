package raftstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/raftstoretest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestClusterReplicatesAndFailsOver runs the same scenario on 3 and 5
// members, over the in-memory network and over TCP on 127.0.0.x: writes
// through every member (followers forward), linearizable reads on every
// member, a watch on every member, then the leader is killed, a new one takes
// over, the old one restarts from disk and catches up.
func TestClusterReplicatesAndFailsOver(t *testing.T) {
	for _, tc := range []struct {
		n   int
		tcp bool
	}{{3, false}, {5, false}, {3, true}, {5, true}} {
		name := fmt.Sprintf("%d-members-inmem", tc.n)
		if tc.tcp {
			name = fmt.Sprintf("%d-members-tcp", tc.n)
		}
		t.Run(name, func(t *testing.T) {
			c := raftstoretest.New(t, tc.n, raftstoretest.Options{TCP: tc.tcp})
			ctx := ctxT(t, 30*time.Second)
			leader := c.Leader(10 * time.Second)

			watchers := make([]*raftstore.Watcher, tc.n)
			for i := range c.Members {
				w, err := c.Store(i).WatchPrefix(ctx, []byte("/k/"), 1)
				if err != nil {
					t.Fatalf("watch on %d: %v", i, err)
				}
				watchers[i] = w
			}
			for i := range c.Members {
				key := []byte(fmt.Sprintf("/k/%d", i))
				rev := c.Put(ctx, i, string(key), "v")
				// Linearizable read on every member sees it at once.
				for j := range c.Members {
					kv, _, err := c.Store(j).Get(ctx, key, raftstore.Linearizable)
					if err != nil || kv.ModRev != rev {
						t.Fatalf("member %d read %q: kv=%+v err=%v, want mod rev %d", j, key, kv, err, rev)
					}
				}
			}
			for i, w := range watchers {
				got := 0
				for got < tc.n {
					select {
					case r, ok := <-w.C():
						if !ok {
							t.Fatalf("watch on %d ended: %v", i, w.Err())
						}
						got += len(r.Events)
					case <-ctx.Done():
						t.Fatalf("watch on %d saw %d of %d events", i, got, tc.n)
					}
				}
			}

			c.Kill(leader)
			next := c.Leader(10 * time.Second)
			if next == leader {
				t.Fatalf("killed leader still leads")
			}
			for i := range c.Members {
				if i == leader {
					continue
				}
				c.Put(ctx, i, "/after", fmt.Sprint(i))
			}
			c.Restart(leader)
			c.WaitConverged(10 * time.Second)
			kv, _, err := c.Store(leader).Get(ctx, []byte("/after"), raftstore.Linearizable)
			if err != nil || len(kv.Value) == 0 {
				t.Fatalf("restarted member read: %+v %v", kv, err)
			}
		})
	}
}

func TestMembershipAndStatus(t *testing.T) {
	c := raftstoretest.New(t, 3, raftstoretest.Options{})
	ctx := ctxT(t, 30*time.Second)
	leader := c.Leader(10 * time.Second)
	follower := (leader + 1) % 3

	// A follower learns the leader with the leader's first AppendEntries.
	var st *raftstore.Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if st, err = c.Store(follower).Status(ctx); err != nil {
			t.Fatal(err)
		}
		if st.LeaderID != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Role != "Follower" || len(st.Peers) != 3 || st.LeaderID != c.Members[leader].ID {
		t.Fatalf("status from follower: %+v", st)
	}
	for _, p := range st.Peers {
		if !p.Reachable || p.Suffrage != "Voter" {
			t.Fatalf("peer %+v", p)
		}
	}

	// Transfer leadership, asked through a follower.
	// A transfer can time out if the target lags; ask again until it leads.
	for c.Store(follower).TransferLeadership(ctx, c.Members[follower].ID) != nil && ctx.Err() == nil {
		if c.Store(follower).IsLeader() {
			break
		}
	}
	if got := c.Leader(10 * time.Second); got != follower {
		t.Fatalf("leader after transfer = %d, want %d", got, follower)
	}

	// Remove a member through another; the rest keep working.
	victim := (follower + 1) % 3
	if err := c.Store(leader).RemoveServer(ctx, c.Members[victim].ID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	c.Kill(victim)
	c.Put(ctx, leader, "/x", "1")
	st, err := c.Store(leader).Status(ctx)
	if err != nil || len(st.Peers) != 2 {
		t.Fatalf("status after removal: %+v %v", st, err)
	}

	// Add it back as a voter with its old data: it catches up.
	c.Restart(victim)
	if err := c.Store(leader).AddVoter(ctx, c.Members[victim].ID, c.Members[victim].Addr); err != nil {
		t.Fatalf("add voter: %v", err)
	}
	c.WaitConverged(10 * time.Second)
}

func TestBadInputGetsTypedErrors(t *testing.T) {
	c := raftstoretest.New(t, 1, raftstoretest.Options{Configure: func(cfg *raftstore.Config) {
		cfg.MaxKeyBytes = 16
		cfg.MaxValueBytes = 64
	}})
	ctx := ctxT(t, 10*time.Second)
	c.Leader(5 * time.Second)
	s := c.Store(0)
	for _, tc := range []struct {
		name string
		err  error
		call func() error
	}{
		{"empty key", raftstore.ErrEmptyKey, func() error { _, _, err := s.Put(ctx, nil, []byte("v"), false); return err }},
		{"oversized key", raftstore.ErrTooLarge, func() error { _, _, err := s.Put(ctx, make([]byte, 17), nil, false); return err }},
		{"oversized value", raftstore.ErrTooLarge, func() error { _, _, err := s.Put(ctx, []byte("k"), make([]byte, 65), false); return err }},
		{"inverted range", raftstore.ErrInvalidRange, func() error {
			_, err := s.Range(ctx, raftstore.RangeRequest{Key: []byte("b"), End: []byte("a")})
			return err
		}},
		{"inverted delete range", raftstore.ErrInvalidRange, func() error { _, _, err := s.DeleteRange(ctx, []byte("b"), []byte("a")); return err }},
		{"missing key", raftstore.ErrNotFound, func() error { _, _, err := s.Get(ctx, []byte("nope"), raftstore.Linearizable); return err }},
		{"stale CAS", raftstore.ErrCompareFailed, func() error { _, err := s.CompareAndSwap(ctx, []byte("k"), []byte("v"), 42); return err }},
		{"watch empty key", raftstore.ErrEmptyKey, func() error { _, err := s.Watch(ctx, nil, nil, 0); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	if rev := s.Revision(); rev != 0 {
		t.Fatalf("bad input changed the store: revision %d", rev)
	}
}

// TestSnapshotInstallAndRestart makes the log compact often, so a member
// that was down catches up through a snapshot install, and a restarted
// member rebuilds from its own snapshot plus the log after it.
func TestSnapshotInstallAndRestart(t *testing.T) {
	c := raftstoretest.New(t, 3, raftstoretest.Options{Configure: func(cfg *raftstore.Config) {
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
		cfg.SnapshotInterval = 50 * time.Millisecond
	}})
	ctx := ctxT(t, 60*time.Second)
	leader := c.Leader(10 * time.Second)
	lagger := (leader + 1) % 3
	c.Kill(lagger)
	for i := 0; i < 400; i++ {
		c.Put(ctx, leader, fmt.Sprintf("/snap/%04d", i), fmt.Sprint(i))
	}
	if _, _, err := c.Store(leader).Delete(ctx, []byte("/snap/0007")); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(leader).Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	c.Restart(lagger)
	c.WaitConverged(20 * time.Second)

	// The restored member serves linearizable reads and the right count.
	r, err := c.Store(lagger).Range(ctx, raftstore.RangeRequest{Key: []byte("/snap/"), Prefix: true, CountOnly: true})
	if err != nil || r.Count != 399 {
		t.Fatalf("count on restored member: %+v %v", r, err)
	}
	// Its watch history starts after the snapshot: old revisions are
	// reported as compacted with the oldest available revision, never
	// silently skipped.
	_, err = c.Store(lagger).Watch(ctx, []byte("/snap/0001"), nil, 1)
	var ce *raftstore.CompactedError
	if !errors.As(err, &ce) || ce.Oldest <= 1 {
		t.Fatalf("watch from revision 1 on restored member: %v", err)
	}

	// Every member restarts from its own snapshot and log.
	for i := range c.Members {
		c.Kill(i)
	}
	for i := range c.Members {
		c.Restart(i)
	}
	c.Leader(10 * time.Second)
	c.WaitConverged(20 * time.Second)
	kv, _, err := c.Store(0).Get(ctx, []byte("/snap/0399"), raftstore.Linearizable)
	if err != nil || string(kv.Value) != "399" {
		t.Fatalf("after full restart: %+v %v", kv, err)
	}
}
