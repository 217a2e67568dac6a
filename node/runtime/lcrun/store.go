//go:build linux && cgo

package lcrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/node/runtime"
)

// A container's directory, <Root>/<id>/, holds:
//
//	spec.json      record: the Spec and what the agent derived from it; written
//	               once by the agent before the shim starts
//	status.json    shimState: written by the shim when the container runs and
//	               again when it exits (or by the agent, if the shim died
//	               without recording the exit)
//	shim.lock      flock'ed for as long as the shim lives (taken by the agent
//	               before the directory appears, inherited by the shim)
//	shim.log       the shim's own stderr (libcontainer's warnings, shim errors)
//	libcontainer/  libcontainer's state root: libcontainer/<id>/state.json
//
// Every JSON file is replaced whole by rename, so readers never see a
// partial one. Directories under Root starting with "." are a Start or a
// Remove in progress (or left by one that crashed: New deletes them).
const (
	specFile    = "spec.json"
	statusFile  = "status.json"
	lockFile    = "shim.lock"
	shimLogFile = "shim.log"
	lcDirName   = "libcontainer"
)

// record is spec.json.
type record struct {
	Spec       runtime.Spec `json:"spec"`
	CreatedAt  time.Time    `json:"createdAt"`
	CgroupPath string       `json:"cgroupPath"`
	LogMaxSize int64        `json:"logMaxSize"`
	// SwapAccounting and PrivilegedCaps are the host facts the agent
	// saw (see specOptions).
	SwapAccounting bool     `json:"swapAccounting"`
	PrivilegedCaps []string `json:"privilegedCaps,omitempty"`
}

// shimState is status.json.
type shimState struct {
	Pid        int       `json:"pid,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	Exited     bool      `json:"exited,omitempty"`
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("lcrun: %s: %w", path, err)
	}
	return nil
}

func readRecord(dir string) (*record, error) {
	var rec record
	if err := readJSONFile(filepath.Join(dir, specFile), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// readShimState returns the zero state if the shim has written none yet.
func readShimState(dir string) (shimState, error) {
	var st shimState
	err := readJSONFile(filepath.Join(dir, statusFile), &st)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return st, err
}

// lockShimFile creates and locks dir's shim.lock; whoever holds the
// returned file (and its duplicates in children) is "the shim".
func lockShimFile(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lcrun: lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// shimAlive reports whether something holds dir's shim lock.
func shimAlive(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	switch {
	case err == nil:
		return false, nil // closing f drops our lock
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	default:
		return false, err
	}
}

// reasonFor is the Kubernetes reason for an exit.
func reasonFor(code int, oomKilled bool) string {
	switch {
	case code != 0 && oomKilled:
		return "OOMKilled"
	case code == 0:
		return "Completed"
	default:
		return "Error"
	}
}
