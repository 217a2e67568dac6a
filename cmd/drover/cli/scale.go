package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

type scaleOptions struct {
	kube            kubeOptions
	replicas        int
	currentReplicas int
	args            []string
	streams         Streams
}

func newScaleCmd(s Streams) *cobra.Command {
	o := &scaleOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "scale TYPE/NAME... | TYPE NAME... --replicas=N",
		Short: "Set the number of replicas of a deployment or replica set",
		Long: `Set the replica count through the scale subresource.

Examples:
  drover scale deploy/web --replicas=3
  drover scale rs web-5d4f --replicas=0 --current-replicas=2`,
		Args: cobra.MinimumNArgs(1),
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.args = args
			if !cmd.Flags().Changed("replicas") {
				return errors.New("the --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
			}
			return scaleRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	cmd.Flags().IntVar(&o.replicas, "replicas", 0, "the new number of replicas (required)")
	cmd.Flags().IntVar(&o.currentReplicas, "current-replicas", -1, "precondition: only scale if the current count is this")
	return cmd
}

func scaleRun(ctx context.Context, o *scaleOptions) error {
	if o.replicas < 0 {
		return errors.New("the --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	reqs, err := parseResourceArgs(k.mapper, o.args)
	if err != nil {
		return err
	}
	var errs itemErrors
	for _, r := range reqs {
		if len(r.names) == 0 {
			return errors.New("resource(s) were provided, but no name was specified")
		}
		rc := k.c.Resource(r.mapping).Namespace(k.namespace)
		for _, name := range r.names {
			var patch []byte
			if o.currentReplicas >= 0 {
				// The precondition is the scale's resourceVersion: a
				// concurrent change between this read and the patch is a
				// 409 Conflict, not a silent overwrite.
				sc, err := rc.Get(ctx, name, metav1.GetOptions{}, "scale")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				cur, _, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas")
				if cur != int64(o.currentReplicas) {
					errs = append(errs, fmt.Errorf("Expected replicas to be %d, was %d", o.currentReplicas, cur)) //nolint:staticcheck // kubectl's wording
					continue
				}
				patch = fmt.Appendf(nil, `{"metadata":{"resourceVersion":%s},"spec":{"replicas":%d}}`, strconv.Quote(sc.GetResourceVersion()), o.replicas)
			} else {
				patch = fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, o.replicas)
			}
			if _, err := rc.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}, "scale"); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(o.streams.Out, "%s/%s scaled\n", r.mapping.KindName(), name)
		}
	}
	return errs.orNil()
}
