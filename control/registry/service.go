package registry

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/command"
)

// ServiceAllocator hands out Service cluster IPs from a CIDR and node
// ports from a range. Every allocation is a key of its own
// (/registry/ranges/serviceips/<ip>, /registry/ranges/servicenodeports/<port>)
// written in the same transaction as the Service, guarded by "key absent":
// two masters creating Services at once can never get the same address,
// and an address is released exactly when its Service is deleted.
type ServiceAllocator struct {
	base     net.IP // network address, IPv4
	size     uint32 // addresses in the CIDR
	portLow  int
	portHigh int
}

// DefaultServiceCIDR and DefaultNodePortRange are Kubernetes' defaults.
const (
	DefaultServiceCIDR   = "10.96.0.0/12"
	DefaultNodePortRange = "30000-32767"
)

// NewServiceAllocator parses an IPv4 CIDR and a "low-high" port range.
func NewServiceAllocator(cidr, ports string) (*ServiceAllocator, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil || n.IP.To4() == nil {
		return nil, fmt.Errorf("service CIDR %q: want an IPv4 CIDR such as %s", cidr, DefaultServiceCIDR)
	}
	ones, bits := n.Mask.Size()
	if bits-ones < 2 || bits-ones > 24 {
		return nil, fmt.Errorf("service CIDR %q: want a prefix between /8 and /30", cidr)
	}
	lo, hi, ok := strings.Cut(ports, "-")
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return nil, fmt.Errorf("node port range %q: want low-high, such as %s", ports, DefaultNodePortRange)
	}
	return &ServiceAllocator{base: n.IP.To4(), size: 1 << uint(bits-ones), portLow: l, portHigh: h}, nil
}

// APIServerIP is the first usable address, reserved for the "kubernetes"
// Service as in Kubernetes.
func (a *ServiceAllocator) APIServerIP() string { return a.ipAt(1) }

func (a *ServiceAllocator) ipAt(off uint32) string {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(a.base)+off)
	return ip.String()
}

func (a *ServiceAllocator) contains(ip net.IP) bool {
	v4 := ip.To4()
	if v4 == nil {
		return false
	}
	d := new(big.Int).Sub(new(big.Int).SetBytes(v4), new(big.Int).SetBytes(a.base))
	return d.Sign() > 0 && d.Cmp(big.NewInt(int64(a.size-1))) < 0
}

func ipKey(ip string) string { return "/registry/ranges/serviceips/" + ip }
func portKey(port int32) string {
	return "/registry/ranges/servicenodeports/" + strconv.Itoa(int(port))
}
func owner(svc *corev1.Service) []byte { return []byte(svc.Namespace + "/" + svc.Name) }

// allocation is what one Service write adds to its transaction.
type allocation struct {
	claim   []string // keys that must be absent and are written
	release []string // keys deleted
	value   []byte
}

func (al *allocation) addTo(t *raftstore.Txn) {
	for _, k := range al.claim {
		t.Compares = append(t.Compares, raftstore.Compare{Key: []byte(k), Target: command.TargetVersion, Result: command.Equal, Int: 0})
		t.Success = append(t.Success, raftstore.Op{Type: command.OpPut, Key: []byte(k), Value: al.value})
	}
	for _, k := range al.release {
		t.Success = append(t.Success, raftstore.Op{Type: command.OpDelete, Key: []byte(k)})
	}
}

func allocKeys(svc *corev1.Service) map[string]bool {
	keys := map[string]bool{}
	if svc == nil {
		return keys
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		keys[ipKey(ip)] = true
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			keys[portKey(p.NodePort)] = true
		}
	}
	return keys
}

// allocate fills in svc's cluster IP and node ports (keeping old's where
// it had them) and returns the keys to claim and release.
func (a *ServiceAllocator) allocate(ctx context.Context, s *Storage, svc, old *corev1.Service) (*allocation, error) {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if svc.Spec.ClusterIP == "" && old != nil {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
	}
	wantPorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	oldKeys := allocKeys(old)
	taken := func(key string) bool {
		if oldKeys[key] {
			return false
		}
		kv, err := s.getKV(ctx, key, true)
		return err != nil || kv != nil
	}
	switch ip := svc.Spec.ClusterIP; {
	case ip == corev1.ClusterIPNone:
	case ip == "":
		got := ""
		for try := 0; try < 64 && got == ""; try++ {
			cand := a.ipAt(2 + rand.Uint32N(a.size-3))
			if !taken(ipKey(cand)) {
				got = cand
			}
		}
		if got == "" {
			return nil, apierrors.NewInternalError(fmt.Errorf("no free cluster IP found in the service CIDR (is it full?)"))
		}
		svc.Spec.ClusterIP = got
	default:
		parsed := net.ParseIP(ip)
		switch {
		case parsed == nil:
			errs = append(errs, field.Invalid(spec.Child("clusterIP"), ip, "must be a valid IP address or \"None\""))
		case !a.contains(parsed) && !(old != nil && old.Spec.ClusterIP == ip):
			errs = append(errs, field.Invalid(spec.Child("clusterIP"), ip, fmt.Sprintf("provided IP is not in the valid range. The range of valid IPs is %s/%d", a.base, 32-bitsFor(a.size))))
		case taken(ipKey(ip)):
			errs = append(errs, field.Invalid(spec.Child("clusterIP"), ip, "provided IP is already allocated"))
		}
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != "" {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	used := map[int32]bool{}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		path := spec.Child("ports").Index(i).Child("nodePort")
		if !wantPorts {
			if p.NodePort != 0 {
				errs = append(errs, field.Forbidden(path, "may not be used when `type` is 'ClusterIP'"))
			}
			continue
		}
		if p.NodePort == 0 && old != nil {
			for _, op := range old.Spec.Ports {
				if op.Port == p.Port && op.Protocol == p.Protocol && op.NodePort != 0 {
					p.NodePort = op.NodePort
				}
			}
		}
		if p.NodePort == 0 {
			for try := 0; try < 64 && p.NodePort == 0; try++ {
				cand := int32(a.portLow + rand.IntN(a.portHigh-a.portLow+1))
				if !used[cand] && !taken(portKey(cand)) {
					p.NodePort = cand
				}
			}
			if p.NodePort == 0 {
				return nil, apierrors.NewInternalError(fmt.Errorf("no free node port found in %d-%d", a.portLow, a.portHigh))
			}
		} else if int(p.NodePort) < a.portLow || int(p.NodePort) > a.portHigh {
			errs = append(errs, field.Invalid(path, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", a.portLow, a.portHigh)))
		} else if used[p.NodePort] || taken(portKey(p.NodePort)) {
			errs = append(errs, field.Invalid(path, p.NodePort, "provided port is already allocated"))
		}
		used[p.NodePort] = true
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	al := &allocation{value: owner(svc)}
	newKeys := allocKeys(svc)
	for k := range newKeys {
		if !oldKeys[k] {
			al.claim = append(al.claim, k)
		}
	}
	for k := range oldKeys {
		if !newKeys[k] {
			al.release = append(al.release, k)
		}
	}
	return al, nil
}

// release returns the keys a deleted Service frees.
func (a *ServiceAllocator) release(svc *corev1.Service) *allocation {
	al := &allocation{}
	for k := range allocKeys(svc) {
		al.release = append(al.release, k)
	}
	return al
}

func bitsFor(size uint32) int {
	n := 0
	for size > 1 {
		size >>= 1
		n++
	}
	return n
}
