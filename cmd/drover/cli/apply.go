package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/droverhq/drover/client"
)

// lastAppliedAnnotation holds the configuration apply last sent, so the next
// apply can tell fields the user removed from fields others set. The same
// key as kubectl's, so the two can take turns on one object.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// fieldManager names drover's CLI in managedFields.
const fieldManager = "drover"

// manifestFlags are the -f flags apply, create and delete share.
type manifestFlags struct {
	files     []string
	recursive bool
}

func (m *manifestFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().StringSliceVarP(&m.files, "filename", "f", nil, "file, directory or - (stdin) with the manifests to "+what)
	cmd.Flags().BoolVarP(&m.recursive, "recursive", "R", false, "read directories given with -f recursively")
}

// dryRun is --dry-run: none, client (no request changes anything) or server
// (the server validates and answers without persisting).
type dryRun string

func (d dryRun) check() error {
	switch d {
	case "none", "client", "server":
		return nil
	}
	return fmt.Errorf("invalid dry-run value (%s). Must be \"none\", \"server\", or \"client\"", string(d))
}

func (d dryRun) serverOpt() []string {
	if d == "server" {
		return []string{metav1.DryRunAll}
	}
	return nil
}

func (d dryRun) suffix() string {
	switch d {
	case "client":
		return " (dry run)"
	case "server":
		return " (server dry run)"
	}
	return ""
}

type applyOptions struct {
	kube     kubeOptions
	manifest manifestFlags
	dryRun   dryRun
	stdin    io.Reader
	streams  Streams
}

func newApplyCmd(s Streams) *cobra.Command {
	o := &applyOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "Create or update resources from manifests, as kubectl apply does",
		Long: `Create objects that do not exist and update those that do, by a three-way
merge of the last applied configuration (kept in the
kubectl.kubernetes.io/last-applied-configuration annotation), the manifest
and the live object: fields removed from the manifest are removed from the
object; fields set by others are kept.

Examples:
  drover apply -f web.yaml
  drover apply -f manifests/ -R
  cat web.json | drover apply -f -`,
		Args: cobra.NoArgs,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.stdin = cmd.InOrStdin()
			return applyRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	o.manifest.add(cmd, "apply")
	cmd.Flags().StringVar((*string)(&o.dryRun), "dry-run", "none", "none, client or server")
	return cmd
}

func applyRun(ctx context.Context, o *applyOptions) error {
	if err := o.dryRun.check(); err != nil {
		return err
	}
	objs, err := readManifests(o.manifest.files, o.manifest.recursive, o.stdin)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return fmt.Errorf("no objects passed to apply")
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	var errs itemErrors
	for _, mo := range objs {
		msg, err := applyOne(ctx, o, k, mo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(o.streams.Out, msg+o.dryRun.suffix())
	}
	return errs.orNil()
}

// target finds the resource of a manifest object and settles its namespace:
// the object's own, else the default one; a different -n is an error.
func (k *kube) target(mo manifestObject) (client.ResourceClient, client.Mapping, error) {
	obj := mo.obj
	m, err := k.mapper.KindFor(obj.GetAPIVersion(), obj.GetKind())
	if err != nil {
		return client.ResourceClient{}, m, fmt.Errorf("resource mapping not found for name: %q namespace: %q from %q: %w\nensure CRDs are installed first", obj.GetName(), obj.GetNamespace(), mo.source, err)
	}
	if !m.Namespaced {
		return k.c.Resource(m), m, nil
	}
	ns := obj.GetNamespace()
	switch {
	case ns == "":
		ns = k.namespace
		obj.SetNamespace(ns)
	case k.explicitNS && ns != k.namespace:
		return client.ResourceClient{}, m, fmt.Errorf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.", ns, k.namespace, ns) //nolint:staticcheck // kubectl's wording
	}
	return k.c.Resource(m).Namespace(ns), m, nil
}

func applyOne(ctx context.Context, o *applyOptions, k *kube, mo manifestObject) (string, error) {
	rc, m, err := k.target(mo)
	if err != nil {
		return "", err
	}
	name := mo.obj.GetName()
	if name == "" {
		return "", fmt.Errorf("error when retrieving current configuration of %s from %q: resource name may not be empty", m.KindName(), mo.source)
	}
	ref := m.KindName() + "/" + name
	annotated, modified, err := withLastApplied(mo.obj)
	if err != nil {
		return "", err
	}
	live, err := rc.Get(ctx, name, metav1.GetOptions{})
	if client.IsNotFound(err) {
		if o.dryRun != "client" {
			if _, err := rc.Create(ctx, annotated, metav1.CreateOptions{FieldManager: fieldManager, DryRun: o.dryRun.serverOpt()}); err != nil {
				return "", fmt.Errorf("error when creating %q: %w", mo.source, err)
			}
		}
		return ref + " created", nil
	}
	if err != nil {
		return "", fmt.Errorf("error when retrieving current configuration of %s from %q: %w", ref, mo.source, err)
	}
	var original []byte
	if v, ok := live.GetAnnotations()[lastAppliedAnnotation]; ok {
		original = []byte(v)
	} else {
		fmt.Fprintf(o.streams.Err, "Warning: resource %s/%s is missing the %s annotation which is required by drover apply. drover apply should only be used on resources created declaratively by either drover create --save-config or drover apply. The missing annotation will be patched automatically.\n", m.GroupResource(), name, lastAppliedAnnotation)
	}
	current, err := json.Marshal(live.Object)
	if err != nil {
		return "", err
	}
	pt, patch, err := threeWayPatch(m, original, modified, current)
	if err != nil {
		return "", fmt.Errorf("creating patch for %s from %q: %w", ref, mo.source, err)
	}
	if string(patch) == "{}" {
		return ref + " unchanged", nil
	}
	if o.dryRun != "client" {
		if _, err := rc.Patch(ctx, name, pt, patch, metav1.PatchOptions{FieldManager: fieldManager, DryRun: o.dryRun.serverOpt()}); err != nil {
			return "", fmt.Errorf("error when applying patch to %s from %q: %w", ref, mo.source, err)
		}
	}
	return ref + " configured", nil
}

// withLastApplied returns obj with the last-applied annotation set to obj's
// own JSON (without that annotation), and the JSON of the result: the
// "modified" side of the three-way patch, so the patch also updates the
// annotation.
func withLastApplied(obj *unstructured.Unstructured) (*unstructured.Unstructured, []byte, error) {
	u := obj.DeepCopy()
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	delete(ann, lastAppliedAnnotation)
	// An empty map stays in, as "annotations":{}: kubectl writes it that
	// way, and an identical annotation lets the two apply in turns without
	// reporting changes that are not there.
	u.SetAnnotations(ann)
	self, err := json.Marshal(u.Object)
	if err != nil {
		return nil, nil, err
	}
	ann[lastAppliedAnnotation] = string(self) + "\n"
	u.SetAnnotations(ann)
	modified, err := json.Marshal(u.Object)
	if err != nil {
		return nil, nil, err
	}
	return u, modified, nil
}

// threeWayPatch computes apply's patch from the last applied configuration
// (original, may be empty), the manifest (modified) and the live object
// (current): changes from current to modified, plus deletions of what
// original had and modified dropped. Built-in kinds get a strategic merge
// patch, whose list merge keys come from the Go types (containers merge by
// name); other kinds a JSON merge patch.
func threeWayPatch(m client.Mapping, original, modified, current []byte) (types.PatchType, []byte, error) {
	if typed, ok := client.NewTyped(m.GVK()); ok {
		meta, err := strategicpatch.NewPatchMetaFromStruct(typed)
		if err != nil {
			return "", nil, err
		}
		patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, meta, true)
		return types.StrategicMergePatchType, patch, err
	}
	patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, current)
	return types.MergePatchType, patch, err
}

type createOptions struct {
	kube       kubeOptions
	manifest   manifestFlags
	dryRun     dryRun
	saveConfig bool
	stdin      io.Reader
	streams    Streams
}

func newCreateCmd(s Streams) *cobra.Command {
	o := &createOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "create -f FILENAME",
		Short: "Create resources from manifests, as kubectl create does",
		Long: `Create every object in the manifests; objects that exist are errors.

Examples:
  drover create -f web.yaml
  drover create -f manifests/ --save-config`,
		Args: cobra.NoArgs,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.stdin = cmd.InOrStdin()
			return createRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	o.manifest.add(cmd, "create")
	cmd.Flags().StringVar((*string)(&o.dryRun), "dry-run", "none", "none, client or server")
	cmd.Flags().BoolVar(&o.saveConfig, "save-config", false, "record the configuration in the last-applied annotation, so drover apply can take over later")
	return cmd
}

func createRun(ctx context.Context, o *createOptions) error {
	if err := o.dryRun.check(); err != nil {
		return err
	}
	objs, err := readManifests(o.manifest.files, o.manifest.recursive, o.stdin)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return fmt.Errorf("no objects passed to create")
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	var errs itemErrors
	for _, mo := range objs {
		rc, m, err := k.target(mo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		obj := mo.obj
		if o.saveConfig {
			if obj, _, err = withLastApplied(obj); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		name := obj.GetName()
		if o.dryRun != "client" {
			created, err := rc.Create(ctx, obj, metav1.CreateOptions{FieldManager: fieldManager, DryRun: o.dryRun.serverOpt()})
			if err != nil {
				errs = append(errs, fmt.Errorf("error when creating %q: %w", mo.source, err))
				continue
			}
			name = created.GetName() // the server's, for generateName
		}
		fmt.Fprintf(o.streams.Out, "%s/%s created%s\n", m.KindName(), name, o.dryRun.suffix())
	}
	return errs.orNil()
}
