package printers

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Describe writes kubectl-describe-like text for a typed object (or an
// *unstructured.Unstructured), followed by an Events: section built from
// events, oldest first. Pods, Deployments, ReplicaSets, Services, Nodes,
// Namespaces, ConfigMaps and Secrets get kubectl's dedicated layouts; any
// other kind gets kubectl's generic one (name, namespace, labels,
// annotations, then the remaining fields as an indented tree).
//
// As in kubectl, Namespace and Secret descriptions end without an Events
// section, and Secret data is shown as sizes only.
func Describe(w io.Writer, obj runtime.Object, events []corev1.Event, now time.Time) error {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		typed, err := typedFromUnstructured(u)
		if err != nil {
			return err
		}
		obj = typed
	}
	// One tabwriter for the whole text, as kubectl: consecutive "Key:\tvalue"
	// lines align with each other, a line without a tab ends the block.
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	d := &describer{w: tw, now: now}
	withEvents := true
	switch o := obj.(type) {
	case *corev1.Pod:
		d.pod(o)
	case *appsv1.Deployment:
		d.deployment(o)
	case *appsv1.ReplicaSet:
		d.replicaSet(o)
	case *corev1.Service:
		d.service(o, nil)
	case *corev1.Node:
		d.node(o)
	case *corev1.Namespace:
		d.namespace(o)
		withEvents = false
	case *corev1.ConfigMap:
		d.configMap(o)
	case *corev1.Secret:
		d.secret(o)
		withEvents = false
	default:
		if err := d.generic(obj); err != nil {
			return err
		}
	}
	if withEvents {
		d.events(events)
	}
	if d.err != nil {
		return d.err
	}
	return tw.Flush()
}

// DescribeService is Describe for a Service together with its Endpoints,
// which fill in the per-port "Endpoints:" lines kubectl shows (Describe
// alone omits them, having no endpoints to go by).
func DescribeService(w io.Writer, svc *corev1.Service, eps *corev1.Endpoints, events []corev1.Event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	d := &describer{w: tw, now: now}
	if eps == nil {
		eps = &corev1.Endpoints{}
	}
	d.service(svc, eps)
	d.events(events)
	if d.err != nil {
		return d.err
	}
	return tw.Flush()
}

// describer writes indented, tab-separated lines; the first write error is
// kept and later writes are skipped.
type describer struct {
	w   *tabwriter.Writer
	now time.Time
	err error
}

// line writes format at an indentation of two spaces per level.
func (d *describer) line(level int, format string, args ...any) {
	if d.err != nil {
		return
	}
	_, d.err = fmt.Fprintf(d.w, strings.Repeat("  ", level)+format, args...)
}

// flush ends the current alignment so the next table aligns on its own.
func (d *describer) flush() {
	if d.err == nil {
		d.err = d.w.Flush()
	}
}

// rfc1123 is the time format of describe output ("Mon, 02 Jan 2006 15:04:05 -0700").
func rfc1123(t time.Time) string { return t.Format(time.RFC1123Z) }

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// keyValues prints title and a sorted map, one "k=v" per line aligned under
// the first, or "<none>".
func (d *describer) keyValues(title string, m map[string]string) {
	d.line(0, "%s:\t", title)
	if len(m) == 0 {
		d.line(0, "%s\n", none)
		return
	}
	for i, k := range sortedKeys(m) {
		if i > 0 {
			d.line(0, "\t")
		}
		d.line(0, "%s=%s\n", k, m[k])
	}
}

// lastApplied is the annotation kubectl apply keeps; describe hides it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// maxAnnotationLen is where describe starts folding annotation values.
const maxAnnotationLen = 140

// annotations prints "key: value" lines; long or multi-line values go on
// their own indented lines, each cut at maxAnnotationLen.
func (d *describer) annotations(title string, m map[string]string) {
	d.line(0, "%s:\t", title)
	var keys []string
	for _, k := range sortedKeys(m) {
		if k != lastApplied {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		d.line(0, "%s\n", none)
		return
	}
	for i, k := range keys {
		if i > 0 {
			d.line(0, "\t")
		}
		v := strings.TrimSuffix(m[k], "\n")
		if len(k)+len(v)+2 <= maxAnnotationLen && !strings.Contains(v, "\n") {
			d.line(0, "%s: %s\n", k, v)
			continue
		}
		d.line(0, "%s:\n", k)
		for _, s := range strings.Split(v, "\n") {
			if len(s) > maxAnnotationLen-2 {
				s = s[:maxAnnotationLen-2] + "..."
			}
			d.line(0, "\t  %s\n", s)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// controlledBy is "Kind/name" of the managing controller, or "".
func controlledBy(m metav1.Object) string {
	if ref := metav1.GetControllerOf(m); ref != nil {
		return ref.Kind + "/" + ref.Name
	}
	return ""
}

// Pod --------------------------------------------------------------------

func (d *describer) pod(pod *corev1.Pod) {
	d.line(0, "Name:\t%s\n", pod.Name)
	d.line(0, "Namespace:\t%s\n", pod.Namespace)
	if pod.Spec.Priority != nil {
		d.line(0, "Priority:\t%d\n", *pod.Spec.Priority)
	}
	if pod.Spec.PriorityClassName != "" {
		d.line(0, "Priority Class Name:\t%s\n", pod.Spec.PriorityClassName)
	}
	if pod.Spec.NodeName == "" {
		d.line(0, "Node:\t%s\n", none)
	} else {
		d.line(0, "Node:\t%s/%s\n", pod.Spec.NodeName, pod.Status.HostIP)
	}
	if pod.Status.StartTime != nil {
		d.line(0, "Start Time:\t%s\n", rfc1123(pod.Status.StartTime.Time))
	}
	d.keyValues("Labels", pod.Labels)
	d.annotations("Annotations", pod.Annotations)
	if pod.DeletionTimestamp != nil {
		d.line(0, "Status:\tTerminating (lasts %s)\n", HumanDuration(pod.DeletionTimestamp.Sub(d.now)))
		grace := int64(0)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		d.line(0, "Termination Grace Period:\t%ds\n", grace)
	} else {
		d.line(0, "Status:\t%s\n", pod.Status.Phase)
	}
	if pod.Status.Reason != "" {
		d.line(0, "Reason:\t%s\n", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		d.line(0, "Message:\t%s\n", pod.Status.Message)
	}
	d.line(0, "IP:\t%s\n", pod.Status.PodIP)
	if len(pod.Status.PodIPs) == 0 {
		d.line(0, "IPs:\t%s\n", none)
	} else {
		d.line(0, "IPs:\n")
		for _, ip := range pod.Status.PodIPs {
			d.line(1, "IP:\t%s\n", ip.IP)
		}
	}
	if c := controlledBy(pod); c != "" {
		d.line(0, "Controlled By:\t%s\n", c)
	}
	if pod.Status.NominatedNodeName != "" {
		d.line(0, "NominatedNodeName:\t%s\n", pod.Status.NominatedNodeName)
	}

	env := podEnvResolver(pod)
	if len(pod.Spec.InitContainers) > 0 {
		d.containers("Init Containers", pod.Spec.InitContainers, pod.Status.InitContainerStatuses, env, "")
	}
	d.containers("Containers", pod.Spec.Containers, pod.Status.ContainerStatuses, env, "")

	if len(pod.Spec.ReadinessGates) > 0 {
		d.line(0, "Readiness Gates:\n  Type\tStatus\n")
		for _, g := range pod.Spec.ReadinessGates {
			status := none
			for _, c := range pod.Status.Conditions {
				if c.Type == g.ConditionType {
					status = string(c.Status)
					break
				}
			}
			d.line(1, "%s \t%s \n", g.ConditionType, status)
		}
	}
	if len(pod.Status.Conditions) > 0 {
		d.line(0, "Conditions:\n  Type\tStatus\n")
		for _, c := range pod.Status.Conditions {
			d.line(1, "%s \t%s \n", c.Type, c.Status)
		}
	}
	d.volumes(pod.Spec.Volumes, "")
	qos := pod.Status.QOSClass
	if qos == "" {
		qos = podQOS(pod)
	}
	d.line(0, "QoS Class:\t%s\n", qos)
	d.keyValues("Node-Selectors", pod.Spec.NodeSelector)
	d.tolerations("Tolerations", pod.Spec.Tolerations)
}

// envResolver gives the value a downward-API env var resolves to.
type envResolver func(corev1.EnvVar) string

// fieldSubscript matches metadata.labels['key'] style field paths.
var fieldSubscript = regexp.MustCompile(`^metadata\.(labels|annotations)\['(.*)'\]$`)

// podEnvResolver resolves the downward-API field paths a pod can expose.
func podEnvResolver(pod *corev1.Pod) envResolver {
	return func(e corev1.EnvVar) string {
		path := e.ValueFrom.FieldRef.FieldPath
		if m := fieldSubscript.FindStringSubmatch(path); m != nil {
			if m[1] == "labels" {
				return pod.Labels[m[2]]
			}
			return pod.Annotations[m[2]]
		}
		switch path {
		case "metadata.name":
			return pod.Name
		case "metadata.namespace":
			return pod.Namespace
		case "metadata.uid":
			return string(pod.UID)
		case "spec.nodeName":
			return pod.Spec.NodeName
		case "spec.serviceAccountName":
			return pod.Spec.ServiceAccountName
		case "status.hostIP":
			return pod.Status.HostIP
		case "status.podIP":
			return pod.Status.PodIP
		case "status.podIPs":
			ips := make([]string, len(pod.Status.PodIPs))
			for i, ip := range pod.Status.PodIPs {
				ips[i] = ip.IP
			}
			return strings.Join(ips, ",")
		}
		return ""
	}
}

// containers describes a list of containers; space is the extra indent of
// a pod template ("  "), which also nudges the names by one column.
func (d *describer) containers(label string, cs []corev1.Container, statuses []corev1.ContainerStatus, env envResolver, space string) {
	byName := map[string]corev1.ContainerStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	if len(cs) == 0 {
		d.line(0, "%s%s: %s\n", space, label, none)
		return
	}
	d.line(0, "%s%s:\n", space, label)
	nameIndent := ""
	if space != "" {
		nameIndent = " "
	}
	for i := range cs {
		c := &cs[i]
		st, hasStatus := byName[c.Name]
		d.line(1, "%s%s:\n", nameIndent, c.Name)
		if hasStatus {
			d.line(2, "Container ID:\t%s\n", st.ContainerID)
		}
		d.line(2, "Image:\t%s\n", c.Image)
		if hasStatus {
			d.line(2, "Image ID:\t%s\n", st.ImageID)
		}
		ports, hostPorts := containerPorts(c.Ports)
		if len(c.Ports) > 1 {
			d.line(2, "Ports:\t%s\n", ports)
			d.line(2, "Host Ports:\t%s\n", hostPorts)
		} else {
			d.line(2, "Port:\t%s\n", orNone(ports))
			d.line(2, "Host Port:\t%s\n", orNone(hostPorts))
		}
		d.commandLines("Command", c.Command)
		d.commandLines("Args", c.Args)
		if hasStatus {
			d.containerState("State", st.State)
			if st.LastTerminationState.Terminated != nil {
				d.containerState("Last State", st.LastTerminationState)
			}
			d.line(2, "Ready:\t%s\n", boolWord(st.Ready))
			d.line(2, "Restart Count:\t%d\n", st.RestartCount)
		}
		d.resourceList(2, "Limits", c.Resources.Limits)
		d.resourceList(2, "Requests", c.Resources.Requests)
		d.probe("Liveness", c.LivenessProbe)
		d.probe("Readiness", c.ReadinessProbe)
		d.probe("Startup", c.StartupProbe)
		if len(c.EnvFrom) > 0 {
			d.envFrom(c.EnvFrom)
		}
		d.env(c, env)
		d.mounts(c)
	}
}

// containerPorts renders "80/TCP, 443/TCP" and the matching host ports.
func containerPorts(ports []corev1.ContainerPort) (string, string) {
	p := make([]string, len(ports))
	h := make([]string, len(ports))
	for i, port := range ports {
		p[i] = fmt.Sprintf("%d/%s", port.ContainerPort, port.Protocol)
		h[i] = fmt.Sprintf("%d/%s", port.HostPort, port.Protocol)
	}
	return strings.Join(p, ", "), strings.Join(h, ", ")
}

func (d *describer) commandLines(title string, args []string) {
	if len(args) == 0 {
		return
	}
	d.line(2, "%s:\n", title)
	for _, a := range args {
		for _, s := range strings.Split(a, "\n") {
			d.line(3, "%s\n", s)
		}
	}
}

func (d *describer) containerState(title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		d.line(2, "%s:\tRunning\n", title)
		d.line(3, "Started:\t%s\n", rfc1123(s.Running.StartedAt.Time))
	case s.Terminated != nil:
		t := s.Terminated
		d.line(2, "%s:\tTerminated\n", title)
		if t.Reason != "" {
			d.line(3, "Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			d.line(3, "Message:\t%s\n", t.Message)
		}
		d.line(3, "Exit Code:\t%d\n", t.ExitCode)
		if t.Signal > 0 {
			d.line(3, "Signal:\t%d\n", t.Signal)
		}
		d.line(3, "Started:\t%s\n", rfc1123(t.StartedAt.Time))
		d.line(3, "Finished:\t%s\n", rfc1123(t.FinishedAt.Time))
	default:
		// No state reported yet reads as waiting, as in kubectl.
		d.line(2, "%s:\tWaiting\n", title)
		if s.Waiting != nil && s.Waiting.Reason != "" {
			d.line(3, "Reason:\t%s\n", s.Waiting.Reason)
		}
	}
}

// resourceList prints a titled, name-sorted resource list at level, or
// nothing when the list is empty.
func (d *describer) resourceList(level int, title string, rl corev1.ResourceList) {
	if len(rl) == 0 {
		return
	}
	d.line(level, "%s:\n", title)
	for _, name := range sortedResourceNames(rl) {
		q := rl[name]
		d.line(level+1, "%s:\t%s\n", name, q.String())
	}
}

func sortedResourceNames(rl corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(rl))
	for n := range rl {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

func (d *describer) probe(title string, p *corev1.Probe) {
	if p == nil {
		return
	}
	d.line(2, "%s:\t%s\n", title, describeProbe(p))
}

// describeProbe renders e.g. "http-get http://:8080/healthz delay=0s
// timeout=1s period=10s #success=1 #failure=3".
func describeProbe(p *corev1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		u := url.URL{Scheme: strings.ToLower(string(p.HTTPGet.Scheme)), Host: p.HTTPGet.Host, Path: p.HTTPGet.Path}
		if port := p.HTTPGet.Port.String(); port != "" {
			u.Host = net.JoinHostPort(p.HTTPGet.Host, port)
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GRPC.Port, derefString(p.GRPC.Service), attrs)
	}
	return "unknown " + attrs
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func optional(b *bool) bool { return b != nil && *b }

func (d *describer) envFrom(sources []corev1.EnvFromSource) {
	d.line(2, "Environment Variables from:\n")
	for _, e := range sources {
		var from, name string
		var opt bool
		switch {
		case e.ConfigMapRef != nil:
			from, name, opt = "ConfigMap", e.ConfigMapRef.Name, optional(e.ConfigMapRef.Optional)
		case e.SecretRef != nil:
			from, name, opt = "Secret", e.SecretRef.Name, optional(e.SecretRef.Optional)
		}
		if e.Prefix != "" {
			from = fmt.Sprintf("%s with prefix '%s'", from, e.Prefix)
		}
		d.line(3, "%s\t%s\tOptional: %t\n", name, from, opt)
	}
}

func (d *describer) env(c *corev1.Container, resolve envResolver) {
	if len(c.Env) == 0 {
		d.line(2, "Environment:\t%s\n", none)
		return
	}
	d.line(2, "Environment:\n")
	for _, e := range c.Env {
		vf := e.ValueFrom
		switch {
		case vf == nil:
			for i, s := range strings.Split(e.Value, "\n") {
				if i == 0 {
					d.line(3, "%s:\t%s\n", e.Name, s)
				} else {
					d.line(3, "\t%s\n", s)
				}
			}
		case vf.FieldRef != nil:
			v := ""
			if resolve != nil {
				v = resolve(e)
			}
			d.line(3, "%s:\t%s (%s:%s)\n", e.Name, v, vf.FieldRef.APIVersion, vf.FieldRef.FieldPath)
		case vf.ResourceFieldRef != nil:
			d.line(3, "%s:\t%s (%s)\n", e.Name, containerResourceValue(c, vf.ResourceFieldRef), vf.ResourceFieldRef.Resource)
		case vf.SecretKeyRef != nil:
			d.line(3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t\n", e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name, optional(vf.SecretKeyRef.Optional))
		case vf.ConfigMapKeyRef != nil:
			d.line(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.Name, vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name, optional(vf.ConfigMapKeyRef.Optional))
		}
	}
}

// containerResourceValue is what a resourceFieldRef env var would hold:
// the container's own request or limit divided by the divisor, rounded up;
// an unset limit means the node's allocatable amount.
func containerResourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) string {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return ""
	}
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, set := list[corev1.ResourceName(name)]
	if !set || q.IsZero() {
		if kind == "limits" && (name == "cpu" || name == "memory") {
			return "node allocatable"
		}
		return "0"
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))))
	}
	return fmt.Sprint(int64(math.Ceil(float64(q.Value()) / float64(divisor.Value()))))
}

func (d *describer) mounts(c *corev1.Container) {
	if len(c.VolumeMounts) == 0 {
		d.line(2, "Mounts:\t%s\n", none)
	} else {
		d.line(2, "Mounts:\n")
		ms := append([]corev1.VolumeMount(nil), c.VolumeMounts...)
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].MountPath < ms[j].MountPath })
		for _, m := range ms {
			flags := "rw"
			if m.ReadOnly {
				flags = "ro"
			}
			if m.SubPath != "" {
				flags += fmt.Sprintf(",path=%q", m.SubPath)
			}
			d.line(3, "%s from %s (%s)\n", m.MountPath, m.Name, flags)
		}
	}
	if len(c.VolumeDevices) > 0 {
		d.line(2, "Devices:\n")
		ds := append([]corev1.VolumeDevice(nil), c.VolumeDevices...)
		sort.SliceStable(ds, func(i, j int) bool { return ds[i].DevicePath < ds[j].DevicePath })
		for _, dev := range ds {
			d.line(3, "%s from %s\n", dev.DevicePath, dev.Name)
		}
	}
}

func (d *describer) volumes(vols []corev1.Volume, space string) {
	if len(vols) == 0 {
		d.line(0, "%sVolumes:\t%s\n", space, none)
		return
	}
	d.line(0, "%sVolumes:\n", space)
	nameIndent := ""
	if space != "" {
		nameIndent = " "
	}
	for _, v := range vols {
		d.line(1, "%s%s:\n", nameIndent, v.Name)
		d.volumeSource(v.VolumeSource)
	}
}

func (d *describer) volumeSource(vs corev1.VolumeSource) {
	switch {
	case vs.HostPath != nil:
		typ := none
		if vs.HostPath.Type != nil {
			typ = string(*vs.HostPath.Type)
		}
		d.line(2, "Type:\tHostPath (bare host directory volume)\n")
		d.line(2, "Path:\t%s\n", vs.HostPath.Path)
		d.line(2, "HostPathType:\t%s\n", typ)
	case vs.EmptyDir != nil:
		limit := "<unset>"
		if sl := vs.EmptyDir.SizeLimit; sl != nil && sl.Sign() > 0 {
			limit = sl.String()
		}
		d.line(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
		d.line(2, "Medium:\t%s\n", vs.EmptyDir.Medium)
		d.line(2, "SizeLimit:\t%s\n", limit)
	case vs.Secret != nil:
		d.line(2, "Type:\tSecret (a volume populated by a Secret)\n")
		d.line(2, "SecretName:\t%s\n", vs.Secret.SecretName)
		d.line(2, "Optional:\t%t\n", optional(vs.Secret.Optional))
	case vs.ConfigMap != nil:
		d.line(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
		d.line(2, "Name:\t%s\n", vs.ConfigMap.Name)
		d.line(2, "Optional:\t%t\n", optional(vs.ConfigMap.Optional))
	case vs.PersistentVolumeClaim != nil:
		d.line(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n")
		d.line(2, "ClaimName:\t%s\n", vs.PersistentVolumeClaim.ClaimName)
		d.line(2, "ReadOnly:\t%t\n", vs.PersistentVolumeClaim.ReadOnly)
	case vs.Projected != nil:
		d.line(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
		for _, src := range vs.Projected.Sources {
			switch {
			case src.Secret != nil:
				d.line(2, "SecretName:\t%s\n", src.Secret.Name)
				d.line(2, "SecretOptionalName:\t%s\n", optionalWord(src.Secret.Optional))
			case src.DownwardAPI != nil:
				d.line(2, "DownwardAPI:\ttrue\n")
			case src.ConfigMap != nil:
				d.line(2, "ConfigMapName:\t%s\n", src.ConfigMap.Name)
				d.line(2, "ConfigMapOptional:\t%s\n", optionalWord(src.ConfigMap.Optional))
			case src.ServiceAccountToken != nil:
				secs := int64(3600) // the API's default token lifetime
				if src.ServiceAccountToken.ExpirationSeconds != nil {
					secs = *src.ServiceAccountToken.ExpirationSeconds
				}
				d.line(2, "TokenExpirationSeconds:\t%d\n", secs)
			}
		}
	case vs.DownwardAPI != nil:
		d.line(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n")
		d.line(2, "Items:\n")
		for _, it := range vs.DownwardAPI.Items {
			switch {
			case it.FieldRef != nil:
				d.line(3, "%s -> %s\n", it.FieldRef.FieldPath, it.Path)
			case it.ResourceFieldRef != nil:
				d.line(3, "%s -> %s\n", it.ResourceFieldRef.Resource, it.Path)
			}
		}
	case vs.NFS != nil:
		d.line(2, "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n")
		d.line(2, "Server:\t%s\n", vs.NFS.Server)
		d.line(2, "Path:\t%s\n", vs.NFS.Path)
		d.line(2, "ReadOnly:\t%t\n", vs.NFS.ReadOnly)
	default:
		d.line(1, "%s\n", unknown)
	}
}

// optionalWord prints an optional flag the way kubectl shows it for
// projected sources: "<nil>" when unset.
func optionalWord(b *bool) string {
	if b == nil {
		return "<nil>"
	}
	return fmt.Sprint(*b)
}

// tolerations prints "key=value:Effect op=Exists for 300s" lines sorted by key.
func (d *describer) tolerations(title string, ts []corev1.Toleration) {
	d.line(0, "%s:\t", title)
	if len(ts) == 0 {
		d.line(0, "%s\n", none)
		return
	}
	ts = append([]corev1.Toleration(nil), ts...)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	for i, t := range ts {
		if i > 0 {
			d.line(0, "\t")
		}
		var b strings.Builder
		b.WriteString(t.Key)
		if t.Value != "" {
			b.WriteString("=" + t.Value)
		}
		if t.Effect != "" {
			b.WriteString(":" + string(t.Effect))
		}
		if t.Operator == corev1.TolerationOpExists && t.Value == "" {
			if t.Key != "" || t.Effect != "" {
				b.WriteString(" ")
			}
			b.WriteString("op=Exists") // a bare Exists tolerates every taint
		}
		if t.TolerationSeconds != nil {
			fmt.Fprintf(&b, " for %ds", *t.TolerationSeconds)
		}
		d.line(0, "%s\n", b.String())
	}
}

// podQOS derives the QoS class when the status does not carry one:
// BestEffort without any cpu/memory request or limit, Guaranteed when every
// container limits both and requests (defaulting to the limits) equal them,
// Burstable otherwise.
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	all := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	compute := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}
	some, guaranteed := false, len(all) > 0
	for _, c := range all {
		for _, r := range compute {
			lim, hasLim := c.Resources.Limits[r]
			req, hasReq := c.Resources.Requests[r]
			if (hasLim && !lim.IsZero()) || (hasReq && !req.IsZero()) {
				some = true
			}
			if !hasLim || lim.IsZero() || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !some:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// Pod templates and controllers ---------------------------------------------

func (d *describer) podTemplate(t *corev1.PodTemplateSpec) {
	d.line(0, "Pod Template:\n")
	d.keyValues("  Labels", t.Labels)
	if len(t.Annotations) > 0 {
		d.annotations("  Annotations", t.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		d.line(1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		d.containers("Init Containers", t.Spec.InitContainers, nil, nil, "  ")
	}
	d.containers("Containers", t.Spec.Containers, nil, nil, "  ")
	d.volumes(t.Spec.Volumes, "  ")
	if t.Spec.PriorityClassName != "" {
		d.line(1, "Priority Class Name:\t%s\n", t.Spec.PriorityClassName)
	}
	// Where the template's pods may run, as kubectl 1.32 shows it (1.20
	// did not).
	d.keyValues("  Node-Selectors", t.Spec.NodeSelector)
	d.tolerations("  Tolerations", t.Spec.Tolerations)
}

func (d *describer) deployment(dep *appsv1.Deployment) {
	d.line(0, "Name:\t%s\n", dep.Name)
	d.line(0, "Namespace:\t%s\n", dep.Namespace)
	d.line(0, "CreationTimestamp:\t%s\n", rfc1123(dep.CreationTimestamp.Time))
	d.keyValues("Labels", dep.Labels)
	d.annotations("Annotations", dep.Annotations)
	d.line(0, "Selector:\t%s\n", selectorString(dep.Spec.Selector))
	st := dep.Status
	d.line(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
		replicasOf(dep.Spec.Replicas), st.UpdatedReplicas, st.Replicas, st.AvailableReplicas, st.UnavailableReplicas)
	strategy := dep.Spec.Strategy.Type
	if strategy == "" {
		strategy = appsv1.RollingUpdateDeploymentStrategyType // the API default
	}
	d.line(0, "StrategyType:\t%s\n", strategy)
	d.line(0, "MinReadySeconds:\t%d\n", dep.Spec.MinReadySeconds)
	if ru := dep.Spec.Strategy.RollingUpdate; ru != nil {
		d.line(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", intOrPercent(ru.MaxUnavailable), intOrPercent(ru.MaxSurge))
	}
	d.podTemplate(&dep.Spec.Template)
	if len(st.Conditions) > 0 {
		d.line(0, "Conditions:\n  Type\tStatus\tReason\n")
		d.line(1, "----\t------\t------\n")
		for _, c := range st.Conditions {
			d.line(1, "%s \t%s\t%s\n", c.Type, c.Status, c.Reason)
		}
	}
}

// intOrPercent prints a rolling-update bound; unset reads as the API's 25%.
func intOrPercent(v *intstr.IntOrString) string {
	if v == nil {
		return "25%"
	}
	return v.String()
}

func (d *describer) replicaSet(rs *appsv1.ReplicaSet) {
	d.line(0, "Name:\t%s\n", rs.Name)
	d.line(0, "Namespace:\t%s\n", rs.Namespace)
	d.line(0, "Selector:\t%s\n", selectorString(rs.Spec.Selector))
	d.keyValues("Labels", rs.Labels)
	d.annotations("Annotations", rs.Annotations)
	if c := controlledBy(rs); c != "" {
		d.line(0, "Controlled By:\t%s\n", c)
	}
	d.line(0, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, replicasOf(rs.Spec.Replicas))
	d.podTemplate(&rs.Spec.Template)
	if len(rs.Status.Conditions) > 0 {
		d.line(0, "Conditions:\n  Type\tStatus\tReason\n")
		d.line(1, "----\t------\t------\n")
		for _, c := range rs.Status.Conditions {
			d.line(1, "%s \t%s\t%s\n", c.Type, c.Status, c.Reason)
		}
	}
}

// Service ----------------------------------------------------------------

// service describes svc; eps nil leaves out the per-port Endpoints lines.
func (d *describer) service(svc *corev1.Service, eps *corev1.Endpoints) {
	d.line(0, "Name:\t%s\n", svc.Name)
	d.line(0, "Namespace:\t%s\n", svc.Namespace)
	d.keyValues("Labels", svc.Labels)
	d.annotations("Annotations", svc.Annotations)
	d.line(0, "Selector:\t%s\n", formatLabels(svc.Spec.Selector))
	d.line(0, "Type:\t%s\n", svc.Spec.Type)
	if p := svc.Spec.IPFamilyPolicy; p != nil {
		d.line(0, "IP Family Policy:\t%s\n", *p)
	}
	if len(svc.Spec.IPFamilies) > 0 {
		fams := make([]string, len(svc.Spec.IPFamilies))
		for i, f := range svc.Spec.IPFamilies {
			fams[i] = string(f)
		}
		d.line(0, "IP Families:\t%s\n", strings.Join(fams, ","))
	} else {
		d.line(0, "IP Families:\t%s\n", none)
	}
	d.line(0, "IP:\t%s\n", svc.Spec.ClusterIP)
	if len(svc.Spec.ClusterIPs) > 0 {
		d.line(0, "IPs:\t%s\n", strings.Join(svc.Spec.ClusterIPs, ","))
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		d.line(0, "External IPs:\t%s\n", strings.Join(svc.Spec.ExternalIPs, ","))
	}
	if svc.Spec.LoadBalancerIP != "" {
		d.line(0, "IP:\t%s\n", svc.Spec.LoadBalancerIP)
	}
	if svc.Spec.ExternalName != "" {
		d.line(0, "External Name:\t%s\n", svc.Spec.ExternalName)
	}
	if ing := svc.Status.LoadBalancer.Ingress; len(ing) > 0 {
		var addrs []string
		for _, in := range ing {
			if in.IP != "" {
				addrs = append(addrs, in.IP)
			} else if in.Hostname != "" {
				addrs = append(addrs, in.Hostname)
			}
		}
		d.line(0, "LoadBalancer Ingress:\t%s\n", strings.Join(addrs, ", "))
	}
	for _, p := range svc.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		d.line(0, "Port:\t%s\t%d/%s\n", name, p.Port, p.Protocol)
		if p.TargetPort.Type == intstr.String {
			d.line(0, "TargetPort:\t%s/%s\n", p.TargetPort.StrVal, p.Protocol)
		} else {
			d.line(0, "TargetPort:\t%d/%s\n", p.TargetPort.IntVal, p.Protocol)
		}
		if p.NodePort != 0 {
			d.line(0, "NodePort:\t%s\t%d/%s\n", name, p.NodePort, p.Protocol)
		}
		if eps != nil {
			eps := formatEndpoints(eps, map[string]bool{p.Name: true})
			d.line(0, "Endpoints:\t%s\n", eps)
		}
	}
	affinity := svc.Spec.SessionAffinity
	if affinity == "" {
		affinity = corev1.ServiceAffinityNone
	}
	d.line(0, "Session Affinity:\t%s\n", affinity)
	if svc.Spec.ExternalTrafficPolicy != "" {
		d.line(0, "External Traffic Policy:\t%s\n", svc.Spec.ExternalTrafficPolicy)
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil {
		d.line(0, "Internal Traffic Policy:\t%s\n", *p)
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		d.line(0, "HealthCheck NodePort:\t%d\n", svc.Spec.HealthCheckNodePort)
	}
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		d.line(0, "LoadBalancer Source Ranges:\t%s\n", strings.Join(svc.Spec.LoadBalancerSourceRanges, ","))
	}
}

// Node and Namespace -------------------------------------------------------

func (d *describer) node(node *corev1.Node) {
	d.line(0, "Name:\t%s\n", node.Name)
	d.line(0, "Roles:\t%s\n", orNone(strings.Join(nodeRoles(node), ",")))
	d.keyValues("Labels", node.Labels)
	d.annotations("Annotations", node.Annotations)
	d.line(0, "CreationTimestamp:\t%s\n", rfc1123(node.CreationTimestamp.Time))
	d.taints("Taints", node.Spec.Taints)
	d.line(0, "Unschedulable:\t%t\n", node.Spec.Unschedulable)
	if len(node.Status.Conditions) > 0 {
		d.line(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
		d.line(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
		for _, c := range node.Status.Conditions {
			d.line(1, "%s \t%s \t%s \t%s \t%s \t%s\n", c.Type, c.Status,
				rfc1123(c.LastHeartbeatTime.Time), rfc1123(c.LastTransitionTime.Time), c.Reason, c.Message)
		}
	}
	d.line(0, "Addresses:\n")
	for _, a := range node.Status.Addresses {
		d.line(1, "%s:\t%s\n", a.Type, a.Address)
	}
	d.resourceList(0, "Capacity", node.Status.Capacity)
	d.resourceList(0, "Allocatable", node.Status.Allocatable)
	info := node.Status.NodeInfo
	d.line(0, "System Info:\n")
	for _, kv := range [][2]string{
		{"Machine ID", info.MachineID},
		{"System UUID", info.SystemUUID},
		{"Boot ID", info.BootID},
		{"Kernel Version", info.KernelVersion},
		{"OS Image", info.OSImage},
		{"Operating System", info.OperatingSystem},
		{"Architecture", info.Architecture},
		{"Container Runtime Version", info.ContainerRuntimeVersion},
		{"Kubelet Version", info.KubeletVersion},
		{"Kube-Proxy Version", info.KubeProxyVersion},
	} {
		d.line(1, "%s:\t%s\n", kv[0], kv[1])
	}
	if node.Spec.PodCIDR != "" {
		d.line(0, "PodCIDR:\t%s\n", node.Spec.PodCIDR)
	}
	if len(node.Spec.PodCIDRs) > 0 {
		d.line(0, "PodCIDRs:\t%s\n", strings.Join(node.Spec.PodCIDRs, ","))
	}
	if node.Spec.ProviderID != "" {
		d.line(0, "ProviderID:\t%s\n", node.Spec.ProviderID)
	}
}

// taints prints "key=value:Effect" lines sorted by effect, then key.
func (d *describer) taints(title string, ts []corev1.Taint) {
	d.line(0, "%s:\t", title)
	if len(ts) == 0 {
		d.line(0, "%s\n", none)
		return
	}
	ts = append([]corev1.Taint(nil), ts...)
	sort.SliceStable(ts, func(i, j int) bool {
		return string(ts[i].Effect)+","+ts[i].Key < string(ts[j].Effect)+","+ts[j].Key
	})
	for i := range ts {
		if i > 0 {
			d.line(0, "\t")
		}
		d.line(0, "%s\n", ts[i].ToString())
	}
}

func (d *describer) namespace(ns *corev1.Namespace) {
	d.line(0, "Name:\t%s\n", ns.Name)
	d.keyValues("Labels", ns.Labels)
	d.annotations("Annotations", ns.Annotations)
	d.line(0, "Status:\t%s\n", ns.Status.Phase)
	if len(ns.Status.Conditions) > 0 {
		d.line(0, "Conditions:\n  Type\tStatus\tLastTransitionTime\tReason\tMessage\n")
		d.line(1, "----\t------\t------------------\t------\t-------\n")
		for _, c := range ns.Status.Conditions {
			d.line(1, "%s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, rfc1123(c.LastTransitionTime.Time), c.Reason, c.Message)
		}
	}
	// kubectl adds quota and limit sections only when the server serves
	// resourcequotas and limitranges; drover serves neither, so kubectl
	// (1.20 as 1.32) ends here.
}

// ConfigMap and Secret ------------------------------------------------------

func (d *describer) configMap(cm *corev1.ConfigMap) {
	d.line(0, "Name:\t%s\n", cm.Name)
	d.line(0, "Namespace:\t%s\n", cm.Namespace)
	d.keyValues("Labels", cm.Labels)
	d.annotations("Annotations", cm.Annotations)
	// kubectl 1.32's layout: a blank line after each value, then a
	// BinaryData section (sizes only) even when it is empty. (kubectl 1.20
	// had neither.)
	d.line(0, "\nData\n====\n")
	for _, k := range sortedKeys(cm.Data) {
		d.line(0, "%s:\n----\n", k)
		d.line(0, "%s\n", cm.Data[k])
		d.line(0, "\n")
	}
	d.line(0, "\nBinaryData\n====\n")
	keys := make([]string, 0, len(cm.BinaryData))
	for k := range cm.BinaryData {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.line(0, "%s: %d bytes\n", k, len(cm.BinaryData[k]))
	}
	d.line(0, "\n")
}

func (d *describer) secret(s *corev1.Secret) {
	d.line(0, "Name:\t%s\n", s.Name)
	d.line(0, "Namespace:\t%s\n", s.Namespace)
	d.keyValues("Labels", s.Labels)
	d.annotations("Annotations", s.Annotations)
	d.line(0, "\nType:\t%s\n", s.Type)
	d.line(0, "\nData\n====\n")
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Only a service-account token is shown; other values stay secret.
		if k == corev1.ServiceAccountTokenKey && s.Type == corev1.SecretTypeServiceAccountToken {
			d.line(0, "%s:\t%s\n", k, s.Data[k])
		} else {
			d.line(0, "%s:\t%d bytes\n", k, len(s.Data[k]))
		}
	}
}

// Generic ----------------------------------------------------------------

// genericSkip are the fields generic already printed, or that only add
// noise (managed fields).
var genericSkip = map[string]bool{
	".metadata.name":          true,
	".metadata.namespace":     true,
	".metadata.labels":        true,
	".metadata.annotations":   true,
	".metadata.managedFields": true,
}

func (d *describer) generic(obj runtime.Object) error {
	var content map[string]any
	if u, ok := obj.(*unstructured.Unstructured); ok {
		content = u.UnstructuredContent()
	} else {
		c, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("printers: describing %T: %w", obj, err)
		}
		content = c
		if gvk := kindOf(obj); gvk.Kind != "" {
			content["apiVersion"], content["kind"] = gvk.GroupVersion().String(), gvk.Kind
		}
	}
	u := &unstructured.Unstructured{Object: content}
	d.line(0, "Name:\t%s\n", u.GetName())
	d.line(0, "Namespace:\t%s\n", u.GetNamespace())
	d.keyValues("Labels", u.GetLabels())
	d.annotations("Annotations", u.GetAnnotations())
	d.tree(0, content, "")
	return nil
}

// tree prints nested fields as kubectl's generic describer does: keys in
// sorted order turned into "Title Case" labels, maps and lists indented
// one level deeper, scalars as "Label:\tvalue".
func (d *describer) tree(level int, content map[string]any, path string) {
	keys := make([]string, 0, len(content))
	for k := range content {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := path + "." + k
		if genericSkip[p] {
			continue
		}
		switch v := content[k].(type) {
		case nil:
			// JSON null (e.g. an unset timestamp): nothing to show.
		case map[string]any:
			d.line(level, "%s:\n", smartLabel(k))
			d.tree(level+1, v, p)
		case []any:
			d.line(level, "%s:\n", smartLabel(k))
			for _, item := range v {
				if m, ok := item.(map[string]any); ok {
					d.tree(level+1, m, p)
				} else {
					d.line(level+1, "%v\n", item)
				}
			}
		default:
			d.line(level, "%s:\t%v\n", smartLabel(k), v)
		}
	}
}

// acronyms stay upper-case in smart labels ("apiVersion" -> "API Version").
var acronyms = map[string]bool{"API": true, "URL": true, "UID": true, "OSB": true, "GUID": true}

// smartLabel turns a camelCase field name into "Camel Case"; names with
// characters other than letters and '-' are left as they are.
func smartLabel(field string) string {
	if strings.IndexFunc(field, func(r rune) bool { return !unicode.IsLetter(r) && r != '-' }) >= 0 {
		return field
	}
	words := splitCamel(field)
	for i, w := range words {
		if up := strings.ToUpper(w); acronyms[up] {
			words[i] = up
		} else {
			r := []rune(w)
			r[0] = unicode.ToUpper(r[0])
			words[i] = string(r)
		}
	}
	return strings.Join(words, " ")
}

// splitCamel splits at lower-to-upper changes and before the last capital
// of a run followed by lower case: "podIP" -> pod IP, "APIVersion" -> API
// Version. A '-' stays inside its word.
func splitCamel(s string) []string {
	r := []rune(s)
	var words []string
	start := 0
	for i := 1; i < len(r); i++ {
		lowerToUpper := unicode.IsLower(r[i-1]) && unicode.IsUpper(r[i])
		acronymEnd := unicode.IsUpper(r[i-1]) && unicode.IsUpper(r[i]) && i+1 < len(r) && unicode.IsLower(r[i+1])
		if lowerToUpper || acronymEnd {
			words = append(words, string(r[start:i]))
			start = i
		}
	}
	return append(words, string(r[start:]))
}

// Events -----------------------------------------------------------------

// eventTime is when an event last happened, whichever API filled it in.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// events writes kubectl's Events table, oldest first; "<none>" when empty.
func (d *describer) events(events []corev1.Event) {
	if len(events) == 0 {
		d.line(0, "Events:\t%s\n", none)
		return
	}
	d.flush()
	evs := append([]corev1.Event(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(&evs[i]).Before(eventTime(&evs[j])) })
	d.line(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	d.line(1, "----\t------\t----\t----\t-------\n")
	for i := range evs {
		e := &evs[i]
		first := age(e.FirstTimestamp, d.now)
		if !e.EventTime.IsZero() {
			first = microAge(e.EventTime, d.now)
		}
		when := first
		switch {
		case e.Series != nil:
			when = fmt.Sprintf("%s (x%d over %s)", microAge(e.Series.LastObservedTime, d.now), e.Series.Count, first)
		case e.Count > 1:
			when = fmt.Sprintf("%s (x%d over %s)", age(e.LastTimestamp, d.now), e.Count, first)
		}
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		d.line(1, "%s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, when, from, strings.TrimSpace(e.Message))
	}
}
