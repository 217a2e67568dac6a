//go:build linux && cgo

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/master"
	"github.com/droverhq/drover/node/host"
	"github.com/droverhq/drover/node/image"
)

// DemoImage is the image `drover server --dev` imports offline from the
// machine's busybox-static, for examples/web.yaml.
const DemoImage = "drover.local/demo/busybox:latest"

// startDevAgent runs a node agent inside the dev server, so pods run on
// this machine. It needs root; without it the server runs without a node.
func startDevAgent(ctx context.Context, m *master.Master, dataDir, nodeName string, log *slog.Logger) (stop func(), note string, err error) {
	if os.Geteuid() != 0 {
		return func() {}, "no node agent: running containers needs root (sudo make run)", nil
	}
	c, err := m.NodeClient(nodeName)
	if err != nil {
		return nil, "", err
	}
	n, err := host.Start(ctx, host.Config{NodeName: nodeName, DataDir: filepath.Join(dataDir, "agent"), Address: "127.0.0.1",
		Client: c, ClientCA: m.CACertPEM(), Version: Version, Logger: log.With("component", "agent")})
	if err != nil {
		return nil, "", fmt.Errorf("start the node agent: %w", err)
	}
	note = fmt.Sprintf("node %q runs pods here (agent data in %s)", nodeName, filepath.Join(dataDir, "agent"))
	if _, err := n.Images.Get(DemoImage); err != nil {
		if _, statErr := os.Stat(image.DefaultBusybox); statErr == nil {
			if err := host.ImportDemoImage(ctx, n.Images, image.DefaultBusybox, DemoImage); err != nil {
				log.Warn("importing the demo image failed", "err", err)
			} else {
				note += fmt.Sprintf("; demo image %s imported", DemoImage)
			}
		} else {
			note += fmt.Sprintf("; no demo image (%s is missing: apt-get install busybox-static)", image.DefaultBusybox)
		}
	}
	return n.Stop, note, nil
}

// nodeAgentConfig is what `drover agent` runs with.
type nodeAgentConfig struct {
	name, dataDir, address, bridge string
	daemonPort                     int
	insecure                       []string
	labels                         map[string]string
	restartBackoff                 time.Duration
	client                         *client.Client
	clientCA                       []byte
	log                            *slog.Logger
}

// runNodeAgent runs a node until ctx ends.
func runNodeAgent(ctx context.Context, cfg nodeAgentConfig) error {
	n, err := host.Start(ctx, host.Config{NodeName: cfg.name, DataDir: cfg.dataDir, Address: cfg.address, DaemonPort: cfg.daemonPort,
		Client: cfg.client, ClientCA: cfg.clientCA, InsecureRegistries: cfg.insecure, Bridge: cfg.bridge, Labels: cfg.labels,
		BackoffInitial: cfg.restartBackoff, Version: Version, Logger: cfg.log})
	if err != nil {
		return err
	}
	defer n.Stop()
	select {
	case <-ctx.Done():
		cfg.log.Info("agent stopping; containers keep running and are adopted when it restarts")
		return nil
	case err := <-n.Err():
		return err
	}
}
