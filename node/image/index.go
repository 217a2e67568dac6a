package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The index (index.json) maps canonical names to images. Every change is
// a read-modify-write of the whole file under an exclusive lock on
// index.lock, written to a temporary file and renamed over the old one,
// so readers never need a lock and never see half a file, and a process
// that did not make a change sees it at its next read (the file's inode
// changes).

const (
	indexFile    = "index.json"
	indexLock    = "index.lock"
	gcLock       = "gc.lock"
	indexVersion = 1
)

type indexDoc struct {
	Version int               `json:"version"`
	Images  map[string]*Image `json:"images"`
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	ino, size int64
	mtime     time.Time
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st
}

// index returns the current index (shared: callers must not modify it).
func (s *Store) index() (map[string]*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked()
}

func (s *Store) loadLocked() (map[string]*Image, error) {
	p := filepath.Join(s.dir, indexFile)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		s.idx, s.stamp = map[string]*Image{}, fileStamp{}
		return s.idx, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st := stampOf(fi); s.idx != nil && st == s.stamp {
		return s.idx, nil
	}
	var doc indexDoc
	if err := json.NewDecoder(f).Decode(&doc); err != nil {
		return nil, fmt.Errorf("image: reading %s: %w", p, err)
	}
	if doc.Version != indexVersion {
		return nil, fmt.Errorf("image: %s has version %d; this drover reads version %d", p, doc.Version, indexVersion)
	}
	if doc.Images == nil {
		doc.Images = map[string]*Image{}
	}
	for k, img := range doc.Images {
		if img == nil || img.Ref != k {
			delete(doc.Images, k)
		}
	}
	s.idx, s.stamp = doc.Images, stampOf(fi)
	return s.idx, nil
}

// update applies fn to a private copy of the freshest index and writes
// the result, unless fn fails.
func (s *Store) update(fn func(idx map[string]*Image) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock(indexLock, true, false)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.loadLocked()
	if err != nil {
		return err
	}
	idx := make(map[string]*Image, len(cur))
	for k, v := range cur {
		idx[k] = v.clone()
	}
	if err := fn(idx); err != nil {
		return err
	}
	p := filepath.Join(s.dir, indexFile)
	if err := writeJSONFile(p, indexDoc{Version: indexVersion, Images: idx}); err != nil {
		return err
	}
	if err := syncDir(s.dir, fsyncFile); err != nil {
		return err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	s.idx, s.stamp = idx, stampOf(fi)
	return nil
}

// lock takes a BSD lock on the named lock file; unlock releases it.
func (s *Store) lock(name string, exclusive, nonBlocking bool) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f, exclusive, nonBlocking); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// writeJSONFile writes v to path atomically: a synced temporary file in
// the same directory, renamed over path.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp." + strconv.Itoa(os.Getpid()) + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
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

// syncDir opens dir and applies sync (fsyncFile for the directory entry
// itself, syncFS for its whole file system).
func syncDir(dir string, sync func(*os.File) error) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return sync(f)
}

func fsyncFile(f *os.File) error { return f.Sync() }
