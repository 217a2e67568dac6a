package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/rpc"
	"time"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/transport"
)

// Client talks to one member over the store RPC, for the CLI and tools. Any
// member serves it: writes are forwarded to the leader, reads are
// linearizable unless asked otherwise. (The etcd-compatible API for
// applications comes later on this same seam.)
type Client struct {
	rpc  *rpc.Client
	addr string
}

// Dial connects to the member at addr (host:port of its member port).
// tlsConf is nil for a plaintext development member.
func Dial(ctx context.Context, addr string, tlsConf ...*tls.Config) (*Client, error) {
	var tc *tls.Config
	if len(tlsConf) > 0 {
		tc = tlsConf[0]
	}
	conn, err := transport.DialStore(ctx, addr, tc)
	if err != nil {
		return nil, fmt.Errorf("connect to member %s: %w", addr, err)
	}
	return &Client{rpc: rpc.NewClient(conn), addr: addr}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.rpc.Close() }

func (c *Client) call(ctx context.Context, method string, args, reply any) error {
	call := c.rpc.Go("Member."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		if call.Error != nil {
			return fmt.Errorf("%s on %s: %w", method, c.addr, call.Error)
		}
		return nil
	case <-ctx.Done():
		return &TimeoutError{Op: method + " on " + c.addr, Indeterminate: true, Cause: ctx.Err()}
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// Txn runs a transaction.
func (c *Client) Txn(ctx context.Context, t *Txn) (*Response, error) {
	var reply ApplyReply
	if err := c.call(ctx, "Txn", TxnArgs{Txn: command.EncodeTxn(t), Deadline: deadline(ctx)}, &reply); err != nil {
		return nil, err
	}
	if err := reply.Err.err("txn"); err != nil {
		return nil, err
	}
	return command.DecodeResponse(reply.Resp)
}

// Put sets key to value and returns the new revision.
func (c *Client) Put(ctx context.Context, key, value []byte) (int64, error) {
	resp, err := c.Txn(ctx, command.Put(key, value, false))
	if err != nil {
		return 0, err
	}
	return resp.Revision, nil
}

// Delete deletes key, or [key, end) when end is set.
func (c *Client) Delete(ctx context.Context, key, end []byte) (int64, error) {
	resp, err := c.Txn(ctx, command.Delete(key, end, false))
	if err != nil {
		return 0, err
	}
	return resp.Results[0].Deleted, nil
}

// Range reads keys as Store.Range does.
func (c *Client) Range(ctx context.Context, req RangeRequest) (*RangeResponse, error) {
	end := req.End
	if req.Prefix {
		end = command.PrefixEnd(req.Key)
	}
	args := RangeArgs{Key: req.Key, End: end, Limit: req.Limit, CountOnly: req.CountOnly, Serializable: req.Consistency == Serializable, Deadline: deadline(ctx)}
	var reply RangeReply
	if err := c.call(ctx, "Range", args, &reply); err != nil {
		return nil, err
	}
	if err := reply.Err.err("range"); err != nil {
		return nil, err
	}
	r, err := command.DecodeResponse(reply.KVs)
	if err != nil || len(r.Results) != 1 {
		return nil, fmt.Errorf("range: bad reply from %s: %v", c.addr, err)
	}
	res := r.Results[0]
	return &RangeResponse{KVs: res.KVs, Count: res.Count, More: res.More, Revision: reply.Revision, NextKey: reply.NextKey}, nil
}

// Status returns the member's status and its view of the cluster.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.call(ctx, "FullStatus", StatusArgs{}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// WatchEvent is one key change seen by Client.Watch.
type WatchEvent struct {
	Revision int64
	Delete   bool
	KV       KeyValue
}

// Watch follows changes to [key, end) from fromRev (0: now), calling fn for
// each revision's events in order until ctx ends or fn returns an error.
func (c *Client) Watch(ctx context.Context, key, end []byte, fromRev int64, fn func([]WatchEvent) error) error {
	next := fromRev
	for {
		args := WatchPollArgs{Key: key, End: end, FromRev: next, Wait: 10 * time.Second}
		var reply WatchPollReply
		if err := c.call(ctx, "WatchPoll", args, &reply); err != nil {
			return err
		}
		if err := reply.Err.err("watch"); err != nil {
			if reply.Compact > 0 {
				return &CompactedError{Requested: next, Oldest: reply.Compact}
			}
			return err
		}
		for _, raw := range reply.Changes {
			r, err := command.DecodeResponse(raw)
			if err != nil {
				return fmt.Errorf("watch: bad reply from %s: %w", c.addr, err)
			}
			evs := make([]WatchEvent, 0, len(r.Results))
			for _, res := range r.Results {
				if len(res.KVs) == 1 {
					evs = append(evs, WatchEvent{Revision: r.Revision, Delete: res.Deleted == 1, KV: res.KVs[0]})
				}
			}
			if err := fn(evs); err != nil {
				return err
			}
		}
		next = reply.Revision + 1
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// TransferLeadership asks the cluster to move leadership to the member id
// (empty: the most up-to-date follower).
func (c *Client) TransferLeadership(ctx context.Context, id string) error {
	var reply MembershipReply
	if err := c.call(ctx, "Membership", MembershipArgs{Op: "transfer", ID: id, Deadline: deadline(ctx)}, &reply); err != nil {
		return err
	}
	return reply.Err.err("transfer leadership")
}

// Call invokes another service registered on the member RPC (e.g.
// "Cluster.Members").
func (c *Client) Call(ctx context.Context, method string, args, reply any) error {
	call := c.rpc.Go(method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		return call.Error
	case <-ctx.Done():
		return ctx.Err()
	}
}
