//go:build !(linux && cgo)

package cli

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/master"
)

func startDevAgent(ctx context.Context, m *master.Master, dataDir, nodeName string, log *slog.Logger) (func(), string, error) {
	return func() {}, "no node agent: this build has no container runtime (it needs Linux and cgo)", nil
}

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

func runNodeAgent(ctx context.Context, cfg nodeAgentConfig) error {
	return errors.New("this build has no container runtime: drover agent needs Linux and cgo")
}
