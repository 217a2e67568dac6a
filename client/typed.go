package client

import (
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Scheme knows the Go types of the built-in kinds (k8s.io/api), for callers
// that need typed objects: describe, strategic merge patches. Built once,
// read-only afterwards.
var Scheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, rbacv1.AddToScheme,
		coordinationv1.AddToScheme, autoscalingv1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, storagev1.AddToScheme, discoveryv1.AddToScheme,
		eventsv1.AddToScheme, schedulingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // static registrations; cannot fail
		}
	}
	return s
})

// NewTyped returns an empty Go object for a built-in kind; ok is false for
// kinds not in Scheme (custom resources).
func NewTyped(gvk schema.GroupVersionKind) (runtime.Object, bool) {
	obj, err := Scheme().New(gvk)
	return obj, err == nil
}

// ToTyped converts an unstructured object to its k8s.io/api type, and leaves
// kinds that are not built in as they are.
func ToTyped(u *unstructured.Unstructured) (runtime.Object, error) {
	obj, ok := NewTyped(u.GroupVersionKind())
	if !ok {
		return u, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	obj.GetObjectKind().SetGroupVersionKind(u.GroupVersionKind())
	return obj, nil
}
