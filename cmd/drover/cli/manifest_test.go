package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func names(objs []manifestObject) string {
	parts := make([]string, len(objs))
	for i, o := range objs {
		parts[i] = fmt.Sprintf("%s/%s@%s", o.obj.GetKind(), o.obj.GetName(), filepath.Base(o.source))
	}
	return strings.Join(parts, " ")
}

func TestSplitManifest(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"multi-document YAML with empty and comment-only documents", `
---
apiVersion: v1
kind: Pod
metadata:
  name: a
---
# nothing here
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
spec:
  replicas: 2
...
`, "Pod/a@x Deployment/b@x"},
		{"document separator with a comment after it", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n--- # next\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n", "Pod/a@x Pod/b@x"},
		{"one JSON object", `  {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`, "Pod/a@x"},
		{"concatenated JSON objects", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}`, "Pod/a@x Pod/b@x"},
		{"kind List, nested", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: s}
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
`, "Service/s@x ConfigMap/c@x"},
		{"typed list whose items leave out kind", `{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"a"}}]}`, "Pod/a@x"},
		{"empty", "\n# just a comment\n", ""},
	} {
		objs, err := splitManifest("x", strings.NewReader(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := names(objs); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	objs, err := splitManifest("x", strings.NewReader("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\nspec: {replicas: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := objs[0].obj.Object["spec"].(map[string]any)["replicas"].(int64); !ok || r != 2 {
		t.Errorf("integers must decode as int64, got %T", objs[0].obj.Object["spec"].(map[string]any)["replicas"])
	}

	for _, tc := range []struct{ in, want string }{
		{"metadata: {name: a}\n", `error validating "x": error validating data: [apiVersion not set, kind not set]`},
		{"apiVersion: v1\nkind: Pod\nmetadata: [\n", "error parsing x"},
		{`{"apiVersion":"v1",`, "error parsing x"},
	} {
		_, err := splitManifest("x", strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	pod := func(n string) string { return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + n + "\n" }
	writeFile(t, dir, "b.yaml", pod("b"))
	writeFile(t, dir, "a.json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`)
	writeFile(t, dir, "c.yml", pod("c"))
	writeFile(t, dir, "README.md", "not a manifest")
	writeFile(t, dir, "sub/d.yaml", pod("d"))
	single := writeFile(t, t.TempDir(), "e.yaml", pod("e")+"---\n"+pod("f"))

	objs, err := readManifests([]string{dir}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "Pod/a@a.json Pod/b@b.yaml Pod/c@c.yml" {
		t.Errorf("directory: %s", got)
	}
	objs, err = readManifests([]string{dir, single}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "Pod/a@a.json Pod/b@b.yaml Pod/c@c.yml Pod/d@d.yaml Pod/e@e.yaml Pod/f@e.yaml" {
		t.Errorf("recursive directory and a file: %s", got)
	}
	objs, err = readManifests([]string{"-"}, false, strings.NewReader(pod("s")))
	if err != nil || names(objs) != "Pod/s@STDIN" {
		t.Errorf("stdin: %s %v", names(objs), err)
	}
	if _, err := readManifests([]string{filepath.Join(dir, "nope.yaml")}, false, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := readManifests(nil, false, nil); err == nil {
		t.Error("no -f must be an error")
	}
}
