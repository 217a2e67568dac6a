package printers

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func samplePods() []runtime.Object {
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c-x2k8p", Namespace: "default", CreationTimestamp: ago(3*time.Minute + 20*time.Second)},
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "nginx"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.5", PodIPs: []corev1.PodIP{{IP: "10.244.1.5"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "nginx", Ready: true, State: running()}}},
	}
	db := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: "storage", CreationTimestamp: ago(2*24*time.Hour + 3*time.Hour)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pg"}, {Name: "exporter"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "pg", State: waiting("CrashLoopBackOff"), RestartCount: 12},
			{Name: "exporter", Ready: true, State: running()},
		}},
	}
	return []runtime.Object{web, db}
}

// podTable is what the API server would send: rows carrying their objects.
func podTable(t *testing.T) *metav1.Table {
	t.Helper()
	objs := samplePods()
	tbl, err := Table(schema.GroupKind{Kind: "Pod"}, objs, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tbl.Rows {
		tbl.Rows[i].Object.Object = objs[i]
	}
	return tbl
}

func printed(t *testing.T, tbl *metav1.Table, opts PrintOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := PrintTable(&b, tbl, opts); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

func TestPrintTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts PrintOptions
		want string
	}{
		{"plain", PrintOptions{}, lines(
			"NAME               READY   STATUS             RESTARTS   AGE",
			"web-7d4b9c-x2k8p   1/1     Running            0          3m20s",
			"db-0               1/2     CrashLoopBackOff   12         2d3h",
		)},
		{"wide", PrintOptions{Wide: true}, lines(
			"NAME               READY   STATUS             RESTARTS   AGE     IP           NODE     NOMINATED NODE   READINESS GATES",
			"web-7d4b9c-x2k8p   1/1     Running            0          3m20s   10.244.1.5   node-1   <none>           <none>",
			"db-0               1/2     CrashLoopBackOff   12         2d3h    <none>       <none>   <none>           <none>",
		)},
		{"with namespace", PrintOptions{WithNamespace: true}, lines(
			"NAMESPACE   NAME               READY   STATUS             RESTARTS   AGE",
			"default     web-7d4b9c-x2k8p   1/1     Running            0          3m20s",
			"storage     db-0               1/2     CrashLoopBackOff   12         2d3h",
		)},
		{"no headers", PrintOptions{NoHeaders: true}, lines(
			"web-7d4b9c-x2k8p   1/1   Running            0     3m20s",
			"db-0               1/2   CrashLoopBackOff   12    2d3h",
		)},
		{"with kind", PrintOptions{WithKind: true, KindPrefix: "pod/"}, lines(
			"NAME                   READY   STATUS             RESTARTS   AGE",
			"pod/web-7d4b9c-x2k8p   1/1     Running            0          3m20s",
			"pod/db-0               1/2     CrashLoopBackOff   12         2d3h",
		)},
		{"with kind derived", PrintOptions{WithKind: true, NoHeaders: true}, lines(
			"pod/web-7d4b9c-x2k8p   1/1   Running            0     3m20s",
			"pod/db-0               1/2   CrashLoopBackOff   12    2d3h",
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := printed(t, podTable(t), tc.opts); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestPrintTableEmpty(t *testing.T) {
	tbl, err := Table(schema.GroupKind{Kind: "Pod"}, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := printed(t, tbl, PrintOptions{}); got != "" {
		t.Errorf("empty table printed %q, want nothing", got)
	}
	if got := printed(t, nil, PrintOptions{}); got != "" {
		t.Errorf("nil table printed %q", got)
	}
}

// A Table that went through JSON, as the CLI receives it: numbers are
// float64, objects are raw PartialObjectMetadata, cells may be null.
func TestPrintTableFromJSON(t *testing.T) {
	tbl := podTable(t)
	for i := range tbl.Rows {
		pom := &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"},
			ObjectMeta: *samplePods()[i].(*corev1.Pod).ObjectMeta.DeepCopy(),
		}
		raw, err := json.Marshal(pom)
		if err != nil {
			t.Fatal(err)
		}
		tbl.Rows[i].Object = runtime.RawExtension{Raw: raw}
	}
	data, err := json.Marshal(tbl)
	if err != nil {
		t.Fatal(err)
	}
	var decoded metav1.Table
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	if _, ok := decoded.Rows[1].Cells[3].(float64); !ok {
		t.Fatalf("restarts cell decoded as %T, test assumes float64", decoded.Rows[1].Cells[3])
	}
	decoded.Rows[0].Cells[2] = nil // a null cell prints blank

	want := lines(
		"NAMESPACE   NAME               READY   STATUS             RESTARTS   AGE",
		"default     web-7d4b9c-x2k8p   1/1                        0          3m20s",
		"storage     db-0               1/2     CrashLoopBackOff   12         2d3h",
	)
	if got := printed(t, &decoded, PrintOptions{WithNamespace: true}); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// The wrapper kind of a metadata-only row must not become the prefix.
	if got := printed(t, &decoded, PrintOptions{WithKind: true, NoHeaders: true}); !strings.HasPrefix(got, "web-7d4b9c-x2k8p ") {
		t.Errorf("kind prefix derived from PartialObjectMetadata:\n%s", got)
	}
}

func TestPrintTableCells(t *testing.T) {
	tbl := &metav1.Table{
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name"},
			{Name: "Message", Type: "string"},
			{Name: "Ratio", Type: "number"},
			{Name: "Extra", Type: "string", Priority: 1},
		},
		Rows: []metav1.TableRow{
			{Cells: []any{"a", "first line\nsecond line", 0.5, "x"}},
			{Cells: []any{"b", "tab\there", float64(1e6)}}, // short row: missing cells are blank
			{Cells: []any{"c", "esc\x1b[31mred", json.Number("7"), true}},
		},
	}
	want := lines(
		"NAME   MESSAGE         RATIO     EXTRA",
		"a      first line...   0.5       x",
		"b      tab here        1000000   ",
		"c      esc^[[31mred    7         true",
	)
	if got := printed(t, tbl, PrintOptions{Wide: true}); got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
}

func TestTable(t *testing.T) {
	objs := samplePods()
	done := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job-x"}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}
	tbl, err := Table(schema.GroupKind{Kind: "Pod"}, append(objs, done), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Kind != "Table" || tbl.APIVersion != "meta.k8s.io/v1" {
		t.Errorf("TypeMeta = %+v", tbl.TypeMeta)
	}
	if len(tbl.ColumnDefinitions) != 9 || len(tbl.Rows) != 3 {
		t.Fatalf("%d columns, %d rows", len(tbl.ColumnDefinitions), len(tbl.Rows))
	}
	for i, r := range tbl.Rows {
		if r.Object.Object != nil || r.Object.Raw != nil {
			t.Errorf("row %d has an object; the caller fills it", i)
		}
	}
	if c := tbl.Rows[2].Conditions; len(c) != 1 || c[0].Type != metav1.RowCompleted || c[0].Status != metav1.ConditionTrue {
		t.Errorf("succeeded pod conditions = %+v", c)
	}
	if tbl.Rows[0].Conditions != nil {
		t.Errorf("running pod has conditions %+v", tbl.Rows[0].Conditions)
	}

	// A kind mismatch is an error, not a malformed table.
	if _, err := Table(schema.GroupKind{Kind: "Node"}, objs, testNow); err == nil {
		t.Error("pods under Node columns: no error")
	}
	// The whole Table must survive JSON, the form kubectl receives.
	if _, err := json.Marshal(tbl); err != nil {
		t.Error(err)
	}
}

func TestPrintTableKindPrefixFromObject(t *testing.T) {
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", CreationTimestamp: ago(time.Hour)}}
	tbl, err := Table(schema.GroupKind{Group: "apps", Kind: "Deployment"}, []runtime.Object{dep}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	tbl.Rows[0].Object.Object = dep // typed, TypeMeta empty: the scheme names it
	want := lines(
		"NAME                  READY   UP-TO-DATE   AVAILABLE   AGE",
		"deployment.apps/web   0/1     0            0           60m",
	)
	if got := printed(t, tbl, PrintOptions{WithKind: true}); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// Full objects sent as JSON (includeObject=Object) name their kind too.
	tbl.Rows[0].Object = runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"prod"}}`)}
	got := printed(t, tbl, PrintOptions{WithKind: true, WithNamespace: true, NoHeaders: true})
	if want := "prod   service/web   0/1   0     0     60m\n"; got != want {
		t.Errorf("got %q", got)
	}
}
