package registry

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodCIDRAllocator gives every Node a pod subnet of its own from the
// cluster CIDR when it registers (Kubernetes' node IPAM controller does this
// after the fact; here it is part of the create, like a Service's IP). Each
// subnet is a key (/registry/ranges/podcidrs/<a.b.c.d-len>) claimed in the
// Node's create transaction and freed by its delete.
type PodCIDRAllocator struct {
	base    uint32 // cluster network address
	bits    int    // cluster prefix length
	subBits int    // node subnet prefix length
}

// DefaultClusterCIDR and DefaultNodeCIDRMaskSize are Kubernetes' usual
// values (flannel's 10.244.0.0/16, one /24 per node: 256 nodes).
const (
	DefaultClusterCIDR      = "10.244.0.0/16"
	DefaultNodeCIDRMaskSize = 24
)

// NewPodCIDRAllocator parses an IPv4 cluster CIDR and a node mask size.
func NewPodCIDRAllocator(cidr string, nodeMask int) (*PodCIDRAllocator, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil || n.IP.To4() == nil {
		return nil, fmt.Errorf("cluster CIDR %q: want an IPv4 CIDR such as %s", cidr, DefaultClusterCIDR)
	}
	bits, _ := n.Mask.Size()
	if nodeMask < bits || nodeMask > 30 || nodeMask-bits > 16 {
		return nil, fmt.Errorf("node CIDR mask /%d does not fit cluster CIDR %s (want /%d to /30, at most 65536 subnets)", nodeMask, cidr, bits)
	}
	return &PodCIDRAllocator{base: binary.BigEndian.Uint32(n.IP.To4()), bits: bits, subBits: nodeMask}, nil
}

func (a *PodCIDRAllocator) subnet(i uint32) string {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, a.base+i<<(32-a.subBits))
	return fmt.Sprintf("%s/%d", ip, a.subBits)
}

func podCIDRKey(cidr string) string {
	return "/registry/ranges/podcidrs/" + strings.ReplaceAll(cidr, "/", "-")
}

// allocate gives node a subnet unless it names one, and returns the key to
// claim with the node's create.
func (a *PodCIDRAllocator) allocate(ctx context.Context, s *Storage, node *corev1.Node) (*allocation, error) {
	if node.Spec.PodCIDR == "" {
		count := uint32(1) << (a.subBits - a.bits)
		// Start at a random subnet: nodes registering at once on different
		// masters would otherwise all race for the first free one.
		start := rand.Uint32N(count)
		for j := uint32(0); j < count; j++ {
			cand := a.subnet((start + j) % count)
			kv, err := s.getKV(ctx, podCIDRKey(cand), true)
			if err != nil {
				return nil, err
			}
			if kv == nil {
				node.Spec.PodCIDR = cand
				break
			}
		}
		if node.Spec.PodCIDR == "" {
			// Kubernetes registers the node anyway; it gets a subnet when one
			// is freed (not yet: a later update does not allocate) and its
			// agent reports that it has none.
			return &allocation{}, nil
		}
	} else if kv, err := s.getKV(ctx, podCIDRKey(node.Spec.PodCIDR), true); err != nil {
		return nil, err
	} else if kv != nil {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Node").GroupKind(), node.Name,
			field.ErrorList{field.Invalid(field.NewPath("spec", "podCIDR"), node.Spec.PodCIDR, "already allocated to another node")})
	}
	node.Spec.PodCIDRs = []string{node.Spec.PodCIDR}
	return &allocation{claim: []string{podCIDRKey(node.Spec.PodCIDR)}, value: []byte(node.Name)}, nil
}

func (a *PodCIDRAllocator) release(node *corev1.Node) *allocation {
	if node.Spec.PodCIDR == "" {
		return &allocation{}
	}
	return &allocation{release: []string{podCIDRKey(node.Spec.PodCIDR)}}
}
