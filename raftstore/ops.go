package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/droverhq/drover/raftstore/command"
)

// Consistency is the guarantee a read asks for.
type Consistency int

const (
	// Linearizable reads reflect every write acknowledged before the read
	// began, on any member (read index through the leader).
	Linearizable Consistency = iota
	// Serializable reads return this member's applied state: possibly stale,
	// never torn, and available without a leader.
	Serializable
)

// RangeRequest reads one key, a prefix or [Key, End).
type RangeRequest struct {
	Key []byte
	// End: empty means the single key Key; "\x00" means every key >= Key.
	End []byte
	// Prefix selects every key starting with Key (End must be empty).
	Prefix bool
	// Limit caps the keys returned; the rest are reported by More and
	// NextKey. 0 means no limit.
	Limit       int64
	CountOnly   bool
	Consistency Consistency
}

// RangeResponse is a range read's result and the revision it reflects.
type RangeResponse struct {
	KVs      []KeyValue
	Count    int64 // keys in the whole range, not just this page
	More     bool
	Revision int64
	// NextKey continues a limited read: pass it as Key with the same End.
	NextKey []byte
}

// Range reads keys. Returned key-values share memory with the store: do not
// modify them.
func (s *Store) Range(ctx context.Context, req RangeRequest) (*RangeResponse, error) {
	if len(req.Key) == 0 && !req.Prefix && len(req.End) == 0 {
		return nil, ErrEmptyKey
	}
	end := req.End
	if req.Prefix {
		if len(end) != 0 {
			return nil, fmt.Errorf("%w: Prefix and End are exclusive", ErrInvalidRange)
		}
		end = command.PrefixEnd(req.Key)
	}
	if err := checkRange(req.Key, end); err != nil {
		return nil, err
	}
	if req.Limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", ErrInvalid, req.Limit)
	}
	if err := s.readBarrier(ctx, req.Consistency); err != nil {
		return nil, err
	}
	r := s.kv.Range(req.Key, end, req.Limit, req.CountOnly)
	resp := &RangeResponse{KVs: r.KVs, Count: r.Count, More: r.More, Revision: r.Revision}
	if r.More && len(r.KVs) > 0 {
		last := r.KVs[len(r.KVs)-1].Key
		resp.NextKey = append(append(make([]byte, 0, len(last)+1), last...), 0)
	}
	return resp, nil
}

func checkRange(key, end []byte) error {
	if len(end) == 0 || (len(end) == 1 && end[0] == 0) {
		return nil
	}
	if bytes.Compare(key, end) >= 0 {
		return fmt.Errorf("%w: start %q is not before end %q", ErrInvalidRange, key, end)
	}
	return nil
}

// Get reads one key; ErrNotFound when absent. The revision is the store's.
func (s *Store) Get(ctx context.Context, key []byte, c Consistency) (KeyValue, int64, error) {
	r, err := s.Range(ctx, RangeRequest{Key: key, Consistency: c})
	if err != nil {
		return KeyValue{}, 0, err
	}
	if len(r.KVs) == 0 {
		return KeyValue{}, r.Revision, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return r.KVs[0], r.Revision, nil
}

// Sync returns once this member has applied every write acknowledged
// before the call (the barrier a linearizable read waits for).
func (s *Store) Sync(ctx context.Context) error {
	return s.readBarrier(ctx, Linearizable)
}

// Revision is the revision this member has applied.
func (s *Store) Revision() int64 { return s.kv.Revision() }

// Put sets key to value. With prevKV it also returns the previous value.
func (s *Store) Put(ctx context.Context, key, value []byte, prevKV bool) (rev int64, prev *KeyValue, err error) {
	resp, err := s.Txn(ctx, command.Put(key, value, prevKV))
	if err != nil {
		return 0, nil, err
	}
	if kvs := resp.Results[0].KVs; len(kvs) > 0 {
		prev = &kvs[0]
	}
	return resp.Revision, prev, nil
}

// Delete deletes one key and reports how many keys were deleted (0 or 1).
func (s *Store) Delete(ctx context.Context, key []byte) (deleted, rev int64, err error) {
	resp, err := s.Txn(ctx, command.Delete(key, nil, false))
	if err != nil {
		return 0, 0, err
	}
	return resp.Results[0].Deleted, resp.Revision, nil
}

// DeleteRange deletes [key, end) ("\x00" = to the end of the key space).
func (s *Store) DeleteRange(ctx context.Context, key, end []byte) (deleted, rev int64, err error) {
	if len(end) == 0 {
		return 0, 0, fmt.Errorf("%w: DeleteRange needs an end; use Delete for one key", ErrInvalidRange)
	}
	resp, err := s.Txn(ctx, command.Delete(key, end, false))
	if err != nil {
		return 0, 0, err
	}
	return resp.Results[0].Deleted, resp.Revision, nil
}

// CompareAndSwap sets key to value only if its mod revision is modRev (0:
// only if the key does not exist). On mismatch it returns a
// *CompareFailedError (errors.Is ErrCompareFailed) with the current state.
func (s *Store) CompareAndSwap(ctx context.Context, key, value []byte, modRev int64) (int64, error) {
	t := &command.Txn{
		Compares: []command.Compare{{Key: key, Target: command.TargetModRev, Result: command.Equal, Int: modRev}},
		Success:  []command.Op{{Type: command.OpPut, Key: key, Value: value}},
		Failure:  []command.Op{{Type: command.OpRange, Key: key}},
	}
	resp, err := s.Txn(ctx, t)
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		e := &CompareFailedError{Key: key, Revision: resp.Revision}
		if kvs := resp.Results[0].KVs; len(kvs) > 0 {
			e.Current = &kvs[0]
		}
		return resp.Revision, e
	}
	return resp.Revision, nil
}

// Txn applies a transaction atomically at one revision. A transaction with
// no writes is served as a linearizable read without going through the log.
func (s *Store) Txn(ctx context.Context, t *Txn) (*Response, error) {
	if err := s.validateTxn(t); err != nil {
		return nil, err
	}
	cmd := command.EncodeTxn(t)
	if len(cmd) > s.cfg.MaxRequestBytes {
		return nil, &TooLargeError{What: "request", Size: len(cmd), Limit: s.cfg.MaxRequestBytes}
	}
	if s.closed.Load() {
		return nil, ErrShutdown
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if !t.IsWrite() {
		// Nothing to replicate: a linearizable read of every key involved,
		// evaluated at one revision.
		if err := s.readBarrier(ctx, Linearizable); err != nil {
			return nil, err
		}
		return s.kv.ReadTxn(t), nil
	}
	resp, err := s.propose(ctx, cmd)
	if err == nil && resp.Err == command.ErrLeaseNotFound {
		return nil, fmt.Errorf("%w: a put names a lease that does not exist", ErrLeaseNotFound)
	}
	return resp, err
}

func (s *Store) validateTxn(t *Txn) error {
	if t == nil {
		return fmt.Errorf("%w: nil transaction", ErrInvalid)
	}
	if n := len(t.Success) + len(t.Failure) + len(t.Compares); n > s.cfg.MaxTxnOps {
		return &TooLargeError{What: "transaction ops", Size: n, Limit: s.cfg.MaxTxnOps}
	}
	for _, c := range t.Compares {
		if err := s.checkKey(c.Key); err != nil {
			return err
		}
		if c.Target < command.TargetVersion || c.Target > command.TargetLease {
			return fmt.Errorf("%w: compare target %d", ErrInvalid, c.Target)
		}
		if c.Result < command.Equal || c.Result > command.Greater {
			return fmt.Errorf("%w: compare result %d", ErrInvalid, c.Result)
		}
	}
	for _, ops := range [][]Op{t.Success, t.Failure} {
		written := map[string]bool{}
		for _, op := range ops {
			if err := s.checkKey(op.Key); err != nil {
				return err
			}
			switch op.Type {
			case command.OpPut:
				if op.Lease < 0 {
					return fmt.Errorf("%w: negative lease ID %d", ErrInvalid, op.Lease)
				}
				if len(op.Value) > s.cfg.MaxValueBytes {
					return &TooLargeError{What: "value", Size: len(op.Value), Limit: s.cfg.MaxValueBytes}
				}
				if written[string(op.Key)] {
					return fmt.Errorf("%w: key %q is written twice in one transaction", ErrInvalid, op.Key)
				}
				written[string(op.Key)] = true
			case command.OpDelete, command.OpRange:
				if err := checkRange(op.Key, op.End); err != nil {
					return err
				}
				if op.Limit < 0 {
					return fmt.Errorf("%w: negative limit %d", ErrInvalid, op.Limit)
				}
			default:
				return fmt.Errorf("%w: op type %d", ErrInvalid, op.Type)
			}
		}
	}
	return nil
}

func (s *Store) checkKey(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if len(key) > s.cfg.MaxKeyBytes {
		return &TooLargeError{What: "key", Size: len(key), Limit: s.cfg.MaxKeyBytes}
	}
	return nil
}

// propose gets cmd applied by the leader: locally when this member leads,
// otherwise forwarded over the member RPC. It retries only while the request
// surely was not applied (no leader yet, or it went to a member that was not
// the leader), so a write is never applied twice.
func (s *Store) propose(ctx context.Context, cmd []byte) (*command.Response, error) {
	for {
		if s.isLeader() {
			resp, err := s.applyLocal(ctx, cmd)
			if !errors.Is(err, ErrNotLeader) {
				return resp, err
			}
		} else if addr, _ := s.leader(); addr != "" {
			resp, err := s.forwardApply(ctx, addr, cmd)
			if err == nil || !retryable(err) {
				return resp, err
			}
		}
		if err := s.retryPause(ctx); err != nil {
			if errors.Is(err, ErrShutdown) {
				return nil, err
			}
			addr, id := s.leader()
			return nil, &TimeoutError{Op: "write", Cause: &NotLeaderError{LeaderAddr: string(addr), LeaderID: string(id)}}
		}
	}
}

// retryable reports errors after which the write surely was not applied.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, errNotSent)
}

// applyLocal applies cmd through this member's Raft, which must be leader.
func (s *Store) applyLocal(ctx context.Context, cmd []byte) (*command.Response, error) {
	if s.raft.State() != raft.Leader {
		addr, id := s.leader()
		return nil, &NotLeaderError{LeaderAddr: string(addr), LeaderID: string(id)}
	}
	enqueue := time.Second
	if d, ok := ctx.Deadline(); ok {
		enqueue = time.Until(d)
	}
	f := s.raft.Apply(cmd, enqueue)
	if err := s.waitFuture(ctx, f); err != nil {
		return nil, s.mapRaftError("write", err)
	}
	resp, ok := f.Response().(*command.Response)
	if !ok {
		return nil, fmt.Errorf("write: unexpected apply response %T", f.Response())
	}
	return resp, nil
}

func (s *Store) forwardApply(ctx context.Context, leader raft.ServerAddress, cmd []byte) (*command.Response, error) {
	args := ApplyArgs{Cmd: cmd}
	args.Deadline, _ = ctx.Deadline()
	var reply ApplyReply
	if err := s.peers.call(ctx, leader, "Apply", args, &reply); err != nil {
		if errors.Is(err, errNotSent) {
			return nil, err
		}
		return nil, &TimeoutError{Op: "write forwarded to " + string(leader), Indeterminate: true, Cause: err}
	}
	if err := reply.Err.err("write"); err != nil {
		return nil, err
	}
	return command.DecodeResponse(reply.Resp)
}

// readBarrier makes a read linearizable: it returns once this member has
// applied every write acknowledged before it was called.
func (s *Store) readBarrier(ctx context.Context, c Consistency) error {
	if c == Serializable {
		if s.closed.Load() {
			return ErrShutdown
		}
		return nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	for {
		var idx uint64
		var err error
		if s.isLeader() {
			idx, err = s.leaderReadIndex(ctx)
		} else if addr, _ := s.leader(); addr != "" {
			idx, err = s.forwardReadIndex(ctx, addr)
		} else {
			err = &NotLeaderError{}
		}
		if err == nil {
			if werr := s.waitApplied(ctx, idx); werr != nil {
				return &TimeoutError{Op: "linearizable read", Cause: werr}
			}
			return nil
		}
		// Reads change nothing, so any failure short of shutdown or bad
		// input is worth another try until the deadline.
		if errors.Is(err, ErrShutdown) || errors.Is(err, ErrInvalid) {
			return err
		}
		if perr := s.retryPause(ctx); perr != nil {
			if errors.Is(perr, ErrShutdown) {
				return perr
			}
			return &TimeoutError{Op: "linearizable read", Cause: err}
		}
	}
}

// leaderReadIndex is the read index protocol's leader side: once leader
// of this term has applied all earlier terms' entries (readyTerm), take the
// commit index, then confirm with a quorum that it is still the leader.
// Every write acknowledged (or applied anywhere) before the call is at or
// below that index, so a member that has applied through it sees them all.
// (The leader's applied index would not do: a follower may apply a committed
// entry before the leader does.)
func (s *Store) leaderReadIndex(ctx context.Context) (uint64, error) {
	for {
		if s.raft.State() != raft.Leader {
			addr, id := s.leader()
			return 0, &NotLeaderError{LeaderAddr: string(addr), LeaderID: string(id)}
		}
		if s.readyTerm.Load() == s.raft.CurrentTerm() {
			break
		}
		// A fresh leader is still applying its predecessors' entries.
		if err := s.retryPause(ctx); err != nil {
			return 0, &TimeoutError{Op: "read index (leader not ready)", Cause: err}
		}
	}
	idx := s.raft.CommitIndex()
	if err := s.waitFuture(ctx, s.raft.VerifyLeader()); err != nil {
		return 0, s.mapRaftError("read index", err)
	}
	return idx, nil
}

// waitApplied returns once this member's state reflects every entry up to
// the Raft index idx. The state machine only sees command and
// configuration entries, so entries it never sees (no-ops, barriers) count
// as applied once the local log holds the committed ones.
func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	for {
		fi := s.fsm.Index()
		if fi >= idx || s.onlyInvisibleEntries(fi+1, idx) {
			return nil
		}
		// Wait for the next apply, or look again shortly: entries the
		// state machine never sees do not wake it.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		s.fsm.WaitIndex(wctx, fi+1)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed.Load() {
			return ErrShutdown
		}
	}
}

// onlyInvisibleEntries reports whether the committed entries from..to are
// all of kinds the state machine never sees.
func (s *Store) onlyInvisibleEntries(from, to uint64) bool {
	// Entries up to the local commit index match the leader's log (Raft's
	// log matching); beyond it they might be stale leftovers.
	if s.raft.CommitIndex() < to || to-from > 64 {
		return false
	}
	first, err := s.logs.FirstIndex()
	if err != nil {
		return false
	}
	var l raft.Log
	for j := from; j <= to; j++ {
		if err := s.cache.GetLog(j, &l); err != nil {
			if j < first {
				continue // compacted into the snapshot the state came from
			}
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

func (s *Store) forwardReadIndex(ctx context.Context, leader raft.ServerAddress) (uint64, error) {
	args := ReadIndexArgs{}
	args.Deadline, _ = ctx.Deadline()
	var reply ReadIndexReply
	if err := s.peers.call(ctx, leader, "ReadIndex", args, &reply); err != nil {
		if errors.Is(err, errNotSent) {
			return 0, err
		}
		return 0, &TimeoutError{Op: "read index from " + string(leader), Cause: err}
	}
	if err := reply.Err.err("read index"); err != nil {
		return 0, err
	}
	return reply.Index, nil
}
