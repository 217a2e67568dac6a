package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// ResourceClient performs verbs on one resource, optionally in one
// namespace. It is a small value; derive it per call.
type ResourceClient struct {
	c         *Client
	m         Mapping
	namespace string
}

// Resource starts a request on a mapped resource.
func (c *Client) Resource(m Mapping) ResourceClient { return ResourceClient{c: c, m: m} }

// Namespace scopes a namespaced resource. "" (metav1.NamespaceAll) lists and
// watches across all namespaces. Ignored for cluster-scoped resources.
func (r ResourceClient) Namespace(ns string) ResourceClient {
	r.namespace = ns
	return r
}

// Mapping is the resource this client works on.
func (r ResourceClient) Mapping() Mapping { return r.m }

// path builds /api/v1[/namespaces/<ns>]/<resource>[/<name>[/<subresource>...]].
func (r ResourceClient) path(name string, subresources ...string) string {
	var b strings.Builder
	b.WriteString(groupVersionPath(r.m.Group, r.m.Version))
	if r.m.Namespaced && r.namespace != "" {
		b.WriteString("/namespaces/")
		b.WriteString(url.PathEscape(r.namespace))
	}
	b.WriteString("/")
	b.WriteString(r.m.Resource)
	if name != "" {
		b.WriteString("/")
		b.WriteString(url.PathEscape(name))
		for _, s := range subresources {
			b.WriteString("/")
			b.WriteString(s)
		}
	}
	return b.String()
}

func (r ResourceClient) needName(name string) error {
	if name == "" {
		return errors.New("resource name may not be empty")
	}
	if r.m.Namespaced && r.namespace == "" {
		return fmt.Errorf("%s %q: a namespace is required", r.m.GroupResource(), name)
	}
	return nil
}

// Get reads one object (or one of its subresources, e.g. "status", "scale").
func (r ResourceClient) Get(ctx context.Context, name string, opts metav1.GetOptions, subresources ...string) (*unstructured.Unstructured, error) {
	if err := r.needName(name); err != nil {
		return nil, err
	}
	q := url.Values{}
	setString(q, "resourceVersion", opts.ResourceVersion)
	body, err := r.c.do(ctx, request{method: http.MethodGet, path: r.path(name, subresources...), query: q})
	if err != nil {
		return nil, err
	}
	return decodeObject(body)
}

// List reads a collection. With Namespace("") a namespaced resource is listed
// across all namespaces. Follow Continue in the result's metadata for the
// next page when opts.Limit is set.
func (r ResourceClient) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	body, err := r.c.do(ctx, request{method: http.MethodGet, path: r.path(""), query: listQuery(opts)})
	if err != nil {
		return nil, err
	}
	return decodeList(body)
}

// Create posts a new object. The namespace is the client's, or the object's
// when the client has none.
func (r ResourceClient) Create(ctx context.Context, obj *unstructured.Unstructured, opts metav1.CreateOptions) (*unstructured.Unstructured, error) {
	if r.m.Namespaced && r.namespace == "" {
		r.namespace = obj.GetNamespace()
	}
	if r.m.Namespaced && r.namespace == "" {
		return nil, fmt.Errorf("creating %s %q: a namespace is required", r.m.GroupResource(), obj.GetName())
	}
	body, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	writeQuery(q, opts.DryRun, opts.FieldManager, opts.FieldValidation)
	return r.send(ctx, request{method: http.MethodPost, path: r.path(""), query: q, body: body})
}

// Update replaces an object (PUT); its metadata.resourceVersion, if set, is
// the optimistic-concurrency precondition (409 Conflict when stale).
func (r ResourceClient) Update(ctx context.Context, obj *unstructured.Unstructured, opts metav1.UpdateOptions, subresources ...string) (*unstructured.Unstructured, error) {
	if r.m.Namespaced && r.namespace == "" {
		r.namespace = obj.GetNamespace()
	}
	if err := r.needName(obj.GetName()); err != nil {
		return nil, err
	}
	body, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	writeQuery(q, opts.DryRun, opts.FieldManager, opts.FieldValidation)
	return r.send(ctx, request{method: http.MethodPut, path: r.path(obj.GetName(), subresources...), query: q, body: body})
}

// UpdateStatus replaces the status subresource.
func (r ResourceClient) UpdateStatus(ctx context.Context, obj *unstructured.Unstructured, opts metav1.UpdateOptions) (*unstructured.Unstructured, error) {
	return r.Update(ctx, obj, opts, "status")
}

// Patch applies a patch of type pt (types.JSONPatchType, MergePatchType,
// StrategicMergePatchType, ApplyPatchType) to an object or subresource.
func (r ResourceClient) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*unstructured.Unstructured, error) {
	if err := r.needName(name); err != nil {
		return nil, err
	}
	q := url.Values{}
	writeQuery(q, opts.DryRun, opts.FieldManager, opts.FieldValidation)
	if opts.Force != nil {
		q.Set("force", strconv.FormatBool(*opts.Force))
	}
	return r.send(ctx, request{method: http.MethodPatch, path: r.path(name, subresources...), query: q, body: data, contentType: string(pt)})
}

// Delete deletes an object. opts carries propagationPolicy,
// gracePeriodSeconds and preconditions; nil sends no body.
func (r ResourceClient) Delete(ctx context.Context, name string, opts *metav1.DeleteOptions) error {
	if err := r.needName(name); err != nil {
		return err
	}
	req := request{method: http.MethodDelete, path: r.path(name)}
	if opts != nil {
		b, err := json.Marshal(opts)
		if err != nil {
			return err
		}
		req.body = b
		q := url.Values{}
		for _, d := range opts.DryRun {
			q.Add("dryRun", d)
		}
		req.query = q
	}
	_, err := r.c.do(ctx, req)
	return err
}

// DeleteCollection deletes everything matching listOpts.
func (r ResourceClient) DeleteCollection(ctx context.Context, opts *metav1.DeleteOptions, listOpts metav1.ListOptions) error {
	req := request{method: http.MethodDelete, path: r.path(""), query: listQuery(listOpts)}
	if opts != nil {
		b, err := json.Marshal(opts)
		if err != nil {
			return err
		}
		req.body = b
	}
	_, err := r.c.do(ctx, req)
	return err
}

// GetTable reads one object rendered by the server as a metav1.Table (the
// columns kubectl get shows).
func (r ResourceClient) GetTable(ctx context.Context, name string, opts metav1.GetOptions) (*metav1.Table, error) {
	if err := r.needName(name); err != nil {
		return nil, err
	}
	q := url.Values{}
	setString(q, "resourceVersion", opts.ResourceVersion)
	body, err := r.c.do(ctx, request{method: http.MethodGet, path: r.path(name), query: q, accept: acceptTable})
	if err != nil {
		return nil, err
	}
	return decodeTable(body)
}

// ListTable reads a collection rendered as a metav1.Table.
func (r ResourceClient) ListTable(ctx context.Context, opts metav1.ListOptions) (*metav1.Table, error) {
	body, err := r.c.do(ctx, request{method: http.MethodGet, path: r.path(""), query: listQuery(opts), accept: acceptTable})
	if err != nil {
		return nil, err
	}
	return decodeTable(body)
}

func (r ResourceClient) send(ctx context.Context, req request) (*unstructured.Unstructured, error) {
	body, err := r.c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return decodeObject(body)
}

func setString(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func writeQuery(q url.Values, dryRun []string, fieldManager, fieldValidation string) {
	for _, d := range dryRun {
		q.Add("dryRun", d)
	}
	setString(q, "fieldManager", fieldManager)
	setString(q, "fieldValidation", fieldValidation)
}

func listQuery(opts metav1.ListOptions) url.Values {
	q := url.Values{}
	setString(q, "labelSelector", opts.LabelSelector)
	setString(q, "fieldSelector", opts.FieldSelector)
	setString(q, "resourceVersion", opts.ResourceVersion)
	setString(q, "resourceVersionMatch", string(opts.ResourceVersionMatch))
	setString(q, "continue", opts.Continue)
	if opts.Limit > 0 {
		q.Set("limit", strconv.FormatInt(opts.Limit, 10))
	}
	if opts.TimeoutSeconds != nil {
		q.Set("timeoutSeconds", strconv.FormatInt(*opts.TimeoutSeconds, 10))
	}
	if opts.Watch {
		q.Set("watch", "true")
	}
	if opts.AllowWatchBookmarks {
		q.Set("allowWatchBookmarks", "true")
	}
	if opts.SendInitialEvents != nil {
		q.Set("sendInitialEvents", strconv.FormatBool(*opts.SendInitialEvents))
	}
	return q
}

// decodeObject decodes JSON into an Unstructured with integers as int64, the
// form the unstructured helpers (NestedInt64, ...) expect.
func decodeObject(body []byte) (*unstructured.Unstructured, error) {
	obj := map[string]any{}
	if err := utiljson.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// decodeList decodes a <Kind>List. Items in a typed list omit apiVersion and
// kind; they are filled in from the list so each item stands alone.
func decodeList(body []byte) (*unstructured.UnstructuredList, error) {
	obj := map[string]any{}
	if err := utiljson.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("decoding list: %w", err)
	}
	list := &unstructured.UnstructuredList{}
	items, _ := obj["items"].([]any)
	delete(obj, "items")
	list.Object = obj
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	kind = strings.TrimSuffix(kind, "List")
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("decoding list: item %d is not an object", i)
		}
		u := unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" {
			u.SetAPIVersion(apiVersion)
		}
		if u.GetKind() == "" && kind != "" {
			u.SetKind(kind)
		}
		list.Items = append(list.Items, u)
	}
	return list, nil
}

func decodeTable(body []byte) (*metav1.Table, error) {
	var t metav1.Table
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("decoding table: %w", err)
	}
	if t.Kind != "Table" {
		return nil, fmt.Errorf("the server sent %q where a Table was asked for", t.Kind)
	}
	return &t, nil
}
