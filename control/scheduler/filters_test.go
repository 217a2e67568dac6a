package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

type filterCase struct {
	name  string
	pod   *corev1.Pod
	node  *corev1.Node
	pods  []*corev1.Pod // already on the node
	wants []string      // nil: fits
}

func runFilterCases(t *testing.T, f Filter, cases []filterCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ni := NewSnapshot([]*corev1.Node{c.node}, c.pods).Nodes[0]
			got := f.Filter(NewPodInfo(c.pod), ni)
			if !slices.Equal(got, c.wants) {
				t.Errorf("%s: got %q, want %q", f.Name(), got, c.wants)
			}
		})
	}
}

func withTolerations(tols ...corev1.Toleration) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Tolerations = tols }
}

func withTaints(taints ...corev1.Taint) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = taints }
}

func withLabels(kv ...string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func TestNodeReady(t *testing.T) {
	notReady := func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
	unknown := func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }
	noConditions := func(n *corev1.Node) { n.Status.Conditions = nil }
	runFilterCases(t, NodeReady{}, []filterCase{
		{name: "ready", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10)},
		{name: "not ready", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10, notReady), wants: []string{"node(s) were not ready"}},
		{name: "unknown", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10, unknown), wants: []string{ReasonNotReady}},
		{name: "no conditions yet", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10, noConditions), wants: []string{ReasonNotReady}},
		{name: "tolerates not-ready", node: readyNode("n", "1", "1Gi", 10, notReady),
			pod: newPod("p", "", "", withTolerations(corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}))},
		{name: "tolerates everything", node: readyNode("n", "1", "1Gi", 10, notReady),
			pod: newPod("p", "", "", withTolerations(corev1.Toleration{Operator: corev1.TolerationOpExists}))},
		{name: "tolerates not-ready for NoExecute only", node: readyNode("n", "1", "1Gi", 10, notReady),
			pod:   newPod("p", "", "", withTolerations(corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})),
			wants: []string{ReasonNotReady}},
	})
}

func TestNodeUnschedulable(t *testing.T) {
	cordoned := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	runFilterCases(t, NodeUnschedulable{}, []filterCase{
		{name: "schedulable", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10)},
		{name: "cordoned", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10, cordoned), wants: []string{"node(s) were unschedulable"}},
		{name: "cordoned, tolerated", node: readyNode("n", "1", "1Gi", 10, cordoned),
			pod: newPod("p", "", "", withTolerations(corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}))},
	})
}

func TestTaintToleration(t *testing.T) {
	gpu := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	evict := corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute}
	soft := corev1.Taint{Key: "spot", Value: "true", Effect: corev1.TaintEffectPreferNoSchedule}
	runFilterCases(t, TaintToleration{}, []filterCase{
		{name: "no taints", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10)},
		{name: "NoSchedule untolerated", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10, withTaints(gpu)),
			wants: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "NoExecute untolerated", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10, withTaints(evict)),
			wants: []string{"node(s) had untolerated taint {maintenance: }"}},
		{name: "PreferNoSchedule only scores", pod: newPod("p", "", ""), node: readyNode("n", "1", "1Gi", 10, withTaints(soft))},
		{name: "Equal toleration", node: readyNode("n", "1", "1Gi", 10, withTaints(gpu)),
			pod: newPod("p", "", "", withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}))},
		{name: "Exists toleration, any effect", node: readyNode("n", "1", "1Gi", 10, withTaints(gpu, evict)),
			pod: newPod("p", "", "", withTolerations(
				corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists},
				corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}))},
		{name: "wrong value", node: readyNode("n", "1", "1Gi", 10, withTaints(gpu)),
			pod:   newPod("p", "", "", withTolerations(corev1.Toleration{Key: "dedicated", Value: "fpga", Effect: corev1.TaintEffectNoSchedule})),
			wants: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "wrong effect", node: readyNode("n", "1", "1Gi", 10, withTaints(gpu)),
			pod:   newPod("p", "", "", withTolerations(corev1.Toleration{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute})),
			wants: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "second taint untolerated", node: readyNode("n", "1", "1Gi", 10, withTaints(gpu, evict)),
			pod:   newPod("p", "", "", withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists})),
			wants: []string{"node(s) had untolerated taint {maintenance: }"}},
	})
}

func requiredAffinity(terms ...corev1.NodeSelectorTerm) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func term(exprs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: exprs}
}

func TestNodeAffinity(t *testing.T) {
	ssd := readyNode("n1", "1", "1Gi", 10, withLabels("disk", "ssd", "zone", "a", "cores", "16"))
	miss := []string{"node(s) didn't match Pod's node affinity/selector"}
	selector := func(kv ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{}
			for i := 0; i+1 < len(kv); i += 2 {
				p.Spec.NodeSelector[kv[i]] = kv[i+1]
			}
		}
	}
	cases := []filterCase{
		{name: "nothing asked", pod: newPod("p", "", "")},
		{name: "selector matches", pod: newPod("p", "", "", selector("disk", "ssd", "zone", "a"))},
		{name: "selector value differs", pod: newPod("p", "", "", selector("disk", "hdd")), wants: miss},
		{name: "selector label missing", pod: newPod("p", "", "", selector("gpu", "yes")), wants: miss},
		{name: "In", pod: newPod("p", "", "", requiredAffinity(term(expr("disk", corev1.NodeSelectorOpIn, "hdd", "ssd"))))},
		{name: "In, no value matches", pod: newPod("p", "", "", requiredAffinity(term(expr("disk", corev1.NodeSelectorOpIn, "hdd")))), wants: miss},
		{name: "In, label missing", pod: newPod("p", "", "", requiredAffinity(term(expr("gpu", corev1.NodeSelectorOpIn, "yes")))), wants: miss},
		{name: "NotIn", pod: newPod("p", "", "", requiredAffinity(term(expr("disk", corev1.NodeSelectorOpNotIn, "hdd"))))},
		{name: "NotIn, label missing", pod: newPod("p", "", "", requiredAffinity(term(expr("gpu", corev1.NodeSelectorOpNotIn, "yes"))))},
		{name: "NotIn, value listed", pod: newPod("p", "", "", requiredAffinity(term(expr("disk", corev1.NodeSelectorOpNotIn, "ssd")))), wants: miss},
		{name: "Exists", pod: newPod("p", "", "", requiredAffinity(term(expr("zone", corev1.NodeSelectorOpExists))))},
		{name: "Exists, missing", pod: newPod("p", "", "", requiredAffinity(term(expr("gpu", corev1.NodeSelectorOpExists)))), wants: miss},
		{name: "DoesNotExist", pod: newPod("p", "", "", requiredAffinity(term(expr("gpu", corev1.NodeSelectorOpDoesNotExist))))},
		{name: "DoesNotExist, present", pod: newPod("p", "", "", requiredAffinity(term(expr("zone", corev1.NodeSelectorOpDoesNotExist)))), wants: miss},
		{name: "Gt", pod: newPod("p", "", "", requiredAffinity(term(expr("cores", corev1.NodeSelectorOpGt, "8"))))},
		{name: "Gt, not greater", pod: newPod("p", "", "", requiredAffinity(term(expr("cores", corev1.NodeSelectorOpGt, "16")))), wants: miss},
		{name: "Lt", pod: newPod("p", "", "", requiredAffinity(term(expr("cores", corev1.NodeSelectorOpLt, "32"))))},
		{name: "Gt on a non-number", pod: newPod("p", "", "", requiredAffinity(term(expr("disk", corev1.NodeSelectorOpGt, "1")))), wants: miss},
		{name: "expressions are ANDed", wants: miss,
			pod: newPod("p", "", "", requiredAffinity(term(expr("disk", corev1.NodeSelectorOpIn, "ssd"), expr("zone", corev1.NodeSelectorOpIn, "b"))))},
		{name: "terms are ORed",
			pod: newPod("p", "", "", requiredAffinity(term(expr("zone", corev1.NodeSelectorOpIn, "b")), term(expr("disk", corev1.NodeSelectorOpIn, "ssd"))))},
		{name: "an empty term matches nothing", pod: newPod("p", "", "", requiredAffinity(corev1.NodeSelectorTerm{})), wants: miss},
		{name: "no terms match nothing", pod: newPod("p", "", "", requiredAffinity()), wants: miss},
		{name: "metadata.name field",
			pod: newPod("p", "", "", requiredAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n1")}}))},
		{name: "metadata.name field, other node", wants: miss,
			pod: newPod("p", "", "", requiredAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n2")}}))},
		{name: "selector and affinity both apply", wants: miss,
			pod: newPod("p", "", "", selector("disk", "hdd"), requiredAffinity(term(expr("zone", corev1.NodeSelectorOpExists))))},
	}
	for i := range cases {
		cases[i].node = ssd
	}
	runFilterCases(t, NodeAffinity{}, cases)
}

func hostPort(port int32, proto corev1.Protocol, ip string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto, HostIP: ip})
	}
}

func TestNodePorts(t *testing.T) {
	n := readyNode("n", "4", "4Gi", 10)
	busy := []string{"node(s) didn't have free ports for the requested pod ports"}
	holding := func(mutate ...func(*corev1.Pod)) []*corev1.Pod {
		return []*corev1.Pod{newPod("other", "", "", append([]func(*corev1.Pod){on("n")}, mutate...)...)}
	}
	runFilterCases(t, NodePorts{}, []filterCase{
		{name: "no host ports", node: n, pod: newPod("p", "", ""), pods: holding(hostPort(80, corev1.ProtocolTCP, ""))},
		{name: "free", node: n, pod: newPod("p", "", "", hostPort(80, corev1.ProtocolTCP, ""))},
		{name: "taken", node: n, pod: newPod("p", "", "", hostPort(80, corev1.ProtocolTCP, "")), pods: holding(hostPort(80, corev1.ProtocolTCP, "")), wants: busy},
		{name: "protocol defaults to TCP", node: n, pod: newPod("p", "", "", hostPort(80, "", "")), pods: holding(hostPort(80, corev1.ProtocolTCP, "")), wants: busy},
		{name: "other protocol", node: n, pod: newPod("p", "", "", hostPort(53, corev1.ProtocolUDP, "")), pods: holding(hostPort(53, corev1.ProtocolTCP, ""))},
		{name: "other port", node: n, pod: newPod("p", "", "", hostPort(8080, corev1.ProtocolTCP, "")), pods: holding(hostPort(80, corev1.ProtocolTCP, ""))},
		{name: "different addresses", node: n, pod: newPod("p", "", "", hostPort(80, corev1.ProtocolTCP, "10.0.0.1")), pods: holding(hostPort(80, corev1.ProtocolTCP, "10.0.0.2"))},
		{name: "address against all addresses", node: n, pod: newPod("p", "", "", hostPort(80, corev1.ProtocolTCP, "10.0.0.1")), pods: holding(hostPort(80, corev1.ProtocolTCP, "0.0.0.0")), wants: busy},
		{name: "all addresses against an address", node: n, pod: newPod("p", "", "", hostPort(80, corev1.ProtocolTCP, "")), pods: holding(hostPort(80, corev1.ProtocolTCP, "10.0.0.1")), wants: busy},
		{name: "finished pods hold nothing", node: n, pod: newPod("p", "", "", hostPort(80, corev1.ProtocolTCP, "")),
			pods: holding(hostPort(80, corev1.ProtocolTCP, ""), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
	})
}

func TestNodeResourcesFit(t *testing.T) {
	n := readyNode("n", "2", "4Gi", 3)
	onN := func(name, cpu, mem string) *corev1.Pod { return newPod(name, cpu, mem, on("n")) }
	withInit := func(cpu string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}
		}
	}
	withEphemeral := func(q string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse(q)
		}
	}
	runFilterCases(t, NodeResourcesFit{}, []filterCase{
		{name: "empty node", node: n, pod: newPod("p", "2", "4Gi")},
		{name: "exactly full", node: n, pod: newPod("p", "1", "1Gi"), pods: []*corev1.Pod{onN("a", "1", "3Gi")}},
		{name: "cpu", node: n, pod: newPod("p", "1500m", "1Gi"), pods: []*corev1.Pod{onN("a", "1", "1Gi")}, wants: []string{"Insufficient cpu"}},
		{name: "memory", node: n, pod: newPod("p", "100m", "2Gi"), pods: []*corev1.Pod{onN("a", "1", "3Gi")}, wants: []string{"Insufficient memory"}},
		{name: "cpu and memory", node: n, pod: newPod("p", "3", "5Gi"), wants: []string{"Insufficient cpu", "Insufficient memory"}},
		{name: "pod count", node: n, pod: newPod("p", "", ""), pods: []*corev1.Pod{onN("a", "", ""), onN("b", "", ""), onN("c", "", "")},
			wants: []string{"Too many pods"}},
		{name: "pod count and cpu", node: n, pod: newPod("p", "3", ""), pods: []*corev1.Pod{onN("a", "", ""), onN("b", "", ""), onN("c", "", "")},
			wants: []string{"Too many pods", "Insufficient cpu"}},
		{name: "no requests fit an overcommitted node", node: n, pod: newPod("p", "", ""), pods: []*corev1.Pod{onN("a", "3", "8Gi")}},
		{name: "the largest init container counts", node: n, pod: newPod("p", "100m", "", withInit("3")), wants: []string{"Insufficient cpu"}},
		{name: "a smaller init container does not add", node: n, pod: newPod("p", "2", "", withInit("1"))},
		{name: "ephemeral storage", node: readyNode("n", "2", "4Gi", 3, func(n *corev1.Node) {
			n.Status.Allocatable[corev1.ResourceEphemeralStorage] = resource.MustParse("10Gi")
		}), pod: newPod("p", "", "", withEphemeral("11Gi")), wants: []string{"Insufficient ephemeral-storage"}},
		{name: "no pods allocatable", node: readyNode("n", "2", "4Gi", 0), pod: newPod("p", "", ""), wants: []string{"Too many pods"}},
	})
}

func TestNewPodInfo(t *testing.T) {
	p := newPod("p", "250m", "", hostPort(80, "", ""), hostPort(53, corev1.ProtocolUDP, "10.0.0.1"), ownedBy("rs-1"))
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceMemory: resource.MustParse("1Gi"),
	}}})
	pi := NewPodInfo(p)
	if want := (Resources{MilliCPU: 250, Memory: 1 << 30}); pi.Requests != want {
		t.Errorf("requests %+v, want %+v", pi.Requests, want)
	}
	// Each container gets the defaults for what it leaves out.
	if want := (Resources{MilliCPU: 250 + DefaultMilliCPURequest, Memory: DefaultMemoryRequest + 1<<30}); pi.NonZero != want {
		t.Errorf("non-zero requests %+v, want %+v", pi.NonZero, want)
	}
	wantPorts := []HostPort{{IP: "0.0.0.0", Protocol: corev1.ProtocolTCP, Port: 80}, {IP: "10.0.0.1", Protocol: corev1.ProtocolUDP, Port: 53}}
	if !slices.Equal(pi.HostPorts, wantPorts) {
		t.Errorf("host ports %+v, want %+v", pi.HostPorts, wantPorts)
	}
	if pi.Owner != "rs-1" {
		t.Errorf("owner %q", pi.Owner)
	}
}
