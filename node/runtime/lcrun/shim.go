//go:build linux && cgo

package lcrun

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/node/runtime/crilog"
)

// The shim runs one container. The agent starts it in two steps so that it
// is not the agent's child (its exit needs no reaping by the agent, and an
// agent restart does not touch it):
//
//	agent ──exec──> drover shim <dir>   (shimEnv=fork: starts the next
//	                                     step in a new session, exits)
//	                drover shim <dir>   (shimEnv=run: the shim proper,
//	                                     re-parented to init)
//
// Both inherit fd 3, the "ready" pipe the agent reads the start result
// from, and fd 4, the locked shim.lock. The shim creates and runs the
// container, copies its output to the CRI log, writes status.json when the
// container runs, reports the result on fd 3, waits for the exit, records
// the exit code, reason and time in status.json, and exits. It never
// destroys the container: Remove does.
const (
	shimEnv      = "_DROVER_SHIM"
	shimFork     = "fork"
	shimRun      = "run"
	shimArg      = "shim"
	readyFd      = 3
	lockFd       = 4
	logDrainWait = 5 * time.Second
)

// shimResult is what the shim writes on the ready pipe.
type shimResult struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// shimMain is `drover shim <dir>`; it returns the exit code.
func shimMain(step string, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: drover shim <container dir> (started by the node agent)")
		return 2
	}
	dir := args[0]
	ready := os.NewFile(readyFd, "ready")
	lock := os.NewFile(lockFd, "lock")
	if ready == nil || lock == nil {
		fmt.Fprintln(os.Stderr, "drover shim: started without its ready pipe and lock")
		return 2
	}
	switch step {
	case shimFork:
		return shimForkStep(dir, ready, lock)
	case shimRun:
		unix.CloseOnExec(readyFd)
		unix.CloseOnExec(lockFd)
		log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("container", filepath.Base(dir))
		code := runShim(dir, ready, log)
		// The lock is held for as long as the shim lives; without this the
		// garbage collector could close it early.
		goruntime.KeepAlive(lock)
		return code
	}
	return 2
}

func shimForkStep(dir string, ready, lock *os.File) int {
	cmd := exec.Command("/proc/self/exe", shimArg, dir)
	cmd.Args[0] = "drover-shim"
	cmd.Env = append(os.Environ(), shimEnv+"="+shimRun) // the later value wins
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{ready, lock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		writeResult(ready, shimResult{Error: fmt.Sprintf("start shim: %v", err)})
		return 1
	}
	return 0
}

func writeResult(ready *os.File, r shimResult) {
	b, _ := json.Marshal(r)
	_, _ = ready.Write(b) // the agent may be gone
	ready.Close()
}

// runShim is the shim proper.
func runShim(dir string, ready *os.File, log *slog.Logger) int {
	rec, err := readRecord(dir)
	if err != nil {
		writeResult(ready, shimResult{Error: err.Error()})
		return 1
	}
	s := &rec.Spec
	c, proc, out, err := startContainer(dir, rec)
	if err != nil {
		log.Error("start failed", "err", err)
		writeResult(ready, shimResult{Error: err.Error()})
		return 1
	}
	pid, _ := proc.Pid()
	if !waitExecd(pid, 2*time.Second) {
		log.Warn("the container's process has not replaced libcontainer's init yet", "pid", pid)
	}
	oom, err := c.NotifyOOM()
	if err != nil {
		log.Warn("no OOM notifications", "err", err)
	}
	st := shimState{Pid: pid, StartedAt: time.Now()}
	if err := writeJSONFile(filepath.Join(dir, statusFile), st); err != nil {
		// The agent would not see it run; do not leave it running.
		log.Error("write status", "err", err)
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		out.wait(logDrainWait)
		_ = c.Destroy()
		writeResult(ready, shimResult{Error: fmt.Sprintf("write status: %v", err)})
		return 1
	}
	writeResult(ready, shimResult{Pid: pid})

	ps, err := proc.Wait()
	code := 255
	if ps != nil {
		code = exitCode(ps)
	} else {
		log.Error("wait", "err", err)
	}
	if !out.wait(logDrainWait) {
		log.Warn("container output still open after its init exited; log copy abandoned")
	}
	oomKilled := false
	select {
	case _, ok := <-oom:
		oomKilled = ok
	default:
	}
	if state, err := c.State(); err == nil {
		memDir := state.CgroupPaths["memory"] // v1
		if memDir == "" {
			memDir = state.CgroupPaths[""] // v2
		}
		if n, err := oomKills(memDir); err == nil && n > 0 {
			oomKilled = true
		} else if err != nil {
			log.Warn("no OOM counter", "err", err)
		}
	}
	st.Exited, st.ExitCode, st.Reason, st.FinishedAt = true, code, reasonFor(code, oomKilled), time.Now()
	if st.Reason == "OOMKilled" && s.Resources.MemoryLimit > 0 {
		st.Message = fmt.Sprintf("memory limit %d bytes reached", s.Resources.MemoryLimit)
	}
	if err := writeJSONFile(filepath.Join(dir, statusFile), st); err != nil {
		log.Error("record exit", "err", err)
		return 1
	}
	out.close()
	return 0
}

// initComm is the name libcontainer's init gives itself.
const initComm = "runc:[2:INIT]"

// waitExecd waits until pid has exec'd the container's program. Run
// returns when libcontainer's init has been released to exec, a moment
// before the exec: a signal in that moment meets the init (which a SIGTERM
// ends with code 2) rather than the program. The shim is pid's parent, so
// pid cannot be reused meanwhile.
func waitExecd(pid int, timeout time.Duration) bool {
	path := fmt.Sprintf("/proc/%d/comm", pid)
	deadline := time.Now().Add(timeout)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil || strings.TrimSpace(string(b)) != initComm {
			return true // exec'd, or already gone
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}

// exitCode is the code, or 128+signal.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// output is a running container's stdio as the shim holds it.
type output struct {
	log     *crilog.Writer
	copies  sync.WaitGroup
	holdIn  *os.File // the stdin write end kept open (Spec.Stdin), or nil
	console *os.File // the terminal's master side (Spec.TTY), or nil
}

// wait waits up to d for the output copies to reach EOF.
func (o *output) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { o.copies.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func (o *output) close() {
	if o.holdIn != nil {
		o.holdIn.Close()
	}
	if o.console != nil {
		o.console.Close()
	}
	if o.log != nil {
		o.log.Close()
	}
}

// startContainer creates and runs rec's container with its output going to
// the CRI log. On error nothing is left of the container (its directory
// stays for the agent to remove).
func startContainer(dir string, rec *record) (_ *libcontainer.Container, _ *libcontainer.Process, _ *output, retErr error) {
	s := &rec.Spec
	sp, err := ociSpec(s, rec.specOptions())
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := libcontainerConfig(s.ID, sp)
	if err != nil {
		return nil, nil, nil, err
	}
	out := &output{}
	var closeAfterStart []*os.File
	defer func() {
		for _, f := range closeAfterStart {
			f.Close()
		}
		if retErr != nil {
			out.close()
		}
	}()
	if s.LogPath != "" {
		if out.log, err = crilog.Open(s.LogPath, rec.LogMaxSize, nil); err != nil {
			return nil, nil, nil, err
		}
	}
	proc := &libcontainer.Process{
		Args: sp.Process.Args,
		Env:  sp.Process.Env,
		Cwd:  sp.Process.Cwd,
		UID:  int(s.UID),
		GID:  int(s.GID),
		Init: true,
	}
	var consoleSock *os.File
	if s.TTY {
		parent, child, err := socketPair()
		if err != nil {
			return nil, nil, nil, err
		}
		consoleSock = parent
		defer parent.Close()
		proc.ConsoleSocket = child
		closeAfterStart = append(closeAfterStart, child)
	} else {
		for _, stream := range []string{crilog.Stdout, crilog.Stderr} {
			w, err := out.pipeTo(stream, &closeAfterStart)
			if err != nil {
				return nil, nil, nil, err
			}
			if stream == crilog.Stdout {
				proc.Stdout = w
			} else {
				proc.Stderr = w
			}
		}
		if s.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, nil, nil, err
			}
			proc.Stdin, out.holdIn = r, w
			closeAfterStart = append(closeAfterStart, r)
		}
	}

	c, err := libcontainer.Create(filepath.Join(dir, lcDirName), s.ID, cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create container: %w", err)
	}
	if err := c.Run(proc); err != nil {
		_ = c.Destroy()
		return nil, nil, nil, fmt.Errorf("start container: %w", err)
	}
	if consoleSock != nil {
		master, err := recvConsole(consoleSock)
		if err != nil {
			_ = c.Signal(unix.SIGKILL)
			_, _ = proc.Wait()
			_ = c.Destroy()
			return nil, nil, nil, err
		}
		out.console = master
		out.copies.Go(func() {
			if out.log != nil {
				_ = crilog.Copy(out.log, crilog.Stdout, master)
			} else {
				_, _ = io.Copy(io.Discard, master)
			}
		})
	}
	return c, proc, out, nil
}

// pipeTo makes a pipe whose read end is copied to the log as stream (or
// discarded), and returns the write end for the container.
func (o *output) pipeTo(stream string, closeAfterStart *[]*os.File) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	*closeAfterStart = append(*closeAfterStart, w)
	o.copies.Go(func() {
		defer r.Close()
		if o.log != nil {
			_ = crilog.Copy(o.log, stream, r)
		} else {
			_, _ = io.Copy(io.Discard, r)
		}
	})
	return w, nil
}

// socketPair is a connected pair of unix stream sockets for a console.
func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child"), nil
}

// recvConsole receives the terminal's master fd that libcontainer's init
// sent over sock while starting the process (so it is already queued), and
// returns it non-blocking, so reads can be interrupted by Close.
func recvConsole(sock *os.File) (*os.File, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	err = rc.Control(func(fd uintptr) {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), name, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive console: bad control message (%d, %v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive console: expected one fd (%d, %v)", len(fds), err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
