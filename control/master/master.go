// Package master runs one drover master: the replicated store (raftstore)
// over a TLS member transport, gossip with the other masters (memberlist),
// the manager that keeps Raft membership in step with gossip, and the
// store's etcd v3 API. Start wires them in order; Close undoes it in the
// reverse order.
package master

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver"
	"github.com/droverhq/drover/control/leader"
	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/cluster"
	"github.com/droverhq/drover/raftstore/etcdapi"
	"github.com/droverhq/drover/raftstore/pki"
	"github.com/droverhq/drover/raftstore/transport"
)

// Default ports.
const (
	DefaultMemberPort = 7380 // Raft and member RPC
	DefaultAPIPort    = 7379 // etcd v3 API
	DefaultGossipPort = 7946 // memberlist
)

// Config configures a master.
type Config struct {
	ID      string
	DataDir string
	// Member is the Raft/member RPC address (host:port); API the etcd v3
	// API address; Gossip the memberlist address. Advertise* override what
	// others are told.
	Member, API, Gossip                            string
	AdvertiseMember, AdvertiseAPI, AdvertiseGossip string
	// Join lists gossip addresses of existing masters.
	Join []string
	// BootstrapExpect is the number of masters that bootstrap a new cluster.
	BootstrapExpect int
	// EncryptKey is the gossip key (base64 of 16/24/32 bytes). Empty: read
	// DataDir/gossip.key, or generate one there on the very first start.
	EncryptKey string
	// CACert/CAKey name PEM files of an operator-provided cluster CA.
	CACert, CAKey string
	// Insecure runs plaintext without gossip encryption (dev mode only; it
	// is refused on non-loopback addresses).
	Insecure bool
	// Local tunes gossip failure detection for one machine.
	Local bool

	// KubeAPI is the Kubernetes-compatible API address (host:port; empty:
	// not served); AdvertiseKubeAPI overrides what clients are told.
	KubeAPI, AdvertiseKubeAPI string
	// ServiceCIDR, NodePortRange: where Services get addresses (defaults
	// 10.96.0.0/12 and 30000-32767). MaxRequestBytes caps API request
	// bodies (default 3 MiB).
	ServiceCIDR, NodePortRange string
	MaxRequestBytes            int64
	// ClusterCIDR is split into one pod subnet (NodeCIDRMaskSize) per node.
	ClusterCIDR      string
	NodeCIDRMaskSize int

	// LeaderWork lists the control plane's leader-only components (the
	// scheduler, controllers), built for each term this master leads with a
	// client of its own Kubernetes API; they run until the term ends.
	LeaderWork func(c *client.Client) []leader.Work

	DeadServerTimeout time.Duration
	Store             raftstore.Config // timings, limits; ID/Dir/Transport are set here
	Version           string
	Logger            *slog.Logger
}

// Master is a running master.
type Master struct {
	cfg         Config
	log         *slog.Logger
	Store       *raftstore.Store
	Gossip      *cluster.Gossip
	API         *apiserver.Server
	kubeAddr    string
	devKubeCA   *pki.CA          // dev mode: the local CA of the Kubernetes API
	devNodeCert *tls.Certificate // dev mode: this master's certificate for agents
	tls         *pki.Dynamic
	caX         *cluster.CAExchange
	secret      []byte     // the masters' secret (--encrypt): gossip and CA-exchange keys derive from it
	caMu        sync.Mutex // serializes TLS identity changes
	grpc        *grpc.Server
	apiLn       net.Listener
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	closeMu     sync.Mutex
	closed      bool
	KeyNote     string // set when a gossip key was generated: how to pass it on
	PKIDir      string
	apiAddr     string
	gossAddr    string
}

func isLoopback(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Start brings a master up. On error everything started is stopped.
func Start(cfg Config) (*Master, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ID == "" || cfg.DataDir == "" || cfg.Member == "" || cfg.API == "" || cfg.Gossip == "" {
		return nil, errors.New("master: ID, DataDir and the member, API and gossip addresses are required")
	}
	if cfg.Insecure {
		for _, a := range []string{cfg.Member, cfg.API, cfg.Gossip} {
			if !isLoopback(a) {
				return nil, fmt.Errorf("plaintext (dev) mode only listens on loopback; %s is not a loopback address", a)
			}
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	m := &Master{cfg: cfg, log: cfg.Logger, PKIDir: filepath.Join(cfg.DataDir, "pki"), tls: &pki.Dynamic{}}
	ok := false
	defer func() {
		if !ok {
			m.Close(false)
		}
	}()

	var secret []byte
	if !cfg.Insecure {
		var err error
		if m.secret, err = m.gossipKey(); err != nil {
			return nil, err
		}
		secret = GossipKey(m.secret)
		if err := m.setupCA(); err != nil {
			return nil, err
		}
	}

	// Member transport and store.
	var tlsConf *tls.Config
	if !cfg.Insecure {
		tlsConf = m.tls.MutualTLS()
	}
	tr, err := transport.NewTCP(transport.TCPConfig{Bind: cfg.Member, Advertise: cfg.AdvertiseMember, TLS: tlsConf, Logger: m.log})
	if err != nil {
		return nil, err
	}
	sc := cfg.Store
	sc.ID, sc.Dir, sc.Transport, sc.Logger = cfg.ID, cfg.DataDir, tr, m.log
	if m.Store, err = raftstore.Open(sc); err != nil {
		tr.Close()
		return nil, err
	}
	if m.Store.HasState() {
		// Already a member (e.g. restored from a backup): the CA in use is
		// the cluster's.
		if err := m.commitCA(); err != nil {
			return nil, err
		}
	}

	// etcd v3 API.
	if m.apiLn, err = net.Listen("tcp", cfg.API); err != nil {
		return nil, fmt.Errorf("listen for the store API on %s: %w", cfg.API, err)
	}
	m.apiAddr = firstNonEmpty(cfg.AdvertiseAPI, m.apiLn.Addr().String())
	var opts []grpc.ServerOption
	if !cfg.Insecure {
		opts = append(opts, grpc.Creds(credentials.NewTLS(m.tls.MutualTLS())))
	}
	m.grpc = grpc.NewServer(opts...)
	etcdapi.New(etcdapi.Config{Store: m.Store, Directory: (*directory)(m), Version: "3.5.0", Logger: m.log}).Register(m.grpc)
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.grpc.Serve(m.apiLn) }()

	// Gossip and the membership manager.
	meta := cluster.Meta{ID: cfg.ID, Role: cluster.RoleMaster, RaftAddr: string(tr.LocalAddr()), APIAddr: m.apiAddr,
		Version: cfg.Version, Expect: cfg.BootstrapExpect, Bootstrapped: m.Store.HasState()}
	if ca, _ := m.tls.Current(); ca != nil {
		meta.CA = ca.Fingerprint()[:16]
	}
	var shared cluster.SharedState
	if m.caX != nil {
		shared = m.caX
	}
	m.Gossip, err = cluster.Start(cluster.Config{Name: cfg.ID, Bind: cfg.Gossip, Advertise: cfg.AdvertiseGossip, SecretKey: secret,
		Meta: meta, Shared: shared, Local: cfg.Local, Logger: m.log})
	if err != nil {
		return nil, err
	}
	m.gossAddr = m.Gossip.LocalAddr()
	if err := m.Store.RegisterRPC("Cluster", &clusterRPC{m: m}); err != nil {
		return nil, fmt.Errorf("register cluster rpc: %w", err)
	}
	join := cfg.Join
	if len(join) == 0 {
		join = m.loadPeers() // rejoin after a restart without --join
	}
	if len(join) > 0 {
		if n, err := m.Gossip.Join(join); err != nil {
			m.log.Warn("could not reach any master to join yet; will keep trying", "join", strings.Join(join, ","), "err", err)
		} else {
			m.log.Info("joined gossip", "reached", n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.startKubeAPI(ctx); err != nil {
		return nil, err
	}
	if m.kubeAddr != "" {
		m.Gossip.UpdateMeta(func(meta *cluster.Meta) { meta.KubeAPI = m.kubeAddr })
	}
	if cfg.LeaderWork != nil && m.kubeAddr != "" {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			leader.Run(ctx, m.Store, 100*time.Millisecond, m.log, leader.Work{Name: "control plane", Run: m.runLeaderWork})
		}()
	}
	if !cfg.Insecure && m.Store.HasState() {
		if ca, _ := m.tls.Current(); ca != nil {
			if err := m.writeKubeconfig(ca); err != nil {
				return nil, fmt.Errorf("write kubeconfig: %w", err)
			}
		}
	}
	mgr := cluster.NewManager(m.Gossip, m.Store, cluster.ManagerConfig{
		BootstrapExpect:   cfg.BootstrapExpect,
		DeadServerTimeout: cfg.DeadServerTimeout,
		BeforeBootstrap:   m.commitAgreedCA,
		Logger:            m.log,
	})
	m.wg.Add(2)
	go func() { defer m.wg.Done(); mgr.Run(ctx) }()
	go func() { defer m.wg.Done(); m.maintain(ctx, join) }()
	ok = true
	return m, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// GossipKey is the gossip encryption key derived from the masters' secret.
// Agents get it (in their join token) to join gossip; they cannot derive
// the CA-exchange key from it.
func GossipKey(secret []byte) []byte { return deriveKey(secret, "drover gossip key v1") }

func deriveKey(secret []byte, label string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(label))
	return h.Sum(nil)
}

// gossipKey returns the masters' secret: the configured one (--encrypt),
// the one saved in the data dir, or a new one (saved, and noted for the
// operator).
func (m *Master) gossipKey() ([]byte, error) {
	path := filepath.Join(m.cfg.DataDir, "gossip.key")
	enc := m.cfg.EncryptKey
	if enc == "" {
		if b, err := os.ReadFile(path); err == nil {
			enc = strings.TrimSpace(string(b))
		}
	}
	if enc == "" {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		enc = base64.StdEncoding.EncodeToString(k)
		m.KeyNote = enc
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
		return nil, fmt.Errorf("--encrypt: want base64 of 16, 24 or 32 bytes (generate one with: drover keygen)")
	}
	if err := pki.WriteFile(m.cfg.DataDir, "gossip.key", []byte(enc+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save gossip key: %w", err)
	}
	return key, nil
}

// setupCA picks this master's candidate CA: committed in the data dir,
// given by flags (committed too), or fresh (to be settled over gossip).
func (m *Master) setupCA() error {
	var ca *pki.CA
	committed := false
	switch {
	case m.cfg.CACert != "" || m.cfg.CAKey != "":
		c, err1 := os.ReadFile(m.cfg.CACert)
		k, err2 := os.ReadFile(m.cfg.CAKey)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("--ca-cert/--ca-key: %w", err)
		}
		var err error
		if ca, err = pki.ParseCA(c, k); err != nil {
			return err
		}
		committed = true
	default:
		var err error
		ca, err = pki.LoadCA(m.PKIDir)
		switch {
		case err == nil:
			committed = true
		case errors.Is(err, os.ErrNotExist):
			if ca, err = pki.NewCA("drover cluster CA"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("load cluster CA from %s: %w", m.PKIDir, err)
		}
	}
	if err := m.useCA(ca); err != nil {
		return err
	}
	// The maintain loop publishes the CA in use in gossip meta; this
	// callback runs inside gossip's state exchange, so it only installs it.
	var err error
	m.caX, err = cluster.NewCAExchange(ca, committed, deriveKey(m.secret, "drover CA exchange key v1"), func(*pki.CA) { m.syncTLS() }, m.log)
	if err != nil {
		return err
	}
	if committed {
		return m.saveCA(ca)
	}
	return nil
}

// syncTLS makes the TLS identity follow the exchange's current CA.
// Callbacks from concurrent gossip exchanges may arrive out of order, so it
// always installs the current one, never the one a callback names.
func (m *Master) syncTLS() {
	m.caMu.Lock()
	defer m.caMu.Unlock()
	ca, _ := m.caX.Current()
	if cur, _ := m.tls.Current(); cur != nil && cur.Fingerprint() == ca.Fingerprint() {
		return
	}
	if err := m.useCA(ca); err != nil {
		m.log.Error("switching to the cluster CA failed", "err", err)
	}
}

// useCA issues this master's certificate from ca and installs both.
func (m *Master) useCA(ca *pki.CA) error {
	hosts := []string{m.cfg.ID, "localhost", "127.0.0.1", "::1"}
	for _, a := range []string{m.cfg.Member, m.cfg.API, m.cfg.AdvertiseMember, m.cfg.AdvertiseAPI, m.cfg.KubeAPI, m.cfg.AdvertiseKubeAPI} {
		if h, _, err := net.SplitHostPort(a); err == nil {
			hosts = append(hosts, h)
		}
	}
	cert, _, _, err := ca.Issue(m.cfg.ID, hosts, "drover:masters")
	if err != nil {
		return err
	}
	m.tls.Set(ca, cert)
	return nil
}

// saveCA writes the committed CA and an admin client certificate into the
// data dir's pki folder, for the CLI and etcdctl.
func (m *Master) saveCA(ca *pki.CA) error {
	if err := ca.Save(m.PKIDir); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(m.PKIDir, "admin.crt")); err == nil {
		if old, err := pki.LoadCA(m.PKIDir); err == nil && old.Fingerprint() == ca.Fingerprint() {
			return nil
		}
	}
	_, certPEM, keyPEM, err := ca.Issue("admin", nil, "drover:admins")
	if err != nil {
		return err
	}
	if err := pki.WriteFile(m.PKIDir, "admin.crt", certPEM, 0o644); err != nil {
		return err
	}
	return pki.WriteFile(m.PKIDir, "admin.key", keyPEM, 0o600)
}

// commitAgreedCA runs just before bootstrap: the CA every master agreed on
// must be the one in use here, and becomes the cluster's for good.
func (m *Master) commitAgreedCA(agreed string) error {
	if m.caX == nil {
		return nil
	}
	if ca, _ := m.caX.Current(); ca.Fingerprint()[:16] != agreed {
		return fmt.Errorf("the agreed CA %s is not the one in use here (%s) yet", agreed, ca.Fingerprint()[:16])
	}
	return m.commitCA()
}

// commitCA runs when this master finds itself in a cluster: the CA in use
// becomes the cluster's for good.
func (m *Master) commitCA() error {
	if m.caX == nil {
		return nil
	}
	ca := m.caX.Commit()
	m.syncTLS()
	if err := m.saveCA(ca); err != nil {
		return err
	}
	return m.writeKubeconfig(ca)
}

// maintain keeps trying to join while alone, commits the CA once this
// master is part of a cluster, and remembers gossip peers for restarts.
func (m *Master) maintain(ctx context.Context, join []string) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	committed := false
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.caX != nil {
			m.syncTLS()
			ca, _ := m.caX.Current()
			fp := ca.Fingerprint()[:16]
			m.Gossip.UpdateMeta(func(meta *cluster.Meta) { meta.CA = fp })
		}
		members := m.Gossip.Members()
		alive := 0
		var peers []string
		for _, mem := range members {
			if mem.State == cluster.StateAlive && mem.Name != m.cfg.ID {
				alive++
				if mem.Meta.Role == cluster.RoleMaster {
					peers = append(peers, mem.Addr)
				}
			}
		}
		// Re-join now and then even when connected: a master that came back
		// on a new address is only accepted once its old one is declared
		// dead, and a fresh exchange gets it known sooner.
		// Before bootstrap, exchange state with every master each tick so
		// all settle on one CA quickly (gossip alone syncs state every 30s).
		if !m.Store.HasState() {
			var addrs []string
			for _, mem := range members {
				if mem.State == cluster.StateAlive && mem.Meta.Role == cluster.RoleMaster && mem.Name != m.cfg.ID {
					addrs = append(addrs, mem.Addr)
				}
			}
			if len(addrs) > 0 {
				m.Gossip.Join(addrs)
			}
		}
		if again := append(append([]string(nil), join...), m.loadPeers()...); len(again) > 0 && (alive == 0 || tick%20 == 0) {
			m.Gossip.Join(again)
		}
		if len(peers) > 0 {
			m.savePeers(peers)
		}
		if !committed && m.Store.HasState() {
			if err := m.commitCA(); err != nil {
				m.log.Error("saving the cluster CA failed", "err", err)
			} else {
				committed = true
			}
		}
	}
}

func (m *Master) loadPeers() []string {
	b, err := os.ReadFile(filepath.Join(m.cfg.DataDir, "gossip-peers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func (m *Master) savePeers(peers []string) {
	pki.WriteFile(m.cfg.DataDir, "gossip-peers", []byte(strings.Join(peers, "\n")+"\n"), 0o600)
}

// APIAddr is the etcd v3 API address; GossipAddr the gossip address.
func (m *Master) APIAddr() string    { return m.apiAddr }
func (m *Master) GossipAddr() string { return m.gossAddr }

// Close stops the master. With leave, it first tells the cluster it is
// leaving (the leader removes it from Raft at once) and hands off
// leadership; without, it simply stops, as a crash would look.
func (m *Master) Close(leave bool) error {
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	// Order: stop taking API traffic, stop the manager, hand off
	// leadership, leave gossip, close the store (Raft, transport, log).
	if m.grpc != nil {
		m.grpc.Stop()
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if leave && m.Store != nil && m.Store.IsLeader() && m.voters() > 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.Store.TransferLeadership(ctx, ""); err != nil {
			m.log.Warn("leadership transfer before leaving failed", "err", err)
		}
		cancel()
	}
	if m.Gossip != nil {
		if leave {
			m.Gossip.Leave(5 * time.Second)
		} else {
			m.Gossip.Shutdown()
		}
	}
	if m.Store != nil {
		return m.Store.Close()
	}
	return nil
}

func (m *Master) voters() int {
	conf, _ := m.Store.Configuration()
	n := 0
	for _, s := range conf {
		if s.Voter {
			n++
		}
	}
	return n
}

// directory answers the etcd API's MemberList client URLs from gossip.
type directory Master

func (d *directory) ClientURLs(id string) []string {
	scheme := "https"
	if d.cfg.Insecure {
		scheme = "http"
	}
	for _, mem := range d.Gossip.Members() {
		if mem.Meta.ID == id && mem.Meta.APIAddr != "" {
			return []string{scheme + "://" + mem.Meta.APIAddr}
		}
	}
	return nil
}

// clusterRPC serves gossip membership to the CLI over the member RPC.
type clusterRPC struct{ m *Master }

// MembersArgs is empty.
type MembersArgs struct{}

// MemberInfo is one gossip member with its Raft standing.
type MemberInfo struct {
	Name, Addr, State, Role, RaftAddr, APIAddr, Version string
	Since                                               time.Time
	RaftRole                                            string // Leader, Follower, Voter (not answering), -
}

// Members lists gossip members joined with the Raft configuration.
func (c *clusterRPC) Members(args MembersArgs, reply *[]MemberInfo) error {
	conf, _ := c.m.Store.Configuration()
	inConf := map[string]bool{}
	for _, s := range conf {
		inConf[s.ID] = s.Voter
	}
	leaderID, _ := c.m.Store.Leader()
	for _, mem := range c.m.Gossip.Members() {
		mi := MemberInfo{Name: mem.Name, Addr: mem.Addr, State: string(mem.State), Role: string(mem.Meta.Role),
			RaftAddr: mem.Meta.RaftAddr, APIAddr: mem.Meta.APIAddr, Version: mem.Meta.Version, Since: mem.Since, RaftRole: "-"}
		if voter, ok := inConf[mem.Meta.ID]; ok {
			switch {
			case mem.Meta.ID == leaderID:
				mi.RaftRole = "leader"
			case voter:
				mi.RaftRole = "voter"
			default:
				mi.RaftRole = "non-voter"
			}
		}
		*reply = append(*reply, mi)
	}
	return nil
}
