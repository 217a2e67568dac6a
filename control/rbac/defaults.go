package rbac

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Label and annotation Kubernetes puts on its bootstrap policy; tools (and the
// reconciler Kubernetes runs at startup) use them to recognise default objects
// that may be updated in place.
const (
	BootstrappingLabel   = "kubernetes.io/bootstrapping"
	BootstrappingValue   = "rbac-defaults"
	AutoUpdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
)

var (
	read      = []string{"get", "list", "watch"}
	write     = []string{"create", "delete", "deletecollection", "patch", "update"}
	readWrite = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)

func rule(verbs []string, group string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: slices.Clone(verbs), APIGroups: []string{group}, Resources: resources}
}

func urlRule(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: slices.Clone(verbs), NonResourceURLs: urls}
}

func bootstrapMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        name,
		Labels:      map[string]string{BootstrappingLabel: BootstrappingValue},
		Annotations: map[string]string{AutoUpdateAnnotation: "true"},
	}
}

func clusterRole(name string, rules ...[]rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: bootstrapMeta(name),
		Rules:      slices.Concat(rules...),
	}
}

// viewRules: read access to the usual namespaced workload objects. Secrets are
// left out on purpose (reading them would let a viewer escalate through
// service-account tokens), as are roles and rolebindings.
func viewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(read, "", "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
			"pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/status"),
		rule(read, "", "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
			"replicationcontrollers/status", "resourcequotas", "resourcequotas/status"),
		rule(read, "", "namespaces"),
		rule(read, "discovery.k8s.io", "endpointslices"),
		rule(read, "apps", "controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
			"deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
			"statefulsets", "statefulsets/scale", "statefulsets/status"),
		rule(read, "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
		rule(read, "batch", "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
		rule(read, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
		rule(read, "networking.k8s.io", "ingresses", "ingresses/status", "networkpolicies"),
	}
}

// editRules: what edit adds to view — writes to workloads, reading and writing
// secrets, exec/attach/port-forward into pods. Endpoints stay read-only, as in
// Kubernetes since CVE-2021-25740.
func editRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(read, "", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"),
		rule([]string{"impersonate"}, "", "serviceaccounts"),
		rule(write, "", "pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
		rule([]string{"create"}, "", "pods/eviction"),
		rule(write, "", "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
			"replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"),
		rule([]string{"create"}, "", "serviceaccounts/token"),
		rule(write, "apps", "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
			"replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"),
		rule(write, "autoscaling", "horizontalpodautoscalers"),
		rule(write, "batch", "cronjobs", "jobs"),
		rule(write, "policy", "poddisruptionbudgets"),
		rule(write, "networking.k8s.io", "ingresses", "networkpolicies"),
	}
}

// adminRules: what admin adds to edit — managing access within the namespace.
func adminRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule([]string{"create"}, "authorization.k8s.io", "localsubjectaccessreviews"),
		rule(readWrite, "rbac.authorization.k8s.io", "rolebindings", "roles"),
	}
}

// nodeRules: what a node agent needs to register itself, report status, run
// its pods (and their mirror pods) and keep its lease. Scheduling (pods/binding)
// is deliberately absent. Without Kubernetes' Node authorizer these grants are
// not limited to the node's own objects, and leases cannot be limited to
// kube-node-lease by a ClusterRole.
func nodeRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule([]string{"create"}, "authentication.k8s.io", "tokenreviews"),
		rule([]string{"create"}, "authorization.k8s.io", "localsubjectaccessreviews", "subjectaccessreviews"),
		rule(read, "", "configmaps", "endpoints", "nodes", "pods", "secrets", "services"),
		rule([]string{"create", "update", "patch"}, "", "nodes", "nodes/status"),
		rule([]string{"create", "update", "patch"}, "", "events"),
		rule([]string{"create", "delete"}, "", "pods"), // mirror pods of static pods
		rule([]string{"update", "patch"}, "", "pods/status"),
		rule([]string{"create"}, "", "pods/eviction"),
		rule([]string{"get"}, "", "persistentvolumeclaims", "persistentvolumes"),
		rule([]string{"update", "patch"}, "", "persistentvolumeclaims/status"),
		rule([]string{"create"}, "", "serviceaccounts/token"),
		rule([]string{"create", "get", "update", "patch", "delete"}, "coordination.k8s.io", "leases"),
		rule([]string{"create", "get", "list", "watch"}, "certificates.k8s.io", "certificatesigningrequests"),
		rule(read, "node.k8s.io", "runtimeclasses"),
		rule(read, "storage.k8s.io", "csidrivers", "csinodes"),
		rule([]string{"get"}, "storage.k8s.io", "volumeattachments"),
	}
}

// DefaultClusterRoles returns the ClusterRoles the server creates at bootstrap.
// admin, edit and view carry explicit rules (each a superset of the next),
// because ClusterRole aggregation is not implemented.
func DefaultClusterRoles() []*rbacv1.ClusterRole {
	return []*rbacv1.ClusterRole{
		clusterRole("cluster-admin", []rbacv1.PolicyRule{
			rule([]string{"*"}, "*", "*"),
			urlRule([]string{"*"}, "*"),
		}),
		clusterRole("admin", viewRules(), editRules(), adminRules()),
		clusterRole("edit", viewRules(), editRules()),
		clusterRole("view", viewRules()),
		clusterRole("system:node", nodeRules()),
		clusterRole("system:discovery", []rbacv1.PolicyRule{
			urlRule([]string{"get"}, "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
				"/openapi", "/openapi/*", "/readyz", "/version", "/version/"),
		}),
		// Lets any user ask what it may do itself.
		clusterRole("system:basic-user", []rbacv1.PolicyRule{
			rule([]string{"create"}, "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
			rule([]string{"create"}, "authentication.k8s.io", "selfsubjectreviews"),
		}),
		// Health and version are readable without credentials so load
		// balancers and clients can probe the server.
		clusterRole("system:public-info-viewer", []rbacv1.PolicyRule{
			urlRule([]string{"get"}, "/healthz", "/livez", "/readyz", "/version", "/version/"),
		}),
	}
}

func clusterRoleBinding(role string, groups ...string) *rbacv1.ClusterRoleBinding {
	b := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
		ObjectMeta: bootstrapMeta(role),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
	}
	for _, g := range groups {
		b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g})
	}
	return b
}

// DefaultClusterRoleBindings returns the ClusterRoleBindings the server creates
// at bootstrap; each is named after the ClusterRole it binds.
func DefaultClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	return []*rbacv1.ClusterRoleBinding{
		clusterRoleBinding("cluster-admin", "system:masters"),
		clusterRoleBinding("system:node", "system:nodes"),
		clusterRoleBinding("system:discovery", "system:authenticated"),
		clusterRoleBinding("system:basic-user", "system:authenticated"),
		clusterRoleBinding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
	}
}
