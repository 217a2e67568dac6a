package printers

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var testNow = time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

func om(name string, created time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(created)}
}

func mustCells(t *testing.T, obj runtime.Object) []any {
	t.Helper()
	c, err := Cells(obj, testNow)
	if err != nil {
		t.Fatalf("Cells(%T): %v", obj, err)
	}
	return c
}

func headers(cols []metav1.TableColumnDefinition) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = strings.ToUpper(c.Name)
		if c.Priority > 0 {
			h[i] += "*" // wide only
		}
	}
	return h
}

func TestColumnNames(t *testing.T) {
	for _, tc := range []struct {
		gk   schema.GroupKind
		want string
	}{
		{gkPod, "NAME READY STATUS RESTARTS AGE IP* NODE* NOMINATED NODE* READINESS GATES*"},
		{gkDeployment, "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS* IMAGES* SELECTOR*"},
		{gkReplicaSet, "NAME DESIRED CURRENT READY AGE CONTAINERS* IMAGES* SELECTOR*"},
		{gkDaemonSet, "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE CONTAINERS* IMAGES* SELECTOR*"},
		{gkStatefulSet, "NAME READY AGE CONTAINERS* IMAGES*"},
		{gkJob, "NAME COMPLETIONS DURATION AGE CONTAINERS* IMAGES* SELECTOR*"},
		{gkNode, "NAME STATUS ROLES AGE VERSION INTERNAL-IP* EXTERNAL-IP* OS-IMAGE* KERNEL-VERSION* CONTAINER-RUNTIME*"},
		{gkService, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR*"},
		{gkEndpoints, "NAME ENDPOINTS AGE"},
		{gkNamespace, "NAME STATUS AGE"},
		{gkConfigMap, "NAME DATA AGE"},
		{gkSecret, "NAME TYPE DATA AGE"},
		{gkServiceAccount, "NAME SECRETS AGE"},
		{gkEvent, "LAST SEEN TYPE REASON OBJECT SUBOBJECT* SOURCE* MESSAGE FIRST SEEN* COUNT* NAME*"},
		{gkLease, "NAME HOLDER AGE"},
		{gkRoleBinding, "NAME ROLE AGE USERS* GROUPS* SERVICEACCOUNTS*"},
		{gkClusterRoleBinding, "NAME ROLE AGE USERS* GROUPS* SERVICEACCOUNTS*"},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "Role"}, "NAME CREATED AT"},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, "NAME CREATED AT"},
		{schema.GroupKind{Group: "example.com", Kind: "Widget"}, "NAME CREATED AT"},
		{schema.GroupKind{Group: "core", Kind: "Pod"}, "NAME READY STATUS RESTARTS AGE IP* NODE* NOMINATED NODE* READINESS GATES*"},
	} {
		if got := strings.Join(headers(Columns(tc.gk)), " "); got != tc.want {
			t.Errorf("Columns(%v) = %s\nwant %s", tc.gk, got, tc.want)
		}
	}
}

func TestColumnMetadata(t *testing.T) {
	for gk := range columnsByKind {
		cols := Columns(gk)
		names := 0
		for _, c := range cols {
			if c.Description == "" {
				t.Errorf("%v column %q has no description", gk, c.Name)
			}
			switch c.Type {
			case typeString, typeInteger, typeDate:
			default:
				t.Errorf("%v column %q has type %q", gk, c.Name, c.Type)
			}
			if c.Format == formatName {
				names++
			}
		}
		if names != 1 {
			t.Errorf("%v has %d name-format columns, want 1", gk, names)
		}
		if gk != gkEvent && cols[0].Format != formatName {
			t.Errorf("%v: first column is %q, want the name", gk, cols[0].Name)
		}
	}
	// Columns hands out copies.
	c := Columns(gkPod)
	c[0].Name = "changed"
	if Columns(gkPod)[0].Name != "Name" {
		t.Error("Columns returned shared storage")
	}
	if d := Columns(schema.GroupKind{Kind: "Unknown"}); d[1].Type != "date" {
		t.Errorf("default Created At column type = %q, want date", d[1].Type)
	}
}

// Every printer must yield exactly one cell per column of its kind.
func TestCellCountsMatchColumns(t *testing.T) {
	for gk, obj := range map[schema.GroupKind]runtime.Object{
		gkPod: &corev1.Pod{}, gkDeployment: &appsv1.Deployment{}, gkReplicaSet: &appsv1.ReplicaSet{},
		gkDaemonSet: &appsv1.DaemonSet{}, gkStatefulSet: &appsv1.StatefulSet{}, gkJob: &batchv1.Job{},
		gkNode: &corev1.Node{}, gkService: &corev1.Service{}, gkEndpoints: &corev1.Endpoints{},
		gkNamespace: &corev1.Namespace{}, gkConfigMap: &corev1.ConfigMap{}, gkSecret: &corev1.Secret{},
		gkServiceAccount: &corev1.ServiceAccount{}, gkEvent: &corev1.Event{}, gkLease: &coordinationv1.Lease{},
		gkRoleBinding: &rbacv1.RoleBinding{}, gkClusterRoleBinding: &rbacv1.ClusterRoleBinding{},
		{Group: "rbac.authorization.k8s.io", Kind: "Role"}:        &rbacv1.Role{},
		{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}: &rbacv1.ClusterRole{},
		{Group: "", Kind: "PersistentVolumeClaim"}:                &corev1.PersistentVolumeClaim{},
	} {
		if n, m := len(mustCells(t, obj)), len(Columns(gk)); n != m {
			t.Errorf("%v: %d cells for %d columns", gk, n, m)
		}
		if _, ok := columnsByKind[gk]; ok {
			if got := kindOf(obj).GroupKind(); got != gk {
				t.Errorf("%T is kind %v in the scheme, table key is %v", obj, got, gk)
			}
		}
	}
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Minute)}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, code, signal int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal}}
}

func TestPodCells(t *testing.T) {
	type cs = corev1.ContainerStatus
	twoContainers := corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}
	withInit := corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "i1"}, {Name: "i2"}, {Name: "i3"}},
		Containers:     []corev1.Container{{Name: "a"}},
	}
	readyCond := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	for _, tc := range []struct {
		name     string
		pod      corev1.Pod
		ready    string
		status   string
		restarts int64
	}{
		{
			name:  "pending without statuses",
			pod:   corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodPending}},
			ready: "0/2", status: "Pending",
		},
		{
			name: "running, one ready",
			pod: corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []cs{
				{Name: "a", Ready: true, State: running(), RestartCount: 2},
				{Name: "b", Ready: false, State: running(), RestartCount: 1},
			}}},
			ready: "1/2", status: "Running", restarts: 3,
		},
		{
			name: "creating",
			pod: corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []cs{
				{Name: "a", State: waiting("ContainerCreating")}, {Name: "b", State: waiting("ContainerCreating")},
			}}},
			ready: "0/2", status: "ContainerCreating",
		},
		{
			name: "crash loop in one container",
			pod: corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []cs{
				{Name: "a", Ready: true, State: running()},
				{Name: "b", State: waiting("CrashLoopBackOff"), RestartCount: 7},
			}}},
			ready: "1/2", status: "CrashLoopBackOff", restarts: 7,
		},
		{
			name: "first container's state wins",
			pod: corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []cs{
				{Name: "a", State: waiting("ImagePullBackOff")},
				{Name: "b", State: waiting("CrashLoopBackOff")},
			}}},
			ready: "0/2", status: "ImagePullBackOff",
		},
		{
			name: "completed",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []cs{
				{Name: "a", State: terminated("Completed", 0, 0)},
			}}},
			ready: "0/1", status: "Completed",
		},
		{
			name: "terminated without reason: exit code",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []cs{
				{Name: "a", State: terminated("", 3, 0)},
			}}},
			ready: "0/1", status: "ExitCode:3",
		},
		{
			name: "terminated without reason: signal",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []cs{
				{Name: "a", State: terminated("", 137, 9)},
			}}},
			ready: "0/1", status: "Signal:9",
		},
		{
			name: "error",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []cs{
				{Name: "a", State: terminated("Error", 1, 0), RestartCount: 1},
			}}},
			ready: "0/1", status: "Error", restarts: 1,
		},
		{
			name: "completed sidecar but ready pod",
			pod: corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: readyCond, ContainerStatuses: []cs{
				{Name: "a", State: terminated("Completed", 0, 0)},
				{Name: "b", Ready: true, State: running()},
			}}},
			ready: "1/2", status: "Running",
		},
		{
			name: "completed sidecar, pod not ready",
			pod: corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []cs{
				{Name: "a", State: terminated("Completed", 0, 0)},
				{Name: "b", Ready: true, State: running()},
			}}},
			ready: "1/2", status: "NotReady",
		},
		{
			name:  "pod-level reason replaces the phase",
			pod:   corev1.Pod{Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}},
			ready: "0/2", status: "Evicted",
		},
		{
			name: "init: second of three running",
			pod: corev1.Pod{Spec: withInit, Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []cs{
				{Name: "i1", State: terminated("Completed", 0, 0)},
				{Name: "i2", State: running()},
				{Name: "i3", State: waiting("PodInitializing")},
			}, ContainerStatuses: []cs{{Name: "a", State: waiting("PodInitializing")}}}},
			ready: "0/1", status: "Init:1/3",
		},
		{
			name: "init: waiting on PodInitializing counts as progress",
			pod: corev1.Pod{Spec: withInit, Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []cs{
				{Name: "i1", State: waiting("PodInitializing")},
			}}},
			ready: "0/1", status: "Init:0/3",
		},
		{
			name: "init: crash loop",
			pod: corev1.Pod{Spec: withInit, Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []cs{
				{Name: "i1", State: waiting("CrashLoopBackOff"), RestartCount: 4},
			}, ContainerStatuses: []cs{{Name: "a", RestartCount: 9}}}},
			ready: "0/1", status: "Init:CrashLoopBackOff", restarts: 4,
		},
		{
			name: "init: failed with reason",
			pod: corev1.Pod{Spec: withInit, Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []cs{
				{Name: "i1", State: terminated("Error", 1, 0)},
			}}},
			ready: "0/1", status: "Init:Error",
		},
		{
			name: "init: failed with exit code",
			pod: corev1.Pod{Spec: withInit, Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []cs{
				{Name: "i1", State: terminated("", 2, 0)},
			}}},
			ready: "0/1", status: "Init:ExitCode:2",
		},
		{
			name: "init: killed by signal",
			pod: corev1.Pod{Spec: withInit, Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []cs{
				{Name: "i1", State: terminated("", 137, 9)},
			}}},
			ready: "0/1", status: "Init:Signal:9",
		},
		{
			name: "init done: app containers' restarts only",
			pod: corev1.Pod{Spec: withInit, Status: corev1.PodStatus{Phase: corev1.PodRunning, InitContainerStatuses: []cs{
				{Name: "i1", State: terminated("Completed", 0, 0), RestartCount: 5},
				{Name: "i2", State: terminated("Completed", 0, 0)},
				{Name: "i3", State: terminated("Completed", 0, 0)},
			}, ContainerStatuses: []cs{{Name: "a", Ready: true, State: running(), RestartCount: 1}}}},
			ready: "1/1", status: "Running", restarts: 1,
		},
		{
			name: "terminating",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: ptr(ago(0))}, Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []cs{
				{Name: "a", Ready: true, State: running()}, {Name: "b", Ready: true, State: running()},
			}}},
			ready: "2/2", status: "Terminating",
		},
		{
			name:  "terminating on a lost node",
			pod:   corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: ptr(ago(0))}, Spec: twoContainers, Status: corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"}},
			ready: "0/2", status: "Unknown",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pod.Name = "p"
			c := mustCells(t, &tc.pod)
			if c[1] != tc.ready || c[2] != tc.status || c[3] != tc.restarts {
				t.Errorf("READY/STATUS/RESTARTS = %v/%v/%v, want %v/%v/%v", c[1], c[2], c[3], tc.ready, tc.status, tc.restarts)
			}
		})
	}
}

func TestPodWideCells(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: om("web", 90*time.Second),
		Spec: corev1.PodSpec{
			NodeName:       "node-1",
			Containers:     []corev1.Container{{Name: "a"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}},
		},
		Status: corev1.PodStatus{
			PodIP: "10.0.0.9", PodIPs: []corev1.PodIP{{IP: "10.0.0.9"}, {IP: "fd00::9"}},
			Conditions: []corev1.PodCondition{{Type: "example.com/lb", Status: corev1.ConditionTrue}, {Type: "example.com/dns", Status: corev1.ConditionFalse}},
		},
	}
	want := []any{"web", "0/1", "", int64(0), "90s", "10.0.0.9", "node-1", "<none>", "1/2"}
	if got := mustCells(t, pod); !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant    %#v", got, want)
	}

	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare"}}
	want = []any{"bare", "0/0", "", int64(0), "<unknown>", "<none>", "<none>", "<none>", "<none>"}
	if got := mustCells(t, bare); !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant    %#v", got, want)
	}
}

func TestServiceCells(t *testing.T) {
	svc := func(typ corev1.ServiceType, mutate func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: om("svc", 2*time.Hour), Spec: corev1.ServiceSpec{Type: typ, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}}}
		if mutate != nil {
			mutate(s)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want []any
	}{
		{"cluster ip", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}
			s.Spec.Selector = map[string]string{"app": "web", "tier": "front"}
		}), []any{"svc", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "120m", "app=web,tier=front"}},
		{"node port", svc(corev1.ServiceTypeNodePort, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: "TCP"}}
			s.Spec.ExternalIPs = []string{"192.0.2.1", "192.0.2.2"}
		}), []any{"svc", "NodePort", "10.96.0.10", "192.0.2.1,192.0.2.2", "80:30080/TCP", "120m", "<none>"}},
		{"headless, no ports", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}), []any{"svc", "ClusterIP", "None", "<none>", "<none>", "120m", "<none>"}},
		{"pending load balancer", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 443, NodePort: 31443, Protocol: "TCP"}}
		}), []any{"svc", "LoadBalancer", "10.96.0.10", "<pending>", "443:31443/TCP", "120m", "<none>"}},
		{"load balancer with ingress and external ips", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}, {Hostname: "lb.example.com"}}
			s.Spec.ExternalIPs = []string{"192.0.2.1"}
		}), []any{"svc", "LoadBalancer", "10.96.0.10", "203.0.113.7,lb.example.com,192.0.2.1", "<none>", "120m", "<none>"}},
		{"external name", svc(corev1.ServiceTypeExternalName, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.ExternalName = "", nil, "db.example.com"
		}), []any{"svc", "ExternalName", "<none>", "db.example.com", "<none>", "120m", "<none>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustCells(t, tc.svc); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cells = %#v\nwant    %#v", got, tc.want)
			}
		})
	}
}

func TestNodeCells(t *testing.T) {
	node := func(labels map[string]string, unschedulable bool, conds ...corev1.NodeCondition) *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: labels, CreationTimestamp: ago(50 * time.Hour)},
			Spec:       corev1.NodeSpec{Unschedulable: unschedulable},
			Status:     corev1.NodeStatus{Conditions: conds, NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.20.0-drover"}},
		}
	}
	ready := func(s corev1.ConditionStatus) corev1.NodeCondition {
		return corev1.NodeCondition{Type: corev1.NodeReady, Status: s}
	}
	pressure := corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}
	for _, tc := range []struct {
		name          string
		node          *corev1.Node
		status, roles string
	}{
		{"ready worker", node(nil, false, pressure, ready(corev1.ConditionTrue)), "Ready", "<none>"},
		{"not ready", node(nil, false, ready(corev1.ConditionFalse)), "NotReady", "<none>"},
		{"ready unknown", node(nil, false, ready(corev1.ConditionUnknown)), "NotReady", "<none>"},
		{"no ready condition", node(nil, false, pressure), "Unknown", "<none>"},
		{"cordoned", node(nil, true, ready(corev1.ConditionTrue)), "Ready,SchedulingDisabled", "<none>"},
		{"cordoned unknown", node(nil, true), "Unknown,SchedulingDisabled", "<none>"},
		{"roles sorted and deduplicated", node(map[string]string{
			"node-role.kubernetes.io/master":        "",
			"node-role.kubernetes.io/control-plane": "",
			"node-role.kubernetes.io/":              "", // no role name: ignored
			"kubernetes.io/role":                    "master",
			"kubernetes.io/hostname":                "n1",
		}, false, ready(corev1.ConditionTrue)), "Ready", "control-plane,master"},
		{"legacy role label", node(map[string]string{"kubernetes.io/role": "edge"}, false, ready(corev1.ConditionTrue)), "Ready", "edge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCells(t, tc.node)
			if c[1] != tc.status || c[2] != tc.roles {
				t.Errorf("STATUS/ROLES = %v / %v, want %v / %v", c[1], c[2], tc.status, tc.roles)
			}
			if c[3] != "2d2h" || c[4] != "v1.20.0-drover" {
				t.Errorf("AGE/VERSION = %v / %v", c[3], c[4])
			}
		})
	}

	n := node(nil, false)
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.11"}}
	n.Status.NodeInfo.OSImage = "Debian GNU/Linux 12 (bookworm)"
	got := mustCells(t, n)[5:]
	want := []any{"10.0.0.11", "<none>", "Debian GNU/Linux 12 (bookworm)", "<unknown>", "<unknown>"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("wide cells = %#v, want %#v", got, want)
	}
}

func TestWorkloadCells(t *testing.T) {
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers:   []corev1.Container{{Name: "app", Image: "web:1"}, {Name: "proxy", Image: "envoy:1.16"}},
		NodeSelector: map[string]string{"disk": "ssd"},
	}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	for _, tc := range []struct {
		name string
		obj  runtime.Object
		want []any
	}{
		{"deployment", &appsv1.Deployment{
			ObjectMeta: om("web", 45*24*time.Hour),
			Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(3)), Selector: sel, Template: tmpl},
			Status:     appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
		}, []any{"web", "2/3", int64(3), int64(2), "45d", "app,proxy", "web:1,envoy:1.16", "app=web"}},
		{"deployment, replicas unset, bad selector", &appsv1.Deployment{
			ObjectMeta: om("web", time.Minute),
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: "Bogus"}}}},
		}, []any{"web", "0/1", int64(0), int64(0), "60s", "", "", "<invalid>"}},
		{"replicaset", &appsv1.ReplicaSet{
			ObjectMeta: om("web-5d8", 3*time.Hour),
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptr(int32(3)), Selector: sel, Template: tmpl},
			Status:     appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1},
		}, []any{"web-5d8", int64(3), int64(3), int64(1), "3h", "app,proxy", "web:1,envoy:1.16", "app=web"}},
		{"daemonset", &appsv1.DaemonSet{
			ObjectMeta: om("agent", 10*time.Minute),
			Spec:       appsv1.DaemonSetSpec{Selector: sel, Template: tmpl},
			Status:     appsv1.DaemonSetStatus{DesiredNumberScheduled: 4, CurrentNumberScheduled: 4, NumberReady: 3, UpdatedNumberScheduled: 4, NumberAvailable: 3},
		}, []any{"agent", int64(4), int64(4), int64(3), int64(4), int64(3), "disk=ssd", "10m", "app,proxy", "web:1,envoy:1.16", "app=web"}},
		{"statefulset", &appsv1.StatefulSet{
			ObjectMeta: om("db", 5*time.Second),
			Spec:       appsv1.StatefulSetSpec{Replicas: ptr(int32(3)), Template: tmpl},
			Status:     appsv1.StatefulSetStatus{ReadyReplicas: 3},
		}, []any{"db", "3/3", "5s", "app,proxy", "web:1,envoy:1.16"}},
		{"job running", &batchv1.Job{
			ObjectMeta: om("pi", 10*time.Minute),
			Spec:       batchv1.JobSpec{Completions: ptr(int32(5)), Selector: sel, Template: tmpl},
			Status:     batchv1.JobStatus{Succeeded: 2, StartTime: ptr(ago(9 * time.Minute))},
		}, []any{"pi", "2/5", "9m", "10m", "app,proxy", "web:1,envoy:1.16", "app=web"}},
		{"job finished", &batchv1.Job{
			ObjectMeta: om("pi", time.Hour),
			Spec:       batchv1.JobSpec{Completions: ptr(int32(1))},
			Status:     batchv1.JobStatus{Succeeded: 1, StartTime: ptr(ago(time.Hour)), CompletionTime: ptr(ago(time.Hour - 42*time.Second))},
		}, []any{"pi", "1/1", "42s", "60m", "", "", "<none>"}},
		{"job work queue", &batchv1.Job{
			ObjectMeta: om("q", time.Hour),
			Spec:       batchv1.JobSpec{Parallelism: ptr(int32(4))},
		}, []any{"q", "0/1 of 4", "", "60m", "", "", "<none>"}},
		{"job single", &batchv1.Job{ObjectMeta: om("one", time.Hour)},
			[]any{"one", "0/1", "", "60m", "", "", "<none>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustCells(t, tc.obj); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cells = %#v\nwant    %#v", got, tc.want)
			}
		})
	}
}

func TestEndpointsCells(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var a []corev1.EndpointAddress
		for _, ip := range ips {
			a = append(a, corev1.EndpointAddress{IP: ip})
		}
		return a
	}
	for _, tc := range []struct {
		name    string
		subsets []corev1.EndpointSubset
		want    string
	}{
		{"none", nil, "<none>"},
		{"two", []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Port: 80}}}}, "10.0.0.1:80,10.0.0.2:80"},
		{"more than three", []corev1.EndpointSubset{
			{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}},
		}, "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."},
		{"headless without ports", []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1")}}, "10.0.0.1"},
		{"ipv6", []corev1.EndpointSubset{{Addresses: addrs("fd00::1"), Ports: []corev1.EndpointPort{{Port: 8080}}}}, "[fd00::1]:8080"},
		{"only not-ready addresses", []corev1.EndpointSubset{{NotReadyAddresses: addrs("10.0.0.1"), Ports: []corev1.EndpointPort{{Port: 80}}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCells(t, &corev1.Endpoints{ObjectMeta: om("svc", time.Minute), Subsets: tc.subsets})
			if c[1] != tc.want {
				t.Errorf("ENDPOINTS = %q, want %q", c[1], tc.want)
			}
		})
	}
}

func TestSimpleKindCells(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  runtime.Object
		want []any
	}{
		{"namespace", &corev1.Namespace{ObjectMeta: om("kube-system", 400*24*time.Hour), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			[]any{"kube-system", "Active", "400d"}},
		{"configmap", &corev1.ConfigMap{ObjectMeta: om("cfg", time.Hour), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {1}}},
			[]any{"cfg", int64(3), "60m"}},
		{"secret", &corev1.Secret{ObjectMeta: om("tls", time.Hour), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
			[]any{"tls", "kubernetes.io/tls", int64(2), "60m"}},
		{"service account", &corev1.ServiceAccount{ObjectMeta: om("default", time.Hour), Secrets: []corev1.ObjectReference{{Name: "default-token-x"}}},
			[]any{"default", int64(1), "60m"}},
		{"lease", &coordinationv1.Lease{ObjectMeta: om("drover-leader", 3*time.Minute), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("master-1")}},
			[]any{"drover-leader", "master-1", "3m"}},
		{"lease without holder", &coordinationv1.Lease{ObjectMeta: om("free", 3*time.Minute)},
			[]any{"free", "", "3m"}},
		{"rolebinding", &rbacv1.RoleBinding{
			ObjectMeta: om("read-pods", time.Hour),
			RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "pod-reader"},
			Subjects: []rbacv1.Subject{
				{Kind: "User", Name: "jane"}, {Kind: "User", Name: "joe"}, {Kind: "Group", Name: "devs"},
				{Kind: "ServiceAccount", Namespace: "ci", Name: "builder"},
			},
		}, []any{"read-pods", "Role/pod-reader", "60m", "jane, joe", "devs", "ci/builder"}},
		{"clusterrolebinding", &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "admins", CreationTimestamp: ago(time.Hour)},
			RoleRef:    rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "system:masters"}},
		}, []any{"admins", "ClusterRole/cluster-admin", "60m", "", "system:masters", ""}},
		{"role: default convertor", &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader",
			CreationTimestamp: metav1.NewTime(time.Date(2021, 1, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600)))}},
			[]any{"pod-reader", "2021-01-01T11:00:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustCells(t, tc.obj); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cells = %#v\nwant    %#v", got, tc.want)
			}
		})
	}
}

func TestEventCells(t *testing.T) {
	ev := &corev1.Event{
		ObjectMeta:     om("web.164a", time.Hour),
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{nginx}"},
		Type:           "Warning", Reason: "BackOff", Message: "Back-off restarting failed container\n",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: ago(10 * time.Minute), LastTimestamp: ago(30 * time.Second), Count: 12,
	}
	want := []any{"30s", "Warning", "BackOff", "pod/web", "spec.containers{nginx}", "kubelet, node-1",
		"Back-off restarting failed container", "10m", int64(12), "web.164a"}
	if got := mustCells(t, ev); !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant    %#v", got, want)
	}

	// An events.k8s.io-style event: eventTime, series, reporting controller.
	ev2 := &corev1.Event{
		ObjectMeta:     om("n.1", time.Hour),
		InvolvedObject: corev1.ObjectReference{Kind: "Node"},
		Type:           "Normal", Reason: "Starting",
		EventTime:           metav1.NewMicroTime(testNow.Add(-5 * time.Minute)),
		Series:              &corev1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(testNow.Add(-time.Minute))},
		ReportingController: "drover/agent", ReportingInstance: "node-2",
	}
	want = []any{"60s", "Normal", "Starting", "node", "", "drover/agent, node-2", "", "5m", int64(3), "n.1"}
	if got := mustCells(t, ev2); !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant    %#v", got, want)
	}

	// A singleton without count prints 1; no timestamps at all is <unknown>.
	ev3 := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if c := mustCells(t, ev3); c[0] != "<unknown>" || c[7] != "<unknown>" || c[8] != int64(1) {
		t.Errorf("cells = %#v", c)
	}
}

func TestCellsUnstructured(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "cfg", "creationTimestamp": testNow.Add(-time.Hour).Format(time.RFC3339)},
		"data":     map[string]any{"k": "v"},
	}}
	if got, want := mustCells(t, u), []any{"cfg", int64(1), "60m"}; !reflect.DeepEqual(got, want) {
		t.Errorf("typed kind: cells = %#v, want %#v", got, want)
	}
	cr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "creationTimestamp": "2021-01-01T00:00:00Z"},
	}}
	if got, want := mustCells(t, cr), []any{"w", "2021-01-01T00:00:00Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("custom kind: cells = %#v, want %#v", got, want)
	}
}

func TestCellsWithoutMetadata(t *testing.T) {
	if _, err := Cells(&metav1.Status{}, testNow); err == nil {
		t.Error("Cells of an object without metadata succeeded")
	}
}
