package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// Placeholders kubectl prints for absent or unusable values.
const (
	none    = "<none>"
	unknown = "<unknown>"
	invalid = "<invalid>"
)

// Cells returns one row's cells for a typed object (k8s.io/api types), in
// the order and number of Columns for the object's kind; now is the instant
// AGE-like cells are measured from. Integer-valued columns hold int64, all
// others strings. An *unstructured.Unstructured of a kind this package knows
// is converted to its typed form first.
func Cells(obj runtime.Object, now time.Time) ([]any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		typed, err := typedFromUnstructured(u)
		if err != nil {
			return nil, err
		}
		obj = typed
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return podCells(o, now), nil
	case *appsv1.Deployment:
		return deploymentCells(o, now), nil
	case *appsv1.ReplicaSet:
		return replicaSetCells(o, now), nil
	case *appsv1.DaemonSet:
		return daemonSetCells(o, now), nil
	case *appsv1.StatefulSet:
		return statefulSetCells(o, now), nil
	case *batchv1.Job:
		return jobCells(o, now), nil
	case *corev1.Node:
		return nodeCells(o, now), nil
	case *corev1.Service:
		return serviceCells(o, now), nil
	case *corev1.Endpoints:
		return []any{o.Name, formatEndpoints(o, nil), age(o.CreationTimestamp, now)}, nil
	case *corev1.Namespace:
		return []any{o.Name, string(o.Status.Phase), age(o.CreationTimestamp, now)}, nil
	case *corev1.ConfigMap:
		return []any{o.Name, int64(len(o.Data) + len(o.BinaryData)), age(o.CreationTimestamp, now)}, nil
	case *corev1.Secret:
		return []any{o.Name, string(o.Type), int64(len(o.Data)), age(o.CreationTimestamp, now)}, nil
	case *corev1.ServiceAccount:
		return []any{o.Name, int64(len(o.Secrets)), age(o.CreationTimestamp, now)}, nil
	case *corev1.Event:
		return eventCells(o, now), nil
	case *coordinationv1.Lease:
		holder := ""
		if o.Spec.HolderIdentity != nil {
			holder = *o.Spec.HolderIdentity
		}
		return []any{o.Name, holder, age(o.CreationTimestamp, now)}, nil
	case *rbacv1.RoleBinding:
		return bindingCells(o.ObjectMeta, o.RoleRef, o.Subjects, now), nil
	case *rbacv1.ClusterRoleBinding:
		return bindingCells(o.ObjectMeta, o.RoleRef, o.Subjects, now), nil
	}
	return defaultCells(obj)
}

// defaultCells are kube-apiserver's default convertor cells: the name and
// the creation time in RFC 3339, UTC.
func defaultCells(obj runtime.Object) ([]any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("printers: %T has no object metadata: %w", obj, err)
	}
	return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}, nil
}

// Pod --------------------------------------------------------------------

// nodeUnreachableReason is the pod status reason the node lifecycle
// controller sets on pods of a node that stopped reporting.
const nodeUnreachableReason = "NodeLost"

func podCells(pod *corev1.Pod, now time.Time) []any {
	ready, total, status, restarts := podSummary(pod)

	ip := pod.Status.PodIP
	if len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	}
	return []any{
		pod.Name,
		fmt.Sprintf("%d/%d", ready, total),
		status,
		int64(restarts),
		age(pod.CreationTimestamp, now),
		orNone(ip),
		orNone(pod.Spec.NodeName),
		orNone(pod.Status.NominatedNodeName),
		readinessGates(pod),
	}
}

// podSummary computes READY, STATUS and RESTARTS with kubectl's rules: the
// phase (or the pod-level reason) unless an init container is still pending
// or failed ("Init:1/3", "Init:CrashLoopBackOff"), else the most telling
// container state (a waiting or terminated reason, or "ExitCode:N" /
// "Signal:N"), and "Terminating" once a deletion is under way.
func podSummary(pod *corev1.Pod) (ready, total int, status string, restarts int32) {
	total = len(pod.Spec.Containers)
	status = string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		status = pod.Status.Reason
	}

	initializing := false
	for i, cs := range pod.Status.InitContainerStatuses {
		restarts += cs.RestartCount
		term, wait := cs.State.Terminated, cs.State.Waiting
		if term != nil && term.ExitCode == 0 {
			continue // this init container finished; look at the next one
		}
		initializing = true
		switch {
		case term != nil && term.Reason != "":
			status = "Init:" + term.Reason
		case term != nil && term.Signal != 0:
			status = fmt.Sprintf("Init:Signal:%d", term.Signal)
		case term != nil:
			status = fmt.Sprintf("Init:ExitCode:%d", term.ExitCode)
		case wait != nil && wait.Reason != "" && wait.Reason != "PodInitializing":
			status = "Init:" + wait.Reason
		default:
			status = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		break // the first unfinished init container decides
	}

	if !initializing {
		// Only the app containers' restarts count once init is done.
		restarts = 0
		running := false
		// Walk backwards so that the first container's state wins, as kubectl.
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := pod.Status.ContainerStatuses[i]
			restarts += cs.RestartCount
			term, wait := cs.State.Terminated, cs.State.Waiting
			switch {
			case wait != nil && wait.Reason != "":
				status = wait.Reason
			case term != nil && term.Reason != "":
				status = term.Reason
			case term != nil && term.Signal != 0:
				status = fmt.Sprintf("Signal:%d", term.Signal)
			case term != nil:
				status = fmt.Sprintf("ExitCode:%d", term.ExitCode)
			case cs.Ready && cs.State.Running != nil:
				running = true
				ready++
			}
		}
		// A finished sidecar must not make a pod with live containers look done.
		if status == "Completed" && running {
			status = "NotReady"
			if hasPodReady(pod) {
				status = "Running"
			}
		}
	}

	if pod.DeletionTimestamp != nil {
		if pod.Status.Reason == nodeUnreachableReason {
			status = "Unknown"
		} else {
			status = "Terminating"
		}
	}
	return ready, total, status, restarts
}

func hasPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// readinessGates is "true gates/all gates", or "<none>" without gates.
func readinessGates(pod *corev1.Pod) string {
	if len(pod.Spec.ReadinessGates) == 0 {
		return none
	}
	trueCount := 0
	for _, g := range pod.Spec.ReadinessGates {
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType {
				if c.Status == corev1.ConditionTrue {
					trueCount++
				}
				break
			}
		}
	}
	return fmt.Sprintf("%d/%d", trueCount, len(pod.Spec.ReadinessGates))
}

// Workloads --------------------------------------------------------------

// replicasOf reads a spec.replicas pointer; the API defaults an unset value
// to 1, so an object that skipped defaulting prints as the server would.
func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// containerSummary lists the template's container names and images, comma
// separated, for the wide CONTAINERS and IMAGES columns.
func containerSummary(spec corev1.PodSpec) (names, images string) {
	n := make([]string, len(spec.Containers))
	im := make([]string, len(spec.Containers))
	for i, c := range spec.Containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// selectorString formats a label selector; "<none>" when it selects
// everything, "<invalid>" when it cannot be parsed.
func selectorString(sel *metav1.LabelSelector) string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return invalid
	}
	return orNone(s.String())
}

func deploymentCells(d *appsv1.Deployment, now time.Time) []any {
	names, images := containerSummary(d.Spec.Template.Spec)
	return []any{
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicasOf(d.Spec.Replicas)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		age(d.CreationTimestamp, now),
		names, images, selectorString(d.Spec.Selector),
	}
}

func replicaSetCells(rs *appsv1.ReplicaSet, now time.Time) []any {
	names, images := containerSummary(rs.Spec.Template.Spec)
	return []any{
		rs.Name,
		int64(replicasOf(rs.Spec.Replicas)),
		int64(rs.Status.Replicas),
		int64(rs.Status.ReadyReplicas),
		age(rs.CreationTimestamp, now),
		names, images, selectorString(rs.Spec.Selector),
	}
}

func daemonSetCells(ds *appsv1.DaemonSet, now time.Time) []any {
	names, images := containerSummary(ds.Spec.Template.Spec)
	return []any{
		ds.Name,
		int64(ds.Status.DesiredNumberScheduled),
		int64(ds.Status.CurrentNumberScheduled),
		int64(ds.Status.NumberReady),
		int64(ds.Status.UpdatedNumberScheduled),
		int64(ds.Status.NumberAvailable),
		formatLabels(ds.Spec.Template.Spec.NodeSelector),
		age(ds.CreationTimestamp, now),
		names, images, selectorString(ds.Spec.Selector),
	}
}

func statefulSetCells(ss *appsv1.StatefulSet, now time.Time) []any {
	names, images := containerSummary(ss.Spec.Template.Spec)
	return []any{
		ss.Name,
		fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, replicasOf(ss.Spec.Replicas)),
		age(ss.CreationTimestamp, now),
		names, images,
	}
}

func jobCells(job *batchv1.Job, now time.Time) []any {
	var completions string
	switch {
	case job.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", job.Status.Succeeded, *job.Spec.Completions)
	case job.Spec.Parallelism != nil && *job.Spec.Parallelism > 1:
		// A work-queue job: done after one success, however many run at once.
		completions = fmt.Sprintf("%d/1 of %d", job.Status.Succeeded, *job.Spec.Parallelism)
	default:
		completions = fmt.Sprintf("%d/1", job.Status.Succeeded)
	}

	var duration string
	switch {
	case job.Status.StartTime == nil:
	case job.Status.CompletionTime == nil:
		duration = HumanDuration(now.Sub(job.Status.StartTime.Time))
	default:
		duration = HumanDuration(job.Status.CompletionTime.Sub(job.Status.StartTime.Time))
	}

	names, images := containerSummary(job.Spec.Template.Spec)
	return []any{
		job.Name, completions, duration, age(job.CreationTimestamp, now),
		names, images, selectorString(job.Spec.Selector),
	}
}

// Node -------------------------------------------------------------------

// Labels kubectl reads a node's roles from.
const (
	nodeRolePrefix = "node-role.kubernetes.io/"
	nodeRoleLabel  = "kubernetes.io/role"
)

func nodeCells(node *corev1.Node, now time.Time) []any {
	info := node.Status.NodeInfo
	return []any{
		node.Name,
		nodeStatus(node),
		orNone(strings.Join(nodeRoles(node), ",")),
		age(node.CreationTimestamp, now),
		info.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP),
		nodeAddress(node, corev1.NodeExternalIP),
		orUnknown(info.OSImage),
		orUnknown(info.KernelVersion),
		orUnknown(info.ContainerRuntimeVersion),
	}
}

// nodeStatus is "Ready" or "NotReady" from the Ready condition (Unknown
// counts as NotReady), "Unknown" without one, plus ",SchedulingDisabled"
// for a cordoned node.
func nodeStatus(node *corev1.Node) string {
	status := "Unknown"
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		status = "NotReady"
		if c.Status == corev1.ConditionTrue {
			status = "Ready"
		}
	}
	if node.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

// nodeRoles returns the sorted, distinct roles named by the node's
// node-role.kubernetes.io/<role> labels and legacy kubernetes.io/role label.
func nodeRoles(node *corev1.Node) []string {
	set := map[string]bool{}
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, nodeRolePrefix):
			if role := strings.TrimPrefix(k, nodeRolePrefix); role != "" {
				set[role] = true
			}
		case k == nodeRoleLabel && v != "":
			set[v] = true
		}
	}
	roles := make([]string, 0, len(set))
	for r := range set {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

func nodeAddress(node *corev1.Node, typ corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == typ {
			return a.Address
		}
	}
	return none
}

// Service and Endpoints ---------------------------------------------------

func serviceCells(svc *corev1.Service, now time.Time) []any {
	clusterIP := svc.Spec.ClusterIP
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	}
	return []any{
		svc.Name,
		string(svc.Spec.Type),
		orNone(clusterIP),
		serviceExternalIP(svc),
		orNone(servicePorts(svc.Spec.Ports)),
		age(svc.CreationTimestamp, now),
		formatLabels(svc.Spec.Selector),
	}
}

// serviceExternalIP follows kubectl: explicit externalIPs for ClusterIP and
// NodePort services, load-balancer ingress (then externalIPs) or "<pending>"
// for LoadBalancer, the DNS name for ExternalName.
func serviceExternalIP(svc *corev1.Service) string {
	ext := svc.Spec.ExternalIPs
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, "":
		// An empty type is what an undefaulted ClusterIP service looks like.
		if len(ext) > 0 {
			return strings.Join(ext, ",")
		}
		return none
	case corev1.ServiceTypeLoadBalancer:
		var all []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				all = append(all, in.IP)
			} else if in.Hostname != "" {
				all = append(all, in.Hostname)
			}
		}
		all = append(all, ext...)
		if len(all) == 0 {
			return "<pending>"
		}
		return strings.Join(all, ",")
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return unknown
}

// servicePorts renders "80/TCP", or "80:30080/TCP" with a node port.
func servicePorts(ports []corev1.ServicePort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			parts[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			parts[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(parts, ",")
}

// maxEndpoints is how many addresses kubectl lists before "+ N more...".
const maxEndpoints = 3

// formatEndpoints lists ip:port pairs (bare IPs for port-less headless
// subsets); ports, when non-nil, restricts to those port names.
func formatEndpoints(ep *corev1.Endpoints, ports map[string]bool) string {
	if len(ep.Subsets) == 0 {
		return none
	}
	var list []string
	count := 0
	add := func(s string) {
		if len(list) < maxEndpoints {
			list = append(list, s)
		}
		count++
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			if ports != nil && !ports[p.Name] {
				continue
			}
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	s := strings.Join(list, ",")
	if count > maxEndpoints {
		s = fmt.Sprintf("%s + %d more...", s, count-maxEndpoints)
	}
	return s
}

// Event ------------------------------------------------------------------

func eventCells(ev *corev1.Event, now time.Time) []any {
	first := age(ev.FirstTimestamp, now)
	if ev.FirstTimestamp.IsZero() {
		first = microAge(ev.EventTime, now)
	}
	last := age(ev.LastTimestamp, now)
	if ev.LastTimestamp.IsZero() {
		last = first
	}
	count := ev.Count
	if ev.Series != nil {
		last = microAge(ev.Series.LastObservedTime, now)
		count = ev.Series.Count
	} else if count == 0 {
		count = 1 // events.k8s.io singletons leave count unset
	}
	return []any{
		last,
		ev.Type,
		ev.Reason,
		eventObject(ev.InvolvedObject),
		ev.InvolvedObject.FieldPath,
		eventSource(ev),
		strings.TrimSpace(ev.Message),
		first,
		int64(count),
		ev.Name,
	}
}

// eventObject is the OBJECT cell, "kind/name" in lower-case kind.
func eventObject(ref corev1.ObjectReference) string {
	kind := strings.ToLower(ref.Kind)
	if ref.Name == "" {
		return kind
	}
	return kind + "/" + ref.Name
}

// eventSource is "component, host", falling back to the reporting
// controller and instance that events.k8s.io clients fill instead.
func eventSource(ev *corev1.Event) string {
	component, host := ev.Source.Component, ev.Source.Host
	if component == "" {
		component = ev.ReportingController
	}
	if host == "" {
		host = ev.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

// RBAC -------------------------------------------------------------------

func bindingCells(m metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject, now time.Time) []any {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		}
	}
	return []any{
		m.Name,
		ref.Kind + "/" + ref.Name,
		age(m.CreationTimestamp, now),
		strings.Join(users, ", "),
		strings.Join(groups, ", "),
		strings.Join(sas, ", "),
	}
}

// Helpers ----------------------------------------------------------------

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// formatLabels prints k=v pairs sorted by key, "<none>" when empty.
func formatLabels(m map[string]string) string {
	return orNone(labels.Set(m).String())
}
