package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// OCI layer whiteouts (image-spec layer.md) and their overlayfs forms.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // AUFS bookkeeping (.wh..wh.plnk, ...), never content
	whiteoutOpaque = ".wh..wh..opq"

	// xattrOpaque marks a directory of an upper or lower layer whose
	// contents hide the same directory of every layer below.
	xattrOpaque = "trusted.overlay.opaque"
	// Image-supplied xattrs in this namespace would let a layer steer
	// overlayfs (redirects, metacopy); they are dropped.
	xattrOverlayPrefix = "trusted.overlay."
	paxXattrPrefix     = "SCHILY.xattr."
)

// unpacker writes one layer's tar stream into a directory as an
// overlayfs lower layer: a whiteout ".wh.NAME" becomes a 0/0 character
// device NAME, an opaque marker ".wh..wh..opq" becomes the
// trusted.overlay.opaque=y xattr on its directory. Every path is resolved
// through an os.Root, so entries (and symlinks made by earlier entries)
// cannot reach outside the layer.
type unpacker struct {
	root    *os.Root
	parent  *os.File // cached open parent directory of the last entry
	parentN string
	dirs    []dirTimes
	size    int64
	buf     []byte
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

// unpackTar unpacks r into dir (which must exist and be empty) and
// returns the number of bytes of file content written. It reads r only
// up to the end of the archive.
func unpackTar(ctx context.Context, dir string, r io.Reader) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	u := &unpacker{root: root, buf: make([]byte, 256<<10)}
	defer func() {
		u.closeParent()
		root.Close()
	}()
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("reading layer tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
	}
	// Directory times last, deepest first: creating entries inside a
	// directory changes its mtime.
	u.closeParent()
	slices.SortStableFunc(u.dirs, func(a, b dirTimes) int { return strings.Count(b.name, "/") - strings.Count(a.name, "/") })
	for _, d := range u.dirs {
		if err := u.setTimes(d.name, d.atime, d.mtime); err != nil {
			return 0, err
		}
	}
	return u.size, nil
}

// cleanName makes a tar name relative to the layer root; "" is the root.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	name := cleanName(hdr.Name)
	if name == "" {
		return nil // the layer root: overlayfs takes the root's attributes from the upper layer
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}

	switch {
	case base == whiteoutOpaque:
		if err := u.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		d, err := u.root.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		return setXattr(d, xattrOpaque, []byte("y"))
	case strings.HasPrefix(base, whiteoutMeta):
		return nil
	case strings.HasPrefix(base, whiteoutPrefix):
		target := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
		if err := u.root.RemoveAll(target); err != nil {
			return err
		}
		p, err := u.openParent(dir)
		if err != nil {
			return err
		}
		return whiteoutAt(p, path.Base(target))
	}

	p, err := u.openParent(dir)
	if err != nil {
		return err
	}
	// A later entry replaces an earlier one, except that a directory
	// entry over a directory only updates its attributes.
	if fi, err := u.root.Lstat(name); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := u.root.RemoveAll(name); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	mode := fileMode(hdr)
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := u.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := u.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := u.root.Chmod(name, mode); err != nil {
			return err
		}
		if err := u.xattrsByName(name, hdr); err != nil {
			return err
		}
		u.dirs = append(u.dirs, dirTimes{name, atime, hdr.ModTime})
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse: //nolint:staticcheck // TypeRegA appears in old layers
		f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(f, io.LimitReader(r, hdr.Size), u.buf)
		if err == nil && n != hdr.Size {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = f.Chown(hdr.Uid, hdr.Gid)
		}
		if err == nil {
			err = f.Chmod(mode) // after chown, which clears setuid bits
		}
		if err == nil {
			err = setXattrs(f, hdr)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		u.size += n
	case tar.TypeSymlink:
		if err := u.root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		if err := u.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	case tar.TypeLink:
		target := cleanName(hdr.Linkname)
		if target == "" {
			return fmt.Errorf("hard link to the layer root")
		}
		// The link shares the target's inode, times and owner.
		return u.root.Link(target, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		t := uint32(modeFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			t = modeChar
		case tar.TypeBlock:
			t = modeBlk
		}
		if err := mknodAt(p, base, t|uint32(mode.Perm()), uint32(hdr.Devmajor), uint32(hdr.Devminor)); err != nil {
			return err
		}
		if err := u.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := u.root.Chmod(name, mode); err != nil {
			return err
		}
	default:
		return nil // PAX global headers and types a layer does not use
	}
	return setTimesAt(p, base, atime, hdr.ModTime)
}

// fileMode is the permission part of a tar mode, with setuid, setgid and
// sticky bits, as os.Chmod takes it.
func fileMode(hdr *tar.Header) os.FileMode {
	m := os.FileMode(hdr.Mode & 0o777)
	if hdr.Mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// openParent opens (or reuses) the directory dir, creating it and any
// missing parents (as root-owned 0755, as Docker does).
func (u *unpacker) openParent(dir string) (*os.File, error) {
	if u.parent != nil && u.parentN == dir {
		return u.parent, nil
	}
	u.closeParent()
	if err := u.root.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := u.root.Open(dir)
	if err != nil {
		return nil, err
	}
	u.parent, u.parentN = f, dir
	return f, nil
}

func (u *unpacker) closeParent() {
	if u.parent != nil {
		u.parent.Close()
		u.parent, u.parentN = nil, ""
	}
}

func (u *unpacker) setTimes(name string, atime, mtime time.Time) error {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	p, err := u.openParent(dir)
	if err != nil {
		return err
	}
	return setTimesAt(p, base, atime, mtime)
}

func (u *unpacker) xattrsByName(name string, hdr *tar.Header) error {
	if !hasXattrs(hdr) {
		return nil
	}
	f, err := u.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return setXattrs(f, hdr)
}

func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			return true
		}
	}
	return false
}

// setXattrs applies a file's extended attributes from its PAX records
// (file capabilities, for example), leaving out overlayfs's own.
func setXattrs(f *os.File, hdr *tar.Header) error {
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		attr := strings.TrimPrefix(k, paxXattrPrefix)
		if strings.HasPrefix(attr, xattrOverlayPrefix) {
			continue
		}
		if err := setXattr(f, attr, []byte(hdr.PAXRecords[k])); err != nil {
			return err
		}
	}
	return nil
}
