//go:build linux && cgo

package lcrun

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/droverhq/drover/node/runtime"
)

// defaultPath is the PATH a container gets when its Env has none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCapabilities are what an unprivileged container gets: the set
// containerd and Docker give by default.
var defaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
	"CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// specOptions are the host facts the spec depends on.
type specOptions struct {
	// CgroupPath is the container's absolute cgroup path.
	CgroupPath string
	// SwapAccounting: limit memory+swap to the memory limit, so a
	// container cannot swap past it.
	SwapAccounting bool
	// PrivilegedCaps are the capabilities a privileged container gets:
	// all of the agent's bounding set (nil: every capability known).
	PrivilegedCaps []string
}

// ociSpec builds the OCI runtime spec for s: runc's example spec (the
// defaults of `runc spec`: namespaces pid, net, ipc, uts, mnt; /proc, /dev,
// devpts, shm, mqueue, read-only /sys and cgroups; masked paths; default
// device rules) edited for s. It touches nothing on the host.
func ociSpec(s *runtime.Spec, o specOptions) (*specs.Spec, error) {
	if err := validateHostSpec(s); err != nil {
		return nil, err
	}
	if !path.IsAbs(o.CgroupPath) {
		return nil, fmt.Errorf("lcrun: cgroup path %q is not absolute", o.CgroupPath)
	}
	sp := specconv.Example()
	sp.Root = &specs.Root{Path: s.RootFS, Readonly: s.ReadOnlyRoot}
	sp.Hostname = s.Hostname
	cwd := s.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	sp.Process = &specs.Process{
		Terminal:        s.TTY,
		User:            specs.User{UID: s.UID, GID: s.GID},
		Args:            slices.Clone(s.Args),
		Env:             processEnv(s.Env, nil, s.TTY),
		Cwd:             cwd,
		NoNewPrivileges: !s.Privileged,
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  slices.Clone(defaultCapabilities),
			Effective: slices.Clone(defaultCapabilities),
			Permitted: slices.Clone(defaultCapabilities),
		},
		// No Rlimits: the container inherits the agent's.
	}

	// Network: the pod's namespace, the host's, or a new one (loopback only).
	ns := sp.Linux.Namespaces[:0]
	for _, n := range sp.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			if s.HostNetwork {
				continue
			}
			n.Path = s.NetNS
		}
		ns = append(ns, n)
	}
	sp.Linux.Namespaces = ns

	for _, m := range s.Mounts {
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		sp.Mounts = append(sp.Mounts, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}

	res := sp.Linux.Resources
	r := s.Resources
	if r.MemoryLimit > 0 {
		limit := r.MemoryLimit
		res.Memory = &specs.LinuxMemory{Limit: &limit}
		if o.SwapAccounting {
			swap := limit
			res.Memory.Swap = &swap
		}
	}
	if r.CPUShares > 0 || r.CPUQuota > 0 {
		res.CPU = &specs.LinuxCPU{}
		if r.CPUShares > 0 {
			shares := r.CPUShares
			res.CPU.Shares = &shares
		}
		if r.CPUQuota > 0 {
			quota, period := r.CPUQuota, r.CPUPeriod
			if period == 0 {
				period = 100000
			}
			res.CPU.Quota, res.CPU.Period = &quota, &period
		}
	}
	if r.PidsLimit > 0 {
		limit := r.PidsLimit
		res.Pids = &specs.LinuxPids{Limit: &limit}
	}
	sp.Linux.CgroupsPath = o.CgroupPath

	if s.Privileged {
		all := slices.Clone(o.PrivilegedCaps)
		if all == nil {
			all = capabilities.KnownCapabilities()
		}
		sp.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding: all, Effective: slices.Clone(all), Permitted: slices.Clone(all),
		}
		sp.Linux.MaskedPaths, sp.Linux.ReadonlyPaths = nil, nil
		for i := range sp.Mounts {
			if d := sp.Mounts[i].Destination; d == "/sys" || d == "/sys/fs/cgroup" {
				sp.Mounts[i].Options = slices.DeleteFunc(slices.Clone(sp.Mounts[i].Options), func(o string) bool { return o == "ro" })
			}
		}
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	return sp, nil
}

// boundingCapabilities are the names of the capabilities in this process's
// bounding set: all a container started from it can have.
func boundingCapabilities() ([]string, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return nil, err
	}
	if err := c.Load(); err != nil {
		return nil, err
	}
	var names []string
	for _, cp := range capability.ListKnown() {
		if c.Get(capability.BOUNDING, cp) {
			names = append(names, "CAP_"+strings.ToUpper(cp.String()))
		}
	}
	return names, nil
}

// validateHostSpec checks what lcrun needs beyond runtime.ValidateSpec.
func validateHostSpec(s *runtime.Spec) error {
	if err := runtime.ValidateSpec(s); err != nil {
		return err
	}
	if !filepath.IsAbs(s.RootFS) {
		return fmt.Errorf("%w: container %s: RootFS %q is not an absolute path", runtime.ErrInvalid, s.ID, s.RootFS)
	}
	if s.NetNS != "" && s.HostNetwork {
		return fmt.Errorf("%w: container %s: both NetNS and HostNetwork", runtime.ErrInvalid, s.ID)
	}
	if s.NetNS != "" && !filepath.IsAbs(s.NetNS) {
		return fmt.Errorf("%w: container %s: NetNS %q is not an absolute path", runtime.ErrInvalid, s.ID, s.NetNS)
	}
	if s.LogPath != "" && !filepath.IsAbs(s.LogPath) {
		return fmt.Errorf("%w: container %s: LogPath %q is not an absolute path", runtime.ErrInvalid, s.ID, s.LogPath)
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Source) || !path.IsAbs(m.Destination) {
			return fmt.Errorf("%w: container %s: mount %s -> %s: paths must be absolute", runtime.ErrInvalid, s.ID, m.Source, m.Destination)
		}
	}
	for _, e := range s.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("%w: container %s: env entry %q is not KEY=value", runtime.ErrInvalid, s.ID, e)
		}
	}
	return nil
}

// processEnv is base overridden by extra, with a default PATH, and TERM
// for a terminal, when they are missing.
func processEnv(base, extra []string, tty bool) []string {
	var env []string
	index := map[string]int{}
	for _, kv := range slices.Concat(base, extra) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			env[i] = kv
			continue
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	if _, ok := index["PATH"]; !ok {
		env = append(env, defaultPath)
	}
	if _, ok := index["TERM"]; !ok && tty {
		env = append(env, "TERM=xterm")
	}
	return env
}

// libcontainerConfig converts an OCI spec. Paths in sp must be absolute
// (the conversion resolves relative ones against the process's cwd).
func libcontainerConfig(id string, sp *specs.Spec) (*configs.Config, error) {
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: id, NoNewKeyring: true, Spec: sp})
	if err != nil {
		return nil, fmt.Errorf("lcrun: container %s: %w", id, err)
	}
	return cfg, nil
}
