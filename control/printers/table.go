package printers

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Table builds a meta.k8s.io/v1 Table for objs, all of kind gk, as
// kube-apiserver answers a list or get with as=Table: every column (wide
// ones too; the client hides them), one row per object. Row.Object is left
// empty for the caller to fill according to includeObject. Finished pods
// carry the Completed row condition kube-apiserver sets on them.
func Table(gk schema.GroupKind, objs []runtime.Object, now time.Time) (*metav1.Table, error) {
	t := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"},
		ColumnDefinitions: Columns(gk),
		Rows:              make([]metav1.TableRow, 0, len(objs)),
	}
	for _, obj := range objs {
		cells, err := Cells(obj, now)
		if err != nil {
			return nil, err
		}
		if len(cells) != len(t.ColumnDefinitions) {
			return nil, fmt.Errorf("printers: %T has %d cells but kind %s has %d columns", obj, len(cells), gk, len(t.ColumnDefinitions))
		}
		t.Rows = append(t.Rows, metav1.TableRow{Cells: cells, Conditions: rowConditions(obj)})
	}
	return t, nil
}

func rowConditions(obj runtime.Object) []metav1.TableRowCondition {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(pod.Status.Phase), Message: "The pod has completed successfully."}}
	case corev1.PodFailed:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(pod.Status.Phase), Message: "The pod failed."}}
	}
	return nil
}

// PrintOptions control PrintTable.
type PrintOptions struct {
	// Wide shows the Priority>0 columns too (-o wide).
	Wide bool
	// NoHeaders omits the header line (--no-headers).
	NoHeaders bool
	// WithNamespace adds a leading NAMESPACE column (--all-namespaces). Each
	// row's namespace comes from Row.Object: the decoded object's metadata
	// when Row.Object.Object is set, else metadata.namespace in the JSON of
	// Row.Object.Raw (as a Table received over the wire carries it), else
	// it is left blank.
	WithNamespace bool
	// WithKind prefixes the NAME cells with KindPrefix, as kubectl does when
	// several kinds are printed ("pod/web-1", "deployment.apps/web"). With an
	// empty KindPrefix the prefix is derived from each row's object kind.
	WithKind bool
	// KindPrefix is the literal prefix for NAME cells, e.g. "pod/".
	KindPrefix string
}

// Layout of kubectl's get output: 3 spaces between columns.
const (
	tableMinWidth = 6
	tableTabWidth = 4
	tablePadding  = 3
)

// PrintTable writes t as kubectl get does: upper-cased headers, columns
// aligned with 3 spaces of padding, wide-only columns only with Wide. A table
// without rows prints nothing, not even headers: kubectl then says "No
// resources found" on stderr, which is the caller's business.
func PrintTable(w io.Writer, t *metav1.Table, opts PrintOptions) error {
	if t == nil || len(t.Rows) == 0 {
		return nil
	}
	var visible []int
	nameCol := -1
	for i, c := range t.ColumnDefinitions {
		if c.Priority != 0 && !opts.Wide {
			continue
		}
		visible = append(visible, i)
		if nameCol < 0 && c.Type == typeString && c.Format == formatName {
			nameCol = i
		}
	}

	tw := tabwriter.NewWriter(w, tableMinWidth, tableTabWidth, tablePadding, ' ', 0)
	fields := make([]string, 0, len(visible)+1)
	if !opts.NoHeaders {
		if opts.WithNamespace {
			fields = append(fields, "NAMESPACE")
		}
		for _, i := range visible {
			fields = append(fields, strings.ToUpper(t.ColumnDefinitions[i].Name))
		}
		if _, err := fmt.Fprintln(tw, strings.Join(fields, "\t")); err != nil {
			return err
		}
	}
	for _, row := range t.Rows {
		fields = fields[:0]
		if opts.WithNamespace {
			fields = append(fields, rowNamespace(row))
		}
		for _, i := range visible {
			var s string
			if i < len(row.Cells) {
				s = formatCell(row.Cells[i])
			}
			if i == nameCol && opts.WithKind {
				s = kindPrefix(row, opts.KindPrefix) + s
			}
			fields = append(fields, s)
		}
		if _, err := fmt.Fprintln(tw, strings.Join(fields, "\t")); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// formatCell renders one cell as kubectl does: nothing for null, strings cut
// at the first line break (marked "..."), numbers decoded from JSON as
// float64 printed as the integers they usually are.
func formatCell(c any) string {
	switch v := c.(type) {
	case nil:
		return ""
	case string:
		if i := strings.IndexAny(v, "\n\r\f"); i >= 0 {
			return sanitize(v[:i]) + "..."
		}
		return sanitize(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	}
	return sanitize(fmt.Sprint(c))
}

// sanitize keeps a cell on its column: a tab would start a new column and a
// terminal escape could repaint the screen, so both are made visible.
func sanitize(s string) string {
	if !strings.ContainsAny(s, "\t\x1b") {
		return s
	}
	return strings.NewReplacer("\t", " ", "\x1b", "^[").Replace(s)
}

// rowMeta is the slice of an object's JSON PrintTable needs from Row.Object.Raw.
type rowMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

func decodeRowMeta(row metav1.TableRow) (rowMeta, bool) {
	var m rowMeta
	if len(row.Object.Raw) == 0 || json.Unmarshal(row.Object.Raw, &m) != nil {
		return m, false
	}
	return m, true
}

func rowNamespace(row metav1.TableRow) string {
	if obj := row.Object.Object; obj != nil {
		if m, err := meta.Accessor(obj); err == nil {
			return m.GetNamespace()
		}
	}
	m, _ := decodeRowMeta(row)
	return m.Metadata.Namespace
}

// kindPrefix returns explicit, or "kind.group/" derived from the row's
// object, the form kubectl uses ("deployment.apps/", "pod/").
func kindPrefix(row metav1.TableRow, explicit string) string {
	if explicit != "" {
		return explicit
	}
	var gvk schema.GroupVersionKind
	if obj := row.Object.Object; obj != nil {
		gvk = kindOf(obj)
	} else if m, ok := decodeRowMeta(row); ok {
		gvk = schema.FromAPIVersionAndKind(m.APIVersion, m.Kind)
	}
	// Rows sent with includeObject=Metadata carry a PartialObjectMetadata,
	// which names the wrapper, not the listed kind.
	if gvk.Kind == "" || gvk.Group == metav1.GroupName {
		return ""
	}
	return strings.ToLower(gvk.GroupKind().String()) + "/"
}
