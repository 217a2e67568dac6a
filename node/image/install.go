package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Phase is where a layer (or the whole image) is in a pull or import.
type Phase string

const (
	PhaseResolved    Phase = "resolved"    // the manifest and config are known (Layer empty)
	PhaseExists      Phase = "exists"      // the layer was already in the store
	PhaseDownloading Phase = "downloading" // Done of Total bytes read
	PhaseUnpacked    Phase = "unpacked"    // the layer is in the store
	PhaseDone        Phase = "done"        // the image is in the store (Layer empty)
)

// Progress reports a pull's or import's advance, per layer.
type Progress struct {
	Ref    string
	Phase  Phase
	Layer  string // the layer's diffID
	Index  int    // 1-based position of the layer
	Count  int    // layers in the image
	Done   int64  // bytes read of this layer (compressed bytes when pulled)
	Total  int64  // bytes of this layer; 0 when not known beforehand
	Digest string // the image's digest, with PhaseResolved and PhaseDone
}

// source is how install reads an image's layers.
type source int

const (
	// srcCompressed reads a layer's compressed blob (registry, OCI
	// layout), counting its bytes against its known size.
	srcCompressed source = iota
	// srcUncompressed reads the uncompressed stream (docker-save
	// archives, whose layers may be stored uncompressed).
	srcUncompressed
)

// install stores img under key: blobs, layers, then the index entry.
// digest is the registry digest (may be empty); manifest the digest of
// img's manifest (may be empty).
func (s *Store) install(ctx context.Context, key, digest, manifest string, img v1.Image, src source, emit func(Progress)) (*Image, error) {
	if emit == nil {
		emit = func(Progress) {}
	}
	// Shared GC lock: no prune removes a layer between its unpacking and
	// the index entry that references it.
	unlock, err := s.lock(gcLock, false, false)
	if err != nil {
		return nil, err
	}
	defer unlock()

	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("parsing the image config: %w", err)
	}
	sum := sha256.Sum256(rawCfg)
	id := "sha256:" + hex.EncodeToString(sum[:])
	if cf.OS != "" && cf.OS != s.platform.OS {
		return nil, fmt.Errorf("the image is for %s/%s, not %s", cf.OS, cf.Architecture, s.platform.OS)
	}
	if cf.Architecture != "" && cf.Architecture != s.platform.Architecture {
		s.log.Warn("image is for another architecture; its programs may not run here", "image", key, "architecture", cf.Architecture, "host", s.platform.Architecture)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	diffIDs := make([]string, len(cf.RootFS.DiffIDs))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
		if !validDigest(diffIDs[i]) {
			return nil, fmt.Errorf("layer %d: diffID %q is not a sha256 digest", i+1, diffIDs[i])
		}
	}
	if len(layers) != len(diffIDs) {
		return nil, fmt.Errorf("the manifest lists %d layers, the config %d", len(layers), len(diffIDs))
	}
	if err := s.writeBlob(id, rawCfg); err != nil {
		return nil, err
	}
	if manifest != "" {
		raw, err := img.RawManifest()
		if err != nil {
			return nil, fmt.Errorf("reading the manifest: %w", err)
		}
		if err := s.writeBlob(manifest, raw); err != nil {
			return nil, err
		}
	}
	emit(Progress{Ref: key, Phase: PhaseResolved, Count: len(layers), Digest: digest})

	// Layers download in parallel (s.jobs at a time) and unpack as they
	// arrive; each is keyed by diffID, so images share them.
	sizes := make([]int64, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, s.jobs)
	var wg sync.WaitGroup
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, l := range layers {
		diffID := diffIDs[i]
		base := Progress{Ref: key, Layer: diffID, Index: i + 1, Count: len(layers)}
		if m, ok := s.layerInfo(diffID); ok {
			sizes[i] = m.Size
			p := base
			p.Phase = PhaseExists
			emit(p)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-lctx.Done():
				errs[i] = lctx.Err()
				return
			}
			sub := func(p Progress) {
				p.Ref, p.Index, p.Count, p.Layer = base.Ref, base.Index, base.Count, base.Layer
				emit(p)
			}
			m, err := s.ensureLayer(lctx, diffID, func(ctx context.Context, lemit func(Progress)) (io.ReadCloser, error) {
				return openLayer(l, src, lemit)
			}, sub)
			if err != nil {
				errs[i] = fmt.Errorf("layer %s: %w", diffID, err)
				cancel()
				return
			}
			sizes[i] = m.Size
			p := base
			p.Phase = PhaseUnpacked
			emit(p)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && err != context.Canceled {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	now := s.now().UTC()
	rec := &Image{
		Ref: key, Digest: digest, ID: id, Manifest: manifest, Layers: diffIDs,
		OS: cf.OS, Architecture: cf.Architecture, Stored: now, LastUsed: now,
		Config: imageConfig(cf),
	}
	if !cf.Created.IsZero() {
		rec.Created = cf.Created.UTC()
	}
	for _, sz := range sizes {
		rec.Size += sz
	}
	if err := s.update(func(idx map[string]*Image) error {
		idx[key] = rec
		return nil
	}); err != nil {
		return nil, err
	}
	emit(Progress{Ref: key, Phase: PhaseDone, Count: len(layers), Digest: digest})
	return rec.clone(), nil
}

func imageConfig(cf *v1.ConfigFile) ImageConfig {
	c := cf.Config
	ic := ImageConfig{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir,
		User: c.User, Labels: c.Labels, StopSignal: c.StopSignal,
	}
	for p := range c.ExposedPorts {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		ic.ExposedPorts = append(ic.ExposedPorts, p)
	}
	slices.Sort(ic.ExposedPorts)
	return ic
}

// openLayer opens the uncompressed stream of l; with srcCompressed it
// reads the compressed blob and reports its bytes through emit.
func openLayer(l v1.Layer, src source, emit func(Progress)) (io.ReadCloser, error) {
	if src == srcUncompressed {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		return &countingReader{rc: rc, emit: emit}, nil
	}
	total, err := l.Size()
	if err != nil {
		return nil, err
	}
	cl := &countedLayer{l: l, total: total, emit: emit}
	ul, err := partial.CompressedToLayer(cl)
	if err != nil {
		return nil, err
	}
	return ul.Uncompressed()
}

// countedLayer is the compressed side of a layer, with its reads
// counted; partial.CompressedToLayer decompresses it (gzip or zstd).
type countedLayer struct {
	l     v1.Layer
	total int64
	emit  func(Progress)
}

func (c *countedLayer) Digest() (v1.Hash, error)            { return c.l.Digest() }
func (c *countedLayer) Size() (int64, error)                { return c.total, nil }
func (c *countedLayer) MediaType() (types.MediaType, error) { return c.l.MediaType() }
func (c *countedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := c.l.Compressed()
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, total: c.total, emit: c.emit}, nil
}

// countingReader reports bytes read through emit, at most every
// progressEvery bytes or progressInterval, and at the end.
type countingReader struct {
	rc    io.ReadCloser
	total int64
	done  int64
	last  int64
	at    time.Time
	emit  func(Progress)
	ended bool
}

const (
	progressEvery    = 1 << 20
	progressInterval = 200 * time.Millisecond
)

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.done += int64(n)
	now := time.Now()
	switch {
	case err == io.EOF && !c.ended:
		c.ended = true
		c.report(now)
	case c.last == 0 && c.done > 0, c.done-c.last >= progressEvery, now.Sub(c.at) >= progressInterval:
		c.report(now)
	}
	return n, err
}

func (c *countingReader) report(now time.Time) {
	c.last, c.at = c.done, now
	c.emit(Progress{Phase: PhaseDownloading, Done: c.done, Total: c.total})
}

func (c *countingReader) Close() error { return c.rc.Close() }

// writeBlob stores a manifest or config under its digest.
func (s *Store) writeBlob(digest string, data []byte) error {
	if !validDigest(digest) {
		return fmt.Errorf("blob digest %q is not a sha256 digest", digest)
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
		return fmt.Errorf("blob hashes to %s, expected %s", got, digest)
	}
	p := filepath.Join(s.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return writeFileAtomic(p, data)
}

// Blob returns a stored manifest or config by digest (Image.Manifest,
// Image.ID).
func (s *Store) Blob(digest string) ([]byte, error) {
	if !validDigest(digest) {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, digest)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, digest)
	}
	return b, err
}
