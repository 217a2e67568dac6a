// Package host assembles a real node: the image store (node/image), the
// CNI pod network (node/network) and the libcontainer runtime
// (node/runtime/lcrun) behind the node agent's interfaces.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/node/agent"
	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/network"
)

// Images adapts the image store to the agent.
type Images struct{ Store *image.Store }

// Ensure implements agent.Images.
func (i Images) Ensure(ctx context.Context, ref string, policy corev1.PullPolicy, secrets [][]byte) (*agent.ImageConfig, error) {
	var creds []image.Credential
	for _, s := range secrets {
		c, err := image.CredentialsFromDockerConfigJSON(s)
		if err == nil {
			creds = append(creds, c...)
		}
	}
	img, err := i.Store.Ensure(ctx, ref, image.PullPolicy(policy), creds)
	switch {
	case errors.Is(err, image.ErrImageNeverPull):
		return nil, fmt.Errorf("%w: %v", agent.ErrImageNeverPull, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", agent.ErrImagePull, err)
	}
	c := img.Config
	return &agent.ImageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}, nil
}

// PrepareRootFS implements agent.Images.
func (i Images) PrepareRootFS(ctx context.Context, ref, id string) (string, error) {
	img, err := i.Store.Get(ref)
	if err != nil {
		return "", err
	}
	return i.Store.PrepareRootFS(ctx, img, id)
}

// ReleaseRootFS implements agent.Images.
func (i Images) ReleaseRootFS(id string) error { return i.Store.ReleaseRootFS(id) }

// ListRootFS implements agent.Images.
func (i Images) ListRootFS() ([]string, error) {
	rs, err := i.Store.ListRootFS()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out, nil
}

// Network adapts a CNI network manager to the agent.
type Network struct{ M *network.Manager }

// Setup implements agent.Network.
func (n Network) Setup(ctx context.Context, id string, ports []agent.PortMapping) (string, net.IP, error) {
	pm := make([]network.PortMapping, len(ports))
	for i, p := range ports {
		pm[i] = network.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostIP: p.HostIP}
	}
	sb, err := n.M.Setup(ctx, id, pm)
	if err != nil {
		return "", nil, err
	}
	return sb.NetNS, sb.IP, nil
}

// Teardown implements agent.Network.
func (n Network) Teardown(ctx context.Context, id string) error { return n.M.Teardown(ctx, id) }

// List implements agent.Network.
func (n Network) List() ([]string, error) { return n.M.List() }

// NewNetwork returns the agent's network factory for a node whose state
// lives under dataDir.
func NewNetwork(dataDir, bridge string, log *slog.Logger) func(podCIDR string) (agent.Network, error) {
	return func(podCIDR string) (agent.Network, error) {
		m, err := network.New(network.Config{PodCIDR: podCIDR, Bridge: bridge, StateDir: filepath.Join(dataDir, "network"), Logger: log})
		if err != nil {
			return nil, err
		}
		return Network{M: m}, nil
	}
}
