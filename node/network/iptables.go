package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// The CNI plugins tag their per-sandbox nat rules with comments naming the
// network and the container ID: the bridge plugin's masquerade rules
// `name: "<net>" id: "<id>"`, portmap's DNAT rules `dnat name: "<net>" id:
// "<id>"`. Their per-sandbox chains (CNI-<hash>, CNI-DN-<hash>) are the
// targets of those rules. The shared CNI-HOSTPORT-* chains are never
// touched.

// sandboxComment is the part of the plugins' comments that names a sandbox.
func sandboxComment(network, id string) string {
	return fmt.Sprintf("name: %q id: %q", network, id)
}

// natRule is one -A line of iptables-save: the chain and the rest of the
// arguments.
type natRule struct {
	chain string
	args  []string
}

// leftovers finds in iptables-save output of the nat table the rules whose
// comment names the sandbox, and the per-sandbox chains: the CNI chains
// those rules jump to or sit in. Rules inside those chains go with the
// chains, so only the others are returned as rules.
func leftovers(save []byte, network, id string) (rules []natRule, chains []string, err error) {
	want := sandboxComment(network, id)
	owned := map[string]bool{}
	var matched []natRule
	for line := range strings.Lines(string(save)) {
		line = strings.TrimRight(line, "\r\n")
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		args, err := splitSaveLine(line)
		if err != nil {
			return nil, nil, err
		}
		if len(args) < 2 {
			continue
		}
		r := natRule{chain: args[1], args: args[2:]}
		if !ruleHasComment(r.args, want) {
			continue
		}
		matched = append(matched, r)
		if perSandboxChain(r.chain) {
			owned[r.chain] = true
		}
		for i, a := range r.args {
			if (a == "-j" || a == "-g") && i+1 < len(r.args) && perSandboxChain(r.args[i+1]) {
				owned[r.args[i+1]] = true
			}
		}
	}
	for _, r := range matched {
		if !owned[r.chain] {
			rules = append(rules, r)
		}
	}
	for c := range owned {
		chains = append(chains, c)
	}
	return rules, chains, nil
}

// perSandboxChain: a chain a CNI plugin made for one sandbox.
func perSandboxChain(c string) bool {
	return strings.HasPrefix(c, "CNI-") && !strings.HasPrefix(c, "CNI-HOSTPORT-")
}

func ruleHasComment(args []string, want string) bool {
	for i, a := range args {
		if a == "--comment" && i+1 < len(args) && strings.Contains(args[i+1], want) {
			return true
		}
	}
	return false
}

// splitSaveLine splits an iptables-save line into arguments. iptables-save
// puts arguments with spaces or quotes in double quotes and escapes " and \
// inside them with a backslash.
func splitSaveLine(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case quoted && c == '"':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '"':
			quoted, inArg = true, true
		case c == ' ' || c == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("iptables-save: unterminated quote in %q", line)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// sweepNAT removes the nat rules and chains the plugins left for a sandbox
// (see leftovers) and returns how many rules and chains it removed. Without
// iptables on the machine there is nothing to sweep.
func sweepNAT(ctx context.Context, network, id string) (int, error) {
	save, err := exec.LookPath("iptables-save")
	if err != nil {
		return 0, nil
	}
	out, err := run(ctx, save, "-t", "nat")
	if err != nil {
		return 0, err
	}
	rules, chains, err := leftovers(out, network, id)
	if err != nil || len(rules)+len(chains) == 0 {
		return 0, err
	}
	var errs []error
	for _, r := range rules {
		args := append([]string{"-w", "-t", "nat", "-D", r.chain}, r.args...)
		if _, err := run(ctx, "iptables", args...); err != nil {
			errs = append(errs, err)
		}
	}
	// Flush every chain before deleting any: one may jump to another.
	for _, op := range []string{"-F", "-X"} {
		for _, c := range chains {
			if _, err := run(ctx, "iptables", "-w", "-t", "nat", op, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return len(rules) + len(chains), errors.Join(errs...)
}

// run runs a command and returns its stdout; an error includes stderr.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, quoteArgs(args), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'\\") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
