package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Connection kinds, the first byte a dialer writes.
const (
	kindRaft  byte = 'R'
	kindStore byte = 'S'
)

// TCPConfig configures a TCP transport.
type TCPConfig struct {
	// Bind is the address to listen on, e.g. "127.0.0.1:7000".
	Bind string
	// Advertise is the address peers use; defaults to the bound address.
	Advertise string
	// MaxPool is how many idle Raft connections to keep per peer.
	MaxPool int
	// Timeout bounds Raft RPC I/O.
	Timeout time.Duration
	// TLS, when set, wraps every member connection (both directions need
	// certificates: use a mutual TLS config). Nil is plaintext.
	TLS    *tls.Config
	Logger *slog.Logger
}

// TCP is a Transport over one TCP port.
type TCP struct {
	ln        net.Listener
	advertise net.Addr
	raftLn    *chanListener
	storeLn   *chanListener
	raft      *raft.NetworkTransport
	tls       *tls.Config
	log       *slog.Logger

	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewTCP listens on cfg.Bind and starts routing accepted connections.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	if cfg.MaxPool == 0 {
		cfg.MaxPool = 5
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("listen for members on %s: %w", cfg.Bind, err)
	}
	adv := ln.Addr()
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("resolve advertise address %q: %w", cfg.Advertise, err)
		}
		adv = a
	} else if ta := adv.(*net.TCPAddr); ta.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("bind address %s is unspecified: set an advertise address peers can reach", cfg.Bind)
	}
	t := &TCP{
		ln:        ln,
		advertise: adv,
		raftLn:    newChanListener(adv),
		storeLn:   newChanListener(adv),
		tls:       cfg.TLS,
		log:       cfg.Logger,
	}
	stream := &raftStream{t: t}
	t.raft = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: cfg.MaxPool,
		Timeout: cfg.Timeout,
		Logger:  hclog.NewNullLogger(),
	})
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			return // closed
		}
		t.wg.Add(1)
		go t.route(conn)
	}
}

// route reads the kind byte with a deadline so a silent peer cannot pin a
// goroutine, then hands the connection to the right listener.
func (t *TCP) route(conn net.Conn) {
	defer t.wg.Done()
	var kind [1]byte
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if t.tls != nil {
		tc := tls.Server(conn, t.tls)
		if err := tc.Handshake(); err != nil {
			t.log.Warn("rejecting member connection: TLS handshake failed", "remote", conn.RemoteAddr(), "err", err)
			conn.Close()
			return
		}
		conn = tc
	}
	if _, err := io.ReadFull(conn, kind[:]); err != nil {
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	switch kind[0] {
	case kindRaft:
		t.raftLn.deliver(conn)
	case kindStore:
		t.storeLn.deliver(conn)
	default:
		t.log.Warn("dropping member connection with unknown kind", "remote", conn.RemoteAddr(), "kind", kind[0])
		conn.Close()
	}
}

func dialKind(ctx context.Context, addr string, kind byte, tlsConf *tls.Config) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if tlsConf != nil {
		if tlsConf.ServerName == "" && !tlsConf.InsecureSkipVerify {
			tlsConf = tlsConf.Clone()
			tlsConf.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	if _, err := conn.Write([]byte{kind}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (t *TCP) Raft() raft.Transport          { return t.raft }
func (t *TCP) Listener() net.Listener        { return t.storeLn }
func (t *TCP) LocalAddr() raft.ServerAddress { return raft.ServerAddress(t.advertise.String()) }

func (t *TCP) Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error) {
	conn, err := dialKind(ctx, string(addr), kindStore, t.tls)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	return conn, nil
}

// Close stops accepting and waits for the routing goroutines.
func (t *TCP) Close() error {
	t.closeOnce.Do(func() {
		// NetworkTransport.Close leaves pooled outbound Raft connections
		// open (and the peer's reader blocked on them): close them first.
		t.raft.CloseStreams()
		t.raft.Close()
		t.ln.Close()
		t.raftLn.Close()
		t.storeLn.Close()
	})
	t.wg.Wait()
	return nil
}

// raftStream is the raft.StreamLayer view of the shared port.
type raftStream struct{ t *TCP }

func (s *raftStream) Accept() (net.Conn, error) { return s.t.raftLn.Accept() }
func (s *raftStream) Close() error              { return s.t.raftLn.Close() }
func (s *raftStream) Addr() net.Addr            { return s.t.advertise }
func (s *raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialKind(ctx, string(addr), kindRaft, s.t.tls)
}

// chanListener is a net.Listener fed by another goroutine.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(conn net.Conn) {
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// DialStore opens a store RPC connection to a TCP member, for clients;
// tlsConf is nil for a plaintext (dev) member.
func DialStore(ctx context.Context, addr string, tlsConf *tls.Config) (net.Conn, error) {
	return dialKind(ctx, addr, kindStore, tlsConf)
}
