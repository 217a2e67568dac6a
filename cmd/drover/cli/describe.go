package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/printers"
)

type describeOptions struct {
	kube          kubeOptions
	allNamespaces bool
	selector      string
	showEvents    bool
	args          []string
	streams       Streams
	now           func() time.Time
}

func newDescribeCmd(s Streams) *cobra.Command {
	o := &describeOptions{streams: s, now: time.Now}
	cmd := &cobra.Command{
		Use:   "describe TYPE [NAME_PREFIX...] | TYPE/NAME",
		Short: "Show details of resources with their events, as kubectl describe does",
		Long: `Show details of a resource or group of resources, with related events.
A name that matches nothing exactly describes every object whose name starts
with it.

Examples:
  drover describe pod web-1
  drover describe deploy/web
  drover describe nodes`,
		Args: cobra.MinimumNArgs(1),
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.args = args
			return describeRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "describe across all namespaces")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector")
	f.BoolVar(&o.showEvents, "show-events", true, "show the events related to each object")
	return cmd
}

func describeRun(ctx context.Context, o *describeOptions) error {
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	reqs, err := parseResourceArgs(k.mapper, o.args)
	if err != nil {
		return err
	}
	var errs itemErrors
	var objs []*unstructured.Unstructured
	for _, r := range reqs {
		ns := k.namespace
		if o.allNamespaces {
			ns = metav1.NamespaceAll
		}
		rc := k.c.Resource(r.mapping).Namespace(ns)
		if len(r.names) == 0 {
			l, err := listAll(ctx, rc, metav1.ListOptions{LabelSelector: o.selector, Limit: listChunk})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for i := range l.Items {
				objs = append(objs, &l.Items[i])
			}
			continue
		}
		for _, name := range r.names {
			found, err := describeLookup(ctx, rc, name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			objs = append(objs, found...)
		}
	}
	if len(objs) == 0 && len(errs) == 0 {
		noResources(o.streams, k.namespace, o.allNamespaces, reqs)
	}
	for i, u := range objs {
		var buf bytes.Buffer
		if err := describeOne(ctx, o, k, u, &buf); err != nil {
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			fmt.Fprint(o.streams.Out, "\n\n")
		}
		if _, err := o.streams.Out.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return errs.orNil()
}

// describeLookup gets name, or else every object whose name starts with it.
func describeLookup(ctx context.Context, rc client.ResourceClient, name string) ([]*unstructured.Unstructured, error) {
	obj, err := rc.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return []*unstructured.Unstructured{obj}, nil
	}
	if !client.IsNotFound(err) {
		return nil, err
	}
	l, lerr := listAll(ctx, rc, metav1.ListOptions{Limit: listChunk})
	if lerr != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for i := range l.Items {
		if strings.HasPrefix(l.Items[i].GetName(), name) {
			out = append(out, &l.Items[i])
		}
	}
	if len(out) == 0 {
		return nil, err
	}
	return out, nil
}

func describeOne(ctx context.Context, o *describeOptions, k *kube, u *unstructured.Unstructured, buf *bytes.Buffer) error {
	typed, err := client.ToTyped(u)
	if err != nil {
		return err
	}
	var events []corev1.Event
	if o.showEvents {
		events = relatedEvents(ctx, k, u)
	}
	if svc, ok := typed.(*corev1.Service); ok {
		return printers.DescribeService(buf, svc, serviceEndpoints(ctx, k, svc), events, o.now())
	}
	return printers.Describe(buf, typed, events, o.now())
}

// serviceEndpoints reads the Endpoints of a Service (same name), or nil.
func serviceEndpoints(ctx context.Context, k *kube, svc *corev1.Service) *corev1.Endpoints {
	m, err := k.mapper.KindFor("v1", "Endpoints")
	if err != nil {
		return nil
	}
	u, err := k.c.Resource(m).Namespace(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var eps corev1.Endpoints
	if runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &eps) != nil {
		return nil
	}
	return &eps
}

// relatedEvents lists the events about u. Failing to read them (no RBAC
// grant, say) leaves them out rather than failing describe, as kubectl does.
func relatedEvents(ctx context.Context, k *kube, u *unstructured.Unstructured) []corev1.Event {
	m, err := k.mapper.KindFor("v1", "Event")
	if err != nil {
		return nil
	}
	sel := fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.name", u.GetName()),
		fields.OneTermEqualSelector("involvedObject.namespace", u.GetNamespace()),
		fields.OneTermEqualSelector("involvedObject.uid", string(u.GetUID())),
	).String()
	l, err := listAll(ctx, k.c.Resource(m).Namespace(u.GetNamespace()), metav1.ListOptions{FieldSelector: sel, Limit: listChunk})
	if err != nil {
		return nil
	}
	events := make([]corev1.Event, 0, len(l.Items))
	for i := range l.Items {
		var ev corev1.Event
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(l.Items[i].Object, &ev); err == nil {
			events = append(events, ev)
		}
	}
	return events
}
