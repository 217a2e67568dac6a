// Package clienttest is a small in-memory API server over real HTTP (TLS,
// bearer token) for testing code that uses package client before, or
// without, a whole drover master. It serves discovery, get/list (JSON and
// Table), create, update, patch (json, merge, strategic), delete, watch
// (JSON and Table) and the scale subresource of workloads, with
// Kubernetes-shaped Status errors. It keeps no admission or validation:
// whatever is stored comes back. Finalizers work as in Kubernetes: DELETE
// only marks such an object, which goes once an update removes them.
package clienttest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/version"

	"github.com/droverhq/drover/client"
)

// Token is the bearer token the server requires.
const Token = "clienttest-token"

// Mappings is a representative subset of what drover serves.
func Mappings() []client.Mapping {
	all := []string{"all"}
	rw := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	return []client.Mapping{
		{Version: "v1", Resource: "pods", Singular: "pod", Kind: "Pod", ShortNames: []string{"po"}, Categories: all, Verbs: rw, Namespaced: true, Subresources: []string{"status"}},
		{Version: "v1", Resource: "services", Singular: "service", Kind: "Service", ShortNames: []string{"svc"}, Categories: all, Verbs: rw, Namespaced: true},
		{Version: "v1", Resource: "configmaps", Singular: "configmap", Kind: "ConfigMap", ShortNames: []string{"cm"}, Verbs: rw, Namespaced: true},
		{Version: "v1", Resource: "events", Singular: "event", Kind: "Event", ShortNames: []string{"ev"}, Verbs: rw, Namespaced: true},
		{Version: "v1", Resource: "namespaces", Singular: "namespace", Kind: "Namespace", ShortNames: []string{"ns"}, Verbs: rw},
		{Version: "v1", Resource: "nodes", Singular: "node", Kind: "Node", ShortNames: []string{"no"}, Verbs: rw},
		{Version: "v1", Resource: "serviceaccounts", Singular: "serviceaccount", Kind: "ServiceAccount", ShortNames: []string{"sa"}, Verbs: rw, Namespaced: true},
		{Group: "apps", Version: "v1", Resource: "deployments", Singular: "deployment", Kind: "Deployment", ShortNames: []string{"deploy"}, Categories: all, Verbs: rw, Namespaced: true, Subresources: []string{"scale", "status"}},
		{Group: "apps", Version: "v1", Resource: "replicasets", Singular: "replicaset", Kind: "ReplicaSet", ShortNames: []string{"rs"}, Categories: all, Verbs: rw, Namespaced: true, Subresources: []string{"scale", "status"}},
		{Group: "apps", Version: "v1", Resource: "daemonsets", Singular: "daemonset", Kind: "DaemonSet", ShortNames: []string{"ds"}, Categories: all, Verbs: rw, Namespaced: true},
		{Group: "batch", Version: "v1", Resource: "jobs", Singular: "job", Kind: "Job", Categories: all, Verbs: rw, Namespaced: true},
		{Group: "events.k8s.io", Version: "v1", Resource: "events", Singular: "event", Kind: "Event", ShortNames: []string{"ev"}, Verbs: rw, Namespaced: true},
	}
}

// Server is the in-memory API server.
type Server struct {
	*httptest.Server
	mappings []client.Mapping
	clock    atomic.Pointer[func() time.Time]

	mu       sync.Mutex
	rv       int64
	objects  map[string]map[string]any // objKey -> object
	history  []event                   // every change, for watches from a resourceVersion
	changed  chan struct{}             // closed and replaced on every change
	stop     chan struct{}             // closed before the server closes: ends watches
	requests []string                  // "METHOD path?query", for tests that check what was sent
}

type event struct {
	rv       int64
	typ      string
	resource string // group/resource
	obj      map[string]any
}

// NewServer starts a TLS server serving ms (Mappings() if nil), closed at
// the end of the test.
func NewServer(t testing.TB, ms []client.Mapping) *Server {
	if ms == nil {
		ms = Mappings()
	}
	s := &Server{mappings: ms, objects: map[string]map[string]any{}, changed: make(chan struct{}), stop: make(chan struct{})}
	s.SetClock(time.Now)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Handshakes cut short by clients closing idle connections are noise.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	// Close waits for requests in flight; open watches must end first.
	t.Cleanup(func() {
		close(s.stop)
		s.Close()
	})
	return s
}

// SetClock replaces the clock that stamps creationTimestamp and renders AGE.
func (s *Server) SetClock(now func() time.Time) { s.clock.Store(&now) }

func (s *Server) now() time.Time { return (*s.clock.Load())() }

// RESTConfig reaches the server with its CA and token.
func (s *Server) RESTConfig() *client.RESTConfig {
	return &client.RESTConfig{Host: s.URL, CAData: s.caPEM(), BearerToken: Token}
}

// WriteKubeconfig writes a kubeconfig for the server with context "test"
// and the given default namespace, and returns its path.
func (s *Server) WriteKubeconfig(t testing.TB, namespace string) string {
	t.Helper()
	kc := &client.Kubeconfig{
		APIVersion: "v1", Kind: "Config", CurrentContext: "test",
		Clusters: []client.NamedCluster{{Name: "test", Cluster: client.Cluster{Server: s.URL, CertificateAuthorityData: s.caPEM()}}},
		Users:    []client.NamedUser{{Name: "test", User: client.User{Token: Token}}},
		Contexts: []client.NamedContext{{Name: "test", Context: client.Context{Cluster: "test", User: "test", Namespace: namespace}}},
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := client.SaveKubeconfig(p, kc); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *Server) caPEM() []byte {
	var out []byte
	for _, c := range s.TLS.Certificates[0].Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return out
}

// Requests returns the requests served so far, "METHOD path?query".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Seed stores objects as if created through the API. Each must have
// apiVersion, kind and a name.
func (s *Server) Seed(t testing.TB, objs ...map[string]any) {
	t.Helper()
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o}
		m, ok := s.kindMapping(u.GroupVersionKind())
		if !ok {
			t.Fatalf("seed: no resource serves %s", u.GroupVersionKind())
		}
		s.mu.Lock()
		_, err := s.create(m, u.GetNamespace(), o)
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("seed: %v", err.Status.Message)
		}
	}
}

// Object returns a stored object, or nil.
func (s *Server) Object(resource, namespace, name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mappings {
		if m.GroupResource() == resource {
			return runtime.DeepCopyJSON(s.objects[objKey(m, namespace, name)])
		}
	}
	return nil
}

func (s *Server) kindMapping(gvk schema.GroupVersionKind) (client.Mapping, bool) {
	for _, m := range s.mappings {
		if m.GVK() == gvk {
			return m, true
		}
	}
	return client.Mapping{}, false
}

func objKey(m client.Mapping, ns, name string) string {
	if !m.Namespaced {
		ns = ""
	}
	return m.GroupResource() + "/" + ns + "/" + name
}

// statusErr is a failure with its HTTP status.
type statusErr struct{ Status metav1.Status }

func newStatus(code int32, reason metav1.StatusReason, format string, args ...any) *statusErr {
	return &statusErr{metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: code, Reason: reason, Message: fmt.Sprintf(format, args...),
	}}
}

func notFound(m client.Mapping, name string) *statusErr {
	return newStatus(404, metav1.StatusReasonNotFound, "%s %q not found", m.GroupResource(), name)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+Token {
		st := newStatus(401, metav1.StatusReasonUnauthorized, "Unauthorized")
		writeJSON(w, 401, st.Status)
		return
	}
	switch r.URL.Path {
	case "/version":
		writeJSON(w, 200, version.Info{Major: "1", Minor: "34", GitVersion: "v1.34.0-clienttest", Platform: "linux/amd64"})
		return
	case "/api":
		writeJSON(w, 200, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
		return
	case "/apis":
		writeJSON(w, 200, s.groupList())
		return
	}
	m, ns, name, sub, isList, ok := s.parsePath(r.URL.Path)
	if !ok {
		if list, ok := s.resourceList(r.URL.Path); ok {
			writeJSON(w, 200, list)
			return
		}
		writeJSON(w, 404, newStatus(404, metav1.StatusReasonNotFound, "the server could not find the requested resource").Status)
		return
	}
	q := r.URL.Query()
	asTable := strings.Contains(r.Header.Get("Accept"), "as=Table")
	if r.Method == http.MethodGet && isList && q.Get("watch") == "true" {
		s.watch(w, r, m, ns, asTable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	out, code, serr := s.handle(r.Method, m, ns, name, sub, isList, q, body, types.PatchType(r.Header.Get("Content-Type")))
	s.mu.Unlock()
	if serr != nil {
		writeJSON(w, int(serr.Status.Code), serr.Status)
		return
	}
	if asTable && r.Method == http.MethodGet {
		out = s.table(m, out)
	}
	writeJSON(w, code, out)
}

func (s *Server) groupList() metav1.APIGroupList {
	gl := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	seen := map[string]bool{}
	for _, m := range s.mappings {
		if m.Group == "" || seen[m.Group] {
			continue
		}
		seen[m.Group] = true
		gv := metav1.GroupVersionForDiscovery{GroupVersion: m.APIVersion(), Version: m.Version}
		gl.Groups = append(gl.Groups, metav1.APIGroup{Name: m.Group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv})
	}
	return gl
}

func (s *Server) resourceList(path string) (metav1.APIResourceList, bool) {
	list := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}}
	found := false
	for _, m := range s.mappings {
		if (m.Group == "" && path != "/api/"+m.Version) || (m.Group != "" && path != "/apis/"+m.APIVersion()) {
			continue
		}
		found = true
		list.GroupVersion = m.APIVersion()
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: m.Resource, SingularName: m.Singular, Namespaced: m.Namespaced, Kind: m.Kind,
			Verbs: m.Verbs, ShortNames: m.ShortNames, Categories: m.Categories,
		})
		for _, sub := range m.Subresources {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: m.Resource + "/" + sub, Namespaced: m.Namespaced, Kind: m.Kind, Verbs: []string{"get", "patch", "update"}})
		}
	}
	return list, found
}

// parsePath splits /api/v1/namespaces/ns/pods/name/sub and the like.
func (s *Server) parsePath(path string) (m client.Mapping, ns, name, sub string, isList, ok bool) {
	var group, ver string
	var rest []string
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		ver, rest = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, ver, rest = parts[1], parts[2], parts[3:]
	default:
		return m, "", "", "", false, false
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		ns, rest = rest[1], rest[2:]
	}
	for _, cand := range s.mappings {
		if cand.Group == group && cand.Version == ver && cand.Resource == rest[0] {
			m, ok = cand, true
		}
	}
	if !ok || len(rest) > 3 || (ns != "" && !m.Namespaced) {
		return m, "", "", "", false, false
	}
	if len(rest) >= 2 {
		name = rest[1]
	}
	if len(rest) == 3 {
		sub = rest[2]
	}
	return m, ns, name, sub, name == "", true
}

func (s *Server) handle(method string, m client.Mapping, ns, name, sub string, isList bool, q map[string][]string, body []byte, pt types.PatchType) (any, int, *statusErr) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch {
	case method == http.MethodGet && isList:
		return s.list(m, ns, get("labelSelector"), get("fieldSelector"))
	case method == http.MethodGet:
		obj, ok := s.objects[objKey(m, ns, name)]
		if !ok {
			return nil, 0, notFound(m, name)
		}
		if sub == "scale" {
			return scaleOf(obj), 200, nil
		}
		return obj, 200, nil
	case method == http.MethodPost && isList:
		obj := map[string]any{}
		if err := utiljson.Unmarshal(body, &obj); err != nil {
			return nil, 0, newStatus(400, metav1.StatusReasonBadRequest, "%v", err)
		}
		out, err := s.create(m, ns, obj)
		if err != nil {
			return nil, 0, err
		}
		return out, 201, nil
	case method == http.MethodPut && !isList:
		obj := map[string]any{}
		if err := utiljson.Unmarshal(body, &obj); err != nil {
			return nil, 0, newStatus(400, metav1.StatusReasonBadRequest, "%v", err)
		}
		out, err := s.update(m, ns, name, obj)
		if err != nil {
			return nil, 0, err
		}
		return out, 200, nil
	case method == http.MethodPatch && !isList:
		out, err := s.patch(m, ns, name, sub, pt, body)
		if err != nil {
			return nil, 0, err
		}
		return out, 200, nil
	case method == http.MethodDelete && !isList:
		k := objKey(m, ns, name)
		obj, ok := s.objects[k]
		if !ok {
			return nil, 0, notFound(m, name)
		}
		u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(obj)}
		if len(u.GetFinalizers()) > 0 {
			// As in Kubernetes: marked, and gone once the finalizers are.
			if u.GetDeletionTimestamp() == nil {
				now := metav1.NewTime(s.now())
				u.SetDeletionTimestamp(&now)
				s.rv++
				u.SetResourceVersion(strconv.FormatInt(s.rv, 10))
				s.objects[k] = u.Object
				s.record("MODIFIED", m, u.Object)
			}
			return u.Object, 200, nil
		}
		delete(s.objects, k)
		s.record("DELETED", m, obj)
		return obj, 200, nil
	}
	return nil, 0, newStatus(405, metav1.StatusReasonMethodNotAllowed, "the server does not allow this method on the requested resource")
}

func (s *Server) list(m client.Mapping, ns, labelSel, fieldSel string) (any, int, *statusErr) {
	ls, err := labels.Parse(labelSel)
	if err != nil {
		return nil, 0, newStatus(400, metav1.StatusReasonBadRequest, "unable to parse requirement: %v", err)
	}
	fs, err := fields.ParseSelector(fieldSel)
	if err != nil {
		return nil, 0, newStatus(400, metav1.StatusReasonBadRequest, "%v", err)
	}
	var keys []string
	for k := range s.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := []any{}
	for _, k := range keys {
		if !strings.HasPrefix(k, m.GroupResource()+"/") {
			continue
		}
		obj := s.objects[k]
		u := unstructured.Unstructured{Object: obj}
		if m.Namespaced && ns != "" && u.GetNamespace() != ns {
			continue
		}
		if !ls.Matches(labels.Set(u.GetLabels())) || !fs.Matches(fieldSet(u)) {
			continue
		}
		// Items of a typed list carry no apiVersion and kind.
		item := runtime.DeepCopyJSON(obj)
		delete(item, "apiVersion")
		delete(item, "kind")
		items = append(items, item)
	}
	return map[string]any{
		"apiVersion": m.APIVersion(), "kind": m.Kind + "List",
		"metadata": map[string]any{"resourceVersion": strconv.FormatInt(s.rv, 10)},
		"items":    items,
	}, 200, nil
}

// fieldSet is what field selectors may match on.
func fieldSet(u unstructured.Unstructured) fields.Set {
	set := fields.Set{"metadata.name": u.GetName(), "metadata.namespace": u.GetNamespace()}
	for _, f := range []string{"name", "namespace", "uid", "kind"} {
		if v, ok, _ := unstructured.NestedString(u.Object, "involvedObject", f); ok {
			set["involvedObject."+f] = v
		}
	}
	return set
}

func (s *Server) create(m client.Mapping, ns string, obj map[string]any) (map[string]any, *statusErr) {
	u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(obj)}
	if m.Namespaced {
		if ns == "" {
			ns = u.GetNamespace()
		}
		if u.GetNamespace() != "" && u.GetNamespace() != ns {
			return nil, newStatus(400, metav1.StatusReasonBadRequest, "the namespace of the provided object does not match the namespace sent on the request")
		}
		u.SetNamespace(ns)
	}
	if u.GetName() == "" {
		return nil, newStatus(422, metav1.StatusReasonInvalid, "%s \"\" is invalid: metadata.name: Required value: name or generateName is required", m.Kind)
	}
	k := objKey(m, ns, u.GetName())
	if _, ok := s.objects[k]; ok {
		return nil, newStatus(409, metav1.StatusReasonAlreadyExists, "%s %q already exists", m.GroupResource(), u.GetName())
	}
	s.rv++
	u.SetAPIVersion(m.APIVersion())
	u.SetKind(m.Kind)
	u.SetUID(types.UID(fmt.Sprintf("uid-%d", s.rv)))
	u.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	u.SetGeneration(1)
	u.SetCreationTimestamp(metav1.NewTime(s.now().Truncate(time.Second)))
	s.objects[k] = u.Object
	s.record("ADDED", m, u.Object)
	return u.Object, nil
}

func (s *Server) update(m client.Mapping, ns, name string, obj map[string]any) (map[string]any, *statusErr) {
	k := objKey(m, ns, name)
	old, ok := s.objects[k]
	if !ok {
		return nil, notFound(m, name)
	}
	u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(obj)}
	oldU := &unstructured.Unstructured{Object: old}
	if rv := u.GetResourceVersion(); rv != "" && rv != oldU.GetResourceVersion() {
		return nil, newStatus(409, metav1.StatusReasonConflict, "Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", m.GroupResource(), name)
	}
	s.rv++
	u.SetUID(oldU.GetUID())
	u.SetCreationTimestamp(oldU.GetCreationTimestamp())
	u.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	u.SetGeneration(oldU.GetGeneration() + 1)
	if m.Namespaced {
		u.SetNamespace(ns)
	}
	u.SetDeletionTimestamp(oldU.GetDeletionTimestamp())
	if u.GetDeletionTimestamp() != nil && len(u.GetFinalizers()) == 0 {
		delete(s.objects, k)
		s.record("DELETED", m, u.Object)
		return u.Object, nil
	}
	s.objects[k] = u.Object
	s.record("MODIFIED", m, u.Object)
	return u.Object, nil
}

func (s *Server) patch(m client.Mapping, ns, name, sub string, pt types.PatchType, patch []byte) (any, *statusErr) {
	k := objKey(m, ns, name)
	old, ok := s.objects[k]
	if !ok {
		return nil, notFound(m, name)
	}
	target := map[string]any(old)
	if sub == "scale" {
		target = scaleOf(old)
	}
	cur, _ := json.Marshal(target)
	var out []byte
	var err error
	switch pt {
	case types.MergePatchType:
		out, err = jsonpatch.MergePatch(cur, patch)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(patch); err == nil {
			out, err = p.Apply(cur)
		}
	case types.StrategicMergePatchType:
		typed, ok := client.NewTyped(m.GVK())
		if !ok || sub != "" {
			return nil, newStatus(415, metav1.StatusReasonUnsupportedMediaType, "strategic merge patch is not supported for %s", m.GroupResource())
		}
		out, err = strategicpatch.StrategicMergePatch(cur, patch, typed)
	default:
		return nil, newStatus(415, metav1.StatusReasonUnsupportedMediaType, "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
	}
	if err != nil {
		return nil, newStatus(422, metav1.StatusReasonInvalid, "%v", err)
	}
	obj := map[string]any{}
	if err := utiljson.Unmarshal(out, &obj); err != nil {
		return nil, newStatus(422, metav1.StatusReasonInvalid, "%v", err)
	}
	if sub == "scale" {
		replicas, _, _ := unstructured.NestedInt64(obj, "spec", "replicas")
		next := runtime.DeepCopyJSON(old)
		_ = unstructured.SetNestedField(next, replicas, "spec", "replicas")
		updated, serr := s.update(m, ns, name, next)
		if serr != nil {
			return nil, serr
		}
		return scaleOf(updated), nil
	}
	unstructured.RemoveNestedField(obj, "metadata", "resourceVersion")
	return s.update(m, ns, name, obj)
}

// scaleOf is the autoscaling/v1 Scale of a workload.
func scaleOf(obj map[string]any) map[string]any {
	u := unstructured.Unstructured{Object: obj}
	replicas, _, _ := unstructured.NestedInt64(obj, "spec", "replicas")
	status, _, _ := unstructured.NestedInt64(obj, "status", "replicas")
	return map[string]any{
		"apiVersion": "autoscaling/v1", "kind": "Scale",
		"metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace(), "resourceVersion": u.GetResourceVersion(), "uid": string(u.GetUID())},
		"spec":     map[string]any{"replicas": replicas},
		"status":   map[string]any{"replicas": status},
	}
}

func (s *Server) record(typ string, m client.Mapping, obj map[string]any) {
	s.history = append(s.history, event{rv: s.rv, typ: typ, resource: m.GroupResource(), obj: runtime.DeepCopyJSON(obj)})
	close(s.changed)
	s.changed = make(chan struct{})
}

// table renders an object or a list as a Table with NAME and AGE columns.
func (s *Server) table(m client.Mapping, v any) any {
	obj, _ := v.(map[string]any)
	var items []map[string]any
	rv := ""
	if raw, ok := obj["items"].([]any); ok {
		for _, it := range raw {
			items = append(items, it.(map[string]any))
		}
		rv, _, _ = unstructured.NestedString(obj, "metadata", "resourceVersion")
	} else {
		items = []map[string]any{obj}
	}
	t := metav1.Table{
		TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: rv},
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name"},
			{Name: "Age", Type: "string"},
			{Name: "UID", Type: "string", Priority: 1},
		},
		Rows: []metav1.TableRow{},
	}
	for _, it := range items {
		u := unstructured.Unstructured{Object: it}
		pom := metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion(), CreationTimestamp: u.GetCreationTimestamp(), Labels: u.GetLabels()},
		}
		raw, _ := json.Marshal(pom)
		age := s.now().Sub(u.GetCreationTimestamp().Time).Truncate(time.Second).String()
		t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{u.GetName(), age, string(u.GetUID())}, Object: runtime.RawExtension{Raw: raw}})
	}
	return t
}

// watch streams history after resourceVersion, then live changes, until
// the client goes away.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, m client.Mapping, ns string, asTable bool) {
	q := r.URL.Query()
	from, _ := strconv.ParseInt(q.Get("resourceVersion"), 10, 64)
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		writeJSON(w, 400, newStatus(400, metav1.StatusReasonBadRequest, "%v", err).Status)
		return
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		writeJSON(w, 400, newStatus(400, metav1.StatusReasonBadRequest, "%v", err).Status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	flusher := w.(http.Flusher)
	flusher.Flush()
	enc := json.NewEncoder(w)
	next := 0
	if from == 0 {
		// No resourceVersion: the current state first, as ADDED events.
		s.mu.Lock()
		list, _, _ := s.list(m, ns, q.Get("labelSelector"), q.Get("fieldSelector"))
		next = len(s.history)
		s.mu.Unlock()
		for _, it := range list.(map[string]any)["items"].([]any) {
			obj := it.(map[string]any)
			obj["apiVersion"], obj["kind"] = m.APIVersion(), m.Kind
			s.send(enc, m, "ADDED", obj, asTable)
		}
		flusher.Flush()
	}
	for {
		s.mu.Lock()
		var batch []event
		for ; next < len(s.history); next++ {
			e := s.history[next]
			u := unstructured.Unstructured{Object: e.obj}
			if e.rv <= from || e.resource != m.GroupResource() || (m.Namespaced && ns != "" && u.GetNamespace() != ns) ||
				!ls.Matches(labels.Set(u.GetLabels())) || !fs.Matches(fieldSet(u)) {
				continue
			}
			batch = append(batch, e)
		}
		changed := s.changed
		s.mu.Unlock()
		for _, e := range batch {
			s.send(enc, m, e.typ, e.obj, asTable)
		}
		flusher.Flush()
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
}

func (s *Server) send(enc *json.Encoder, m client.Mapping, typ string, obj map[string]any, asTable bool) {
	var out any = obj
	if asTable {
		out = s.table(m, obj)
	}
	_ = enc.Encode(map[string]any{"type": typ, "object": out})
}

// WriteFile is a test helper: it writes content under dir and returns the
// path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
