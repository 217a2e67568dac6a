// Package printers turns API objects into what kubectl shows: the server-side
// Table representation (Accept: application/json;as=Table;v=v1;g=meta.k8s.io),
// the client-side text rendering of such tables, and describe output.
//
// Column names, types, formats and priorities follow kube-apiserver's
// built-in table convertors so that a stock kubectl prints drover's tables
// exactly as it prints Kubernetes' own; descriptions come from the API types'
// generated swagger docs, as the apiserver's do.
package printers

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Column type and format strings of the Table API.
const (
	typeString  = "string"
	typeInteger = "integer"
	typeDate    = "date"
	formatName  = "name"
)

var (
	metaDoc = metav1.ObjectMeta{}.SwaggerDoc()

	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: typeString, Format: formatName, Description: metaDoc["name"]}
	ageColumn  = metav1.TableColumnDefinition{Name: "Age", Type: typeString, Description: metaDoc["creationTimestamp"]}
)

func col(name, typ, desc string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: desc}
}

// wide marks a column as shown only with -o wide.
func wide(c metav1.TableColumnDefinition) metav1.TableColumnDefinition {
	c.Priority = 1
	return c
}

// templateColumns are the wide-only CONTAINERS IMAGES SELECTOR columns shared
// by the workload controllers.
func templateColumns(selectorDoc string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		wide(col("Containers", typeString, "Names of each container in the template.")),
		wide(col("Images", typeString, "Images referenced by each container in the template.")),
		wide(col("Selector", typeString, selectorDoc)),
	}
}

func join(parts ...[]metav1.TableColumnDefinition) []metav1.TableColumnDefinition {
	var out []metav1.TableColumnDefinition
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func cols(c ...metav1.TableColumnDefinition) []metav1.TableColumnDefinition { return c }

var (
	groupCore         = ""
	groupApps         = appsv1.GroupName
	groupBatch        = batchv1.GroupName
	groupCoordination = coordinationv1.GroupName
	groupRBAC         = rbacv1.GroupName
)

var (
	gkPod                = schema.GroupKind{Group: groupCore, Kind: "Pod"}
	gkNode               = schema.GroupKind{Group: groupCore, Kind: "Node"}
	gkService            = schema.GroupKind{Group: groupCore, Kind: "Service"}
	gkEndpoints          = schema.GroupKind{Group: groupCore, Kind: "Endpoints"}
	gkNamespace          = schema.GroupKind{Group: groupCore, Kind: "Namespace"}
	gkConfigMap          = schema.GroupKind{Group: groupCore, Kind: "ConfigMap"}
	gkSecret             = schema.GroupKind{Group: groupCore, Kind: "Secret"}
	gkServiceAccount     = schema.GroupKind{Group: groupCore, Kind: "ServiceAccount"}
	gkEvent              = schema.GroupKind{Group: groupCore, Kind: "Event"}
	gkDeployment         = schema.GroupKind{Group: groupApps, Kind: "Deployment"}
	gkReplicaSet         = schema.GroupKind{Group: groupApps, Kind: "ReplicaSet"}
	gkDaemonSet          = schema.GroupKind{Group: groupApps, Kind: "DaemonSet"}
	gkStatefulSet        = schema.GroupKind{Group: groupApps, Kind: "StatefulSet"}
	gkJob                = schema.GroupKind{Group: groupBatch, Kind: "Job"}
	gkLease              = schema.GroupKind{Group: groupCoordination, Kind: "Lease"}
	gkRoleBinding        = schema.GroupKind{Group: groupRBAC, Kind: "RoleBinding"}
	gkClusterRoleBinding = schema.GroupKind{Group: groupRBAC, Kind: "ClusterRoleBinding"}
)

// columnsByKind holds the column set of every kind with a dedicated printer.
// Kinds not listed (Role, ClusterRole, custom kinds...) get defaultColumns,
// exactly as kube-apiserver serves them through its default table convertor.
var columnsByKind = map[schema.GroupKind][]metav1.TableColumnDefinition{
	gkPod: cols(
		nameColumn,
		col("Ready", typeString, "The aggregate readiness state of this pod for accepting traffic."),
		col("Status", typeString, "The aggregate status of the containers in this pod."),
		col("Restarts", typeInteger, "The number of times the containers in this pod have been restarted."),
		ageColumn,
		wide(col("IP", typeString, corev1.PodStatus{}.SwaggerDoc()["podIP"])),
		wide(col("Node", typeString, corev1.PodSpec{}.SwaggerDoc()["nodeName"])),
		wide(col("Nominated Node", typeString, corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"])),
		wide(col("Readiness Gates", typeString, corev1.PodSpec{}.SwaggerDoc()["readinessGates"])),
	),
	gkDeployment: join(cols(
		nameColumn,
		col("Ready", typeString, "Number of the pod with ready state"),
		col("Up-to-date", typeString, appsv1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]),
		col("Available", typeString, appsv1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]),
		ageColumn,
	), templateColumns(appsv1.DeploymentSpec{}.SwaggerDoc()["selector"])),
	gkReplicaSet: join(cols(
		nameColumn,
		col("Desired", typeInteger, appsv1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]),
		col("Current", typeInteger, appsv1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]),
		col("Ready", typeInteger, appsv1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]),
		ageColumn,
	), templateColumns(appsv1.ReplicaSetSpec{}.SwaggerDoc()["selector"])),
	gkDaemonSet: join(cols(
		nameColumn,
		col("Desired", typeInteger, appsv1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]),
		col("Current", typeInteger, appsv1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]),
		col("Ready", typeInteger, appsv1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]),
		col("Up-to-date", typeInteger, appsv1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]),
		col("Available", typeInteger, appsv1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]),
		col("Node Selector", typeString, corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]),
		ageColumn,
	), templateColumns(appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"])),
	gkStatefulSet: cols(
		nameColumn,
		col("Ready", typeString, "Number of the pod with ready state"),
		ageColumn,
		wide(col("Containers", typeString, "Names of each container in the template.")),
		wide(col("Images", typeString, "Images referenced by each container in the template.")),
	),
	gkJob: join(cols(
		nameColumn,
		col("Completions", typeString, batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
		col("Duration", typeString, "Time required to complete the job."),
		ageColumn,
	), templateColumns(batchv1.JobSpec{}.SwaggerDoc()["selector"])),
	gkNode: cols(
		nameColumn,
		col("Status", typeString, "The status of the node"),
		col("Roles", typeString, "The roles of the node"),
		ageColumn,
		col("Version", typeString, corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]),
		wide(col("Internal-IP", typeString, corev1.NodeStatus{}.SwaggerDoc()["addresses"])),
		wide(col("External-IP", typeString, corev1.NodeStatus{}.SwaggerDoc()["addresses"])),
		wide(col("OS-Image", typeString, corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"])),
		wide(col("Kernel-Version", typeString, corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"])),
		wide(col("Container-Runtime", typeString, corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"])),
	),
	gkService: cols(
		nameColumn,
		col("Type", typeString, corev1.ServiceSpec{}.SwaggerDoc()["type"]),
		col("Cluster-IP", typeString, corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]),
		col("External-IP", typeString, corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]),
		col("Port(s)", typeString, corev1.ServiceSpec{}.SwaggerDoc()["ports"]),
		ageColumn,
		wide(col("Selector", typeString, corev1.ServiceSpec{}.SwaggerDoc()["selector"])),
	),
	gkEndpoints: cols(
		nameColumn,
		col("Endpoints", typeString, corev1.Endpoints{}.SwaggerDoc()["subsets"]),
		ageColumn,
	),
	gkNamespace: cols(
		nameColumn,
		col("Status", typeString, "The status of the namespace"),
		ageColumn,
	),
	gkConfigMap: cols(
		nameColumn,
		col("Data", typeString, corev1.ConfigMap{}.SwaggerDoc()["data"]),
		ageColumn,
	),
	gkSecret: cols(
		nameColumn,
		col("Type", typeString, corev1.Secret{}.SwaggerDoc()["type"]),
		col("Data", typeString, corev1.Secret{}.SwaggerDoc()["data"]),
		ageColumn,
	),
	gkServiceAccount: cols(
		nameColumn,
		col("Secrets", typeString, corev1.ServiceAccount{}.SwaggerDoc()["secrets"]),
		ageColumn,
	),
	// Events are the one kind whose NAME is not first: kubectl leads with
	// LAST SEEN and keeps the event's own name as a wide-only last column.
	gkEvent: cols(
		col("Last Seen", typeString, corev1.Event{}.SwaggerDoc()["lastTimestamp"]),
		col("Type", typeString, corev1.Event{}.SwaggerDoc()["type"]),
		col("Reason", typeString, corev1.Event{}.SwaggerDoc()["reason"]),
		col("Object", typeString, corev1.Event{}.SwaggerDoc()["involvedObject"]),
		wide(col("Subobject", typeString, corev1.ObjectReference{}.SwaggerDoc()["fieldPath"])),
		wide(col("Source", typeString, corev1.Event{}.SwaggerDoc()["source"])),
		col("Message", typeString, corev1.Event{}.SwaggerDoc()["message"]),
		wide(col("First Seen", typeString, corev1.Event{}.SwaggerDoc()["firstTimestamp"])),
		wide(col("Count", typeString, corev1.Event{}.SwaggerDoc()["count"])),
		wide(metav1.TableColumnDefinition{Name: "Name", Type: typeString, Format: formatName, Description: metaDoc["name"]}),
	),
	gkLease: cols(
		nameColumn,
		col("Holder", typeString, coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
		ageColumn,
	),
	gkRoleBinding:        bindingColumns("roleBinding"),
	gkClusterRoleBinding: bindingColumns("clusterRoleBinding"),
}

func bindingColumns(what string) []metav1.TableColumnDefinition {
	return cols(
		nameColumn,
		col("Role", typeString, rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]),
		ageColumn,
		wide(col("Users", typeString, "Users in the "+what)),
		wide(col("Groups", typeString, "Groups in the "+what)),
		wide(col("ServiceAccounts", typeString, "ServiceAccounts in the "+what)),
	)
}

// defaultColumns mirror kube-apiserver's default table convertor, used for
// every resource without a dedicated printer (Role and ClusterRole among
// them): the name and the creation time as an RFC 3339 "date", which kubectl
// prints verbatim under CREATED AT.
var defaultColumns = cols(
	nameColumn,
	metav1.TableColumnDefinition{Name: "Created At", Type: typeDate, Description: metaDoc["creationTimestamp"]},
)

// Columns returns the table columns for a kind, kubectl-compatible. Kinds
// without a dedicated printer get kube-apiserver's default NAME / CREATED AT.
// The returned slice is a fresh copy the caller may modify.
func Columns(gk schema.GroupKind) []metav1.TableColumnDefinition {
	c, ok := columnsByKind[normalizeGK(gk)]
	if !ok {
		c = defaultColumns
	}
	return append([]metav1.TableColumnDefinition(nil), c...)
}

// normalizeGK folds the legacy "core" group spelling into the empty group so
// callers may use either.
func normalizeGK(gk schema.GroupKind) schema.GroupKind {
	if strings.EqualFold(gk.Group, "core") {
		gk.Group = ""
	}
	return gk
}
