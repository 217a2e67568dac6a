// Package raftstore is drover's replicated key-value store: keys with
// revisions, transactions and watch, replicated by hashicorp/raft with the
// log in raft-boltdb, in place of etcd.
//
// A Store is one member. Writes go through Raft (forwarded to the leader when
// this member is a follower) and are acknowledged once committed, fsynced and
// applied. Reads are linearizable by default, using a read index: the
// leader confirms its leadership and names an index; this member waits until
// it has applied that far and reads locally. Serializable reads skip that and
// read local state. See docs/guarantees.md.
package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/rpc"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/fsm"
	"github.com/droverhq/drover/raftstore/kv"
	"github.com/droverhq/drover/raftstore/transport"
	"github.com/droverhq/drover/raftstore/watch"
)

// Re-exported types, so callers need only this package.
type (
	KeyValue = command.KeyValue
	Txn      = command.Txn
	Op       = command.Op
	Compare  = command.Compare
	Response = command.Response
	Event    = kv.Event
	Watcher  = watch.Watcher
	// WatchResponse is one delivery to a watcher.
	WatchResponse = watch.Response
)

// Store is one member of the replicated store.
type Store struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm.FSM
	kv    *kv.Store
	hub   *watch.Hub
	trans transport.Transport
	logs  *raftboltdb.BoltStore
	cache raft.LogStore // logs behind an in-memory cache of recent entries
	snaps *raft.FileSnapshotStore

	// readyTerm is the term in which this member, as leader, has applied
	// everything committed before it (a Barrier succeeded); 0 otherwise.
	// Linearizable reads need it: a new leader's commit index may lag.
	readyTerm atomic.Uint64
	notifyCh  chan bool

	peers  *peerPool
	rpc    *rpc.Server
	lessor *lessor

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
}

// Open opens (or creates) a member's state in cfg.Dir, starts Raft and
// serves the store RPC on the transport. If cfg.Bootstrap is set and there is
// no state yet, it bootstraps a new cluster.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("member", cfg.ID)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.Dir, err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.Dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w (is another member using this data dir?)", filepath.Join(cfg.Dir, "raft.db"), err)
	}
	raftLogger := cfg.RaftLogger
	if raftLogger == nil {
		raftLogger = hclog.NewNullLogger()
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotRetain, raftLogger)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("open snapshot store in %s: %w", cfg.Dir, err)
	}

	s := &Store{
		cfg:      cfg,
		log:      logger,
		kv:       kv.New(),
		trans:    cfg.Transport,
		logs:     logs,
		snaps:    snaps,
		notifyCh: make(chan bool, 16),
		stop:     make(chan struct{}),
	}
	s.hub = watch.NewHub(cfg.Watch, 0)
	s.fsm = fsm.New(s.kv, s.hub, logger)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.NotifyCh = s.notifyCh
	rc.Logger = raftLogger
	if err := raft.ValidateConfig(rc); err != nil {
		logs.Close()
		return nil, fmt.Errorf("raft config: %w", err)
	}

	if len(cfg.Bootstrap) > 0 {
		has, err := raft.HasExistingState(logs, logs, snaps)
		if err != nil {
			logs.Close()
			return nil, fmt.Errorf("check existing state in %s: %w", cfg.Dir, err)
		}
		if !has {
			var conf raft.Configuration
			for _, srv := range cfg.Bootstrap {
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(srv.ID), Address: raft.ServerAddress(srv.Address)})
			}
			if err := raft.BootstrapCluster(rc, logs, logs, snaps, cfg.Transport.Raft(), conf); err != nil {
				logs.Close()
				return nil, fmt.Errorf("bootstrap cluster: %w", err)
			}
			logger.Info("bootstrapped a new cluster", "voters", len(conf.Servers))
		}
	}

	// The log cache keeps recent entries in memory so replication to
	// followers rarely reads bolt.
	cache, err := raft.NewLogCache(1024, logs)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("create log cache: %w", err)
	}
	s.cache = cache
	r, err := raft.NewRaft(rc, s.fsm, cache, logs, snaps, cfg.Transport.Raft())
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	s.raft = r
	s.peers = newPeerPool(cfg.Transport)
	s.rpc = rpc.NewServer()
	if err := s.rpc.RegisterName("Member", &memberRPC{s: s}); err != nil {
		s.Close()
		return nil, fmt.Errorf("register store rpc: %w", err)
	}
	s.lessor = newLessor(s, cfg.LeaseCheckInterval)
	s.goFunc(s.serveRPC)
	s.goFunc(s.monitorLeadership)
	s.goFunc(s.lessor.run)
	return s, nil
}

// goFunc runs fn in a goroutine that Close waits for.
func (s *Store) goFunc(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Close stops this member without handing off leadership: stop serving
// peers, stop Raft, end watches, close the log. It is idempotent and waits
// for every goroutine the store started.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		if s.raft != nil {
			if e := s.raft.Shutdown().Error(); e != nil {
				err = fmt.Errorf("shut down raft: %w", e)
			}
		}
		s.trans.Close()
		if s.peers != nil {
			s.peers.close()
		}
		s.wg.Wait()
		s.hub.Close()
		if e := s.logs.Close(); e != nil && err == nil {
			err = fmt.Errorf("close raft log: %w", e)
		}
	})
	return err
}

// monitorLeadership marks this member ready for linearizable reads once, as
// leader, it has applied everything committed before its term.
func (s *Store) monitorLeadership() {
	for {
		select {
		case <-s.stop:
			return
		case leader := <-s.notifyCh:
			s.readyTerm.Store(0)
			if !leader {
				continue
			}
			term := s.raft.CurrentTerm()
			if err := s.raft.Barrier(s.cfg.ElectionTimeout * 5).Error(); err != nil {
				s.log.Warn("barrier after gaining leadership failed", "err", err)
				continue
			}
			if s.raft.State() == raft.Leader && s.raft.CurrentTerm() == term {
				s.readyTerm.Store(term)
				s.log.Info("leader ready", "term", term)
			}
		}
	}
}

func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.DefaultTimeout)
}

func (s *Store) isLeader() bool { return s.raft.State() == raft.Leader }

func (s *Store) leader() (raft.ServerAddress, raft.ServerID) { return s.raft.LeaderWithID() }

// waitFuture waits for a raft future, the context, or the store closing,
// whichever comes first. (Raft leaves futures of entries in flight at
// shutdown unresolved; Close must not wait for them.)
func (s *Store) waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return errStopping
	}
}

// errStopping: the store closed while waiting on Raft; for a write the
// outcome is unknown.
var errStopping = errors.New("store shut down while waiting")

// retryPause waits a little before retrying a request that found no leader.
func (s *Store) retryPause(ctx context.Context) error {
	t := time.NewTimer(10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return ErrShutdown
	}
}

// mapRaftError turns raft's errors into the store's.
func (s *Store) mapRaftError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errStopping):
		return &TimeoutError{Op: op, Indeterminate: true, Cause: ErrShutdown}
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		addr, id := s.leader()
		return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
	case errors.Is(err, raft.ErrLeadershipLost):
		return &TimeoutError{Op: op, Indeterminate: true, Cause: err}
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return &TimeoutError{Op: op, Cause: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &TimeoutError{Op: op, Indeterminate: true, Cause: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}
