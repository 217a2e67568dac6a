package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// cordonOptions serve both cordon (unschedulable true) and uncordon.
type cordonOptions struct {
	kube     kubeOptions
	cordon   bool
	selector string
	dryRun   string
	args     []string
	streams  Streams
}

func newCordonCmd(s Streams) *cobra.Command {
	return newCordonVerb(s, true, "cordon", "Mark nodes as unschedulable", `Mark nodes as unschedulable: the scheduler places no new pods there
(pods that tolerate node.kubernetes.io/unschedulable excepted); pods
already there keep running.

Examples:
  drover cordon node-1
  drover cordon -l rack=r7`)
}

func newUncordonCmd(s Streams) *cobra.Command {
	return newCordonVerb(s, false, "uncordon", "Mark nodes as schedulable", `Mark nodes as schedulable again; pods that found no node are tried again
at once.

Examples:
  drover uncordon node-1`)
}

func newCordonVerb(s Streams, cordon bool, verb, short, long string) *cobra.Command {
	o := &cordonOptions{streams: s, cordon: cordon}
	cmd := &cobra.Command{
		Use:   verb + " NODE...",
		Short: short,
		Long:  long,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.args = args
			return cordonRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "label selector of the nodes")
	cmd.Flags().StringVar(&o.dryRun, "dry-run", "none", `"none", "server" (the server checks, nothing changes) or "client" (only print)`)
	return cmd
}

func cordonRun(ctx context.Context, o *cordonOptions) error {
	verb := "uncordon"
	if o.cordon {
		verb = "cordon"
	}
	switch {
	case len(o.args) == 0 && o.selector == "":
		return fmt.Errorf("USAGE: %s NODE [flags]\nSee 'drover %s -h' for help and examples", verb, verb)
	case len(o.args) > 0 && o.selector != "":
		return errors.New("name cannot be provided when a selector is specified")
	}
	suffix := ""
	switch o.dryRun {
	case "none", "":
	case "client":
		suffix = " (dry run)"
	case "server":
		suffix = " (server dry run)"
	default:
		return fmt.Errorf(`Invalid dry-run value (%v). Must be "none", "server", or "client".`, o.dryRun) //nolint:staticcheck // kubectl's wording
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	m, err := k.mapper.ResourceFor("nodes")
	if err != nil {
		return err
	}
	rc := k.c.Resource(m)
	var nodes []*unstructured.Unstructured
	var errs itemErrors
	if o.selector != "" {
		l, err := listAll(ctx, rc, metav1.ListOptions{LabelSelector: o.selector, Limit: listChunk})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return errors.New("No resources found") //nolint:staticcheck // kubectl's wording
		}
		for i := range l.Items {
			nodes = append(nodes, &l.Items[i])
		}
	} else {
		for _, name := range o.args {
			n, err := rc.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			nodes = append(nodes, n)
		}
	}
	patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, o.cordon)
	opts := metav1.PatchOptions{FieldManager: fieldManager}
	if o.dryRun == "server" {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, n := range nodes {
		ref := m.KindName() + "/" + n.GetName()
		if cur, _, _ := unstructured.NestedBool(n.Object, "spec", "unschedulable"); cur == o.cordon {
			fmt.Fprintf(o.streams.Out, "%s already %sed\n", ref, verb)
			continue
		}
		if o.dryRun != "client" {
			if _, err := rc.Patch(ctx, n.GetName(), types.StrategicMergePatchType, patch, opts); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		fmt.Fprintf(o.streams.Out, "%s %sed%s\n", ref, verb, suffix)
	}
	return errs.orNil()
}
