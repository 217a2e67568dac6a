//go:build linux && cgo

package lcrun

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/droverhq/drover/node/runtime"
)

// These tests need no root: they check the pure parts.

func baseSpec() *runtime.Spec {
	return &runtime.Spec{ID: "c1", RootFS: "/var/lib/drover/rootfs/c1", Args: []string{"/bin/app", "-v"}}
}

func netns(sp *specs.Spec) (path string, present bool) {
	for _, n := range sp.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			return n.Path, true
		}
	}
	return "", false
}

func mountOpts(sp *specs.Spec, dest string) []string {
	for _, m := range sp.Mounts {
		if m.Destination == dest {
			return m.Options
		}
	}
	return nil
}

func TestOCISpec(t *testing.T) {
	opts := specOptions{CgroupPath: "/drover/n1/c1", SwapAccounting: true}
	for _, tc := range []struct {
		name  string
		edit  func(*runtime.Spec)
		check func(*testing.T, *specs.Spec)
	}{
		{"defaults", func(*runtime.Spec) {}, func(t *testing.T, sp *specs.Spec) {
			if sp.Root.Path != "/var/lib/drover/rootfs/c1" || sp.Root.Readonly {
				t.Errorf("root %+v", sp.Root)
			}
			if p, ok := netns(sp); !ok || p != "" {
				t.Errorf("want a new netns, got %q %v", p, ok)
			}
			if sp.Process.Cwd != "/" || sp.Process.Terminal || !sp.Process.NoNewPrivileges {
				t.Errorf("process %+v", sp.Process)
			}
			if !slices.Contains(sp.Process.Env, defaultPath) {
				t.Errorf("env %v has no default PATH", sp.Process.Env)
			}
			if !slices.Equal(sp.Process.Capabilities.Effective, defaultCapabilities) {
				t.Errorf("caps %v", sp.Process.Capabilities.Effective)
			}
			if len(sp.Linux.MaskedPaths) == 0 || !slices.Contains(mountOpts(sp, "/sys"), "ro") {
				t.Error("unprivileged container without masked paths or with a writable /sys")
			}
			if sp.Linux.CgroupsPath != "/drover/n1/c1" {
				t.Errorf("cgroup %q", sp.Linux.CgroupsPath)
			}
			r := sp.Linux.Resources
			if r.Memory != nil || r.CPU != nil || r.Pids != nil {
				t.Errorf("limits without resources: %+v", r)
			}
			if sp.Process.Rlimits != nil {
				t.Errorf("rlimits %v", sp.Process.Rlimits)
			}
		}},
		{"pod netns", func(s *runtime.Spec) { s.NetNS = "/run/drover/netns/pod1" }, func(t *testing.T, sp *specs.Spec) {
			if p, ok := netns(sp); !ok || p != "/run/drover/netns/pod1" {
				t.Errorf("netns %q %v", p, ok)
			}
		}},
		{"host network", func(s *runtime.Spec) { s.HostNetwork = true }, func(t *testing.T, sp *specs.Spec) {
			if _, ok := netns(sp); ok {
				t.Error("host network container has a netns entry")
			}
			if len(sp.Linux.Namespaces) != 4 {
				t.Errorf("namespaces %v", sp.Linux.Namespaces)
			}
		}},
		{"process", func(s *runtime.Spec) {
			s.Env = []string{"A=1", "PATH=/x"}
			s.WorkingDir, s.UID, s.GID, s.Hostname, s.TTY, s.ReadOnlyRoot = "/work", 1000, 100, "web-0", true, true
		}, func(t *testing.T, sp *specs.Spec) {
			if !slices.Equal(sp.Process.Env, []string{"A=1", "PATH=/x", "TERM=xterm"}) {
				t.Errorf("env %v", sp.Process.Env)
			}
			if sp.Process.Cwd != "/work" || sp.Process.User.UID != 1000 || sp.Process.User.GID != 100 || !sp.Process.Terminal {
				t.Errorf("process %+v", sp.Process)
			}
			if sp.Hostname != "web-0" || !sp.Root.Readonly {
				t.Errorf("hostname %q, readonly %v", sp.Hostname, sp.Root.Readonly)
			}
		}},
		{"mounts", func(s *runtime.Spec) {
			s.Mounts = []runtime.Mount{{Source: "/var/lib/data", Destination: "/data"}, {Source: "/etc/drover/hosts", Destination: "/etc/hosts", ReadOnly: true}}
		}, func(t *testing.T, sp *specs.Spec) {
			if o := mountOpts(sp, "/data"); !slices.Equal(o, []string{"rbind", "rprivate"}) {
				t.Errorf("/data options %v", o)
			}
			if o := mountOpts(sp, "/etc/hosts"); !slices.Equal(o, []string{"rbind", "rprivate", "ro"}) {
				t.Errorf("/etc/hosts options %v", o)
			}
		}},
		{"resources", func(s *runtime.Spec) {
			s.Resources = runtime.Resources{MemoryLimit: 64 << 20, CPUShares: 512, CPUQuota: 50000, PidsLimit: 100}
		}, func(t *testing.T, sp *specs.Spec) {
			r := sp.Linux.Resources
			if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 {
				t.Errorf("memory %+v", r.Memory)
			}
			if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 {
				t.Errorf("cpu %+v", r.CPU)
			}
			if *r.Pids.Limit != 100 {
				t.Errorf("pids %+v", r.Pids)
			}
		}},
		{"quota with period", func(s *runtime.Spec) { s.Resources = runtime.Resources{CPUQuota: 5000, CPUPeriod: 10000} }, func(t *testing.T, sp *specs.Spec) {
			if c := sp.Linux.Resources.CPU; *c.Quota != 5000 || *c.Period != 10000 || c.Shares != nil {
				t.Errorf("cpu %+v", c)
			}
		}},
		{"privileged", func(s *runtime.Spec) { s.Privileged = true }, func(t *testing.T, sp *specs.Spec) {
			caps := sp.Process.Capabilities
			if len(caps.Bounding) < 38 || !slices.Contains(caps.Effective, "CAP_SYS_ADMIN") || !slices.Contains(caps.Permitted, "CAP_SYS_ADMIN") {
				t.Errorf("caps %v", caps)
			}
			if sp.Linux.MaskedPaths != nil || sp.Linux.ReadonlyPaths != nil || sp.Process.NoNewPrivileges {
				t.Error("privileged container with masked or read-only paths, or no-new-privileges")
			}
			if slices.Contains(mountOpts(sp, "/sys"), "ro") || slices.Contains(mountOpts(sp, "/sys/fs/cgroup"), "ro") {
				t.Error("privileged container with read-only /sys")
			}
			if d := sp.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" {
				t.Errorf("devices %+v", d)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			tc.edit(s)
			sp, err := ociSpec(s, opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, sp)
			cfg, err := libcontainerConfig(s.ID, sp)
			if err != nil {
				t.Fatalf("libcontainer config: %v", err)
			}
			if cfg.Cgroups.Path != "/drover/n1/c1" || cfg.Rootfs != s.RootFS {
				t.Errorf("config cgroup %q rootfs %q", cfg.Cgroups.Path, cfg.Rootfs)
			}
			if got := cfg.Namespaces.PathOf(configs.NEWNET); got != s.NetNS {
				t.Errorf("config netns %q", got)
			}
		})
	}
}

func TestOCISpecNoSwapAccounting(t *testing.T) {
	s := baseSpec()
	s.Resources.MemoryLimit = 1 << 20
	sp, err := ociSpec(s, specOptions{CgroupPath: "/x/c1"})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Linux.Resources.Memory.Swap != nil {
		t.Error("swap limit without swap accounting")
	}
}

func TestSpecValidation(t *testing.T) {
	for _, edit := range []func(*runtime.Spec){
		func(s *runtime.Spec) { s.RootFS = "rootfs" },
		func(s *runtime.Spec) { s.RootFS = "" },
		func(s *runtime.Spec) { s.NetNS = "/run/netns/x"; s.HostNetwork = true },
		func(s *runtime.Spec) { s.NetNS = "netns/x" },
		func(s *runtime.Spec) { s.LogPath = "c.log" },
		func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "data", Destination: "/data"}} },
		func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/data", Destination: "data"}} },
		func(s *runtime.Spec) { s.Env = []string{"NOVALUE"} },
		func(s *runtime.Spec) { s.ID = "a/b" },
		func(s *runtime.Spec) { s.Args = []string{""} },
	} {
		s := baseSpec()
		edit(s)
		if _, err := ociSpec(s, specOptions{CgroupPath: "/x/c1"}); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%+v: %v", s, err)
		}
	}
	if _, err := ociSpec(baseSpec(), specOptions{CgroupPath: "x/c1"}); err == nil {
		t.Error("relative cgroup path accepted")
	}
}

func TestProcessEnv(t *testing.T) {
	for _, tc := range []struct {
		base, extra []string
		tty         bool
		want        []string
	}{
		{nil, nil, false, []string{defaultPath}},
		{[]string{"A=1", "B=2"}, []string{"A=3"}, false, []string{"A=3", "B=2", defaultPath}},
		{[]string{"PATH=/bin", "TERM=vt100"}, nil, true, []string{"PATH=/bin", "TERM=vt100"}},
		{[]string{"PATH=/bin"}, []string{"X="}, true, []string{"PATH=/bin", "X=", "TERM=xterm"}},
	} {
		if got := processEnv(tc.base, tc.extra, tc.tty); !slices.Equal(got, tc.want) {
			t.Errorf("processEnv(%v, %v, %v) = %v, want %v", tc.base, tc.extra, tc.tty, got, tc.want)
		}
	}
}

func TestParseCgroupMounts(t *testing.T) {
	const mi = `25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,relatime shared:8 - tmpfs tmpfs rw,mode=755
27 26 0:24 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
28 26 0:25 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
29 26 0:26 / /sys/fs/cgroup/unified rw,relatime shared:11 - cgroup2 cgroup2 rw
30 26 0:27 / /sys/fs/cgroup/systemd rw,relatime shared:12 master:3 - cgroup cgroup rw,name=systemd
31 40 0:25 /kubepods /var/lib/x\040y/memory rw - cgroup cgroup rw,memory
32 40 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 40 0:30 / /mnt rw - ext4 /dev/vda rw
`
	got, err := parseCgroupMounts(strings.NewReader(mi))
	if err != nil {
		t.Fatal(err)
	}
	want := []cgroupMount{
		{"/", "/sys/fs/cgroup/cpu"}, {"/", "/sys/fs/cgroup/memory"}, {"/", "/sys/fs/cgroup/unified"},
		{"/", "/sys/fs/cgroup/systemd"}, {"/kubepods", "/var/lib/x y/memory"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	dirs := cgroupDirs(want, "/drover/n1/c1")
	wantDirs := []string{"/sys/fs/cgroup/cpu/drover/n1/c1", "/sys/fs/cgroup/memory/drover/n1/c1", "/sys/fs/cgroup/unified/drover/n1/c1", "/sys/fs/cgroup/systemd/drover/n1/c1"}
	if !slices.Equal(dirs, wantDirs) {
		t.Errorf("dirs %v", dirs)
	}
	if d := cgroupDirs([]cgroupMount{{"/kubepods", "/m"}}, "/kubepods/pod1/c1"); !slices.Equal(d, []string{"/m/pod1/c1"}) {
		t.Errorf("dirs under a non-root mount: %v", d)
	}
	if d := cgroupDirs([]cgroupMount{{"/kube", "/m"}}, "/kubepods/c1"); d != nil {
		t.Errorf("a sibling prefix matched: %v", d)
	}
}

func TestParseOOMKill(t *testing.T) {
	if n := parseOOMKill("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"); n != 3 {
		t.Errorf("v1: %d", n)
	}
	if n := parseOOMKill("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"); n != 1 {
		t.Errorf("v2: %d", n)
	}
	if n := parseOOMKill("oom_kill_disable 0\n"); n != 0 {
		t.Errorf("none: %d", n)
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		code int
		oom  bool
		want string
	}{{0, false, "Completed"}, {0, true, "Completed"}, {1, false, "Error"}, {137, true, "OOMKilled"}, {137, false, "Error"}} {
		if got := reasonFor(tc.code, tc.oom); got != tc.want {
			t.Errorf("reasonFor(%d, %v) = %q", tc.code, tc.oom, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig("n1")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if good.Root != "/run/drover/n1/containers" || good.CgroupParent != "/drover/n1" || good.LogMaxSize != 10<<20 {
		t.Errorf("defaults %+v", good)
	}
	for _, edit := range []func(*Config){
		func(c *Config) { c.Root = "" },
		func(c *Config) { c.Root = "run/x" },
		func(c *Config) { c.CgroupParent = "drover" },
		func(c *Config) { c.CgroupParent = "/" },
		func(c *Config) { c.LogMaxSize = 100 },
	} {
		c := DefaultConfig("n1")
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	var wg sync.WaitGroup
	var inside, maxInside int
	var mu sync.Mutex
	for range 20 {
		wg.Go(func() {
			unlock := k.lock("a")
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond) // hold the lock a little
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	unlockB := k.lock("b") // another key is not blocked by "a"
	unlockB()
	wg.Wait()
	if maxInside != 1 {
		t.Errorf("%d holders at once", maxInside)
	}
	if len(k.m) != 0 {
		t.Errorf("%d entries kept", len(k.m))
	}
}
