//go:build linux

package network

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// createNetNS makes a new network namespace and bind-mounts it on path, as
// `ip netns add` does but without depending on it: a goroutine locks itself
// to its OS thread, unshares the thread's network namespace and mounts the
// thread's ns file. The thread is never unlocked, so the Go runtime ends it
// with the goroutine instead of reusing a thread in the wrong namespace.
//
// A path that already holds a live namespace is left alone.
func createNetNS(path string) error {
	if isNetNS(path) {
		return nil
	}
	// The mount point: an empty file (it may be left from a crash between
	// this step and the mount).
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("create netns mount point: %w", err)
	}
	f.Close()

	errCh := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errCh <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errCh <- fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
			return
		}
		errCh <- nil
	}()
	if err := <-errCh; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// withNetNS runs fn on an OS thread that has joined the network namespace
// at path. As in createNetNS the thread is never unlocked and ends with the
// goroutine.
func withNetNS(path string, fn func() error) error {
	errCh := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			errCh <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errCh <- fmt.Errorf("join netns %s: %w", path, err)
			return
		}
		errCh <- fn()
	}()
	return <-errCh
}

// isNetNS reports whether path is a mounted namespace file.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// removeNetNS unmounts and removes a namespace file; a missing or
// unmounted one is fine. Processes still in the namespace keep it alive
// (MNT_DETACH), which is harmless: the kernel frees it with the last one.
func removeNetNS(path string) error {
	for i := 0; isNetNS(path); i++ {
		if i == 8 {
			return fmt.Errorf("netns %s is still mounted after %d unmounts", path, i)
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount netns %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, without waiting. The kernel
// drops it when the file is closed or the process dies.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("network: lock %s: %w", path, err)
	}
	return f, nil
}
