package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
)

// restConfig reaches a real API server as its admin.
func restConfig(s *apiservertest.Server) *client.RESTConfig {
	return &client.RESTConfig{Host: s.URL, CAData: s.CA.CertPEM, BearerToken: s.Token}
}

func newClient(t *testing.T) (*apiservertest.Server, *client.Client) {
	t.Helper()
	srv := apiservertest.Start(t)
	c, err := client.New(restConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func mapping(t *testing.T, c *client.Client, name string) client.Mapping {
	t.Helper()
	m, err := c.Mapper(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mp, err := m.ResourceFor(name)
	if err != nil {
		t.Fatal(err)
	}
	return mp
}

// createNamespaces creates namespaces: the server refuses objects in a
// namespace that does not exist.
func createNamespaces(t *testing.T, c *client.Client, names ...string) {
	t.Helper()
	nss := c.Resource(mapping(t, c, "ns"))
	for _, n := range names {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": n}}}
		if _, err := nss.Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// create creates objects and fails the test on an error.
func create(t *testing.T, c *client.Client, resource string, objs ...*unstructured.Unstructured) {
	t.Helper()
	rc := c.Resource(mapping(t, c, resource))
	for _, o := range objs {
		if _, err := rc.Namespace(o.GetNamespace()).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDiscoveryMapper(t *testing.T) {
	_, c := newClient(t)
	m, err := c.Mapper(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for arg, want := range map[string]string{
		"pods": "pods", "pod": "pods", "po": "pods", "Pod": "pods", "PODS": "pods",
		"deploy": "deployments.apps", "deployment": "deployments.apps", "deployments.apps": "deployments.apps",
		"deploy.apps": "deployments.apps", "deployments.v1.apps": "deployments.apps",
		"svc": "services", "ns": "namespaces", "no": "nodes", "rs": "replicasets.apps", "ds": "daemonsets.apps",
		"cm": "configmaps", "sa": "serviceaccounts", "ev": "events", "ep": "endpoints", "secret": "secrets",
		"job": "jobs.batch", "leases": "leases.coordination.k8s.io", "clusterrole": "clusterroles.rbac.authorization.k8s.io",
	} {
		mp, err := m.ResourceFor(arg)
		if err != nil {
			t.Errorf("%s: %v", arg, err)
			continue
		}
		if mp.GroupResource() != want {
			t.Errorf("%s -> %s, want %s", arg, mp.GroupResource(), want)
		}
	}
	d, _ := m.ResourceFor("deploy")
	if d.KindName() != "deployment.apps" || !d.Namespaced || !d.HasSubresource("scale") || d.APIVersion() != "apps/v1" {
		t.Errorf("deployments mapping %+v", d)
	}
	if n, _ := m.ResourceFor("no"); n.Namespaced || n.KindName() != "node" {
		t.Errorf("nodes mapping %+v", n)
	}
	_, err = m.ResourceFor("foo")
	if !client.IsNoMatch(err) || err.Error() != `the server doesn't have a resource type "foo"` {
		t.Errorf("unknown resource: %v", err)
	}
	if _, err := m.ResourceFor("pods.apps"); !client.IsNoMatch(err) {
		t.Errorf("pods in the wrong group: %v", err)
	}
	if k, err := m.KindFor("apps/v1", "Deployment"); err != nil || k.Resource != "deployments" {
		t.Errorf("KindFor: %+v %v", k, err)
	}
	if _, err := m.KindFor("apps/v2", "Deployment"); err == nil || err.Error() != `no matches for kind "Deployment" in version "apps/v2"` {
		t.Errorf("KindFor unknown version: %v", err)
	}
	var all []string
	for _, mp := range m.Category("all") {
		all = append(all, mp.Resource)
	}
	if strings.Join(all, ",") != "pods,services,deployments,replicasets,daemonsets,jobs" {
		t.Errorf("category all: %v", all)
	}
}

// TestMapperPrefersCore resolves a name two groups share. drover serves no
// such pair, so the server's own mappings get a copy of events in
// events.k8s.io, as a Kubernetes server serves them.
func TestMapperPrefersCore(t *testing.T) {
	_, c := newClient(t)
	served, err := c.Mapper(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := served.ResourceFor("events")
	if err != nil {
		t.Fatal(err)
	}
	other := ev
	other.Group = "events.k8s.io"
	// Discovery lists core first, then the groups; core wins the short
	// name, singular and plural, as in kubectl.
	m := client.NewMapper(append(served.Mappings(), other))
	for arg, want := range map[string]string{"ev": "events", "events": "events", "event": "events", "events.events.k8s.io": "events.events.k8s.io"} {
		if mp, err := m.ResourceFor(arg); err != nil || mp.GroupResource() != want {
			t.Errorf("%s -> %s %v, want %s", arg, mp.GroupResource(), err, want)
		}
	}
}

// countingServer serves the real API server's handler on a second HTTPS
// listener and counts the requests it passes on, by "METHOD path".
type countingServer struct {
	mu sync.Mutex
	n  map[string]int
}

func (cs *countingServer) count(req string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.n[req]
}

func startCounting(t *testing.T, srv *apiservertest.Server) (*countingServer, *client.RESTConfig) {
	t.Helper()
	cs := &countingServer{n: map[string]int{}}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		cs.n[r.Method+" "+r.URL.Path]++
		cs.mu.Unlock()
		srv.API.ServeHTTP(w, r)
	}))
	cert, _, _, err := srv.CA.Issue("apiserver", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	rc := restConfig(srv)
	rc.Host = hs.URL
	return cs, rc
}

func TestDiscoveryIsCached(t *testing.T) {
	srv := apiservertest.Start(t)
	cs, rc := startCounting(t, srv)
	c, err := client.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := c.Mapper(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs.count("GET /api"); n != 1 {
		t.Errorf("GET /api sent %d times; discovery is cached per client", n)
	}
	c.ResetMapper()
	if _, err := c.Mapper(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cs.count("GET /api"); n != 2 {
		t.Errorf("GET /api sent %d times; ResetMapper discovers again", n)
	}
}

func pod(ns, name string, lbls map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": lbls},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}},
	}}
}

func TestVerbs(t *testing.T) {
	_, c := newClient(t)
	ctx := context.Background()
	createNamespaces(t, c, "a", "b")
	pods := c.Resource(mapping(t, c, "po"))

	created, err := pods.Namespace("a").Create(ctx, pod("", "web", map[string]any{"app": "web"}), metav1.CreateOptions{FieldManager: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if created.GetNamespace() != "a" || created.GetUID() == "" || created.GetResourceVersion() == "" {
		t.Errorf("created %v", created.Object["metadata"])
	}
	// The namespace may come from the object alone.
	if _, err := pods.Create(ctx, pod("b", "db", map[string]any{"app": "db"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pods.Namespace("a").Create(ctx, pod("", "web", nil), metav1.CreateOptions{})
	if !client.IsAlreadyExists(err) || err.Error() != `pods "web" already exists` {
		t.Errorf("second create: %v", err)
	}
	_, err = pods.Namespace("nowhere").Create(ctx, pod("", "web", nil), metav1.CreateOptions{})
	if !client.IsNotFound(err) || err.Error() != `namespaces "nowhere" not found` {
		t.Errorf("create in a missing namespace: %v", err)
	}

	got, err := pods.Namespace("a").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLabels()["app"] != "web" {
		t.Errorf("get %v", got.Object)
	}
	// The server defaults the grace period.
	grace, ok, _ := unstructured.NestedInt64(got.Object, "spec", "terminationGracePeriodSeconds")
	if !ok || grace != 30 {
		t.Errorf("integers decode as int64 (terminationGracePeriodSeconds %v %v)", grace, ok)
	}
	_, err = pods.Namespace("a").Get(ctx, "nope", metav1.GetOptions{})
	var se *client.StatusError
	if !client.IsNotFound(err) || !errors.As(err, &se) || se.Status.Code != 404 || se.Error() != `pods "nope" not found` {
		t.Errorf("get missing: %#v", err)
	}

	all, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 2 || all.Items[0].GetKind() != "Pod" || all.Items[0].GetAPIVersion() != "v1" {
		t.Fatalf("list across namespaces: %d items", len(all.Items))
	}
	if all.GetResourceVersion() == "" {
		t.Error("a list carries the store revision as its resourceVersion")
	}
	sel, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
	if err != nil || len(sel.Items) != 1 || sel.Items[0].GetName() != "db" {
		t.Errorf("label selector: %v %v", sel, err)
	}
	inA, err := pods.Namespace("a").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web"})
	if err != nil || len(inA.Items) != 1 {
		t.Errorf("field selector in a namespace: %v %v", inA, err)
	}
	if _, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app in (x"}); client.Reason(err) != metav1.StatusReasonBadRequest {
		t.Errorf("bad label selector: %v", err)
	}

	// Update with a stale resourceVersion conflicts.
	stale := got.DeepCopy()
	stale.SetResourceVersion("1")
	stale.SetLabels(map[string]string{"app": "web", "v": "2"})
	if _, err := pods.Namespace("a").Update(ctx, stale, metav1.UpdateOptions{}); !client.IsConflict(err) {
		t.Errorf("stale update: %v", err)
	}
	got.SetLabels(map[string]string{"app": "web", "v": "2"})
	updated, err := pods.Namespace("a").Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetResourceVersion() == got.GetResourceVersion() {
		t.Error("an update moves the resourceVersion on")
	}

	for _, p := range []struct {
		pt   types.PatchType
		data string
		tier string
	}{
		{types.MergePatchType, `{"metadata":{"labels":{"tier":"merge"}}}`, "merge"},
		{types.JSONPatchType, `[{"op":"replace","path":"/metadata/labels/tier","value":"json"}]`, "json"},
		{types.StrategicMergePatchType, `{"metadata":{"labels":{"tier":"smp"}}}`, "smp"},
	} {
		out, err := pods.Namespace("a").Patch(ctx, "web", p.pt, []byte(p.data), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p.pt, err)
		}
		if out.GetLabels()["tier"] != p.tier || out.GetLabels()["v"] != "2" {
			t.Errorf("%s patch: labels %v", p.pt, out.GetLabels())
		}
	}

	zero := int64(0)
	if err := pods.Namespace("a").Delete(ctx, "web", &metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Namespace("a").Delete(ctx, "web", nil); !client.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := pods.Namespace("a").Get(ctx, "web", metav1.GetOptions{}); !client.IsNotFound(err) {
		t.Errorf("deleted pod still stored: %v", err)
	}
	if _, err := pods.Get(ctx, "db", metav1.GetOptions{}); err == nil {
		t.Error("get of a namespaced object without a namespace must fail before sending")
	}

	// DeleteCollection by selector.
	if err := pods.Namespace("b").DeleteCollection(ctx, nil, metav1.ListOptions{LabelSelector: "app=db"}); err != nil {
		t.Fatal(err)
	}
	if l, err := pods.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("after deletecollection: %v %v", l, err)
	}
}

func deployment(ns, name string, replicas int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}},
			},
		},
	}}
}

func TestScaleSubresource(t *testing.T) {
	_, c := newClient(t)
	ctx := context.Background()
	create(t, c, "deploy", deployment("default", "web", 1))
	deploys := c.Resource(mapping(t, c, "deploy")).Namespace("default")
	sc, err := deploys.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}, "scale")
	if err != nil {
		t.Fatal(err)
	}
	if sc.GetKind() != "Scale" || sc.GetAPIVersion() != "autoscaling/v1" {
		t.Errorf("scale patch returned %s %s", sc.GetAPIVersion(), sc.GetKind())
	}
	if r, _, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas"); r != 3 {
		t.Errorf("Scale replicas %d", r)
	}
	got, err := deploys.Get(ctx, "web", metav1.GetOptions{}, "scale")
	if err != nil || got.GetKind() != "Scale" {
		t.Fatalf("get scale: %v %v", got, err)
	}
	if sel, _, _ := unstructured.NestedString(got.Object, "status", "selector"); sel != "app=web" {
		t.Errorf("Scale selector %q", sel)
	}
	d, err := deploys.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas %d", r)
	}
	if g := d.GetGeneration(); g != 2 {
		t.Errorf("a scale is a spec change: generation %d, want 2", g)
	}
	if _, err := deploys.Patch(ctx, "nope", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}, "scale"); !client.IsNotFound(err) {
		t.Errorf("scale of a missing deployment: %v", err)
	}
}

func TestTables(t *testing.T) {
	_, c := newClient(t)
	ctx := context.Background()
	createNamespaces(t, c, "a")
	create(t, c, "pods", pod("a", "web", nil), pod("a", "db", nil))
	pods := c.Resource(mapping(t, c, "pods")).Namespace("a")
	tbl, err := pods.ListTable(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, cd := range tbl.ColumnDefinitions {
		cols = append(cols, cd.Name)
	}
	// kubectl's pod columns; the last four are for -o wide.
	if got := strings.Join(cols, ","); got != "Name,Ready,Status,Restarts,Age,IP,Node,Nominated Node,Readiness Gates" {
		t.Errorf("columns %s", got)
	}
	if len(tbl.Rows) != 2 || tbl.Rows[0].Cells[0] != "db" || tbl.Rows[0].Cells[2] != "Pending" || tbl.ResourceVersion == "" {
		t.Errorf("list table %+v", tbl)
	}
	one, err := pods.GetTable(ctx, "web", metav1.GetOptions{})
	if err != nil || len(one.Rows) != 1 || one.Rows[0].Cells[0] != "web" {
		t.Errorf("get table %+v %v", one, err)
	}
	if _, err := pods.GetTable(ctx, "nope", metav1.GetOptions{}); !client.IsNotFound(err) {
		t.Errorf("get table of a missing object: %v", err)
	}
}

func TestAuthAndErrors(t *testing.T) {
	srv := apiservertest.Start(t)
	rc := restConfig(srv)
	rc.BearerToken = "wrong"
	c, err := client.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Mapper(context.Background())
	if !client.IsUnauthorized(err) {
		t.Errorf("wrong token: %v", err)
	}

	// Without the CA the server certificate is not trusted.
	rc = restConfig(srv)
	rc.CAData = nil
	c, _ = client.New(rc)
	if _, err := c.ServerVersion(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: %v", err)
	}
	rc.Insecure = true
	c, _ = client.New(rc)
	if v, err := c.ServerVersion(context.Background()); err != nil || v.GitVersion != apiserver.KubernetesVersion+"+drover-test" {
		t.Errorf("insecure-skip-tls-verify: %v %v", v, err)
	}

	c, _ = client.New(restConfig(srv))
	_, err = c.GetRaw(context.Background(), "/no/such/path")
	if !client.IsNotFound(err) {
		t.Errorf("404 path: %v", err)
	}
	if b, err := c.GetRaw(context.Background(), "/healthz"); err != nil || string(b) != "ok" {
		t.Errorf("/healthz: %q %v", b, err)
	}
}

func TestWatchAgainstServer(t *testing.T) {
	_, c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	createNamespaces(t, c, "a", "b")
	pods := c.Resource(mapping(t, c, "pods")).Namespace("a")
	create(t, c, "pods", pod("a", "one", nil))
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	create(t, c, "pods", pod("a", "two", nil), pod("b", "other", nil))
	if err := pods.Delete(ctx, "one", nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev := range w.Events() {
		got = append(got, string(ev.Type)+" "+ev.Object.GetName())
		if len(got) == 2 {
			break
		}
	}
	if strings.Join(got, ",") != "ADDED two,DELETED one" {
		t.Errorf("events %v (%v)", got, w.Err())
	}

	// Without a resourceVersion the current objects come first, as ADDED.
	tw, err := pods.WatchTable(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-tw.Events()
	if ev.Type != watch.Added || len(ev.Object.Rows) != 1 || ev.Object.Rows[0].Cells[0] != "two" {
		t.Errorf("table event %+v", ev)
	}
	tw.Stop()
	if _, ok := <-tw.Events(); ok {
		t.Error("events still open after Stop")
	}
	if tw.Err() != nil {
		t.Errorf("stopped watch reports %v", tw.Err())
	}
}

// TestWatchSelectorsAndTables watches from a resourceVersion with a field
// selector, as Tables: only later changes to the selected object come.
func TestWatchSelectorsAndTables(t *testing.T) {
	_, c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cms := c.Resource(mapping(t, c, "cm")).Namespace("default")
	cm := func(name, v string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": "default"}, "data": map[string]any{"v": v}}}
	}
	create(t, c, "cm", cm("a", "1"), cm("b", "1"))
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.WatchTable(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion(), FieldSelector: "metadata.name=a"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, name := range []string{"b", "a"} {
		if _, err := cms.Patch(ctx, name, types.MergePatchType, []byte(`{"data":{"v":"2"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ev, ok := <-w.Events()
	if !ok {
		t.Fatalf("watch ended: %v", w.Err())
	}
	if ev.Type != watch.Modified || ev.Object.Kind != "Table" || len(ev.Object.Rows) != 1 || ev.Object.Rows[0].Cells[0] != "a" {
		t.Errorf("first event %s %+v, want MODIFIED a as a Table", ev.Type, ev.Object)
	}
	if len(ev.Object.ColumnDefinitions) == 0 || ev.Object.ColumnDefinitions[0].Name != "Name" {
		t.Errorf("table event columns %+v", ev.Object.ColumnDefinitions)
	}
}

func TestWatchStopsOnCancel(t *testing.T) {
	_, c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := c.Resource(mapping(t, c, "sa")).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.namespace=default"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-w.Events(); ev.Type != watch.Added || ev.Object.GetName() != "default" {
		t.Fatalf("first event %+v", ev)
	}
	cancel()
	for range w.Events() {
	}
	if err := w.Err(); err != nil {
		t.Errorf("cancel is not an error: %v", err)
	}
}

// TestWatchBookmarks: the client asks for bookmarks, and an idle watch
// gets them (the store sends progress every few seconds).
func TestWatchBookmarks(t *testing.T) {
	t.Parallel()
	_, c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := c.Resource(mapping(t, c, "cm")).Namespace("default").Watch(ctx, metav1.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.Events() {
		if ev.Type == watch.Bookmark {
			if ev.Object.GetResourceVersion() == "" || ev.Object.GetKind() != "ConfigMap" {
				t.Errorf("bookmark %v", ev.Object.Object)
			}
			return
		}
	}
	t.Errorf("no bookmark before the watch ended: %v", w.Err())
}

func TestWatchRefused(t *testing.T) {
	srv, c := newClient(t)
	pods := c.Resource(mapping(t, c, "pods")).Namespace("default")
	_, err := pods.Watch(context.Background(), metav1.ListOptions{ResourceVersion: "abc"})
	if client.Reason(err) != metav1.StatusReasonBadRequest || !strings.Contains(err.Error(), "resourceVersion") {
		t.Errorf("watch from a bad resourceVersion: %v", err)
	}
	rc := restConfig(srv)
	rc.BearerToken = "wrong"
	bad, _ := client.New(rc)
	if _, err := bad.Resource(pods.Mapping()).Namespace("default").Watch(context.Background(), metav1.ListOptions{}); !client.IsUnauthorized(err) {
		t.Errorf("watch with a wrong token: %v", err)
	}
}
