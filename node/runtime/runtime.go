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
	"io"
	"time"
)

// Errors every implementation returns (wrapped) so the agent can tell them
// apart.
var (
	ErrNotFound = errors.New("runtime: container not found")
	ErrExists   = errors.New("runtime: container already exists")
	ErrRunning  = errors.New("runtime: container is running")
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
	// again after a restart.
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

	// LogPath is the file stdout and stderr are appended to, one line per
	// write, each prefixed with an RFC 3339 timestamp and the stream
	// ("2026-01-02T15:04:05.000000000Z stdout F <line>", the CRI log
	// format) so logs can be served with timestamps. It survives agent
	// restarts: the writer is the container's shim, not the agent.
	LogPath string
	TTY     bool
	Stdin   bool
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
type Runtime interface {
	// Start creates and starts a container; it returns once the process
	// runs (or failed to start).
	Start(ctx context.Context, spec *Spec) error
	// Stop sends SIGTERM, waits up to grace, then SIGKILL, and returns
	// when the container has exited. Stopping an exited container is a
	// no-op.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes an exited container and everything the runtime kept
	// for it (state, cgroups); ErrRunning if it still runs.
	Remove(ctx context.Context, id string) error
	// Status reports one container; ErrNotFound if unknown.
	Status(ctx context.Context, id string) (*Status, error)
	// List reports every container the runtime knows, including those
	// started before the agent restarted (which stay running: adopted).
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
	Stdout io.Writer
	Stderr io.Writer // ignored with TTY (merged into Stdout)
	Resize <-chan TermSize
}

// Execer is implemented by runtimes that can run a process in a running
// container (kubectl exec). It returns the process's exit code.
type Execer interface {
	Exec(ctx context.Context, id string, opts ExecOptions) (int, error)
}

// StatsReader is implemented by runtimes that report usage.
type StatsReader interface {
	Stats(ctx context.Context, id string) (*Stats, error)
}

// Stats is a container's resource usage.
type Stats struct {
	MemoryBytes    uint64
	CPUNanoseconds uint64
}
