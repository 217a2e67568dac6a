package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/droverhq/drover/client"
)

type deleteOptions struct {
	kube           kubeOptions
	manifest       manifestFlags
	allNamespaces  bool
	all            bool
	selector       string
	fieldSelector  string
	gracePeriod    int
	now            bool
	force          bool
	cascade        string
	ignoreNotFound bool
	wait           bool
	timeout        time.Duration
	args           []string
	stdin          io.Reader
	streams        Streams
}

func newDeleteCmd(s Streams) *cobra.Command {
	o := &deleteOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "delete (-f FILENAME | TYPE [NAME...] | TYPE/NAME... | TYPE -l SELECTOR | TYPE --all)",
		Short: "Delete resources, as kubectl delete does",
		Long: `Delete resources by manifest, by name, by label selector, or all of a type.
By default delete waits until the objects are gone (--wait=false returns as
soon as the server accepted the deletion).

Examples:
  drover delete pod web-1
  drover delete -f web.yaml
  drover delete pods -l app=web
  drover delete deploy --all -n staging`,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.args, o.stdin = args, cmd.InOrStdin()
			return deleteRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	o.manifest.add(cmd, "delete")
	f := cmd.Flags()
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "with -l or --all, across all namespaces")
	f.BoolVar(&o.all, "all", false, "delete every object of the type in the namespace")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector")
	f.StringVar(&o.fieldSelector, "field-selector", "", "field selector")
	f.IntVar(&o.gracePeriod, "grace-period", -1, "seconds the objects get to terminate (-1: their own default; 0 with --force: at once)")
	f.BoolVar(&o.now, "now", false, "signal immediate shutdown (same as --grace-period=1)")
	f.BoolVar(&o.force, "force", false, "with --grace-period=0, remove the objects from the API at once without waiting for the node to confirm")
	f.StringVar(&o.cascade, "cascade", "background", "dependents: background, foreground or orphan")
	f.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	f.BoolVar(&o.wait, "wait", true, "wait until the objects are gone")
	f.DurationVar(&o.timeout, "timeout", 0, "how long to wait for the deletion (0: no limit)")
	return cmd
}

// deletion is one object to delete.
type deletion struct {
	rc     client.ResourceClient
	m      client.Mapping
	name   string
	source string // the manifest it came from, if any
}

func deleteRun(ctx context.Context, o *deleteOptions) error {
	opts, err := o.deleteOptions()
	if err != nil {
		return err
	}
	if len(o.manifest.files) > 0 && len(o.args) > 0 {
		return errors.New("--filename cannot be used with resource arguments")
	}
	if len(o.manifest.files) == 0 && len(o.args) == 0 {
		return errors.New("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'") //nolint:staticcheck // kubectl's wording
	}
	if o.force && opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds == 0 {
		fmt.Fprintln(o.streams.Err, "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.")
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	var errs itemErrors
	var todo []deletion
	if len(o.manifest.files) > 0 {
		objs, err := readManifests(o.manifest.files, o.manifest.recursive, o.stdin)
		if err != nil {
			return err
		}
		for _, mo := range objs {
			rc, m, err := k.target(mo)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			todo = append(todo, deletion{rc: rc, m: m, name: mo.obj.GetName(), source: mo.source})
		}
	} else {
		reqs, err := parseResourceArgs(k.mapper, o.args)
		if err != nil {
			return err
		}
		more, found, err := o.fromArgs(ctx, k, reqs)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintln(o.streams.Out, "No resources found")
			return nil
		}
		todo = more
	}

	var gone []deletedObject
	for _, d := range todo {
		uid, err := d.delete(ctx, opts, o.wait)
		if client.IsNotFound(err) && o.ignoreNotFound {
			continue
		}
		if err != nil {
			if d.source != "" && client.IsNotFound(err) {
				err = fmt.Errorf("error when deleting %q: %w", d.source, err)
			}
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(o.streams.Out, "%s %q deleted\n", d.m.KindName(), d.name)
		gone = append(gone, deletedObject{d, uid})
	}
	if o.wait {
		waitCtx := ctx
		if o.timeout > 0 {
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithTimeout(ctx, o.timeout)
			defer cancel()
		}
		for _, g := range gone {
			if err := waitDeleted(waitCtx, g); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs.orNil()
}

// fromArgs turns TYPE NAME..., TYPE/NAME or TYPE with -l/--all into
// deletions; found is false when a selector or --all matched nothing.
func (o *deleteOptions) fromArgs(ctx context.Context, k *kube, reqs []resourceRequest) ([]deletion, bool, error) {
	var todo []deletion
	selecting := o.all || o.selector != "" || o.fieldSelector != ""
	for _, r := range reqs {
		ns := k.namespace
		if o.allNamespaces {
			ns = metav1.NamespaceAll
		}
		rc := k.c.Resource(r.mapping).Namespace(ns)
		if len(r.names) > 0 {
			if selecting {
				return nil, false, errors.New("name cannot be provided when a selector or --all is specified")
			}
			if o.allNamespaces {
				return nil, false, errors.New("a resource cannot be retrieved by name across all namespaces")
			}
			for _, n := range r.names {
				todo = append(todo, deletion{rc: rc, m: r.mapping, name: n})
			}
			continue
		}
		if !selecting {
			return nil, false, errors.New("resource(s) were provided, but no name was specified")
		}
		l, err := listAll(ctx, rc, metav1.ListOptions{LabelSelector: o.selector, FieldSelector: o.fieldSelector, Limit: listChunk})
		if err != nil {
			return nil, false, err
		}
		for _, it := range l.Items {
			todo = append(todo, deletion{rc: k.c.Resource(r.mapping).Namespace(it.GetNamespace()), m: r.mapping, name: it.GetName()})
		}
	}
	return todo, len(todo) > 0, nil
}

func (o *deleteOptions) deleteOptions() (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	switch o.cascade {
	case "background", "true":
		p := metav1.DeletePropagationBackground
		opts.PropagationPolicy = &p
	case "foreground":
		p := metav1.DeletePropagationForeground
		opts.PropagationPolicy = &p
	case "orphan", "false":
		p := metav1.DeletePropagationOrphan
		opts.PropagationPolicy = &p
	default:
		return nil, fmt.Errorf("invalid cascade value (%s). Must be \"background\", \"foreground\", or \"orphan\"", o.cascade)
	}
	grace := o.gracePeriod
	if o.now {
		if grace >= 0 {
			return nil, errors.New("--now and --grace-period cannot be specified together")
		}
		grace = 1
	}
	if o.force && grace < 0 {
		grace = 0 // --force alone means at once, as in kubectl
	}
	if grace == 0 && !o.force {
		// Zero without --force means "as soon as possible", not "skip the node".
		grace = 1
	}
	if grace >= 0 {
		g := int64(grace)
		opts.GracePeriodSeconds = &g
	}
	return opts, nil
}

// delete sends the DELETE. With wait it first reads the object's UID, so
// the wait that follows is for this incarnation and not a successor that
// takes the name.
func (d deletion) delete(ctx context.Context, opts *metav1.DeleteOptions, wait bool) (types.UID, error) {
	var uid types.UID
	if wait {
		// A failed read is not reported: the DELETE that follows says what
		// is wrong in its own words (not found, forbidden to delete), and
		// without a UID there is nothing to wait for.
		if obj, err := d.rc.Get(ctx, d.name, metav1.GetOptions{}); err == nil {
			uid = obj.GetUID()
		}
	}
	return uid, d.rc.Delete(ctx, d.name, opts)
}

type deletedObject struct {
	deletion
	uid types.UID // "" when it was gone at once
}

// waitDeleted waits until the object is gone (or replaced by another with
// the same name), by watching it from the resourceVersion it was last seen
// at.
func waitDeleted(ctx context.Context, g deletedObject) error {
	if g.uid == "" {
		return nil
	}
	for {
		obj, err := g.rc.Get(ctx, g.name, metav1.GetOptions{})
		if client.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return waitErr(ctx, g, err)
		}
		if obj.GetUID() != g.uid {
			return nil
		}
		w, err := g.rc.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", g.name).String(),
			ResourceVersion: obj.GetResourceVersion(),
		})
		if err != nil {
			return waitErr(ctx, g, err)
		}
		done := false
		for ev := range w.Events() {
			if ev.Type == watch.Error {
				break // e.g. 410 Gone: look again from the current state
			}
			if ev.Object != nil && ev.Object.GetName() == g.name &&
				(ev.Type == watch.Deleted || ev.Object.GetUID() != g.uid) {
				done = true
				break
			}
		}
		w.Stop()
		if done {
			return nil
		}
		if ctx.Err() != nil {
			return waitErr(ctx, g, ctx.Err())
		}
	}
}

func waitErr(ctx context.Context, g deletedObject, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("timed out waiting for the condition on %s/%s", g.m.Resource, g.name)
	}
	return err
}
