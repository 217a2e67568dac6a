package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A layer lives in layers/sha256/<hex of its diffID>/ as fs/ (the
// unpacked tree, an overlayfs lower directory) and layer.json (written
// last). A directory without layer.json is not a layer: it is removed and
// unpacked again. Unpacking happens in layers/tmp/<hex>.<pid>.<n>/ and
// ends with one rename, so a crash never leaves a usable half layer.

// layerMeta is layer.json.
type layerMeta struct {
	DiffID   string    `json:"diffID"`
	Size     int64     `json:"size"` // bytes of file content
	Unpacked time.Time `json:"unpacked"`
}

func (s *Store) layerDir(diffID string) string {
	return filepath.Join(s.dir, "layers", "sha256", strings.TrimPrefix(diffID, "sha256:"))
}

func (s *Store) layerFS(diffID string) string { return filepath.Join(s.layerDir(diffID), "fs") }

// layerInfo reads a complete layer's metadata; ok is false when the layer
// is absent or incomplete.
func (s *Store) layerInfo(diffID string) (layerMeta, bool) {
	var m layerMeta
	b, err := os.ReadFile(filepath.Join(s.layerDir(diffID), "layer.json"))
	if err != nil || json.Unmarshal(b, &m) != nil || m.DiffID != diffID {
		return layerMeta{}, false
	}
	return m, true
}

// validDigest accepts "sha256:<64 lower-case hex>", the only digests the
// store keeps (they become directory names).
func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// unpackLayer unpacks the uncompressed layer stream r, checks that it
// hashes to diffID, and installs it. Another process that installed the
// same layer first wins; ours is dropped.
func (s *Store) unpackLayer(ctx context.Context, diffID string, r io.Reader) (layerMeta, error) {
	if !validDigest(diffID) {
		return layerMeta{}, fmt.Errorf("layer diffID %q is not a sha256 digest", diffID)
	}
	hexID := strings.TrimPrefix(diffID, "sha256:")
	tmp := filepath.Join(s.dir, "layers", "tmp", hexID+"."+strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(s.seq.Add(1), 10))
	if err := os.MkdirAll(filepath.Join(tmp, "fs"), 0o755); err != nil {
		return layerMeta{}, err
	}
	done := false
	defer func() {
		if !done {
			if err := os.RemoveAll(tmp); err != nil {
				s.log.Warn("removing a partial layer", "dir", tmp, "err", err)
			}
		}
	}()

	start := time.Now()
	h := sha256.New()
	tee := io.TeeReader(r, h)
	size, err := unpackTar(ctx, filepath.Join(tmp, "fs"), tee)
	if err != nil {
		return layerMeta{}, err
	}
	// The tar may end before the stream does (padding); the digest covers
	// all of it.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return layerMeta{}, fmt.Errorf("reading layer: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return layerMeta{}, fmt.Errorf("layer content hashes to %s, the image config says %s", got, diffID)
	}
	meta := layerMeta{DiffID: diffID, Size: size, Unpacked: s.now().UTC()}
	unpacked := time.Now()
	if err := syncDir(tmp, syncFS); err != nil {
		return layerMeta{}, err
	}
	s.log.Debug("unpacked layer", "diffID", diffID, "bytes", size, "took", unpacked.Sub(start), "sync", time.Since(unpacked))
	if err := writeJSONFile(filepath.Join(tmp, "layer.json"), meta); err != nil {
		return layerMeta{}, err
	}
	final := s.layerDir(diffID)
	if _, ok := s.layerInfo(diffID); ok {
		return meta, nil // someone else finished first; ours is removed
	}
	if err := os.RemoveAll(final); err != nil { // an incomplete leftover
		return layerMeta{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		if m, ok := s.layerInfo(diffID); ok {
			return m, nil
		}
		return layerMeta{}, err
	}
	done = true
	return meta, syncDir(filepath.Dir(final), fsyncFile)
}

// cleanTemp removes temporary files left by writers that are gone:
// names carry the writer's pid (<name>.<pid>.<n>; <file>.tmp.<pid>.<n>
// beside the files written atomically).
func (s *Store) cleanTemp() {
	for _, d := range []string{filepath.Join(s.dir, "layers", "tmp"), filepath.Join(s.dir, "tmp"), s.dir, filepath.Join(s.dir, "blobs", "sha256")} {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		atomicOnly := d == s.dir || strings.HasSuffix(d, "sha256")
		for _, e := range ents {
			if atomicOnly && !strings.Contains(e.Name(), ".tmp.") {
				continue
			}
			parts := strings.Split(e.Name(), ".")
			if len(parts) >= 3 {
				if pid, err := strconv.Atoi(parts[len(parts)-2]); err == nil && pid != os.Getpid() && processAlive(pid) {
					continue
				}
			}
			p := filepath.Join(d, e.Name())
			s.log.Info("removing temporary files of an interrupted pull or import", "path", p)
			if err := os.RemoveAll(p); err != nil {
				s.log.Warn("removing temporary files", "path", p, "err", err)
			}
		}
	}
}

// ensureLayer makes the layer diffID present, unpacking the stream open
// returns if it is not. Concurrent callers for one layer share one
// unpack. A caller whose shared unpack was cancelled because its starter
// went away, while the caller itself still wants it, starts it again.
//
// open gets the flight's context and its emit, which reaches every
// caller's progress function.
func (s *Store) ensureLayer(ctx context.Context, diffID string, open func(ctx context.Context, emit func(Progress)) (io.ReadCloser, error), progress func(Progress)) (layerMeta, error) {
	for attempt := 0; ; attempt++ {
		if m, ok := s.layerInfo(diffID); ok {
			return m, nil
		}
		v, err := s.layers.do(ctx, diffID, progress, func(ctx context.Context, emit func(Progress)) (any, error) {
			if m, ok := s.layerInfo(diffID); ok {
				return m, nil
			}
			rc, err := open(ctx, emit)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return s.unpackLayer(ctx, diffID, rc)
		})
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() == nil && attempt < 3 {
				continue
			}
			return layerMeta{}, err
		}
		return v.(layerMeta), nil
	}
}
