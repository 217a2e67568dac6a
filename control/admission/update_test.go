package admission

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// updateCase starts from a stored object, changes a copy, and lists the
// errors ValidateUpdate must report.
type updateCase struct {
	name   string
	old    func() runtime.Object
	mutate func(obj runtime.Object)
	want   []string
}

func runUpdateCases(t *testing.T, tests []updateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := tt.old()
			obj := old.DeepCopyObject()
			tt.mutate(obj)
			expectErrs(t, ValidateUpdate(obj, old), tt.want...)
		})
	}
}

func TestValidatePodUpdate(t *testing.T) {
	old := func() runtime.Object { return testPod() }
	pod := func(f func(p *corev1.Pod)) func(runtime.Object) {
		return func(obj runtime.Object) { f(obj.(*corev1.Pod)) }
	}
	bound := func() runtime.Object {
		p := testPod()
		p.Spec.NodeName = "node-1"
		p.Spec.ActiveDeadlineSeconds = ptr.To[int64](600)
		p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists}}
		return p
	}
	runUpdateCases(t, []updateCase{
		{name: "no change", old: old, mutate: func(runtime.Object) {}},
		{name: "labels and annotations may change", old: old, mutate: pod(func(p *corev1.Pod) {
			p.Labels["tier"] = "frontend"
			p.Annotations = map[string]string{"note": "x"}
		})},
		{name: "status is not checked here", old: old, mutate: pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning })},
		{name: "missing resourceVersion is the store's business", old: old, mutate: pod(func(p *corev1.Pod) { p.ResourceVersion = "" })},
		{name: "image may change", old: old, mutate: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" })},
		{name: "new image must still be valid", old: old, mutate: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			want: []string{"Required spec.containers[0].image"}},
		{name: "ports may not change", old: old, mutate: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8080 }),
			want: []string{"Forbidden spec.containers[0].ports"}},
		{name: "containers may not be added", old: old, mutate: pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "busybox",
				ImagePullPolicy: corev1.PullAlways, TerminationMessagePolicy: corev1.TerminationMessageReadFile})
		}), want: []string{"Forbidden spec.containers"}},
		{name: "restartPolicy may not change", old: old, mutate: pod(func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }),
			want: []string{"Forbidden spec.restartPolicy"}},
		{name: "volumes may not change", old: old, mutate: pod(func(p *corev1.Pod) { p.Spec.Volumes[0].ConfigMap.Name = "other" }),
			want: []string{"Forbidden spec.volumes"}},
		{name: "binding an unbound pod", old: old, mutate: pod(func(p *corev1.Pod) { p.Spec.NodeName = "node-1" })},
		{name: "moving a bound pod", old: bound, mutate: pod(func(p *corev1.Pod) { p.Spec.NodeName = "node-2" }),
			want: []string{"Forbidden spec.nodeName"}},
		{name: "deadline may be set", old: old, mutate: pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](30) })},
		{name: "deadline may be lowered", old: bound, mutate: pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](30) })},
		{name: "deadline may not be raised", old: bound, mutate: pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](6000) }),
			want: []string{"Invalid spec.activeDeadlineSeconds"}},
		{name: "deadline may not be removed", old: bound, mutate: pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = nil }),
			want: []string{"Invalid spec.activeDeadlineSeconds"}},
		{name: "tolerations may be added", old: bound, mutate: pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists})
		})},
		{name: "tolerations may not be removed", old: bound, mutate: pod(func(p *corev1.Pod) { p.Spec.Tolerations = nil }),
			want: []string{"Forbidden spec.tolerations"}},
		{name: "name, namespace and uid are immutable", old: old, mutate: pod(func(p *corev1.Pod) {
			p.Name, p.Namespace, p.UID = "web2", "other", "another-uid"
		}), want: []string{"Invalid metadata.name", "Invalid metadata.namespace", "Invalid metadata.uid"}},
	})

	// A stored object of another type cannot be replaced.
	expectErrs(t, ValidateUpdate(testPod(), testService()), "TypeInvalid kind")
	expectErrs(t, ValidateUpdate(testPod(), nil), "TypeInvalid kind")
	// Types this package does not know are accepted.
	expectErrs(t, ValidateUpdate(&corev1.PersistentVolumeClaim{}, &corev1.PersistentVolumeClaim{}))
}

func TestValidateUpdateImmutableFields(t *testing.T) {
	runUpdateCases(t, []updateCase{
		{name: "service clusterIP", old: func() runtime.Object {
			s := testService()
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}
			return s
		}, mutate: func(o runtime.Object) {
			s := o.(*corev1.Service)
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
		}, want: []string{"Invalid spec.clusterIP", "Invalid spec.clusterIPs[0]"}},
		{name: "service ports may change", old: func() runtime.Object { return testService() }, mutate: func(o runtime.Object) {
			o.(*corev1.Service).Spec.Ports[0].Port = 8080
		}},
		{name: "service clusterIP allocated on update", old: func() runtime.Object { return testService() }, mutate: func(o runtime.Object) {
			s := o.(*corev1.Service)
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
		}},

		{name: "deployment selector", old: func() runtime.Object { return testDeployment() }, mutate: func(o runtime.Object) {
			d := o.(*appsv1.Deployment)
			d.Spec.Selector.MatchLabels["tier"] = "web"
			d.Spec.Template.Labels["tier"] = "web"
		}, want: []string{"Invalid spec.selector"}},
		{name: "deployment template and replicas may change", old: func() runtime.Object { return testDeployment() }, mutate: func(o runtime.Object) {
			d := o.(*appsv1.Deployment)
			d.Spec.Replicas = ptr.To[int32](5)
			d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
			d.Spec.Template.Spec.Containers[0].Ports = nil
		}},
		{name: "deployment update is validated too", old: func() runtime.Object { return testDeployment() }, mutate: func(o runtime.Object) {
			o.(*appsv1.Deployment).Spec.Replicas = ptr.To[int32](-1)
		}, want: []string{"Invalid spec.replicas"}},
		{name: "replicaset selector", old: func() runtime.Object { return testReplicaSet() }, mutate: func(o runtime.Object) {
			o.(*appsv1.ReplicaSet).Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}
		}, want: []string{"Invalid spec.selector"}},
		{name: "daemonset selector", old: func() runtime.Object { return testDaemonSet() }, mutate: func(o runtime.Object) {
			d := o.(*appsv1.DaemonSet)
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}
			d.Spec.Template.Labels = map[string]string{"app": "agent"}
		}, want: []string{"Invalid spec.selector"}},

		{name: "job template", old: func() runtime.Object { return testJob() }, mutate: func(o runtime.Object) {
			o.(*batchv1.Job).Spec.Template.Spec.Containers[0].Image = "perl:5.36"
		}, want: []string{"Forbidden spec.template"}},
		{name: "job selector", old: func() runtime.Object { return testJob() }, mutate: func(o runtime.Object) {
			j := o.(*batchv1.Job)
			j.Spec.ManualSelector = ptr.To(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{jobNameLabel: "pi"}}
		}, want: []string{"Invalid spec.selector"}},
		{name: "job parallelism and suspend may change", old: func() runtime.Object { return testJob() }, mutate: func(o runtime.Object) {
			j := o.(*batchv1.Job)
			j.Spec.Parallelism, j.Spec.Suspend = ptr.To[int32](3), ptr.To(true)
		}},

		{name: "configmap data may change", old: func() runtime.Object {
			return &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": "1"}}
		}, mutate: func(o runtime.Object) { o.(*corev1.ConfigMap).Data["a"] = "2" }},
		{name: "immutable configmap data", old: func() runtime.Object {
			return &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": "1"}, Immutable: ptr.To(true)}
		}, mutate: func(o runtime.Object) {
			c := o.(*corev1.ConfigMap)
			c.Data["a"] = "2"
			c.BinaryData = map[string][]byte{"b": nil}
		}, want: []string{"Forbidden data", "Forbidden binaryData"}},
		{name: "immutable configmap metadata may change", old: func() runtime.Object {
			return &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": "1"}, Immutable: ptr.To(true)}
		}, mutate: func(o runtime.Object) { o.(*corev1.ConfigMap).Labels = map[string]string{"x": "y"} }},
		{name: "immutable may not be unset", old: func() runtime.Object {
			return &corev1.ConfigMap{ObjectMeta: meta("c"), Immutable: ptr.To(true)}
		}, mutate: func(o runtime.Object) { o.(*corev1.ConfigMap).Immutable = nil }, want: []string{"Forbidden immutable"}},
		{name: "immutable secret data", old: func() runtime.Object {
			s := &corev1.Secret{ObjectMeta: meta("s"), Data: map[string][]byte{"a": []byte("1")}, Immutable: ptr.To(true)}
			Default(s)
			return s
		}, mutate: func(o runtime.Object) { o.(*corev1.Secret).Data["a"] = []byte("2") }, want: []string{"Forbidden data"}},
		{name: "secret type", old: func() runtime.Object {
			s := &corev1.Secret{ObjectMeta: meta("s")}
			Default(s)
			return s
		}, mutate: func(o runtime.Object) {
			s := o.(*corev1.Secret)
			s.Type = corev1.SecretTypeSSHAuth
			s.Data = map[string][]byte{"ssh-privatekey": []byte("k")}
		}, want: []string{"Invalid type"}},

		{name: "rolebinding roleRef", old: func() runtime.Object {
			return &rbacv1.RoleBinding{ObjectMeta: meta("b"), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "r"}}
		}, mutate: func(o runtime.Object) { o.(*rbacv1.RoleBinding).RoleRef.Name = "admin" }, want: []string{"Invalid roleRef"}},
		{name: "rolebinding subjects may change", old: func() runtime.Object {
			return &rbacv1.RoleBinding{ObjectMeta: meta("b"), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "r"}}
		}, mutate: func(o runtime.Object) {
			o.(*rbacv1.RoleBinding).Subjects = []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "bob"}}
		}},
		{name: "clusterrolebinding roleRef", old: func() runtime.Object {
			return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}}
		}, mutate: func(o runtime.Object) { o.(*rbacv1.ClusterRoleBinding).RoleRef.Name = "cluster-admin" }, want: []string{"Invalid roleRef"}},

		{name: "node podCIDR", old: func() runtime.Object {
			return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}}}
		}, mutate: func(o runtime.Object) {
			n := o.(*corev1.Node)
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.2.0/24", []string{"10.244.2.0/24"}
		}, want: []string{"Invalid spec.podCIDR", "Invalid spec.podCIDRs"}},
		{name: "node gets its podCIDR", old: func() runtime.Object {
			return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
		}, mutate: func(o runtime.Object) {
			n := o.(*corev1.Node)
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.2.0/24", []string{"10.244.2.0/24"}
			n.Spec.Unschedulable = true
			n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
		}},
		{name: "namespace name", old: func() runtime.Object {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "u"}}
			Default(ns)
			return ns
		}, mutate: func(o runtime.Object) { o.(*corev1.Namespace).Name = "b" }, want: []string{"Invalid metadata.name"}},
		{name: "lease renewal", old: func() runtime.Object {
			return &coordinationv1.Lease{ObjectMeta: meta("l"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("m1")}}
		}, mutate: func(o runtime.Object) {
			l := o.(*coordinationv1.Lease)
			l.Spec.HolderIdentity, l.Spec.LeaseTransitions = ptr.To("m2"), ptr.To[int32](1)
		}},
		{name: "event uid", old: func() runtime.Object {
			return &corev1.Event{ObjectMeta: meta("e")}
		}, mutate: func(o runtime.Object) { o.(*corev1.Event).UID = "x" }, want: []string{"Invalid metadata.uid"}},
	})
}
