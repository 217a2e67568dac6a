package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/client/clienttest"
)

// env is a clienttest server and a kubeconfig for it.
type env struct {
	srv        *clienttest.Server
	kubeconfig string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := clienttest.NewServer(t, nil)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv.SetClock(func() time.Time { return at })
	return &env{srv: srv, kubeconfig: srv.WriteKubeconfig(t, "")}
}

// run executes the drover CLI with args and returns stdout and the text
// main would print for the error ("" for none).
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
	return out.String(), errOut.String(), msg
}

func obj(apiVersion, kind, ns, name string, labels map[string]any, rest map[string]any) map[string]any {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name, "namespace": ns, "labels": labels}}
	for k, v := range rest {
		o[k] = v
	}
	return o
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
		t.Errorf("empty -n x: %q", errOut)
	}

	e.srv.Seed(t,
		obj("v1", "Pod", "default", "web", map[string]any{"app": "web"}, nil),
		obj("v1", "Pod", "default", "db", map[string]any{"app": "db"}, nil),
		obj("v1", "Pod", "other", "cache", nil, nil),
		obj("v1", "Service", "default", "web", nil, nil),
		obj("apps/v1", "Deployment", "default", "web", nil, map[string]any{"spec": map[string]any{"replicas": int64(2)}}),
	)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "pods"}, "NAME   AGE\ndb     0s\nweb    0s\n"},
		{[]string{"get", "pods", "--no-headers"}, "db    0s\nweb   0s\n"},
		{[]string{"get", "pods", "-l", "app=web"}, "NAME   AGE\nweb    0s\n"},
		{[]string{"get", "pods", "--field-selector", "metadata.name=db"}, "NAME   AGE\ndb     0s\n"},
		{[]string{"get", "pods", "-o", "wide"}, "NAME   AGE   UID\ndb     0s    uid-2\nweb    0s    uid-1\n"},
		{[]string{"get", "pods", "-A"}, "NAMESPACE   NAME    AGE\ndefault     db      0s\ndefault     web     0s\nother       cache   0s\n"},
		{[]string{"get", "pods", "-n", "other"}, "NAME    AGE\ncache   0s\n"},
		{[]string{"get", "pod", "web", "db"}, "NAME   AGE\nweb    0s\ndb     0s\n"},
		{[]string{"get", "deploy/web"}, "NAME   AGE\nweb    0s\n"},
		{[]string{"get", "deploy/web", "--show-kind"}, "NAME                  AGE\ndeployment.apps/web   0s\n"},
		{[]string{"get", "po,svc"}, "NAME      AGE\npod/db    0s\npod/web   0s\n\nNAME          AGE\nservice/web   0s\n"},
		{[]string{"get", "pod/web", "deploy/web"}, "NAME      AGE\npod/web   0s\n\nNAME                  AGE\ndeployment.apps/web   0s\n"},
		{[]string{"get", "pods", "-o", "name"}, "pod/db\npod/web\n"},
		{[]string{"get", "deploy", "-o", "name"}, "deployment.apps/web\n"},
	} {
		out, errOut, msg := e.run(t, "", tc.args...)
		if out != tc.want || errOut != "" || msg != "" {
			t.Errorf("%v:\n got %q (stderr %q, error %q)\nwant %q", tc.args, out, errOut, msg, tc.want)
		}
	}

	// -o json of one named object is the object; of a list, a kind: List.
	out, _, msg = e.run(t, "", "get", "deploy", "web", "-o", "json")
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil || d["kind"] != "Deployment" || msg != "" {
		t.Errorf("-o json: %v %v\n%s", err, msg, out)
	}
	if !strings.Contains(out, "\n    \"apiVersion\": \"apps/v1\",") {
		t.Errorf("-o json is indented by 4 spaces, as kubectl:\n%s", out)
	}
	out, _, _ = e.run(t, "", "get", "pods", "-o", "yaml")
	var list map[string]any
	if err := yaml.Unmarshal([]byte(out), &list); err != nil || list["kind"] != "List" || len(list["items"].([]any)) != 2 {
		t.Errorf("-o yaml: %v\n%s", err, out)
	}
	if items := list["items"].([]any); items[0].(map[string]any)["kind"] != "Pod" {
		t.Errorf("list items carry their kind: %v", items[0])
	}

	// Errors, as kubectl words them; found objects are still printed.
	out, _, msg = e.run(t, "", "get", "pod", "web", "nope")
	if out != "NAME   AGE\nweb    0s\n" || msg != `Error from server (NotFound): pods "nope" not found` {
		t.Errorf("one missing: %q %q", out, msg)
	}
	for args, want := range map[string]string{
		"get foo":                 `error: the server doesn't have a resource type "foo"`,
		"get pods -o table":       `error: unable to match a printer suitable for the output format "table", allowed formats are: json,name,wide,yaml`,
		"get pod web -A":          "error: a resource cannot be retrieved by name across all namespaces",
		"get po,svc -w":           "error: you may only specify a single resource type",
		"get deploy/nope -o yaml": `Error from server (NotFound): deployments.apps "nope" not found`,
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

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		select {
		case <-b.writes:
		case <-timeout:
			t.Fatalf("timed out waiting for %q in:\n%s", want, b.String())
		}
	}
}

func TestGetWatch(t *testing.T) {
	e := newEnv(t)
	e.srv.Seed(t, obj("v1", "Pod", "default", "web", nil, nil))
	out := &lockedBuffer{writes: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	root := NewRoot(Streams{Out: out, Err: out})
	root.SetArgs([]string{"get", "pods", "-w", "--kubeconfig", e.kubeconfig})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	out.waitFor(t, "NAME   AGE\nweb    0s\n")
	e.srv.Seed(t, obj("v1", "Pod", "default", "db", nil, nil), obj("v1", "Pod", "elsewhere", "x", nil, nil))
	// Rows that come later line up with the header, as in kubectl.
	out.waitFor(t, "NAME   AGE\nweb    0s\ndb     0s\n")
	c, err := client.New(e.srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := client.NewMapper(clienttest.Mappings()).ResourceFor("pods")
	if err := c.Resource(m).Namespace("default").Delete(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "db     0s\nweb    0s\n")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("get -w ended with %v", err)
	}
	if strings.Count(out.String(), "NAME") != 1 || strings.Contains(out.String(), "x ") {
		t.Errorf("headers once, other namespaces left out:\n%s", out.String())
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
	f := clienttest.WriteFile(t, dir, "web.yaml", webManifest)

	out, _, msg := e.run(t, "", "apply", "-f", f)
	if out != "deployment.apps/web created\nconfigmap/cfg created\n" || msg != "" {
		t.Errorf("first apply: %q %q", out, msg)
	}
	live := e.srv.Object("deployments.apps", "default", "web")
	ann, _, _ := unstructured.NestedString(live, "metadata", "annotations", lastAppliedAnnotation)
	if !strings.Contains(ann, `"name":"web"`) || !strings.Contains(ann, `"namespace":"default"`) {
		t.Errorf("last-applied annotation %q", ann)
	}
	out, _, msg = e.run(t, "", "apply", "-f", f)
	if out != "deployment.apps/web unchanged\nconfigmap/cfg unchanged\n" || msg != "" {
		t.Errorf("same again: %q %q", out, msg)
	}

	// Someone else sets a label; the manifest drops tier and bumps the image.
	c, _ := client.New(e.srv.RESTConfig())
	m, _ := client.NewMapper(clienttest.Mappings()).ResourceFor("deploy")
	if _, err := c.Resource(m).Namespace("default").Patch(context.Background(), "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"owner":"ops"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(strings.Replace(webManifest, ", tier: front", "", 1), "web:1", "web:2", 1)
	out, _, msg = e.run(t, changed, "apply", "-f", "-")
	if out != "deployment.apps/web configured\nconfigmap/cfg unchanged\n" || msg != "" {
		t.Errorf("changed manifest: %q %q", out, msg)
	}
	live = e.srv.Object("deployments.apps", "default", "web")
	labels, _, _ := unstructured.NestedStringMap(live, "metadata", "labels")
	if labels["tier"] != "" || labels["owner"] != "ops" || labels["app"] != "web" {
		t.Errorf("labels after apply: %v", labels)
	}
	containers, _, _ := unstructured.NestedSlice(live, "spec", "template", "spec", "containers")
	if len(containers) != 1 || containers[0].(map[string]any)["image"] != "web:2" {
		t.Errorf("containers after apply: %v", containers)
	}

	out, _, msg = e.run(t, "", "apply", "-f", f, "-n", "other")
	if out != "deployment.apps/web created\nconfigmap/cfg created\n" || msg != "" {
		t.Errorf("apply -n other: %q %q", out, msg)
	}
	nsd := clienttest.WriteFile(t, dir, "nsd.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c2, namespace: a}\n")
	if _, _, msg = e.run(t, "", "apply", "-f", nsd, "-n", "b"); !strings.Contains(msg, `the namespace from the provided object "a" does not match the namespace "b"`) {
		t.Errorf("namespace mismatch: %q", msg)
	}
	bad := clienttest.WriteFile(t, dir, "bad.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
	if _, _, msg = e.run(t, "", "apply", "-f", bad); !strings.Contains(msg, `no matches for kind "Widget" in version "example.com/v1"`) {
		t.Errorf("unknown kind: %q", msg)
	}

	// create: existing objects are errors, the rest are created.
	extra := clienttest.WriteFile(t, dir, "extra.yaml", webManifest+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg2}\n")
	out, _, msg = e.run(t, "", "create", "-f", extra)
	if out != "configmap/cfg2 created\n" ||
		msg != `Error from server (AlreadyExists): error when creating "`+extra+`": deployments.apps "web" already exists`+"\n"+
			`Error from server (AlreadyExists): error when creating "`+extra+`": configmaps "cfg" already exists` {
		t.Errorf("create over existing:\n%q\n%s", out, msg)
	}

	// delete by manifest, by name, by selector.
	out, _, msg = e.run(t, "", "delete", "-f", f)
	if out != "deployment.apps \"web\" deleted\nconfigmap \"cfg\" deleted\n" || msg != "" {
		t.Errorf("delete -f: %q %q", out, msg)
	}
	out, _, msg = e.run(t, "", "delete", "-f", f)
	if out != "" || !strings.Contains(msg, `Error from server (NotFound): error when deleting "`+f+`": deployments.apps "web" not found`) {
		t.Errorf("delete -f again: %q %q", out, msg)
	}
	if out, _, msg = e.run(t, "", "delete", "-f", f, "--ignore-not-found"); out != "" || msg != "" {
		t.Errorf("--ignore-not-found: %q %q", out, msg)
	}
	e.srv.Seed(t, obj("v1", "Pod", "default", "a", map[string]any{"app": "x"}, nil), obj("v1", "Pod", "default", "b", map[string]any{"app": "x"}, nil), obj("v1", "Pod", "default", "c", nil, nil))
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
}

func TestScale(t *testing.T) {
	e := newEnv(t)
	e.srv.Seed(t, obj("apps/v1", "Deployment", "default", "web", nil, map[string]any{"spec": map[string]any{"replicas": int64(1)}}))
	if out, _, msg := e.run(t, "", "scale", "deploy/web", "--replicas", "3"); out != "deployment.apps/web scaled\n" || msg != "" {
		t.Errorf("scale: %q %q", out, msg)
	}
	if r, _, _ := unstructured.NestedInt64(e.srv.Object("deployments.apps", "default", "web"), "spec", "replicas"); r != 3 {
		t.Errorf("replicas %d", r)
	}
	if _, _, msg := e.run(t, "", "scale", "deployment", "web", "--replicas=5", "--current-replicas=2"); msg != "error: Expected replicas to be 2, was 3" {
		t.Errorf("precondition: %q", msg)
	}
	if out, _, msg := e.run(t, "", "scale", "deployment", "web", "--replicas=0", "--current-replicas=3"); out != "deployment.apps/web scaled\n" || msg != "" {
		t.Errorf("precondition met: %q %q", out, msg)
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
	e.srv.Seed(t,
		obj("v1", "ConfigMap", "default", "settings", map[string]any{"app": "web"}, map[string]any{"data": map[string]any{"color": "blue"}}),
		obj("v1", "ConfigMap", "default", "settings-2", nil, nil),
	)
	cm := e.srv.Object("configmaps", "default", "settings")
	uid := cm["metadata"].(map[string]any)["uid"]
	e.srv.Seed(t,
		obj("v1", "Event", "default", "settings.1", nil, map[string]any{
			"involvedObject": map[string]any{"kind": "ConfigMap", "name": "settings", "namespace": "default", "uid": uid},
			"reason":         "Tested", "message": "an event about settings", "type": "Normal", "count": int64(1),
		}),
		obj("v1", "Event", "default", "other.1", nil, map[string]any{
			"involvedObject": map[string]any{"kind": "ConfigMap", "name": "other", "namespace": "default", "uid": "x"},
			"reason":         "Unrelated", "message": "not this one", "type": "Normal",
		}),
	)
	out, _, msg := e.run(t, "", "describe", "cm", "settings")
	if msg != "" {
		t.Fatal(msg)
	}
	for _, want := range []string{"Name:", "settings", "color", "blue", "Events:", "Tested", "an event about settings"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Unrelated") || strings.Contains(out, "settings-2") {
		t.Errorf("describe shows unrelated things:\n%s", out)
	}
	// A name prefix describes every match.
	out, _, msg = e.run(t, "", "describe", "configmap/settings-")
	if msg != "" || !strings.Contains(out, "settings-2") {
		t.Errorf("prefix: %q\n%s", msg, out)
	}
	if _, _, msg = e.run(t, "", "describe", "cm", "zzz"); msg != `Error from server (NotFound): configmaps "zzz" not found` {
		t.Errorf("missing: %q", msg)
	}
	var found bool
	for _, r := range e.srv.Requests() {
		found = found || strings.Contains(r, "fieldSelector=involvedObject.name%3Dsettings%2CinvolvedObject.namespace%3Ddefault%2CinvolvedObject.uid%3D")
	}
	if !found {
		t.Errorf("events were not asked for by involvedObject: %v", e.srv.Requests())
	}
}

func TestConfigCommands(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	kc := clienttest.WriteFile(t, dir, "config", `apiVersion: v1
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
	e.kubeconfig = kc
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
	if out, _, msg := e.run(t, "", "version"); out != "Client Version: dev\nServer Version: v1.34.0-clienttest\n" || msg != "" {
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

	e.kubeconfig = e.srv.WriteKubeconfig(t, "team")
	e.srv.Seed(t, obj("v1", "Pod", "team", "p", nil, nil))
	if out, _, msg := e.run(t, "", "get", "pods", "-o", "name"); out != "pod/p\n" || msg != "" {
		t.Errorf("the context's namespace is the default: %q %q", out, msg)
	}
}

func TestDeleteWaits(t *testing.T) {
	e := newEnv(t)
	held := func(name string) map[string]any {
		o := obj("v1", "ConfigMap", "default", name, nil, nil)
		o["metadata"].(map[string]any)["finalizers"] = []any{"test/hold"}
		return o
	}
	e.srv.Seed(t, held("a"), held("b"), held("c"))

	out := &lockedBuffer{writes: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	root := NewRoot(Streams{Out: out, Err: out})
	root.SetArgs([]string{"delete", "cm", "a", "--kubeconfig", e.kubeconfig})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	out.waitFor(t, "configmap \"a\" deleted\n")
	select {
	case err := <-done:
		t.Fatalf("delete returned (%v) while the object still exists", err)
	default:
	}
	// The finalizer goes; so does the object, and delete returns.
	c, _ := client.New(e.srv.RESTConfig())
	m, _ := client.NewMapper(clienttest.Mappings()).ResourceFor("cm")
	if _, err := c.Resource(m).Namespace("default").Patch(ctx, "a", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("delete: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delete still waiting after the object went")
	}

	if _, _, msg := e.run(t, "", "delete", "cm", "b", "--timeout", "100ms"); msg != "error: timed out waiting for the condition on configmaps/b" {
		t.Errorf("timeout: %q", msg)
	}
	if out, _, msg := e.run(t, "", "delete", "cm", "c", "--wait=false"); out != "configmap \"c\" deleted\n" || msg != "" {
		t.Errorf("--wait=false: %q %q", out, msg)
	}
	if e.srv.Object("configmaps", "default", "c") == nil {
		t.Error("c is gone although its finalizer is not")
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
	if out != "namespaces\nnodes\n" {
		t.Errorf("cluster-scoped names: %q", out)
	}
	out, _, _ = e.run(t, "", "api-resources", "-o", "name")
	if !strings.HasPrefix(out, "configmaps\nevents\n") || !strings.Contains(out, "\nevents.events.k8s.io\n") {
		t.Errorf("core first, sorted by name, groups qualified: %q", out)
	}
}
