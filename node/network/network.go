package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Errors, wrapped with %w by every method.
var (
	ErrInvalid     = errors.New("network: invalid argument")
	ErrNotFound    = errors.New("network: sandbox not found")
	ErrClosed      = errors.New("network: manager closed")
	ErrLocked      = errors.New("network: state directory in use by another manager")
	ErrBusy        = errors.New("network: sandboxes remain")
	ErrUnsupported = errors.New("network: not supported on this platform")
	// ErrBroken: a set-up sandbox no longer is what Setup made (its netns
	// or its interface is gone). Tear it down and set it up again.
	ErrBroken = errors.New("network: sandbox broken")
)

// PortMapping forwards a host port to the pod (Kubernetes' hostPort).
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // TCP (default), UDP or SCTP; any case
	HostIP        string // empty: every host address, 127.0.0.1 included
}

// Sandbox is a pod's network.
type Sandbox struct {
	ID      string
	NetNS   string // path of the network namespace; containers join it
	IP      net.IP // the pod IP, on eth0
	Gateway net.IP // the bridge's address
	// HostVeth is the host end of the pod's veth pair (per-pod traffic
	// counters live there).
	HostVeth string
}

// Manager creates and removes pod network sandboxes. Its methods are safe
// for concurrent use; calls for the same sandbox ID are serialized.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	cni     *libcni.CNIConfig
	pod, lo *libcni.NetworkConfigList

	// life is held shared by Setup and Teardown and exclusively by Cleanup
	// and Close.
	life   sync.RWMutex
	closed bool
	lock   *os.File // flock on StateDir/lock
	ids    keyedMutex
	// routesMu serializes SetRoutes (Cleanup holds life exclusively).
	routesMu sync.Mutex
}

// New checks cfg, creates StateDir's layout and takes StateDir's lock.
// Sandboxes left by an earlier Manager (an agent restart) are found by List.
func New(cfg Config) (*Manager, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pod, err := libcni.ConfListFromBytes(cfg.podConfList())
	if err != nil {
		return nil, fmt.Errorf("network: pod CNI config: %w", err)
	}
	lo, err := libcni.ConfListFromBytes(cfg.loConfList())
	if err != nil {
		return nil, fmt.Errorf("network: loopback CNI config: %w", err)
	}
	for _, d := range []string{cfg.StateDir, cfg.netnsDir(), cfg.sandboxDir(), cfg.cacheDir(), cfg.ipamDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	lock, err := lockFile(cfg.lockFile())
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg,
		log: cfg.Logger,
		// An explicit Exec: libcni would otherwise create one lazily, racing
		// with itself under concurrent calls.
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cfg.cacheDir(), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: logWriter{cfg.Logger}},
			PluginDecoder: version.PluginDecoder{},
		}),
		pod:  pod,
		lo:   lo,
		lock: lock,
	}
	return m, nil
}

// Config returns the Manager's configuration with defaults applied.
func (m *Manager) Config() Config { return m.cfg }

// Close releases StateDir's lock. Sandboxes stay as they are: pods outlive
// the agent. Close is idempotent.
func (m *Manager) Close() error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.lock.Close() // closing the descriptor drops the flock
}

// begin is the start of every sandbox operation: it returns ErrClosed after
// Close, and otherwise the function that ends the operation.
func (m *Manager) begin(id string) (func(), error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	m.life.RLock()
	if m.closed {
		m.life.RUnlock()
		return nil, ErrClosed
	}
	unlock := m.ids.lock(id)
	return func() { unlock(); m.life.RUnlock() }, nil
}

func (m *Manager) rtConf(id, netns, ifName string, ports []cniPortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: ifName}
	if ports != nil {
		rt.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	return rt
}

// Setup creates the sandbox's network namespace, attaches it to the bridge
// with an address from PodCIDR, forwards ports, and returns the sandbox.
//
// Setup is idempotent: for a sandbox that is already set up it returns the
// recorded result (ports are those of the first call), and it finishes or
// redoes a setup that an earlier process left half done. On error nothing
// of the sandbox is left behind, unless cleaning up failed too; then the
// sandbox stays in List for Teardown.
func (m *Manager) Setup(ctx context.Context, id string, ports []PortMapping) (*Sandbox, error) {
	end, err := m.begin(id)
	if err != nil {
		return nil, err
	}
	defer end()
	start := time.Now()

	if sb, ok := m.existing(id); ok {
		m.log.Debug("network: sandbox already set up", "sandbox", id, "ip", sb.IP)
		return sb, nil
	}

	st, err := readState(m.cfg.sandboxDir(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		cp, err := cniPorts(ports)
		if err != nil {
			return nil, err
		}
		st = &state{ID: id, NetNS: m.cfg.netnsPath(id), Ports: cp}
		if err := writeState(m.cfg.sandboxDir(), st); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		// Half done by an earlier call: undo what the plugins may have done
		// (a second ADD of the same ID fails in host-local and bridge), keep
		// the netns, then set up again.
		m.log.Info("network: finishing an interrupted setup", "sandbox", id)
		if err := m.delNetworks(ctx, st); err != nil {
			return nil, fmt.Errorf("network: setup %s: undo interrupted setup: %w", id, err)
		}
	}

	sb, err := m.add(ctx, st)
	if err != nil {
		if cerr := m.teardown(context.WithoutCancel(ctx), id); cerr != nil {
			m.log.Warn("network: cleanup after failed setup", "sandbox", id, "err", cerr)
			return nil, errors.Join(err, fmt.Errorf("network: cleanup after failed setup: %w", cerr))
		}
		return nil, err
	}
	m.log.Debug("network: sandbox set up", "sandbox", id, "ip", sb.IP, "took", time.Since(start))
	return sb, nil
}

// add creates the netns and runs CNI ADD for lo and eth0, then records the
// result in the state file.
func (m *Manager) add(ctx context.Context, st *state) (*Sandbox, error) {
	if err := createNetNS(st.NetNS); err != nil {
		return nil, fmt.Errorf("network: setup %s: %w", st.ID, err)
	}
	if _, err := m.cni.AddNetworkList(ctx, m.lo, m.rtConf(st.ID, st.NetNS, "lo", nil)); err != nil {
		return nil, fmt.Errorf("network: setup %s: loopback: %w", st.ID, err)
	}
	res, err := m.cni.AddNetworkList(ctx, m.pod, m.rtConf(st.ID, st.NetNS, "eth0", st.Ports))
	if err != nil {
		return nil, fmt.Errorf("network: setup %s: %w", st.ID, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("network: setup %s: CNI result: %w", st.ID, err)
	}
	sb, err := sandboxFromResult(st.ID, st.NetNS, m.cfg.Bridge, r)
	if err != nil {
		return nil, fmt.Errorf("network: setup %s: %w", st.ID, err)
	}
	st.IP, st.Gateway, st.HostVeth = sb.IP.String(), ipString(sb.Gateway), sb.HostVeth
	if err := writeState(m.cfg.sandboxDir(), st); err != nil {
		return nil, err
	}
	return sb, nil
}

// existing returns a completely set up sandbox: its netns is live and
// libcni has a result for eth0. The result is written to the state file if
// the process that set it up died before doing so.
func (m *Manager) existing(id string) (*Sandbox, bool) {
	st, err := readState(m.cfg.sandboxDir(), id)
	if err != nil || !isNetNS(st.NetNS) {
		return nil, false
	}
	res, err := m.cni.GetNetworkListCachedResult(m.pod, m.rtConf(id, st.NetNS, "eth0", nil))
	if err != nil || res == nil {
		return nil, false
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, false
	}
	sb, err := sandboxFromResult(id, st.NetNS, m.cfg.Bridge, r)
	if err != nil {
		return nil, false
	}
	if st.IP == "" {
		st.IP, st.Gateway, st.HostVeth = sb.IP.String(), ipString(sb.Gateway), sb.HostVeth
		if err := writeState(m.cfg.sandboxDir(), st); err != nil {
			return nil, false
		}
	}
	return sb, true
}

func sandboxFromResult(id, netns, bridge string, r *types100.Result) (*Sandbox, error) {
	sb := &Sandbox{ID: id, NetNS: netns}
	for _, ipc := range r.IPs {
		if ipc.Address.IP.To4() == nil {
			continue
		}
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(r.Interfaces) &&
			r.Interfaces[*ipc.Interface].Sandbox == "" {
			continue // an address on a host interface
		}
		sb.IP, sb.Gateway = ipc.Address.IP.To4(), ipc.Gateway.To4()
		break
	}
	if sb.IP == nil {
		return nil, fmt.Errorf("CNI result has no IPv4 address for the pod: %v", r)
	}
	for _, ifc := range r.Interfaces {
		if ifc.Sandbox == "" && ifc.Name != bridge {
			sb.HostVeth = ifc.Name
		}
	}
	return sb, nil
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

// Teardown removes everything the sandbox created: CNI DEL releases the
// address and the port forwards even when the netns is already gone, then
// the netns is unmounted and removed, and the state file last. Teardown of
// an unknown sandbox succeeds.
func (m *Manager) Teardown(ctx context.Context, id string) error {
	end, err := m.begin(id)
	if err != nil {
		return err
	}
	defer end()
	start := time.Now()
	if err := m.teardown(ctx, id); err != nil {
		return err
	}
	m.log.Debug("network: sandbox torn down", "sandbox", id, "took", time.Since(start))
	return nil
}

func (m *Manager) teardown(ctx context.Context, id string) error {
	st, err := readState(m.cfg.sandboxDir(), id)
	if errors.Is(err, ErrNotFound) {
		// Without a state file nothing else can exist, unless the file was
		// removed by hand: a leftover netns is still removed.
		st = &state{ID: id, NetNS: m.cfg.netnsPath(id)}
		if _, serr := os.Lstat(st.NetNS); serr != nil {
			return nil
		}
	} else if err != nil {
		return err
	}
	if err := m.delNetworks(ctx, st); err != nil {
		return fmt.Errorf("network: teardown %s: %w", id, err)
	}
	if err := removeNetNS(st.NetNS); err != nil {
		return fmt.Errorf("network: teardown %s: %w", id, err)
	}
	if err := removeState(m.cfg.sandboxDir(), id); err != nil {
		return err
	}
	return nil
}

// delNetworks runs CNI DEL for eth0 and lo and then removes any nat rule
// still naming the sandbox.
//
// The configuration is the one cached at ADD when there is one, so a
// sandbox set up before a config change is still torn down with the
// settings (IPAM directory, network name) it was set up with. A netns that
// is no longer live is passed as "": the plugins then skip the netns but
// still release the address and the port forwards.
func (m *Manager) delNetworks(ctx context.Context, st *state) error {
	netns := st.NetNS
	if !isNetNS(netns) {
		netns = ""
	}
	for _, n := range []struct {
		list   *libcni.NetworkConfigList
		ifName string
		ports  []cniPortMapping
	}{{m.pod, "eth0", st.Ports}, {m.lo, "lo", nil}} {
		rt := m.rtConf(st.ID, netns, n.ifName, n.ports)
		list := n.list
		if b, _, err := m.cni.GetNetworkListCachedConfig(list, rt); err == nil && len(b) > 0 {
			if cached, err := libcni.ConfListFromBytes(b); err == nil {
				list = cached
			}
		}
		if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
			return fmt.Errorf("CNI DEL %s: %w", n.ifName, err)
		}
	}
	removed, err := sweepNAT(ctx, m.cfg.Name, st.ID)
	if err != nil {
		return fmt.Errorf("remove leftover iptables rules: %w", err)
	}
	if removed > 0 {
		m.log.Warn("network: removed iptables rules the CNI plugins left behind", "sandbox", st.ID, "rules", removed)
	}
	return nil
}

// List returns the IDs of the sandboxes with state on disk, sorted: those
// set up, half set up or half torn down. An agent tears down those that
// belong to no pod it knows.
func (m *Manager) List() ([]string, error) {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.list()
}

func (m *Manager) list() ([]string, error) {
	seen := map[string]bool{}
	ids, err := listStates(m.cfg.sandboxDir())
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		seen[id] = true
	}
	ents, err := os.ReadDir(m.cfg.netnsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("network: %w", err)
	}
	for _, e := range ents {
		if validateID(e.Name()) == nil {
			seen[e.Name()] = true
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// Status returns a set-up sandbox, from its state file (or libcni's cache
// when the process that set it up died before writing the IP down). It
// returns ErrNotFound for an unknown sandbox and for one whose setup did
// not finish.
func (m *Manager) Status(id string) (*Sandbox, error) {
	end, err := m.begin(id)
	if err != nil {
		return nil, err
	}
	defer end()
	st, err := readState(m.cfg.sandboxDir(), id)
	if err != nil {
		return nil, err
	}
	if st.IP != "" && isNetNS(st.NetNS) {
		return &Sandbox{ID: id, NetNS: st.NetNS, IP: net.ParseIP(st.IP).To4(), Gateway: net.ParseIP(st.Gateway).To4(), HostVeth: st.HostVeth}, nil
	}
	if sb, ok := m.existing(id); ok {
		return sb, nil
	}
	return nil, fmt.Errorf("%w: %s: setup did not finish", ErrNotFound, id)
}

// Check reports whether a set-up sandbox is still as Setup left it: its
// netns is mounted, lo is up, eth0 is up with the pod IP, and the host end
// of the veth exists. It returns ErrNotFound for a sandbox that is not set
// up and ErrBroken when something is missing; Teardown and Setup repair it.
// Port forwards are not checked. (CNI CHECK is not used: the Debian 1.1.1
// portmap plugin fails it for a healthy sandbox under iptables-nft, looking
// for its chain in ip6tables.)
func (m *Manager) Check(id string) error {
	end, err := m.begin(id)
	if err != nil {
		return err
	}
	defer end()
	st, err := readState(m.cfg.sandboxDir(), id)
	if err != nil {
		return err
	}
	if st.IP == "" {
		return fmt.Errorf("%w: %s: setup did not finish", ErrNotFound, id)
	}
	if !isNetNS(st.NetNS) {
		return fmt.Errorf("%w: %s: netns %s is gone", ErrBroken, id, st.NetNS)
	}
	if st.HostVeth != "" {
		if _, err := net.InterfaceByName(st.HostVeth); err != nil {
			return fmt.Errorf("%w: %s: host veth %s: %v", ErrBroken, id, st.HostVeth, err)
		}
	}
	ip := net.ParseIP(st.IP)
	err = withNetNS(st.NetNS, func() error {
		for _, want := range []struct {
			name string
			ip   net.IP
		}{{"lo", net.IPv4(127, 0, 0, 1)}, {"eth0", ip}} {
			ifc, err := net.InterfaceByName(want.name)
			if err != nil {
				return err
			}
			if ifc.Flags&net.FlagUp == 0 {
				return fmt.Errorf("%s is down", want.name)
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				return err
			}
			found := false
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(want.ip) {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("%s has no address %s", want.name, want.ip)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBroken, id, err)
	}
	return nil
}

// Cleanup removes what the sandboxes share once none remains: the bridge
// and the routes installed by SetRoutes. With sandboxes left it returns
// ErrBusy and changes nothing. The Manager stays usable (a later Setup
// creates the bridge again).
func (m *Manager) Cleanup(ctx context.Context) error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return ErrClosed
	}
	ids, err := m.list()
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		return fmt.Errorf("%w: %d (%s)", ErrBusy, len(ids), strings.Join(ids, ", "))
	}
	if err := m.setRoutes(ctx, nil); err != nil {
		return err
	}
	return deleteLink(ctx, m.cfg.Bridge)
}

// logWriter logs what the CNI plugins write to stderr (their errors come
// back in their results; stderr has only diagnostics).
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	if msg := strings.TrimSpace(string(p)); msg != "" {
		w.log.Warn("network: CNI plugin stderr", "output", msg)
	}
	return len(p), nil
}

// keyedMutex serializes work per key.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
