// Package hollow is an in-memory runtime.Runtime for scale simulations:
// containers "run" as records, with no processes, files or timers beyond
// one clock timer for a container that is due to exit. It has the same
// states, exit codes, reasons and errors as node/runtime/lcrun (both pass
// node/runtime/runtimetest), and 30,000 containers (1,000 nodes of 30)
// fit in one process easily.
//
// What a container does is read from its Args (anything else runs until
// stopped, so real pod specs simply run):
//
//	exit CODE      exit with CODE (default: run until stopped)
//	after DUR      ... DUR (a time.ParseDuration string) after it started
//	oom            exit 137 with reason OOMKilled (after DUR, if given)
//	ignore-term    SIGTERM does nothing; only the SIGKILL after Stop's grace ends it
//
// for example ["exit", "1", "after", "30s"]. Words may come in any order
// and may follow a leading program name ("sh", "-c" are not interpreted:
// ["sleep", "10"] runs until stopped). SIGTERM ends a container with 143,
// SIGKILL with 137 (Stop with no grace sends SIGKILL at once); both have
// reason "Error".
//
// Exec understands "echo WORDS..." (prints WORDS and a newline, exit 0),
// "exit CODE", and "cat" (copies stdin to stdout); "echo ..." and "exit"
// may be combined with ";" as one argument ("echo hi; exit 3"), and
// anything else exits 0 with no output. Stats are made up: memory is a
// quarter of the memory limit (4 MiB without one), CPU time is 1% of the
// time the container has run.
//
// Specs are checked with runtime.ValidateSpec only: no RootFS, log file,
// network namespace or mount is needed or looked at.
//
// A Runtime stands for one node's containers and its shims: to simulate an
// agent restart, hand the same *Runtime to the new agent (its containers
// are adopted, exactly as lcrun's are). Logs are not written.
package hollow

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/droverhq/drover/node/runtime"
)

// Config configures a Runtime.
type Config struct {
	// Clock drives exit timers, Stop's grace and timestamps; nil is the
	// real clock. A fake clock lets a simulation run time faster.
	Clock clock.WithDelayedExecution
}

// Runtime is an in-memory runtime.Runtime, runtime.Execer and
// runtime.StatsReader.
type Runtime struct {
	clock clock.WithDelayedExecution

	mu      sync.Mutex
	ctrs    map[string]*container
	nextPid int
}

var (
	_ runtime.Runtime     = (*Runtime)(nil)
	_ runtime.Execer      = (*Runtime)(nil)
	_ runtime.StatsReader = (*Runtime)(nil)
)

// container is one record, guarded by Runtime.mu.
type container struct {
	id       string
	labels   map[string]string
	memLimit int64
	prog     program

	state      runtime.State
	pid        int
	created    time.Time
	started    time.Time
	finished   time.Time
	exitCode   int
	reason     string
	exitTimer  clock.Timer
	exitedChan chan struct{} // closed when the container exits
}

// program is what a container does, parsed from its Args.
type program struct {
	exits      bool
	code       int
	after      time.Duration
	oom        bool
	ignoreTERM bool
}

// parseProgram reads the words of the package doc; unknown words are
// ignored.
func parseProgram(args []string) program {
	var p program
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "exit":
			if i+1 < len(args) {
				if c, err := strconv.Atoi(args[i+1]); err == nil {
					p.exits, p.code = true, c&0xff
					i++
				}
			}
		case "after":
			if i+1 < len(args) {
				if d, err := time.ParseDuration(args[i+1]); err == nil && d >= 0 {
					p.after = d
					i++
				}
			}
		case "oom":
			p.exits, p.oom, p.code = true, true, 137
		case "ignore-term":
			p.ignoreTERM = true
		}
	}
	return p
}

// New returns an empty runtime.
func New(cfg Config) *Runtime {
	c := cfg.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	return &Runtime{clock: c, ctrs: map[string]*container{}, nextPid: 1000}
}

// Start implements runtime.Runtime.
func (r *Runtime) Start(ctx context.Context, spec *runtime.Spec) error {
	if err := runtime.ValidateSpec(spec); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := r.clock.Now()
	c := &container{
		id:         spec.ID,
		labels:     maps.Clone(spec.Labels),
		memLimit:   spec.Resources.MemoryLimit,
		prog:       parseProgram(spec.Args),
		state:      runtime.StateRunning,
		created:    now,
		started:    now,
		exitedChan: make(chan struct{}),
	}
	reason := ""
	if c.prog.oom {
		reason = "OOMKilled"
	}
	r.mu.Lock()
	if _, ok := r.ctrs[spec.ID]; ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: %s", runtime.ErrExists, spec.ID)
	}
	r.nextPid++
	c.pid = r.nextPid
	r.ctrs[spec.ID] = c
	if c.prog.exits && c.prog.after == 0 {
		r.exitLocked(c, c.prog.code, reason, now)
	}
	r.mu.Unlock()

	if c.prog.exits && c.prog.after > 0 {
		// The clock is called without r.mu held: a fake clock runs
		// AfterFunc callbacks under its own lock, and the callback takes
		// r.mu. The callback does not read the clock for the same reason.
		code, at := c.prog.code, now.Add(c.prog.after)
		t := r.clock.AfterFunc(c.prog.after, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.exitLocked(c, code, reason, at)
		})
		r.mu.Lock()
		running := c.state == runtime.StateRunning
		if running {
			c.exitTimer = t
		}
		r.mu.Unlock()
		if !running {
			t.Stop()
		}
	}
	return nil
}

// exitLocked records c's exit at time at, once; reason "" picks
// Completed or Error from the code. It returns the exit timer the caller
// must stop once r.mu is released.
func (r *Runtime) exitLocked(c *container, code int, reason string, at time.Time) clock.Timer {
	if c.state == runtime.StateExited {
		return nil
	}
	if reason == "" {
		reason = "Error"
		if code == 0 {
			reason = "Completed"
		}
	}
	c.state, c.pid, c.exitCode, c.reason, c.finished = runtime.StateExited, 0, code, reason, at
	t := c.exitTimer
	c.exitTimer = nil
	close(c.exitedChan)
	return t
}

func stopTimer(t clock.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (r *Runtime) get(id string) (*container, error) {
	c, ok := r.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
	}
	return c, nil
}

// Stop implements runtime.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	now := r.clock.Now()
	r.mu.Lock()
	c, err := r.get(id)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	if c.state == runtime.StateExited {
		r.mu.Unlock()
		return nil
	}
	if grace <= 0 {
		t := r.exitLocked(c, 137, "", now)
		r.mu.Unlock()
		stopTimer(t)
		return nil
	}
	if !c.prog.ignoreTERM {
		t := r.exitLocked(c, 143, "", now)
		r.mu.Unlock()
		stopTimer(t)
		return nil
	}
	exited := c.exitedChan
	r.mu.Unlock()

	graceTimer := r.clock.NewTimer(grace)
	defer graceTimer.Stop()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", id, ctx.Err())
	case <-graceTimer.C():
	}
	now = r.clock.Now()
	r.mu.Lock()
	t := r.exitLocked(c, 137, "", now)
	r.mu.Unlock()
	stopTimer(t)
	return nil
}

// Remove implements runtime.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if c.state != runtime.StateExited {
		return fmt.Errorf("%w: %s", runtime.ErrRunning, id)
	}
	delete(r.ctrs, id)
	return nil
}

// Status implements runtime.Runtime.
func (r *Runtime) Status(ctx context.Context, id string) (*runtime.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return nil, err
	}
	return c.status(), nil
}

func (c *container) status() *runtime.Status {
	return &runtime.Status{
		ID:         c.id,
		Labels:     maps.Clone(c.labels),
		State:      c.state,
		Pid:        c.pid,
		CreatedAt:  c.created,
		StartedAt:  c.started,
		FinishedAt: c.finished,
		ExitCode:   c.exitCode,
		Reason:     c.reason,
	}
}

// List implements runtime.Runtime.
func (r *Runtime) List(ctx context.Context) ([]*runtime.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*runtime.Status, 0, len(r.ctrs))
	for _, c := range r.ctrs {
		out = append(out, c.status())
	}
	return out, nil
}

// Len is the number of containers, running or exited.
func (r *Runtime) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ctrs)
}

func (r *Runtime) running(id string) (*container, error) {
	c, err := r.get(id)
	if err != nil {
		return nil, err
	}
	if c.state != runtime.StateRunning {
		return nil, fmt.Errorf("%w: %s", runtime.ErrNotRunning, id)
	}
	return c, nil
}

// Exec implements runtime.Execer with the commands of the package doc.
func (r *Runtime) Exec(ctx context.Context, id string, opts runtime.ExecOptions) (int, error) {
	if len(opts.Args) == 0 {
		return 0, fmt.Errorf("%w: exec in %s: no command", runtime.ErrInvalid, id)
	}
	r.mu.Lock()
	_, err := r.running(id)
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	if len(opts.Args) == 1 && opts.Args[0] == "cat" {
		if opts.Stdin == nil {
			return 0, nil
		}
		if _, err := io.Copy(stdout, opts.Stdin); err != nil {
			return 1, nil
		}
		return 0, nil
	}
	code := 0
	for _, part := range strings.Split(strings.Join(opts.Args, " "), ";") {
		words := strings.Fields(part)
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "echo":
			fmt.Fprintln(stdout, strings.Join(words[1:], " "))
		case "exit":
			if len(words) > 1 {
				if c, err := strconv.Atoi(words[1]); err == nil {
					code = c & 0xff
				}
			}
			return code, nil
		}
	}
	return code, nil
}

// Stats implements runtime.StatsReader with the made-up numbers of the
// package doc.
func (r *Runtime) Stats(ctx context.Context, id string) (*runtime.Stats, error) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.running(id)
	if err != nil {
		return nil, err
	}
	mem := uint64(4 << 20)
	if c.memLimit > 0 {
		mem = uint64(c.memLimit / 4)
	}
	ran := now.Sub(c.started)
	return &runtime.Stats{MemoryBytes: mem, CPUNanoseconds: uint64(max(ran, 0) / 100)}, nil
}
