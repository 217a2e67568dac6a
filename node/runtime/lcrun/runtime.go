//go:build linux && cgo

package lcrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/node/runtime"
	"github.com/droverhq/drover/node/runtime/crilog"
)

// Config configures a Runtime. Start from DefaultConfig.
type Config struct {
	// NodeName names the default Root and CgroupParent.
	NodeName string
	// Root is the state directory, one subdirectory per container. Keep
	// it on a tmpfs (the default is under /run) so it does not outlive a
	// reboot, and give each agent on a machine its own.
	Root string
	// CgroupParent is the absolute cgroup path containers are put under,
	// as <CgroupParent>/<id>, in every hierarchy. One per agent.
	CgroupParent string
	// LogMaxSize is the size at which a container's log file is rotated.
	LogMaxSize int64
	// Logger receives the runtime's own messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig is the configuration for node: state in
// /run/drover/<node>/containers, cgroups under /drover/<node>, logs
// rotated at 10 MiB.
func DefaultConfig(node string) Config {
	return Config{
		NodeName:     node,
		Root:         filepath.Join("/run/drover", node, "containers"),
		CgroupParent: path.Join("/drover", node),
		LogMaxSize:   crilog.DefaultMaxSize,
	}
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	switch {
	case c.Root == "" || !filepath.IsAbs(c.Root):
		return fmt.Errorf("lcrun: Root %q must be an absolute path", c.Root)
	case c.CgroupParent == "" || !path.IsAbs(c.CgroupParent) || path.Clean(c.CgroupParent) == "/":
		return fmt.Errorf("lcrun: CgroupParent %q must be an absolute cgroup path below /", c.CgroupParent)
	case c.LogMaxSize < 4096:
		return fmt.Errorf("lcrun: LogMaxSize %d is below the 4096-byte minimum", c.LogMaxSize)
	}
	return nil
}

// Runtime runs containers through libcontainer, each under a shim. It
// implements runtime.Runtime, runtime.Execer and runtime.StatsReader.
type Runtime struct {
	root         string
	cgroupParent string
	logMaxSize   int64
	swap         bool     // specOptions.SwapAccounting
	privCaps     []string // specOptions.PrivilegedCaps
	log          *slog.Logger

	ids      keyedMutex // serialises Start, Stop and Remove of one ID
	orphanMu sync.Mutex // serialises recording the exit of a container whose shim died
}

var (
	_ runtime.Runtime     = (*Runtime)(nil)
	_ runtime.Execer      = (*Runtime)(nil)
	_ runtime.StatsReader = (*Runtime)(nil)
)

// New makes the state directory and returns a Runtime over it. Containers
// already there (started by an earlier agent) are adopted as they are.
// Leftovers of a Start or Remove that crashed half-way are deleted.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("lcrun: %w", err)
	}
	caps, err := boundingCapabilities()
	if err != nil {
		return nil, fmt.Errorf("lcrun: read the capability bounding set: %w", err)
	}
	r := &Runtime{
		privCaps:     caps,
		root:         filepath.Clean(cfg.Root),
		cgroupParent: path.Clean(cfg.CgroupParent),
		logMaxSize:   cfg.LogMaxSize,
		swap:         swapAccounting(),
		log:          log,
	}
	ents, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("lcrun: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			r.log.Info("deleting a leftover of an interrupted start or remove", "dir", e.Name())
			r.discardDir(filepath.Join(r.root, e.Name()))
		}
	}
	return r, nil
}

// Close deletes the cgroup parent if no container is left; otherwise it
// leaves it for the next agent to adopt. It never stops containers.
func (r *Runtime) Close() error {
	list, err := r.List(context.Background())
	if err != nil {
		return err
	}
	if len(list) > 0 {
		r.log.Info("containers remain; keeping the cgroup parent", "containers", len(list))
		return nil
	}
	return removeEmptyCgroup(r.cgroupParent)
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.root, id) }

func (r *Runtime) cgroupPath(id string) string { return path.Join(r.cgroupParent, id) }

func (r *Runtime) load(id string) (*libcontainer.Container, error) {
	return libcontainer.Load(filepath.Join(r.dir(id), lcDirName), id)
}

// Start implements runtime.Runtime. If ctx ends before the shim reports,
// Start returns ctx's error and the container may still come up (List
// then shows it).
func (r *Runtime) Start(ctx context.Context, spec *runtime.Spec) error {
	if err := validateHostSpec(spec); err != nil {
		return err
	}
	rec := &record{
		Spec:           *spec,
		CreatedAt:      time.Now(),
		CgroupPath:     r.cgroupPath(spec.ID),
		LogMaxSize:     r.logMaxSize,
		SwapAccounting: r.swap,
		PrivilegedCaps: r.privCaps,
	}
	// Build the configuration now, so a bad spec fails here rather than
	// in the shim.
	sp, err := ociSpec(spec, rec.specOptions())
	if err != nil {
		return err
	}
	if _, err := libcontainerConfig(spec.ID, sp); err != nil {
		return fmt.Errorf("%w: %v", runtime.ErrInvalid, err)
	}

	unlock := r.ids.lock(spec.ID)
	defer unlock()
	dir := r.dir(spec.ID)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%w: %s", runtime.ErrExists, spec.ID)
	}

	// Prepare the directory under a temporary name, holding the shim lock,
	// then rename it into place: Status never sees it half-written, and
	// sees "created" (lock held, no status) until the shim reports.
	tmp, err := os.MkdirTemp(r.root, ".new-"+spec.ID+"-")
	if err != nil {
		return fmt.Errorf("lcrun: %w", err)
	}
	if err := writeJSONFile(filepath.Join(tmp, specFile), rec); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("lcrun: %w", err)
	}
	lock, err := lockShimFile(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	defer lock.Close()
	shimLog, err := os.OpenFile(filepath.Join(tmp, shimLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("lcrun: %w", err)
	}
	defer shimLog.Close()
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("%w: %s", runtime.ErrExists, spec.ID)
		}
		return fmt.Errorf("lcrun: %w", err)
	}

	res, err := r.launchShim(ctx, dir, lock, shimLog)
	if err != nil {
		if ctx.Err() == nil {
			r.discard(spec.ID, rec.CgroupPath)
		}
		return fmt.Errorf("lcrun: start %s: %w", spec.ID, err)
	}
	if res.Error != "" {
		r.discard(spec.ID, rec.CgroupPath)
		return fmt.Errorf("lcrun: start %s: %s", spec.ID, res.Error)
	}
	r.log.Debug("started", "id", spec.ID, "pid", res.Pid)
	return nil
}

// launchShim starts the shim for dir and waits for its result.
func (r *Runtime) launchShim(ctx context.Context, dir string, lock, shimLog *os.File) (*shimResult, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	cmd := exec.Command("/proc/self/exe", shimArg, dir)
	cmd.Args[0] = "drover-shim"
	cmd.Env = append(os.Environ(), shimEnv+"="+shimFork, raceOptions())
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = shimLog, shimLog
	cmd.ExtraFiles = []*os.File{readyW, lock} // fds 3 and 4
	forkErr := cmd.Run()                      // the fork step exits at once
	readyW.Close()

	stop := context.AfterFunc(ctx, func() { readyR.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := io.ReadAll(readyR)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("shim: %w", err)
	}
	if len(b) == 0 && forkErr != nil {
		return nil, fmt.Errorf("shim: %w: %q", forkErr, tailFile(filepath.Join(dir, shimLogFile), 2048))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("the shim exited without reporting: %q", tailFile(filepath.Join(dir, shimLogFile), 2048))
	}
	var res shimResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("shim: bad report %q: %w", b, err)
	}
	return &res, nil
}

func (rec *record) specOptions() specOptions {
	return specOptions{CgroupPath: rec.CgroupPath, SwapAccounting: rec.SwapAccounting, PrivilegedCaps: rec.PrivilegedCaps}
}

// tailFile is the last n bytes of a file (for error messages).
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return strings.TrimSpace(string(b))
}

// raceOptions keeps a race-detector build's shim (tests) from sleeping a
// second when it exits, which Start would wait for; other builds ignore it.
func raceOptions() string {
	opts := os.Getenv("GORACE")
	if opts != "" {
		opts += " "
	}
	return "GORACE=" + opts + "atexit_sleep_ms=0"
}

// discard deletes whatever a failed Start left of id.
func (r *Runtime) discard(id, cgroupPath string) {
	if c, err := r.load(id); err == nil {
		_ = c.Signal(unix.SIGKILL)
		if err := c.Destroy(); err != nil {
			r.log.Warn("destroy after a failed start", "id", id, "err", err)
		}
	}
	if err := removeCgroup(cgroupPath); err != nil {
		r.log.Warn("remove cgroup after a failed start", "id", id, "err", err)
	}
	r.discardDir(r.dir(id))
}

// discardDir deletes a container directory: renamed away first, so it
// disappears at once, and a crash half-way leaves a dot-directory New
// deletes. Its libcontainer state, if any, is destroyed first.
func (r *Runtime) discardDir(dir string) {
	gone, err := os.MkdirTemp(r.root, ".rm-")
	if err == nil {
		if err = os.Rename(dir, filepath.Join(gone, "c")); err == nil {
			dir = filepath.Join(gone, "c")
		}
		defer os.RemoveAll(gone)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, lcDirName)); err == nil {
		for _, e := range ents {
			if c, err := libcontainer.Load(filepath.Join(dir, lcDirName), e.Name()); err == nil {
				if st, _ := c.Status(); st == libcontainer.Stopped {
					_ = c.Destroy()
				}
			}
		}
	}
	if rec, err := readRecord(dir); err == nil && rec.CgroupPath != "" {
		_ = removeCgroup(rec.CgroupPath)
	}
	if err := os.RemoveAll(dir); err != nil {
		r.log.Warn("delete container directory", "dir", dir, "err", err)
	}
}

// observe reads id's status from its directory and the shim's liveness.
func (r *Runtime) observe(id string) (*runtime.Status, error) {
	if err := runtime.ValidateID(id); err != nil {
		return nil, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
	}
	dir := r.dir(id)
	rec, err := readRecord(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	st, err := readShimState(dir)
	if err != nil {
		return nil, err
	}
	if !st.Exited {
		alive, err := shimAlive(dir)
		if err != nil {
			return nil, err
		}
		if alive {
			return toStatus(rec, st, st.Pid > 0), nil
		}
		// The shim is gone: it either recorded the exit just now, or died.
		if st, err = readShimState(dir); err != nil {
			return nil, err
		}
		if !st.Exited {
			return r.orphan(id, dir, rec)
		}
	}
	return toStatus(rec, st, false), nil
}

// orphan is the status of a container whose shim died without recording
// an exit: running while libcontainer says so, else exited with an
// unknown code (recorded, so later reads agree).
func (r *Runtime) orphan(id, dir string, rec *record) (*runtime.Status, error) {
	r.orphanMu.Lock()
	defer r.orphanMu.Unlock()
	st, err := readShimState(dir)
	if err != nil {
		return nil, err
	}
	if st.Exited {
		return toStatus(rec, st, false), nil
	}
	if c, err := r.load(id); err == nil {
		if s, err := c.Status(); err == nil && s != libcontainer.Stopped {
			if state, err := c.State(); err == nil {
				st.Pid = state.InitProcessPid
				if st.StartedAt.IsZero() {
					st.StartedAt = state.Created
				}
			}
			stat := toStatus(rec, st, true)
			stat.Message = "the shim is gone: the exit code will not be known"
			return stat, nil
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
	}
	st.Pid, st.Exited, st.ExitCode, st.Reason = 0, true, 255, "Error"
	st.Message = "the shim exited without recording the exit code"
	st.FinishedAt = time.Now()
	if err := writeJSONFile(filepath.Join(dir, statusFile), st); err != nil {
		return nil, err
	}
	r.log.Warn("shim gone; exit recorded as unknown", "id", id)
	return toStatus(rec, st, false), nil
}

func toStatus(rec *record, st shimState, running bool) *runtime.Status {
	s := &runtime.Status{
		ID:        rec.Spec.ID,
		Labels:    rec.Spec.Labels,
		CreatedAt: rec.CreatedAt,
		StartedAt: st.StartedAt,
		Message:   st.Message,
	}
	switch {
	case st.Exited:
		s.State, s.ExitCode, s.Reason, s.FinishedAt = runtime.StateExited, st.ExitCode, st.Reason, st.FinishedAt
	case running:
		s.State, s.Pid = runtime.StateRunning, st.Pid
	default:
		s.State = runtime.StateCreated
	}
	return s
}

// Status implements runtime.Runtime.
func (r *Runtime) Status(ctx context.Context, id string) (*runtime.Status, error) {
	return r.observe(id)
}

// List implements runtime.Runtime. A container whose state cannot be read
// is listed with StateUnknown and the error as Message.
func (r *Runtime) List(ctx context.Context) ([]*runtime.Status, error) {
	ents, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("lcrun: %w", err)
	}
	out := make([]*runtime.Status, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		st, err := r.observe(e.Name())
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			continue // removed meanwhile
		case err != nil:
			st = &runtime.Status{ID: e.Name(), State: runtime.StateUnknown, Message: err.Error()}
		}
		out = append(out, st)
	}
	return out, nil
}

// Stop implements runtime.Runtime. A zero or negative grace sends SIGKILL
// at once.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	unlock := r.ids.lock(id)
	defer unlock()
	st, err := r.observe(id)
	if err != nil {
		return err
	}
	if st.State == runtime.StateExited {
		return nil
	}
	if grace > 0 {
		r.signal(id, unix.SIGTERM)
		done, err := r.waitExited(ctx, id, time.Now().Add(grace))
		if err != nil || done {
			return err
		}
	}
	r.signal(id, unix.SIGKILL)
	_, err = r.waitExited(ctx, id, time.Time{})
	return err
}

func (r *Runtime) signal(id string, sig unix.Signal) {
	c, err := r.load(id)
	if err != nil {
		r.log.Warn("signal: load", "id", id, "err", err)
		return
	}
	if err := c.Signal(sig); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		r.log.Warn("signal", "id", id, "signal", sig, "err", err)
	}
}

// waitExited polls until id's exit is recorded (true), the deadline (zero:
// none) passes (false), or ctx ends (its error).
func (r *Runtime) waitExited(ctx context.Context, id string, deadline time.Time) (bool, error) {
	delay := time.Millisecond
	for {
		st, err := r.observe(id)
		if err != nil {
			return false, err
		}
		if st.State == runtime.StateExited {
			return true, nil
		}
		wait := delay
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return false, nil
			}
			wait = min(wait, left)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, fmt.Errorf("lcrun: stop %s: %w", id, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// Remove implements runtime.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	unlock := r.ids.lock(id)
	defer unlock()
	st, err := r.observe(id)
	if err != nil {
		return err
	}
	if st.State != runtime.StateExited {
		return fmt.Errorf("%w: %s", runtime.ErrRunning, id)
	}
	if c, err := r.load(id); err == nil {
		if err := c.Destroy(); err != nil {
			return fmt.Errorf("lcrun: remove %s: %w", id, err)
		}
	} else if !errors.Is(err, libcontainer.ErrNotExist) {
		r.log.Warn("remove: load", "id", id, "err", err)
	}
	if err := removeCgroup(r.cgroupPath(id)); err != nil {
		return fmt.Errorf("lcrun: remove %s: %w", id, err)
	}
	r.discardDir(r.dir(id))
	return nil
}

// running loads id's container if it is running.
func (r *Runtime) running(id string) (*libcontainer.Container, *record, error) {
	st, err := r.observe(id)
	if err != nil {
		return nil, nil, err
	}
	if st.State != runtime.StateRunning {
		return nil, nil, fmt.Errorf("%w: %s", runtime.ErrNotRunning, id)
	}
	rec, err := readRecord(r.dir(id))
	if err != nil {
		return nil, nil, err
	}
	c, err := r.load(id)
	if err != nil {
		return nil, nil, fmt.Errorf("lcrun: %s: %w", id, err)
	}
	return c, rec, nil
}

// Stats implements runtime.StatsReader.
func (r *Runtime) Stats(ctx context.Context, id string) (*runtime.Stats, error) {
	c, _, err := r.running(id)
	if err != nil {
		return nil, err
	}
	s, err := c.Stats()
	if err != nil {
		return nil, fmt.Errorf("lcrun: stats %s: %w", id, err)
	}
	if s.CgroupStats == nil {
		return nil, fmt.Errorf("lcrun: stats %s: no cgroup stats", id)
	}
	mem := s.CgroupStats.MemoryStats
	inactive, ok := mem.Stats["total_inactive_file"] // v1
	if !ok {
		inactive = mem.Stats["inactive_file"] // v2
	}
	ws := mem.Usage.Usage
	if inactive < ws {
		ws -= inactive
	} else {
		ws = 0
	}
	return &runtime.Stats{MemoryBytes: ws, CPUNanoseconds: s.CgroupStats.CpuStats.CpuUsage.TotalUsage}, nil
}

// keyedMutex is a mutex per key, kept only while in use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu    sync.Mutex
	users int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.users++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.users--; e.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
