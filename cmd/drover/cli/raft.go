package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newRaftCmd(s Streams) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "raft",
		Short: "Inspect the consensus layer",
	}
	o.addFlags(cmd)
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each member's role, term, leader and log indexes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := o.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tADDRESS\tSUFFRAGE\tROLE\tTERM\tCOMMIT\tAPPLIED\tLAST LOG\tREVISION\tLAST CONTACT")
			for _, p := range st.Peers {
				if !p.Reachable {
					fmt.Fprintf(w, "%s\t%s\t%s\tunreachable\t-\t-\t-\t-\t-\t-\n", p.ID, p.Address, p.Suffrage)
					continue
				}
				m := p.Status
				contact := "-"
				if m.Role != "Leader" {
					contact = m.LastContact.Round(time.Millisecond).String()
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", p.ID, p.Address, p.Suffrage, m.Role, m.Term, m.CommitIndex, m.AppliedIndex, m.LastLogIndex, m.Revision, contact)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if st.LeaderID == "" {
				fmt.Fprintln(s.Out, "\nno leader is known: the cluster may have lost quorum")
			} else {
				fmt.Fprintf(s.Out, "\nleader: %s (%s)\n", st.LeaderID, st.LeaderAddr)
			}
			return nil
		},
	}
	cmd.AddCommand(status, newRaftTransferCmd(s, o), newRaftRecoverCmd(s))
	return cmd
}
