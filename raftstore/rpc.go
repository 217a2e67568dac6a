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
	codeOther
)

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
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrEmptyKey), errors.Is(err, ErrInvalidRange):
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
		return &TimeoutError{Op: op, Cause: errors.New(w.Msg)}
	case codeTimeoutIndeterminate:
		return &TimeoutError{Op: op, Indeterminate: true, Cause: errors.New(w.Msg)}
	case codeShutdown:
		return fmt.Errorf("%w (leader: %s)", ErrShutdown, w.Msg)
	case codeTooLarge:
		return fmt.Errorf("%w: %s", ErrTooLarge, w.Msg)
	case codeInvalid:
		return fmt.Errorf("%w: %s", ErrInvalid, w.Msg)
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
