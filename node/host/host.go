//go:build linux && cgo

package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/agent"
	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/runtime/lcrun"
)

// Config configures a real node.
type Config struct {
	NodeName string
	// DataDir holds the node's images, pod volumes, logs and network
	// state (default /var/lib/drover/agent).
	DataDir string
	// Address is the node's IP, reported in its status and where the
	// daemon endpoint listens (DaemonPort, default 10250).
	Address    string
	DaemonPort int
	Client     *client.Client
	// ClientCA is the CA (PEM) masters' certificates are checked against
	// when they call the daemon endpoint.
	ClientCA           []byte
	InsecureRegistries []string
	// Bridge is the CNI bridge (default drover0; one per node on a
	// machine).
	Bridge string
	Labels map[string]string
	// BackoffInitial is the first restart back-off of a crashing
	// container or failing pull (default 10s, as the kubelet).
	BackoffInitial time.Duration
	Version        string
	Logger         *slog.Logger
}

// Node is a running real node.
type Node struct {
	Agent   *agent.Agent
	Images  *image.Store
	Runtime *lcrun.Runtime
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errc    chan error
}

// Start opens the image store and the runtime, and runs the agent and its
// daemon endpoint until Stop. Containers keep running after Stop.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a node agent runs containers and must run as root")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "/var/lib/drover/agent"
	}
	if cfg.DaemonPort == 0 {
		cfg.DaemonPort = 10250
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "drover0"
	}
	images, err := image.Open(image.Config{Dir: filepath.Join(cfg.DataDir, "images"), InsecureRegistries: cfg.InsecureRegistries,
		Logger: cfg.Logger.With("component", "images")})
	if err != nil {
		return nil, fmt.Errorf("open the image store: %w", err)
	}
	rc := lcrun.DefaultConfig(cfg.NodeName)
	rc.Logger = cfg.Logger.With("component", "runtime")
	rt, err := lcrun.New(rc)
	if err != nil {
		images.Close()
		return nil, fmt.Errorf("open the container runtime: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Address, fmt.Sprint(cfg.DaemonPort)))
	if err != nil {
		rt.Close()
		images.Close()
		return nil, fmt.Errorf("listen for the masters on %s:%d: %w", cfg.Address, cfg.DaemonPort, err)
	}
	a, err := agent.New(agent.Config{NodeName: cfg.NodeName, Client: cfg.Client, Runtime: rt, Images: Images{Store: images},
		Network: NewNetwork(cfg.DataDir, cfg.Bridge, cfg.Logger.With("component", "network")), DataDir: cfg.DataDir, Address: cfg.Address, DaemonPort: int32(cfg.DaemonPort),
		Labels: cfg.Labels, BackoffInitial: cfg.BackoffInitial, Logger: cfg.Logger, Version: cfg.Version, RuntimeName: "libcontainer://" + lcrunVersion()})
	if err != nil {
		ln.Close()
		rt.Close()
		images.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &Node{Agent: a, Images: images, Runtime: rt, cancel: cancel, errc: make(chan error, 2)}
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.collectImages(ctx, cfg.Logger) }()
	go func() {
		defer n.wg.Done()
		if err := a.Run(ctx); err != nil {
			n.errc <- err
		}
	}()
	go func() {
		defer n.wg.Done()
		if err := a.Serve(ctx, ln, cfg.ClientCA); err != nil {
			n.errc <- err
		}
	}()
	return n, nil
}

// lcrunVersion names the runc module drover is built with.
func lcrunVersion() string { return "runc-1.5.2" }

// Err reports the agent stopping on its own.
func (n *Node) Err() <-chan error { return n.errc }

// Stop stops the agent (containers keep running; a restarted agent adopts
// them) and closes the stores.
func (n *Node) Stop() {
	n.cancel()
	n.wg.Wait()
	n.Runtime.Close()
	n.Images.Close()
}

// ImportDemoImage builds the demo image from the machine's busybox-static
// and stores it as ref, offline (what `make run` shows pods with).
func ImportDemoImage(ctx context.Context, store *image.Store, busybox, ref string) error {
	img, err := image.BuildBusybox(busybox, []string{"sh"})
	if err != nil {
		return fmt.Errorf("build the demo image from %s: %w", busybox, err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		return err
	}
	_, err = store.Import(ctx, &buf)
	return err
}

// imageGCInterval and imageKeep: every interval, images no container uses
// and nothing used for imageKeep are removed with their unshared layers.
const (
	imageGCInterval = 10 * time.Minute
	imageKeep       = 24 * time.Hour
)

func (n *Node) collectImages(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(imageGCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := n.Images.GC(ctx, func(ref string) bool {
			img, err := n.Images.Get(ref)
			return err != nil || time.Since(img.LastUsed) < imageKeep
		})
		if err != nil {
			log.Warn("image garbage collection failed", "err", err)
			continue
		}
		log.Debug("image garbage collection", "result", fmt.Sprintf("%+v", res))
	}
}
