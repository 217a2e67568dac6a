package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

// leaseNamespace holds node heartbeats, as in Kubernetes.
const leaseNamespace = "kube-node-lease"

// machine reads the node's capacity from the machine where not configured.
func (a *Agent) capacity() corev1.ResourceList {
	cpu := a.cfg.CPU
	if cpu <= 0 {
		cpu = int64(goruntime.NumCPU())
	}
	mem := a.cfg.MemoryBytes
	if mem <= 0 {
		mem = memTotal()
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(a.cfg.MaxPods, resource.DecimalSI),
	}
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return goruntime.GOOS
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return goruntime.GOOS
}

// nodeStatus is the status the agent reports.
func (a *Agent) nodeStatus() corev1.NodeStatus {
	now := metav1.NewTime(a.cfg.Now())
	capacity := a.capacity()
	st := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "AgentReady", Message: "drover agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "AgentHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "AgentHasNoDiskPressure", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "AgentHasSufficientPID", LastHeartbeatTime: now, LastTransitionTime: now},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KernelVersion: kernelVersion(), OSImage: osImage(), OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
			ContainerRuntimeVersion: a.cfg.RuntimeName, KubeletVersion: a.cfg.Version, KubeProxyVersion: a.cfg.Version,
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.cfg.DaemonPort}},
	}
	if a.cfg.Address != "" {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a.cfg.Address})
	}
	st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: a.cfg.NodeName})
	return st
}

// register creates the Node (or takes over an existing one of this name),
// posts its status, and sets up the pod network for its subnet.
func (a *Agent) register(ctx context.Context) error {
	nodes := a.cfg.Client.Resource(client.Nodes)
	labels := map[string]string{
		"kubernetes.io/hostname": a.cfg.NodeName,
		"kubernetes.io/os":       goruntime.GOOS,
		"kubernetes.io/arch":     goruntime.GOARCH,
	}
	for k, v := range a.cfg.Labels {
		labels[k] = v
	}
	var node *corev1.Node
	for {
		var err error
		node, err = client.GetTyped[corev1.Node](ctx, nodes, a.cfg.NodeName)
		if client.IsNotFound(err) {
			node, err = client.CreateTyped(ctx, nodes, &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: labels},
				Spec:       corev1.NodeSpec{Taints: a.cfg.Taints},
			})
		}
		if err == nil {
			break
		}
		if client.IsAlreadyExists(err) {
			continue
		}
		a.log.Warn("registering the node failed; retrying", "err", err)
		if !pause(ctx, time.Second) {
			return ctx.Err()
		}
	}
	a.log.Info("node registered", "podCIDR", node.Spec.PodCIDR)
	if err := a.postStatus(ctx); err != nil {
		a.log.Warn("posting node status failed", "err", err)
	}
	if node.Spec.PodCIDR == "" {
		return fmt.Errorf("agent: node %s has no pod subnet: the cluster CIDR (--cluster-cidr on the masters) has none left", a.cfg.NodeName)
	}
	nw, err := a.cfg.Network(node.Spec.PodCIDR)
	if err != nil {
		return fmt.Errorf("agent: set up the pod network for %s: %w", node.Spec.PodCIDR, err)
	}
	a.mu.Lock()
	a.podCIDR, a.net = node.Spec.PodCIDR, nw
	a.mu.Unlock()
	return nil
}

func (a *Agent) postStatus(ctx context.Context) error {
	nodes := a.cfg.Client.Resource(client.Nodes)
	for attempt := 0; attempt < 5; attempt++ {
		node, err := client.GetTyped[corev1.Node](ctx, nodes, a.cfg.NodeName)
		if err != nil {
			return err
		}
		node.Status = a.nodeStatus()
		_, err = client.UpdateTyped(ctx, nodes, node, "status")
		if !client.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("node status kept conflicting")
}

// renewLease keeps the node's Lease in kube-node-lease fresh.
func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.cfg.Client.Resource(client.Leases).Namespace(leaseNamespace)
	now := metav1.NewMicroTime(a.cfg.Now())
	secs := int32(40)
	holder := a.cfg.NodeName
	l, err := client.GetTyped[coordinationv1.Lease](ctx, leases, a.cfg.NodeName)
	if client.IsNotFound(err) {
		_, err = client.CreateTyped(ctx, leases, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: leaseNamespace},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now},
		})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &secs, &now
	_, err = client.UpdateTyped(ctx, leases, l)
	return err
}

// heartbeat renews the Lease and the Node's status until ctx ends.
func (a *Agent) heartbeat(ctx context.Context) {
	for {
		if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("renewing the node lease failed", "err", err)
		}
		if err := a.postStatus(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("posting node status failed", "err", err)
		}
		if !pause(ctx, a.cfg.StatusInterval) {
			return
		}
	}
}

// pause waits d or until ctx ends; false when ctx ended.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
