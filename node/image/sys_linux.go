//go:build linux

package image

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The few system calls the store needs that package os does not offer.
// Each works on a parent directory opened through an os.Root and a single
// path component, so nothing can be steered outside the layer by a symlink.

// mknodAt creates a device node or FIFO called name in dir.
func mknodAt(dir *os.File, name string, mode uint32, major, minor uint32) error {
	err := unix.Mknodat(int(dir.Fd()), name, mode, int(unix.Mkdev(major, minor)))
	if err != nil {
		return &os.PathError{Op: "mknod", Path: dir.Name() + "/" + name, Err: err}
	}
	return nil
}

// whiteoutAt creates an overlayfs whiteout (a 0/0 character device).
func whiteoutAt(dir *os.File, name string) error {
	return mknodAt(dir, name, unix.S_IFCHR, 0, 0)
}

const (
	modeChar = unix.S_IFCHR
	modeBlk  = unix.S_IFBLK
	modeFIFO = unix.S_IFIFO
)

// setXattr sets an extended attribute on an open file or directory.
func setXattr(f *os.File, attr string, value []byte) error {
	if err := unix.Fsetxattr(int(f.Fd()), attr, value, 0); err != nil {
		return &os.PathError{Op: "setxattr " + attr, Path: f.Name(), Err: err}
	}
	return nil
}

// getXattr reads an extended attribute of path (not following symlinks).
func getXattr(path, attr string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, attr, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// setTimesAt sets the times of name in dir without following a symlink.
func setTimesAt(dir *os.File, name string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(int(dir.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dir.Name() + "/" + name, Err: err}
	}
	return nil
}

// syncFS flushes the file system holding f to disk: one call instead of
// an fsync per unpacked file.
func syncFS(f *os.File) error { return unix.Syncfs(int(f.Fd())) }

// flock takes (or, with nonBlocking, tries to take) a BSD lock on f.
// Locks belong to the open file, so two opens of one lock file conflict
// even inside one process.
func flock(f *os.File, exclusive, nonBlocking bool) error {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if nonBlocking {
		how |= unix.LOCK_NB
	}
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EWOULDBLOCK {
			return errLocked
		}
		return err
	}
}

var errLocked = errors.New("locked")

// mountDataMax is the longest option string mount(2) accepts (one page,
// with its terminating NUL).
const mountDataMax = 4095

// mountOverlay mounts an overlayfs at target. lowers are top-most first.
// Long lower lists that do not fit mount(2)'s one-page option string go
// through the new mount API, which takes the lower directories one by one
// ("lowerdir+", Linux 6.8 and later).
func mountOverlay(lowers []string, upper, work, target string) error {
	for _, p := range append(append([]string{}, lowers...), upper, work) {
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("overlay: path %q contains ',', ':' or '\\'", p)
		}
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(data) <= mountDataMax {
		if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
			return &os.PathError{Op: "mount overlay", Path: target, Err: err}
		}
		return nil
	}
	return mountOverlayFsopen(lowers, upper, work, target)
}

func mountOverlayFsopen(lowers []string, upper, work, target string) (err error) {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("overlay: %d lower directories are too many for mount(2) and fsopen failed: %w", len(lowers), err)
	}
	defer unix.Close(fd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fd, key, value); err != nil {
			return fmt.Errorf("overlay: fsconfig %s=%s: %w", key, value, err)
		}
		return nil
	}
	for _, l := range lowers {
		if err := set("lowerdir+", l); err != nil {
			return fmt.Errorf("%w (lowerdir+ needs Linux 6.8 or later)", err)
		}
	}
	if err := set("upperdir", upper); err != nil {
		return err
	}
	if err := set("workdir", work); err != nil {
		return err
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("overlay: fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("overlay: fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount overlay", Path: target, Err: err}
	}
	return nil
}

// unmount detaches whatever is mounted at target, stacked mounts
// included. A busy mount is detached lazily so it can never stay behind
// in the agent's mount namespace. Not mounted is not an error.
func unmount(target string) error {
	for range 16 {
		mounted, err := isMountPoint(target)
		if err != nil || !mounted {
			return err
		}
		err = unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if err == unix.EBUSY {
			err = unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		if err != nil && err != unix.EINVAL {
			return &os.PathError{Op: "unmount", Path: target, Err: err}
		}
	}
	return fmt.Errorf("unmount %s: still mounted after 16 unmounts", target)
}

// isMountPoint reports whether something is mounted at path: its device
// differs from its parent's. A missing path is not a mount point.
func isMountPoint(path string) (bool, error) {
	var st, pst unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if err := unix.Lstat(path+"/..", &pst); err != nil {
		return false, &os.PathError{Op: "lstat", Path: path + "/..", Err: err}
	}
	return st.Dev != pst.Dev || st.Ino == pst.Ino, nil
}

// processAlive reports whether pid still runs (a crashed writer's
// temporary files can be removed once it does not).
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}
