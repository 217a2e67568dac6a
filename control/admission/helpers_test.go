package admission

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// errKinds gives each field.ErrorType a short name for expectations.
var errKinds = map[field.ErrorType]string{
	field.ErrorTypeRequired:     "Required",
	field.ErrorTypeInvalid:      "Invalid",
	field.ErrorTypeDuplicate:    "Duplicate",
	field.ErrorTypeNotSupported: "NotSupported",
	field.ErrorTypeForbidden:    "Forbidden",
	field.ErrorTypeNotFound:     "NotFound",
	field.ErrorTypeTooLong:      "TooLong",
	field.ErrorTypeTooMany:      "TooMany",
	field.ErrorTypeTypeInvalid:  "TypeInvalid",
}

// summarize renders errors as sorted, distinct "Kind path" strings; one
// bad value may well break several rules at the same path.
func summarize(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, errKinds[e.Type]+" "+e.Field)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// expectErrs fails unless errs are exactly want, each "Kind path".
func expectErrs(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	got := summarize(errs)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n got  %q\n want %q\nfull: %v", got, want, errs.ToAggregate())
	}
}

func errorsMention(errs field.ErrorList, path, detail string) bool {
	for _, e := range errs {
		if e.Field == path && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: "0c9a6b3e-5f4e-4c1d-9a55-0f7e4b1f2a01", ResourceVersion: "7"}
}

func nginxContainer() corev1.Container {
	return corev1.Container{
		Name:  "nginx",
		Image: "nginx:1.27",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
		VolumeMounts:   []corev1.VolumeMount{{Name: "html", MountPath: "/usr/share/nginx/html"}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
		LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}},
	}
}

func webPodSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{nginxContainer()},
		Volumes: []corev1.Volume{{Name: "html", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-html"}},
		}}},
	}
}

// The fixtures below are valid and already defaulted.

func testPod() *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: meta("web"), Spec: webPodSpec()}
	pod.Labels = map[string]string{"app": "web"}
	Default(pod)
	return pod
}

func testDeployment() *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       webPodSpec(),
		},
	}}
	Default(d)
	return d
}

func testReplicaSet() *appsv1.ReplicaSet {
	d := testDeployment()
	rs := &appsv1.ReplicaSet{ObjectMeta: meta("web-5d8f"), Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
	Default(rs)
	return rs
}

func testDaemonSet() *appsv1.DaemonSet {
	d := testDeployment()
	ds := &appsv1.DaemonSet{ObjectMeta: meta("agent"), Spec: appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
	Default(ds)
	return ds
}

func testJob() *batchv1.Job {
	job := &batchv1.Job{ObjectMeta: meta("pi"), Spec: batchv1.JobSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "pi", Image: "perl:5.34", Command: []string{"perl", "-e", "print 3.14"}}},
		}},
	}}
	Default(job)
	return job
}

func testService() *corev1.Service {
	svc := &corev1.Service{ObjectMeta: meta("web"), Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
	}}
	Default(svc)
	return svc
}
