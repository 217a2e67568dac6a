package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/droverhq/drover/node/network"
	"github.com/droverhq/drover/node/runtime/lcrun"
)

// workDirMarker records the running benchmark's work dir, so a later run
// can clean up after one that was killed.
const workDirMarker = "/run/drbench-podbench.workdir"

// forceCleanup removes whatever of the node and the runc peer is left,
// without the agent: containers (through the project's own runtime, which
// kills and destroys them), their shims, network sandboxes (CNI DEL, the
// iptables sweep, the netns) and the bridge (through the project's
// network package), mounts, /run/drover/podbench, cgroups, and runc's
// containers, cgroups and state. agentDD may be "" (an earlier run's is
// read from workDirMarker).
func forceCleanup(agentDD, podCIDR string) {
	oldWork := ""
	if agentDD == "" {
		if b, err := os.ReadFile(workDirMarker); err == nil {
			oldWork = strings.TrimSpace(string(b))
			agentDD = filepath.Join(oldWork, "agent")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Containers of the node.
	if _, err := os.Stat(containersDir()); err == nil {
		if rt, err := lcrun.New(lcrun.DefaultConfig(nodeName)); err == nil {
			list, _ := rt.List(ctx)
			for _, c := range list {
				if err := rt.Stop(ctx, c.ID, 0); err != nil {
					logf("cleanup: stop container %s: %v", c.ID, err)
				}
				if err := rt.Remove(ctx, c.ID); err != nil {
					logf("cleanup: remove container %s: %v", c.ID, err)
				}
			}
			if err := rt.Close(); err != nil {
				logf("cleanup: %v", err)
			}
		} else {
			logf("cleanup: open the runtime state: %v", err)
		}
	}
	killShims()

	// Network sandboxes and the bridge.
	if agentDD != "" {
		stateDir := filepath.Join(agentDD, "network")
		if _, err := os.Stat(stateDir); err == nil {
			m, err := network.New(network.Config{StateDir: stateDir, Bridge: bridgeName, PodCIDR: podCIDR})
			if err == nil {
				ids, _ := m.List()
				for _, id := range ids {
					if err := m.Teardown(ctx, id); err != nil {
						logf("cleanup: tear down sandbox %s: %v", id, err)
					}
				}
				if err := m.Cleanup(ctx); err != nil {
					logf("cleanup: network: %v", err)
				}
				m.Close()
			} else {
				logf("cleanup: network state %s: %v", stateDir, err)
			}
		}
		unmountUnder(agentDD)
	}
	unmountUnder(filepath.Join("/run/drover", nodeName))
	os.RemoveAll(filepath.Join("/run/drover", nodeName))
	for _, d := range cgroupDirs("drover/" + nodeName) {
		killCgroup(d)
		removeCgroupTree(d)
	}
	if linkExists(bridgeName) {
		exec.Command("ip", "link", "del", bridgeName).Run()
	}

	// runc's containers.
	if _, err := os.Stat(runcRoot); err == nil {
		if runc, err := findRunc(); err == nil {
			out, _ := exec.CommandContext(ctx, runc, "--root", runcRoot, "list", "-q").Output()
			for _, id := range strings.Fields(string(out)) {
				exec.CommandContext(ctx, runc, "--root", runcRoot, "delete", "-f", id).Run()
			}
		}
		os.RemoveAll(runcRoot)
	}
	for _, d := range cgroupDirs(strings.TrimPrefix(runcCgroup, "/")) {
		killCgroup(d)
		removeCgroupTree(d)
	}

	// An earlier run's cpuacct group and work dir.
	if !inAcct() {
		if _, err := os.Stat(acctCgroup); err == nil {
			killCgroup(acctCgroup)
			removeCgroupTree(acctCgroup)
		}
	}
	if oldWork != "" && strings.HasPrefix(filepath.Base(oldWork), "podbench-") {
		unmountUnder(oldWork)
		os.RemoveAll(oldWork)
	}
	if oldWork != "" || agentDD != "" {
		os.Remove(workDirMarker)
	}
}

func findRunc() (string, error) {
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("runc")
}

// leftovers lists what a run leaves on the host if cleanup failed.
func leftovers() []string {
	var out []string
	if linkExists(bridgeName) {
		out = append(out, "bridge "+bridgeName)
	}
	for _, p := range []string{filepath.Join("/run/drover", nodeName), runcRoot} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	for _, d := range append(cgroupDirs("drover/"+nodeName), cgroupDirs(strings.TrimPrefix(runcCgroup, "/"))...) {
		out = append(out, "cgroup "+d)
	}
	if _, err := os.Stat(acctCgroup); err == nil && !inAcct() {
		out = append(out, "cgroup "+acctCgroup)
	}
	if n := len(shimPids()); n > 0 {
		out = append(out, fmt.Sprintf("%d shim process(es)", n))
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && (strings.Contains(f[4], "/drover/"+nodeName+"/") || strings.Contains(f[4], "/podbench-")) {
				n++
			}
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%d mount(s)", n))
		}
	}
	return out
}

// cgroupDirs are the existing directories of a cgroup path (relative to
// each hierarchy's root) in every hierarchy under /sys/fs/cgroup.
func cgroupDirs(rel string) []string {
	ds, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", rel))
	var out []string
	for _, d := range ds {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// killCgroup SIGKILLs every process in a cgroup tree.
func killCgroup(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}

// removeCgroupTree removes a cgroup directory and its children, deepest
// first, retrying briefly while killed processes exit.
func removeCgroupTree(dir string) {
	for i := 0; i < 50; i++ {
		if rmCgroup(dir) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func rmCgroup(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			rmCgroup(filepath.Join(dir, e.Name()))
		}
	}
	err := syscall.Rmdir(dir)
	return err == nil || errors.Is(err, syscall.ENOENT)
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	if dir == "" {
		return
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			targets = append(targets, f[4])
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		syscall.Unmount(targets[i], syscall.MNT_DETACH)
	}
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// shimPids are the node's shims: processes named drover-shim whose
// container directory is under /run/drover/podbench.
func shimPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) >= 3 && args[0] == "drover-shim" && strings.HasPrefix(args[2], containersDir()+"/") {
			out = append(out, pid)
		}
	}
	return out
}

func killShims() {
	for _, pid := range shimPids() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// enterAcct moves this process (and so everything it starts later) into
// a cpuacct group of its own. Processes the node moves into container
// cgroups are counted there (/drover/podbench, /drbench-runc).
func enterAcct() bool {
	if err := os.MkdirAll(acctCgroup, 0o755); err != nil {
		logf("no cpuacct group (%v): our CPU is summed per process instead", err)
		return false
	}
	if err := os.WriteFile(filepath.Join(acctCgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		logf("cannot join %s (%v): our CPU is summed per process instead", acctCgroup, err)
		syscall.Rmdir(acctCgroup)
		return false
	}
	return true
}

func inAcct() bool {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && strings.Contains(","+f[1]+",", ",cpuacct,") && f[2] == "/"+filepath.Base(acctCgroup) {
			return true
		}
	}
	return false
}

func leaveAcct() {
	os.WriteFile(filepath.Join(filepath.Dir(acctCgroup), "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	removeCgroupTree(acctCgroup)
}
