//go:build linux && cgo

package lcrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/node/runtime"
)

// Exec implements runtime.Execer. The process is the agent's child (not the
// shim's): an agent restart ends the exec session, not the process.
func (r *Runtime) Exec(ctx context.Context, id string, opts runtime.ExecOptions) (int, error) {
	if len(opts.Args) == 0 {
		return 0, fmt.Errorf("%w: exec in %s: no command", runtime.ErrInvalid, id)
	}
	c, rec, err := r.running(id)
	if err != nil {
		return 0, err
	}
	s := &rec.Spec
	cwd := s.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	proc := &libcontainer.Process{
		Args: opts.Args,
		Env:  processEnv(s.Env, opts.Env, opts.TTY),
		Cwd:  cwd,
		UID:  int(s.UID),
		GID:  int(s.GID),
	}
	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if opts.TTY {
		return r.execTTY(ctx, c, proc, opts, stdout)
	}

	var copies sync.WaitGroup
	var closeAfterStart, closeAtEnd []*os.File
	defer func() {
		for _, f := range append(closeAfterStart, closeAtEnd...) {
			f.Close()
		}
	}()
	for i, w := range []io.Writer{stdout, stderr} {
		pr, pw, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		closeAfterStart = append(closeAfterStart, pw)
		closeAtEnd = append(closeAtEnd, pr)
		if i == 0 {
			proc.Stdout = pw
		} else {
			proc.Stderr = pw
		}
		copies.Go(func() { _, _ = io.Copy(w, pr) })
	}
	var stdinW *os.File
	if opts.Stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		proc.Stdin, stdinW = pr, pw
		closeAfterStart = append(closeAfterStart, pr)
		closeAtEnd = append(closeAtEnd, pw)
		go func() { // ends at the next Read after the process exits (see runtime.Execer)
			_, _ = io.Copy(pw, opts.Stdin)
			pw.Close()
		}()
	}
	if err := c.Run(proc); err != nil {
		return 0, fmt.Errorf("lcrun: exec in %s: %w", id, err)
	}
	for _, f := range closeAfterStart {
		f.Close()
	}
	closeAfterStart = nil
	return waitExec(ctx, proc, copies.Wait, stdinW)
}

// waitExec waits for proc, kills it if ctx ends first, then waits for its
// output copies (outputDone), and returns its exit code.
func waitExec(ctx context.Context, proc *libcontainer.Process, outputDone func(), stdinW *os.File) (int, error) {
	stop := context.AfterFunc(ctx, func() { _ = proc.Signal(unix.SIGKILL) })
	defer stop()
	ps, err := proc.Wait()
	if stdinW != nil {
		stdinW.Close() // unblocks a copy stuck writing to a process that is gone
	}
	if ps == nil {
		return 0, fmt.Errorf("lcrun: exec: %w", err)
	}
	done := make(chan struct{})
	go func() { outputDone(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// A process the exec left behind holds the output open.
	}
	if err := ctx.Err(); err != nil {
		return exitCode(ps), fmt.Errorf("lcrun: exec: %w", err)
	}
	return exitCode(ps), nil
}

// execTTY runs proc on a new terminal whose master side the agent copies.
func (r *Runtime) execTTY(ctx context.Context, c *libcontainer.Container, proc *libcontainer.Process, opts runtime.ExecOptions, stdout io.Writer) (int, error) {
	parent, child, err := socketPair()
	if err != nil {
		return 0, err
	}
	defer parent.Close()
	proc.ConsoleSocket = child
	select { // an initial size, if one is already there
	case sz, ok := <-opts.Resize:
		if ok {
			proc.ConsoleWidth, proc.ConsoleHeight = sz.Width, sz.Height
		}
	default:
	}
	err = c.Run(proc)
	child.Close()
	if err != nil {
		return 0, fmt.Errorf("lcrun: exec in %s: %w", c.ID(), err)
	}
	master, err := recvConsole(parent)
	if err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		return 0, err
	}
	defer master.Close()

	var copies sync.WaitGroup
	copies.Go(func() {
		_, err := io.Copy(stdout, master)
		if err != nil && !errors.Is(err, unix.EIO) && !errors.Is(err, os.ErrClosed) {
			r.log.Debug("exec terminal output", "err", err)
		}
	})
	if opts.Stdin != nil {
		go func() { _, _ = io.Copy(master, opts.Stdin) }() // ends once master is closed
	}
	exited := make(chan struct{})
	defer close(exited)
	if opts.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					_ = resizeTerminal(master, sz)
				case <-exited:
					return
				}
			}
		}()
	}
	return waitExec(ctx, proc, copies.Wait, nil)
}

func resizeTerminal(f *os.File, sz runtime.TermSize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	})
	if err != nil {
		return err
	}
	return ierr
}
