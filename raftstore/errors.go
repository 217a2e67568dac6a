package raftstore

import (
	"errors"
	"fmt"

	"github.com/droverhq/drover/raftstore/watch"
)

// Sentinel errors. Compare with errors.Is; the typed errors below carry
// details and match their sentinel.
var (
	ErrNotFound      = errors.New("raftstore: key not found")
	ErrCompareFailed = errors.New("raftstore: compare failed")
	ErrCompacted     = watch.ErrCompacted
	ErrNotLeader     = errors.New("raftstore: not the leader")
	ErrTooLarge      = errors.New("raftstore: request too large")
	ErrTimeout       = errors.New("raftstore: timed out")
	ErrShutdown      = errors.New("raftstore: store is shut down")
	ErrEmptyKey      = errors.New("raftstore: key is empty")
	ErrInvalidRange  = errors.New("raftstore: invalid range")
	ErrInvalid       = errors.New("raftstore: invalid request")
	ErrLeaseNotFound = errors.New("raftstore: lease not found")
	ErrLeaseExists   = errors.New("raftstore: lease already exists")
)

// CompactedError is returned for a watch from a revision no longer in the
// history; Oldest is the oldest revision still available.
type CompactedError = watch.CompactedError

// CompareFailedError is returned by CompareAndSwap when the key's mod
// revision did not match. Revision is the store's revision at that moment.
type CompareFailedError struct {
	Key      []byte
	Revision int64
	// Current is the key's current state; nil when the key does not exist.
	Current *KeyValue
}

func (e *CompareFailedError) Error() string {
	cur := "absent"
	if e.Current != nil {
		cur = fmt.Sprintf("mod revision %d", e.Current.ModRev)
	}
	return fmt.Sprintf("raftstore: compare failed on %q (key is %s; store revision %d)", e.Key, cur, e.Revision)
}

func (e *CompareFailedError) Is(target error) bool { return target == ErrCompareFailed }

// NotLeaderError is returned when an operation needs the leader and this
// member could not reach one. Leader is the known leader's address, if any.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return "raftstore: not the leader, and no leader is known"
	}
	return fmt.Sprintf("raftstore: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// TooLargeError names the limit a request exceeded.
type TooLargeError struct {
	What  string // "key", "value", "transaction ops", "request"
	Size  int
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("raftstore: %s is %d, over the limit of %d", e.What, e.Size, e.Limit)
}

func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// TimeoutError says an operation did not finish in time. For a write,
// Indeterminate means it may still have been applied.
type TimeoutError struct {
	Op            string
	Indeterminate bool
	Cause         error
	// Remote is the message of a timeout that happened on another member
	// (the leader a request was forwarded to); it is reported as is.
	Remote string
}

func (e *TimeoutError) Error() string {
	if e.Remote != "" {
		return e.Remote
	}
	s := "raftstore: " + e.Op + " timed out"
	if e.Indeterminate {
		s += " (it may still have been applied)"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }
func (e *TimeoutError) Unwrap() error        { return e.Cause }
