package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/client/clienttest"
)

func newClient(t *testing.T) (*clienttest.Server, *client.Client) {
	t.Helper()
	srv := clienttest.NewServer(t, nil)
	c, err := client.New(srv.RESTConfig())
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
		"cm": "configmaps", "sa": "serviceaccounts",
		// Core wins a name two groups share, as kubectl resolves it.
		"ev": "events", "events": "events", "events.events.k8s.io": "events.events.k8s.io",
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

func TestDiscoveryIsCached(t *testing.T) {
	srv, c := newClient(t)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Mapper(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, r := range srv.Requests() {
		if r == "GET /api" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("GET /api sent %d times; discovery is cached per client", n)
	}
	c.ResetMapper()
	if _, err := c.Mapper(ctx); err != nil {
		t.Fatal(err)
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
	srv, c := newClient(t)
	ctx := context.Background()
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

	got, err := pods.Namespace("a").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLabels()["app"] != "web" {
		t.Errorf("get %v", got.Object)
	}
	gen, ok, _ := unstructured.NestedInt64(got.Object, "metadata", "generation")
	if !ok || gen != 1 {
		t.Errorf("integers decode as int64 (generation %v %v)", gen, ok)
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
		t.Errorf("list across namespaces: %d items, first %v/%v", len(all.Items), all.Items[0].GetAPIVersion(), all.Items[0].GetKind())
	}
	sel, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
	if err != nil || len(sel.Items) != 1 || sel.Items[0].GetName() != "db" {
		t.Errorf("label selector: %v %v", sel, err)
	}
	inA, err := pods.Namespace("a").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web"})
	if err != nil || len(inA.Items) != 1 {
		t.Errorf("field selector in a namespace: %v %v", inA, err)
	}

	// Update with a stale resourceVersion conflicts.
	stale := got.DeepCopy()
	stale.SetResourceVersion("12345")
	stale.SetLabels(map[string]string{"app": "web", "v": "2"})
	if _, err := pods.Namespace("a").Update(ctx, stale, metav1.UpdateOptions{}); !client.IsConflict(err) {
		t.Errorf("stale update: %v", err)
	}
	got.SetLabels(map[string]string{"app": "web", "v": "2"})
	if _, err := pods.Namespace("a").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
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

	grace := int64(0)
	if err := pods.Namespace("a").Delete(ctx, "web", &metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Namespace("a").Delete(ctx, "web", nil); !client.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
	if srv.Object("pods", "a", "web") != nil {
		t.Error("deleted pod still stored")
	}
	if _, err := pods.Get(ctx, "db", metav1.GetOptions{}); err == nil {
		t.Error("get of a namespaced object without a namespace must fail before sending")
	}
}

func TestScaleSubresource(t *testing.T) {
	srv, c := newClient(t)
	ctx := context.Background()
	srv.Seed(t, map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web", "namespace": "default"}, "spec": map[string]any{"replicas": int64(1)}})
	deploys := c.Resource(mapping(t, c, "deploy")).Namespace("default")
	sc, err := deploys.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}, "scale")
	if err != nil {
		t.Fatal(err)
	}
	if sc.GetKind() != "Scale" {
		t.Errorf("scale patch returned %s", sc.GetKind())
	}
	d, err := deploys.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas %d", r)
	}
	var patched bool
	for _, r := range srv.Requests() {
		patched = patched || r == "PATCH /apis/apps/v1/namespaces/default/deployments/web/scale"
	}
	if !patched {
		t.Errorf("scale went elsewhere: %v", srv.Requests())
	}
}

func TestTables(t *testing.T) {
	srv, c := newClient(t)
	ctx := context.Background()
	srv.Seed(t, pod("a", "web", nil).Object, pod("a", "db", nil).Object)
	pods := c.Resource(mapping(t, c, "pods")).Namespace("a")
	tbl, err := pods.ListTable(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.ColumnDefinitions) == 0 || len(tbl.Rows) != 2 || tbl.Rows[0].Cells[0] != "db" || tbl.ResourceVersion == "" {
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
	srv := clienttest.NewServer(t, nil)
	rc := srv.RESTConfig()
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
	rc = srv.RESTConfig()
	rc.CAData = nil
	c, _ = client.New(rc)
	if _, err := c.ServerVersion(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: %v", err)
	}
	rc.Insecure = true
	c, _ = client.New(rc)
	if v, err := c.ServerVersion(context.Background()); err != nil || v.GitVersion == "" {
		t.Errorf("insecure-skip-tls-verify: %v %v", v, err)
	}

	// A non-Status error body becomes a StatusError by HTTP code.
	c, _ = client.New(srv.RESTConfig())
	_, err = c.GetRaw(context.Background(), "/no/such/path")
	if !client.IsNotFound(err) {
		t.Errorf("404 path: %v", err)
	}
}

func TestWatchAgainstServer(t *testing.T) {
	srv, c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods := c.Resource(mapping(t, c, "pods")).Namespace("a")
	srv.Seed(t, pod("a", "one", nil).Object)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	srv.Seed(t, pod("a", "two", nil).Object, pod("b", "other", nil).Object)
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
		t.Errorf("events %v", got)
	}

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
