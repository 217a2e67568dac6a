package admission

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestDefaultPod(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "builder",
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.local:5000/app", // the port is not a tag
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				Env: []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}},
			}},
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
			Volumes: []corev1.Volume{
				{Name: "scratch"},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
			},
		},
	}
	Default(pod)

	want := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyAlways,
		DNSPolicy:                     corev1.DNSClusterFirst,
		SchedulerName:                 "default-scheduler",
		TerminationGracePeriodSeconds: ptr.To[int64](30),
		SecurityContext:               &corev1.PodSecurityContext{},
		EnableServiceLinks:            ptr.To(true),
		ServiceAccountName:            "builder",
		DeprecatedServiceAccount:      "builder",
		Containers: []corev1.Container{{
			Name:                     "app",
			Image:                    "registry.local:5000/app",
			ImagePullPolicy:          corev1.PullAlways,
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			Ports:                    []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
			LivenessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			},
		}},
		InitContainers: []corev1.Container{{
			Name:                     "init",
			Image:                    "busybox:1.36",
			ImagePullPolicy:          corev1.PullIfNotPresent,
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}},
		Volumes: []corev1.Volume{
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{DefaultMode: ptr.To[int32](0o644)}}},
			{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr.To[int32](0o644)}}},
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log", Type: ptr.To(corev1.HostPathUnset)}}},
		},
	}
	expectSame(t, pod.Spec, want)
}

func TestDefaultPullPolicy(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"nginx":                          corev1.PullAlways,
		"nginx:latest":                   corev1.PullAlways,
		"nginx:1.27":                     corev1.PullIfNotPresent,
		"docker.io/library/nginx":        corev1.PullAlways,
		"registry.local:5000/app":        corev1.PullAlways,
		"registry.local:5000/app:v2":     corev1.PullIfNotPresent,
		"registry.local:5000/app:latest": corev1.PullAlways,
		"nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31": corev1.PullIfNotPresent,
	} {
		if got := defaultPullPolicy(image); got != want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", image, got, want)
		}
	}
}

func TestDefaultPodKeepsExplicitValues(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		DNSPolicy:                     corev1.DNSDefault,
		TerminationGracePeriodSeconds: ptr.To[int64](5),
		EnableServiceLinks:            ptr.To(false),
		HostNetwork:                   true,
		DeprecatedServiceAccount:      "legacy",
		Containers: []corev1.Container{{
			Name: "c", Image: "nginx", ImagePullPolicy: corev1.PullNever,
			Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			},
		}},
	}}
	Default(pod)
	s, c := pod.Spec, pod.Spec.Containers[0]
	if s.RestartPolicy != corev1.RestartPolicyNever || s.DNSPolicy != corev1.DNSDefault ||
		*s.TerminationGracePeriodSeconds != 5 || *s.EnableServiceLinks || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("explicit values overwritten: %+v", s)
	}
	if c.Ports[0].Protocol != corev1.ProtocolUDP || c.Ports[0].HostPort != 53 {
		t.Errorf("port = %+v, want UDP with hostPort 53 on the host network", c.Ports[0])
	}
	if got := c.Resources.Requests[corev1.ResourceCPU]; got.String() != "100m" {
		t.Errorf("cpu request = %s, want the explicit 100m", got.String())
	}
	if s.ServiceAccountName != "legacy" {
		t.Errorf("serviceAccountName = %q, want it taken from the deprecated serviceAccount", s.ServiceAccountName)
	}
}

func TestDefaultService(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}},
	}}
	Default(svc)
	want := corev1.ServiceSpec{
		Type:            corev1.ServiceTypeClusterIP,
		SessionAffinity: corev1.ServiceAffinityNone,
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
		},
		IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
		IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicySingleStack),
		InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
	}
	expectSame(t, svc.Spec, want)
}

func TestDefaultServiceVariants(t *testing.T) {
	tests := []struct {
		name  string
		spec  corev1.ServiceSpec
		check func(t *testing.T, s corev1.ServiceSpec)
	}{{
		name: "node port gets an external traffic policy",
		spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}},
		check: func(t *testing.T, s corev1.ServiceSpec) {
			if s.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
				t.Errorf("externalTrafficPolicy = %q", s.ExternalTrafficPolicy)
			}
		},
	}, {
		name: "client IP affinity gets its timeout",
		spec: corev1.ServiceSpec{SessionAffinity: corev1.ServiceAffinityClientIP},
		check: func(t *testing.T, s corev1.ServiceSpec) {
			if got := *s.SessionAffinityConfig.ClientIP.TimeoutSeconds; got != 10800 {
				t.Errorf("timeout = %d", got)
			}
		},
	}, {
		name: "an IPv6 cluster IP sets the family and clusterIPs",
		spec: corev1.ServiceSpec{ClusterIP: "fd00::10"},
		check: func(t *testing.T, s corev1.ServiceSpec) {
			expectSame(t, s.ClusterIPs, []string{"fd00::10"})
			expectSame(t, s.IPFamilies, []corev1.IPFamily{corev1.IPv6Protocol})
		},
	}, {
		name: "clusterIPs fill clusterIP",
		spec: corev1.ServiceSpec{ClusterIPs: []string{"10.96.0.10", "fd00::10"}},
		check: func(t *testing.T, s corev1.ServiceSpec) {
			if s.ClusterIP != "10.96.0.10" || *s.IPFamilyPolicy != corev1.IPFamilyPolicyRequireDualStack {
				t.Errorf("clusterIP %q policy %q", s.ClusterIP, *s.IPFamilyPolicy)
			}
			expectSame(t, s.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol})
		},
	}, {
		name: "external name gets no IP defaults",
		spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
		check: func(t *testing.T, s corev1.ServiceSpec) {
			if s.IPFamilyPolicy != nil || s.IPFamilies != nil || s.InternalTrafficPolicy != nil {
				t.Errorf("IP defaults on an ExternalName service: %+v", s)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &corev1.Service{Spec: tt.spec}
			Default(svc)
			tt.check(t, svc.Spec)
		})
	}
}

func TestDefaultDeployment(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
	}}}}
	Default(d)
	s := d.Spec
	expectSame(t, s.Replicas, ptr.To[int32](1))
	expectSame(t, s.Strategy, appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromString("25%")),
			MaxSurge:       ptr.To(intstr.FromString("25%")),
		},
	})
	expectSame(t, s.RevisionHistoryLimit, ptr.To[int32](10))
	expectSame(t, s.ProgressDeadlineSeconds, ptr.To[int32](600))
	ps := s.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyAlways || ps.DNSPolicy != corev1.DNSClusterFirst ||
		ps.SchedulerName != corev1.DefaultSchedulerName || ps.SecurityContext == nil || *ps.TerminationGracePeriodSeconds != 30 {
		t.Errorf("template pod spec not defaulted: %+v", ps)
	}
	// Like Kubernetes, a template gets neither enableServiceLinks nor requests
	// from limits: those are for pods.
	if ps.EnableServiceLinks != nil || ps.Containers[0].Resources.Requests != nil {
		t.Errorf("template got pod-only defaults: %+v", ps)
	}
	if ps.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("template container not defaulted: %+v", ps.Containers[0])
	}

	recreate := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	Default(recreate)
	if recreate.Spec.Strategy.RollingUpdate != nil {
		t.Error("Recreate strategy got rollingUpdate parameters")
	}
}

func TestDefaultReplicaSetAndDaemonSet(t *testing.T) {
	rs := &appsv1.ReplicaSet{}
	Default(rs)
	expectSame(t, rs.Spec.Replicas, ptr.To[int32](1))
	if rs.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Error("replica set template not defaulted")
	}

	ds := &appsv1.DaemonSet{}
	Default(ds)
	expectSame(t, ds.Spec.UpdateStrategy, appsv1.DaemonSetUpdateStrategy{
		Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			MaxSurge:       ptr.To(intstr.FromInt32(0)),
		},
	})
	expectSame(t, ds.Spec.RevisionHistoryLimit, ptr.To[int32](10))
	if ds.Spec.Template.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Error("daemon set template not defaulted")
	}
}

func TestDefaultJob(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", UID: "u-1"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pi"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pi", Image: "perl"}}},
		}},
	}
	Default(job)
	s := job.Spec
	expectSame(t, s.Completions, ptr.To[int32](1))
	expectSame(t, s.Parallelism, ptr.To[int32](1))
	expectSame(t, s.BackoffLimit, ptr.To[int32](6))
	expectSame(t, s.CompletionMode, ptr.To(batchv1.NonIndexedCompletion))
	expectSame(t, s.Suspend, ptr.To(false))
	expectSame(t, s.PodReplacementPolicy, ptr.To(batchv1.TerminatingOrFailed))
	if s.Template.Spec.RestartPolicy != "" {
		t.Errorf("job template restartPolicy = %q, want it left as given", s.Template.Spec.RestartPolicy)
	}
	if s.Template.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Error("job template not otherwise defaulted")
	}
	expectSame(t, job.Labels, map[string]string{"app": "pi"}) // the user's labels only
	expectSame(t, s.Selector, &metav1.LabelSelector{MatchLabels: map[string]string{jobControllerUIDLabel: "u-1"}})
	expectSame(t, s.Template.Labels, map[string]string{
		"app": "pi", jobControllerUIDLabel: "u-1", "controller-uid": "u-1", jobNameLabel: "pi", "job-name": "pi",
	})

	parallel := &batchv1.Job{Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](5), ManualSelector: ptr.To(true)}}
	Default(parallel)
	if parallel.Spec.Completions != nil || parallel.Spec.Selector != nil {
		t.Errorf("work-queue job got completions %v / manual-selector job got selector %v",
			parallel.Spec.Completions, parallel.Spec.Selector)
	}

	noUID := &batchv1.Job{}
	Default(noUID)
	if noUID.Spec.Selector != nil {
		t.Error("selector generated without a uid")
	}

	perIndex := &batchv1.Job{Spec: batchv1.JobSpec{BackoffLimitPerIndex: ptr.To[int32](2),
		PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}}}}}}
	Default(perIndex)
	expectSame(t, perIndex.Spec.BackoffLimit, ptr.To[int32](1<<31-1))
	expectSame(t, perIndex.Spec.PodReplacementPolicy, ptr.To(batchv1.Failed))
	if got := perIndex.Spec.PodFailurePolicy.Rules[0].OnPodConditions[0].Status; got != corev1.ConditionTrue {
		t.Errorf("pod failure policy condition status = %q", got)
	}
}

func TestDefaultSmallKinds(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Namespace: "stray"}}
	Default(ns)
	expectSame(t, ns.Spec.Finalizers, []corev1.FinalizerName{"kubernetes"})
	if ns.Status.Phase != corev1.NamespaceActive || ns.Namespace != "" || ns.Labels[corev1.LabelMetadataName] != "team-a" {
		t.Errorf("namespace = %+v", ns)
	}
	Default(ns) // idempotent
	expectSame(t, ns.Spec.Finalizers, []corev1.FinalizerName{"kubernetes"})

	secret := &corev1.Secret{Data: map[string][]byte{"a": []byte("1")}, StringData: map[string]string{"b": "2", "a": "3"}}
	Default(secret)
	if secret.Type != corev1.SecretTypeOpaque || secret.StringData != nil {
		t.Errorf("secret = %+v", secret)
	}
	expectSame(t, secret.Data, map[string][]byte{"a": []byte("3"), "b": []byte("2")})

	node := &corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}}
	Default(node)
	expectSame(t, node.Status.Allocatable, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")})

	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}}
	Default(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Error("endpoint port protocol not defaulted")
	}

	crb := &rbacv1.ClusterRoleBinding{Subjects: []rbacv1.Subject{
		{Kind: "User", Name: "alice"}, {Kind: "Group", Name: "ops"}, {Kind: "ServiceAccount", Name: "sa", Namespace: "kube-system"},
	}}
	Default(crb)
	for i, want := range []string{rbacv1.GroupName, rbacv1.GroupName, ""} {
		if got := crb.Subjects[i].APIGroup; got != want {
			t.Errorf("subject %d apiGroup = %q, want %q", i, got, want)
		}
	}
}

func TestDefaultUnknownTypeIsNoOp(t *testing.T) {
	objs := []runtime.Object{&corev1.ConfigMap{}, &coordinationv1.Lease{}, &corev1.PersistentVolumeClaim{}, &metav1.Status{}}
	for _, obj := range objs {
		before := obj.DeepCopyObject()
		Default(obj)
		expectSame(t, obj, before)
	}
}

// expectSame compares semantically and prints both sides as JSON.
func expectSame(t *testing.T, got, want any) {
	t.Helper()
	if !apiequality.Semantic.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
}
