package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// A container's root filesystem lives in containers/<id>/: rootfs.json
// (written before anything is mounted, so the layers it names are safe
// from GC and a crash leaves something ListRootFS reports), upper/ and
// work/ (its overlayfs upper and work directories) and rootfs/ (the
// mount point).

// RootFS is a prepared container root filesystem.
type RootFS struct {
	ID      string    `json:"id"`
	Path    string    `json:"-"`   // the mount point given to the runtime
	Ref     string    `json:"ref"` // the image's name when prepared
	ImageID string    `json:"imageID"`
	Layers  []string  `json:"layers"`
	Created time.Time `json:"created"`
	Mounted bool      `json:"-"`
}

const rootfsMeta = "rootfs.json"

// validID accepts container ids that are safe as one path component.
func validID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func (s *Store) containerDir(id string) string { return filepath.Join(s.dir, "containers", id) }

// PrepareRootFS mounts a writable root filesystem for container id: an
// overlayfs whose lower directories are img's layers and whose upper and
// work directories are the container's own. It returns the mount point.
// Preparing an id again from the same image returns the same mount
// (remounting it after a reboot, with the container's changes); from
// another image it is ErrRootFSExists. On error nothing is left behind.
func (s *Store) PrepareRootFS(ctx context.Context, img *Image, id string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("image: invalid container id %q", id)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dir := s.containerDir(id)
	target := filepath.Join(dir, "rootfs")
	cur, err := s.readRootFS(id)
	if err == nil && cur.ImageID == "" && !cur.Mounted {
		// A crash between creating the directory and writing its record:
		// nothing uses it.
		if err := s.ReleaseRootFS(id); err != nil {
			return "", err
		}
		cur, err = nil, fs.ErrNotExist
	}
	if err == nil {
		if cur.ImageID != img.ID || !slices.Equal(cur.Layers, img.Layers) {
			return "", fmt.Errorf("%w: %s was prepared from %s (%s)", ErrRootFSExists, id, cur.Ref, cur.ImageID)
		}
		if cur.Mounted {
			return target, nil
		}
		return target, s.mountRootFS(cur)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}

	// Shared GC lock from the layer check until rootfs.json names the
	// layers; under the index lock so Remove sees this use.
	unlock, err := s.lock(gcLock, false, false)
	if err != nil {
		return "", err
	}
	r := &RootFS{ID: id, Path: target, Ref: img.Ref, ImageID: img.ID, Layers: slices.Clone(img.Layers), Created: s.now().UTC()}
	created := false
	err = s.update(func(idx map[string]*Image) error {
		for _, l := range img.Layers {
			if _, ok := s.layerInfo(l); !ok {
				return fmt.Errorf("%w: layer %s of %s is not in the store", ErrNotFound, l, img.Ref)
			}
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s (being prepared concurrently)", ErrRootFSExists, id)
			}
			return err
		}
		created = true
		for _, d := range []string{"upper", "work", "rootfs"} {
			if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		if err := writeJSONFile(filepath.Join(dir, rootfsMeta), r); err != nil {
			return err
		}
		if rec, ok := idx[img.Ref]; ok && rec.ID == img.ID {
			rec.LastUsed = s.now().UTC()
		}
		return nil
	})
	unlock()
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = s.mountRootFS(r)
	}
	if err != nil {
		if created {
			if rerr := os.RemoveAll(dir); rerr != nil {
				s.log.Warn("removing a root filesystem that failed to mount", "id", id, "err", rerr)
			}
		}
		return "", err
	}
	return target, nil
}

func (s *Store) mountRootFS(r *RootFS) error {
	dir := s.containerDir(r.ID)
	lowers := make([]string, 0, len(r.Layers))
	for i := len(r.Layers) - 1; i >= 0; i-- { // overlayfs lists the top layer first
		lowers = append(lowers, s.layerFS(r.Layers[i]))
	}
	if len(lowers) == 0 { // an image without layers: one empty lower directory
		empty := filepath.Join(s.dir, "layers", "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lowers = append(lowers, empty)
	}
	if err := mountOverlay(lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")); err != nil {
		return fmt.Errorf("image: root filesystem of %s: %w", r.ID, err)
	}
	s.log.Debug("mounted root filesystem", "id", r.ID, "image", r.Ref, "layers", len(r.Layers))
	return nil
}

// ReleaseRootFS unmounts container id's root filesystem and deletes it,
// with the container's changes. Releasing an unknown id is not an error.
func (s *Store) ReleaseRootFS(id string) error {
	if !validID(id) {
		return fmt.Errorf("image: invalid container id %q", id)
	}
	dir := s.containerDir(id)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := unmount(filepath.Join(dir, "rootfs")); err != nil {
		return fmt.Errorf("image: releasing the root filesystem of %s: %w", id, err)
	}
	// Remove the record last: until then GC keeps the layers.
	for _, d := range []string{"rootfs", "work", "upper"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return fmt.Errorf("image: releasing the root filesystem of %s: %w", id, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("image: releasing the root filesystem of %s: %w", id, err)
	}
	return nil
}

// readRootFS reads container id's record; a directory without one (a
// crash while preparing) reads as a RootFS with only ID and Path.
func (s *Store) readRootFS(id string) (*RootFS, error) {
	dir := s.containerDir(id)
	if _, err := os.Lstat(dir); err != nil {
		return nil, err
	}
	r := &RootFS{}
	b, err := os.ReadFile(filepath.Join(dir, rootfsMeta))
	if err == nil {
		err = json.Unmarshal(b, r)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("unreadable root filesystem record", "id", id, "err", err)
	}
	r.ID, r.Path = id, filepath.Join(dir, "rootfs")
	r.Mounted, err = isMountPoint(r.Path)
	return r, err
}

// ListRootFS reports every root filesystem in the store, mounted or not,
// so an agent that restarted can release those it no longer needs.
func (s *Store) ListRootFS() ([]*RootFS, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "containers"))
	if err != nil {
		return nil, err
	}
	var out []*RootFS
	for _, e := range ents {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		r, err := s.readRootFS(e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// rootfsUsers lists the containers whose root filesystems were prepared
// from image ref.
func (s *Store) rootfsUsers(ref string) ([]string, error) {
	fss, err := s.ListRootFS()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range fss {
		if r.Ref == ref {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}
