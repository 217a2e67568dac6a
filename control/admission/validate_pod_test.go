package admission

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestValidatePod(t *testing.T) {
	c0 := "spec.containers[0]"
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string
	}{
		{name: "valid", mutate: func(p *corev1.Pod) {}},
		{name: "no namespace is the server's business", mutate: func(p *corev1.Pod) { p.Namespace = "" }},

		// metadata
		{name: "name missing", mutate: func(p *corev1.Pod) { p.Name = "" }, want: []string{"Required metadata.name"}},
		{name: "name not a DNS subdomain", mutate: func(p *corev1.Pod) { p.Name = "Web_1" }, want: []string{"Invalid metadata.name"}},
		{name: "dotted name is a subdomain", mutate: func(p *corev1.Pod) { p.Name = "web.v1" }},
		{name: "generateName invalid", mutate: func(p *corev1.Pod) { p.GenerateName = "Web_" }, want: []string{"Invalid metadata.generateName"}},
		{name: "generateName with trailing dash", mutate: func(p *corev1.Pod) { p.GenerateName = "web-" }},
		{name: "namespace invalid", mutate: func(p *corev1.Pod) { p.Namespace = "Team.A" }, want: []string{"Invalid metadata.namespace"}},
		{name: "label key invalid", mutate: func(p *corev1.Pod) { p.Labels["-bad"] = "x" }, want: []string{"Invalid metadata.labels"}},
		{name: "label value invalid", mutate: func(p *corev1.Pod) { p.Labels["app"] = "a b" }, want: []string{"Invalid metadata.labels"}},
		{name: "annotation key invalid", mutate: func(p *corev1.Pod) { p.Annotations = map[string]string{"a/b/c": ""} }, want: []string{"Invalid metadata.annotations"}},

		// containers
		{name: "no containers", mutate: func(p *corev1.Pod) { p.Spec.Containers = nil }, want: []string{"Required spec.containers"}},
		{name: "container name missing", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }, want: []string{"Required " + c0 + ".name"}},
		{name: "container name not a label", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "web.1" }, want: []string{"Invalid " + c0 + ".name"}},
		{name: "image missing", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, want: []string{"Required " + c0 + ".image"}},
		{name: "image with spaces", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }, want: []string{"Invalid " + c0 + ".image"}},
		{name: "pull policy unknown", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }, want: []string{"NotSupported " + c0 + ".imagePullPolicy"}},
		{name: "duplicate container names", mutate: func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Ports, c.Resources = nil, corev1.ResourceRequirements{}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}, want: []string{"Duplicate spec.containers[1].name"}},
		{name: "init container shares a container's name", mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "nginx", Image: "busybox", ImagePullPolicy: corev1.PullAlways,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile}}
		}, want: []string{"Duplicate " + c0 + ".name"}},
		{name: "init container with a probe", mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ImagePullPolicy: corev1.PullAlways,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile, ReadinessProbe: p.Spec.Containers[0].ReadinessProbe}}
		}, want: []string{"Forbidden spec.initContainers[0].readinessProbe"}},

		// ports
		{name: "duplicate port name", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "http", ContainerPort: 81, Protocol: corev1.ProtocolTCP})
		}, want: []string{"Duplicate " + c0 + ".ports[1].name"}},
		{name: "duplicate port and protocol", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 80, Protocol: corev1.ProtocolTCP})
		}, want: []string{"Duplicate " + c0 + ".ports[1].containerPort"}},
		{name: "same port, other protocol", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 80, Protocol: corev1.ProtocolUDP})
		}},
		{name: "port out of range", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 }, want: []string{"Invalid " + c0 + ".ports[0].containerPort"}},
		{name: "port missing", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 }, want: []string{"Required " + c0 + ".ports[0].containerPort"}},
		{name: "host port out of range", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = -1 }, want: []string{"Invalid " + c0 + ".ports[0].hostPort"}},
		{name: "port name too long", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports[0].Name = "a-very-long-port-name"
			p.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(80)
		}, want: []string{"Invalid " + c0 + ".ports[0].name"}},
		{name: "protocol unknown", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "ICMP" }, want: []string{"NotSupported " + c0 + ".ports[0].protocol"}},
		{name: "host network needs hostPort == containerPort", mutate: func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports[0].HostPort = 8080
		}, want: []string{"Invalid " + c0 + ".ports[0].hostPort"}},

		// resources
		{name: "request above limit", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("2")
		}, want: []string{"Invalid " + c0 + ".resources.requests[cpu]"}},
		{name: "negative request", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("-1Mi")
		}, want: []string{"Invalid " + c0 + ".resources.requests[memory]"}},
		{name: "unknown unqualified resource", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits["gpu"] = resource.MustParse("1")
		}, want: []string{"Invalid " + c0 + ".resources.limits[gpu]"}},
		{name: "extended resource", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits["example.com/dongle"] = resource.MustParse("1")
		}},

		// env
		{name: "env name with =", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B", Value: "x"}}
		}, want: []string{"Invalid " + c0 + ".env[0].name"}},
		{name: "env name missing", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Value: "x"}}
		}, want: []string{"Required " + c0 + ".env[0].name"}},
		{name: "env with value and valueFrom", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}}}
		}, want: []string{"Invalid " + c0 + ".env[0].valueFrom"}},
		{name: "env valueFrom empty", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{}}}
		}, want: []string{"Required " + c0 + ".env[0].valueFrom"}},
		{name: "env configMapKeyRef bad key and no name", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "a b"}}}}
		}, want: []string{"Invalid " + c0 + ".env[0].valueFrom.configMapKeyRef.key", "Required " + c0 + ".env[0].valueFrom.configMapKeyRef.name"}},
		{name: "env fieldRef to an unsupported field", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.hostname"}}}}
		}, want: []string{"NotSupported " + c0 + ".env[0].valueFrom.fieldRef.fieldPath"}},
		{name: "env fieldRef to a label", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels['app']"}}}}
		}},
		{name: "envFrom with both sources", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{
				ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a"}},
				SecretRef:    &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "b"}},
			}}
		}, want: []string{"Invalid " + c0 + ".envFrom[0]"}},

		// probes
		{name: "probe thresholds below 1", mutate: func(p *corev1.Pod) {
			pr := p.Spec.Containers[0].ReadinessProbe
			pr.FailureThreshold, pr.PeriodSeconds, pr.TimeoutSeconds, pr.SuccessThreshold = 0, 0, -1, 0
		}, want: []string{
			"Invalid " + c0 + ".readinessProbe.failureThreshold", "Invalid " + c0 + ".readinessProbe.periodSeconds",
			"Invalid " + c0 + ".readinessProbe.timeoutSeconds", "Invalid " + c0 + ".readinessProbe.successThreshold",
		}},
		{name: "liveness needs a single success", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe.SuccessThreshold = 2 },
			want: []string{"Invalid " + c0 + ".livenessProbe.successThreshold"}},
		{name: "readiness may need several successes", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.SuccessThreshold = 2 }},
		{name: "probe without handler", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.HTTPGet = nil },
			want: []string{"Required " + c0 + ".readinessProbe"}},
		{name: "probe with two handlers", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe.Exec = &corev1.ExecAction{Command: []string{"true"}}
		}, want: []string{"Forbidden " + c0 + ".livenessProbe"}},
		{name: "exec probe without command", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}},
				TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: 1, FailureThreshold: 30}
		}, want: []string{"Required " + c0 + ".startupProbe.exec.command"}},
		{name: "probe port invalid", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe.TCPSocket.Port = intstr.FromInt32(0) },
			want: []string{"Invalid " + c0 + ".livenessProbe.tcpSocket.port"}},
		{name: "negative initial delay", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe.InitialDelaySeconds = -5 },
			want: []string{"Invalid " + c0 + ".livenessProbe.initialDelaySeconds"}},

		// volumes and mounts
		{name: "duplicate volume name", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "html", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}, want: []string{"Duplicate spec.volumes[1].name"}},
		{name: "volume name invalid", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes[0].Name = "HTML"
			p.Spec.Containers[0].VolumeMounts[0].Name = "HTML"
		}, want: []string{"Invalid spec.volumes[0].name"}},
		{name: "mount of a missing volume", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "data" },
			want: []string{"NotFound " + c0 + ".volumeMounts[0].name"}},
		{name: "relative mount path", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "html" },
			want: []string{"Invalid " + c0 + ".volumeMounts[0].mountPath"}},
		{name: "two mounts at one path", mutate: func(p *corev1.Pod) {
			m := p.Spec.Containers[0].VolumeMounts
			p.Spec.Containers[0].VolumeMounts = append(m, corev1.VolumeMount{Name: "html", MountPath: m[0].MountPath + "/"})
		}, want: []string{"Invalid " + c0 + ".volumeMounts[1].mountPath"}},
		{name: "subPath escaping the volume", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPath = "../etc" },
			want: []string{"Invalid " + c0 + ".volumeMounts[0].subPath"}},
		{name: "volume with two sources", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes[0].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}, want: []string{"Forbidden spec.volumes[0].configMap"}},
		{name: "configMap volume without a name", mutate: func(p *corev1.Pod) { p.Spec.Volumes[0].ConfigMap.Name = "" },
			want: []string{"Required spec.volumes[0].configMap.name"}},
		{name: "configMap item path escaping", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes[0].ConfigMap.Items = []corev1.KeyToPath{{Key: "index.html", Path: "../../index.html"}}
		}, want: []string{"Invalid spec.volumes[0].configMap.items[0].path"}},
		{name: "defaultMode out of range", mutate: func(p *corev1.Pod) { p.Spec.Volumes[0].ConfigMap.DefaultMode = ptr.To[int32](0o1000) },
			want: []string{"Invalid spec.volumes[0].configMap.defaultMode"}},
		{name: "hostPath relative", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "var/log"}}
		}, want: []string{"Invalid spec.volumes[0].hostPath.path"}},

		// pod-level fields
		{name: "restartPolicy unknown", mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, want: []string{"NotSupported spec.restartPolicy"}},
		{name: "restartPolicy Never", mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }},
		{name: "dnsPolicy None without dnsConfig", mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, want: []string{"Required spec.dnsConfig"}},
		{name: "activeDeadlineSeconds zero", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](0) }, want: []string{"Invalid spec.activeDeadlineSeconds"}},
		{name: "negative grace period", mutate: func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](-1) }, want: []string{"Invalid spec.terminationGracePeriodSeconds"}},
		{name: "nodeSelector invalid", mutate: func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "fast ssd"} }, want: []string{"Invalid spec.nodeSelector"}},
		{name: "nodeName invalid", mutate: func(p *corev1.Pod) { p.Spec.NodeName = "Node_1" }, want: []string{"Invalid spec.nodeName"}},
		{name: "hostname not a label", mutate: func(p *corev1.Pod) { p.Spec.Hostname = "a.b" }, want: []string{"Invalid spec.hostname"}},
		{name: "serviceAccountName invalid", mutate: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "Builder" }, want: []string{"Invalid spec.serviceAccountName"}},
		{name: "runAsUser negative", mutate: func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptr.To[int64](-1) }, want: []string{"Invalid spec.securityContext.runAsUser"}},
		{name: "container runAsGroup negative", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsGroup: ptr.To[int64](-1)}
		}, want: []string{"Invalid " + c0 + ".securityContext.runAsGroup"}},
		{name: "tolerations", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule},
				{Operator: corev1.TolerationOpExists},
				{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"},
				{Key: "k", Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr.To[int64](10)},
				{Key: "k", Operator: "Like"},
				{Value: "v"},
			}
		}, want: []string{
			"Invalid spec.tolerations[2].value", "Invalid spec.tolerations[3].effect",
			"NotSupported spec.tolerations[4].operator", "Invalid spec.tolerations[5].operator",
		}},
		{name: "node affinity", mutate: func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{
						{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
						{Key: "zone", Operator: corev1.NodeSelectorOpIn},
						{Key: "cores", Operator: corev1.NodeSelectorOpGt, Values: []string{"many"}},
					},
				}}},
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 0}},
			}}
		}, want: []string{
			"Required spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values",
			"Invalid spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[2].values[0]",
			"Invalid spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
		}},
		{name: "node affinity without terms", mutate: func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
		}, want: []string{"Required spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod()
			tt.mutate(pod)
			expectErrs(t, ValidateCreate(pod), tt.want...)
		})
	}
}

// A defaulted minimal pod, as a user would write it, is valid.
func TestValidateMinimalPod(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	Default(pod)
	expectErrs(t, ValidateCreate(pod))
}
