package printers

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func describe(t *testing.T, obj runtime.Object, events []corev1.Event) string {
	t.Helper()
	var b bytes.Buffer
	if err := Describe(&b, obj, events, testNow); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func diffText(t *testing.T, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("first difference at line %d:\n got: %q\nwant: %q\n\nfull output:\n%s", i+1, gl, wl, got)
			return
		}
	}
}

// squash collapses runs of spaces so content checks do not depend on the
// column alignment, which the full goldens cover.
func squash(s string) string { return regexp.MustCompile(` +`).ReplaceAllString(s, " ") }

// containsAll reports every want (compared squashed) missing from out.
func containsAll(t *testing.T, out string, wants ...string) {
	t.Helper()
	sq := squash(out)
	for _, w := range wants {
		if !strings.Contains(sq, squash(w)) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func samplePod() *corev1.Pod {
	created := ago(3*time.Minute + 20*time.Second)
	tsec := int64(300)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d4b9c-x2k8p", Namespace: "default", CreationTimestamp: created,
			Labels:          map[string]string{"app": "web", "pod-template-hash": "7d4b9c"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c", Controller: ptr(true)}},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-1", Priority: ptr(int32(0)),
			Containers: []corev1.Container{{
				Name: "nginx", Image: "nginx:1.19",
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					"cpu": resource.MustParse("100m"), "memory": resource.MustParse("64Mi"),
				}},
				Env: []corev1.EnvVar{
					{Name: "MODE", Value: "prod"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "default-token-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
					{Name: "data", MountPath: "/data"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "default-token-abcde", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "default-token-abcde"}}},
			},
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/unreachable", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: &tsec},
				{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: &tsec},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: "10.0.0.11", PodIP: "10.244.1.5", PodIPs: []corev1.PodIP{{IP: "10.244.1.5"}},
			StartTime: &created, QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{
				{Type: "Initialized", Status: "True"}, {Type: "Ready", Status: "True"},
				{Type: "ContainersReady", Status: "True"}, {Type: "PodScheduled", Status: "True"},
			},
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "nginx", Ready: true, ContainerID: "drover://3f2a", ImageID: "sha256:9a1c",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: created}},
			}},
		},
	}
}

func TestDescribePod(t *testing.T) {
	events := []corev1.Event{
		// Deliberately out of order: describe sorts by last timestamp.
		{Type: "Normal", Reason: "Pulled", Message: `Container image "nginx:1.19" already present on machine`,
			Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: ago(3 * time.Minute), LastTimestamp: ago(3 * time.Minute), Count: 1},
		{Type: "Normal", Reason: "Scheduled", Message: "Successfully assigned default/web-7d4b9c-x2k8p to node-1",
			Source: corev1.EventSource{Component: "default-scheduler"}, FirstTimestamp: ago(200 * time.Second), LastTimestamp: ago(200 * time.Second), Count: 1},
		{Type: "Warning", Reason: "Unhealthy", Message: "Readiness probe failed: connection refused\n",
			Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: ago(170 * time.Second), LastTimestamp: ago(10 * time.Second), Count: 4},
	}
	want := `Name:         web-7d4b9c-x2k8p
Namespace:    default
Priority:     0
Node:         node-1/10.0.0.11
Start Time:   Sat, 02 Jan 2021 03:00:45 +0000
Labels:       app=web
              pod-template-hash=7d4b9c
Annotations:  <none>
Status:       Running
IP:           10.244.1.5
IPs:
  IP:           10.244.1.5
Controlled By:  ReplicaSet/web-7d4b9c
Containers:
  nginx:
    Container ID:   drover://3f2a
    Image:          nginx:1.19
    Image ID:       sha256:9a1c
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Sat, 02 Jan 2021 03:00:45 +0000
    Ready:          True
    Restart Count:  0
    Requests:
      cpu:     100m
      memory:  64Mi
    Environment:
      MODE:      prod
      POD_NAME:  web-7d4b9c-x2k8p (v1:metadata.name)
    Mounts:
      /data from data (rw)
      /var/run/secrets/kubernetes.io/serviceaccount from default-token-abcde (ro)
Conditions:
  Type              Status
  Initialized       True 
  Ready             True 
  ContainersReady   True 
  PodScheduled      True 
Volumes:
  data:
    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:     
    SizeLimit:  <unset>
  default-token-abcde:
    Type:        Secret (a volume populated by a Secret)
    SecretName:  default-token-abcde
    Optional:    false
QoS Class:       Burstable
Node-Selectors:  <none>
Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s
                 node.kubernetes.io/unreachable:NoExecute op=Exists for 300s
Events:
  Type     Reason     Age                  From               Message
  ----     ------     ----                 ----               -------
  Normal   Scheduled  3m20s                default-scheduler  Successfully assigned default/web-7d4b9c-x2k8p to node-1
  Normal   Pulled     3m                   kubelet            Container image "nginx:1.19" already present on machine
  Warning  Unhealthy  10s (x4 over 2m50s)  kubelet            Readiness probe failed: connection refused
`
	pod := samplePod()
	before := pod.DeepCopy()
	diffText(t, describe(t, pod, events), want)
	if events[0].Reason != "Pulled" {
		t.Error("Describe reordered the caller's events")
	}
	if pod.Spec.Tolerations[0].Key != before.Spec.Tolerations[0].Key || pod.Spec.Containers[0].VolumeMounts[0].Name != before.Spec.Containers[0].VolumeMounts[0].Name {
		t.Error("Describe reordered the pod's slices")
	}
}

func TestDescribePodStates(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: "jobs", DeletionTimestamp: ptr(metav1.NewTime(testNow.Add(25 * time.Second))),
			DeletionGracePeriodSeconds: ptr(int64(30)),
			Annotations: map[string]string{
				"note":      "short",
				"long":      strings.Repeat("x", 150),
				"multi":     "line one\nline two\n",
				lastApplied: `{"kind":"Pod"}`,
			}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "setup", Image: "busybox", Command: []string{"sh", "-c", "echo hi"}}},
			Containers: []corev1.Container{{
				Name: "main", Image: "app:2", Args: []string{"--port=80"},
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 9090, HostPort: 9090, Protocol: "TCP"}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"cpu": resource.MustParse("1500m"), "memory": resource.MustParse("1Gi")},
					Requests: corev1.ResourceList{"cpu": resource.MustParse("1500m"), "memory": resource.MustParse("1Gi")},
				},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(80)}}, PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
				EnvFrom:       []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}, Prefix: "APP_"}},
				Env: []corev1.EnvVar{
					{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "pw"}}},
					{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
				},
			}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "setup",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", ExitCode: 0, StartedAt: ago(time.Hour), FinishedAt: ago(59 * time.Minute)}}}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", RestartCount: 3,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 137, Signal: 9, StartedAt: ago(time.Minute), FinishedAt: ago(50 * time.Second)}}}},
		},
	}
	out := describe(t, pod, nil)
	containsAll(t, out,
		"Node:                      <none>\n",
		"Status:                    Terminating (lasts 25s)\n",
		"Termination Grace Period:  30s\n",
		"Annotations:               long:\n                             "+strings.Repeat("x", 138)+"...\n",
		"                           multi:\n                             line one\n                             line two\n",
		"                           note: short\n",
		"IPs:                       <none>\n",
		"Init Containers:\n  setup:\n    Container ID:  \n    Image:         busybox\n",
		"    Command:\n      sh\n      -c\n      echo hi\n    State:          Terminated\n      Reason:       Completed\n      Exit Code:    0\n",
		"    Ports:          80/TCP, 9090/TCP\n    Host Ports:     0/TCP, 9090/TCP\n",
		"    Args:\n      --port=80\n    State:          Waiting\n      Reason:       CrashLoopBackOff\n    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    137\n      Signal:       9\n",
		"    Restart Count:  3\n",
		"    Liveness:       tcp-socket :80 delay=0s timeout=1s period=10s #success=1 #failure=3\n",
		"    Environment Variables from:\n      cfg         ConfigMap with prefix 'APP_'  Optional: false\n",
		"      PASSWORD:  <set to the key 'pw' in secret 'db'>  Optional: false\n",
		"      CPU:       2 (limits.cpu)\n",
		"    Mounts:         <none>\n",
		"Volumes:            <none>\n",
		"QoS Class: Burstable\n",
		"Tolerations:        <none>\n",
		"Events:             <none>\n",
	)
	if strings.Contains(out, "last-applied") {
		t.Errorf("last-applied-configuration shown:\n%s", out)
	}
}

func TestPodQOS(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	pod := func(cs ...corev1.ResourceRequirements) *corev1.Pod {
		p := &corev1.Pod{}
		for _, r := range cs {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Resources: r})
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"nothing set", pod(corev1.ResourceRequirements{}), corev1.PodQOSBestEffort},
		{"only other resources", pod(corev1.ResourceRequirements{Limits: rl("nvidia.com/gpu", "1")}), corev1.PodQOSBestEffort},
		{"limits only: requests default to them", pod(corev1.ResourceRequirements{Limits: rl("cpu", "1", "memory", "1Gi")}), corev1.PodQOSGuaranteed},
		{"requests equal limits", pod(corev1.ResourceRequirements{Limits: rl("cpu", "1", "memory", "1Gi"), Requests: rl("cpu", "1000m", "memory", "1Gi")}), corev1.PodQOSGuaranteed},
		{"requests below limits", pod(corev1.ResourceRequirements{Limits: rl("cpu", "1", "memory", "1Gi"), Requests: rl("cpu", "500m")}), corev1.PodQOSBurstable},
		{"no memory limit", pod(corev1.ResourceRequirements{Limits: rl("cpu", "1")}), corev1.PodQOSBurstable},
		{"one container unbounded", pod(corev1.ResourceRequirements{Limits: rl("cpu", "1", "memory", "1Gi")}, corev1.ResourceRequirements{}), corev1.PodQOSBurstable},
	} {
		if got := podQOS(tc.pod); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestDescribeDeployment(t *testing.T) {
	created := ago(45 * time.Minute)
	quarter := intstr.FromString("25%")
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "default", CreationTimestamp: created, Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "2", lastApplied: "{}"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &quarter, MaxSurge: &quarter}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "nginx", Image: "nginx:1.19",
					Ports:     []corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("128Mi")}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt(80), Scheme: "HTTP"}},
						TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
					},
				}}},
			},
		},
		Status: appsv1.DeploymentStatus{
			Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{
				{Type: "Available", Status: "True", Reason: "MinimumReplicasAvailable"},
				{Type: "Progressing", Status: "True", Reason: "NewReplicaSetAvailable"},
			},
		},
	}
	events := []corev1.Event{{Type: "Normal", Reason: "ScalingReplicaSet", Message: "Scaled up replica set web-7d4b9c to 3",
		Source: corev1.EventSource{Component: "deployment-controller"}, FirstTimestamp: created, LastTimestamp: created, Count: 1}}
	want := `Name:                   web
Namespace:              default
CreationTimestamp:      Sat, 02 Jan 2021 02:19:05 +0000
Labels:                 app=web
Annotations:            deployment.kubernetes.io/revision: 2
Selector:               app=web
Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 25% max surge
Pod Template:
  Labels:  app=web
  Containers:
   nginx:
    Image:      nginx:1.19
    Port:       80/TCP
    Host Port:  0/TCP
    Limits:
      memory:      128Mi
    Readiness:     http-get http://:80/healthz delay=0s timeout=1s period=10s #success=1 #failure=3
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Conditions:
  Type          Status  Reason
  ----          ------  ------
  Available     True    MinimumReplicasAvailable
  Progressing   True    NewReplicaSetAvailable
Events:
  Type    Reason             Age   From                   Message
  ----    ------             ----  ----                   -------
  Normal  ScalingReplicaSet  45m   deployment-controller  Scaled up replica set web-7d4b9c to 3
`
	diffText(t, describe(t, dep, events), want)

	// Recreate, no events.
	dep.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	out := describe(t, dep, nil)
	containsAll(t, out, "StrategyType: Recreate\n")
	if strings.Contains(out, "RollingUpdateStrategy") || !strings.HasSuffix(squash(out), "Events: <none>\n") {
		t.Errorf("recreate deployment:\n%s", out)
	}

	// Node selectors and tolerations of the template, one per line, as
	// kubectl 1.32 prints them.
	dep.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "a", "disk": "ssd"}
	dep.Spec.Template.Spec.Tolerations = []corev1.Toleration{
		{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "a", Operator: corev1.TolerationOpEqual, Value: "b"},
	}
	dep.Status.Conditions = nil
	out = describe(t, dep, nil)
	if want := `  Volumes:         <none>
  Node-Selectors:  disk=ssd
                   zone=a
  Tolerations:     a=b
                   k:NoSchedule op=Exists
Events:            <none>
`; !strings.HasSuffix(out, want) {
		t.Errorf("template node selectors and tolerations:\n%s\nwant it to end:\n%s", out, want)
	}
}

func TestDescribeReplicaSet(t *testing.T) {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c", Namespace: "default",
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}}}},
		Status: appsv1.ReplicaSetStatus{Replicas: 2},
	}
	containsAll(t, describe(t, rs, nil),
		"Name: web-7d4b9c\n", "Selector: app=web\n", "Controlled By: Deployment/web\n",
		"Replicas: 2 current / 3 desired\n", "Pod Template:\n Labels: <none>\n Containers:\n nginx:\n",
		"Volumes: <none>\n Node-Selectors: <none>\n Tolerations: <none>\nEvents: <none>\n",
	)
}

func sampleService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}, Selector: map[string]string{"app": "web"},
			SessionAffinity: corev1.ServiceAffinityNone, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt(8080), NodePort: 30080, Protocol: "TCP"},
				{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics"), NodePort: 30090, Protocol: "TCP"},
			},
		},
	}
}

func TestDescribeService(t *testing.T) {
	want := `Name:                     web
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=web
Type:                     NodePort
IP Families:              IPv4
IP:                       10.96.0.20
IPs:                      10.96.0.20
Port:                     http  80/TCP
TargetPort:               8080/TCP
NodePort:                 http  30080/TCP
Endpoints:                10.244.1.5:8080,10.244.2.7:8080
Port:                     metrics  9090/TCP
TargetPort:               metrics/TCP
NodePort:                 metrics  30090/TCP
Endpoints:                10.244.1.5:9090
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
`
	eps := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}, {IP: "10.244.2.7"}}, Ports: []corev1.EndpointPort{{Name: "http", Port: 8080}}},
		{Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}}, Ports: []corev1.EndpointPort{{Name: "metrics", Port: 9090}}},
	}}
	var b bytes.Buffer
	if err := DescribeService(&b, sampleService(), eps, nil, testNow); err != nil {
		t.Fatal(err)
	}
	diffText(t, b.String(), want)

	// Without endpoints the per-port Endpoints lines are left out.
	out := describe(t, sampleService(), nil)
	if strings.Contains(out, "Endpoints:") || !strings.Contains(squash(out), "NodePort: http 30080/TCP\n") {
		t.Errorf("plain Describe of a service:\n%s", out)
	}
	// No selector reads <none>, as kubectl's; no internal traffic policy
	// (a server that does not default one) leaves the line out.
	svc := sampleService()
	svc.Spec.Selector, svc.Spec.InternalTrafficPolicy = nil, nil
	out = describe(t, svc, nil)
	if !strings.Contains(out, "\nSelector:                 <none>\n") || strings.Contains(out, "Internal Traffic Policy") {
		t.Errorf("service without a selector or an internal traffic policy:\n%s", out)
	}
}

func TestDescribeNode(t *testing.T) {
	hb := ago(10 * time.Second)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", CreationTimestamp: ago(time.Hour),
			Labels: map[string]string{"kubernetes.io/hostname": "node-1", "node-role.kubernetes.io/worker": ""}},
		Spec: corev1.NodeSpec{Unschedulable: true, PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"},
			Taints: []corev1.Taint{
				{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule},
				{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule},
				{Key: "drain", Effect: corev1.TaintEffectNoExecute},
			}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: "Ready", Status: "True", LastHeartbeatTime: hb, LastTransitionTime: ago(time.Hour), Reason: "AgentReady", Message: "agent is posting ready status"}},
			Addresses:  []corev1.NodeAddress{{Type: "InternalIP", Address: "10.0.0.11"}, {Type: "Hostname", Address: "node-1"}},
			Capacity:   corev1.ResourceList{"pods": resource.MustParse("110"), "cpu": resource.MustParse("2"), "memory": resource.MustParse("8Gi")},
			NodeInfo:   corev1.NodeSystemInfo{KernelVersion: "6.1.0", OSImage: "Debian GNU/Linux 12", OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.20.0"},
		},
	}
	containsAll(t, describe(t, node, nil),
		"Name:               node-1\nRoles:              worker\n",
		"Labels:             kubernetes.io/hostname=node-1\n                    node-role.kubernetes.io/worker=\n",
		"Taints:             drain:NoExecute\n                    dedicated=db:NoSchedule\n                    node.kubernetes.io/unschedulable:NoSchedule\n",
		"Unschedulable:      true\n",
		"  Ready   True    Sat, 02 Jan 2021 03:03:55 +0000   Sat, 02 Jan 2021 02:04:05 +0000   AgentReady   agent is posting ready status\n",
		"Addresses:\n  InternalIP:  10.0.0.11\n  Hostname:    node-1\n",
		"Capacity:\n  cpu:     2\n  memory:  8Gi\n  pods:    110\n",
		"  Kubelet Version:            v1.20.0\n",
		"PodCIDRs:                     10.244.1.0/24\n",
	)
}

func TestDescribeNamespace(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	want := `Name:         default
Labels:       <none>
Annotations:  <none>
Status:       Active
`
	// No quota or limit lines: kubectl prints them only when the server
	// serves resourcequotas and limitranges, and drover serves neither.
	// No events either, as kubectl.
	diffText(t, describe(t, ns, []corev1.Event{{Reason: "Ignored"}}), want)
}

func TestDescribeConfigMapAndSecret(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"},
		Data: map[string]string{"b.conf": "x=1\ny=2", "a": "v"}}
	want := `Name:         cfg
Namespace:    default
Labels:       <none>
Annotations:  <none>

Data
====
a:
----
v

b.conf:
----
x=1
y=2


BinaryData
====

Events:  <none>
`
	diffText(t, describe(t, cm, nil), want)

	// Binary data shows as sizes, sorted by key.
	cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bin", Namespace: "default"},
		BinaryData: map[string][]byte{"z": []byte("hello"), "b": {0, 1, 2}}}
	want = `Name:         bin
Namespace:    default
Labels:       <none>
Annotations:  <none>

Data
====

BinaryData
====
b: 3 bytes
z: 5 bytes

Events:  <none>
`
	diffText(t, describe(t, cm, nil), want)

	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"password": []byte("hunter22"), "user": []byte("admin")}}
	want = `Name:         db
Namespace:    default
Labels:       <none>
Annotations:  <none>

Type:  Opaque

Data
====
password:  8 bytes
user:      5 bytes
`
	diffText(t, describe(t, sec, nil), want)

	tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sa-token"}, Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{"token": []byte("eyJ.abc"), "ca.crt": []byte("-----")}}
	if out := describe(t, tok, nil); !strings.Contains(out, "token:   eyJ.abc\n") || !strings.Contains(out, "ca.crt:  5 bytes\n") {
		t.Errorf("token secret:\n%s", out)
	}
}

func TestDescribeGeneric(t *testing.T) {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "drover-leader", Namespace: "kube-system", CreationTimestamp: ago(time.Hour),
			ResourceVersion: "12", UID: "0b6e", Labels: map[string]string{"tier": "control"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "drover"}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("master-1"), LeaseDurationSeconds: ptr(int32(15))},
	}
	want := `Name:         drover-leader
Namespace:    kube-system
Labels:       tier=control
Annotations:  <none>
API Version:  coordination.k8s.io/v1
Kind:         Lease
Metadata:
  Creation Timestamp:  2021-01-02T02:04:05Z
  Resource Version:    12
  UID:                 0b6e
Spec:
  Holder Identity:         master-1
  Lease Duration Seconds:  15
Events:                    <none>
`
	diffText(t, describe(t, lease, nil), want)

	cr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": "default"},
		"spec": map[string]any{
			"sizeGB":   int64(3),
			"podIP":    "10.0.0.1",
			"replicas": []any{map[string]any{"zone": "a"}, map[string]any{"zone": "b"}},
			"tags":     []any{"x", "y"},
			"empty":    nil,
		},
	}}
	want = `Name:         w1
Namespace:    default
Labels:       <none>
Annotations:  <none>
API Version:  example.com/v1
Kind:         Widget
Metadata:
Spec:
  Pod IP:  10.0.0.1
  Replicas:
    Zone:   a
    Zone:   b
  Size GB:  3
  Tags:
    x
    y
Events:  <none>
`
	diffText(t, describe(t, cr, nil), want)
}

func TestSmartLabel(t *testing.T) {
	for in, want := range map[string]string{
		"apiVersion":           "API Version",
		"uid":                  "UID",
		"holderIdentity":       "Holder Identity",
		"podIP":                "Pod IP",
		"APIVersion":           "API Version",
		"leaseDurationSeconds": "Lease Duration Seconds",
		"sizeGB":               "Size GB",
		"ipv4":                 "ipv4",
		"dns-name":             "Dns-name",
		"url":                  "URL",
	} {
		if got := smartLabel(in); got != want {
			t.Errorf("smartLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescribeEventsAges(t *testing.T) {
	evs := []corev1.Event{
		{Type: "Normal", Reason: "Series", ReportingController: "drover/agent",
			EventTime: metav1.NewMicroTime(testNow.Add(-10 * time.Minute)),
			Series:    &corev1.EventSeries{Count: 5, LastObservedTime: metav1.NewMicroTime(testNow.Add(-time.Minute))}},
		{Type: "Normal", Reason: "Once", Source: corev1.EventSource{Component: "c"}, FirstTimestamp: ago(time.Hour), LastTimestamp: ago(time.Hour)},
	}
	out := describe(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, evs)
	want := `Events:
  Type    Reason  Age                From          Message
  ----    ------  ----               ----          -------
  Normal  Once    60m                c             
  Normal  Series  60s (x5 over 10m)  drover/agent  
`
	if !strings.HasSuffix(out, want) {
		t.Errorf("got:\n%s\nwant suffix:\n%s", out, want)
	}
}
