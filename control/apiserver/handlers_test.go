package apiserver

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/pki"
)

func pod(name string, labels map[string]string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "labels": labels},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}}}
}

func deployment(name string, replicas int) map[string]any {
	return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}}}}}
}

func TestDiscoveryAndVersion(t *testing.T) {
	e := newEnv(t, 1, nil)
	var vers metav1.APIVersions
	decodeInto(t, e.must(200, "GET", "/api", nil), &vers)
	if len(vers.Versions) != 1 || vers.Versions[0] != "v1" {
		t.Fatalf("/api: %+v", vers)
	}
	var groups metav1.APIGroupList
	decodeInto(t, e.must(200, "GET", "/apis", nil), &groups)
	names := map[string]bool{}
	for _, g := range groups.Groups {
		names[g.Name] = true
	}
	for _, g := range []string{"apps", "batch", "coordination.k8s.io", "rbac.authorization.k8s.io"} {
		if !names[g] {
			t.Fatalf("/apis lacks %s: %+v", g, groups)
		}
	}
	var core metav1.APIResourceList
	decodeInto(t, e.must(200, "GET", "/api/v1", nil), &core)
	found := map[string]metav1.APIResource{}
	for _, r := range core.APIResources {
		found[r.Name] = r
	}
	for _, n := range []string{"pods", "pods/status", "pods/binding", "pods/log", "nodes", "nodes/status", "services", "namespaces"} {
		if _, ok := found[n]; !ok {
			t.Fatalf("/api/v1 lacks %s", n)
		}
	}
	if sn := found["pods"].ShortNames; len(sn) != 1 || sn[0] != "po" {
		t.Fatalf("pods short names: %v", sn)
	}
	var apps metav1.APIResourceList
	decodeInto(t, e.must(200, "GET", "/apis/apps/v1", nil), &apps)
	for _, r := range apps.APIResources {
		if r.Name == "deployments/scale" && (r.Kind != "Scale" || r.Group != "autoscaling") {
			t.Fatalf("deployments/scale: %+v", r)
		}
	}
	e.must(404, "GET", "/apis/nope/v1", nil)
	// /version needs no credentials.
	code, b, _ := e.raw(0, "GET", "/version", req{})
	if code != 200 || !strings.Contains(string(b), `"gitVersion"`) {
		t.Fatalf("/version: %d %s", code, b)
	}
	// kubectl asks for the OpenAPI document in protobuf.
	code, b, _ = e.raw(0, "GET", "/openapi/v2", req{token: e.token, accept: "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
	var doc openapi_v2.Document
	if code != 200 || proto.Unmarshal(b, &doc) != nil || doc.Swagger != "2.0" {
		t.Fatalf("/openapi/v2: %d %v", code, doc.Swagger)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, 1, nil)
	for _, tok := range []string{"", "nonsense", "drover-admin.forged", NodeToken([]byte("other key"), "n1")} {
		code, b, h := e.raw(0, "GET", "/api/v1/pods", req{token: tok})
		if code != 401 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("token %q: %d %s", tok, code, b)
		}
		if st := status(t, b); st.Reason != metav1.StatusReasonUnauthorized {
			t.Fatalf("token %q: %+v", tok, st)
		}
	}
	// A node may read pods and write its Node, but not delete namespaces.
	node := NodeToken(e.key, "n1")
	e.eventually(5*time.Second, func() error { // the default roles reach the RBAC index
		if code, b, _ := e.raw(0, "GET", "/api/v1/pods", req{token: node}); code != 200 {
			return fmt.Errorf("node list pods: %d %s", code, b)
		}
		return nil
	})
	code, b, _ := e.raw(0, "DELETE", "/api/v1/namespaces/kube-public", req{token: node})
	if code != 403 {
		t.Fatalf("node delete namespace: %d %s", code, b)
	}
	want := `namespaces "kube-public" is forbidden: User "system:node:n1" cannot delete resource "namespaces" in API group "" in the namespace "kube-public"`
	if st := status(t, b); st.Message != want {
		t.Fatalf("forbidden message:\n got %s\nwant %s", st.Message, want)
	}
	// A service account token is valid while the account exists; RBAC
	// grants it what its bindings say.
	var tr authenticationv1.TokenRequest
	decodeInto(t, e.must(201, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token", map[string]any{}), &tr)
	saTok := tr.Status.Token
	if !strings.HasPrefix(saTok, "drover-sa.default.default.") {
		t.Fatalf("token request: %+v", tr)
	}
	if code, b, _ := e.raw(0, "GET", "/api/v1/namespaces/default/pods", req{token: saTok}); code != 403 {
		t.Fatalf("unbound service account listed pods: %d %s", code, b)
	}
	e.must(201, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", map[string]any{
		"metadata": map[string]any{"name": "sa-view"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "default", "namespace": "default"}}})
	e.eventually(5*time.Second, func() error {
		if code, b, _ := e.raw(0, "GET", "/api/v1/namespaces/default/pods", req{token: saTok}); code != 200 {
			return fmt.Errorf("%d %s", code, b)
		}
		return nil
	})
	if code, b, _ := e.raw(0, "POST", "/api/v1/namespaces/default/pods", req{token: saTok, ct: "application/json", body: mustJSON(pod("x", nil))}); code != 403 {
		t.Fatalf("viewer created a pod: %d %s", code, b)
	}
	if code, _, _ := e.raw(0, "GET", "/api/v1/namespaces/kube-system/pods", req{token: saTok}); code != 403 {
		t.Fatalf("a RoleBinding granted access outside its namespace: %d", code)
	}
	e.must(200, "DELETE", "/api/v1/namespaces/default/serviceaccounts/default", nil)
	if code, _, _ := e.raw(0, "GET", "/api/v1/namespaces/default/pods", req{token: saTok}); code != 401 {
		t.Fatalf("token of a deleted service account: %d", code)
	}
}

func TestCRUD(t *testing.T) {
	e := newEnv(t, 1, nil)
	const base = "/api/v1/namespaces/default/pods"
	var p corev1.Pod
	decodeInto(t, e.must(201, "POST", base, pod("web", map[string]string{"app": "web"})), &p)
	if p.UID == "" || p.CreationTimestamp.IsZero() || p.ResourceVersion == "" || p.Status.Phase != corev1.PodPending || p.Namespace != "default" {
		t.Fatalf("created pod lacks system fields: %+v", p.ObjectMeta)
	}
	// Defaults are applied.
	if p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Spec.DNSPolicy != corev1.DNSClusterFirst || p.Spec.TerminationGracePeriodSeconds == nil {
		t.Fatalf("pod not defaulted: %+v", p.Spec)
	}
	st := status(t, e.must(409, "POST", base, pod("web", nil)))
	if st.Reason != metav1.StatusReasonAlreadyExists || st.Message != `pods "web" already exists` {
		t.Fatalf("duplicate create: %+v", st)
	}
	gen := pod("", nil)
	gen["metadata"] = map[string]any{"generateName": "web-"}
	var g corev1.Pod
	decodeInto(t, e.must(201, "POST", base, gen), &g)
	if !strings.HasPrefix(g.Name, "web-") || len(g.Name) != len("web-")+5 {
		t.Fatalf("generateName: %q", g.Name)
	}
	st = status(t, e.must(404, "GET", base+"/nope", nil))
	if st.Reason != metav1.StatusReasonNotFound || st.Message != `pods "nope" not found` || st.Details.Name != "nope" {
		t.Fatalf("not found: %+v", st)
	}
	// Update: a stale resourceVersion conflicts, the current one wins.
	p.Labels["tier"] = "front"
	var p2 corev1.Pod
	decodeInto(t, e.must(200, "PUT", base+"/web", p), &p2)
	if p2.ResourceVersion == p.ResourceVersion || p2.Labels["tier"] != "front" {
		t.Fatalf("update: %+v", p2.ObjectMeta)
	}
	st = status(t, e.must(409, "PUT", base+"/web", p))
	if st.Reason != metav1.StatusReasonConflict || !strings.Contains(st.Message, "the object has been modified") {
		t.Fatalf("stale update: %+v", st)
	}
	// Patches: JSON patch, merge patch, strategic merge patch.
	patch := func(ct, body string) corev1.Pod {
		t.Helper()
		code, b, _ := e.raw(0, "PATCH", base+"/web", req{token: e.token, ct: ct, body: []byte(body)})
		if code != 200 {
			t.Fatalf("patch %s: %d %s", ct, code, b)
		}
		var out corev1.Pod
		decodeInto(t, b, &out)
		return out
	}
	if out := patch("application/json-patch+json", `[{"op":"add","path":"/metadata/labels/j","value":"1"}]`); out.Labels["j"] != "1" {
		t.Fatalf("json patch: %v", out.Labels)
	}
	if out := patch("application/merge-patch+json", `{"metadata":{"labels":{"m":"2","j":null}}}`); out.Labels["m"] != "2" || out.Labels["j"] != "" {
		t.Fatalf("merge patch: %v", out.Labels)
	}
	out := patch("application/strategic-merge-patch+json", `{"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}}`)
	if len(out.Spec.Containers) != 1 || out.Spec.Containers[0].Image != "busybox:1.36" {
		t.Fatalf("strategic merge patch: %+v", out.Spec.Containers)
	}
	code, b, _ := e.raw(0, "PATCH", base+"/web", req{token: e.token, ct: "application/apply-patch+yaml", body: []byte("{}")})
	if code != 415 || status(t, b).Reason != metav1.StatusReasonUnsupportedMediaType {
		t.Fatalf("apply patch: %d %s", code, b)
	}
	// An immutable field refused, naming it.
	code, b, _ = e.raw(0, "PATCH", base+"/web", req{token: e.token, ct: "application/merge-patch+json", body: []byte(`{"spec":{"restartPolicy":"Never"}}`)})
	if code != 422 || !strings.Contains(string(b), "spec") {
		t.Fatalf("immutable pod spec: %d %s", code, b)
	}
	// Delete with a wrong uid precondition conflicts; a right one deletes.
	st = status(t, e.must(409, "DELETE", base+"/web", map[string]any{"preconditions": map[string]any{"uid": "wrong"}}))
	if !strings.Contains(st.Message, "Precondition failed") {
		t.Fatalf("precondition: %+v", st)
	}
	e.must(200, "DELETE", base+"/web", map[string]any{"preconditions": map[string]any{"uid": string(p.UID)}})
	e.must(404, "GET", base+"/web", nil)
	e.must(404, "DELETE", base+"/web", nil)

	// Newer kubectl sends typed objects as Kubernetes protobuf.
	var pb bytes.Buffer
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "pb"}, Data: map[string]string{"k": "v"}}
	if err := protobufCodec.Encode(cm, &pb); err != nil {
		t.Fatal(err)
	}
	code, b, _ = e.raw(0, "POST", "/api/v1/namespaces/default/configmaps", req{token: e.token, ct: "application/vnd.kubernetes.protobuf", body: pb.Bytes()})
	var got corev1.ConfigMap
	decodeInto(t, b, &got)
	if code != 201 || got.Data["k"] != "v" {
		t.Fatalf("protobuf create: %d %s", code, b)
	}
	code, b, _ = e.raw(0, "POST", "/api/v1/namespaces/default/configmaps", req{token: e.token, ct: "application/vnd.kubernetes.protobuf", body: []byte("k8s\x00garbage")})
	if code != 400 {
		t.Fatalf("bad protobuf: %d %s", code, b)
	}
}

func TestFinalizersAndNamespaces(t *testing.T) {
	e := newEnv(t, 1, nil)
	e.must(201, "POST", "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": "team"}})
	cm := func(name string, finalizers ...string) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": name, "finalizers": finalizers}, "data": map[string]any{"k": "v"}}
	}
	e.must(201, "POST", "/api/v1/namespaces/team/configmaps", cm("held", "example.com/hold"))
	var held corev1.ConfigMap
	decodeInto(t, e.must(202, "DELETE", "/api/v1/namespaces/team/configmaps/held", nil), &held)
	if held.DeletionTimestamp == nil {
		t.Fatalf("finalized object not marked: %+v", held.ObjectMeta)
	}
	e.must(200, "GET", "/api/v1/namespaces/team/configmaps/held", nil)
	code, b, _ := e.raw(0, "PATCH", "/api/v1/namespaces/team/configmaps/held", req{token: e.token, ct: "application/merge-patch+json", body: []byte(`{"metadata":{"finalizers":null}}`)})
	if code != 200 {
		t.Fatalf("remove finalizer: %d %s", code, b)
	}
	e.must(404, "GET", "/api/v1/namespaces/team/configmaps/held", nil)

	// Objects in a missing namespace are refused.
	st := status(t, e.must(404, "POST", "/api/v1/namespaces/nowhere/configmaps", cm("x")))
	if st.Message != `namespaces "nowhere" not found` {
		t.Fatalf("missing namespace: %+v", st)
	}
	// Deleting a namespace deletes its contents, then the namespace.
	for i := 0; i < 5; i++ {
		e.must(201, "POST", "/api/v1/namespaces/team/configmaps", cm(fmt.Sprintf("c%d", i)))
	}
	e.must(201, "POST", "/api/v1/namespaces/team/pods", pod("p", nil))
	var ns corev1.Namespace
	decodeInto(t, e.must(202, "DELETE", "/api/v1/namespaces/team", nil), &ns)
	if ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace phase after delete: %q", ns.Status.Phase)
	}
	st = status(t, e.must(403, "POST", "/api/v1/namespaces/team/configmaps", cm("late")))
	if !strings.Contains(st.Message, "being terminated") {
		t.Fatalf("create in terminating namespace: %+v", st)
	}
	e.eventually(15*time.Second, func() error {
		if code, b := e.do("GET", "/api/v1/namespaces/team", nil); code != 404 {
			return fmt.Errorf("namespace still there: %d %s", code, b)
		}
		return nil
	})
	var left corev1.ConfigMapList
	decodeInto(t, e.must(200, "GET", "/api/v1/namespaces/team/configmaps", nil), &left)
	if len(left.Items) != 0 {
		t.Fatalf("contents survived their namespace: %d", len(left.Items))
	}
	e.must(403, "DELETE", "/api/v1/namespaces/default", nil)
}

func TestListSelectorsAndPaging(t *testing.T) {
	e := newEnv(t, 1, nil)
	e.must(201, "POST", "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": "other"}})
	for i := 0; i < 25; i++ {
		ns := "default"
		if i%5 == 0 {
			ns = "other"
		}
		tier := "back"
		if i%2 == 0 {
			tier = "front"
		}
		e.must(201, "POST", "/api/v1/namespaces/"+ns+"/pods", pod(fmt.Sprintf("p%02d", i), map[string]string{"tier": tier}))
	}
	count := func(path string) int {
		t.Helper()
		var l corev1.PodList
		decodeInto(t, e.must(200, "GET", path, nil), &l)
		return len(l.Items)
	}
	if n := count("/api/v1/pods"); n != 25 {
		t.Fatalf("all namespaces: %d", n)
	}
	if n := count("/api/v1/namespaces/other/pods"); n != 5 {
		t.Fatalf("one namespace: %d", n)
	}
	if n := count("/api/v1/pods?labelSelector=tier%3Dfront"); n != 13 {
		t.Fatalf("label selector: %d", n)
	}
	if n := count("/api/v1/pods?labelSelector=tier+in+(front,back),tier!%3Dfront"); n != 12 {
		t.Fatalf("set selector: %d", n)
	}
	if n := count("/api/v1/pods?fieldSelector=metadata.name%3Dp03"); n != 1 {
		t.Fatalf("metadata.name: %d", n)
	}
	if n := count("/api/v1/pods?fieldSelector=metadata.namespace%3Dother,status.phase%3DPending"); n != 5 {
		t.Fatalf("namespace+phase: %d", n)
	}
	// Bind one pod and select by node.
	e.must(201, "POST", "/api/v1/namespaces/default/pods/p01/binding", map[string]any{"metadata": map[string]any{"name": "p01"}, "target": map[string]any{"kind": "Node", "name": "n1"}})
	if n := count("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1"); n != 1 {
		t.Fatalf("spec.nodeName=n1: %d", n)
	}
	if n := count("/api/v1/pods?fieldSelector=spec.nodeName%3D"); n != 24 {
		t.Fatalf("unbound: %d", n)
	}
	st := status(t, e.must(409, "POST", "/api/v1/namespaces/default/pods/p01/binding", map[string]any{"target": map[string]any{"name": "n2"}}))
	if !strings.Contains(st.Message, `already assigned to node "n1"`) {
		t.Fatalf("second binding: %+v", st)
	}
	st = status(t, e.must(400, "GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx", nil))
	if st.Message != "field label not supported: spec.bogus" {
		t.Fatalf("bad field label: %+v", st)
	}
	e.must(400, "GET", "/api/v1/pods?labelSelector=%3D%3D%3D", nil)
	// Pages of 7 cover everything once, in order, with a remaining count.
	var names []string
	cont := ""
	for pages := 0; ; pages++ {
		var l corev1.PodList
		decodeInto(t, e.must(200, "GET", "/api/v1/pods?limit=7&continue="+cont, nil), &l)
		for _, p := range l.Items {
			names = append(names, p.Namespace+"/"+p.Name)
		}
		if pages == 0 && (l.RemainingItemCount == nil || *l.RemainingItemCount != 18) {
			t.Fatalf("remaining after the first page: %v", l.RemainingItemCount)
		}
		if l.Continue == "" {
			break
		}
		cont = l.Continue
	}
	if len(names) != 25 {
		t.Fatalf("paging returned %d: %v", len(names), names)
	}
	for i := 1; i < len(names); i++ {
		if names[i] <= names[i-1] {
			t.Fatalf("paging out of order at %d: %v", i, names)
		}
	}
	// Paging with a selector.
	var sel corev1.PodList
	decodeInto(t, e.must(200, "GET", "/api/v1/pods?limit=4&labelSelector=tier%3Dback", nil), &sel)
	if len(sel.Items) != 4 || sel.Continue == "" {
		t.Fatalf("paged selector: %d items, continue %q", len(sel.Items), sel.Continue)
	}
	e.must(400, "GET", "/api/v1/pods?continue=garbage", nil)
	// deletecollection by label.
	e.must(200, "DELETE", "/api/v1/namespaces/default/pods?labelSelector=tier%3Dback", nil)
	if n := count("/api/v1/namespaces/default/pods?labelSelector=tier%3Dback"); n != 0 {
		t.Fatalf("deletecollection left %d", n)
	}
	if n := count("/api/v1/namespaces/default/pods"); n != 10 {
		t.Fatalf("deletecollection took too much: %d left", n)
	}
}

func TestTables(t *testing.T) {
	e := newEnv(t, 1, nil)
	e.must(201, "POST", "/apis/apps/v1/namespaces/default/deployments", deployment("web", 3))
	const accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	code, b, _ := e.raw(0, "GET", "/apis/apps/v1/namespaces/default/deployments", req{token: e.token, accept: accept})
	var tbl metav1.Table
	decodeInto(t, b, &tbl)
	if code != 200 || tbl.Kind != "Table" || len(tbl.Rows) != 1 {
		t.Fatalf("table: %d %s", code, b)
	}
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, c.Name)
		}
	}
	if strings.Join(cols, " ") != "Name Ready Up-to-date Available Age" {
		t.Fatalf("deployment columns: %v", cols)
	}
	if tbl.Rows[0].Cells[0] != "web" || tbl.Rows[0].Cells[1] != "0/3" {
		t.Fatalf("row: %v", tbl.Rows[0].Cells)
	}
	var pm metav1.PartialObjectMetadata
	decodeInto(t, tbl.Rows[0].Object.Raw, &pm)
	if pm.Name != "web" || pm.Namespace != "default" || pm.Kind != "PartialObjectMetadata" {
		t.Fatalf("row object: %s", tbl.Rows[0].Object.Raw)
	}
	e.must(201, "POST", "/api/v1/namespaces/default/pods", pod("p", nil))
	_, b, _ = e.raw(0, "GET", "/api/v1/namespaces/default/pods/p", req{token: e.token, accept: accept})
	decodeInto(t, b, &tbl)
	if len(tbl.Rows) != 1 || fmt.Sprint(tbl.Rows[0].Cells[:4]) != "[p 0/1 Pending 0]" {
		t.Fatalf("pod row: %s", b)
	}
	code, b, _ = e.raw(0, "GET", "/api/v1/pods", req{token: e.token, accept: "application/vnd.kubernetes.protobuf"})
	if code != 406 {
		t.Fatalf("protobuf only: %d %s", code, b)
	}
}

func TestSubresources(t *testing.T) {
	e := newEnv(t, 1, nil)
	const base = "/apis/apps/v1/namespaces/default/deployments"
	var d appsv1.Deployment
	decodeInto(t, e.must(201, "POST", base, deployment("web", 2)), &d)
	if d.Generation != 1 {
		t.Fatalf("generation on create: %d", d.Generation)
	}
	// Status through the main resource is ignored; through /status it is
	// the only thing that changes.
	d.Status.Replicas = 7
	d.Labels = map[string]string{"x": "y"}
	decodeInto(t, e.must(200, "PUT", base+"/web", d), &d)
	if d.Status.Replicas != 0 || d.Labels["x"] != "y" || d.Generation != 1 {
		t.Fatalf("main update: status %d labels %v generation %d", d.Status.Replicas, d.Labels, d.Generation)
	}
	d.Status.Replicas = 2
	d.Status.ReadyReplicas = 1
	d.Labels = map[string]string{"x": "changed"}
	decodeInto(t, e.must(200, "PUT", base+"/web/status", d), &d)
	if d.Status.Replicas != 2 || d.Labels["x"] != "y" {
		t.Fatalf("status update: status %d labels %v", d.Status.Replicas, d.Labels)
	}
	// Scale: read, patch, stale update.
	var sc autoscalingv1.Scale
	decodeInto(t, e.must(200, "GET", base+"/web/scale", nil), &sc)
	if sc.Kind != "Scale" || sc.APIVersion != "autoscaling/v1" || sc.Spec.Replicas != 2 || sc.Status.Replicas != 2 || sc.Status.Selector != "app=web" {
		t.Fatalf("scale: %+v", sc)
	}
	code, b, _ := e.raw(0, "PATCH", base+"/web/scale", req{token: e.token, ct: "application/merge-patch+json", body: []byte(`{"spec":{"replicas":5}}`)})
	if code != 200 {
		t.Fatalf("scale patch: %d %s", code, b)
	}
	decodeInto(t, e.must(200, "GET", base+"/web", nil), &d)
	if *d.Spec.Replicas != 5 || d.Generation != 2 {
		t.Fatalf("after scale: replicas %d generation %d", *d.Spec.Replicas, d.Generation)
	}
	sc.Spec.Replicas = 1 // sc carries the old resourceVersion
	st := status(t, e.must(409, "PUT", base+"/web/scale", sc))
	if st.Reason != metav1.StatusReasonConflict {
		t.Fatalf("stale scale: %+v", st)
	}
	sc.ResourceVersion = ""
	sc.Spec.Replicas = -1
	e.must(422, "PUT", base+"/web/scale", sc)
	e.must(404, "GET", "/api/v1/namespaces/default/configmaps/x/scale", nil)
	e.must(201, "POST", "/api/v1/namespaces/default/pods", pod("p", nil))
	st = status(t, e.must(400, "GET", "/api/v1/namespaces/default/pods/p/log", nil))
	if st.Message != "pod p does not have a host assigned" {
		t.Fatalf("log of an unbound pod: %+v", st)
	}
}

func TestServiceAllocation(t *testing.T) {
	e := newEnv(t, 1, nil)
	svc := func(name, typ string, ports ...map[string]any) map[string]any {
		var ps []any
		for _, p := range ports {
			ps = append(ps, p)
		}
		return map[string]any{"metadata": map[string]any{"name": name}, "spec": map[string]any{"type": typ, "selector": map[string]any{"app": name}, "ports": ps}}
	}
	const base = "/api/v1/namespaces/default/services"
	var a, b corev1.Service
	decodeInto(t, e.must(201, "POST", base, svc("a", "ClusterIP", map[string]any{"port": 80})), &a)
	decodeInto(t, e.must(201, "POST", base, svc("b", "NodePort", map[string]any{"port": 80})), &b)
	ip := net.ParseIP(a.Spec.ClusterIP)
	_, cidr, _ := net.ParseCIDR("10.96.0.0/12")
	if ip == nil || !cidr.Contains(ip) || a.Spec.ClusterIP == b.Spec.ClusterIP || a.Spec.ClusterIP == "10.96.0.1" {
		t.Fatalf("cluster IPs: %q %q", a.Spec.ClusterIP, b.Spec.ClusterIP)
	}
	if np := b.Spec.Ports[0].NodePort; np < 30000 || np > 32767 {
		t.Fatalf("node port: %d", np)
	}
	st := status(t, e.must(422, "POST", base, map[string]any{"metadata": map[string]any{"name": "c"}, "spec": map[string]any{"clusterIP": a.Spec.ClusterIP, "ports": []any{map[string]any{"port": 80}}}}))
	if !strings.Contains(st.Message, "provided IP is already allocated") {
		t.Fatalf("taken IP: %+v", st)
	}
	// A PUT from a manifest that leaves the addresses out keeps them.
	code, body, _ := e.raw(0, "PUT", base+"/b", req{token: e.token, ct: "application/json", body: mustJSON(svc("b", "NodePort", map[string]any{"port": 80}))})
	var b2 corev1.Service
	decodeInto(t, body, &b2)
	if code != 200 || b2.Spec.ClusterIP != b.Spec.ClusterIP || b2.Spec.Ports[0].NodePort != b.Spec.Ports[0].NodePort {
		t.Fatalf("update without addresses: %d %s", code, body)
	}
	np := b.Spec.Ports[0].NodePort
	dup := svc("d", "NodePort", map[string]any{"port": 81, "nodePort": np})
	e.must(422, "POST", base, dup)
	// Deleting releases both: the same IP and port can be taken again.
	e.must(200, "DELETE", base+"/b", nil)
	e.must(201, "POST", base, dup)
	e.must(201, "POST", base, map[string]any{"metadata": map[string]any{"name": "again"}, "spec": map[string]any{"clusterIP": b.Spec.ClusterIP, "ports": []any{map[string]any{"port": 80}}}})
	// Concurrent creates never share an address.
	var wg sync.WaitGroup
	ips := make(chan string, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := e.do("POST", base, svc(fmt.Sprintf("s%d", i), "ClusterIP", map[string]any{"port": 80}))
			if code != 201 {
				t.Errorf("create s%d: %d %s", i, code, body)
				return
			}
			var s corev1.Service
			json.Unmarshal(body, &s)
			ips <- s.Spec.ClusterIP
		}()
	}
	wg.Wait()
	close(ips)
	seen := map[string]bool{a.Spec.ClusterIP: true}
	for ip := range ips {
		if seen[ip] {
			t.Fatalf("cluster IP %s handed out twice", ip)
		}
		seen[ip] = true
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, 1, nil)
	const base = "/api/v1/namespaces/default/configmaps"
	send := func(method, path, ct, body string) (int, *metav1.Status) {
		t.Helper()
		code, b, h := e.raw(0, method, path, req{token: e.token, ct: ct, body: []byte(body)})
		if h.Get("Content-Type") == "" {
			t.Fatalf("%s %s: no Content-Type", method, path)
		}
		return code, status(t, b)
	}
	cases := []struct {
		name, method, path, ct, body string
		code                         int
		msg                          string
	}{
		{"malformed JSON", "POST", base, "application/json", `{"metadata":`, 400, "not a valid JSON object"},
		{"malformed YAML", "POST", base, "application/yaml", "metadata: [", 400, "not valid YAML"},
		{"JSON array", "POST", base, "application/json", `[1,2]`, 400, "not a valid JSON object"},
		{"wrong kind", "POST", base, "application/json", `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"x"}}`, 400, "does not match the kind of the URL"},
		{"wrong version", "POST", base, "application/json", `{"kind":"ConfigMap","apiVersion":"v2","metadata":{"name":"x"}}`, 400, "API version"},
		{"unknown field", "POST", base, "application/json", `{"metadata":{"name":"x"},"dataa":{}}`, 422, "dataa"},
		{"unsupported field", "POST", "/api/v1/namespaces/default/pods", "application/json",
			`{"metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i"}],"volumes":[{"name":"v","nfs":{"server":"s","path":"/"}}]}}`, 422, "spec.volumes[0].nfs"},
		{"bad name", "POST", base, "application/json", `{"metadata":{"name":"Not_Valid"}}`, 422, "metadata.name"},
		{"no name", "POST", base, "application/json", `{"metadata":{}}`, 422, "metadata.name"},
		{"wrong type", "POST", base, "application/json", `{"metadata":{"name":"x"},"data":{"k":1}}`, 400, "does not decode"},
		{"content type", "POST", base, "text/plain", `x`, 415, "unknown format"},
		{"unknown resource", "GET", "/api/v1/widgets", "", "", 404, "could not find the requested resource"},
		{"unknown group", "GET", "/apis/example.com/v1/things", "", "", 404, "could not find"},
		{"namespaced without namespace", "POST", "/api/v1/configmaps", "application/json", `{"metadata":{"name":"x"}}`, 404, ""},
		{"namespace mismatch", "POST", base, "application/json", `{"metadata":{"name":"x","namespace":"kube-system"}}`, 400, "does not match the namespace"},
		{"name mismatch", "PUT", base + "/a", "application/json", `{"metadata":{"name":"b"}}`, 400, "does not match the name"},
		{"bad limit", "GET", base + "?limit=-1", "", "", 400, "limit"},
		{"bad propagation", "DELETE", base + "/x?propagationPolicy=Sideways", "", "", 400, "propagationPolicy"},
		{"bad patch", "PATCH", base + "/x", "application/json-patch+json", `{"not":"a list"}`, 404, ""},
		{"method", "POST", "/api/v1/namespaces/default/pods/x/status", "application/json", `{}`, 405, ""},
	}
	for _, c := range cases {
		code, st := send(c.method, c.path, c.ct, c.body)
		if code != c.code || int(st.Code) != c.code || !strings.Contains(st.Message, c.msg) {
			t.Errorf("%s: got %d %q, want %d containing %q", c.name, code, st.Message, c.code, c.msg)
		}
	}
	big := `{"metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 1<<20) + `"}}`
	if code, st := send("POST", base, "application/json", big); code != 413 || st.Reason != metav1.StatusReasonRequestEntityTooLarge {
		t.Errorf("oversized body: %d %+v", code, st)
	}
	// Nothing was stored by any of it.
	var l corev1.ConfigMapList
	decodeInto(t, e.must(200, "GET", base, nil), &l)
	if len(l.Items) != 0 {
		t.Fatalf("bad input stored %d objects", len(l.Items))
	}
}

func TestWatch(t *testing.T) {
	e := newEnv(t, 1, func(c *raftstore.Config) {
		c.Watch.HistorySize = 50
		c.Watch.ProgressInterval = 200 * time.Millisecond
	})
	const base = "/api/v1/namespaces/default/configmaps"
	cm := func(name, tier string) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": name, "labels": map[string]any{"tier": tier}}}
	}
	var first corev1.ConfigMap
	decodeInto(t, e.must(201, "POST", base, cm("a", "front")), &first)
	// From "now" (resourceVersion 0): the existing object first.
	w0 := e.watch(0, base+"?watch=true&resourceVersion=0")
	if ev, _ := w0.next(t, 5*time.Second); ev.Type != "ADDED" || objMeta(t, ev.Object).Name != "a" {
		t.Fatalf("initial event: %+v", ev)
	}
	// From a resourceVersion, with a label selector: moving out of the
	// selection is DELETED, back in ADDED.
	w := e.watch(0, base+"?watch=true&labelSelector=tier%3Dfront&resourceVersion="+first.ResourceVersion)
	e.must(201, "POST", base, cm("b", "front"))
	e.must(201, "POST", base, cm("c", "back"))
	patch := func(name, body string) {
		code, b, _ := e.raw(0, "PATCH", base+"/"+name, req{token: e.token, ct: "application/merge-patch+json", body: []byte(body)})
		if code != 200 {
			t.Fatalf("patch: %d %s", code, b)
		}
	}
	patch("b", `{"metadata":{"labels":{"tier":"back"}}}`)
	patch("c", `{"metadata":{"labels":{"tier":"front"}}}`)
	patch("c", `{"data":{"x":"1"}}`)
	e.must(200, "DELETE", base+"/c", nil)
	want := []string{"ADDED b", "DELETED b", "ADDED c", "MODIFIED c", "DELETED c"}
	var got []string
	var lastRV string
	for len(got) < len(want) {
		ev, ok := w.next(t, 5*time.Second)
		if !ok {
			t.Fatal("watch ended early")
		}
		m := objMeta(t, ev.Object)
		got = append(got, ev.Type+" "+m.Name)
		if m.ResourceVersion <= lastRV && len(m.ResourceVersion) <= len(lastRV) {
			t.Fatalf("resourceVersion went back: %s after %s", m.ResourceVersion, lastRV)
		}
		lastRV = m.ResourceVersion
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events: %v, want %v", got, want)
	}
	// Bookmarks on an idle watch when asked.
	wb := e.watch(0, base+"?watch=true&allowWatchBookmarks=true&resourceVersion="+lastRV)
	if ev, _ := wb.next(t, 5*time.Second); ev.Type != "BOOKMARK" || objMeta(t, ev.Object).ResourceVersion == "" {
		t.Fatalf("bookmark: %+v", ev)
	}
	// A resourceVersion older than the history: 410 Gone as an ERROR event.
	for i := 0; i < 80; i++ {
		patch("a", fmt.Sprintf(`{"data":{"n":"%d"}}`, i))
	}
	wg := e.watch(0, base+"?watch=true&resourceVersion="+first.ResourceVersion)
	ev, _ := wg.next(t, 5*time.Second)
	if ev.Type != "ERROR" {
		t.Fatalf("compacted watch: %+v", ev)
	}
	var st metav1.Status
	decodeInto(t, ev.Object, &st)
	if st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
		t.Fatalf("compacted status: %+v", st)
	}
	// Table watch, as kubectl get -w asks.
	wt := e.watchAccept(0, base+"?watch=true&resourceVersion=0", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	ev, _ = wt.next(t, 5*time.Second)
	var tbl metav1.Table
	decodeInto(t, ev.Object, &tbl)
	if ev.Type != "ADDED" || tbl.Kind != "Table" || len(tbl.Rows) != 1 {
		t.Fatalf("table watch event: %s %s", ev.Type, ev.Object)
	}
}

// Client certificates from the cluster CA authenticate: CN is the user, O
// the groups.
func TestClientCertificates(t *testing.T) {
	e := newEnv(t, 1, nil)
	ca, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	serverCert, _, _, err := ca.Issue("server", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(e.srvs[0])
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	hs.StartTLS()
	defer hs.Close()
	get := func(cert *tls.Certificate, path string) int {
		t.Helper()
		tc := &tls.Config{RootCAs: ca.Pool()}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	admin, _, _, _ := ca.Issue("root", nil, "system:masters")
	alice, _, _, _ := ca.Issue("alice", nil, "team")
	other, _ := pki.NewCA("someone else")
	mallory, _, _, _ := other.Issue("mallory", nil, "system:masters")
	if code := get(&admin, "/api/v1/secrets"); code != 200 {
		t.Fatalf("system:masters certificate: %d", code)
	}
	if code := get(&alice, "/api/v1/secrets"); code != 403 {
		t.Fatalf("alice without bindings: %d", code)
	}
	if code := get(nil, "/api/v1/secrets"); code != 401 {
		t.Fatalf("no certificate: %d", code)
	}
	e.must(201, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", map[string]any{
		"metadata": map[string]any{"name": "team-view"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
		"subjects": []any{map[string]any{"kind": "Group", "name": "team", "apiGroup": "rbac.authorization.k8s.io"}}})
	e.eventually(5*time.Second, func() error {
		if code := get(&alice, "/api/v1/pods"); code != 200 {
			return fmt.Errorf("alice with a group binding: %d", code)
		}
		return nil
	})
	// A certificate from another CA is never taken (Go's client does not
	// even offer it to a server asking for this CA; then it is 401).
	tc := &tls.Config{RootCAs: ca.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory, nil }}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	if resp, err := c.Get(hs.URL + "/api/v1/secrets"); err == nil {
		resp.Body.Close()
		t.Fatalf("a foreign certificate was accepted: %d", resp.StatusCode)
	}
	if code := get(&mallory, "/api/v1/secrets"); code != 401 {
		t.Fatalf("foreign certificate not offered: %d", code)
	}
}

// What kubectl describe and node agents rely on: events selected by their
// involved object, and a node's status written through nodes/status.
func TestEventsAndNodeStatus(t *testing.T) {
	e := newEnv(t, 1, nil)
	ev := func(name, obj string) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": name}, "type": "Normal", "reason": "Pulled", "message": "pulled",
			"involvedObject": map[string]any{"kind": "Pod", "namespace": "default", "name": obj, "uid": "u-" + obj}}
	}
	e.must(201, "POST", "/api/v1/namespaces/default/events", ev("e1", "web"))
	e.must(201, "POST", "/api/v1/namespaces/default/events", ev("e2", "db"))
	var l corev1.EventList
	decodeInto(t, e.must(200, "GET", "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb,involvedObject.namespace%3Ddefault,involvedObject.uid%3Du-web", nil), &l)
	if len(l.Items) != 1 || l.Items[0].Name != "e1" {
		t.Fatalf("events for web: %+v", l.Items)
	}
	e.must(201, "POST", "/api/v1/nodes", map[string]any{"metadata": map[string]any{"name": "n1", "labels": map[string]any{"node-role.kubernetes.io/worker": ""}}})
	var n corev1.Node
	decodeInto(t, e.must(200, "GET", "/api/v1/nodes/n1", nil), &n)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "AgentReady"}}
	n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	n.Spec.Unschedulable = true // ignored through /status
	decodeInto(t, e.must(200, "PUT", "/api/v1/nodes/n1/status", n), &n)
	if len(n.Status.Conditions) != 1 || n.Spec.Unschedulable {
		t.Fatalf("node status update: %+v %+v", n.Status.Conditions, n.Spec)
	}
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	if ip, sub, err := net.ParseCIDR(n.Spec.PodCIDR); err != nil || !cluster.Contains(ip) || sub.Mask.String() != net.CIDRMask(24, 32).String() {
		t.Fatalf("first node's pod CIDR: %q", n.Spec.PodCIDR)
	}
	var n2 corev1.Node
	decodeInto(t, e.must(201, "POST", "/api/v1/nodes", map[string]any{"metadata": map[string]any{"name": "n2"}}), &n2)
	if n2.Spec.PodCIDR == "" || n2.Spec.PodCIDR == n.Spec.PodCIDR || len(n2.Spec.PodCIDRs) != 1 {
		t.Fatalf("second node's pod CIDR: %q (first %q)", n2.Spec.PodCIDR, n.Spec.PodCIDR)
	}
	// A node asking for a taken subnet is refused; a freed one can be had.
	taken := map[string]any{"metadata": map[string]any{"name": "n3"}, "spec": map[string]any{"podCIDR": n2.Spec.PodCIDR}}
	e.must(422, "POST", "/api/v1/nodes", taken)
	e.must(200, "DELETE", "/api/v1/nodes/n2", nil)
	decodeInto(t, e.must(201, "POST", "/api/v1/nodes", taken), &n2)
	var nl corev1.NodeList
	decodeInto(t, e.must(200, "GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse", nil), &nl)
	if len(nl.Items) != 2 {
		t.Fatalf("nodes by spec.unschedulable: %d", len(nl.Items))
	}
	// A pod bound to an existing node is deleted gracefully: marked, and
	// gone once its agent deletes it with grace period 0.
	e.must(201, "POST", "/api/v1/namespaces/default/pods", pod("p", nil))
	e.must(201, "POST", "/api/v1/namespaces/default/pods/p/binding", map[string]any{"target": map[string]any{"kind": "Node", "name": "n1"}})
	var p corev1.Pod
	decodeInto(t, e.must(202, "DELETE", "/api/v1/namespaces/default/pods/p", nil), &p)
	if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("graceful delete: %+v", p.ObjectMeta)
	}
	e.must(200, "DELETE", "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0", nil)
	e.must(404, "GET", "/api/v1/namespaces/default/pods/p", nil)
}

// Deleting an owner follows propagationPolicy for its dependents.
func TestDeletePropagation(t *testing.T) {
	e := newEnv(t, 1, nil)
	owned := func(kindPath, name string, owner metav1.Object, ownerKind, apiVersion string, body map[string]any) metav1.Object {
		t.Helper()
		md := body["metadata"].(map[string]any)
		md["name"] = name
		md["ownerReferences"] = []any{map[string]any{"apiVersion": apiVersion, "kind": ownerKind, "name": owner.GetName(), "uid": string(owner.GetUID())}}
		var out metav1.ObjectMeta
		var obj struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		decodeInto(t, e.must(201, "POST", kindPath, body), &obj)
		out = obj.Metadata
		return &out
	}
	chain := func(name string) {
		t.Helper()
		var d appsv1.Deployment
		decodeInto(t, e.must(201, "POST", "/apis/apps/v1/namespaces/default/deployments", deployment(name, 1)), &d)
		rsBody := deployment(name+"-rs", 1)
		rsBody["kind"] = "ReplicaSet"
		rs := owned("/apis/apps/v1/namespaces/default/replicasets", name+"-rs", &d, "Deployment", "apps/v1", rsBody)
		owned("/api/v1/namespaces/default/pods", name+"-pod", rs, "ReplicaSet", "apps/v1", pod("", nil))
	}
	chain("bg")
	e.must(200, "DELETE", "/apis/apps/v1/namespaces/default/deployments/bg", nil) // Background by default
	e.eventually(10*time.Second, func() error {
		if code, _ := e.do("GET", "/api/v1/namespaces/default/pods/bg-pod", nil); code != 404 {
			return fmt.Errorf("dependent pod still there")
		}
		if code, _ := e.do("GET", "/apis/apps/v1/namespaces/default/replicasets/bg-rs", nil); code != 404 {
			return fmt.Errorf("dependent replicaset still there")
		}
		return nil
	})
	chain("fg")
	e.must(200, "DELETE", "/apis/apps/v1/namespaces/default/deployments/fg?propagationPolicy=Foreground", nil)
	e.must(404, "GET", "/api/v1/namespaces/default/pods/fg-pod", nil) // gone before the owner
	chain("or")
	e.must(200, "DELETE", "/apis/apps/v1/namespaces/default/deployments/or", map[string]any{"propagationPolicy": "Orphan"})
	var rs appsv1.ReplicaSet
	decodeInto(t, e.must(200, "GET", "/apis/apps/v1/namespaces/default/replicasets/or-rs", nil), &rs)
	if len(rs.OwnerReferences) != 0 {
		t.Fatalf("orphaned replicaset keeps its owner: %+v", rs.OwnerReferences)
	}
	e.must(200, "GET", "/api/v1/namespaces/default/pods/or-pod", nil) // the pod's owner (the RS) still exists
}
