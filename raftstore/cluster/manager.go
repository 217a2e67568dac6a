package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/droverhq/drover/raftstore"
)

// Store is what the manager needs from the local store member.
type Store interface {
	LocalID() string
	IsLeader() bool
	HasState() bool
	Bootstrap([]raftstore.Server) error
	Configuration() ([]raftstore.ServerInfo, error)
	AddVoter(ctx context.Context, id, addr string) error
	RemoveServer(ctx context.Context, id string) error
}

// ManagerConfig tunes the manager. Zero values take the defaults.
type ManagerConfig struct {
	// BootstrapExpect is how many masters must see each other before they
	// bootstrap a new cluster; 0 never bootstraps (join an existing one).
	BootstrapExpect int
	// DeadServerTimeout is how long a master must have failed before the
	// leader removes it from Raft (only while quorum stays safe). Default 5m.
	DeadServerTimeout time.Duration
	// Interval is how often the manager reconciles without a gossip
	// event. Default 2s.
	Interval time.Duration
	// BeforeBootstrap runs just before this master bootstraps the cluster,
	// with the CA fingerprint every master agreed on (e.g. to commit that
	// CA); an error stops this attempt.
	BeforeBootstrap func(agreedCA string) error
	Logger          *slog.Logger
}

// Manager keeps Raft membership in step with gossip: it bootstraps the
// cluster once the expected masters agree on who they are, and on the
// leader it adds live masters as voters, removes masters that left, and
// removes masters that stayed dead past DeadServerTimeout.
type Manager struct {
	g     *Gossip
	store Store
	cfg   ManagerConfig
	log   *slog.Logger
}

// NewManager returns a manager; Run drives it.
func NewManager(g *Gossip, s Store, cfg ManagerConfig) *Manager {
	if cfg.DeadServerTimeout == 0 {
		cfg.DeadServerTimeout = 5 * time.Minute
	}
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{g: g, store: s, cfg: cfg, log: cfg.Logger}
}

// Run reconciles until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.g.Changed():
		case <-t.C:
		}
	}
}

func (m *Manager) step(ctx context.Context) {
	if !m.store.HasState() {
		m.tryBootstrap()
		return
	}
	if err := m.g.UpdateMeta(func(meta *Meta) { meta.Bootstrapped, meta.View = true, "" }); err != nil {
		m.log.Warn("gossip metadata update failed", "err", err)
	}
	if m.store.IsLeader() {
		m.reconcile(ctx)
	}
}

// aliveMasters returns the live masters in gossip, sorted by ID.
func (m *Manager) aliveMasters() []Member {
	var out []Member
	for _, mem := range m.g.Members() {
		if mem.Meta.Role == RoleMaster && mem.State == StateAlive && mem.Meta.ID != "" && mem.Meta.RaftAddr != "" {
			out = append(out, mem)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.ID < out[j].Meta.ID })
	return out
}

func anyBootstrapped(masters []Member) bool {
	for _, mem := range masters {
		if mem.Meta.Bootstrapped {
			return true
		}
	}
	return false
}

func viewOf(masters []Member) string {
	h := sha256.New()
	for _, mem := range masters {
		h.Write([]byte(mem.Meta.ID + "=" + mem.Meta.RaftAddr + "/" + mem.Meta.CA + ";"))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// tryBootstrap bootstraps only when exactly BootstrapExpect live masters,
// none already in a cluster and all expecting the same number, each gossip
// the same view of who they are. Every one of them then derives the same
// configuration, so at most one cluster can form: a master that sees a
// different set (say a fifth master) publishes a different view and nobody
// bootstraps until the views agree.
func (m *Manager) tryBootstrap() {
	expect := m.cfg.BootstrapExpect
	if expect == 0 {
		return // joining an existing cluster: the leader will add us
	}
	masters := m.aliveMasters()
	view := ""
	ok := len(masters) == expect
	for _, mem := range masters {
		if mem.Meta.CA != masters[0].Meta.CA {
			ok = false // still settling on one CA
		}
		if mem.Meta.Bootstrapped {
			// A cluster exists: its leader will add us.
			ok = false
		}
		if mem.Meta.Expect != expect {
			m.log.Warn("masters disagree on bootstrap-expect; not bootstrapping", "member", mem.Meta.ID, "theirs", mem.Meta.Expect, "ours", expect)
			ok = false
		}
	}
	if ok {
		view = viewOf(masters)
	}
	if err := m.g.UpdateMeta(func(meta *Meta) { meta.View = view }); err != nil {
		m.log.Warn("gossip metadata update failed", "err", err)
	}
	if !ok {
		if len(masters) > expect && !anyBootstrapped(masters) {
			m.log.Warn("more masters than bootstrap-expect are alive; not bootstrapping", "alive", len(masters), "expect", expect)
		}
		return
	}
	for _, mem := range masters {
		if mem.Meta.View != view {
			return // not everyone agrees yet
		}
	}
	var servers []raftstore.Server
	var names []string
	for _, mem := range masters {
		servers = append(servers, raftstore.Server{ID: mem.Meta.ID, Address: mem.Meta.RaftAddr})
		names = append(names, mem.Meta.ID)
	}
	if m.cfg.BeforeBootstrap != nil {
		if err := m.cfg.BeforeBootstrap(masters[0].Meta.CA); err != nil {
			m.log.Error("not bootstrapping", "err", err)
			return
		}
	}
	if err := m.store.Bootstrap(servers); err != nil {
		m.log.Error("bootstrap failed", "err", err)
		return
	}
	m.log.Info("bootstrapped the cluster", "voters", strings.Join(names, ","))
}

// reconcile runs on the leader.
func (m *Manager) reconcile(ctx context.Context) {
	conf, err := m.store.Configuration()
	if err != nil {
		m.log.Warn("read raft configuration", "err", err)
		return
	}
	inConf := map[string]raftstore.ServerInfo{}
	for _, s := range conf {
		inConf[s.ID] = s
	}
	byID := map[string]Member{}
	for _, mem := range m.g.Members() {
		if mem.Meta.Role == RoleMaster && mem.Meta.ID != "" {
			byID[mem.Meta.ID] = mem
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	// Live masters become voters; an address change updates the server.
	for _, mem := range m.aliveMasters() {
		s, ok := inConf[mem.Meta.ID]
		if ok && s.Voter && s.Address == mem.Meta.RaftAddr {
			continue
		}
		m.log.Info("adding master as voter", "id", mem.Meta.ID, "addr", mem.Meta.RaftAddr, "was", s.Address)
		if err := m.store.AddVoter(ctx, mem.Meta.ID, mem.Meta.RaftAddr); err != nil {
			m.log.Warn("add voter failed", "id", mem.Meta.ID, "err", err)
			return
		}
	}

	voters, alive := 0, 0
	for _, s := range conf {
		if !s.Voter {
			continue
		}
		voters++
		if mem, ok := byID[s.ID]; s.ID == m.store.LocalID() || ok && mem.State == StateAlive {
			alive++
		}
	}
	for _, s := range conf {
		if s.ID == m.store.LocalID() {
			continue
		}
		mem, ok := byID[s.ID]
		if !ok {
			continue // gossip has not heard of it (yet): leave it alone
		}
		switch {
		case mem.State == StateLeft:
			m.log.Info("removing master that left", "id", s.ID)
		case mem.State == StateFailed && time.Since(mem.Since) > m.cfg.DeadServerTimeout:
			// Remove only if the live voters stay a majority without it.
			after := voters - 1
			if alive < after/2+1 {
				m.log.Warn("not removing dead master: quorum would not be safe", "id", s.ID, "voters", voters, "alive", alive)
				continue
			}
			m.log.Info("removing master dead longer than the timeout", "id", s.ID, "dead_for", time.Since(mem.Since).Round(time.Second))
		default:
			continue
		}
		if err := m.store.RemoveServer(ctx, s.ID); err != nil {
			m.log.Warn("remove server failed", "id", s.ID, "err", err)
			return
		}
		if s.Voter {
			voters--
		}
	}
}
