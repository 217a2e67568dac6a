package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/droverhq/drover/client"
)

type apiResourcesOptions struct {
	kube       kubeOptions
	output     string
	apiGroup   string
	namespaced string // "", "true" or "false"
	noHeaders  bool
	streams    Streams
}

func newAPIResourcesCmd(s Streams) *cobra.Command {
	o := &apiResourcesOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "api-resources",
		Short: "List the resource types the server serves, as kubectl api-resources does",
		Args:  cobra.NoArgs,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("namespaced") {
				o.namespaced = cmd.Flag("namespaced").Value.String()
			}
			return apiResourcesRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "wide (with verbs and categories) or name")
	f.StringVar(&o.apiGroup, "api-group", "", "only this group (\"\" is the core group only when given explicitly)")
	f.Bool("namespaced", true, "only namespaced (true) or cluster-scoped (false) resources")
	f.BoolVar(&o.noHeaders, "no-headers", false, "leave out the header line")
	return cmd
}

func apiResourcesRun(ctx context.Context, o *apiResourcesOptions) error {
	if o.output != "" && o.output != "wide" && o.output != "name" {
		return fmt.Errorf("--output %v is not available", o.output)
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	// One row per resource: its preferred version, which discovery lists
	// first.
	seen := map[string]bool{}
	var rows []client.Mapping
	for _, m := range k.mapper.Mappings() {
		if seen[m.GroupResource()] || (o.apiGroup != "" && m.Group != o.apiGroup) ||
			(o.namespaced != "" && strconv.FormatBool(m.Namespaced) != o.namespaced) {
			continue
		}
		seen[m.GroupResource()] = true
		rows = append(rows, m)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Group != rows[j].Group {
			return rows[i].Group < rows[j].Group
		}
		return rows[i].Resource < rows[j].Resource
	})
	if o.output == "name" {
		for _, m := range rows {
			fmt.Fprintln(o.streams.Out, m.GroupResource())
		}
		return nil
	}
	tw := tabwriter.NewWriter(o.streams.Out, 6, 4, 3, ' ', 0)
	if !o.noHeaders {
		h := "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND"
		if o.output == "wide" {
			h += "\tVERBS\tCATEGORIES"
		}
		fmt.Fprintln(tw, h)
	}
	for _, m := range rows {
		line := fmt.Sprintf("%s\t%s\t%s\t%v\t%s", m.Resource, strings.Join(m.ShortNames, ","), m.APIVersion(), m.Namespaced, m.Kind)
		if o.output == "wide" {
			verbs := append([]string(nil), m.Verbs...)
			sort.Strings(verbs)
			line += "\t" + strings.Join(verbs, ",") + "\t" + strings.Join(m.Categories, ",")
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
