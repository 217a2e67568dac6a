package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
)

func yamlJSON(t *testing.T, y string) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// servedMapper is the discovery result of a real API server.
func servedMapper(t *testing.T) *client.Mapper {
	t.Helper()
	c, _, err := client.NewFromKubeconfig(apiservertest.Start(t).Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Mapper(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mappingFor(t *testing.T, name string) client.Mapping {
	t.Helper()
	m, err := servedMapper(t).ResourceFor(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const lastApplied = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, team: a}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: web:1
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
      - name: sidecar
        image: proxy:1
`

// live is last-applied as the server keeps it: defaults filled in, status,
// and changes by others (a label, a third container from an injector).
const live = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  resourceVersion: "42"
  uid: u-1
  labels: {app: web, team: a, injected: "yes"}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: web:1
        imagePullPolicy: IfNotPresent
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
      - name: sidecar
        image: proxy:1
        imagePullPolicy: IfNotPresent
      - name: injected
        image: agent:1
status:
  replicas: 2
`

func TestThreeWayPatchStrategic(t *testing.T) {
	m := mappingFor(t, "deploy")
	original := yamlJSON(t, lastApplied)
	// The new manifest: label team dropped, web's image bumped and env B
	// dropped, the sidecar dropped, replicas left out.
	modified := yamlJSON(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  template:
    spec:
      containers:
      - name: web
        image: web:2
        env: [{name: A, value: "1"}]
`)
	current := yamlJSON(t, live)
	pt, patch, err := threeWayPatch(m, original, modified, current)
	if err != nil {
		t.Fatal(err)
	}
	if pt != types.StrategicMergePatchType {
		t.Fatalf("patch type %s", pt)
	}
	out, err := strategicpatch.StrategicMergePatch(current, patch, &appsv1.Deployment{})
	if err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	var d appsv1.Deployment
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app": "web", "injected": "yes"}; !reflect.DeepEqual(d.Labels, want) {
		t.Errorf("labels %v, want %v (team removed, injected kept)\npatch %s", d.Labels, want, patch)
	}
	// replicas was in the last applied configuration and is not now: it is
	// removed, as kubectl does (the server then defaults it).
	if d.Spec.Replicas != nil {
		t.Errorf("replicas %d, want unset\npatch %s", *d.Spec.Replicas, patch)
	}
	var got []string
	for _, c := range d.Spec.Template.Spec.Containers {
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		got = append(got, c.Name+":"+c.Image+":"+string(c.ImagePullPolicy)+":"+strings.Join(env, "+"))
	}
	// Containers merge by name: the sidecar apply owned is gone, the
	// injected one stays, server defaults stay.
	if want := "web:web:2:IfNotPresent:A injected:agent:1::"; strings.Join(got, " ") != want {
		t.Errorf("containers %v, want %v\npatch %s", strings.Join(got, " "), want, patch)
	}
	if d.Status.Replicas != 2 || d.ResourceVersion != "42" {
		t.Errorf("status or metadata the manifest does not own changed: %+v", d)
	}
}

func TestThreeWayPatchUnchangedAndMissingOriginal(t *testing.T) {
	m := mappingFor(t, "deploy")
	original := yamlJSON(t, lastApplied)
	// Server defaults and status are not changes. (A container added by
	// someone else would be: the patch then restates the order of the
	// containers, and kubectl too says "configured".)
	noInjected := strings.Replace(live, "      - name: injected\n        image: agent:1\n", "", 1)
	_, patch, err := threeWayPatch(m, original, original, yamlJSON(t, noInjected))
	if err != nil {
		t.Fatal(err)
	}
	if string(patch) != "{}" {
		t.Errorf("same manifest again: patch %s, want {}", patch)
	}
	// Without a last-applied configuration nothing can be known to be
	// removed: the patch only sets.
	modified := yamlJSON(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {app: web}}\nspec: {replicas: 3}\n")
	_, patch, err = threeWayPatch(m, nil, modified, yamlJSON(t, live))
	if err != nil {
		t.Fatal(err)
	}
	if string(patch) != `{"spec":{"replicas":3}}` {
		t.Errorf("no original: patch %s", patch)
	}
}

func TestThreeWayPatchCustomKind(t *testing.T) {
	m := client.Mapping{Group: "example.com", Version: "v1", Resource: "widgets", Kind: "Widget", Namespaced: true}
	original := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":1,"b":[1,2],"c":"x"}}`)
	modified := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":2,"b":[1]}}`)
	current := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","uid":"u"},"spec":{"a":1,"b":[1,2],"c":"x","d":true}}`)
	pt, patch, err := threeWayPatch(m, original, modified, current)
	if err != nil {
		t.Fatal(err)
	}
	if pt != types.MergePatchType {
		t.Errorf("a kind without Go types gets a JSON merge patch, got %s", pt)
	}
	out, err := jsonpatch.MergePatch(current, patch)
	if err != nil {
		t.Fatal(err)
	}
	var u unstructured.Unstructured
	if err := json.Unmarshal(out, &u.Object); err != nil {
		t.Fatal(err)
	}
	spec := u.Object["spec"].(map[string]any)
	if !reflect.DeepEqual(spec, map[string]any{"a": 2.0, "b": []any{1.0}, "d": true}) {
		t.Errorf("spec %v (patch %s)", spec, patch)
	}
}

func TestWithLastApplied(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "c", "annotations": map[string]any{lastAppliedAnnotation: "stale", "keep": "me"}},
		"data":     map[string]any{"k": "v"},
	}}
	annotated, modified, err := withLastApplied(obj)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"annotations":{"keep":"me"},"name":"c"}}` + "\n"
	if got := annotated.GetAnnotations()[lastAppliedAnnotation]; got != want {
		t.Errorf("annotation\n got %s\nwant %s", got, want)
	}
	var back map[string]any
	if err := json.Unmarshal(modified, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, annotated.Object) {
		t.Error("modified is not the annotated object")
	}
	if obj.GetAnnotations()[lastAppliedAnnotation] != "stale" {
		t.Error("the input object was changed")
	}
	plain := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}
	annotated, _, _ = withLastApplied(plain)
	if got := annotated.GetAnnotations()[lastAppliedAnnotation]; got != `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"annotations":{},"name":"c"}}`+"\n" {
		t.Errorf("no annotations before: %s", got)
	}
}
