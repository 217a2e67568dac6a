package raftstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/kv"
)

// Leases, as in etcd: a lease has an ID and a TTL; keys put with the lease
// are deleted when it is revoked or expires. The lease table is replicated
// state; expiry is not: only the leader keeps time. It renews leases on
// keep-alive and proposes a revoke through Raft when one expires. A new
// leader restarts every lease's TTL, as etcd does, so a failover never
// expires a lease early.

// MaxLeaseTTL is the longest TTL a lease may have, as in etcd.
const MaxLeaseTTL = 9_000_000_000

// LeaseInfo is a lease's ID and granted TTL in seconds.
type LeaseInfo = kv.LeaseInfo

// LeaseStatus is what TimeToLive reports.
type LeaseStatus struct {
	ID int64
	// GrantedTTL is the TTL the lease was granted with; Remaining the
	// seconds left before it expires (-1 if it no longer exists).
	GrantedTTL int64
	Remaining  int64
	Keys       [][]byte
}

// minLeaseTTL keeps a lease from expiring during a normal election.
func (s *Store) minLeaseTTL() int64 {
	return int64(math.Ceil((s.cfg.ElectionTimeout * 3 / 2).Seconds()))
}

// LeaseGrant creates a lease. ID 0 picks a fresh ID. TTLs below the
// minimum (1.5 election timeouts, rounded up to seconds) are raised to it.
func (s *Store) LeaseGrant(ctx context.Context, id, ttl int64) (int64, int64, error) {
	if id < 0 {
		return 0, 0, fmt.Errorf("%w: negative lease ID %d", ErrInvalid, id)
	}
	if ttl > MaxLeaseTTL {
		return 0, 0, &TooLargeError{What: "lease TTL", Size: int(min(ttl, math.MaxInt32)), Limit: MaxLeaseTTL}
	}
	ttl = max(ttl, s.minLeaseTTL())
	if id == 0 {
		id = randomLeaseID()
	}
	resp, err := s.proposeCommand(ctx, command.EncodeLeaseGrant(id, ttl))
	if err != nil {
		return 0, 0, err
	}
	if err := leaseErr(resp.Err, id); err != nil {
		return 0, 0, err
	}
	return id, ttl, nil
}

func randomLeaseID() int64 {
	var b [8]byte
	rand.Read(b[:])
	id := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	if id == 0 {
		id = 1
	}
	return id
}

// LeaseRevoke deletes a lease and every key attached to it, at one
// revision.
func (s *Store) LeaseRevoke(ctx context.Context, id int64) (int64, error) {
	resp, err := s.proposeCommand(ctx, command.EncodeLeaseRevoke(id))
	if err != nil {
		return 0, err
	}
	return resp.Revision, leaseErr(resp.Err, id)
}

func leaseErr(code command.ErrCode, id int64) error {
	switch code {
	case command.ErrLeaseNotFound:
		return fmt.Errorf("%w: %x", ErrLeaseNotFound, id)
	case command.ErrLeaseExists:
		return fmt.Errorf("%w: %x", ErrLeaseExists, id)
	}
	return nil
}

// Leases lists every lease (a linearizable read).
func (s *Store) Leases(ctx context.Context) ([]LeaseInfo, error) {
	if err := s.readBarrier(ctx, Linearizable); err != nil {
		return nil, err
	}
	return s.kv.Leases(), nil
}

// LeaseKeepAlive renews a lease for its full TTL and returns the TTL. It
// runs on the leader; a follower forwards it.
func (s *Store) LeaseKeepAlive(ctx context.Context, id int64) (int64, error) {
	var ttl int64
	err := s.onLeader(ctx, "lease keep-alive", func(ctx context.Context) error {
		var err error
		ttl, err = s.lessor.renew(id)
		return err
	}, func(ctx context.Context, addr raft.ServerAddress) error {
		var reply LeaseReply
		if err := s.peers.call(ctx, addr, "LeaseKeepAlive", LeaseArgs{ID: id}, &reply); err != nil {
			return err
		}
		ttl = reply.Status.GrantedTTL
		return reply.Err.err("lease keep-alive")
	})
	return ttl, err
}

// LeaseTimeToLive reports a lease's granted and remaining TTL, and its keys
// if asked. It runs on the leader, which keeps the time.
func (s *Store) LeaseTimeToLive(ctx context.Context, id int64, keys bool) (*LeaseStatus, error) {
	var st LeaseStatus
	err := s.onLeader(ctx, "lease time-to-live", func(ctx context.Context) error {
		var err error
		st, err = s.lessor.status(id, keys)
		return err
	}, func(ctx context.Context, addr raft.ServerAddress) error {
		var reply LeaseReply
		if err := s.peers.call(ctx, addr, "LeaseTimeToLive", LeaseArgs{ID: id, Keys: keys}, &reply); err != nil {
			return err
		}
		st = reply.Status
		return reply.Err.err("lease time-to-live")
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// onLeader runs local on the leader, or remote against the leader, retrying
// while there is none (both are safe to repeat).
func (s *Store) onLeader(ctx context.Context, op string, local func(context.Context) error, remote func(context.Context, raft.ServerAddress) error) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	for {
		var err error
		if s.isLeader() {
			err = local(ctx)
		} else if addr, _ := s.leader(); addr != "" {
			err = remote(ctx, addr)
		} else {
			err = &NotLeaderError{}
		}
		if err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, errNotSent)) {
			return err
		}
		if perr := s.retryPause(ctx); perr != nil {
			return &TimeoutError{Op: op, Cause: err}
		}
	}
}

// proposeCommand validates size and proposes an encoded command.
func (s *Store) proposeCommand(ctx context.Context, cmd []byte) (*command.Response, error) {
	if s.closed.Load() {
		return nil, ErrShutdown
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.propose(ctx, cmd)
}

// lessor keeps lease expiry on the leader.
type lessor struct {
	s        *Store
	interval time.Duration

	mu       sync.Mutex
	term     uint64 // the term expiry times were set in; 0: not leading
	expiry   map[int64]time.Time
	revoking map[int64]bool
}

func newLessor(s *Store, interval time.Duration) *lessor {
	return &lessor{s: s, interval: interval, expiry: map[int64]time.Time{}, revoking: map[int64]bool{}}
}

// leadingLocked reports whether this member leads (and is ready); a new
// term forgets every expiry so each restarts from its full TTL.
func (l *lessor) leadingLocked() bool {
	s := l.s
	term := s.raft.CurrentTerm()
	if s.raft.State() != raft.Leader || s.readyTerm.Load() != term {
		l.term = 0
		clear(l.expiry)
		return false
	}
	if l.term != term {
		l.term = term
		clear(l.expiry)
	}
	return true
}

// expiryLocked returns a lease's expiry, starting its clock if this leader
// has not seen it yet; ok is false if the lease does not exist.
func (l *lessor) expiryLocked(id int64, now time.Time) (ttl int64, exp time.Time, ok bool) {
	ttl, _, ok = l.s.kv.Lease(id)
	if !ok {
		delete(l.expiry, id)
		return 0, time.Time{}, false
	}
	exp, seen := l.expiry[id]
	if !seen {
		exp = now.Add(time.Duration(ttl) * time.Second)
		l.expiry[id] = exp
	}
	return ttl, exp, true
}

// syncLocked aligns expiry times with the replicated lease table. It must
// hold l.mu.
func (l *lessor) syncLocked(now time.Time) bool {
	if !l.leadingLocked() {
		return false
	}
	live := map[int64]bool{}
	for _, info := range l.s.kv.Leases() {
		live[info.ID] = true
		if _, ok := l.expiry[info.ID]; !ok {
			l.expiry[info.ID] = now.Add(time.Duration(info.TTL) * time.Second)
		}
	}
	for id := range l.expiry {
		if !live[id] {
			delete(l.expiry, id)
		}
	}
	return true
}

func (l *lessor) renew(id int64) (int64, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leadingLocked() {
		addr, lid := l.s.leader()
		return 0, &NotLeaderError{LeaderAddr: string(addr), LeaderID: string(lid)}
	}
	ttl, exp, ok := l.expiryLocked(id, now)
	if !ok || now.After(exp) {
		return 0, fmt.Errorf("%w: %x", ErrLeaseNotFound, id)
	}
	l.expiry[id] = now.Add(time.Duration(ttl) * time.Second)
	return ttl, nil
}

func (l *lessor) status(id int64, withKeys bool) (LeaseStatus, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leadingLocked() {
		addr, lid := l.s.leader()
		return LeaseStatus{}, &NotLeaderError{LeaderAddr: string(addr), LeaderID: string(lid)}
	}
	ttl, exp, ok := l.expiryLocked(id, now)
	if !ok {
		return LeaseStatus{ID: id, Remaining: -1}, fmt.Errorf("%w: %x", ErrLeaseNotFound, id)
	}
	_, keys, _ := l.s.kv.Lease(id)
	st := LeaseStatus{ID: id, GrantedTTL: ttl, Remaining: int64(math.Ceil(exp.Sub(now).Seconds()))}
	st.Remaining = max(st.Remaining, 0)
	if withKeys {
		st.Keys = keys
	}
	return st, nil
}

// run expires leases until the store stops.
func (l *lessor) run() {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	var revokes sync.WaitGroup
	defer revokes.Wait()
	for {
		select {
		case <-l.s.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var due []int64
		l.mu.Lock()
		if l.syncLocked(now) {
			for id, exp := range l.expiry {
				if now.After(exp) && !l.revoking[id] {
					l.revoking[id] = true
					due = append(due, id)
				}
			}
		}
		l.mu.Unlock()
		for _, id := range due {
			revokes.Add(1)
			go func() {
				defer revokes.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, err := l.s.LeaseRevoke(ctx, id)
				if err != nil && !errors.Is(err, ErrLeaseNotFound) && !errors.Is(err, ErrShutdown) {
					l.s.log.Warn("revoking expired lease failed; will retry", "lease", fmt.Sprintf("%x", id), "err", err)
				}
				l.mu.Lock()
				delete(l.revoking, id)
				l.mu.Unlock()
			}()
		}
	}
}
