//go:build linux && cgo

package lcrun

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// cgroupMount is one mounted cgroup hierarchy (v1 or v2).
type cgroupMount struct {
	Root       string // the cgroup path mounted there
	Mountpoint string
}

// parseCgroupMounts reads /proc/self/mountinfo's format and returns the
// cgroup and cgroup2 mounts, one per mount point.
func parseCgroupMounts(r io.Reader) ([]cgroupMount, error) {
	var out []cgroupMount
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) {
			continue
		}
		if fs := fields[sep+1]; fs != "cgroup" && fs != "cgroup2" {
			continue
		}
		m := cgroupMount{Root: unescapeMountinfo(fields[3]), Mountpoint: unescapeMountinfo(fields[4])}
		if seen[m.Mountpoint] {
			continue
		}
		seen[m.Mountpoint] = true
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// mountinfo fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupDirs is where cgroup path p lives in each hierarchy: the mount
// point joined with p relative to the mount's root (hierarchies whose root
// is not an ancestor of p are skipped).
func cgroupDirs(mounts []cgroupMount, p string) []string {
	var dirs []string
	for _, m := range mounts {
		rel, ok := strings.CutPrefix(path.Clean(p), path.Clean(m.Root))
		if !ok || (rel != "" && rel[0] != '/' && m.Root != "/") {
			continue
		}
		dirs = append(dirs, filepath.Join(m.Mountpoint, rel))
	}
	return dirs
}

func hostCgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseCgroupMounts(f)
}

// removeCgroup removes cgroup path p, and any sub-cgroups, from every
// hierarchy. Missing directories are not an error.
func removeCgroup(p string) error {
	mounts, err := hostCgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range cgroupDirs(mounts, p) {
		if err := cgroups.RemovePath(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeEmptyCgroup removes cgroup path p from every hierarchy where it is
// empty (no sub-cgroups); it reports the hierarchies where p remains.
func removeEmptyCgroup(p string) error {
	mounts, err := hostCgroupMounts()
	if err != nil {
		return err
	}
	var left []string
	for _, d := range cgroupDirs(mounts, p) {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			left = append(left, d)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("lcrun: cgroup %s not removed (still in use) in %s", p, strings.Join(left, ", "))
	}
	return nil
}

// leftCgroupDirs lists the directories of cgroup path p that exist.
func leftCgroupDirs(p string) ([]string, error) {
	mounts, err := hostCgroupMounts()
	if err != nil {
		return nil, err
	}
	var left []string
	for _, d := range cgroupDirs(mounts, p) {
		if _, err := os.Stat(d); err == nil {
			left = append(left, d)
		}
	}
	return left, nil
}

// swapAccounting reports whether a memory limit can also bound swap: the
// v1 memory controller has memsw files, or the host is on cgroup v2.
func swapAccounting() bool {
	if cgroups.IsCgroup2UnifiedMode() {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}

// oomKills reads how many processes the kernel's OOM killer killed in a
// memory cgroup directory: "oom_kill N" in memory.oom_control (v1) or
// memory.events (v2).
func oomKills(memDir string) (uint64, error) {
	for _, name := range []string{"memory.oom_control", "memory.events"} {
		b, err := os.ReadFile(filepath.Join(memDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return parseOOMKill(string(b)), nil
	}
	return 0, fmt.Errorf("lcrun: no OOM counter in %s", memDir)
}

func parseOOMKill(s string) uint64 {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
