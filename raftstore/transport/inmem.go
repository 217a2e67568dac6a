package transport

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Network is an in-memory network of members: Raft over raft's
// InmemTransport and the store RPC over in-memory pipes. Links can be cut and
// healed, which is how in-process tests partition a cluster.
type Network struct {
	mu      sync.Mutex
	members map[raft.ServerAddress]*Inmem
	known   map[raft.ServerAddress]bool // every address ever joined, up or down
	cut     map[[2]raft.ServerAddress]bool
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{members: map[raft.ServerAddress]*Inmem{}, known: map[raft.ServerAddress]bool{}, cut: map[[2]raft.ServerAddress]bool{}}
}

// Inmem is one member's Transport on a Network.
type Inmem struct {
	net   *Network
	addr  raft.ServerAddress
	raft  *raft.InmemTransport
	ln    *chanListener
	mu    sync.Mutex
	conns map[net.Conn]raft.ServerAddress // open store RPC conns, by peer
}

type inmemAddr raft.ServerAddress

func (a inmemAddr) Network() string { return "inmem" }
func (a inmemAddr) String() string  { return string(a) }

// Join adds (or re-adds, after a restart) a member at addr.
func (n *Network) Join(addr raft.ServerAddress) *Inmem {
	_, rt := raft.NewInmemTransportWithTimeout(addr, 2*time.Second)
	m := &Inmem{net: n, addr: addr, raft: rt, ln: newChanListener(inmemAddr(addr)), conns: map[net.Conn]raft.ServerAddress{}}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members[addr] = m
	n.known[addr] = true
	for peer, other := range n.members {
		if peer == addr || n.cut[pair(addr, peer)] {
			continue
		}
		m.raft.Connect(peer, other.raft)
		other.raft.Connect(addr, m.raft)
	}
	return m
}

func pair(a, b raft.ServerAddress) [2]raft.ServerAddress {
	if a > b {
		a, b = b, a
	}
	return [2]raft.ServerAddress{a, b}
}

// Partition cuts every link between members in different groups and heals
// the links inside each group. Members not named are cut off from everyone.
func (n *Network) Partition(groups ...[]raft.ServerAddress) {
	side := map[raft.ServerAddress]int{}
	for i, g := range groups {
		for _, a := range g {
			side[a] = i + 1
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// Members that are down get the same links when they come back.
	for a := range n.known {
		for b := range n.known {
			if a >= b {
				continue
			}
			same := side[a] != 0 && side[a] == side[b]
			n.setLinkLocked(a, b, same)
		}
	}
}

// Heal restores every link, including those of members that are down.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for a := range n.known {
		for b := range n.known {
			if a < b {
				n.setLinkLocked(a, b, true)
			}
		}
	}
}

// Isolate cuts one member off from all others.
func (n *Network) Isolate(addr raft.ServerAddress) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for b := range n.known {
		if b != addr {
			n.setLinkLocked(addr, b, false)
		}
	}
}

// setLinkLocked records the link's state and applies it to the members
// that are up.
func (n *Network) setLinkLocked(a, b raft.ServerAddress, up bool) {
	if up {
		delete(n.cut, pair(a, b))
	} else {
		n.cut[pair(a, b)] = true
	}
	ma, mb := n.members[a], n.members[b]
	if ma == nil || mb == nil {
		return
	}
	if up {
		ma.raft.Connect(b, mb.raft)
		mb.raft.Connect(a, ma.raft)
		return
	}
	ma.raft.Disconnect(b)
	mb.raft.Disconnect(a)
	ma.dropConns(b)
	mb.dropConns(a)
}

func (m *Inmem) dropConns(peer raft.ServerAddress) {
	var doomed []net.Conn
	m.mu.Lock()
	for c, p := range m.conns {
		if p == peer {
			doomed = append(doomed, c)
		}
	}
	m.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

func (m *Inmem) track(c net.Conn, peer raft.ServerAddress) net.Conn {
	tc := &trackedConn{Conn: c, owner: m}
	m.mu.Lock()
	m.conns[tc] = peer
	m.mu.Unlock()
	return tc
}

// trackedConn forgets itself when closed, so the member's set of open
// connections (kept to cut them on partition) does not grow forever.
type trackedConn struct {
	net.Conn
	owner *Inmem
}

func (c *trackedConn) Close() error {
	c.owner.mu.Lock()
	delete(c.owner.conns, c)
	c.owner.mu.Unlock()
	return c.Conn.Close()
}

func (m *Inmem) Raft() raft.Transport          { return m.raft }
func (m *Inmem) Listener() net.Listener        { return m.ln }
func (m *Inmem) LocalAddr() raft.ServerAddress { return m.addr }

// Dial connects to a member's store RPC listener through a pipe, unless the
// link is cut.
func (m *Inmem) Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error) {
	n := m.net
	n.mu.Lock()
	peer, ok := n.members[addr]
	cut := n.cut[pair(m.addr, addr)]
	n.mu.Unlock()
	if !ok || cut {
		return nil, fmt.Errorf("%w: %s", ErrUnreachable, addr)
	}
	client, server := net.Pipe()
	client = m.track(client, addr)
	server = peer.track(server, m.addr)
	select {
	case peer.ln.conns <- server:
		return client, nil
	case <-peer.ln.done:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	return nil, fmt.Errorf("%w: %s", ErrUnreachable, addr)
}

// Close leaves the network: links to it drop and its listener closes.
func (m *Inmem) Close() error {
	n := m.net
	n.mu.Lock()
	if n.members[m.addr] == m {
		delete(n.members, m.addr)
	}
	for _, other := range n.members {
		other.raft.Disconnect(m.addr)
		other.dropConns(m.addr)
	}
	n.mu.Unlock()
	m.raft.Close()
	m.ln.Close()
	var doomed []net.Conn
	m.mu.Lock()
	for c := range m.conns {
		doomed = append(doomed, c)
	}
	m.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
	return nil
}
