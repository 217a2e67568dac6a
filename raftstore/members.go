package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/fsm"
	"github.com/droverhq/drover/raftstore/kv"
	"github.com/droverhq/drover/raftstore/watch"
)

// Watch streams every change to key (end empty), [key, end), or every key
// >= key (end "\x00"), from fromRev (0: from now). Changes older than the
// member's history give a *CompactedError. Watches are served by this member
// from its own applied state. Cancel ctx to end the watch.
func (s *Store) Watch(ctx context.Context, key, end []byte, fromRev int64) (*Watcher, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	if err := checkRange(key, end); err != nil {
		return nil, err
	}
	if fromRev < 0 {
		return nil, fmt.Errorf("%w: negative start revision %d", ErrInvalid, fromRev)
	}
	if s.closed.Load() {
		return nil, ErrShutdown
	}
	return s.hub.Watch(ctx, key, end, fromRev)
}

// WatchPrefix watches every key with the given prefix.
func (s *Store) WatchPrefix(ctx context.Context, prefix []byte, fromRev int64) (*Watcher, error) {
	return s.Watch(ctx, prefix, command.PrefixEnd(prefix), fromRev)
}

// AddVoter adds a member as a voter (or updates its address). It runs on
// the leader; a follower forwards it.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	return s.membership(ctx, MembershipArgs{Op: "add-voter", ID: id, Address: addr})
}

// RemoveServer removes a member from the configuration.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	return s.membership(ctx, MembershipArgs{Op: "remove", ID: id})
}

// TransferLeadership hands leadership to the member id, or to the most
// up-to-date follower when id is empty.
func (s *Store) TransferLeadership(ctx context.Context, id string) error {
	return s.membership(ctx, MembershipArgs{Op: "transfer", ID: id})
}

func (s *Store) membership(ctx context.Context, args MembershipArgs) error {
	if args.ID == "" && args.Op != "transfer" {
		return fmt.Errorf("%w: member ID is required", ErrInvalid)
	}
	if args.Op == "add-voter" && args.Address == "" {
		return fmt.Errorf("%w: member address is required", ErrInvalid)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	for {
		var err error
		if s.isLeader() {
			err = s.membershipLocal(ctx, args)
		} else if addr, _ := s.leader(); addr != "" {
			args.Deadline, _ = ctx.Deadline()
			var reply MembershipReply
			if err = s.peers.call(ctx, addr, "Membership", args, &reply); err == nil {
				err = reply.Err.err(args.Op)
			}
		} else {
			err = &NotLeaderError{}
		}
		if err == nil || !retryable(err) {
			return err
		}
		if perr := s.retryPause(ctx); perr != nil {
			return &TimeoutError{Op: args.Op, Cause: err}
		}
	}
}

func (s *Store) membershipLocal(ctx context.Context, args MembershipArgs) error {
	if s.raft.State() != raft.Leader {
		addr, id := s.leader()
		return &NotLeaderError{LeaderAddr: string(addr), LeaderID: string(id)}
	}
	timeout := time.Until(deadlineOf(ctx))
	var f raft.Future
	switch args.Op {
	case "add-voter":
		f = s.raft.AddVoter(raft.ServerID(args.ID), raft.ServerAddress(args.Address), 0, timeout)
	case "remove":
		f = s.raft.RemoveServer(raft.ServerID(args.ID), 0, timeout)
	case "transfer":
		if args.ID == "" {
			f = s.raft.LeadershipTransfer()
			break
		}
		addr, err := s.serverAddress(args.ID)
		if err != nil {
			return err
		}
		f = s.raft.LeadershipTransferToServer(raft.ServerID(args.ID), addr)
	default:
		return fmt.Errorf("%w: unknown membership operation %q", ErrInvalid, args.Op)
	}
	return s.mapRaftError(args.Op, s.waitFuture(ctx, f))
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(10 * time.Second)
}

func (s *Store) serverAddress(id string) (raft.ServerAddress, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", s.mapRaftError("read configuration", err)
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return srv.Address, nil
		}
	}
	return "", fmt.Errorf("%w: no member with ID %q", ErrInvalid, id)
}

// MemberStatus is one member's view of itself.
type MemberStatus struct {
	ID           string
	Address      string
	Role         string // Leader, Follower, Candidate, Shutdown
	Term         uint64
	LeaderID     string
	LeaderAddr   string
	CommitIndex  uint64
	AppliedIndex uint64 // last index applied to the state machine
	LastLogIndex uint64
	Revision     int64
	Keys         int
	Watchers     int
	// LastContact is the time since this member last heard from the
	// leader (0 on the leader itself).
	LastContact time.Duration
}

// PeerStatus is a configured member as seen from the member asked.
type PeerStatus struct {
	ID       string
	Address  string
	Suffrage string // Voter, Nonvoter
	// Reachable reports whether it answered a status call just now; then
	// Status holds its own view. LastContact is the time since it last
	// answered (-1: never).
	Reachable   bool
	LastContact time.Duration
	Status      MemberStatus
}

// Status is a member's status and its view of the cluster.
type Status struct {
	MemberStatus
	Peers []PeerStatus
}

func (s *Store) localStatus() MemberStatus {
	addr, id := s.leader()
	st := MemberStatus{
		ID:           s.cfg.ID,
		Address:      string(s.trans.LocalAddr()),
		Role:         s.raft.State().String(),
		Term:         s.raft.CurrentTerm(),
		LeaderID:     string(id),
		LeaderAddr:   string(addr),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.raft.AppliedIndex(),
		LastLogIndex: s.raft.LastIndex(),
		Revision:     s.kv.Revision(),
		Keys:         s.kv.Len(),
		Watchers:     s.hub.Len(),
	}
	if st.Role != raft.Leader.String() {
		if lc := s.raft.LastContact(); !lc.IsZero() {
			st.LastContact = time.Since(lc)
		}
	}
	return st
}

// Status reports this member and asks every configured peer for its own
// status, concurrently, within ctx.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	if s.closed.Load() {
		return nil, ErrShutdown
	}
	st := &Status{MemberStatus: s.localStatus()}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.mapRaftError("read configuration", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	servers := f.Configuration().Servers
	st.Peers = make([]PeerStatus, len(servers))
	done := make(chan struct{}, len(servers))
	for i, srv := range servers {
		p := &st.Peers[i]
		p.ID, p.Address, p.Suffrage, p.LastContact = string(srv.ID), string(srv.Address), srv.Suffrage.String(), -1
		if string(srv.ID) == s.cfg.ID {
			p.Reachable, p.LastContact, p.Status = true, 0, st.MemberStatus
			done <- struct{}{}
			continue
		}
		go func() {
			defer func() { done <- struct{}{} }()
			start := time.Now()
			var ms MemberStatus
			if err := s.peers.call(ctx, srv.Address, "Status", StatusArgs{}, &ms); err == nil {
				p.Reachable, p.Status, p.LastContact = true, ms, time.Since(start)
			}
		}()
	}
	for range servers {
		<-done
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].ID < st.Peers[j].ID })
	return st, nil
}

// Leader returns the current leader's ID and address as this member knows
// them; empty when none is known.
func (s *Store) Leader() (id, addr string) {
	a, i := s.leader()
	return string(i), string(a)
}

// LeaderReady reports whether this member is the leader and has applied
// everything committed before its term (a barrier), with that term: the
// point from which leader-only work may trust its reads.
func (s *Store) LeaderReady() (uint64, bool) {
	term := s.readyTerm.Load()
	return term, term != 0 && s.raft.State() == raft.Leader && s.raft.CurrentTerm() == term
}

// IsLeader reports whether this member currently leads.
func (s *Store) IsLeader() bool { return s.isLeader() }

// Snapshot forces a Raft snapshot now (log compaction).
func (s *Store) Snapshot() error {
	err := s.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return s.mapRaftError("snapshot", err)
}

// WaitApplied blocks until this member has applied its current commit
// index or ctx ends.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	return s.fsm.WaitIndex(ctx, index)
}

// ServerInfo is one server of the Raft configuration.
type ServerInfo struct {
	ID      string
	Address string
	Voter   bool
}

// Configuration returns the latest Raft configuration this member knows.
func (s *Store) Configuration() ([]ServerInfo, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.mapRaftError("read configuration", err)
	}
	var out []ServerInfo
	for _, srv := range f.Configuration().Servers {
		out = append(out, ServerInfo{ID: string(srv.ID), Address: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// HasState reports whether this member belongs to a cluster already: it
// was bootstrapped, or it has received log entries or a snapshot.
func (s *Store) HasState() bool {
	if s.raft.LastIndex() > 0 {
		return true
	}
	conf, err := s.Configuration()
	return err == nil && len(conf) > 0
}

// Bootstrap starts a new cluster with exactly these voters. Every member of
// the new cluster must call it with the same list (or be added later). It
// fails if this member already has state.
func (s *Store) Bootstrap(servers []Server) error {
	if len(servers) == 0 {
		return fmt.Errorf("%w: bootstrap needs at least one server", ErrInvalid)
	}
	var conf raft.Configuration
	for _, srv := range servers {
		if srv.ID == "" || srv.Address == "" {
			return fmt.Errorf("%w: bootstrap server %+v needs an ID and an address", ErrInvalid, srv)
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(srv.ID), Address: raft.ServerAddress(srv.Address)})
	}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// LocalID is this member's Raft server ID.
func (s *Store) LocalID() string { return s.cfg.ID }

// LocalStatus is this member's own status, without asking peers.
func (s *Store) LocalStatus() MemberStatus { return s.localStatus() }

// Term is the current Raft term as this member knows it.
func (s *Store) Term() uint64 { return s.raft.CurrentTerm() }

// WriteSnapshot writes a consistent copy of the whole key space (a backup)
// to w, in the same format as Raft snapshots, and returns its revision.
func (s *Store) WriteSnapshot(w io.Writer) (int64, error) {
	view := s.kv.View()
	if err := fsm.WriteSnapshot(w, view, s.fsm.Index()); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	return view.Revision(), nil
}

// LogSize is the size in bytes of the on-disk Raft log file.
func (s *Store) LogSize() int64 {
	fi, err := os.Stat(filepath.Join(s.cfg.Dir, "raft.db"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// RegisterRPC adds a service to the member RPC (e.g. gossip membership for
// the CLI). Call it right after Open.
func (s *Store) RegisterRPC(name string, rcvr any) error {
	return s.rpc.RegisterName(name, rcvr)
}

// RestoreSnapshot replaces the whole cluster's state with a snapshot of
// size bytes written by WriteSnapshot (a backup), through Raft: every member
// ends up with it. It runs on the leader.
func (s *Store) RestoreSnapshot(ctx context.Context, r io.Reader, size int64) error {
	if !s.isLeader() {
		addr, id := s.leader()
		return &NotLeaderError{LeaderAddr: string(addr), LeaderID: string(id)}
	}
	// The backup's own Raft index belongs to the old cluster's log: drop it.
	body, shrink, err := fsm.ResetIndex(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size - shrink}
	timeout := time.Until(deadlineOf(ctx))
	// Raft refuses a restore until the latest configuration entry is
	// applied; a fresh leader may not be there yet, so wait for its barrier.
	if err := s.waitFuture(ctx, s.raft.Barrier(timeout)); err != nil {
		return fmt.Errorf("restore snapshot: wait for the log to be applied: %w", err)
	}
	if err := s.raft.Restore(meta, body, timeout); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	return nil
}

// Recover rewrites a stopped member's Raft configuration to exactly these
// voters, for quorum-loss recovery: run it on every surviving member with the
// same list, then start them. It replays the member's log into a scratch
// state machine to write a consistent snapshot first (hashicorp/raft's
// RecoverCluster).
func Recover(cfg Config, servers []Server) error {
	if cfg.ID == "" || cfg.Dir == "" || cfg.Transport == nil {
		return fmt.Errorf("%w: recover needs the member ID, data dir and a transport", ErrInvalid)
	}
	if len(servers) == 0 {
		return fmt.Errorf("%w: recover needs at least one surviving member", ErrInvalid)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"), BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		return fmt.Errorf("open raft log in %s: %w (is the member still running?)", cfg.Dir, err)
	}
	defer logs.Close()
	raftLogger := hclog.NewNullLogger()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, max(cfg.SnapshotRetain, 1), raftLogger)
	if err != nil {
		return fmt.Errorf("open snapshots in %s: %w", cfg.Dir, err)
	}
	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil || !has {
		return fmt.Errorf("%s holds no Raft state to recover (%v)", cfg.Dir, err)
	}
	var conf raft.Configuration
	for _, srv := range servers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(srv.ID), Address: raft.ServerAddress(srv.Address)})
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = raftLogger
	hub := watch.NewHub(watch.DefaultConfig(), 0)
	defer hub.Close()
	scratch := fsm.New(kv.New(), hub, slog.New(slog.DiscardHandler))
	if err := raft.RecoverCluster(rc, scratch, logs, logs, snaps, cfg.Transport.Raft(), conf); err != nil {
		return fmt.Errorf("recover cluster: %w", err)
	}
	return nil
}
