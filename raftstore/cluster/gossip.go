// Package cluster forms drover's masters into one cluster: they find each
// other through hashicorp/memberlist gossip (encrypted with a shared key),
// gossip their identity and addresses, bootstrap Raft once the expected
// number of masters see each other, and the Raft leader keeps the Raft
// configuration in step with gossip (see Manager).
//
// Agents join the same gossip with the agent role to learn the masters'
// addresses; they never become Raft members.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Role is what a gossip member does.
type Role string

const (
	RoleMaster Role = "master"
	RoleAgent  Role = "agent"
)

// Meta is what every member gossips about itself. It must encode within
// memberlist's 512-byte metadata limit.
type Meta struct {
	ID       string `json:"id"`
	Role     Role   `json:"role"`
	RaftAddr string `json:"raft,omitempty"` // member traffic: Raft and store RPC
	APIAddr  string `json:"api,omitempty"`  // client API (etcd v3 gRPC)
	KubeAPI  string `json:"kube,omitempty"` // Kubernetes-compatible API (HTTPS)
	Version  string `json:"v,omitempty"`
	// Expect is the master's --bootstrap-expect; Bootstrapped says it
	// already belongs to a Raft cluster. Both guard bootstrap.
	Expect       int  `json:"expect,omitempty"`
	Bootstrapped bool `json:"boot,omitempty"`
	// View is a hash of the masters this one would bootstrap with; all of
	// them must publish the same view before any bootstraps.
	View string `json:"view,omitempty"`
	// CA is the fingerprint (prefix) of the cluster CA this master uses;
	// part of the view, so a cluster only forms on one CA.
	CA string `json:"ca,omitempty"`
	// Leaving is announced just before a graceful leave, so others tell a
	// departure from a failure (memberlist's own left/dead distinction does
	// not reach its event callbacks).
	Leaving bool `json:"leaving,omitempty"`
}

// State is a member's gossip state.
type State string

const (
	StateAlive   State = "alive"
	StateSuspect State = "suspect"
	StateFailed  State = "failed" // stopped answering
	StateLeft    State = "left"   // left gracefully
)

// Member is one gossip member as this node sees it.
type Member struct {
	Name  string
	Addr  string // gossip host:port
	Meta  Meta
	State State
	// Since is when the member entered its current state.
	Since time.Time
}

// SharedState is a small blob every member merges from the others during
// gossip state exchange (e.g. the cluster CA). Merge must be idempotent.
type SharedState interface {
	Local() []byte
	Merge(remote []byte)
}

// Config configures this node's gossip.
type Config struct {
	// Name is the unique gossip name; drover uses the member ID.
	Name string
	// Bind is host:port for gossip (TCP and UDP); Advertise what others use.
	Bind      string
	Advertise string
	// SecretKey encrypts gossip (AES, 16, 24 or 32 bytes); nil is plaintext.
	SecretKey []byte
	Meta      Meta
	Shared    SharedState
	// Local tunes failure detection for one machine (tests, labs on
	// loopback); the default is memberlist's LAN profile.
	Local  bool
	Logger *slog.Logger
}

// Gossip is this node's membership in the gossip pool.
type Gossip struct {
	ml   *memberlist.Memberlist
	log  *slog.Logger
	cfg  Config
	addr string // advertised gossip address, fixed at start

	mu      sync.Mutex
	meta    Meta
	members map[string]*Member
	notify  chan struct{}
}

// Start creates the gossip node; call Join to meet others.
func Start(cfg Config) (*Gossip, error) {
	if cfg.Name == "" {
		return nil, errors.New("gossip: Name is required")
	}
	if n := len(cfg.SecretKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("gossip: encryption key must be 16, 24 or 32 bytes, got %d", n)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Gossip{log: logger, cfg: cfg, meta: cfg.Meta, members: map[string]*Member{}, notify: make(chan struct{}, 1)}
	if b, err := json.Marshal(cfg.Meta); err != nil || len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip: member metadata is %d bytes, over memberlist's %d", len(b), memberlist.MetaMaxSize)
	}

	mc := memberlist.DefaultLANConfig()
	if cfg.Local {
		mc = memberlist.DefaultLocalConfig()
	}
	mc.Name = cfg.Name
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("gossip bind address %q: %w", cfg.Bind, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("gossip advertise address %q: %w", cfg.Advertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	} else if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		mc.AdvertiseAddr = host
	}
	// A master restarted on a new IP address keeps its name; let it reclaim
	// the name once the old address has been declared dead.
	mc.DeadNodeReclaimTime = 10 * time.Second
	if cfg.Local {
		mc.DeadNodeReclaimTime = time.Second
	}
	mc.SecretKey = cfg.SecretKey
	mc.GossipVerifyIncoming = len(cfg.SecretKey) > 0
	mc.GossipVerifyOutgoing = len(cfg.SecretKey) > 0
	mc.Delegate = (*delegate)(g)
	mc.Events = (*events)(g)
	mc.Logger = slog.NewLogLogger(logger.With("component", "gossip").Handler(), slog.LevelDebug)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.Bind, err)
	}
	g.ml = ml
	n := ml.LocalNode()
	g.addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	return g, nil
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}

// Join contacts the given gossip addresses (host or host:port) and returns
// how many answered.
func (g *Gossip) Join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	n, err := g.ml.Join(addrs)
	if n == 0 && err != nil {
		return 0, fmt.Errorf("join gossip via %v: %w", addrs, err)
	}
	return n, nil
}

// LocalAddr is this node's advertised gossip address.
func (g *Gossip) LocalAddr() string { return g.addr }

// Members returns every member seen, including failed and left ones, by name.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Changed is signalled (coalesced) whenever membership or metadata changes.
func (g *Gossip) Changed() <-chan struct{} { return g.notify }

// UpdateMeta changes this node's metadata through fn and gossips it, if
// fn changed anything.
func (g *Gossip) UpdateMeta(fn func(*Meta)) error {
	g.mu.Lock()
	before := g.meta
	fn(&g.meta)
	changed := g.meta != before
	g.mu.Unlock()
	if !changed {
		return nil
	}
	return g.ml.UpdateNode(5 * time.Second)
}

// LocalMeta is this node's current metadata.
func (g *Gossip) LocalMeta() Meta {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.meta
}

// Leave announces a graceful departure, then stops.
func (g *Gossip) Leave(timeout time.Duration) error {
	if err := g.UpdateMeta(func(m *Meta) { m.Leaving = true }); err != nil {
		g.log.Warn("announcing the leave failed; others may see a failure instead", "err", err)
	}
	err := g.ml.Leave(timeout)
	if serr := g.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops gossip without announcing anything (others see a failure).
func (g *Gossip) Shutdown() error { return g.ml.Shutdown() }

func (g *Gossip) signal() {
	select {
	case g.notify <- struct{}{}:
	default:
	}
}

func (g *Gossip) record(n *memberlist.Node, st State) {
	var meta Meta
	if len(n.Meta) > 0 {
		if err := json.Unmarshal(n.Meta, &meta); err != nil {
			g.log.Warn("ignoring gossip member with unreadable metadata", "name", n.Name, "err", err)
			return
		}
	}
	g.mu.Lock()
	m, ok := g.members[n.Name]
	if !ok {
		m = &Member{Name: n.Name}
		g.members[n.Name] = m
	}
	if m.State != st || !ok {
		m.Since = time.Now()
		g.log.Info("gossip member changed state", "name", n.Name, "state", st, "role", meta.Role, "addr", net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))))
	}
	m.Addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.Meta, m.State = meta, st
	g.mu.Unlock()
	g.signal()
}

// events implements memberlist.EventDelegate.
type events Gossip

func (e *events) NotifyJoin(n *memberlist.Node)   { (*Gossip)(e).record(n, StateAlive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Gossip)(e).record(n, StateAlive) }
func (e *events) NotifyLeave(n *memberlist.Node) {
	st := StateFailed
	var meta Meta
	if n.State == memberlist.StateLeft || json.Unmarshal(n.Meta, &meta) == nil && meta.Leaving {
		st = StateLeft
	}
	(*Gossip)(e).record(n, st)
}

// delegate implements memberlist.Delegate.
type delegate Gossip

func (d *delegate) NodeMeta(limit int) []byte {
	g := (*Gossip)(d)
	b, _ := json.Marshal(g.LocalMeta())
	if len(b) > limit {
		g.log.Error("member metadata over the gossip limit; sending none", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg([]byte)                {}
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }

func (d *delegate) LocalState(join bool) []byte {
	if d.cfg.Shared == nil {
		return nil
	}
	return d.cfg.Shared.Local()
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if d.cfg.Shared != nil && len(buf) > 0 {
		d.cfg.Shared.Merge(buf)
	}
}
