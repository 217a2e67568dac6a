package scheduler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/control/scheduler"
)

func TestBindsPods(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("n1", "4", "8Gi", 110))
	e.addNode(hollowNode("n2", "4", "8Gi", 110))
	e.start(fastConfig())
	e.addPod(pod("p1", "100m", "128Mi"))
	e.addPod(pod("p2", "", ""))
	n1, n2 := e.waitBound("p1"), e.waitBound("p2")
	if n1 == n2 {
		t.Errorf("both pods went to %s; least-allocated should spread them", n1)
	}
	p := e.getPod("p1")
	if !hasCondition(p, corev1.PodScheduled, corev1.ConditionTrue) {
		t.Errorf("bound pod's conditions: %+v", p.Status.Conditions)
	}
	if st := e.sched.Stats(); st.Bound < 2 || st.Attempts < 2 {
		t.Errorf("stats %+v", st)
	}
}

func hasCondition(p *corev1.Pod, typ corev1.PodConditionType, status corev1.ConditionStatus) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == typ && c.Status == status {
			return true
		}
	}
	return false
}

// oneEvent waits for the pod's FailedScheduling event and checks it is the
// only one.
func (e *env) oneEvent(podName string, check func(*corev1.Event) error) *corev1.Event {
	e.t.Helper()
	var ev *corev1.Event
	eventually(e.t, 10*time.Second, func() error {
		evs := e.events(podName)
		if len(evs) != 1 {
			return fmt.Errorf("%d events about %s, want 1: %+v", len(evs), podName, evs)
		}
		ev = evs[0]
		if check != nil {
			return check(ev)
		}
		return nil
	})
	return ev
}

func TestFitsNowhereThenNodeAdded(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("small", "1", "1Gi", 110, func(n *corev1.Node) { n.Labels["disk"] = "ssd" }))
	e.addNode(hollowNode("labelled", "8", "16Gi", 110, func(n *corev1.Node) { n.Labels["disk"] = "hdd" }))
	e.start(fastConfig())
	e.addPod(pod("big", "2", "1Gi", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }))
	msg := e.waitUnschedulable("big")
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector."
	if msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
	ev := e.oneEvent("big", nil)
	if ev.Type != corev1.EventTypeWarning || ev.Reason != "FailedScheduling" || ev.Message != want ||
		ev.Source.Component != "default-scheduler" || ev.ReportingController != "default-scheduler" ||
		ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.Name != "big" || ev.InvolvedObject.UID == "" || ev.Count != 1 {
		t.Fatalf("event: %+v", ev)
	}

	// Nodes that do not help: each is a change, so the pod is tried again;
	// the one event is updated (count, message), not repeated.
	e.addNode(hollowNode("other1", "8", "16Gi", 110))
	e.addNode(hollowNode("other2", "8", "16Gi", 110))
	want = "0/4 nodes are available: 1 Insufficient cpu, 3 node(s) didn't match Pod's node affinity/selector."
	eventually(t, 10*time.Second, func() error {
		if msg := e.waitUnschedulable("big"); msg != want {
			return fmt.Errorf("message %q, want %q", msg, want)
		}
		return nil
	})
	e.oneEvent("big", func(ev *corev1.Event) error {
		if ev.Count < 2 || ev.Message != want {
			return fmt.Errorf("event count %d, message %q", ev.Count, ev.Message)
		}
		return nil
	})

	e.addNode(hollowNode("fast", "4", "8Gi", 110, func(n *corev1.Node) { n.Labels["disk"] = "ssd" }))
	if node := e.waitBound("big"); node != "fast" {
		t.Fatalf("bound to %s, want fast", node)
	}
	if p := e.getPod("big"); !hasCondition(p, corev1.PodScheduled, corev1.ConditionTrue) {
		t.Errorf("conditions after binding: %+v", p.Status.Conditions)
	}
}

func TestNoNodes(t *testing.T) {
	e := newEnv(t)
	e.start(fastConfig())
	e.addPod(pod("p", "", ""))
	if msg := e.waitUnschedulable("p"); msg != "no nodes available to schedule pods" {
		t.Fatalf("message %q", msg)
	}
	e.addNode(hollowNode("n1", "1", "1Gi", 110))
	e.waitBound("p")
}

func TestUncordon(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("n1", "4", "8Gi", 110, func(n *corev1.Node) { n.Spec.Unschedulable = true }))
	e.addNode(hollowNode("n2", "4", "8Gi", 110, func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }))
	e.start(fastConfig())
	e.addPod(pod("p", "100m", ""))
	want := "0/2 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable."
	if msg := e.waitUnschedulable("p"); msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
	e.patchNode("n1", `{"spec":{"unschedulable":false}}`)
	if node := e.waitBound("p"); node != "n1" {
		t.Fatalf("bound to %s", node)
	}
	// A DaemonSet-like pod that tolerates the cordon goes anyway.
	e.patchNode("n1", `{"spec":{"unschedulable":true}}`)
	e.addPod(pod("ds", "", "", func(p *corev1.Pod) {
		p.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}))
	if node := e.waitBound("ds"); node != "n1" {
		t.Fatalf("tolerating pod bound to %s", node)
	}
}

func TestSpreadsReplicaSet(t *testing.T) {
	e := newEnv(t)
	// One big node: least-allocated alone would put most pods on it.
	e.addNode(hollowNode("big", "32", "64Gi", 110))
	e.addNode(hollowNode("small1", "4", "8Gi", 110))
	e.addNode(hollowNode("small2", "4", "8Gi", 110))
	e.start(fastConfig())
	rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9", UID: types.UID("6f1d8c3e-0000-4000-8000-000000000001"), Controller: ptr(true)}
	for i := range 6 {
		e.addPod(pod(fmt.Sprintf("web-%d", i), "100m", "128Mi", func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{rs}
		}))
	}
	per := map[string]int{}
	for i := range 6 {
		per[e.waitBound(fmt.Sprintf("web-%d", i))]++
	}
	if per["big"] != 2 || per["small1"] != 2 || per["small2"] != 2 {
		t.Fatalf("pods per node %v, want 2 on each", per)
	}
}

func TestResourcesFillUp(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("n1", "1", "4Gi", 110))
	e.addNode(hollowNode("n2", "1", "4Gi", 3))
	// Pods bound by someone else count too.
	e.addPod(pod("preset", "500m", "", func(p *corev1.Pod) { p.Spec.NodeName = "n1" }))
	e.start(fastConfig())
	// n1 has room for 1 more (500m), n2 for 3 (pod count).
	for i := range 6 {
		e.addPod(pod(fmt.Sprintf("p%d", i), "250m", ""))
	}
	bound, pending := 0, 0
	eventually(t, 20*time.Second, func() error {
		bound, pending = 0, 0
		for _, p := range e.listPods() {
			switch {
			case p.Spec.NodeName != "":
				bound++
			case strings.HasPrefix(e.unschedulableMessage(p), "0/2 nodes are available"):
				pending++
			}
		}
		if bound != 6 || pending != 1 {
			return fmt.Errorf("%d bound, %d pending with a condition; want 6 and 1", bound, pending)
		}
		return nil
	})
	perNode, cpu := map[string]int{}, map[string]int64{}
	var waiting string
	for _, p := range e.listPods() {
		if p.Spec.NodeName == "" {
			waiting = p.Name
			want := "0/2 nodes are available: 1 Insufficient cpu, 1 Too many pods."
			if msg := e.unschedulableMessage(p); msg != want {
				t.Errorf("pending pod %s: %q, want %q", p.Name, msg, want)
			}
			continue
		}
		perNode[p.Spec.NodeName]++
		cpu[p.Spec.NodeName] += p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
	}
	if cpu["n1"] > 1000 || perNode["n2"] > 3 {
		t.Fatalf("overcommitted: pods %v, cpu %v", perNode, cpu)
	}
	// A terminating pod still holds its node (it runs until its agent
	// stops it, as in Kubernetes); once gone, the waiting pod goes there.
	// No agent runs here: delete at once.
	if err := e.c.Resource(podsM).Namespace("default").Delete(context.Background(), "preset", &metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if node := e.waitBound(waiting); node != "n1" {
		t.Fatalf("waiting pod bound to %s", node)
	}
}

func (e *env) unschedulableMessage(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Message
		}
	}
	return ""
}

func TestTaintsAndTolerations(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("gpu", "8", "16Gi", 110, func(n *corev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	}))
	e.addNode(hollowNode("draining", "8", "16Gi", 110, func(n *corev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "maintenance", Effect: corev1.TaintEffectNoExecute}}
	}))
	e.start(fastConfig())
	e.addPod(pod("plain", "100m", ""))
	want := "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had untolerated taint {maintenance: }."
	if msg := e.waitUnschedulable("plain"); msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
	e.addPod(pod("trainer", "100m", "", func(p *corev1.Pod) {
		p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	}))
	if node := e.waitBound("trainer"); node != "gpu" {
		t.Fatalf("trainer bound to %s", node)
	}
	// Removing the taint is a node change: the plain pod goes.
	e.patchNode("draining", `{"spec":{"taints":null}}`)
	if node := e.waitBound("plain"); node != "draining" {
		t.Fatalf("plain bound to %s", node)
	}
}

func TestHostPorts(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("n1", "8", "16Gi", 110))
	e.addNode(hollowNode("n2", "8", "16Gi", 110))
	e.start(fastConfig())
	withPort := func(port int32, proto corev1.Protocol) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port, HostPort: port, Protocol: proto}}
		}
	}
	e.addPod(pod("web1", "", "", withPort(8080, corev1.ProtocolTCP)))
	e.addPod(pod("web2", "", "", withPort(8080, corev1.ProtocolTCP)))
	if a, b := e.waitBound("web1"), e.waitBound("web2"); a == b {
		t.Fatalf("both on %s with the same host port", a)
	}
	e.addPod(pod("dns", "", "", withPort(8080, corev1.ProtocolUDP)))
	e.waitBound("dns") // another protocol: no conflict
	e.addPod(pod("web3", "", "", withPort(8080, corev1.ProtocolTCP)))
	want := "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
	if msg := e.waitUnschedulable("web3"); msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
}

func TestLeavesOtherSchedulersPods(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("n1", "4", "8Gi", 110))
	e.start(fastConfig())
	e.addPod(pod("mine", "", ""))
	e.addPod(pod("theirs", "", "", func(p *corev1.Pod) { p.Spec.SchedulerName = "other-scheduler" }))
	e.addPod(pod("last", "", ""))
	e.waitBound("mine")
	e.waitBound("last") // queued after "theirs": by now it was seen and skipped
	if p := e.getPod("theirs"); p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
		t.Fatalf("another scheduler's pod was touched: node %q, conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	}
}

// TestRestart stops a scheduler (leadership lost) and runs it again (a
// later term): the new run relists and accounts for what the first bound.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	e.addNode(hollowNode("n1", "1", "4Gi", 110))
	e.addNode(hollowNode("n2", "1", "4Gi", 110))
	cfg := fastConfig()
	cfg.Client = e.c
	cfg.Logger = testLogger(t)
	s, err := scheduler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	stop := run()
	for i := range 3 {
		e.addPod(pod(fmt.Sprintf("a%d", i), "500m", ""))
	}
	for i := range 3 {
		e.waitBound(fmt.Sprintf("a%d", i))
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("a second concurrent Run was allowed")
	}
	stop()
	for i := range 2 {
		e.addPod(pod(fmt.Sprintf("b%d", i), "500m", ""))
	}
	stop = run()
	defer stop()
	e.waitBound("b0")
	b1 := e.waitUnschedulable("b1")
	if want := "0/2 nodes are available: 2 Insufficient cpu."; b1 != want {
		t.Fatalf("b1: %q, want %q", b1, want)
	}
}

func TestBindRace(t *testing.T) {
	// Someone else binds pods the scheduler also wants: the API server
	// binds each once; the scheduler takes its assumptions back, and its
	// books still match the cluster afterwards.
	e := newEnv(t)
	e.addNode(hollowNode("n1", "2", "4Gi", 110))
	e.addNode(hollowNode("n2", "2", "4Gi", 110))
	e.start(fastConfig())
	for i := range 20 {
		name := fmt.Sprintf("p%02d", i)
		e.addPod(pod(name, "100m", ""))
		if i%2 == 0 {
			e.bind(name, "n2") // may lose to the scheduler: 409 is fine
		}
	}
	for i := range 20 {
		e.waitBound(fmt.Sprintf("p%02d", i))
	}
	free := map[string]int64{"n1": 2000, "n2": 2000}
	for _, p := range e.listPods() {
		free[p.Spec.NodeName] -= p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
	}
	best := "n1"
	if free["n2"] > free["n1"] {
		best = "n2"
	}
	// A pod that fits only if the scheduler's books are exact.
	e.addPod(pod("filler", fmt.Sprintf("%dm", free[best]), ""))
	if node := e.waitBound("filler"); free["n1"] != free["n2"] && node != best {
		t.Fatalf("filler bound to %s; free was %v", node, free)
	}
}

// bind POSTs a Binding as another scheduler would; a 409 (bound already)
// is not an error.
func (e *env) bind(pod, node string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":%q},"target":{"kind":"Node","name":%q}}`, pod, node)
	req, err := http.NewRequest("POST", e.srv.URL+"/api/v1/namespaces/default/pods/"+pod+"/binding", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.srv.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		e.t.Fatalf("binding %s: %s", pod, resp.Status)
	}
}
