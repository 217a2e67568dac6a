//go:build !(linux && cgo)

package cli

import (
	"context"
	"log/slog"

	"github.com/droverhq/drover/control/master"
)

func startDevAgent(ctx context.Context, m *master.Master, dataDir, nodeName string, log *slog.Logger) (func(), string, error) {
	return func() {}, "no node agent: this build has no container runtime (it needs Linux and cgo)", nil
}
