package client

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Built-in resources, for components that know what they talk to and need
// no discovery (agents, controllers).
var (
	Pods       = Mapping{Version: "v1", Resource: "pods", Kind: "Pod", Namespaced: true, Subresources: []string{"status", "binding", "log"}}
	Nodes      = Mapping{Version: "v1", Resource: "nodes", Kind: "Node", Subresources: []string{"status"}}
	Events     = Mapping{Version: "v1", Resource: "events", Kind: "Event", Namespaced: true}
	ConfigMaps = Mapping{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
	Secrets    = Mapping{Version: "v1", Resource: "secrets", Kind: "Secret", Namespaced: true}
	Services   = Mapping{Version: "v1", Resource: "services", Kind: "Service", Namespaced: true}
	Leases     = Mapping{Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Kind: "Lease", Namespaced: true}
)

// toUnstructured converts a typed object for the wire, with its kind set
// from m.
func toUnstructured(m Mapping, obj runtime.Object) (*unstructured.Unstructured, error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetGroupVersionKind(m.GVK())
	return u, nil
}

func fromUnstructured[T any, PT interface {
	*T
	runtime.Object
}](u *unstructured.Unstructured) (PT, error) {
	out := PT(new(T))
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return out, nil
}

// GetTyped reads one object into its k8s.io/api type.
func GetTyped[T any, PT interface {
	*T
	runtime.Object
}](ctx context.Context, r ResourceClient, name string, subresources ...string) (PT, error) {
	u, err := r.Get(ctx, name, metav1.GetOptions{}, subresources...)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[T, PT](u)
}

// ListTyped lists objects into their k8s.io/api type, with the list's
// resourceVersion (to watch from).
func ListTyped[T any, PT interface {
	*T
	runtime.Object
}](ctx context.Context, r ResourceClient, opts metav1.ListOptions) ([]PT, string, error) {
	l, err := r.List(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	out := make([]PT, 0, len(l.Items))
	for i := range l.Items {
		obj, err := fromUnstructured[T, PT](&l.Items[i])
		if err != nil {
			return nil, "", err
		}
		out = append(out, obj)
	}
	return out, l.GetResourceVersion(), nil
}

// CreateTyped creates obj and returns what the server stored.
func CreateTyped[T any, PT interface {
	*T
	runtime.Object
}](ctx context.Context, r ResourceClient, obj PT) (PT, error) {
	u, err := toUnstructured(r.m, obj)
	if err != nil {
		return nil, err
	}
	out, err := r.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured[T, PT](out)
}

// UpdateTyped replaces obj (or its subresource, e.g. "status").
func UpdateTyped[T any, PT interface {
	*T
	runtime.Object
}](ctx context.Context, r ResourceClient, obj PT, subresources ...string) (PT, error) {
	u, err := toUnstructured(r.m, obj)
	if err != nil {
		return nil, err
	}
	out, err := r.Update(ctx, u, metav1.UpdateOptions{}, subresources...)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[T, PT](out)
}

// PatchTyped patches an object (or subresource) and returns the result.
func PatchTyped[T any, PT interface {
	*T
	runtime.Object
}](ctx context.Context, r ResourceClient, name string, pt types.PatchType, data []byte, subresources ...string) (PT, error) {
	out, err := r.Patch(ctx, name, pt, data, metav1.PatchOptions{}, subresources...)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[T, PT](out)
}

// Typed converts a watch event's object to its k8s.io/api type.
func Typed[T any, PT interface {
	*T
	runtime.Object
}](u *unstructured.Unstructured) (PT, error) {
	return fromUnstructured[T, PT](u)
}
