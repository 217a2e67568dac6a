package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/printers"
)

// listChunk is the page size of lists, as kubectl's --chunk-size default.
const listChunk = 500

type getOptions struct {
	kube          kubeOptions
	allNamespaces bool
	selector      string
	fieldSelector string
	output        string
	watch         bool
	watchOnly     bool
	noHeaders     bool
	showKind      bool
	args          []string
	streams       Streams
}

func newGetCmd(s Streams) *cobra.Command {
	o := &getOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "get TYPE[,TYPE...] [NAME...] | TYPE/NAME...",
		Short: "Display one or many resources, as kubectl get does",
		Long: `Display one or many resources. Types are plural, singular or short names
(po, svc, deploy, ns, no, ...), optionally with a group (deployments.apps).

Examples:
  drover get pods
  drover get po,svc -A
  drover get deploy/web -o yaml
  drover get pods -l app=web -w`,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.args = args
			return getRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	f.StringVar(&o.fieldSelector, "field-selector", "", "field selector, e.g. metadata.name=web")
	f.StringVarP(&o.output, "output", "o", "", "output format: wide, yaml, json or name")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, watch for changes")
	f.BoolVar(&o.watchOnly, "watch-only", false, "watch for changes without listing first")
	f.BoolVar(&o.noHeaders, "no-headers", false, "leave out the header line")
	f.BoolVar(&o.showKind, "show-kind", false, "prefix names with their kind")
	return cmd
}

func getRun(ctx context.Context, o *getOptions) error {
	switch o.output {
	case "", "wide", "json", "yaml", "name":
	default:
		return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", o.output)
	}
	if len(o.args) == 0 {
		return errors.New("you must specify the type of resource to get. Use \"drover api-resources\" for a complete list of supported resources")
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	reqs, err := parseResourceArgs(k.mapper, o.args)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if len(r.names) > 0 && o.allNamespaces {
			return errors.New("a resource cannot be retrieved by name across all namespaces")
		}
		if len(r.names) > 0 && o.selector != "" {
			return errors.New("name cannot be provided when a selector is specified")
		}
	}
	if o.watch || o.watchOnly {
		return getWatch(ctx, o, k, reqs)
	}
	switch o.output {
	case "json", "yaml":
		return getObjects(ctx, o, k, reqs)
	case "name":
		return getNames(ctx, o, k, reqs)
	}
	return getTables(ctx, o, k, reqs)
}

// scoped returns the client for a request: all namespaces with -A, else
// the chosen one (ignored for cluster-scoped resources).
func (o *getOptions) scoped(k *kube, m client.Mapping) client.ResourceClient {
	ns := k.namespace
	if o.allNamespaces {
		ns = metav1.NamespaceAll
	}
	return k.c.Resource(m).Namespace(ns)
}

func (o *getOptions) listOptions() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: o.selector, FieldSelector: o.fieldSelector, Limit: listChunk}
}

func (o *getOptions) printOptions(m client.Mapping, withKind bool) printers.PrintOptions {
	return printers.PrintOptions{
		Wide:          o.output == "wide",
		NoHeaders:     o.noHeaders,
		WithNamespace: o.allNamespaces && m.Namespaced,
		WithKind:      withKind,
		KindPrefix:    m.KindName() + "/",
	}
}

// noResources says what kubectl says to an empty answer, on stderr.
func (o *getOptions) noResources(k *kube, reqs []resourceRequest) {
	noResources(o.streams, k.namespace, o.allNamespaces, reqs)
}

func noResources(s Streams, namespace string, allNamespaces bool, reqs []resourceRequest) {
	namespaced := false
	for _, r := range reqs {
		namespaced = namespaced || r.mapping.Namespaced
	}
	if allNamespaces || !namespaced {
		fmt.Fprintln(s.Err, "No resources found")
		return
	}
	fmt.Fprintf(s.Err, "No resources found in %s namespace.\n", namespace)
}

func getTables(ctx context.Context, o *getOptions, k *kube, reqs []resourceRequest) error {
	var errs itemErrors
	printed, named := 0, false
	withKind := o.showKind || len(reqs) > 1
	for _, r := range reqs {
		rc := o.scoped(k, r.mapping)
		var t *metav1.Table
		if len(r.names) == 0 {
			var err error
			if t, err = listTable(ctx, rc, o.listOptions()); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		for _, name := range r.names {
			named = true
			one, err := rc.GetTable(ctx, name, metav1.GetOptions{})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if t == nil {
				t = one
			} else {
				t.Rows = append(t.Rows, one.Rows...)
			}
		}
		if t == nil || len(t.Rows) == 0 {
			continue
		}
		if printed > 0 {
			fmt.Fprintln(o.streams.Out)
		}
		if err := printers.PrintTable(o.streams.Out, t, o.printOptions(r.mapping, withKind)); err != nil {
			return err
		}
		printed++
	}
	if printed == 0 && len(errs) == 0 && !named {
		o.noResources(k, reqs)
	}
	return errs.orNil()
}

// listTable reads every page of a Table list.
func listTable(ctx context.Context, rc client.ResourceClient, opts metav1.ListOptions) (*metav1.Table, error) {
	var all *metav1.Table
	for {
		t, err := rc.ListTable(ctx, opts)
		if err != nil {
			return nil, listError(rc, opts, err)
		}
		if all == nil {
			all = t
		} else {
			all.Rows = append(all.Rows, t.Rows...)
		}
		if t.Continue == "" {
			return all, nil
		}
		opts.Continue = t.Continue
	}
}

// listAll reads every page of a list.
func listAll(ctx context.Context, rc client.ResourceClient, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	var all *unstructured.UnstructuredList
	for {
		l, err := rc.List(ctx, opts)
		if err != nil {
			return nil, listError(rc, opts, err)
		}
		if all == nil {
			all = l
		} else {
			all.Items = append(all.Items, l.Items...)
		}
		if l.GetContinue() == "" {
			return all, nil
		}
		opts.Continue = l.GetContinue()
	}
}

// listError words a list the server refused as kubectl's resource builder
// does: a BadRequest or NotFound says what was listed, and with which
// selectors.
func listError(rc client.ResourceClient, opts metav1.ListOptions, err error) error {
	var se *client.StatusError
	if !errors.As(err, &se) || (se.Status.Reason != metav1.StatusReasonBadRequest && se.Status.Reason != metav1.StatusReasonNotFound) {
		return err
	}
	subject := rc.Mapping().GVR().String() // "/v1, Resource=pods", as kubectl prints it
	cp := *se
	if opts.LabelSelector == "" && opts.FieldSelector == "" {
		cp.Status.Message = fmt.Sprintf("Unable to list %q: %s", subject, se.Status.Message)
	} else {
		cp.Status.Message = fmt.Sprintf("Unable to find %q that match label selector %q, field selector %q: %s", subject, opts.LabelSelector, opts.FieldSelector, se.Status.Message)
	}
	return &cp
}

// collect gets the objects of the requests, in order; single is true when
// exactly one object was asked for by name, which kubectl prints bare
// rather than in a List.
func collect(ctx context.Context, o *getOptions, k *kube, reqs []resourceRequest) (objs []unstructured.Unstructured, single bool, errs itemErrors) {
	single = len(reqs) == 1 && len(reqs[0].names) == 1
	for _, r := range reqs {
		rc := o.scoped(k, r.mapping)
		if len(r.names) == 0 {
			l, err := listAll(ctx, rc, o.listOptions())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			objs = append(objs, l.Items...)
		}
		for _, name := range r.names {
			obj, err := rc.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			objs = append(objs, *obj)
		}
	}
	return objs, single, errs
}

func getObjects(ctx context.Context, o *getOptions, k *kube, reqs []resourceRequest) error {
	objs, single, errs := collect(ctx, o, k, reqs)
	if single && len(objs) == 1 {
		return printObject(o.streams.Out, o.output, objs[0].Object)
	}
	if single && len(objs) == 0 {
		return errs.orNil()
	}
	items := make([]any, len(objs))
	for i := range objs {
		items[i] = objs[i].Object
	}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}, "items": items}
	if err := printObject(o.streams.Out, o.output, list); err != nil {
		return err
	}
	return errs.orNil()
}

func getNames(ctx context.Context, o *getOptions, k *kube, reqs []resourceRequest) error {
	objs, _, errs := collect(ctx, o, k, reqs)
	for i := range objs {
		fmt.Fprintln(o.streams.Out, objectName(k.mapper, &objs[i]))
	}
	if len(objs) == 0 && len(errs) == 0 {
		named := false
		for _, r := range reqs {
			named = named || len(r.names) > 0
		}
		if !named {
			o.noResources(k, reqs)
		}
	}
	return errs.orNil()
}

// objectName is kubectl's -o name form: "deployment.apps/web".
func objectName(mapper *client.Mapper, u *unstructured.Unstructured) string {
	if m, err := mapper.KindFor(u.GetAPIVersion(), u.GetKind()); err == nil {
		return m.KindName() + "/" + u.GetName()
	}
	gvk := u.GroupVersionKind()
	return fmt.Sprintf("%s/%s", gvk.GroupKind().String(), u.GetName())
}

// printObject writes one object as JSON (4-space indent, as kubectl) or YAML.
func printObject(w io.Writer, format string, obj map[string]any) error {
	if format == "yaml" {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	b, err := json.MarshalIndent(obj, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// getWatch lists (unless --watch-only), then prints changes as they come:
// rows of one-row Tables by default, objects with -o json|yaml|name.
func getWatch(ctx context.Context, o *getOptions, k *kube, reqs []resourceRequest) error {
	if len(reqs) != 1 {
		return errors.New("you may only specify a single resource type")
	}
	r := reqs[0]
	if len(r.names) > 1 {
		return fmt.Errorf("watch is only supported on individual resources and resource collections, but %d resources were found", len(r.names))
	}
	rc := o.scoped(k, r.mapping)
	opts := o.listOptions()
	if len(r.names) == 1 {
		nameSel := fields.OneTermEqualSelector("metadata.name", r.names[0]).String()
		if opts.FieldSelector != "" {
			nameSel = opts.FieldSelector + "," + nameSel
		}
		opts.FieldSelector = nameSel
	}
	var err error
	if o.output == "" || o.output == "wide" {
		err = watchTables(ctx, o, k, r, rc, opts)
	} else {
		err = watchObjects(ctx, o, k, r, rc, opts)
	}
	if err != nil && ctx.Err() != nil {
		// Interrupted: the way a watch ends, whether it was still
		// listing, connecting or streaming.
		return nil
	}
	return err
}

func watchTables(ctx context.Context, o *getOptions, k *kube, r resourceRequest, rc client.ResourceClient, opts metav1.ListOptions) error {
	popts := o.printOptions(r.mapping, o.showKind)
	var columns []metav1.TableColumnDefinition
	var keeper columnKeeper
	headers := o.noHeaders
	emit := func(t *metav1.Table) error {
		if len(t.ColumnDefinitions) > 0 {
			columns = t.ColumnDefinitions
		} else {
			// The server may send the columns with the first event only.
			t.ColumnDefinitions = columns
		}
		if len(t.Rows) == 0 {
			return nil
		}
		popts.NoHeaders = headers
		headers = true
		aligned, opts := keeper.align(t, popts)
		return printers.PrintTable(o.streams.Out, aligned, opts)
	}
	if !o.watchOnly {
		t, err := listTable(ctx, rc, opts)
		if err != nil {
			return err
		}
		if len(t.Rows) == 0 && len(r.names) == 1 {
			// Say NotFound in the server's words.
			if _, err := rc.GetTable(ctx, r.names[0], metav1.GetOptions{}); err != nil {
				return err
			}
		}
		if err := emit(t); err != nil {
			return err
		}
		opts.ResourceVersion = t.ResourceVersion
	}
	opts.Limit, opts.Continue = 0, ""
	w, err := rc.WatchTable(ctx, opts)
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.Events() {
		switch ev.Type {
		case watch.Bookmark:
			continue
		case watch.Error:
			return ev.Err
		}
		if err := emit(ev.Object); err != nil {
			return err
		}
	}
	return w.Err()
}

func watchObjects(ctx context.Context, o *getOptions, k *kube, r resourceRequest, rc client.ResourceClient, opts metav1.ListOptions) error {
	n := 0
	emit := func(u *unstructured.Unstructured) error {
		n++
		if o.output == "name" {
			_, err := fmt.Fprintln(o.streams.Out, objectName(k.mapper, u))
			return err
		}
		if o.output == "yaml" && n > 1 {
			fmt.Fprintln(o.streams.Out, "---")
		}
		return printObject(o.streams.Out, o.output, u.Object)
	}
	if !o.watchOnly {
		l, err := listAll(ctx, rc, opts)
		if err != nil {
			return err
		}
		for i := range l.Items {
			if err := emit(&l.Items[i]); err != nil {
				return err
			}
		}
		opts.ResourceVersion = l.GetResourceVersion()
	}
	opts.Limit, opts.Continue = 0, ""
	w, err := rc.Watch(ctx, opts)
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.Events() {
		switch ev.Type {
		case watch.Bookmark:
			continue
		case watch.Error:
			return ev.Err
		}
		if err := emit(ev.Object); err != nil {
			return err
		}
	}
	return w.Err()
}

// columnKeeper makes the tables of successive watch events line up, as
// kubectl's do (its tabwriter remembers column widths across flushes):
// visible cells become strings padded to the widest seen so far, so each
// PrintTable call lays the columns out the same way. Widths only grow.
type columnKeeper struct {
	widths []int
}

func (k *columnKeeper) align(t *metav1.Table, opts printers.PrintOptions) (*metav1.Table, printers.PrintOptions) {
	out := &metav1.Table{TypeMeta: t.TypeMeta, ListMeta: t.ListMeta}
	var cols []int
	for i, c := range t.ColumnDefinitions {
		if c.Priority == 0 || opts.Wide {
			cols = append(cols, i)
		}
	}
	// The namespace column becomes an ordinary one so it can be padded too.
	withNS := opts.WithNamespace
	opts.WithNamespace = false
	if withNS {
		out.ColumnDefinitions = append(out.ColumnDefinitions, metav1.TableColumnDefinition{Name: "Namespace", Type: "string"})
	}
	for _, i := range cols {
		out.ColumnDefinitions = append(out.ColumnDefinitions, t.ColumnDefinitions[i])
	}
	prefix := 0
	if opts.WithKind {
		prefix = len([]rune(opts.KindPrefix))
	}
	for _, row := range t.Rows {
		r := metav1.TableRow{Conditions: row.Conditions, Object: row.Object}
		if withNS {
			r.Cells = append(r.Cells, rowNamespace(row))
		}
		for _, i := range cols {
			var c any
			if i < len(row.Cells) {
				c = row.Cells[i]
			}
			r.Cells = append(r.Cells, cellText(c))
		}
		out.Rows = append(out.Rows, r)
	}
	n := len(out.ColumnDefinitions)
	outName := -1 // the name column's index in out
	for j, c := range out.ColumnDefinitions {
		if c.Format == "name" && c.Type == "string" {
			outName = j
			break
		}
	}
	for len(k.widths) < n {
		k.widths = append(k.widths, 0)
	}
	for j := range n {
		w := len([]rune(out.ColumnDefinitions[j].Name))
		for _, r := range out.Rows {
			cw := len([]rune(r.Cells[j].(string)))
			if j == outName {
				cw += prefix
			}
			w = max(w, cw)
		}
		k.widths[j] = max(k.widths[j], w)
	}
	// The last column is not padded: that would only add trailing spaces.
	for j := range n - 1 {
		def := &out.ColumnDefinitions[j]
		def.Name = padRight(def.Name, k.widths[j])
		for _, r := range out.Rows {
			w := k.widths[j]
			if j == outName {
				w -= prefix
			}
			r.Cells[j] = padRight(r.Cells[j].(string), w)
		}
	}
	return out, opts
}

func padRight(s string, w int) string {
	if n := len([]rune(s)); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// cellText renders a cell as PrintTable does: nothing for null, the first
// line of a string, integers without a fraction.
func cellText(c any) string {
	switch v := c.(type) {
	case nil:
		return ""
	case string:
		if i := strings.IndexAny(v, "\n\r\f"); i >= 0 {
			return v[:i] + "..."
		}
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(c)
}

// rowNamespace is the namespace of a row's object (Row.Object.Raw is the
// PartialObjectMetadata or object the server sent).
func rowNamespace(row metav1.TableRow) string {
	var m struct {
		Metadata struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if len(row.Object.Raw) > 0 && json.Unmarshal(row.Object.Raw, &m) == nil {
		return m.Metadata.Namespace
	}
	return ""
}
