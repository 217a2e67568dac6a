package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/droverhq/drover/client"
)

// newConfigCmd is `drover config`: read and switch kubeconfig contexts.
func newConfigCmd(s Streams) *cobra.Command {
	o := &kubeOptions{}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the kubeconfig and switch contexts, as kubectl config does",
	}
	cmd.PersistentFlags().StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG, else ~/.kube/config, else "+devKubeconfig+")")
	cmd.AddCommand(newConfigViewCmd(s, o), newConfigUseContextCmd(s, o), newConfigCurrentContextCmd(s, o), newConfigGetContextsCmd(s, o))
	return cmd
}

type configViewOptions struct {
	kube    *kubeOptions
	raw     bool
	minify  bool
	output  string
	streams Streams
}

func newConfigViewCmd(s Streams, k *kubeOptions) *cobra.Command {
	o := &configViewOptions{kube: k, streams: s}
	cmd := &cobra.Command{
		Use:   "view",
		Short: "Print the merged kubeconfig, secrets redacted unless --raw",
		Args:  cobra.NoArgs,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			return configViewRun(o)
		}),
	}
	cmd.Flags().BoolVar(&o.raw, "raw", false, "show certificates, keys and tokens")
	cmd.Flags().BoolVar(&o.minify, "minify", false, "only the current context and what it uses")
	cmd.Flags().StringVar(&o.kube.context, "context", "", "with --minify, the context to keep")
	cmd.Flags().StringVarP(&o.output, "output", "o", "yaml", "yaml or json")
	return cmd
}

func configViewRun(o *configViewOptions) error {
	if o.output != "yaml" && o.output != "json" {
		return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,yaml", o.output)
	}
	loaded, err := o.kube.loadKubeconfig()
	if err != nil {
		return err
	}
	kc := loaded.Kubeconfig
	if o.minify {
		if err := kc.Minify(o.kube.context); err != nil {
			return err
		}
	}
	view, err := configViewMap(&kc, !o.raw)
	if err != nil {
		return err
	}
	return printObject(o.streams.Out, o.output, view)
}

// Placeholders kubectl config view shows instead of secrets.
const (
	dataOmitted = "DATA+OMITTED"
	redacted    = "REDACTED"
)

// configViewMap renders kc as a generic map (so placeholders can stand in
// for base64 data), with secrets replaced when redact is set.
func configViewMap(kc *client.Kubeconfig, redact bool) (map[string]any, error) {
	b, err := json.Marshal(kc)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range []string{"clusters", "users", "contexts"} {
		if m[k] == nil {
			m[k] = []any{} // kubectl prints "clusters: null" never
		}
	}
	if m["apiVersion"] == nil || m["apiVersion"] == "" {
		m["apiVersion"] = "v1"
	}
	if m["kind"] == nil || m["kind"] == "" {
		m["kind"] = "Config"
	}
	if !redact {
		return m, nil
	}
	replace := func(list any, inner string, fields map[string]string) {
		items, _ := list.([]any)
		for _, it := range items {
			entry, _ := it.(map[string]any)
			body, _ := entry[inner].(map[string]any)
			for f, with := range fields {
				if _, ok := body[f]; ok {
					body[f] = with
				}
			}
		}
	}
	replace(m["clusters"], "cluster", map[string]string{"certificate-authority-data": dataOmitted})
	replace(m["users"], "user", map[string]string{
		"client-certificate-data": dataOmitted, "client-key-data": dataOmitted,
		"token": redacted, "password": redacted,
	})
	return m, nil
}

func newConfigUseContextCmd(s Streams, k *kubeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Set the current-context in the kubeconfig",
		Args:  cobra.ExactArgs(1),
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			loaded, err := k.loadKubeconfig()
			if err != nil {
				return err
			}
			name := args[0]
			if _, _, err := loaded.Context(name); err != nil {
				return fmt.Errorf("no context exists with the name: %q", name)
			}
			if err := client.SetCurrentContext(loaded.CurrentContextFile, name); err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.Out, "Switched to context %q.\n", name)
			return err
		}),
	}
}

func newConfigCurrentContextCmd(s Streams, k *kubeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the current-context",
		Args:  cobra.NoArgs,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			loaded, err := k.loadKubeconfig()
			if err != nil {
				return err
			}
			if loaded.CurrentContext == "" {
				return errors.New("current-context is not set")
			}
			_, err = fmt.Fprintln(s.Out, loaded.CurrentContext)
			return err
		}),
	}
}

func newConfigGetContextsCmd(s Streams, k *kubeOptions) *cobra.Command {
	var noHeaders bool
	var output string
	cmd := &cobra.Command{
		Use:   "get-contexts [NAME...]",
		Short: "List the contexts in the kubeconfig",
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			loaded, err := k.loadKubeconfig()
			if err != nil {
				return err
			}
			want := map[string]bool{}
			for _, a := range args {
				if _, _, err := loaded.Context(a); err != nil {
					return fmt.Errorf("context %s not found", a)
				}
				want[a] = true
			}
			if output == "name" {
				for _, c := range loaded.Contexts {
					if len(want) == 0 || want[c.Name] {
						fmt.Fprintln(s.Out, c.Name)
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(s.Out, 6, 4, 3, ' ', 0)
			if !noHeaders {
				fmt.Fprintln(tw, "CURRENT\tNAME\tCLUSTER\tAUTHINFO\tNAMESPACE")
			}
			for _, c := range loaded.Contexts {
				if len(want) > 0 && !want[c.Name] {
					continue
				}
				cur := ""
				if c.Name == loaded.CurrentContext {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, c.Name, c.Context.Cluster, c.Context.User, c.Context.Namespace)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&noHeaders, "no-headers", false, "leave out the header line")
	cmd.Flags().StringVarP(&output, "output", "o", "", "name: only the context names")
	return cmd
}
