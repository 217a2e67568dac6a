// Package transport carries the traffic between store members: Raft's own
// RPCs and the store's RPC (write forwarding, read index, status).
//
// Two implementations: TCP, where both kinds share one listening port and
// are told apart by the first byte of each connection, and an in-memory
// network for in-process clusters whose links tests can cut and heal.
package transport

import (
	"context"
	"errors"
	"net"

	"github.com/hashicorp/raft"
)

// Transport is what a store member needs to reach its peers. Store RPC
// addresses are the members' Raft addresses.
type Transport interface {
	// Raft is the transport handed to hashicorp/raft.
	Raft() raft.Transport
	// Listener accepts store RPC connections from peers.
	Listener() net.Listener
	// Dial opens a store RPC connection to the member at addr.
	Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error)
	// LocalAddr is this member's address.
	LocalAddr() raft.ServerAddress
	// Close stops listening and drops connections.
	Close() error
}

// ErrUnreachable is returned when dialing a member the network cannot reach.
var ErrUnreachable = errors.New("transport: member unreachable")

// ErrClosed is returned by a closed listener.
var ErrClosed = errors.New("transport: closed")
