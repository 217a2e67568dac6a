package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/droverhq/drover/control/admission"
	"github.com/droverhq/drover/control/registry"
)

func fieldErr(path string, value any, msg string) field.ErrorList {
	return field.ErrorList{field.Invalid(field.NewPath(path), value, msg)}
}

func notFoundPath() error {
	e := apierrors.NewNotFound(schema.GroupResource{}, "")
	e.ErrStatus.Message = "the server could not find the requested resource"
	e.ErrStatus.Details = nil
	return e
}

func methodNotAllowed(r *http.Request, ri *requestInfo) error {
	return apierrors.NewMethodNotSupported(schema.GroupResource{Group: ri.group, Resource: ri.resourceName}, strings.ToLower(r.Method))
}

// serveResource dispatches a request on an API resource.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	res := ri.resource
	switch {
	case res == nil:
		writeStatus(w, notFoundPath())
		return
	case !res.Namespaced && ri.namespace != "" && res.Name != "namespaces":
		writeStatus(w, notFoundPath())
		return
	case res.Namespaced && ri.namespace == "" && (ri.name != "" || ri.verb == "create"):
		writeStatus(w, notFoundPath())
		return
	case ri.subresource != "" && !res.HasSubresource(ri.subresource):
		writeStatus(w, notFoundPath())
		return
	}
	out := negotiate(r)
	if out.err != nil {
		writeStatus(w, out.err)
		return
	}
	switch ri.subresource {
	case "":
		switch ri.verb {
		case "get":
			s.get(w, r, ri, out)
		case "list":
			s.list(w, r, ri, out)
		case "watch":
			s.watch(w, r, ri, out)
		case "create":
			s.create(w, r, ri, out)
		case "update":
			s.update(w, r, ri, out, "")
		case "patch":
			s.patch(w, r, ri, out, "")
		case "delete":
			s.delete(w, r, ri, out)
		case "deletecollection":
			s.deleteCollection(w, r, ri)
		default:
			writeStatus(w, methodNotAllowed(r, ri))
		}
	case "status", "finalize":
		switch {
		case ri.verb == "get" && ri.subresource == "status":
			s.get(w, r, ri, out)
		case ri.verb == "update":
			s.update(w, r, ri, out, ri.subresource)
		case ri.verb == "patch" && ri.subresource == "status":
			s.patch(w, r, ri, out, ri.subresource)
		default:
			writeStatus(w, methodNotAllowed(r, ri))
		}
	case "scale":
		s.scale(w, r, ri)
	case "binding":
		if ri.verb != "create" {
			writeStatus(w, methodNotAllowed(r, ri))
			return
		}
		s.bind(w, r, ri)
	case "log":
		if ri.verb != "get" {
			writeStatus(w, methodNotAllowed(r, ri))
			return
		}
		s.podLog(w, r, ri)
	case "exec":
		if ri.verb != "get" && ri.verb != "create" {
			writeStatus(w, methodNotAllowed(r, ri))
			return
		}
		s.podExec(w, r, ri)
	case "token":
		if ri.verb != "create" {
			writeStatus(w, methodNotAllowed(r, ri))
			return
		}
		s.serviceAccountToken(w, r, ri)
	default:
		writeStatus(w, notFoundPath())
	}
}

// output is what the client accepts.
type output struct {
	table         bool
	includeObject string // None, Metadata (default), Object
	yaml          bool
	err           error
}

// negotiate reads Accept: JSON, YAML, or a meta.k8s.io Table (v1 or
// v1beta1 asked; v1 answered, as kube-apiserver prefers).
func negotiate(r *http.Request) output {
	var o output
	accept := r.Header.Get("Accept")
	if accept == "" {
		return o
	}
	ok := false
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "*/*", "application/*":
			if params["as"] == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1") {
				o.table = true
				ok = true
			} else if params["as"] == "" {
				ok = true
			}
		case "application/yaml":
			if params["as"] == "" {
				o.yaml, ok = true, true
			}
		}
		if ok {
			break
		}
	}
	if !ok {
		st := apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", "", 0, false)
		st.ErrStatus.Reason = metav1.StatusReasonNotAcceptable
		st.ErrStatus.Message = fmt.Sprintf("only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io (asked: %s)", accept)
		o.err = st
	}
	o.includeObject = r.URL.Query().Get("includeObject")
	if o.includeObject == "" {
		o.includeObject = "Metadata"
	}
	return o
}

func (s *Server) writeObject(w http.ResponseWriter, code int, res *registry.Resource, obj runtime.Object, out output) {
	if out.table {
		t, err := s.table(res, []runtime.Object{obj}, out.includeObject)
		if err != nil {
			writeStatus(w, err)
			return
		}
		writeJSON(w, code, t)
		return
	}
	if out.yaml {
		b, err := yaml.Marshal(obj)
		if err != nil {
			writeStatus(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.WriteHeader(code)
		w.Write(b)
		return
	}
	writeJSON(w, code, obj)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, ri *requestInfo, out output) {
	obj, err := s.storage.Get(r.Context(), ri.resource, ri.namespace, ri.name, r.URL.Query().Get("resourceVersion") == "0")
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.writeObject(w, http.StatusOK, ri.resource, obj, out)
}

// selectors parses labelSelector and fieldSelector.
func selectors(r *http.Request, res *registry.Resource) (labels.Selector, fields.Selector, error) {
	q := r.URL.Query()
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
	}
	if err := res.CheckFieldSelector(fs); err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	return ls, fs, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, ri *requestInfo, out output) {
	ls, fs, err := selectors(r, ri.resource)
	if err != nil {
		writeStatus(w, err)
		return
	}
	q := r.URL.Query()
	opts := registry.ListOptions{Labels: ls, Fields: fs, Continue: q.Get("continue"), Serializable: q.Get("resourceVersion") == "0" && q.Get("continue") == ""}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("limit must be a non-negative integer, got %q", l)))
			return
		}
		opts.Limit = n
	}
	// Plain JSON lists without selectors are copied from the store as
	// stored: decoding and re-encoding every object was most of a large
	// list's cost.
	var raw *bytes.Buffer
	if !out.table && !out.yaml && ls.Empty() && fs.Empty() {
		raw = &bytes.Buffer{}
		opts.Raw = func(obj []byte) error {
			if raw.Len() > 0 {
				raw.WriteByte(',')
			}
			raw.Write(obj)
			return nil
		}
	}
	res, err := s.storage.List(r.Context(), ri.resource, ri.namespace, opts)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if raw != nil {
		lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.Revision, 10), Continue: res.Continue, RemainingItemCount: res.Remaining}
		metaJSON, _ := json.Marshal(lm)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, `{"kind":%q,"apiVersion":%q,"metadata":%s,"items":[`, ri.resource.ListKind, ri.resource.GroupVersion().String(), metaJSON)
		w.Write(raw.Bytes())
		w.Write([]byte("]}\n"))
		return
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.Revision, 10), Continue: res.Continue, RemainingItemCount: res.Remaining}
	if out.table {
		t, err := s.table(ri.resource, res.Items, out.includeObject)
		if err != nil {
			writeStatus(w, err)
			return
		}
		t.ListMeta = lm
		writeJSON(w, http.StatusOK, t)
		return
	}
	list := ri.resource.NewList()
	if err := meta.SetList(list, res.Items); err != nil {
		writeStatus(w, err)
		return
	}
	la, _ := meta.ListAccessor(list)
	la.SetResourceVersion(lm.ResourceVersion)
	la.SetContinue(lm.Continue)
	la.SetRemainingItemCount(lm.RemainingItemCount)
	list.GetObjectKind().SetGroupVersionKind(ri.resource.GroupVersion().WithKind(ri.resource.ListKind))
	s.writeObject(w, http.StatusOK, ri.resource, list, output{yaml: out.yaml})
}

// readBody reads a request body up to the configured size.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the request body is %d bytes; the limit is %d", r.ContentLength, s.cfg.MaxBodyBytes))
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading the request body: %v", err))
	}
	if int64(len(b)) > s.cfg.MaxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the request body is over the limit of %d bytes", s.cfg.MaxBodyBytes))
	}
	return b, nil
}

func unsupportedMediaType(ct string, want string) error {
	st := apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "", "", 0, false)
	st.ErrStatus.Reason = metav1.StatusReasonUnsupportedMediaType
	st.ErrStatus.Message = fmt.Sprintf("the body of the request was in an unknown format (%q); accepted media types: %s", ct, want)
	return st
}

// bodyJSON reads the body as JSON (YAML is converted).
func (s *Server) bodyJSON(r *http.Request) ([]byte, error) {
	body, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch mt {
	case "application/json", "":
	case "application/yaml", "application/x-yaml", "text/yaml":
		if body, err = yaml.YAMLToJSON(body); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not valid YAML: %v", err))
		}
	case "application/vnd.kubernetes.protobuf":
		// Newer kubectl sends typed objects (kubectl create deployment,
		// create token) in Kubernetes' protobuf envelope. Decode it into
		// the type it names and carry on as JSON.
		obj, _, err := protobufCodec.Decode(body, nil, nil)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not a valid protobuf object: %v", err))
		}
		if body, err = json.Marshal(obj); err != nil {
			return nil, err
		}
	default:
		return nil, unsupportedMediaType(ct, "application/json, application/yaml, application/vnd.kubernetes.protobuf")
	}
	return body, nil
}

var protobufCodec = protobuf.NewSerializer(registry.Scheme, registry.Scheme)

// decode turns a JSON body into the resource's typed object, refusing a
// different kind, malformed JSON, and fields drover does not support.
func decode(res *registry.Resource, body []byte) (runtime.Object, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not a valid JSON object: %v", err))
	}
	if raw == nil {
		return nil, apierrors.NewBadRequest("the body is empty; expected a " + res.Kind + " object")
	}
	gvk := res.GVK()
	if k, ok := raw["kind"].(string); ok && k != "" && k != gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the kind of the object (%s) does not match the kind of the URL (%s)", k, gvk.Kind))
	}
	if v, ok := raw["apiVersion"].(string); ok && v != "" && v != gvk.GroupVersion().String() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", v, gvk.GroupVersion()))
	}
	name := ""
	if md, ok := raw["metadata"].(map[string]any); ok {
		name, _ = md["name"].(string)
	}
	if errs := admission.CheckSupported(gvk, raw); len(errs) > 0 {
		return nil, apierrors.NewInvalid(gvk.GroupKind(), name, errs)
	}
	obj := res.New()
	if err := json.Unmarshal(body, obj); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body does not decode as a %s: %v", gvk.Kind, err))
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

func dryRun(r *http.Request) bool { return len(r.URL.Query()["dryRun"]) > 0 }

// bodyObject reads and decodes a request body as the resource's type.
func (s *Server) bodyObject(r *http.Request, res *registry.Resource) (runtime.Object, error) {
	body, err := s.bodyJSON(r)
	if err != nil {
		return nil, err
	}
	return decode(res, body)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, ri *requestInfo, out output) {
	obj, err := s.bodyObject(r, ri.resource)
	if err != nil {
		writeStatus(w, err)
		return
	}
	m, _ := meta.Accessor(obj)
	if ri.resource.Namespaced {
		switch m.GetNamespace() {
		case "":
			m.SetNamespace(ri.namespace)
		case ri.namespace:
		default:
			writeStatus(w, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
			return
		}
	}
	created, err := s.storage.Create(r.Context(), ri.resource, obj, registry.CreateOptions{DryRun: dryRun(r)})
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.writeObject(w, http.StatusCreated, ri.resource, created, out)
}

// preconditionRV refuses a write based on a stale resourceVersion.
func preconditionRV(res *registry.Resource, want string, cur runtime.Object) error {
	if want == "" {
		return nil
	}
	cm, _ := meta.Accessor(cur)
	if want != cm.GetResourceVersion() {
		return apierrors.NewConflict(res.GroupResource(), cm.GetName(),
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	return nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, ri *requestInfo, out output, sub string) {
	obj, err := s.bodyObject(r, ri.resource)
	if err != nil {
		writeStatus(w, err)
		return
	}
	m, _ := meta.Accessor(obj)
	if m.GetName() != ri.name {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), ri.name)))
		return
	}
	if ri.resource.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != ri.namespace {
		writeStatus(w, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	want := m.GetResourceVersion()
	updated, err := s.storage.Update(r.Context(), ri.resource, ri.namespace, ri.name, registry.UpdateOptions{Subresource: sub, DryRun: dryRun(r)},
		func(cur runtime.Object) (runtime.Object, error) {
			if err := preconditionRV(ri.resource, want, cur); err != nil {
				return nil, err
			}
			next := obj.DeepCopyObject()
			nm, _ := meta.Accessor(next)
			nm.SetResourceVersion("")
			return next, nil
		})
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.writeObject(w, http.StatusOK, ri.resource, updated, out)
}

// applyPatch applies a JSON, merge or strategic merge patch to a JSON
// document; schema is the typed object strategic merge patches follow.
func applyPatch(contentType string, doc, patch []byte, schemaObj runtime.Object) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/json-patch+json":
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the JSON patch is invalid: %v", err))
		}
		out, err := p.Apply(doc)
		if err != nil {
			st := apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schema.GroupResource{}, "", "", 0, false)
			st.ErrStatus.Reason = metav1.StatusReasonInvalid
			st.ErrStatus.Message = fmt.Sprintf("the JSON patch does not apply: %v", err)
			return nil, st
		}
		return out, nil
	case "application/merge-patch+json":
		out, err := jsonpatch.MergePatch(doc, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the merge patch is invalid: %v", err))
		}
		return out, nil
	case "application/strategic-merge-patch+json":
		out, err := strategicpatch.StrategicMergePatch(doc, patch, schemaObj)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the strategic merge patch is invalid: %v", err))
		}
		return out, nil
	case "application/apply-patch+yaml":
		return nil, unsupportedMediaType(contentType, "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (server-side apply is not supported; use client-side kubectl apply)")
	}
	return nil, unsupportedMediaType(contentType, "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json")
}

func checkPatchType(ct string) error {
	_, err := applyPatch(ct, []byte("{}"), []byte("{}"), &corev1.ConfigMap{})
	if err != nil && apierrors.ReasonForError(err) == metav1.StatusReasonUnsupportedMediaType {
		return err
	}
	return nil
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, ri *requestInfo, out output, sub string) {
	ct := r.Header.Get("Content-Type")
	if err := checkPatchType(ct); err != nil {
		writeStatus(w, err)
		return
	}
	patch, err := s.readBody(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	updated, err := s.storage.Update(r.Context(), ri.resource, ri.namespace, ri.name, registry.UpdateOptions{Subresource: sub, DryRun: dryRun(r)},
		func(cur runtime.Object) (runtime.Object, error) {
			doc, err := json.Marshal(cur)
			if err != nil {
				return nil, err
			}
			patched, err := applyPatch(ct, doc, patch, ri.resource.New())
			if err != nil {
				return nil, err
			}
			next, err := decode(ri.resource, patched)
			if err != nil {
				return nil, err
			}
			// A resourceVersion in the patch is a precondition.
			nm, _ := meta.Accessor(next)
			if err := preconditionRV(ri.resource, nm.GetResourceVersion(), cur); err != nil {
				return nil, err
			}
			nm.SetResourceVersion("")
			return next, nil
		})
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.writeObject(w, http.StatusOK, ri.resource, updated, out)
}

// deleteOptions reads DeleteOptions from the body and the query.
func (s *Server) deleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, opts); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not valid DeleteOptions: %v", err))
		}
	}
	q := r.URL.Query()
	if g := q.Get("gracePeriodSeconds"); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("gracePeriodSeconds must be an integer, got %q", g))
		}
		opts.GracePeriodSeconds = &n
	}
	if p := q.Get("propagationPolicy"); p != "" {
		pp := metav1.DeletionPropagation(p)
		opts.PropagationPolicy = &pp
	}
	if q.Get("dryRun") != "" {
		opts.DryRun = []string{q.Get("dryRun")}
	}
	if pp := opts.PropagationPolicy; pp != nil {
		switch *pp {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy %q is not one of Orphan, Background, Foreground", *pp))
		}
	}
	return opts, nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, ri *requestInfo, out output) {
	if ri.resource.Name == "namespaces" && (ri.name == "default" || ri.name == "kube-system" || ri.name == "kube-public") {
		writeStatus(w, apierrors.NewForbidden(ri.resource.GroupResource(), ri.name, errors.New("this namespace may not be deleted")))
		return
	}
	opts, err := s.deleteOptions(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	policy := deletePolicy(opts)
	if ri.resource.Namespaced && len(opts.DryRun) == 0 && policy != metav1.DeletePropagationBackground {
		cur, err := s.storage.Get(r.Context(), ri.resource, ri.namespace, ri.name, false)
		if err != nil {
			writeStatus(w, err)
			return
		}
		m, _ := meta.Accessor(cur)
		if err := s.cascade(r.Context(), ri.namespace, m.GetUID(), policy, 0); err != nil {
			writeStatus(w, err)
			return
		}
	}
	res, err := s.storage.Delete(r.Context(), ri.resource, ri.namespace, ri.name, opts)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if res.Deleted && ri.resource.Namespaced && len(opts.DryRun) == 0 && policy == metav1.DeletePropagationBackground {
		m, _ := meta.Accessor(res.Object)
		s.cascadeInBackground(ri.namespace, m.GetUID())
	}
	code := http.StatusOK
	if !res.Deleted {
		code = http.StatusAccepted
	}
	s.writeObject(w, code, ri.resource, res.Object, out)
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ls, fs, err := selectors(r, ri.resource)
	if err != nil {
		writeStatus(w, err)
		return
	}
	opts, err := s.deleteOptions(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	res, err := s.storage.List(r.Context(), ri.resource, ri.namespace, registry.ListOptions{Labels: ls, Fields: fs})
	if err != nil {
		writeStatus(w, err)
		return
	}
	var deleted []runtime.Object
	for _, obj := range res.Items {
		m, _ := meta.Accessor(obj)
		dr, err := s.storage.Delete(r.Context(), ri.resource, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			writeStatus(w, err)
			return
		}
		deleted = append(deleted, dr.Object)
	}
	list := ri.resource.NewList()
	meta.SetList(list, deleted)
	list.GetObjectKind().SetGroupVersionKind(ri.resource.GroupVersion().WithKind(ri.resource.ListKind))
	writeJSON(w, http.StatusOK, list)
}

// scaleOf renders a Deployment's or ReplicaSet's autoscaling/v1 Scale.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	sc := &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"}}
	var sel *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.Deployment:
		sc.ObjectMeta = scaleMeta(o.ObjectMeta)
		sc.Spec.Replicas = deref(o.Spec.Replicas, 1)
		sc.Status.Replicas = o.Status.Replicas
		sel = o.Spec.Selector
	case *appsv1.ReplicaSet:
		sc.ObjectMeta = scaleMeta(o.ObjectMeta)
		sc.Spec.Replicas = deref(o.Spec.Replicas, 1)
		sc.Status.Replicas = o.Status.Replicas
		sel = o.Spec.Selector
	default:
		return nil, fmt.Errorf("%T has no scale", obj)
	}
	if sel != nil {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err == nil {
			sc.Status.Selector = s.String()
		}
	}
	return sc, nil
}

func scaleMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp}
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	}
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx := r.Context()
	switch ri.verb {
	case "get":
		obj, err := s.storage.Get(ctx, ri.resource, ri.namespace, ri.name, false)
		if err != nil {
			writeStatus(w, err)
			return
		}
		sc, err := scaleOf(obj)
		if err != nil {
			writeStatus(w, err)
			return
		}
		writeJSON(w, http.StatusOK, sc)
		return
	case "update", "patch":
	default:
		writeStatus(w, methodNotAllowed(r, ri))
		return
	}
	var body []byte
	var err error
	if ri.verb == "update" {
		body, err = s.bodyJSON(r)
	} else {
		if err = checkPatchType(r.Header.Get("Content-Type")); err == nil {
			body, err = s.readBody(r)
		}
	}
	if err != nil {
		writeStatus(w, err)
		return
	}
	updated, err := s.storage.Update(ctx, ri.resource, ri.namespace, ri.name, registry.UpdateOptions{DryRun: dryRun(r)},
		func(cur runtime.Object) (runtime.Object, error) {
			sc, err := scaleOf(cur)
			if err != nil {
				return nil, err
			}
			next := &autoscalingv1.Scale{}
			if ri.verb == "update" {
				if err := json.Unmarshal(body, next); err != nil {
					return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not a valid Scale: %v", err))
				}
			} else {
				doc, _ := json.Marshal(sc)
				patched, err := applyPatch(r.Header.Get("Content-Type"), doc, body, &autoscalingv1.Scale{})
				if err != nil {
					return nil, err
				}
				if err := json.Unmarshal(patched, next); err != nil {
					return nil, apierrors.NewBadRequest(fmt.Sprintf("the patched Scale is invalid: %v", err))
				}
			}
			if next.Spec.Replicas < 0 {
				return nil, apierrors.NewInvalid(schema.GroupKind{Group: "autoscaling", Kind: "Scale"}, ri.name,
					fieldErr("spec.replicas", next.Spec.Replicas, "must be greater than or equal to 0"))
			}
			if err := preconditionRV(ri.resource, next.ResourceVersion, cur); err != nil {
				return nil, err
			}
			setReplicas(cur, next.Spec.Replicas)
			return cur, nil
		})
	if err != nil {
		writeStatus(w, err)
		return
	}
	sc, _ := scaleOf(updated)
	writeJSON(w, http.StatusOK, sc)
}

// bind assigns a pod to a node (pods/binding), once.
func (s *Server) bind(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	body, err := s.bodyJSON(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	var b corev1.Binding
	if err := json.Unmarshal(body, &b); err != nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the body is not a valid Binding: %v", err)))
		return
	}
	if b.Target.Name == "" || (b.Target.Kind != "" && b.Target.Kind != "Node") {
		writeStatus(w, apierrors.NewInvalid(schema.GroupKind{Kind: "Binding"}, ri.name, fieldErr("target", b.Target.Name, "must name a Node")))
		return
	}
	if b.Name != "" && b.Name != ri.name {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the binding (%s) does not match the pod on the URL (%s)", b.Name, ri.name)))
		return
	}
	gr := schema.GroupResource{Resource: "pods/binding"}
	_, err = s.storage.Update(r.Context(), ri.resource, ri.namespace, ri.name, registry.UpdateOptions{Subresource: "binding"},
		func(cur runtime.Object) (runtime.Object, error) {
			pod := cur.(*corev1.Pod)
			if pod.DeletionTimestamp != nil {
				return nil, apierrors.NewConflict(gr, ri.name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", ri.name))
			}
			if pod.Spec.NodeName != "" {
				return nil, apierrors.NewConflict(gr, ri.name, fmt.Errorf("pod %s is already assigned to node %q", ri.name, pod.Spec.NodeName))
			}
			if uid := b.UID; uid != "" && uid != pod.UID {
				return nil, apierrors.NewConflict(gr, ri.name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, pod.UID))
			}
			pod.Spec.NodeName = b.Target.Name
			setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
			return pod, nil
		})
	if err != nil {
		writeStatus(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}

// podLog serves pods/log: the node's agent has the logs.
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	obj, err := s.storage.Get(r.Context(), ri.resource, ri.namespace, ri.name, false)
	if err != nil {
		writeStatus(w, err)
		return
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	s.proxyLogs(w, r, pod)
}

// podExec serves pods/exec through the node's agent.
func (s *Server) podExec(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	obj, err := s.storage.Get(r.Context(), ri.resource, ri.namespace, ri.name, false)
	if err != nil {
		writeStatus(w, err)
		return
	}
	pod := obj.(*corev1.Pod)
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase)))
		return
	}
	s.proxyExec(w, r, pod)
}

// serviceAccountToken answers serviceaccounts/<name>/token with a bearer
// token for that account (authentication.k8s.io/v1 TokenRequest). drover's
// tokens do not expire; they stop working when the account is deleted or
// the cluster CA changes.
func (s *Server) serviceAccountToken(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	body, err := s.bodyJSON(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	var tr authenticationv1.TokenRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &tr); err != nil {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the body is not a valid TokenRequest: %v", err)))
			return
		}
	}
	obj, err := s.storage.Get(r.Context(), ri.resource, ri.namespace, ri.name, false)
	if err != nil {
		writeStatus(w, err)
		return
	}
	key := s.cfg.TokenKey
	if key == nil || key() == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("this master has no token key"))
		return
	}
	sa := obj.(*corev1.ServiceAccount)
	tr.TypeMeta = metav1.TypeMeta{Kind: "TokenRequest", APIVersion: "authentication.k8s.io/v1"}
	tr.Name, tr.Namespace = sa.Name, sa.Namespace
	tr.Status.Token = ServiceAccountToken(key(), sa.Namespace, sa.Name, string(sa.UID))
	tr.Status.ExpirationTimestamp = metav1.NewTime(s.now().AddDate(100, 0, 0).Truncate(time.Second))
	writeJSON(w, http.StatusCreated, &tr)
}
