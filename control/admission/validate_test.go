package admission

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// validationCase builds a valid, defaulted object, breaks it, and lists the
// errors ValidateCreate must report, as "Kind path".
type validationCase struct {
	name string
	obj  func() runtime.Object
	want []string
}

func runValidationCases(t *testing.T, tests []validationCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectErrs(t, ValidateCreate(tt.obj()), tt.want...)
		})
	}
}

func TestValidateService(t *testing.T) {
	svc := func(mutate func(s *corev1.Service)) func() runtime.Object {
		return func() runtime.Object {
			s := testService()
			mutate(s)
			return s
		}
	}
	runValidationCases(t, []validationCase{
		{name: "valid", obj: svc(func(s *corev1.Service) {})},
		{name: "name must be an RFC 1035 label", obj: svc(func(s *corev1.Service) { s.Name = "1web" }), want: []string{"Invalid metadata.name"}},
		{name: "dotted name", obj: svc(func(s *corev1.Service) { s.Name = "web.v1" }), want: []string{"Invalid metadata.name"}},
		{name: "no ports", obj: svc(func(s *corev1.Service) { s.Spec.Ports = nil }), want: []string{"Required spec.ports"}},
		{name: "headless without ports", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports, s.Spec.ClusterIP, s.Spec.ClusterIPs = nil, "None", []string{"None"}
		})},
		{name: "port missing", obj: svc(func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }), want: []string{"Required spec.ports[0].port"}},
		{name: "port out of range", obj: svc(func(s *corev1.Service) { s.Spec.Ports[0].Port = 65536 }), want: []string{"Invalid spec.ports[0].port"}},
		{name: "second port unnamed", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(443)})
		}), want: []string{"Required spec.ports[1].name"}},
		{name: "duplicate port", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "alt", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)})
		}), want: []string{"Duplicate spec.ports[1]"}},
		{name: "duplicate port name", obj: svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)})
		}), want: []string{"Duplicate spec.ports[1].name"}},
		{name: "targetPort name invalid", obj: svc(func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("HTTP_") }),
			want: []string{"Invalid spec.ports[0].targetPort"}},
		{name: "nodePort on a ClusterIP service", obj: svc(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			want: []string{"Forbidden spec.ports[0].nodePort"}},
		{name: "nodePort on a NodePort service", obj: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30080
		})},
		{name: "type unknown", obj: svc(func(s *corev1.Service) { s.Spec.Type = "Magic" }), want: []string{"NotSupported spec.type"}},
		{name: "clusterIP not an IP", obj: svc(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0", []string{"10.0.0"} }),
			want: []string{"Invalid spec.clusterIP", "Invalid spec.clusterIPs[0]"}},
		{name: "clusterIPs disagree", obj: svc(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.1", []string{"10.96.0.2"} }),
			want: []string{"Invalid spec.clusterIPs[0]"}},
		{name: "clusterIP of the wrong family", obj: svc(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::1", []string{"fd00::1"} }),
			want: []string{"Invalid spec.clusterIPs[0]"}},
		{name: "sessionAffinity unknown", obj: svc(func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }),
			want: []string{"NotSupported spec.sessionAffinity"}},
		{name: "externalTrafficPolicy on ClusterIP", obj: svc(func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }),
			want: []string{"Invalid spec.externalTrafficPolicy"}},
		{name: "selector invalid", obj: svc(func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web server"} }),
			want: []string{"Invalid spec.selector"}},
		{name: "single stack with two families", obj: svc(func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		}), want: []string{"Invalid spec.ipFamilies"}},
	})
}

func TestValidateWorkloads(t *testing.T) {
	deploy := func(mutate func(d *appsv1.Deployment)) func() runtime.Object {
		return func() runtime.Object {
			d := testDeployment()
			mutate(d)
			return d
		}
	}
	tpl := "spec.template.spec"
	runValidationCases(t, []validationCase{
		{name: "deployment valid", obj: deploy(func(d *appsv1.Deployment) {})},
		{name: "deployment without selector", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Selector = nil }), want: []string{"Required spec.selector"}},
		{name: "deployment empty selector", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }), want: []string{"Invalid spec.selector"}},
		{name: "deployment selector does not match", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "api"} }),
			want: []string{"Invalid spec.template.metadata.labels"}},
		{name: "deployment selector by expression", obj: deploy(func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "www"}}}}
		})},
		{name: "deployment without template", obj: deploy(func(d *appsv1.Deployment) {
			d.Spec.Template = corev1.PodTemplateSpec{ObjectMeta: d.Spec.Template.ObjectMeta}
			Default(d)
		}), want: []string{"Required " + tpl + ".containers"}},
		{name: "deployment negative replicas", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](-1) }), want: []string{"Invalid spec.replicas"}},
		{name: "deployment template restartPolicy", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }),
			want: []string{"NotSupported " + tpl + ".restartPolicy"}},
		{name: "deployment template activeDeadlineSeconds", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](60) }),
			want: []string{"Forbidden " + tpl + ".activeDeadlineSeconds"}},
		{name: "deployment container without image", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }),
			want: []string{"Required " + tpl + ".containers[0].image"}},
		{name: "deployment template label invalid", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Template.Labels["x/"] = "" }),
			want: []string{"Invalid spec.template.metadata.labels"}},
		{name: "deployment rolling update cannot move", obj: deploy(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxSurge = ptr.To(intstr.FromInt32(0))
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromString("0%"))
		}), want: []string{"Invalid spec.strategy.rollingUpdate.maxUnavailable"}},
		{name: "deployment maxUnavailable over 100%", obj: deploy(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromString("150%"))
		}), want: []string{"Invalid spec.strategy.rollingUpdate.maxUnavailable"}},
		{name: "deployment Recreate with rollingUpdate", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType }),
			want: []string{"Forbidden spec.strategy.rollingUpdate"}},
		{name: "deployment progress deadline below minReady", obj: deploy(func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 }),
			want: []string{"Invalid spec.progressDeadlineSeconds"}},

		{name: "replicaset valid", obj: func() runtime.Object { return testReplicaSet() }},
		{name: "replicaset selector mismatch", obj: func() runtime.Object {
			rs := testReplicaSet()
			rs.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
			return rs
		}, want: []string{"Invalid spec.template.metadata.labels"}},
		{name: "replicaset negative replicas", obj: func() runtime.Object {
			rs := testReplicaSet()
			rs.Spec.Replicas = ptr.To[int32](-3)
			return rs
		}, want: []string{"Invalid spec.replicas"}},

		{name: "daemonset valid", obj: func() runtime.Object { return testDaemonSet() }},
		{name: "daemonset without selector", obj: func() runtime.Object {
			ds := testDaemonSet()
			ds.Spec.Selector = nil
			return ds
		}, want: []string{"Required spec.selector"}},
		{name: "daemonset update strategy unknown", obj: func() runtime.Object {
			ds := testDaemonSet()
			ds.Spec.UpdateStrategy.Type = "Surge"
			return ds
		}, want: []string{"NotSupported spec.updateStrategy.type"}},
	})
}

func TestValidateJob(t *testing.T) {
	job := func(mutate func(j *batchv1.Job)) func() runtime.Object {
		return func() runtime.Object {
			j := testJob()
			mutate(j)
			return j
		}
	}
	runValidationCases(t, []validationCase{
		{name: "valid", obj: job(func(j *batchv1.Job) {})},
		{name: "restartPolicy left empty", obj: job(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }),
			want: []string{"Required spec.template.spec.restartPolicy"}},
		{name: "restartPolicy Always", obj: job(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }),
			want: []string{"NotSupported spec.template.spec.restartPolicy"}},
		{name: "restartPolicy OnFailure", obj: job(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure })},
		{name: "activeDeadlineSeconds in the template is fine for a job", obj: job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
		})},
		{name: "negative counts", obj: job(func(j *batchv1.Job) {
			j.Spec.Parallelism, j.Spec.Completions, j.Spec.BackoffLimit = ptr.To[int32](-1), ptr.To[int32](-1), ptr.To[int32](-1)
		}), want: []string{"Invalid spec.parallelism", "Invalid spec.completions", "Invalid spec.backoffLimit"}},
		{name: "activeDeadlineSeconds zero", obj: job(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To[int64](0) }),
			want: []string{"Invalid spec.activeDeadlineSeconds"}},
		{name: "indexed without completions", obj: job(func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = ptr.To(batchv1.IndexedCompletion), nil
		}), want: []string{"Required spec.completions"}},
		{name: "selector not generated", obj: job(func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{jobNameLabel: "pi"}}
		}), want: []string{"Invalid spec.selector"}},
		{name: "no selector because no uid", obj: func() runtime.Object {
			j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi"}, Spec: testJob().Spec}
			j.Spec.Selector, j.Spec.Template.Labels = nil, nil
			Default(j)
			return j
		}, want: []string{"Required spec.selector"}},
		{name: "manual selector", obj: job(func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr.To(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
			j.Spec.Template.Labels = map[string]string{"app": "pi"}
		})},
		{name: "manual selector not matching", obj: job(func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr.To(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
		}), want: []string{"Invalid spec.template.metadata.labels"}},
		{name: "name too long for the job-name label", obj: job(func(j *batchv1.Job) {
			j.Name = strings.Repeat("a", 64)
			j.Spec.Template.Labels[jobNameLabel] = j.Name
		}), want: []string{"Invalid spec.template.metadata.labels"}},
	})
}

func TestValidateCoreKinds(t *testing.T) {
	cm := func(data map[string]string, binary map[string][]byte) func() runtime.Object {
		return func() runtime.Object {
			return &corev1.ConfigMap{ObjectMeta: meta("cfg"), Data: data, BinaryData: binary}
		}
	}
	secret := func(typ corev1.SecretType, data map[string][]byte) func() runtime.Object {
		return func() runtime.Object {
			s := &corev1.Secret{ObjectMeta: meta("creds"), Type: typ, Data: data}
			Default(s)
			return s
		}
	}
	node := func(mutate func(n *corev1.Node)) func() runtime.Object {
		return func() runtime.Object {
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1.example"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24"}}
			mutate(n)
			Default(n)
			return n
		}
	}
	runValidationCases(t, []validationCase{
		{name: "namespace valid", obj: func() runtime.Object {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
			Default(ns)
			return ns
		}},
		{name: "namespace name must be a DNS label", obj: func() runtime.Object {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.a"}}
			Default(ns)
			return ns
		}, want: []string{"Invalid metadata.name"}},
		{name: "namespace finalizer not qualified", obj: func() runtime.Object {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"mine"}}}
			Default(ns)
			return ns
		}, want: []string{"Invalid spec.finalizers[0]"}},
		{name: "cluster-scoped object with a namespace", obj: func() runtime.Object {
			return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "b"}}
		}, want: []string{"Forbidden metadata.namespace"}},

		{name: "node valid", obj: node(func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
			n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}}
		})},
		{name: "node taints", obj: node(func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "a", Effect: corev1.TaintEffectNoSchedule}, {Key: "a", Effect: corev1.TaintEffectNoSchedule}, {Key: "b"}}
		}), want: []string{"Duplicate spec.taints[1]", "Required spec.taints[2].effect"}},
		{name: "node podCIDR", obj: node(func(n *corev1.Node) { n.Spec.PodCIDR = "10.244.1.0" }), want: []string{"Invalid spec.podCIDR"}},
		{name: "node negative capacity", obj: node(func(n *corev1.Node) {
			n.Status.Capacity = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("-1")}
		}), want: []string{"Invalid status.capacity[memory]", "Invalid status.allocatable[memory]"}},

		{name: "endpoints valid", obj: func() runtime.Object {
			return &corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}},
				Ports:     []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}},
			}}}
		}},
		{name: "endpoints invalid", obj: func() runtime.Object {
			return &corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{{IP: "10.244.1"}}, Ports: []corev1.EndpointPort{{Port: 80, Protocol: "TCP"}, {Name: "b", Port: 0, Protocol: "TCP"}}},
				{},
			}}
		}, want: []string{"Invalid subsets[0].addresses[0].ip", "Required subsets[0].ports[0].name", "Invalid subsets[0].ports[1].port", "Required subsets[1]"}},

		{name: "configmap valid", obj: cm(map[string]string{"app.properties": "a=b", "-x_y": ""}, map[string][]byte{"logo.png": {1}})},
		{name: "configmap key invalid", obj: cm(map[string]string{"a b": "", "../x": ""}, nil), want: []string{"Invalid data[a b]", "Invalid data[../x]"}},
		{name: "configmap key in data and binaryData", obj: cm(map[string]string{"k": ""}, map[string][]byte{"k": nil}), want: []string{"Invalid binaryData[k]"}},
		{name: "configmap too large", obj: cm(map[string]string{"big": strings.Repeat("x", 1<<20)}, nil), want: []string{"TooLong data"}},
		{name: "configmap name invalid", obj: func() runtime.Object { return &corev1.ConfigMap{ObjectMeta: meta("Cfg")} }, want: []string{"Invalid metadata.name"}},

		{name: "secret valid", obj: secret("", map[string][]byte{"password": []byte("x")})},
		{name: "secret key invalid", obj: secret("", map[string][]byte{"pass word": nil}), want: []string{"Invalid data[pass word]"}},
		{name: "tls secret without key", obj: secret(corev1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("c")}), want: []string{"Required data[tls.key]"}},
		{name: "dockerconfigjson not JSON", obj: secret(corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("{")}),
			want: []string{"Invalid data[.dockerconfigjson]"}},
		{name: "basic auth without credentials", obj: secret(corev1.SecretTypeBasicAuth, nil), want: []string{"Required data[username]"}},
		{name: "service account token without the account", obj: secret(corev1.SecretTypeServiceAccountToken, nil),
			want: []string{"Required metadata.annotations[kubernetes.io/service-account.name]"}},

		{name: "event valid", obj: func() runtime.Object {
			return &corev1.Event{ObjectMeta: meta("web.17a2b"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"}, Count: 1}
		}},
		{name: "event namespace mismatch", obj: func() runtime.Object {
			return &corev1.Event{ObjectMeta: meta("web.17a2b"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "other"}}
		}, want: []string{"Invalid involvedObject.namespace"}},

		{name: "service account valid", obj: func() runtime.Object { return &corev1.ServiceAccount{ObjectMeta: meta("builder")} }},
		{name: "service account name invalid", obj: func() runtime.Object { return &corev1.ServiceAccount{ObjectMeta: meta("builder_1")} },
			want: []string{"Invalid metadata.name"}},

		{name: "lease valid", obj: func() runtime.Object {
			return &coordinationv1.Lease{ObjectMeta: meta("drover-scheduler"), Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To("m1"), LeaseDurationSeconds: ptr.To[int32](15)}}
		}},
		{name: "lease duration zero", obj: func() runtime.Object {
			return &coordinationv1.Lease{ObjectMeta: meta("l"), Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr.To[int32](0)}}
		}, want: []string{"Invalid spec.leaseDurationSeconds"}},

		{name: "scale valid", obj: func() runtime.Object {
			return &autoscalingv1.Scale{ObjectMeta: meta("web"), Spec: autoscalingv1.ScaleSpec{Replicas: 0}}
		}},
		{name: "scale negative", obj: func() runtime.Object {
			return &autoscalingv1.Scale{ObjectMeta: meta("web"), Spec: autoscalingv1.ScaleSpec{Replicas: -1}}
		}, want: []string{"Invalid spec.replicas"}},

		{name: "unknown type", obj: func() runtime.Object { return &corev1.PersistentVolumeClaim{} }},
	})
}

func TestValidateRBAC(t *testing.T) {
	podReader := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}
	metrics := rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}
	role := func(rules ...rbacv1.PolicyRule) func() runtime.Object {
		return func() runtime.Object { return &rbacv1.Role{ObjectMeta: meta("pod-reader"), Rules: rules} }
	}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"}
	binding := func(ref rbacv1.RoleRef, subjects ...rbacv1.Subject) func() runtime.Object {
		return func() runtime.Object {
			b := &rbacv1.RoleBinding{ObjectMeta: meta("read-pods"), RoleRef: ref, Subjects: subjects}
			Default(b)
			return b
		}
	}
	clusterBinding := func(ref rbacv1.RoleRef, subjects ...rbacv1.Subject) func() runtime.Object {
		return func() runtime.Object {
			b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:controller:x"}, RoleRef: ref, Subjects: subjects}
			Default(b)
			return b
		}
	}
	alice := rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"}
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder"}
	clusterRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}
	runValidationCases(t, []validationCase{
		{name: "role valid", obj: role(podReader)},
		{name: "role names may have colons", obj: func() runtime.Object {
			return &rbacv1.Role{ObjectMeta: meta("system:leader-locking"), Rules: []rbacv1.PolicyRule{podReader}}
		}},
		{name: "role name with a slash", obj: func() runtime.Object { return &rbacv1.Role{ObjectMeta: meta("a/b")} }, want: []string{"Invalid metadata.name"}},
		{name: "rule without verbs", obj: role(rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}}), want: []string{"Required rules[0].verbs"}},
		{name: "rule without groups or resources", obj: role(rbacv1.PolicyRule{Verbs: []string{"get"}}),
			want: []string{"Required rules[0].apiGroups", "Required rules[0].resources"}},
		{name: "namespaced role with URLs", obj: role(metrics), want: []string{"Invalid rules[0].nonResourceURLs"}},
		{name: "cluster role with URLs", obj: func() runtime.Object {
			return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics"}, Rules: []rbacv1.PolicyRule{metrics, podReader}}
		}},
		{name: "cluster role mixing URLs and resources", obj: func() runtime.Object {
			r := metrics
			r.Resources = []string{"pods"}
			return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "m"}, Rules: []rbacv1.PolicyRule{r}}
		}, want: []string{"Invalid rules[0].nonResourceURLs"}},
		{name: "cluster role aggregation without selectors", obj: func() runtime.Object {
			return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "m"}, AggregationRule: &rbacv1.AggregationRule{}}
		}, want: []string{"Required aggregationRule.clusterRoleSelectors"}},

		{name: "rolebinding valid", obj: binding(ref, alice, sa)},
		{name: "rolebinding to a cluster role", obj: binding(clusterRef, alice)},
		{name: "rolebinding roleRef kind", obj: binding(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Policy", Name: "x"}),
			want: []string{"NotSupported roleRef.kind"}},
		{name: "rolebinding roleRef group and name", obj: binding(rbacv1.RoleRef{APIGroup: "rbac", Kind: "Role"}),
			want: []string{"NotSupported roleRef.apiGroup", "Required roleRef.name"}},
		{name: "rolebinding subjects", obj: binding(ref,
			rbacv1.Subject{Kind: "Robot", Name: "r2"},
			rbacv1.Subject{Kind: rbacv1.UserKind},
			rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "Bad_Name", APIGroup: rbacv1.GroupName}),
			want: []string{"NotSupported subjects[0].kind", "Required subjects[1].name", "Invalid subjects[2].name", "NotSupported subjects[2].apiGroup"}},
		{name: "clusterrolebinding valid", obj: clusterBinding(clusterRef, alice, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "b", Namespace: "ci"})},
		{name: "clusterrolebinding to a Role", obj: clusterBinding(ref, alice), want: []string{"NotSupported roleRef.kind"}},
		{name: "clusterrolebinding service account without namespace", obj: clusterBinding(clusterRef, sa), want: []string{"Required subjects[0].namespace"}},
	})
}
