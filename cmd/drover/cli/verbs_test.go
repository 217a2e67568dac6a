package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
)

// env is a real API server, a kubeconfig for it (the admin, namespace
// "default"), and a client to set up and inspect objects with.
type env struct {
	srv        *apiservertest.Server
	c          *client.Client
	mapper     *client.Mapper
	kubeconfig string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := apiservertest.Start(t)
	c, _, err := client.NewFromKubeconfig(srv.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Mapper(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, c: c, mapper: m, kubeconfig: srv.Kubeconfig}
}

// ageRE matches an AGE cell of a table. The server stamps objects with
// the real time, so an object made in a test may be a second old when it
// is listed.
var ageRE = regexp.MustCompile(`\b[0-9]s\b`)

// ages makes every age below 10s read 0s; the width stays the same.
func ages(s string) string { return ageRE.ReplaceAllString(s, "0s") }

// run executes the drover CLI with args and returns stdout (ages
// normalised), stderr and the text main would print for the error ("" for
// none).
func (e *env) run(t *testing.T, stdin string, args ...string) (string, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(Streams{Out: &out, Err: &errOut})
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--kubeconfig", e.kubeconfig))
	err := root.ExecuteContext(context.Background())
	msg := ""
	if err != nil {
		msg = ErrorText(err)
	}
	return ages(out.String()), errOut.String(), msg
}

// resource is the client for objects of apiVersion/kind in ns.
func (e *env) resource(t *testing.T, apiVersion, kind, ns string) client.ResourceClient {
	t.Helper()
	m, err := e.mapper.KindFor(apiVersion, kind)
	if err != nil {
		t.Fatal(err)
	}
	return e.c.Resource(m).Namespace(ns)
}

// create creates objects through the API, as another client would.
func (e *env) create(t *testing.T, objs ...map[string]any) {
	t.Helper()
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o}
		if _, err := e.resource(t, u.GetAPIVersion(), u.GetKind(), u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// object reads an object, nil if there is none.
func (e *env) object(t *testing.T, apiVersion, kind, ns, name string) map[string]any {
	t.Helper()
	u, err := e.resource(t, apiVersion, kind, ns).Get(context.Background(), name, metav1.GetOptions{})
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u.Object
}

func (e *env) patch(t *testing.T, apiVersion, kind, ns, name, patch string) {
	t.Helper()
	if _, err := e.resource(t, apiVersion, kind, ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func obj(apiVersion, kind, ns, name string, labels map[string]any, rest map[string]any) map[string]any {
	meta := map[string]any{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	if labels != nil {
		meta["labels"] = labels
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	for k, v := range rest {
		o[k] = v
	}
	return o
}

func namespace(name string) map[string]any { return obj("v1", "Namespace", "", name, nil, nil) }

func podObj(ns, name string, labels map[string]any) map[string]any {
	return obj("v1", "Pod", ns, name, labels, map[string]any{
		"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}},
	})
}

func deployObj(ns, name string, replicas int64) map[string]any {
	return obj("apps/v1", "Deployment", ns, name, nil, map[string]any{"spec": map[string]any{
		"replicas": replicas,
		"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
		"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": name}},
			"spec":     map[string]any{"containers": []any{map[string]any{"name": name, "image": name + ":1"}}},
		},
	}})
}

func configMapObj(ns, name string, labels map[string]any, data map[string]any) map[string]any {
	var rest map[string]any
	if data != nil {
		rest = map[string]any{"data": data}
	}
	return obj("v1", "ConfigMap", ns, name, labels, rest)
}

// writeFile writes content under dir and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
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

func TestGet(t *testing.T) {
	e := newEnv(t)
	out, errOut, msg := e.run(t, "", "get", "pods")
	if out != "" || errOut != "No resources found in default namespace.\n" || msg != "" {
		t.Errorf("empty namespace: %q %q %q", out, errOut, msg)
	}
	if _, errOut, _ = e.run(t, "", "get", "po", "-A"); errOut != "No resources found\n" {
		t.Errorf("empty, all namespaces: %q", errOut)
	}
	if _, errOut, _ = e.run(t, "", "get", "nodes"); errOut != "No resources found\n" {
		t.Errorf("empty, cluster-scoped: %q", errOut)
	}
	if _, errOut, _ = e.run(t, "", "get", "pods", "-n", "x"); errOut != "No resources found in x namespace.\n" {
		t.Errorf("empty -n x (no such namespace): %q", errOut)
	}

	e.create(t,
		namespace("other"),
		podObj("default", "web", map[string]any{"app": "web"}),
		podObj("default", "db", map[string]any{"app": "db"}),
		podObj("other", "cache", nil),
		// A fixed address keeps the table stable; the server allocates one otherwise.
		obj("v1", "Service", "default", "web", nil, map[string]any{"spec": map[string]any{
			"clusterIP": "10.96.0.50", "selector": map[string]any{"app": "web"},
			"ports": []any{map[string]any{"port": int64(80)}},
		}}),
		deployObj("default", "web", 2),
	)
	const pods = "NAME   READY   STATUS    RESTARTS   AGE\n" +
		"db     0/1     Pending   0          0s\n" +
		"web    0/1     Pending   0          0s\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "pods"}, pods},
		{[]string{"get", "pods", "--no-headers"}, "db    0/1   Pending   0     0s\nweb   0/1   Pending   0     0s\n"},
		{[]string{"get", "pods", "-l", "app=web"}, "NAME   READY   STATUS    RESTARTS   AGE\nweb    0/1     Pending   0          0s\n"},
		{[]string{"get", "pods", "-l", "app in (web,db),app!=web"}, "NAME   READY   STATUS    RESTARTS   AGE\ndb     0/1     Pending   0          0s\n"},
		{[]string{"get", "pods", "--field-selector", "metadata.name=db"}, "NAME   READY   STATUS    RESTARTS   AGE\ndb     0/1     Pending   0          0s\n"},
		{[]string{"get", "pods", "-A", "--field-selector", "status.phase=Pending,metadata.namespace!=default"}, "NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE\nother       cache   0/1     Pending   0          0s\n"},
		{[]string{"get", "pods", "-o", "wide"}, "NAME   READY   STATUS    RESTARTS   AGE   IP       NODE     NOMINATED NODE   READINESS GATES\n" +
			"db     0/1     Pending   0          0s    <none>   <none>   <none>           <none>\n" +
			"web    0/1     Pending   0          0s    <none>   <none>   <none>           <none>\n"},
		{[]string{"get", "pods", "-A"}, "NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE\n" +
			"default     db      0/1     Pending   0          0s\n" +
			"default     web     0/1     Pending   0          0s\n" +
			"other       cache   0/1     Pending   0          0s\n"},
		{[]string{"get", "pods", "-n", "other"}, "NAME    READY   STATUS    RESTARTS   AGE\ncache   0/1     Pending   0          0s\n"},
		{[]string{"get", "pod", "web", "db"}, "NAME   READY   STATUS    RESTARTS   AGE\nweb    0/1     Pending   0          0s\ndb     0/1     Pending   0          0s\n"},
		{[]string{"get", "deploy/web"}, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    0/2     0            0           0s\n"},
		{[]string{"get", "deploy", "-o", "wide"}, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES   SELECTOR\nweb    0/2     0            0           0s    web          web:1    app=web\n"},
		{[]string{"get", "deploy/web", "--show-kind"}, "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\ndeployment.apps/web   0/2     0            0           0s\n"},
		{[]string{"get", "po,svc"}, "NAME      READY   STATUS    RESTARTS   AGE\n" +
			"pod/db    0/1     Pending   0          0s\n" +
			"pod/web   0/1     Pending   0          0s\n\n" +
			"NAME                 TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n" +
			"service/kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   0s\n" +
			"service/web          ClusterIP   10.96.0.50   <none>        80/TCP    0s\n"},
		{[]string{"get", "pod/web", "deploy/web"}, "NAME      READY   STATUS    RESTARTS   AGE\npod/web   0/1     Pending   0          0s\n\n" +
			"NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\ndeployment.apps/web   0/2     0            0           0s\n"},
		{[]string{"get", "svc", "-o", "wide"}, "NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE   SELECTOR\n" +
			"kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   0s    <none>\n" +
			"web          ClusterIP   10.96.0.50   <none>        80/TCP    0s    app=web\n"},
		{[]string{"get", "ns"}, "NAME              STATUS   AGE\ndefault           Active   0s\nkube-node-lease   Active   0s\nkube-public       Active   0s\nkube-system       Active   0s\nother             Active   0s\n"},
		{[]string{"get", "pods", "-o", "name"}, "pod/db\npod/web\n"},
		{[]string{"get", "deploy", "-o", "name"}, "deployment.apps/web\n"},
		{[]string{"get", "sa", "-o", "name"}, "serviceaccount/default\n"},
	} {
		out, errOut, msg := e.run(t, "", tc.args...)
		if out != tc.want || errOut != "" || msg != "" {
			t.Errorf("%v:\n got %q (stderr %q, error %q)\nwant %q", tc.args, out, errOut, msg, tc.want)
		}
	}

	// -o json of one named object is the object, as the server defaulted
	// it; of a list, a kind: List.
	out, _, msg = e.run(t, "", "get", "deploy", "web", "-o", "json")
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil || d["kind"] != "Deployment" || msg != "" {
		t.Errorf("-o json: %v %v\n%s", err, msg, out)
	}
	if !strings.Contains(out, "\n    \"apiVersion\": \"apps/v1\",") {
		t.Errorf("-o json is indented by 4 spaces, as kubectl:\n%s", out)
	}
	if s, _, _ := unstructured.NestedString(d, "spec", "strategy", "type"); s != "RollingUpdate" {
		t.Errorf("-o json shows the stored object, defaults included: strategy %q", s)
	}
	out, _, _ = e.run(t, "", "get", "pods", "-o", "yaml")
	var list map[string]any
	if err := yaml.Unmarshal([]byte(out), &list); err != nil || list["kind"] != "List" || len(list["items"].([]any)) != 2 {
		t.Fatalf("-o yaml: %v\n%s", err, out)
	}
	if !strings.HasSuffix(out, "kind: List\nmetadata:\n  resourceVersion: \"\"\n") {
		t.Errorf("-o yaml of a list ends as kubectl's:\n%s", out)
	}
	item := list["items"].([]any)[0].(map[string]any)
	if item["kind"] != "Pod" || item["apiVersion"] != "v1" {
		t.Errorf("list items carry their kind: %v", item)
	}
	if rv, _, _ := unstructured.NestedString(item, "metadata", "resourceVersion"); rv == "" || rv == "0" {
		t.Errorf("items carry their store revision: %q", rv)
	}

	// Errors, as kubectl words them; found objects are still printed.
	out, _, msg = e.run(t, "", "get", "pod", "web", "nope")
	if out != "NAME   READY   STATUS    RESTARTS   AGE\nweb    0/1     Pending   0          0s\n" || msg != `Error from server (NotFound): pods "nope" not found` {
		t.Errorf("one missing: %q %q", out, msg)
	}
	for args, want := range map[string]string{
		"get foo":                 `error: the server doesn't have a resource type "foo"`,
		"get pods -o table":       `error: unable to match a printer suitable for the output format "table", allowed formats are: json,name,wide,yaml`,
		"get pod web -A":          "error: a resource cannot be retrieved by name across all namespaces",
		"get po,svc -w":           "error: you may only specify a single resource type",
		"get deploy/nope -o yaml": `Error from server (NotFound): deployments.apps "nope" not found`,
		// The server refuses a field it cannot select on; kubectl says what it listed.
		"get pods --field-selector spec.x=y": `Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label selector "", field selector "spec.x=y": field label not supported: spec.x`,
	} {
		if _, _, msg := e.run(t, "", strings.Fields(args)...); msg != want {
			t.Errorf("%s:\n got %q\nwant %q", args, msg, want)
		}
	}
}

// lockedBuffer is written by the command and read by the test; each write
// is signalled so the test waits on output instead of sleeping.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes chan struct{}
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{writes: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.writes <- struct{}{}:
	default:
	}
	return n, err
}

// String is what was written, ages normalised as run does.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ages(b.buf.String())
}

func (b *lockedBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for !strings.Contains(b.String(), want) {
		select {
		case <-b.writes:
		case <-timeout:
			t.Fatalf("timed out waiting for %q in:\n%s", want, b.String())
		}
	}
}

// start runs the CLI in the background; the returned channel gets its
// error when it ends.
func (e *env) start(ctx context.Context, out *lockedBuffer, args ...string) <-chan error {
	root := NewRoot(Streams{Out: out, Err: out})
	root.SetArgs(append(args, "--kubeconfig", e.kubeconfig))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	return done
}

func TestGetWatch(t *testing.T) {
	e := newEnv(t)
	e.create(t, namespace("elsewhere"), podObj("default", "web", nil))
	out := newLockedBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := e.start(ctx, out, "get", "pods", "-w")

	const header = "NAME   READY   STATUS    RESTARTS   AGE\n"
	out.waitFor(t, header+"web    0/1     Pending   0          0s\n")
	e.create(t, podObj("default", "db", nil), podObj("elsewhere", "x", nil))
	// Rows that come later line up with the header, as in kubectl.
	out.waitFor(t, header+"web    0/1     Pending   0          0s\ndb     0/1     Pending   0          0s\n")
	// A change is a new row.
	e.patch(t, "v1", "Pod", "default", "db", `{"metadata":{"labels":{"v":"2"}}}`)
	out.waitFor(t, "db     0/1     Pending   0          0s\ndb     0/1     Pending   0          0s\n")
	// A pod on no node goes at once; its last state is a row too.
	if err := e.resource(t, "v1", "Pod", "default").Delete(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "db     0/1     Pending   0          0s\nweb    0/1     Pending   0          0s\n")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("get -w ended with %v", err)
	}
	if strings.Count(out.String(), "NAME") != 1 || strings.Contains(out.String(), "x ") {
		t.Errorf("headers once, other namespaces left out:\n%s", out.String())
	}

	// -o name with a label selector: only the selected pod's changes.
	out = newLockedBuffer()
	ctx, cancel = context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done = e.start(ctx, out, "get", "pods", "-A", "-l", "app=x", "-w", "-o", "name")
	e.create(t, podObj("elsewhere", "y", map[string]any{"app": "x"}))
	out.waitFor(t, "pod/y\n")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("get -w -o name ended with %v", err)
	}
	if got := out.String(); got != "pod/y\n" {
		t.Errorf("get -A -l app=x -w -o name:\n%s", got)
	}
}

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "web:1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1"}
`

func TestApplyCreateDelete(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "web.yaml", webManifest)

	out, _, msg := e.run(t, "", "apply", "-f", f)
	if out != "deployment.apps/web created\nconfigmap/cfg created\n" || msg != "" {
		t.Errorf("first apply: %q %q", out, msg)
	}
	live := e.object(t, "apps/v1", "Deployment", "default", "web")
	ann, _, _ := unstructured.NestedString(live, "metadata", "annotations", lastAppliedAnnotation)
	if !strings.Contains(ann, `"name":"web"`) || !strings.Contains(ann, `"namespace":"default"`) {
		t.Errorf("last-applied annotation %q", ann)
	}
	// The server filled in defaults (strategy, pull policy, ...); they are
	// not changes.
	out, _, msg = e.run(t, "", "apply", "-f", f)
	if out != "deployment.apps/web unchanged\nconfigmap/cfg unchanged\n" || msg != "" {
		t.Errorf("same again: %q %q", out, msg)
	}

	// Someone else sets a label; the manifest drops tier and bumps the image.
	e.patch(t, "apps/v1", "Deployment", "default", "web", `{"metadata":{"labels":{"owner":"ops"}}}`)
	changed := strings.Replace(strings.Replace(webManifest, ", tier: front", "", 1), "web:1", "web:2", 1)
	out, _, msg = e.run(t, changed, "apply", "-f", "-")
	if out != "deployment.apps/web configured\nconfigmap/cfg unchanged\n" || msg != "" {
		t.Errorf("changed manifest: %q %q", out, msg)
	}
	live = e.object(t, "apps/v1", "Deployment", "default", "web")
	labels, _, _ := unstructured.NestedStringMap(live, "metadata", "labels")
	if labels["tier"] != "" || labels["owner"] != "ops" || labels["app"] != "web" {
		t.Errorf("labels after apply: %v", labels)
	}
	containers, _, _ := unstructured.NestedSlice(live, "spec", "template", "spec", "containers")
	if len(containers) != 1 || containers[0].(map[string]any)["image"] != "web:2" || containers[0].(map[string]any)["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("containers after apply (image bumped, the server's default kept): %v", containers)
	}
	if g, _, _ := unstructured.NestedInt64(live, "metadata", "generation"); g != 2 {
		t.Errorf("generation %d after one spec change", g)
	}

	// Another namespace: it must exist first. A Namespace applies too.
	out, _, msg = e.run(t, "", "apply", "-f", f, "-n", "other")
	if out != "" || msg != `Error from server (NotFound): error when creating "`+f+`": namespaces "other" not found`+"\n"+
		`Error from server (NotFound): error when creating "`+f+`": namespaces "other" not found` {
		t.Errorf("apply -n other before it exists:\n%q\n%s", out, msg)
	}
	out, _, msg = e.run(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n", "apply", "-f", "-")
	if out != "namespace/other created\n" || msg != "" {
		t.Errorf("apply a namespace: %q %q", out, msg)
	}
	out, _, msg = e.run(t, "", "apply", "-f", f, "-n", "other")
	if out != "deployment.apps/web created\nconfigmap/cfg created\n" || msg != "" {
		t.Errorf("apply -n other: %q %q", out, msg)
	}
	nsd := writeFile(t, dir, "nsd.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c2, namespace: a}\n")
	if _, _, msg = e.run(t, "", "apply", "-f", nsd, "-n", "b"); !strings.Contains(msg, `the namespace from the provided object "a" does not match the namespace "b"`) {
		t.Errorf("namespace mismatch: %q", msg)
	}
	bad := writeFile(t, dir, "bad.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
	if _, _, msg = e.run(t, "", "apply", "-f", bad); !strings.Contains(msg, `no matches for kind "Widget" in version "example.com/v1"`) {
		t.Errorf("unknown kind: %q", msg)
	}
	// The server validates what it is sent, and the error names the fields.
	invalid := writeFile(t, dir, "invalid.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec:\n  containers: [{name: c}]\n")
	if _, _, msg = e.run(t, "", "apply", "-f", invalid); !strings.HasPrefix(msg, `The Pod "Bad_Name" is invalid: `) ||
		!strings.Contains(msg, "* metadata.name: Invalid value: \"Bad_Name\"") || !strings.Contains(msg, "* spec.containers[0].image: Required value") {
		t.Errorf("invalid pod:\n%s", msg)
	}

	// create: existing objects are errors, the rest are created.
	extra := writeFile(t, dir, "extra.yaml", webManifest+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg2}\n")
	out, _, msg = e.run(t, "", "create", "-f", extra)
	if out != "configmap/cfg2 created\n" ||
		msg != `Error from server (AlreadyExists): error when creating "`+extra+`": deployments.apps "web" already exists`+"\n"+
			`Error from server (AlreadyExists): error when creating "`+extra+`": configmaps "cfg" already exists` {
		t.Errorf("create over existing:\n%q\n%s", out, msg)
	}
	if ann, _, _ := unstructured.NestedString(e.object(t, "v1", "ConfigMap", "default", "cfg2"), "metadata", "annotations", lastAppliedAnnotation); ann != "" {
		t.Errorf("create leaves no last-applied annotation: %q", ann)
	}

	// delete by manifest, by name, by selector.
	out, _, msg = e.run(t, "", "delete", "-f", f)
	if out != "deployment.apps \"web\" deleted\nconfigmap \"cfg\" deleted\n" || msg != "" {
		t.Errorf("delete -f: %q %q", out, msg)
	}
	if e.object(t, "apps/v1", "Deployment", "default", "web") != nil || e.object(t, "v1", "ConfigMap", "default", "cfg") != nil {
		t.Error("delete -f left objects behind")
	}
	out, _, msg = e.run(t, "", "delete", "-f", f)
	if out != "" || !strings.Contains(msg, `Error from server (NotFound): error when deleting "`+f+`": deployments.apps "web" not found`) {
		t.Errorf("delete -f again: %q %q", out, msg)
	}
	if out, _, msg = e.run(t, "", "delete", "-f", f, "--ignore-not-found"); out != "" || msg != "" {
		t.Errorf("--ignore-not-found: %q %q", out, msg)
	}
	e.create(t, podObj("default", "a", map[string]any{"app": "x"}), podObj("default", "b", map[string]any{"app": "x"}), podObj("default", "c", nil))
	if out, _, msg = e.run(t, "", "delete", "pods", "-l", "app=x"); out != "pod \"a\" deleted\npod \"b\" deleted\n" || msg != "" {
		t.Errorf("delete -l: %q %q", out, msg)
	}
	if out, _, msg = e.run(t, "", "delete", "pods", "-l", "app=x"); out != "No resources found\n" || msg != "" {
		t.Errorf("delete -l, none left: %q %q", out, msg)
	}
	if out, _, msg = e.run(t, "", "delete", "pod/c", "pod/nope"); out != "pod \"c\" deleted\n" || msg != `Error from server (NotFound): pods "nope" not found` {
		t.Errorf("delete pod/c pod/nope: %q %q", out, msg)
	}
	if _, _, msg = e.run(t, "", "delete", "pods"); msg != "error: resource(s) were provided, but no name was specified" {
		t.Errorf("delete pods: %q", msg)
	}
	if out, _, msg = e.run(t, "", "delete", "cm", "--all", "-n", "other"); out != "configmap \"cfg\" deleted\n" || msg != "" {
		t.Errorf("delete --all: %q %q", out, msg)
	}
	// The namespace the server made may not go.
	if _, _, msg = e.run(t, "", "delete", "ns", "default"); msg != `Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted` {
		t.Errorf("delete ns default: %q", msg)
	}
}

func TestScale(t *testing.T) {
	e := newEnv(t)
	e.create(t, deployObj("default", "web", 1))
	if out, _, msg := e.run(t, "", "scale", "deploy/web", "--replicas", "3"); out != "deployment.apps/web scaled\n" || msg != "" {
		t.Errorf("scale: %q %q", out, msg)
	}
	if r, _, _ := unstructured.NestedInt64(e.object(t, "apps/v1", "Deployment", "default", "web"), "spec", "replicas"); r != 3 {
		t.Errorf("replicas %d", r)
	}
	if _, _, msg := e.run(t, "", "scale", "deployment", "web", "--replicas=5", "--current-replicas=2"); msg != "error: Expected replicas to be 2, was 3" {
		t.Errorf("precondition: %q", msg)
	}
	if out, _, msg := e.run(t, "", "scale", "deployment", "web", "--replicas=0", "--current-replicas=3"); out != "deployment.apps/web scaled\n" || msg != "" {
		t.Errorf("precondition met: %q %q", out, msg)
	}
	if r, _, _ := unstructured.NestedInt64(e.object(t, "apps/v1", "Deployment", "default", "web"), "spec", "replicas"); r != 0 {
		t.Errorf("replicas %d after scaling to 0", r)
	}
	if _, _, msg := e.run(t, "", "scale", "deploy/nope", "--replicas=1"); msg != `Error from server (NotFound): deployments.apps "nope" not found` {
		t.Errorf("missing: %q", msg)
	}
	if _, _, msg := e.run(t, "", "scale", "deploy/web"); !strings.Contains(msg, "--replicas=COUNT flag is required") {
		t.Errorf("no --replicas: %q", msg)
	}
}

func TestDescribe(t *testing.T) {
	e := newEnv(t)
	e.create(t,
		configMapObj("default", "settings", map[string]any{"app": "web"}, map[string]any{"color": "blue"}),
		configMapObj("default", "settings-2", nil, nil),
	)
	uid, _, _ := unstructured.NestedString(e.object(t, "v1", "ConfigMap", "default", "settings"), "metadata", "uid")
	at := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	event := func(name, involved, uid, reason, message string) map[string]any {
		return obj("v1", "Event", "default", name, nil, map[string]any{
			"involvedObject": map[string]any{"kind": "ConfigMap", "name": involved, "namespace": "default", "uid": uid},
			"reason":         reason, "message": message, "type": "Normal", "count": int64(1),
			"source":         map[string]any{"component": "tester"},
			"firstTimestamp": at, "lastTimestamp": at,
		})
	}
	e.create(t,
		event("settings.1", "settings", uid, "Tested", "an event about settings"),
		event("other.1", "other", "x", "Unrelated", "not this one"),
		// An event about an earlier object of the same name is not about this one.
		event("settings.2", "settings", "earlier-uid", "Stale", "about a settings that was deleted"),
	)
	out, _, msg := e.run(t, "", "describe", "cm", "settings")
	// Ages under three hours are in minutes, as kubectl's.
	want := `Name:         settings
Namespace:    default
Labels:       app=web
Annotations:  <none>

Data
====
color:
----
blue


BinaryData
====

Events:
  Type    Reason  Age   From    Message
  ----    ------  ----  ----    -------
  Normal  Tested  120m  tester  an event about settings
`
	if out != want || msg != "" {
		t.Errorf("describe cm settings:\n%s\nwant:\n%s%s", out, want, msg)
	}
	// A name prefix describes every match.
	out, _, msg = e.run(t, "", "describe", "configmap/settings")
	if msg != "" || strings.Contains(out, "settings-2") {
		t.Errorf("an exact name describes that object alone: %q\n%s", msg, out)
	}
	out, _, msg = e.run(t, "", "describe", "configmap/settings-")
	if msg != "" || !strings.HasPrefix(out, "Name:         settings-2\n") || !strings.HasSuffix(out, "BinaryData\n====\n\nEvents:  <none>\n") {
		t.Errorf("prefix: %q\n%s", msg, out)
	}
	out, _, msg = e.run(t, "", "describe", "cm")
	if msg != "" || strings.Count(out, "Name:   ") != 2 || !strings.Contains(out, "\n\n\nName:         settings-2\n") {
		t.Errorf("every configmap, two blank lines apart: %q\n%s", msg, out)
	}
	if _, _, msg = e.run(t, "", "describe", "cm", "zzz"); msg != `Error from server (NotFound): configmaps "zzz" not found` {
		t.Errorf("missing: %q", msg)
	}

	// The objects the server made describe too, as kubectl 1.32 prints them.
	out, _, msg = e.run(t, "", "describe", "svc", "kubernetes")
	want = `Name:                     kubernetes
Namespace:                default
Labels:                   component=apiserver
                          provider=kubernetes
Annotations:              <none>
Selector:                 <none>
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.96.0.1
IPs:                      10.96.0.1
Port:                     https  443/TCP
TargetPort:               6443/TCP
Endpoints:                <none>
Session Affinity:         None
Internal Traffic Policy:  Cluster
Events:                   <none>
`
	if out != want || msg != "" {
		t.Errorf("describe svc kubernetes: %q\n%s\nwant:\n%s", msg, out, want)
	}
	// drover serves no resourcequotas or limitranges: kubectl then prints
	// no quota or limit lines.
	out, _, msg = e.run(t, "", "describe", "ns", "default")
	if want := "Name:         default\nLabels:       kubernetes.io/metadata.name=default\nAnnotations:  <none>\nStatus:       Active\n"; out != want || msg != "" {
		t.Errorf("describe ns default: %q\n%s\nwant:\n%s", msg, out, want)
	}
}

func TestConfigCommands(t *testing.T) {
	dir := t.TempDir()
	kc := writeFile(t, dir, "config", `apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: aGVsbG8=}
users:
- name: u1
  user: {token: secret-token, client-key-data: aGVsbG8=, client-certificate-data: aGVsbG8=}
contexts:
- name: one
  context: {cluster: c1, user: u1, namespace: ns1}
- name: two
  context: {cluster: c1, user: u1}
current-context: one
`)
	e := &env{kubeconfig: kc}
	out, _, msg := e.run(t, "", "config", "view")
	want := `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: DATA+OMITTED
    server: https://127.0.0.1:6443
  name: c1
contexts:
- context:
    cluster: c1
    namespace: ns1
    user: u1
  name: one
- context:
    cluster: c1
    user: u1
  name: two
current-context: one
kind: Config
preferences: {}
users:
- name: u1
  user:
    client-certificate-data: DATA+OMITTED
    client-key-data: DATA+OMITTED
    token: REDACTED
`
	if out != want || msg != "" {
		t.Errorf("config view (kubectl's layout):\n%s\nwant:\n%s%s", out, want, msg)
	}
	out, _, _ = e.run(t, "", "config", "view", "--raw")
	if !strings.Contains(out, "token: secret-token") || !strings.Contains(out, "certificate-authority-data: aGVsbG8=") {
		t.Errorf("--raw:\n%s", out)
	}
	out, _, _ = e.run(t, "", "config", "view", "--minify", "--context", "two")
	if strings.Contains(out, "name: one") || !strings.Contains(out, "current-context: two") {
		t.Errorf("--minify:\n%s", out)
	}
	if out, _, _ = e.run(t, "", "config", "get-contexts"); out != "CURRENT   NAME   CLUSTER   AUTHINFO   NAMESPACE\n*         one    c1        u1         ns1\n          two    c1        u1         \n" {
		t.Errorf("get-contexts:\n%q", out)
	}
	if out, _, msg = e.run(t, "", "config", "use-context", "two"); out != "Switched to context \"two\".\n" || msg != "" {
		t.Errorf("use-context: %q %q", out, msg)
	}
	if out, _, _ = e.run(t, "", "config", "current-context"); out != "two\n" {
		t.Errorf("current-context after switch: %q", out)
	}
	if _, _, msg = e.run(t, "", "config", "use-context", "nope"); msg != `error: no context exists with the name: "nope"` {
		t.Errorf("use-context nope: %q", msg)
	}
	b, _ := os.ReadFile(kc)
	if !strings.Contains(string(b), "token: secret-token") {
		t.Errorf("use-context lost the rest of the file:\n%s", b)
	}
}

func TestVersionAndNamespaceFromContext(t *testing.T) {
	e := newEnv(t)
	if out, _, msg := e.run(t, "", "version"); out != "Client Version: dev\nServer Version: "+apiserver.KubernetesVersion+"+drover-test\n" || msg != "" {
		t.Errorf("version: %q %q", out, msg)
	}
	// No kubeconfig at all: the client version alone, no error.
	var out bytes.Buffer
	root := NewRoot(Streams{Out: &out, Err: &out})
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil || out.String() != "Client Version: dev\n" {
		t.Errorf("version without a kubeconfig: %q %v", out.String(), err)
	}

	// A second context on the same server, with namespace team; use-context
	// makes it the default of every verb.
	kc, err := client.LoadKubeconfigFile(e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc.Contexts = append(kc.Contexts, client.NamedContext{Name: "team", Context: client.Context{Cluster: "test", User: "admin", Namespace: "team"}})
	e.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := client.SaveKubeconfig(e.kubeconfig, kc); err != nil {
		t.Fatal(err)
	}
	e.create(t, namespace("team"), podObj("team", "p", nil))
	if out, _, msg := e.run(t, "", "get", "pods", "-o", "name"); out != "" || msg != "" {
		t.Errorf("context test, namespace default: %q %q", out, msg)
	}
	if out, _, msg := e.run(t, "", "config", "use-context", "team"); out != "Switched to context \"team\".\n" || msg != "" {
		t.Errorf("use-context team: %q %q", out, msg)
	}
	if out, _, msg := e.run(t, "", "get", "pods", "-o", "name"); out != "pod/p\n" || msg != "" {
		t.Errorf("the context's namespace is the default: %q %q", out, msg)
	}
	if out, _, msg := e.run(t, "", "get", "pods", "-o", "name", "--context", "test"); out != "" || msg != "" {
		t.Errorf("--context test: %q %q", out, msg)
	}
}

func TestDeleteWaits(t *testing.T) {
	e := newEnv(t)
	held := func(name string) map[string]any {
		o := configMapObj("default", name, nil, nil)
		o["metadata"].(map[string]any)["finalizers"] = []any{"example.com/hold"}
		return o
	}
	e.create(t, held("a"), held("b"), held("c"))

	out := newLockedBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := e.start(ctx, out, "delete", "cm", "a")
	out.waitFor(t, "configmap \"a\" deleted\n")
	select {
	case err := <-done:
		t.Fatalf("delete returned (%v) while the object still exists", err)
	default:
	}
	// The server only marked it.
	if ts, _, _ := unstructured.NestedString(e.object(t, "v1", "ConfigMap", "default", "a"), "metadata", "deletionTimestamp"); ts == "" {
		t.Error("a configmap with a finalizer has no deletionTimestamp after delete")
	}
	// The finalizer goes; so does the object, and delete returns.
	e.patch(t, "v1", "ConfigMap", "default", "a", `{"metadata":{"finalizers":null}}`)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("delete: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("delete still waiting after the object went")
	}
	if e.object(t, "v1", "ConfigMap", "default", "a") != nil {
		t.Error("a is still there")
	}

	if _, _, msg := e.run(t, "", "delete", "cm", "b", "--timeout", "100ms"); msg != "error: timed out waiting for the condition on configmaps/b" {
		t.Errorf("timeout: %q", msg)
	}
	if out, _, msg := e.run(t, "", "delete", "cm", "c", "--wait=false"); out != "configmap \"c\" deleted\n" || msg != "" {
		t.Errorf("--wait=false: %q %q", out, msg)
	}
	if e.object(t, "v1", "ConfigMap", "default", "c") == nil {
		t.Error("c is gone although its finalizer is not")
	}
	// Deleting a marked object again says so and waits again.
	if _, _, msg := e.run(t, "", "delete", "cm", "c", "--timeout", "100ms"); msg != "error: timed out waiting for the condition on configmaps/c" {
		t.Errorf("second delete of c: %q", msg)
	}
}

func TestAPIResources(t *testing.T) {
	e := newEnv(t)
	out, _, msg := e.run(t, "", "api-resources", "--api-group", "apps")
	want := "NAME          SHORTNAMES   APIVERSION   NAMESPACED   KIND\n" +
		"daemonsets    ds           apps/v1      true         DaemonSet\n" +
		"deployments   deploy       apps/v1      true         Deployment\n" +
		"replicasets   rs           apps/v1      true         ReplicaSet\n"
	if out != want || msg != "" {
		t.Errorf("api-resources --api-group apps:\n%s\nwant:\n%s%s", out, want, msg)
	}
	out, _, _ = e.run(t, "", "api-resources", "--namespaced=false", "-o", "name")
	if out != "namespaces\nnodes\nclusterrolebindings.rbac.authorization.k8s.io\nclusterroles.rbac.authorization.k8s.io\n" {
		t.Errorf("cluster-scoped names: %q", out)
	}
	out, _, _ = e.run(t, "", "api-resources", "-o", "name")
	if !strings.HasPrefix(out, "configmaps\nendpoints\nevents\n") || !strings.Contains(out, "\nservices\ndaemonsets.apps\n") || !strings.HasSuffix(out, "\nroles.rbac.authorization.k8s.io\n") {
		t.Errorf("core first, sorted by group then name, groups qualified: %q", out)
	}
}
