package admission

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Default fills Kubernetes' defaults into obj in place, as kube-apiserver's
// defaulting does for that type. Objects of other types are left alone.
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		defaultPod(o)
	case *corev1.Service:
		defaultService(o)
	case *corev1.Namespace:
		defaultNamespace(o)
	case *corev1.Node:
		defaultNode(o)
	case *corev1.Endpoints:
		defaultEndpoints(o)
	case *corev1.Secret:
		defaultSecret(o)
	case *appsv1.Deployment:
		defaultDeployment(o)
	case *appsv1.ReplicaSet:
		defaultReplicaSet(o)
	case *appsv1.DaemonSet:
		defaultDaemonSet(o)
	case *batchv1.Job:
		defaultJob(o)
	case *rbacv1.RoleBinding:
		defaultSubjects(o.Subjects)
	case *rbacv1.ClusterRoleBinding:
		o.Namespace = ""
		defaultSubjects(o.Subjects)
	case *rbacv1.ClusterRole:
		o.Namespace = ""
	}
	// ConfigMap, Event, ServiceAccount, Lease, Role and Scale have no defaults.
}

// ValidateCreate validates a new, already defaulted object. Objects of other
// types are accepted as they are.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return validatePod(o)
	case *corev1.Service:
		return validateService(o)
	case *corev1.Namespace:
		return validateNamespace(o)
	case *corev1.Node:
		return validateNode(o)
	case *corev1.Endpoints:
		return validateEndpoints(o)
	case *corev1.ConfigMap:
		return validateConfigMap(o)
	case *corev1.Secret:
		return validateSecret(o)
	case *corev1.Event:
		return validateEvent(o)
	case *corev1.ServiceAccount:
		return validateServiceAccount(o)
	case *appsv1.Deployment:
		return validateDeployment(o)
	case *appsv1.ReplicaSet:
		return validateReplicaSet(o)
	case *appsv1.DaemonSet:
		return validateDaemonSet(o)
	case *batchv1.Job:
		return validateJob(o)
	case *coordinationv1.Lease:
		return validateLease(o)
	case *rbacv1.Role:
		return validateRole(o)
	case *rbacv1.ClusterRole:
		return validateClusterRole(o)
	case *rbacv1.RoleBinding:
		return validateRoleBinding(o)
	case *rbacv1.ClusterRoleBinding:
		return validateClusterRoleBinding(o)
	case *autoscalingv1.Scale:
		return validateScale(o)
	}
	return nil
}

// ValidateUpdate validates obj replacing old, both defaulted: everything
// ValidateCreate checks on obj, except the name rules that immutability makes
// redundant, plus the fields that may not change. If old is not of obj's type
// the update is refused at the root.
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		if p, ok := old.(*corev1.Pod); ok {
			return validatePodUpdate(o, p)
		}
	case *corev1.Service:
		if p, ok := old.(*corev1.Service); ok {
			return validateServiceUpdate(o, p)
		}
	case *corev1.Namespace:
		if p, ok := old.(*corev1.Namespace); ok {
			return validateNamespaceUpdate(o, p)
		}
	case *corev1.Node:
		if p, ok := old.(*corev1.Node); ok {
			return validateNodeUpdate(o, p)
		}
	case *corev1.Endpoints:
		if p, ok := old.(*corev1.Endpoints); ok {
			return append(validateMetaUpdate(&o.ObjectMeta, &p.ObjectMeta), validateEndpointsBody(o)...)
		}
	case *corev1.ConfigMap:
		if p, ok := old.(*corev1.ConfigMap); ok {
			return validateConfigMapUpdate(o, p)
		}
	case *corev1.Secret:
		if p, ok := old.(*corev1.Secret); ok {
			return validateSecretUpdate(o, p)
		}
	case *corev1.Event:
		if p, ok := old.(*corev1.Event); ok {
			return append(validateMetaUpdate(&o.ObjectMeta, &p.ObjectMeta), validateEventBody(o)...)
		}
	case *corev1.ServiceAccount:
		if p, ok := old.(*corev1.ServiceAccount); ok {
			return append(validateMetaUpdate(&o.ObjectMeta, &p.ObjectMeta), validateServiceAccountBody(o)...)
		}
	case *appsv1.Deployment:
		if p, ok := old.(*appsv1.Deployment); ok {
			return validateDeploymentUpdate(o, p)
		}
	case *appsv1.ReplicaSet:
		if p, ok := old.(*appsv1.ReplicaSet); ok {
			return validateReplicaSetUpdate(o, p)
		}
	case *appsv1.DaemonSet:
		if p, ok := old.(*appsv1.DaemonSet); ok {
			return validateDaemonSetUpdate(o, p)
		}
	case *batchv1.Job:
		if p, ok := old.(*batchv1.Job); ok {
			return validateJobUpdate(o, p)
		}
	case *coordinationv1.Lease:
		if p, ok := old.(*coordinationv1.Lease); ok {
			return append(validateMetaUpdate(&o.ObjectMeta, &p.ObjectMeta), validateLeaseBody(o)...)
		}
	case *rbacv1.Role:
		if p, ok := old.(*rbacv1.Role); ok {
			return append(validateMetaUpdate(&o.ObjectMeta, &p.ObjectMeta), validateRules(o.Rules, true, field.NewPath("rules"))...)
		}
	case *rbacv1.ClusterRole:
		if p, ok := old.(*rbacv1.ClusterRole); ok {
			return append(validateMetaUpdate(&o.ObjectMeta, &p.ObjectMeta), validateClusterRoleBody(o)...)
		}
	case *rbacv1.RoleBinding:
		if p, ok := old.(*rbacv1.RoleBinding); ok {
			return validateRoleBindingUpdate(o, p)
		}
	case *rbacv1.ClusterRoleBinding:
		if p, ok := old.(*rbacv1.ClusterRoleBinding); ok {
			return validateClusterRoleBindingUpdate(o, p)
		}
	case *autoscalingv1.Scale:
		if p, ok := old.(*autoscalingv1.Scale); ok {
			return append(validateMetaUpdate(&o.ObjectMeta, &p.ObjectMeta), validateScaleBody(o)...)
		}
	default:
		return nil
	}
	return field.ErrorList{field.TypeInvalid(field.NewPath("kind"), fmt.Sprintf("%T", old),
		fmt.Sprintf("the stored object is not a %T", obj))}
}
