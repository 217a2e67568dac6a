package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/kv"
	"github.com/droverhq/drover/raftstore/transport"
)

// The store RPC between members (net/rpc, multiplexed over one connection
// per peer). Errors travel as codes, not strings, so the caller gets the
// same typed errors as locally. This is the seam a later network API for
// clients reuses.

type errCode int

const (
	codeOK errCode = iota
	codeNotLeader
	codeTimeout
	codeTimeoutIndeterminate
	codeShutdown
	codeTooLarge
	codeInvalid
	codeEmptyKey
	codeInvalidRange
	codeNotFound
	codeLeaseNotFound
	codeLeaseExists
	codeOther
)

// remoteError is an error from another member: its own message, matching
// the same sentinel it matched there.
type remoteError struct {
	msg string
	is  error
}

func (e *remoteError) Error() string        { return e.msg }
func (e *remoteError) Is(target error) bool { return target == e.is }

// WireError is an error as it crosses the member RPC.
type WireError struct {
	Code   errCode
	Msg    string
	Leader string
	ID     string
}

func toWire(err error) WireError {
	if err == nil {
		return WireError{}
	}
	w := WireError{Code: codeOther, Msg: err.Error()}
	var nl *NotLeaderError
	var to *TimeoutError
	switch {
	case errors.As(err, &nl):
		w.Code, w.Leader, w.ID = codeNotLeader, nl.LeaderAddr, nl.LeaderID
	case errors.As(err, &to):
		w.Code = codeTimeout
		if to.Indeterminate {
			w.Code = codeTimeoutIndeterminate
		}
	case errors.Is(err, ErrShutdown):
		w.Code = codeShutdown
	case errors.Is(err, ErrTooLarge):
		w.Code = codeTooLarge
	case errors.Is(err, ErrEmptyKey):
		w.Code = codeEmptyKey
	case errors.Is(err, ErrInvalidRange):
		w.Code = codeInvalidRange
	case errors.Is(err, ErrNotFound):
		w.Code = codeNotFound
	case errors.Is(err, ErrLeaseNotFound):
		w.Code = codeLeaseNotFound
	case errors.Is(err, ErrLeaseExists):
		w.Code = codeLeaseExists
	case errors.Is(err, ErrInvalid):
		w.Code = codeInvalid
	}
	return w
}

func (w WireError) err(op string) error {
	switch w.Code {
	case codeOK:
		return nil
	case codeNotLeader:
		return &NotLeaderError{LeaderAddr: w.Leader, LeaderID: w.ID}
	case codeTimeout:
		return &TimeoutError{Op: op, Remote: w.Msg}
	case codeTimeoutIndeterminate:
		return &TimeoutError{Op: op, Indeterminate: true, Remote: w.Msg}
	case codeShutdown:
		return &remoteError{msg: w.Msg, is: ErrShutdown}
	case codeTooLarge:
		return &remoteError{msg: w.Msg, is: ErrTooLarge}
	case codeInvalid:
		return &remoteError{msg: w.Msg, is: ErrInvalid}
	case codeEmptyKey:
		return &remoteError{msg: w.Msg, is: ErrEmptyKey}
	case codeInvalidRange:
		return &remoteError{msg: w.Msg, is: ErrInvalidRange}
	case codeNotFound:
		return &remoteError{msg: w.Msg, is: ErrNotFound}
	case codeLeaseNotFound:
		return &remoteError{msg: w.Msg, is: ErrLeaseNotFound}
	case codeLeaseExists:
		return &remoteError{msg: w.Msg, is: ErrLeaseExists}
	}
	return errors.New(w.Msg)
}

// ApplyArgs carries an encoded command to the leader.
type ApplyArgs struct {
	Cmd      []byte
	Deadline time.Time
}

// ApplyReply carries the encoded response back.
type ApplyReply struct {
	Resp []byte
	Err  WireError
}

// ReadIndexArgs asks the leader for a read index.
type ReadIndexArgs struct{ Deadline time.Time }

// ReadIndexReply is the index the reader must have applied.
type ReadIndexReply struct {
	Index uint64
	Err   WireError
}

// MembershipArgs asks the leader to change the configuration.
type MembershipArgs struct {
	Op       string // "add-voter", "remove", "transfer"
	ID       string
	Address  string
	Deadline time.Time
}

// MembershipReply reports the outcome.
type MembershipReply struct{ Err WireError }

// StatusArgs asks a member for its own status.
type StatusArgs struct{}

// memberRPC is the server side.
type memberRPC struct{ s *Store }

func deadlineCtx(d time.Time) (context.Context, context.CancelFunc) {
	if d.IsZero() {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}
	return context.WithDeadline(context.Background(), d)
}

func (m *memberRPC) Apply(args ApplyArgs, reply *ApplyReply) error {
	ctx, cancel := deadlineCtx(args.Deadline)
	defer cancel()
	// Only apply here if this member is the leader: a forwarded write is
	// never forwarded again, so a stale view of the leader cannot loop.
	resp, err := m.s.applyLocal(ctx, args.Cmd)
	if err != nil {
		reply.Err = toWire(err)
		return nil
	}
	reply.Resp = command.EncodeResponse(resp)
	return nil
}

func (m *memberRPC) ReadIndex(args ReadIndexArgs, reply *ReadIndexReply) error {
	ctx, cancel := deadlineCtx(args.Deadline)
	defer cancel()
	idx, err := m.s.leaderReadIndex(ctx)
	reply.Index, reply.Err = idx, toWire(err)
	return nil
}

func (m *memberRPC) Membership(args MembershipArgs, reply *MembershipReply) error {
	ctx, cancel := deadlineCtx(args.Deadline)
	defer cancel()
	reply.Err = toWire(m.s.membershipLocal(ctx, args))
	return nil
}

func (m *memberRPC) Status(args StatusArgs, reply *MemberStatus) error {
	*reply = m.s.localStatus()
	return nil
}

func (s *Store) serveRPC() {
	ln := s.trans.Listener()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			// Close the connection when the store stops, so ServeConn ends.
			stop := make(chan struct{})
			go func() {
				select {
				case <-s.stop:
					conn.Close()
				case <-stop:
				}
			}()
			s.rpc.ServeConn(conn)
			close(stop)
		}()
	}
}

// peerPool keeps one multiplexed RPC client per peer.
type peerPool struct {
	trans   transport.Transport
	mu      sync.Mutex
	clients map[raft.ServerAddress]*rpc.Client
	closed  bool
}

func newPeerPool(t transport.Transport) *peerPool {
	return &peerPool{trans: t, clients: map[raft.ServerAddress]*rpc.Client{}}
}

// errNotSent marks failures where the request surely never reached the peer.
var errNotSent = errors.New("request not sent")

func (p *peerPool) client(ctx context.Context, addr raft.ServerAddress) (*rpc.Client, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrShutdown
	}
	if c, ok := p.clients[addr]; ok {
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	conn, err := p.trans.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotSent, err)
	}
	c := rpc.NewClient(conn)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, ErrShutdown
	}
	if old, ok := p.clients[addr]; ok {
		c.Close()
		return old, nil
	}
	p.clients[addr] = c
	return c, nil
}

func (p *peerPool) drop(addr raft.ServerAddress, c *rpc.Client) {
	p.mu.Lock()
	if p.clients[addr] == c {
		delete(p.clients, addr)
	}
	p.mu.Unlock()
	c.Close()
}

// call invokes method on the peer at addr. A broken connection is dropped
// so the next call redials. Errors wrapping errNotSent are safe to retry.
func (p *peerPool) call(ctx context.Context, addr raft.ServerAddress, method string, args, reply any) error {
	c, err := p.client(ctx, addr)
	if err != nil {
		return err
	}
	call := c.Go("Member."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		if errors.Is(call.Error, rpc.ErrShutdown) {
			p.drop(addr, c)
			return fmt.Errorf("call %s on %s: connection lost: %w", method, addr, call.Error)
		}
		return call.Error
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *peerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for a, c := range p.clients {
		c.Close()
		delete(p.clients, a)
	}
}

// TxnArgs is a client transaction sent to any member, which forwards it to
// the leader when needed (unlike Apply, which only the leader accepts).
type TxnArgs struct {
	Txn      []byte // command.EncodeTxn
	Deadline time.Time
}

// RangeArgs is a client read sent to any member.
type RangeArgs struct {
	Key, End     []byte
	Limit        int64
	CountOnly    bool
	Serializable bool
	Deadline     time.Time
}

// RangeReply carries a read's result.
type RangeReply struct {
	KVs      []byte // command.EncodeResponse with one OpResult
	Revision int64
	NextKey  []byte
	Err      WireError
}

func (m *memberRPC) Txn(args TxnArgs, reply *ApplyReply) error {
	ctx, cancel := deadlineCtx(args.Deadline)
	defer cancel()
	t, err := command.Decode(args.Txn)
	if err != nil {
		reply.Err = toWire(fmt.Errorf("%w: %v", ErrInvalid, err))
		return nil
	}
	resp, err := m.s.Txn(ctx, t)
	if err != nil {
		reply.Err = toWire(err)
		return nil
	}
	reply.Resp = command.EncodeResponse(resp)
	return nil
}

func (m *memberRPC) Range(args RangeArgs, reply *RangeReply) error {
	ctx, cancel := deadlineCtx(args.Deadline)
	defer cancel()
	req := RangeRequest{Key: args.Key, End: args.End, Limit: args.Limit, CountOnly: args.CountOnly}
	if args.Serializable {
		req.Consistency = Serializable
	}
	r, err := m.s.Range(ctx, req)
	if err != nil {
		reply.Err = toWire(err)
		return nil
	}
	reply.Revision, reply.NextKey = r.Revision, r.NextKey
	reply.KVs = command.EncodeResponse(&command.Response{Revision: r.Revision, Results: []command.OpResult{{KVs: r.KVs, Count: r.Count, More: r.More}}})
	return nil
}

func (m *memberRPC) FullStatus(args StatusArgs, reply *Status) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := m.s.Status(ctx)
	if err != nil {
		return err
	}
	*reply = *st
	return nil
}

// WatchPollArgs asks for the next changes from a revision: a long poll, so
// simple clients can follow a watch over the request-response RPC.
type WatchPollArgs struct {
	Key, End []byte
	FromRev  int64
	Wait     time.Duration
}

// WatchPollReply carries the changes found (each one revision's events,
// encoded as a command.Response whose Results hold one OpResult per event:
// KVs[0] the key-value, Deleted 1 for a delete).
type WatchPollReply struct {
	Changes  [][]byte
	Revision int64 // the revision the reply covers up to
	Err      WireError
	Compact  int64 // oldest available revision, when compacted
}

func (m *memberRPC) WatchPoll(args WatchPollArgs, reply *WatchPollReply) error {
	wait := args.Wait
	if wait <= 0 || wait > time.Minute {
		wait = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	from := args.FromRev
	if from == 0 {
		from = m.s.hub.Revision() + 1
	}
	// Covered so far: everything before from. Only deliveries advance it.
	reply.Revision = from - 1
	w, err := m.s.Watch(ctx, args.Key, args.End, from)
	if err != nil {
		var ce *CompactedError
		if errors.As(err, &ce) {
			reply.Compact = ce.Oldest
		}
		reply.Err = toWire(err)
		return nil
	}
	defer w.Cancel()
	for {
		select {
		case r, ok := <-w.C():
			if !ok {
				reply.Err = toWire(w.Err())
				return nil
			}
			if r.Progress {
				reply.Revision = max(reply.Revision, r.Revision)
				continue
			}
			resp := &command.Response{Revision: r.Revision}
			for _, ev := range r.Events {
				res := command.OpResult{KVs: []command.KeyValue{ev.KV}}
				if ev.Type == kv.EventDelete {
					res.Deleted = 1
				}
				resp.Results = append(resp.Results, res)
			}
			reply.Changes = append(reply.Changes, command.EncodeResponse(resp))
			reply.Revision = r.Revision
			// Return what is buffered now rather than waiting for more.
			if len(w.C()) == 0 {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// LeaseArgs names a lease for keep-alive and time-to-live on the leader.
type LeaseArgs struct {
	ID   int64
	Keys bool
}

// LeaseReply carries a lease's status back.
type LeaseReply struct {
	Status LeaseStatus
	Err    WireError
}

func (m *memberRPC) LeaseKeepAlive(args LeaseArgs, reply *LeaseReply) error {
	ttl, err := m.s.lessor.renew(args.ID)
	reply.Status.GrantedTTL, reply.Err = ttl, toWire(err)
	return nil
}

func (m *memberRPC) LeaseTimeToLive(args LeaseArgs, reply *LeaseReply) error {
	st, err := m.s.lessor.status(args.ID, args.Keys)
	reply.Status, reply.Err = st, toWire(err)
	return nil
}
