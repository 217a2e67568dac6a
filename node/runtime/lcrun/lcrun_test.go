//go:build linux && cgo

package lcrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/node/runtime"
	"github.com/droverhq/drover/node/runtime/crilog"
	"github.com/droverhq/drover/node/runtime/runtimetest"
)

// The test binary is what libcontainer and the runtime re-execute as
// `init` and `shim`.
func TestMain(m *testing.M) {
	MaybeRunChild()
	if cfg := os.Getenv(agentHelperEnv); cfg != "" {
		os.Exit(agentHelper(cfg))
	}
	code := m.Run()
	// Every test removes its own cgroups; this is the per-binary parent.
	_ = removeEmptyCgroup(testCgroupTop())
	os.Exit(code)
}

const busybox = "/bin/busybox"

// testCgroupTop is this test binary's cgroup parent: test binaries of
// several packages may run at once.
func testCgroupTop() string { return fmt.Sprintf("/drover-test-%d", os.Getpid()) }

// needRoot skips tests that start containers unless they can.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starting containers needs root")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("the test rootfs needs busybox-static (apt-get install busybox-static)")
	}
}

var applets = sync.OnceValues(func() ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	return strings.Fields(string(out)), nil
})

// makeRootfs builds a busybox root filesystem in dir/rootfs: /bin/busybox
// and a symlink per applet.
func makeRootfs(t *testing.T, dir string) string {
	t.Helper()
	names, err := applets()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "tmp", "etc", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", n)); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
	return root
}

// env is one test's runtime, rootfs and directories.
type env struct {
	t      *testing.T
	cfg    Config
	rt     *Runtime
	rootfs string
	dir    string
}

var testSeq struct {
	sync.Mutex
	n int
}

// newEnv makes a runtime with its own state root and cgroup parent, and
// checks at the end that stopping and removing everything leaves no
// state, cgroup or mount behind.
func newEnv(t *testing.T, edit ...func(*Config)) *env {
	t.Helper()
	needRoot(t)
	testSeq.Lock()
	testSeq.n++
	n := testSeq.n
	testSeq.Unlock()
	dir := t.TempDir()
	cfg := DefaultConfig(fmt.Sprintf("t%d", n))
	cfg.Root = filepath.Join(dir, "state")
	cfg.CgroupParent = fmt.Sprintf("%s/t%d", testCgroupTop(), n)
	for _, e := range edit {
		e(&cfg)
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, rt: rt, rootfs: makeRootfs(t, dir), dir: dir}
	t.Cleanup(func() { e.cleanup() })
	return e
}

func (e *env) cleanup() {
	t := e.t
	ctx := context.Background()
	rt, err := New(e.cfg) // the test may have dropped e.rt
	if err != nil {
		t.Fatal(err)
	}
	list, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if err := rt.Stop(ctx, s.ID, 0); err != nil {
			t.Errorf("cleanup: stop %s: %v", s.ID, err)
		}
		if err := rt.Remove(ctx, s.ID); err != nil {
			t.Errorf("cleanup: remove %s: %v", s.ID, err)
		}
	}
	if err := rt.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if left, _ := leftCgroupDirs(e.cfg.CgroupParent); len(left) > 0 {
		t.Errorf("cgroup directories left: %v", left)
	}
	if ents, _ := os.ReadDir(e.cfg.Root); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state left: %v", names)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mi, []byte(e.dir)) {
		t.Errorf("mounts left under %s", e.dir)
	}
}

func (e *env) spec(id string, args ...string) *runtime.Spec {
	return &runtime.Spec{ID: id, RootFS: e.rootfs, Args: args, LogPath: filepath.Join(e.dir, id+".log")}
}

func shArgs(script string, args ...string) []string {
	return append([]string{"sh", "-c", script}, args...)
}

// behaviourArgs is a busybox shell script for a suite behaviour.
func behaviourArgs(b runtimetest.Behavior) []string {
	if b.Exits {
		if b.After == 0 {
			return shArgs(fmt.Sprintf("exit %d", b.ExitCode))
		}
		return shArgs(fmt.Sprintf("trap 'exit 143' TERM; sleep %.3f & wait $!; exit %d", b.After.Seconds(), b.ExitCode))
	}
	if b.IgnoreTERM {
		return shArgs("trap '' TERM; sleep 100000 & wait $!")
	}
	// PID 1 has no default action for SIGTERM: the trap is what ends it.
	return shArgs("trap 'exit 143' TERM; sleep 100000 & wait $!")
}

func TestContract(t *testing.T) {
	needRoot(t)
	envs := sync.Map{} // runtime -> env, for Reopen
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T) runtime.Runtime {
			e := newEnv(t)
			envs.Store(e.rt, e)
			return e.rt
		},
		Reopen: func(t *testing.T, rt runtime.Runtime) runtime.Runtime {
			v, _ := envs.Load(rt)
			e := v.(*env)
			rt2, err := New(e.cfg)
			if err != nil {
				t.Fatal(err)
			}
			e.rt = rt2
			envs.Store(rt2, e)
			return rt2
		},
		Spec: func(t *testing.T, id string, b runtimetest.Behavior) *runtime.Spec {
			// The runtime under test is the last one New made for t.
			var e *env
			envs.Range(func(_, v any) bool {
				if v.(*env).t == t {
					e = v.(*env)
				}
				return e == nil
			})
			s := e.spec(id, behaviourArgs(b)...)
			s.Resources.MemoryLimit = 64 << 20
			return s
		},
		Ready: func(t *testing.T, rt runtime.Runtime, id string) { waitSignalsSet(t, rt, id) },
		ExecArgs: func(out string, code int) []string {
			return shArgs(`echo "$0"; exit $1`, out, strconv.Itoa(code))
		},
		Timeout: 20 * time.Second,
	})
}

// waitSignalsSet waits until the container's process handles or ignores
// SIGTERM (the shell has run its trap), or has exited.
func waitSignalsSet(t *testing.T, rt runtime.Runtime, id string) {
	t.Helper()
	const term = 1 << (unix.SIGTERM - 1)
	waitFor(t, func() bool {
		st, err := rt.Status(context.Background(), id)
		if err != nil || st.State != runtime.StateRunning {
			return true
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Pid))
		if err != nil {
			return true
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			if k == "SigCgt" || k == "SigIgn" {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && m&term != 0 {
					return true
				}
			}
		}
		return false
	}, func() string { return id + " to set up its SIGTERM handling" })
}

func readLog(t *testing.T, path string) []crilog.Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []crilog.Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		e, err := crilog.ParseEntry(append([]byte(nil), sc.Bytes()...))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e)
	}
	return out
}

func TestLogs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := time.Now()
	s := e.spec("logs", shArgs("echo out-1; echo err-1 >&2; printf 'no-newline'; echo; printf partial")...)
	if err := e.rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	st := runtimetest.WaitState(t, e.rt, "logs", runtime.StateExited, 20*time.Second)
	if st.ExitCode != 0 || st.Reason != "Completed" {
		t.Fatalf("status %+v", st)
	}
	got := map[string][]string{}
	for _, en := range readLog(t, s.LogPath) {
		if en.Time.Before(before.Add(-time.Second)) || en.Time.After(st.FinishedAt) {
			t.Errorf("entry %q stamped %v, outside the run (%v to %v)", en.Content, en.Time, before, st.FinishedAt)
		}
		if en.Partial {
			t.Errorf("partial entry %q", en.Content)
		}
		got[en.Stream] = append(got[en.Stream], string(en.Content))
	}
	if !slices.Equal(got["stdout"], []string{"out-1", "no-newline", "partial"}) || !slices.Equal(got["stderr"], []string{"err-1"}) {
		t.Errorf("log entries %q", got)
	}
}

func TestLogRotation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LogMaxSize = 8192 })
	s := e.spec("chatty", shArgs("i=0; while [ $i -lt 1000 ]; do echo line-$i; i=$((i+1)); done")...)
	if err := e.rt.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	runtimetest.WaitState(t, e.rt, "chatty", runtime.StateExited, 20*time.Second)
	cur, prev := readLog(t, s.LogPath), readLog(t, s.LogPath+crilog.RotatedSuffix)
	for _, p := range []string{s.LogPath, s.LogPath + crilog.RotatedSuffix} {
		if fi, err := os.Stat(p); err != nil || fi.Size() > 8192 {
			t.Errorf("%s: %v, %v", p, fi.Size(), err)
		}
	}
	if len(cur) == 0 || len(prev) == 0 || string(cur[len(cur)-1].Content) != "line-999" {
		t.Fatalf("current %d entries, previous %d", len(cur), len(prev))
	}
	// The two files hold the last lines, in order, without a gap.
	all := append(prev, cur...)
	first, _ := strconv.Atoi(strings.TrimPrefix(string(all[0].Content), "line-"))
	for i, en := range all {
		if want := fmt.Sprintf("line-%d", first+i); string(en.Content) != want {
			t.Fatalf("entry %d is %q, want %q", i, en.Content, want)
		}
	}
	t.Logf("log of 1000 lines rotated at 8 KiB keeps lines %d-999", first)
}

// TestContainerSetup checks what the spec turns into inside the container:
// user, hostname, env, cwd, read-only root, bind mounts and limits.
func TestContainerSetup(t *testing.T) {
	e := newEnv(t)
	data := filepath.Join(e.dir, "data")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "file"), []byte("from-host\n"), 0o644)
	s := e.spec("setup", shArgs(strings.Join([]string{
		"id -u", "id -g", "hostname", `echo "$FOO"`, "pwd",
		"touch /rootfs-write 2>/dev/null && echo rw || echo ro",
		"cat /data/file", "touch /data/ro 2>/dev/null && echo rw || echo ro",
		"cat /sys/fs/cgroup/memory/memory.limit_in_bytes", "cat /sys/fs/cgroup/pids/pids.max",
		"cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us", "cat /sys/fs/cgroup/cpu/cpu.shares",
		"grep CapEff /proc/self/status", "ls /sys/class/net",
	}, "; "))...)
	s.UID, s.GID, s.Hostname, s.WorkingDir = 1000, 1001, "setup-host", "/tmp"
	s.Env = []string{"FOO=bar baz"}
	s.ReadOnlyRoot = true
	s.Mounts = []runtime.Mount{{Source: data, Destination: "/data", ReadOnly: true}}
	s.Resources = runtime.Resources{MemoryLimit: 48 << 20, CPUShares: 256, CPUQuota: 20000, PidsLimit: 42}
	if err := e.rt.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	st := runtimetest.WaitState(t, e.rt, "setup", runtime.StateExited, 20*time.Second)
	var lines []string
	for _, en := range readLog(t, s.LogPath) {
		lines = append(lines, string(en.Content))
	}
	want := []string{"1000", "1001", "setup-host", "bar baz", "/tmp", "ro", "from-host", "ro",
		strconv.Itoa(48 << 20), "42", "20000", "256", "CapEff:\t0000000000000000", "lo"}
	if v1, _ := os.Stat("/sys/fs/cgroup/memory"); v1 == nil {
		t.Skip("the limit checks read cgroup v1 files")
	}
	if !slices.Equal(lines, want) {
		t.Errorf("container saw (exit %d):\n%s\nwant:\n%s", st.ExitCode, strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestPrivileged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, priv := range []bool{false, true} {
		id := fmt.Sprintf("priv-%v", priv)
		s := e.spec(id, shArgs("grep CapEff /proc/self/status; mount | grep ' /sys ' | grep -o '(r[ow]'")...)
		s.Privileged = priv
		if err := e.rt.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
		runtimetest.WaitState(t, e.rt, id, runtime.StateExited, 20*time.Second)
		var lines []string
		for _, en := range readLog(t, s.LogPath) {
			lines = append(lines, string(en.Content))
		}
		want := []string{"CapEff:\t00000000a80425fb", "(ro"} // the default set
		if priv {
			want = []string{"CapEff:\t" + ownBoundingSet(t), "(rw"} // all the agent has
		}
		if !slices.Equal(lines, want) {
			t.Errorf("privileged=%v: %q, want %q", priv, lines, want)
		}
	}
}

// TestTerminalAndStdin: a container with TTY logs its terminal output as
// stdout; Stdin keeps its standard input open, without it stdin is empty.
func TestTerminalAndStdin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.spec("tty", shArgs("tty; echo on-a-terminal")...)
	s.TTY = true
	if err := e.rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	if st := runtimetest.WaitState(t, e.rt, "tty", runtime.StateExited, 20*time.Second); st.ExitCode != 0 {
		t.Errorf("tty container: %+v", st)
	}
	var lines []string
	for _, en := range readLog(t, s.LogPath) {
		if en.Stream != crilog.Stdout {
			t.Errorf("terminal output on %s", en.Stream)
		}
		lines = append(lines, strings.TrimSuffix(string(en.Content), "\r"))
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "/dev/pts/") || lines[1] != "on-a-terminal" {
		t.Errorf("tty log %q", lines)
	}

	// `read` gets EOF at once without Stdin; with it, it waits.
	s = e.spec("no-stdin", shArgs("read line; echo read-returned $?")...)
	if err := e.rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	runtimetest.WaitState(t, e.rt, "no-stdin", runtime.StateExited, 20*time.Second)
	if l := readLog(t, s.LogPath); len(l) != 1 || string(l[0].Content) != "read-returned 1" {
		t.Errorf("no-stdin log %v", l)
	}
	s = e.spec("stdin", shArgs("read line; echo read-returned $?")...)
	s.Stdin = true
	if err := e.rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	st, err := e.rt.Status(ctx, "stdin")
	if err != nil {
		t.Fatal(err)
	}
	// The shell blocks waiting on the open pipe (busybox's read polls).
	var fd0, wchan string
	waitFor(t, func() bool {
		fd0, _ = os.Readlink(fmt.Sprintf("/proc/%d/fd/0", st.Pid))
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", st.Pid))
		wchan = string(b)
		return strings.HasPrefix(fd0, "pipe:") && (strings.HasPrefix(wchan, "poll") || wchan == "pipe_read")
	}, func() string {
		return fmt.Sprintf("the container to block reading stdin (fd 0 %s, wchan %s)", fd0, wchan)
	})
	if err := e.rt.Stop(ctx, "stdin", 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.rt.Status(ctx, "stdin"); st.ExitCode != 137 {
		t.Errorf("stdin container stopped: %+v", st)
	}
	if l := readLog(t, s.LogPath); len(l) != 0 {
		t.Errorf("stdin container logged %v", l)
	}
}

func ownBoundingSet(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd")
	return ""
}

func TestOOMKilled(t *testing.T) {
	e := newEnv(t)
	s := e.spec("oom", shArgs("head -c 400m /dev/zero | tail")...)
	s.Resources.MemoryLimit = 64 << 20
	if err := e.rt.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	st := runtimetest.WaitState(t, e.rt, "oom", runtime.StateExited, 30*time.Second)
	if st.ExitCode != 137 || st.Reason != "OOMKilled" {
		t.Errorf("status %+v, want 137 OOMKilled", st)
	}
	// (A SIGKILL without an OOM kill is reason Error: the contract suite's
	// StopKILLAfterGrace.)
}

func TestStartFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	err := e.rt.Start(ctx, e.spec("nocmd", "/bin/does-not-exist"))
	if err == nil || !strings.Contains(err.Error(), "does-not-exist") {
		t.Fatalf("start of a missing command: %v", err)
	}
	if _, err := e.rt.Status(ctx, "nocmd"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status after a failed start: %v", err)
	}
	if left, _ := leftCgroupDirs(e.rt.cgroupPath("nocmd")); len(left) > 0 {
		t.Errorf("cgroups left by a failed start: %v", left)
	}
	// The ID is free again.
	if err := e.rt.Start(ctx, e.spec("nocmd", "true")); err != nil {
		t.Fatal(err)
	}
	s := e.spec("badroot", "true")
	s.RootFS = filepath.Join(e.dir, "missing")
	if err := e.rt.Start(ctx, s); err == nil {
		t.Error("start with a missing rootfs succeeded")
	}
}

// shimOf finds the shim of a running container: the parent of its init.
func shimOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatalf("no PPid for %d", pid)
	return 0
}

// parentOf is pid's parent.
func parentOf(t *testing.T, pid int) int { return shimOf(t, pid) }

// TestAgentRestart drops the Runtime as if the agent died: the shims are
// not its children, so nothing happens to the containers, and a new
// Runtime adopts them.
func TestAgentRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.rt.Start(ctx, e.spec("a", behaviourArgs(runtimetest.RunsUntilStopped())...)); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Start(ctx, e.spec("b", shArgs("sleep 1; echo bye; exit 6")...)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.rt.Status(ctx, "a")
	shim := shimOf(t, st.Pid)
	if pp := parentOf(t, shim); pp == os.Getpid() {
		t.Errorf("the shim %d is the agent's child", shim)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", shim)); !bytes.HasPrefix(cmdline, []byte("drover-shim\x00shim\x00")) {
		t.Errorf("the container's parent is %q, not its shim", cmdline)
	}
	e.rt = nil
	goruntime.GC()

	rt2, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := rt2.Status(ctx, "a")
	if err != nil || a.State != runtime.StateRunning || a.Pid != st.Pid {
		t.Fatalf("adopted: %+v, %v", a, err)
	}
	b := runtimetest.WaitState(t, rt2, "b", runtime.StateExited, 20*time.Second)
	if b.ExitCode != 6 {
		t.Errorf("exit after the restart: %+v", b)
	}
	if logs := readLog(t, filepath.Join(e.dir, "b.log")); len(logs) != 1 || string(logs[0].Content) != "bye" {
		t.Errorf("log written after the restart: %v", logs)
	}
	// The new runtime can exec into and stop the adopted container.
	var out bytes.Buffer
	if code, err := rt2.Exec(ctx, "a", runtime.ExecOptions{Args: []string{"echo", "adopted"}, Stdout: &out}); err != nil || code != 0 || out.String() != "adopted\n" {
		t.Errorf("exec into adopted: %d %v %q", code, err, out.String())
	}
	waitSignalsSet(t, rt2, "a")
	if err := rt2.Stop(ctx, "a", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if a, _ := rt2.Status(ctx, "a"); a.ExitCode != 143 {
		t.Errorf("stopped adopted: %+v", a)
	}
	e.rt = rt2
}

// agentHelperEnv makes the test binary an agent that starts containers and
// waits to be killed (TestAgentKilled).
const agentHelperEnv = "LCRUN_TEST_AGENT"

func agentHelper(cfgJSON string) int {
	var h struct {
		Cfg   Config
		Specs []*runtime.Spec
	}
	if err := json.Unmarshal([]byte(cfgJSON), &h); err != nil {
		fmt.Println("bad config:", err)
		return 2
	}
	rt, err := New(h.Cfg)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for _, s := range h.Specs {
		if err := rt.Start(context.Background(), s); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	fmt.Println("started")
	select {} // until killed
}

// TestAgentKilled kills (SIGKILL) an agent process that started
// containers; a new agent adopts them and sees their exits.
func TestAgentKilled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	specs := []*runtime.Spec{
		e.spec("k-exits", shArgs("trap 'exit 143' TERM; sleep 1 & wait $!; echo done; exit 7")...),
		e.spec("k-runs", behaviourArgs(runtimetest.RunsUntilStopped())...),
	}
	b, _ := json.Marshal(struct {
		Cfg   Config
		Specs []*runtime.Spec
	}{e.cfg, specs})
	agent := exec.Command("/proc/self/exe")
	agent.Env = append(os.Environ(), agentHelperEnv+"="+string(b))
	out, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "started\n" {
		agent.Process.Kill()
		agent.Wait()
		t.Fatalf("agent: %q", line)
	}
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	agent.Wait()

	rt, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	for _, id := range []string{"k-exits", "k-runs"} {
		st, err := rt.Status(ctx, id)
		if err != nil || st.State != runtime.StateRunning {
			t.Fatalf("%s after the agent was killed: %+v, %v", id, st, err)
		}
		if pp := parentOf(t, shimOf(t, st.Pid)); pp == agent.Process.Pid {
			t.Errorf("%s's shim was the dead agent's child", id)
		}
	}
	st := runtimetest.WaitState(t, rt, "k-exits", runtime.StateExited, 20*time.Second)
	if st.ExitCode != 7 || st.Reason != "Error" {
		t.Errorf("exit after the agent was killed: %+v", st)
	}
	if l := readLog(t, specs[0].LogPath); len(l) != 1 || string(l[0].Content) != "done" {
		t.Errorf("log: %v", l)
	}
	waitSignalsSet(t, rt, "k-runs")
	if err := rt.Stop(ctx, "k-runs", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, _ := rt.Status(ctx, "k-runs"); st.ExitCode != 143 {
		t.Errorf("adopted container stopped: %+v", st)
	}
}

// TestShimKilled: a shim killed by hand loses the exit code, and says so.
func TestShimKilled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.rt.Start(ctx, e.spec("orphan", behaviourArgs(runtimetest.IgnoresTERM())...)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.rt.Status(ctx, "orphan")
	shim := shimOf(t, st.Pid)
	if err := unix.Kill(shim, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive, _ := shimAlive(e.rt.dir("orphan"))
		if !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shim's lock outlived it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, err := e.rt.Status(ctx, "orphan")
	if err != nil || st.State != runtime.StateRunning || st.Message == "" {
		t.Fatalf("orphan: %+v, %v", st, err)
	}
	if err := e.rt.Stop(ctx, "orphan", 0); err != nil {
		t.Fatal(err)
	}
	st, _ = e.rt.Status(ctx, "orphan")
	if st.State != runtime.StateExited || st.ExitCode != 255 || !strings.Contains(st.Message, "shim") {
		t.Errorf("orphan after stop: %+v", st)
	}
}

func TestExecTTY(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.rt.Start(ctx, e.spec("tty", behaviourArgs(runtimetest.RunsUntilStopped())...)); err != nil {
		t.Fatal(err)
	}
	resize := make(chan runtime.TermSize, 1)
	resize <- runtime.TermSize{Width: 100, Height: 40}
	out := &syncBuffer{}
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	done := make(chan struct{})
	var code int
	var err error
	go func() {
		defer close(done)
		// Prints its terminal and size, reads a line, then waits until the
		// terminal is resized to 120x50.
		code, err = e.rt.Exec(ctx, "tty", runtime.ExecOptions{
			Args: shArgs(`tty; stty size; read l; echo "got $l"; i=0; while [ "$(stty size)" != "50 120" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; stty size; exit 3`),
			TTY:  true, Stdin: stdinR, Stdout: out, Resize: resize,
		})
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), "40 100") }, func() string { return fmt.Sprintf("the initial size in %q", out) })
	io.WriteString(stdinW, "hello\n")
	waitFor(t, func() bool { return strings.Contains(out.String(), "got hello") }, func() string { return fmt.Sprintf("the input echoed in %q", out) })
	resize <- runtime.TermSize{Width: 120, Height: 50}
	<-done
	if err != nil || code != 3 {
		t.Fatalf("exec: %d %v; output %q", code, err, out.String())
	}
	o := strings.ReplaceAll(out.String(), "\r\n", "\n")
	if !strings.Contains(o, "/dev/pts/") || !strings.Contains(o, "\n50 120\n") {
		t.Errorf("output %q", o)
	}
}

func TestExecDetails(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.spec("ex", behaviourArgs(runtimetest.RunsUntilStopped())...)
	s.Env = []string{"A=container", "B=container"}
	s.WorkingDir, s.UID = "/tmp", 1234
	if err := e.rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code, err := e.rt.Exec(ctx, "ex", runtime.ExecOptions{
		Args:   shArgs(`echo "$A $B $(pwd) $(id -u)"; echo to-stderr >&2; exit 130`),
		Env:    []string{"B=exec"},
		Stdout: &out, Stderr: &errb,
	})
	if err != nil || code != 130 || out.String() != "container exec /tmp 1234\n" || errb.String() != "to-stderr\n" {
		t.Errorf("exec: %d %v %q %q", code, err, out.String(), errb.String())
	}
	// A process killed by a signal reports 128+signal.
	code, err = e.rt.Exec(ctx, "ex", runtime.ExecOptions{Args: shArgs("kill -KILL $$")})
	if err != nil || code != 137 {
		t.Errorf("killed exec: %d %v", code, err)
	}
	// ctx ending kills the process.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err = e.rt.Exec(cctx, "ex", runtime.ExecOptions{Args: []string{"sleep", "1000"}})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 10*time.Second {
		t.Errorf("exec past its context: %v after %v", err, time.Since(t0))
	}
	if _, err := e.rt.Exec(ctx, "ex", runtime.ExecOptions{Args: []string{"/nope"}}); err == nil {
		t.Error("exec of a missing command succeeded")
	}
}

// newNetns creates a network namespace bound to a file, as the agent's
// network setup does.
func newNetns(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// Unshare on a locked thread, bind the new namespace, and put the
		// thread back (a locked goroutine ending on the main thread would
		// leave the whole process's /proc/self in the new namespace).
		goruntime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return // the thread stays locked, and ends with the goroutine
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		err = unix.Mount(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()), path, "none", unix.MS_BIND, "")
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			errc <- errors.Join(err, serr)
			return
		}
		goruntime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
	})
}

func nsInode(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

func TestNetworkNamespaces(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hostNS := nsInode(t, "/proc/self/ns/net")
	nsPath := filepath.Join(e.dir, "pod-netns")
	newNetns(t, nsPath)
	podNS := nsInode(t, nsPath)
	if now := nsInode(t, "/proc/self/ns/net"); now != hostNS {
		t.Fatalf("making the pod's netns moved the test process from %s to %s", hostNS, now)
	}

	seen := map[string]string{}
	for _, tc := range []struct {
		id   string
		edit func(*runtime.Spec)
	}{
		{"pod-a", func(s *runtime.Spec) { s.NetNS = nsPath }},
		{"pod-b", func(s *runtime.Spec) { s.NetNS = nsPath }},
		{"host", func(s *runtime.Spec) { s.HostNetwork = true }},
		{"own", func(*runtime.Spec) {}},
	} {
		s := e.spec(tc.id, behaviourArgs(runtimetest.RunsUntilStopped())...)
		tc.edit(s)
		if err := e.rt.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if code, err := e.rt.Exec(ctx, tc.id, runtime.ExecOptions{Args: []string{"readlink", "/proc/1/ns/net"}, Stdout: &out}); err != nil || code != 0 {
			t.Fatalf("%s: readlink: %d %v", tc.id, code, err)
		}
		seen[tc.id] = strings.TrimSpace(out.String())
	}
	if seen["pod-a"] != podNS || seen["pod-b"] != podNS {
		t.Errorf("pod containers in %s and %s, want the pod's %s", seen["pod-a"], seen["pod-b"], podNS)
	}
	if seen["host"] != hostNS {
		t.Errorf("host-network container in %s, want the host's %s", seen["host"], hostNS)
	}
	if own := seen["own"]; own == podNS || own == hostNS || !strings.HasPrefix(own, "net:[") {
		t.Errorf("container without a netns is in %s", own)
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.spec("busy", shArgs("trap 'exit 143' TERM; head -c 20m /dev/zero > /dev/shm/fill; while :; do :; done")...)
	s.Resources.CPUQuota = 20000 // a fifth of a CPU
	if err := e.rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	var st *runtime.Stats
	waitFor(t, func() bool {
		var err error
		st, err = e.rt.Stats(ctx, "busy")
		return err == nil && st.MemoryBytes > 20<<20 && st.CPUNanoseconds > uint64(50*time.Millisecond)
	}, func() string { return fmt.Sprintf("stats over 20 MiB and 50ms CPU: %+v", st) })
	t.Logf("stats: %d MiB, %v CPU", st.MemoryBytes>>20, time.Duration(st.CPUNanoseconds))
}

// TestLatency measures Start (to running), Stop of a TERM-handling
// container, Remove and Exec, and logs the medians and 90th percentiles.
func TestLatency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 15
	var start, stop, remove, execd []time.Duration
	for i := range n {
		id := fmt.Sprintf("lat-%d", i)
		s := e.spec(id, behaviourArgs(runtimetest.RunsUntilStopped())...)
		s.Resources = runtime.Resources{MemoryLimit: 64 << 20, CPUQuota: 50000, PidsLimit: 200}
		t0 := time.Now()
		if err := e.rt.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
		start = append(start, time.Since(t0))
		waitSignalsSet(t, e.rt, id)
		t0 = time.Now()
		if code, err := e.rt.Exec(ctx, id, runtime.ExecOptions{Args: []string{"true"}}); err != nil || code != 0 {
			t.Fatal(code, err)
		}
		execd = append(execd, time.Since(t0))
		t0 = time.Now()
		if err := e.rt.Stop(ctx, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		stop = append(stop, time.Since(t0))
		t0 = time.Now()
		if err := e.rt.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
		remove = append(remove, time.Since(t0))
	}
	// What a shim costs in memory, running one container.
	if err := e.rt.Start(ctx, e.spec("rss", behaviourArgs(runtimetest.RunsUntilStopped())...)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.rt.Status(ctx, "rss")
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", shimOf(t, st.Pid))); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "RssAnon:") {
				t.Logf("shim %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"start", start}, {"exec", execd}, {"stop (TERM)", stop}, {"remove", remove}} {
		sort.Slice(m.d, func(i, j int) bool { return m.d[i] < m.d[j] })
		t.Logf("%-12s n=%d median %v p90 %v min %v max %v", m.name, n, m.d[n/2].Round(10*time.Microsecond),
			m.d[n*9/10].Round(10*time.Microsecond), m.d[0].Round(10*time.Microsecond), m.d[n-1].Round(10*time.Microsecond))
	}
}

// syncBuffer is a bytes.Buffer safe to write from one goroutine while
// another reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 20s; describe says what was awaited, and
// is called only on failure.
func waitFor(t *testing.T, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", describe())
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
