// Package registry knows every API resource drover serves: its group,
// version, kind and scope, how it is stored (JSON under
// /registry/<resource>/[<namespace>/]<name>), which fields a field selector
// may name, and what the store does on create, update and delete
// (metadata, generation, status handling, Service address allocation).
// The API server in control/apiserver is its only user.
package registry

import (
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resource describes one served resource.
type Resource struct {
	Group, Version    string
	Name              string // plural, e.g. "pods"
	Singular          string
	Kind, ListKind    string
	Namespaced        bool
	ShortNames        []string
	Categories        []string
	Subresources      []string // "status", "scale", "binding", "log"
	HasGeneration     bool     // metadata.generation counts spec changes
	ResetStatusCreate bool     // status is the system's: cleared on create, kept on update

	New     func() runtime.Object
	NewList func() runtime.Object
}

// GroupVersion is the resource's API group and version.
func (r *Resource) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// GVK is the resource's group, version and kind.
func (r *Resource) GVK() schema.GroupVersionKind { return r.GroupVersion().WithKind(r.Kind) }

// GroupResource names the resource in errors ("pods", "deployments.apps").
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Name}
}

// HasSubresource reports whether sub is served.
func (r *Resource) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// Verbs is what discovery advertises for the main resource.
func (r *Resource) Verbs() []string {
	return []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}

// Key is the storage key of one object.
func (r *Resource) Key(namespace, name string) string {
	if r.Namespaced {
		return "/registry/" + r.Name + "/" + namespace + "/" + name
	}
	return "/registry/" + r.Name + "/" + name
}

// Prefix is the storage prefix of a collection: one namespace, or every
// namespace when namespace is empty.
func (r *Resource) Prefix(namespace string) string {
	if r.Namespaced && namespace != "" {
		return "/registry/" + r.Name + "/" + namespace + "/"
	}
	return "/registry/" + r.Name + "/"
}

func newRes[T any, PT interface {
	*T
	runtime.Object
}, L any, PL interface {
	*L
	runtime.Object
}](r Resource) *Resource {
	r.New = func() runtime.Object { return PT(new(T)) }
	r.NewList = func() runtime.Object { return PL(new(L)) }
	if r.ListKind == "" {
		r.ListKind = r.Kind + "List"
	}
	return &r
}

// Resources lists everything drover serves, in discovery order.
var Resources = []*Resource{
	newRes[corev1.Namespace, *corev1.Namespace, corev1.NamespaceList, *corev1.NamespaceList](Resource{Version: "v1", Name: "namespaces", Singular: "namespace", Kind: "Namespace",
		ShortNames: []string{"ns"}, Subresources: []string{"status", "finalize"}, ResetStatusCreate: true}),
	newRes[corev1.Pod, *corev1.Pod, corev1.PodList, *corev1.PodList](Resource{Version: "v1", Name: "pods", Singular: "pod", Kind: "Pod", Namespaced: true,
		ShortNames: []string{"po"}, Categories: []string{"all"}, Subresources: []string{"status", "binding", "log", "exec"}, ResetStatusCreate: true}),
	newRes[corev1.Node, *corev1.Node, corev1.NodeList, *corev1.NodeList](Resource{Version: "v1", Name: "nodes", Singular: "node", Kind: "Node",
		ShortNames: []string{"no"}, Subresources: []string{"status"}}),
	newRes[corev1.Service, *corev1.Service, corev1.ServiceList, *corev1.ServiceList](Resource{Version: "v1", Name: "services", Singular: "service", Kind: "Service", Namespaced: true,
		ShortNames: []string{"svc"}, Categories: []string{"all"}, Subresources: []string{"status"}, ResetStatusCreate: true}),
	newRes[corev1.Endpoints, *corev1.Endpoints, corev1.EndpointsList, *corev1.EndpointsList](Resource{Version: "v1", Name: "endpoints", Singular: "endpoints", Kind: "Endpoints", Namespaced: true,
		ShortNames: []string{"ep"}}),
	newRes[corev1.ConfigMap, *corev1.ConfigMap, corev1.ConfigMapList, *corev1.ConfigMapList](Resource{Version: "v1", Name: "configmaps", Singular: "configmap", Kind: "ConfigMap", Namespaced: true,
		ShortNames: []string{"cm"}}),
	newRes[corev1.Secret, *corev1.Secret, corev1.SecretList, *corev1.SecretList](Resource{Version: "v1", Name: "secrets", Singular: "secret", Kind: "Secret", Namespaced: true}),
	newRes[corev1.Event, *corev1.Event, corev1.EventList, *corev1.EventList](Resource{Version: "v1", Name: "events", Singular: "event", Kind: "Event", Namespaced: true,
		ShortNames: []string{"ev"}}),
	newRes[corev1.ServiceAccount, *corev1.ServiceAccount, corev1.ServiceAccountList, *corev1.ServiceAccountList](Resource{Version: "v1", Name: "serviceaccounts", Singular: "serviceaccount", Kind: "ServiceAccount", Namespaced: true,
		ShortNames: []string{"sa"}, Subresources: []string{"token"}}),
	newRes[appsv1.Deployment, *appsv1.Deployment, appsv1.DeploymentList, *appsv1.DeploymentList](Resource{Group: "apps", Version: "v1", Name: "deployments", Singular: "deployment", Kind: "Deployment", Namespaced: true,
		ShortNames: []string{"deploy"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"}, HasGeneration: true, ResetStatusCreate: true}),
	newRes[appsv1.ReplicaSet, *appsv1.ReplicaSet, appsv1.ReplicaSetList, *appsv1.ReplicaSetList](Resource{Group: "apps", Version: "v1", Name: "replicasets", Singular: "replicaset", Kind: "ReplicaSet", Namespaced: true,
		ShortNames: []string{"rs"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"}, HasGeneration: true, ResetStatusCreate: true}),
	newRes[appsv1.DaemonSet, *appsv1.DaemonSet, appsv1.DaemonSetList, *appsv1.DaemonSetList](Resource{Group: "apps", Version: "v1", Name: "daemonsets", Singular: "daemonset", Kind: "DaemonSet", Namespaced: true,
		ShortNames: []string{"ds"}, Categories: []string{"all"}, Subresources: []string{"status"}, HasGeneration: true, ResetStatusCreate: true}),
	newRes[batchv1.Job, *batchv1.Job, batchv1.JobList, *batchv1.JobList](Resource{Group: "batch", Version: "v1", Name: "jobs", Singular: "job", Kind: "Job", Namespaced: true,
		Categories: []string{"all"}, Subresources: []string{"status"}, HasGeneration: true, ResetStatusCreate: true}),
	newRes[coordinationv1.Lease, *coordinationv1.Lease, coordinationv1.LeaseList, *coordinationv1.LeaseList](Resource{Group: "coordination.k8s.io", Version: "v1", Name: "leases", Singular: "lease", Kind: "Lease", Namespaced: true}),
	newRes[rbacv1.Role, *rbacv1.Role, rbacv1.RoleList, *rbacv1.RoleList](Resource{Group: "rbac.authorization.k8s.io", Version: "v1", Name: "roles", Singular: "role", Kind: "Role", Namespaced: true}),
	newRes[rbacv1.RoleBinding, *rbacv1.RoleBinding, rbacv1.RoleBindingList, *rbacv1.RoleBindingList](Resource{Group: "rbac.authorization.k8s.io", Version: "v1", Name: "rolebindings", Singular: "rolebinding", Kind: "RoleBinding", Namespaced: true}),
	newRes[rbacv1.ClusterRole, *rbacv1.ClusterRole, rbacv1.ClusterRoleList, *rbacv1.ClusterRoleList](Resource{Group: "rbac.authorization.k8s.io", Version: "v1", Name: "clusterroles", Singular: "clusterrole", Kind: "ClusterRole"}),
	newRes[rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBinding, rbacv1.ClusterRoleBindingList, *rbacv1.ClusterRoleBindingList](Resource{Group: "rbac.authorization.k8s.io", Version: "v1", Name: "clusterrolebindings", Singular: "clusterrolebinding", Kind: "ClusterRoleBinding"}),
}

// Lookup finds a resource by group, version and plural name.
func Lookup(group, version, name string) *Resource {
	for _, r := range Resources {
		if r.Group == group && r.Version == version && r.Name == name {
			return r
		}
	}
	return nil
}

// ByKind finds a resource by its group and kind.
func ByKind(gk schema.GroupKind) *Resource {
	for _, r := range Resources {
		if r.Group == gk.Group && r.Kind == gk.Kind {
			return r
		}
	}
	return nil
}

// GroupVersions lists the served group versions, core ("", "v1") first.
func GroupVersions() []schema.GroupVersion {
	var out []schema.GroupVersion
	seen := map[schema.GroupVersion]bool{}
	for _, r := range Resources {
		if gv := r.GroupVersion(); !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	return out
}

// Scheme knows every served type plus meta/v1 and autoscaling/v1 Scale.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		coordinationv1.AddToScheme, rbacv1.AddToScheme, autoscalingv1.AddToScheme, authenticationv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return s
}()
