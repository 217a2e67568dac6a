package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// state is a sandbox's state file. It is written before the sandbox
// creates anything and removed after everything else is gone.
type state struct {
	ID    string           `json:"id"`
	NetNS string           `json:"netns"`
	Ports []cniPortMapping `json:"ports,omitempty"` // DEL needs them to find portmap's rules
	// Set once CNI ADD has succeeded.
	IP       string `json:"ip,omitempty"`
	Gateway  string `json:"gateway,omitempty"`
	HostVeth string `json:"hostVeth,omitempty"`
}

const stateExt = ".json"

func statePath(dir, id string) string { return filepath.Join(dir, id+stateExt) }

func readState(dir, id string) (*state, error) {
	b, err := os.ReadFile(statePath(dir, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("network: state of sandbox %s: %w", id, err)
	}
	if st.ID != id || st.NetNS == "" {
		return nil, fmt.Errorf("network: state of sandbox %s: names sandbox %q, netns %q", id, st.ID, st.NetNS)
	}
	return &st, nil
}

// writeState replaces the state file atomically (write, sync, rename).
func writeState(dir string, st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if err := writeFileAtomic(statePath(dir, st.ID), b); err != nil {
		return fmt.Errorf("network: state of sandbox %s: %w", st.ID, err)
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func removeState(dir, id string) error {
	if err := os.Remove(statePath(dir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// listStates returns the IDs with a state file.
func listStates(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	var ids []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), stateExt)
		if ok && !e.IsDir() && validateID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
