// Package agent is drover's node agent (the kubelet's job): it registers
// its Node, keeps a Lease and the Node's conditions fresh, list-watches the
// pods bound to it, and drives one worker per pod until the containers the
// pod asks for run (through a node/runtime Runtime, in a network sandbox
// from node/network, on root filesystems from node/image), reporting
// status back through the API.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/runtime"
)

// Images is what the agent needs of the node's image store (node/image).
type Images interface {
	// Ensure makes the image present as the pull policy says and returns
	// its configuration. Errors wrap ErrImagePull or ErrImageNeverPull.
	Ensure(ctx context.Context, ref string, policy corev1.PullPolicy, pullSecrets [][]byte) (*ImageConfig, error)
	// PrepareRootFS gives container id a writable root filesystem of ref.
	PrepareRootFS(ctx context.Context, ref, id string) (string, error)
	// ReleaseRootFS removes it; unknown ids are not an error.
	ReleaseRootFS(id string) error
	// ListRootFS lists the ids with a root filesystem (cleanup after a
	// restart).
	ListRootFS() ([]string, error)
}

// Image errors the agent turns into container waiting reasons.
var (
	ErrImagePull      = errors.New("ErrImagePull")
	ErrImageNeverPull = errors.New("ErrImageNeverPull")
)

// ImageConfig is what an image says about running it.
type ImageConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
}

// PortMapping is a container port published on the node (hostPort).
type PortMapping struct {
	HostPort, ContainerPort int32
	Protocol                string // tcp, udp
	HostIP                  string
}

// Network sets up pod network sandboxes (node/network).
type Network interface {
	// Setup creates (or finds) the sandbox of a pod and returns its network
	// namespace path and IP.
	Setup(ctx context.Context, id string, ports []PortMapping) (netns string, ip net.IP, err error)
	// Teardown removes it; unknown ids are not an error.
	Teardown(ctx context.Context, id string) error
	// List lists sandboxes on this node.
	List() ([]string, error)
}

// Config configures an agent.
type Config struct {
	NodeName string
	Client   *client.Client
	Runtime  runtime.Runtime
	Images   Images
	// Network builds the pod network for the node's pod subnet, which is
	// known once the node is registered.
	Network func(podCIDR string) (Network, error)
	// DataDir holds pod volumes (emptyDir, configMap, secret files) and
	// container logs.
	DataDir string
	// Address is the node's InternalIP reported in its status.
	Address string
	// Capacity: CPU cores, memory bytes and pods; zero values are read
	// from the machine (pods: 110).
	CPU         int64
	MemoryBytes int64
	MaxPods     int64
	Labels      map[string]string
	Taints      []corev1.Taint
	// DaemonPort is where the agent serves logs and exec to the API server
	// (reported as daemonEndpoints.kubeletEndpoint).
	DaemonPort int32
	// StatusInterval is how often the Node's status and Lease are renewed
	// (default 10s); ResyncInterval how often every pod is re-checked
	// (default 1s): container exits and the end of a restart back-off are
	// noticed then; pod changes and probe results wake workers at once.
	StatusInterval time.Duration
	ResyncInterval time.Duration
	// BackoffInitial and BackoffMax bound the restart back-off of crashing
	// containers and failing pulls (defaults 10s and 5m, as the kubelet).
	BackoffInitial, BackoffMax time.Duration
	Logger                     *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Version is reported as the node's kubelet version.
	Version string
	// RuntimeName is reported as the node's container runtime version,
	// e.g. "libcontainer://1.5.2".
	RuntimeName string
}

// Agent is a running node agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	pods    client.ResourceClient
	events  *recorder
	mu      sync.Mutex
	workers map[string]*podWorker // by pod UID
	wg      sync.WaitGroup
	podCIDR string
	net     Network
}

// New checks cfg and returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.NodeName == "":
		return nil, errors.New("agent: a node name is required")
	case cfg.Client == nil || cfg.Runtime == nil || cfg.Images == nil || cfg.Network == nil:
		return nil, errors.New("agent: a client, runtime, image store and network are required")
	case cfg.DataDir == "":
		return nil, errors.New("agent: a data dir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = time.Second // as the kubelet's relist: how soon an exit is noticed
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = backoffInitial
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = backoffMax
	}
	if cfg.MaxPods <= 0 {
		cfg.MaxPods = 110
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "pods"), 0o700); err != nil {
		return nil, fmt.Errorf("agent: create data dir: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeName), workers: map[string]*podWorker{}}
	a.pods = cfg.Client.Resource(client.Pods)
	a.events = newRecorder(cfg.Client, cfg.NodeName, cfg.Now, a.log)
	return a, nil
}

// Run registers the node and runs until ctx ends. Containers keep running
// when it returns (a restarted agent adopts them).
func (a *Agent) Run(ctx context.Context) error {
	if err := a.register(ctx); err != nil {
		return err
	}
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.heartbeat(ctx) }()
	go func() { defer a.wg.Done(); a.events.run(ctx) }()
	err := a.watchPods(ctx)
	a.mu.Lock()
	for _, w := range a.workers {
		w.stop()
	}
	a.mu.Unlock()
	a.wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// PodCIDR is the node's pod subnet, known once registered.
func (a *Agent) PodCIDR() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.podCIDR
}
