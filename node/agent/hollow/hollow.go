// Package hollow has in-memory implementations of the agent's image store
// and pod network, for simulating many nodes in one process (with the
// hollow runtime, node/runtime/hollow): they keep real state — which images
// are present, which sandboxes exist and which addresses they hold — but
// touch neither disks nor the kernel.
package hollow

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/node/agent"
)

// Images is an image store whose pulls succeed at once, except for
// references listed in Missing (which fail like a registry without them).
type Images struct {
	mu      sync.Mutex
	present map[string]bool
	rootfs  map[string]bool
	// Missing lists references that do not exist anywhere.
	Missing map[string]bool
	// Pulls counts pulls per reference.
	Pulls map[string]int
}

// NewImages returns an empty store.
func NewImages() *Images {
	return &Images{present: map[string]bool{}, rootfs: map[string]bool{}, Missing: map[string]bool{}, Pulls: map[string]int{}}
}

// Ensure implements agent.Images.
func (im *Images) Ensure(ctx context.Context, ref string, policy corev1.PullPolicy, _ [][]byte) (*agent.ImageConfig, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if policy == corev1.PullNever && !im.present[ref] {
		return nil, fmt.Errorf("%w: image %q is not present and the pull policy is Never", agent.ErrImageNeverPull, ref)
	}
	if policy == corev1.PullAlways || !im.present[ref] {
		if im.Missing[ref] {
			return nil, fmt.Errorf("%w: %s: manifest unknown", agent.ErrImagePull, ref)
		}
		im.Pulls[ref]++
		im.present[ref] = true
	}
	return &agent.ImageConfig{Cmd: []string{"sleep", "infinity"}, Env: []string{"PATH=/bin"}}, nil
}

// PrepareRootFS implements agent.Images.
func (im *Images) PrepareRootFS(ctx context.Context, ref, id string) (string, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.rootfs[id] = true
	return "/hollow/rootfs/" + id, nil
}

// ReleaseRootFS implements agent.Images.
func (im *Images) ReleaseRootFS(id string) error {
	im.mu.Lock()
	defer im.mu.Unlock()
	delete(im.rootfs, id)
	return nil
}

// ListRootFS implements agent.Images.
func (im *Images) ListRootFS() ([]string, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	out := make([]string, 0, len(im.rootfs))
	for id := range im.rootfs {
		out = append(out, id)
	}
	return out, nil
}

// Network hands out addresses of a pod subnet to sandboxes.
type Network struct {
	mu        sync.Mutex
	base      uint32
	size      uint32
	sandboxes map[string]net.IP
	used      map[uint32]bool
}

// NewNetwork returns a network for podCIDR (IPv4).
func NewNetwork(podCIDR string) (*Network, error) {
	_, n, err := net.ParseCIDR(podCIDR)
	if err != nil || n.IP.To4() == nil {
		return nil, fmt.Errorf("hollow network: pod CIDR %q: want IPv4", podCIDR)
	}
	ones, bits := n.Mask.Size()
	return &Network{base: binary.BigEndian.Uint32(n.IP.To4()), size: 1 << uint(bits-ones), sandboxes: map[string]net.IP{}, used: map[uint32]bool{}}, nil
}

// Setup implements agent.Network.
func (nw *Network) Setup(ctx context.Context, id string, _ []agent.PortMapping) (string, net.IP, error) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if ip, ok := nw.sandboxes[id]; ok {
		return "/hollow/netns/" + id, ip, nil
	}
	for off := uint32(2); off < nw.size-1; off++ {
		if !nw.used[off] {
			nw.used[off] = true
			ip := make(net.IP, 4)
			binary.BigEndian.PutUint32(ip, nw.base+off)
			nw.sandboxes[id] = ip
			return "/hollow/netns/" + id, ip, nil
		}
	}
	return "", nil, fmt.Errorf("hollow network: no free address")
}

// Teardown implements agent.Network.
func (nw *Network) Teardown(ctx context.Context, id string) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if ip, ok := nw.sandboxes[id]; ok {
		delete(nw.used, binary.BigEndian.Uint32(ip.To4())-nw.base)
		delete(nw.sandboxes, id)
	}
	return nil
}

// List implements agent.Network.
func (nw *Network) List() ([]string, error) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	out := make([]string, 0, len(nw.sandboxes))
	for id := range nw.sandboxes {
		out = append(out, id)
	}
	return out, nil
}

// Sandboxes is the number of sandboxes (tests).
func (nw *Network) Sandboxes() int {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return len(nw.sandboxes)
}
