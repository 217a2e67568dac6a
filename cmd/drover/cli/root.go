// Package cli holds drover's command-line verbs. Each verb parses into an
// options struct and runs with injected output streams, so tests can drive it.
package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// Streams are where commands write.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

// Version is set at build time (-ldflags "-X ...cli.Version=...").
var Version = "dev"

// NewRoot builds the drover command tree.
func NewRoot(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "drover",
		Short: "drover: a container orchestrator in one binary, with its own Raft store",
		Long: `drover runs a Kubernetes-shaped control plane on its own Raft-replicated
key-value store.

Start a single-member development store:
  drover server --dev

Then, from another terminal:
  drover kv put /hello world
  drover kv get /hello
  drover raft status
  drover cluster members`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.AddCommand(newServerCmd(s), newKVCmd(s), newRaftCmd(s), newClusterCmd(s), newStoreCmd(s), newKeygenCmd(s), newVersionCmd(s))
	// kubectl-style verbs over the Kubernetes-compatible API (kube.go).
	root.AddCommand(newGetCmd(s), newDescribeCmd(s), newApplyCmd(s), newCreateCmd(s), newDeleteCmd(s), newScaleCmd(s), newConfigCmd(s), newAPIResourcesCmd(s))
	root.AddCommand(newLogsCmd(s), newExecCmd(s))       // pods/log and pods/exec (logs.go, exec.go)
	root.AddCommand(newCordonCmd(s), newUncordonCmd(s)) // node maintenance (cordon.go)
	root.AddCommand(newImageCmd(s))
	root.AddCommand(newAgentCmd(s)) // a node agent (agent.go)
	return root
}
