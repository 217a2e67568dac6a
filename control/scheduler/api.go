package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/client"
)

// The resources the scheduler works with. Fixed mappings: the scheduler
// needs no discovery round trip to start.
var (
	podsMapping   = client.Mapping{Version: "v1", Resource: "pods", Singular: "pod", Kind: "Pod", Namespaced: true}
	nodesMapping  = client.Mapping{Version: "v1", Resource: "nodes", Singular: "node", Kind: "Node"}
	eventsMapping = client.Mapping{Version: "v1", Resource: "events", Singular: "event", Kind: "Event", Namespaced: true}
)

// api is what the scheduler does through the API server.
type api struct {
	c *client.Client
}

func (a api) pods() client.ResourceClient   { return a.c.Resource(podsMapping) }
func (a api) nodes() client.ResourceClient  { return a.c.Resource(nodesMapping) }
func (a api) events() client.ResourceClient { return a.c.Resource(eventsMapping) }

// bind POSTs pods/<name>/binding. The client has no call for a POST to a
// subresource, so the binding goes through Create on a mapping whose
// resource is the subresource's path (pod names are DNS subdomains: the
// path needs no escaping).
func (a api) bind(ctx context.Context, pod *corev1.Pod, node string) error {
	m := podsMapping
	m.Resource = "pods/" + pod.Name + "/binding"
	m.Kind = "Binding"
	b := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Binding",
		"metadata":   map[string]any{"name": pod.Name, "namespace": pod.Namespace, "uid": string(pod.UID)},
		"target":     map[string]any{"apiVersion": "v1", "kind": "Node", "name": node},
	}}
	_, err := a.c.Resource(m).Namespace(pod.Namespace).Create(ctx, b, metav1.CreateOptions{})
	return err
}

// setUnschedulable writes PodScheduled=False, reason Unschedulable, with
// msg, through pods/status as a strategic merge patch (conditions merge by
// type). The pod's uid and resourceVersion are preconditions: a pod that
// changed since the decision — bound meanwhile, say — is left alone (409).
func (a api) setUnschedulable(ctx context.Context, pod *corev1.Pod, msg string, now metav1.Time) error {
	patch := map[string]any{
		"metadata": map[string]any{"uid": string(pod.UID), "resourceVersion": pod.ResourceVersion},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type":               string(corev1.PodScheduled),
			"status":             string(corev1.ConditionFalse),
			"reason":             corev1.PodReasonUnschedulable,
			"message":            msg,
			"lastProbeTime":      nil,
			"lastTransitionTime": now,
		}}},
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = a.pods().Namespace(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, b, metav1.PatchOptions{}, "status")
	return err
}

func (a api) createEvent(ctx context.Context, ev *corev1.Event) error {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ev)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("v1")
	u.SetKind("Event")
	_, err = a.events().Namespace(ev.Namespace).Create(ctx, u, metav1.CreateOptions{})
	return err
}

// updateEvent patches a repeated event's count, message and last time.
func (a api) updateEvent(ctx context.Context, ns, name string, count int32, msg string, last metav1.Time) error {
	b, err := json.Marshal(map[string]any{"count": count, "message": msg, "lastTimestamp": last})
	if err != nil {
		return err
	}
	_, err = a.events().Namespace(ns).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{})
	return err
}

// fromUnstructured converts a watched or listed object to its Go type.
func fromUnstructured[T any, PT interface {
	*T
	runtime.Object
}](u *unstructured.Unstructured) (PT, error) {
	out := PT(new(T))
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return out, nil
}
