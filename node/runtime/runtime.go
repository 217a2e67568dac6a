// Package runtime is the seam between the node agent and whatever runs
// containers: libcontainer on a real node (package node/runtime/lcrun,
// linux+cgo), or the in-memory hollow runtime (node/runtime/hollow) that
// lets one process simulate hundreds of nodes.
//
// A Runtime knows containers, not pods: the agent groups containers into
// pods (sharing a network namespace it sets up through node/network) and
// prepares each container's root filesystem (node/image) before Create.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors every implementation returns (wrapped) so the agent can tell them
// apart with errors.Is.
var (
	ErrNotFound   = errors.New("runtime: container not found")
	ErrExists     = errors.New("runtime: container already exists")
	ErrRunning    = errors.New("runtime: container is running")
	ErrNotRunning = errors.New("runtime: container is not running")
	ErrInvalid    = errors.New("runtime: invalid spec")
)

// Mount is a bind mount into the container.
type Mount struct {
	Source      string // host path
	Destination string // path inside the container
	ReadOnly    bool
}

// Resources are a container's cgroup limits. Zero means no limit.
type Resources struct {
	MemoryLimit int64  // bytes
	CPUShares   uint64 // relative weight (Kubernetes: requests.cpu in millicores * 1024 / 1000, min 2)
	CPUQuota    int64  // microseconds per CPUPeriod (Kubernetes: limits.cpu)
	CPUPeriod   uint64 // microseconds, default 100000
	PidsLimit   int64
}

// Spec is everything needed to start one container.
type Spec struct {
	// ID is unique on the node and stable: the agent derives it from the
	// pod UID, container name and attempt, so it finds its containers
	// again after a restart. At most 128 ASCII letters, digits and
	// '_', '+', '-', '.', not starting with '.' (see ValidateSpec).
	ID string
	// Labels are kept with the container and returned by List (pod UID,
	// namespace, name, container name, restart attempt).
	Labels map[string]string

	RootFS     string // absolute path of a prepared, writable root filesystem
	Args       []string
	Env        []string // KEY=value
	WorkingDir string
	UID, GID   uint32
	Hostname   string
	// NetNS is the path of the pod's network namespace to join; empty gives
	// the container its own (only loopback).
	NetNS string
	// HostNetwork runs in the host's network namespace.
	HostNetwork  bool
	Mounts       []Mount
	Resources    Resources
	Privileged   bool
	ReadOnlyRoot bool

	// LogPath is the file stdout and stderr are appended to, one entry per
	// line, each prefixed with an RFC 3339 timestamp and the stream
	// ("2026-01-02T15:04:05.000000000Z stdout F <line>", the CRI log
	// format; a line too long for one entry is split into "P" entries
	// ended by an "F" one) so logs can be served with timestamps.
	// Package node/runtime/crilog writes and parses it. It survives agent
	// restarts: the writer is the container's shim, not the agent. The
	// file is rotated by size: the previous file is LogPath+".1" (one
	// previous file is kept). Empty: output is discarded. Remove leaves
	// the log files to the agent.
	LogPath string
	// TTY gives the container's process a terminal; its output is logged
	// as stdout.
	TTY bool
	// Stdin keeps the process's standard input open (it never reads
	// EOF); without it stdin is /dev/null.
	Stdin bool
}

// ValidateSpec checks what every implementation requires of a Spec: a
// valid ID and a command. Errors wrap ErrInvalid.
func ValidateSpec(s *Spec) error {
	if s == nil {
		return fmt.Errorf("%w: nil spec", ErrInvalid)
	}
	if err := ValidateID(s.ID); err != nil {
		return err
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return fmt.Errorf("%w: container %s: no command (Args is empty)", ErrInvalid, s.ID)
	}
	return nil
}

// ValidateID checks a container ID: 1 to 128 ASCII letters, digits, '_',
// '+', '-' and '.', not starting with '.'. Such an ID is safe as a file
// name and as a cgroup directory name.
func ValidateID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: container ID %q must be 1 to 128 characters", ErrInvalid, id)
	}
	if id[0] == '.' {
		return fmt.Errorf("%w: container ID %q must not start with '.'", ErrInvalid, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '+' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("%w: container ID %q: character %q is not allowed (letters, digits, _ + - .)", ErrInvalid, id, c)
		}
	}
	return nil
}

// State is where a container is in its life.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Status is a container's observed state.
type Status struct {
	ID         string
	Labels     map[string]string
	State      State
	Pid        int // host pid of the container's init while running
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int    // valid when exited: the code, or 128+signal
	Reason     string // when exited: "Completed" (0), "Error", "OOMKilled"
	Message    string
}

// Runtime runs containers on one node. Implementations are safe for
// concurrent use across different containers.
//
// A container's life:
//
//	Start ──> running ──(exits by itself, or Stop)──> exited ──Remove──> gone
//	  │
//	  └─(fails to start: the error is returned and nothing is left behind)
//
// An exited container keeps its exit code, reason and times until Remove;
// its ID cannot be used again until then (ErrExists).
type Runtime interface {
	// Start creates and starts a container; it returns once the process
	// runs (or failed to start). A spec that fails ValidateSpec gives
	// ErrInvalid; an ID already known (running or exited) gives
	// ErrExists. A failed Start leaves nothing behind.
	Start(ctx context.Context, spec *Spec) error
	// Stop sends SIGTERM, waits up to grace, then SIGKILL, and returns
	// when the container has exited (its exit recorded). A grace of zero
	// or less sends SIGKILL at once. Stopping an exited container is a
	// no-op; ErrNotFound if unknown. ctx bounds the whole call.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes an exited container and everything the runtime kept
	// for it (state, cgroups); ErrRunning if it still runs, ErrNotFound
	// if unknown.
	Remove(ctx context.Context, id string) error
	// Status reports one container; ErrNotFound if unknown.
	Status(ctx context.Context, id string) (*Status, error)
	// List reports every container the runtime knows, including those
	// started before the agent restarted (which stay running: adopted),
	// in no particular order.
	List(ctx context.Context) ([]*Status, error)
}

// TermSize is a terminal size.
type TermSize struct{ Width, Height uint16 }

// ExecOptions describe a process run inside a running container.
type ExecOptions struct {
	Args   []string
	Env    []string
	TTY    bool
	Stdin  io.Reader // nil: no stdin
	Stdout io.Writer // nil discards; written from its own goroutine
	Stderr io.Writer // ignored with TTY (merged into Stdout); written concurrently with Stdout
	Resize <-chan TermSize
}

// Execer is implemented by runtimes that can run a process in a running
// container (kubectl exec). It returns the process's exit code (128+signal
// if it was killed) once the process has exited and its output is copied;
// ErrNotFound if the container is unknown, ErrNotRunning if it is not
// running. The process runs with the container's environment (opts.Env
// added, overriding), working directory and user. If ctx ends first the
// process is killed. Stdin is read until EOF in a goroutine that may
// outlive Exec by one blocked Read: close it after Exec returns.
type Execer interface {
	Exec(ctx context.Context, id string, opts ExecOptions) (int, error)
}

// StatsReader is implemented by runtimes that report usage.
type StatsReader interface {
	Stats(ctx context.Context, id string) (*Stats, error)
}

// Stats is a container's resource usage. StatsReader returns
// ErrNotFound for an unknown container and ErrNotRunning for one that is
// not running.
type Stats struct {
	// MemoryBytes is the working set: usage less inactive file cache, as
	// the kubelet counts it.
	MemoryBytes uint64
	// CPUNanoseconds is the CPU time used since the container started.
	CPUNanoseconds uint64
}
