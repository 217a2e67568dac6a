package raftstore

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/droverhq/drover/raftstore/transport"
	"github.com/droverhq/drover/raftstore/watch"
)

// Server names one voting member for bootstrap.
type Server struct {
	ID      string
	Address string
}

// Config configures one store member. Start from DefaultConfig.
type Config struct {
	// ID is this member's stable Raft server ID.
	ID string
	// Dir holds the Raft log (raft.db) and snapshots (snapshots/).
	Dir string
	// Transport reaches the other members; Open takes ownership of it.
	Transport transport.Transport
	// Bootstrap, when set and Dir holds no state, bootstraps a new cluster
	// with exactly these voters. Every member of a new cluster must be given
	// the same list. Ignored when state exists.
	Bootstrap []Server

	// Raft timing. hashicorp/raft checks for a silent leader on a timer
	// that fires every 1-2 HeartbeatTimeouts, so the 500ms default detects
	// a dead leader about as fast as etcd's 1s election timeout does.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long an idle leader waits before telling
	// followers the new commit index; followers serve linearizable reads
	// and watches only once they know it, so it is short (raft's default
	// is 50ms). The cost is a small RPC per follower every few ms when a
	// write has just committed.
	CommitTimeout time.Duration
	// MaxAppendEntries caps entries per AppendEntries RPC and per FSM batch
	// (group commit). Default 256; raft's maximum is 1024.
	MaxAppendEntries int

	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one; TrailingLogs how many entries are kept after it so
	// slow followers can catch up without a snapshot install.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration
	SnapshotRetain    int

	// Limits, checked before a request is proposed.
	MaxKeyBytes     int // default 4 KiB
	MaxValueBytes   int // default 1.5 MiB, etcd's default request limit
	MaxTxnOps       int // default 128, as etcd
	MaxRequestBytes int // whole encoded command; default 2 MiB

	// DefaultTimeout bounds requests whose context has no deadline.
	DefaultTimeout time.Duration
	// LeaseCheckInterval is how often the leader looks for expired leases.
	LeaseCheckInterval time.Duration

	// Watch configures the watch hub (history size, buffers, progress).
	Watch watch.Config

	Logger *slog.Logger
	// RaftLogger receives hashicorp/raft's own log; nil discards it.
	RaftLogger hclog.Logger
}

// DefaultConfig returns the documented defaults; set ID, Dir and Transport.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		MaxAppendEntries:   256,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotInterval:   120 * time.Second,
		SnapshotRetain:     2,
		MaxKeyBytes:        4 << 10,
		MaxValueBytes:      3 << 19,
		MaxTxnOps:          128,
		MaxRequestBytes:    2 << 20,
		DefaultTimeout:     10 * time.Second,
		LeaseCheckInterval: 250 * time.Millisecond,
		Watch:              watch.DefaultConfig(),
	}
}

// Validate reports the first setting that cannot work, naming it.
func (c *Config) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("raftstore config: ID is required")
	case c.Dir == "":
		return fmt.Errorf("raftstore config: Dir is required")
	case c.Transport == nil:
		return fmt.Errorf("raftstore config: Transport is required")
	case c.HeartbeatTimeout < 5*time.Millisecond:
		return fmt.Errorf("raftstore config: HeartbeatTimeout must be >= 5ms, got %s", c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("raftstore config: ElectionTimeout (%s) must be >= HeartbeatTimeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("raftstore config: LeaderLeaseTimeout must be in (0, HeartbeatTimeout=%s], got %s", c.HeartbeatTimeout, c.LeaderLeaseTimeout)
	case c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024:
		return fmt.Errorf("raftstore config: MaxAppendEntries must be in [1, 1024], got %d", c.MaxAppendEntries)
	case c.SnapshotThreshold < 1:
		return fmt.Errorf("raftstore config: SnapshotThreshold must be >= 1, got %d", c.SnapshotThreshold)
	case c.SnapshotRetain < 1:
		return fmt.Errorf("raftstore config: SnapshotRetain must be >= 1, got %d", c.SnapshotRetain)
	case c.MaxKeyBytes < 1:
		return fmt.Errorf("raftstore config: MaxKeyBytes must be >= 1, got %d", c.MaxKeyBytes)
	case c.MaxValueBytes < 0:
		return fmt.Errorf("raftstore config: MaxValueBytes must be >= 0, got %d", c.MaxValueBytes)
	case c.MaxTxnOps < 1:
		return fmt.Errorf("raftstore config: MaxTxnOps must be >= 1, got %d", c.MaxTxnOps)
	case c.MaxRequestBytes < c.MaxKeyBytes+c.MaxValueBytes:
		return fmt.Errorf("raftstore config: MaxRequestBytes (%d) must hold one key and value (%d)", c.MaxRequestBytes, c.MaxKeyBytes+c.MaxValueBytes)
	case c.DefaultTimeout <= 0:
		return fmt.Errorf("raftstore config: DefaultTimeout must be > 0, got %s", c.DefaultTimeout)
	case c.LeaseCheckInterval <= 0:
		return fmt.Errorf("raftstore config: LeaseCheckInterval must be > 0, got %s", c.LeaseCheckInterval)
	}
	for _, s := range c.Bootstrap {
		if s.ID == "" || s.Address == "" {
			return fmt.Errorf("raftstore config: Bootstrap server %+v needs an ID and an Address", s)
		}
	}
	if err := c.Watch.Validate(); err != nil {
		return fmt.Errorf("raftstore config: %w", err)
	}
	return nil
}
