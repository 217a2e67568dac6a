package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Errors the store returns, wrapped; test them with errors.Is.
var (
	// ErrNotFound: no such image in the store.
	ErrNotFound = errors.New("image not found")
	// ErrInUse: a prepared root filesystem (a container) uses the image.
	ErrInUse = errors.New("image is in use")
	// ErrPull wraps every failure to pull (Kubernetes reason
	// ErrImagePull).
	ErrPull = errors.New("failed to pull image")
	// ErrImageNeverPull: the pull policy is Never and the image is absent
	// (Kubernetes reason ErrImageNeverPull).
	ErrImageNeverPull = errors.New("image is not present with pull policy of Never")
	// ErrInvalidName: the reference does not parse (Kubernetes reason
	// InvalidImageName).
	ErrInvalidName = errors.New("invalid image name")
	// ErrUnknownArchive: Import got neither a docker-save nor an OCI
	// image-layout archive.
	ErrUnknownArchive = errors.New("not a docker-save or OCI image-layout archive")
	// ErrRootFSExists: a root filesystem with that id was prepared from
	// another image.
	ErrRootFSExists = errors.New("root filesystem already exists")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("image store closed")
)

// Config configures a Store.
type Config struct {
	// Dir holds everything the store keeps (see the package doc). It is
	// created if missing.
	Dir string
	// InsecureRegistries (host[:port]) are reached over plain HTTP; all
	// others only over HTTPS.
	InsecureRegistries []string
	// Logger; nil discards.
	Logger *slog.Logger
	// Platform picked from multi-platform images; default linux and the
	// host's architecture.
	Platform *v1.Platform
	// Now is the clock (last-used times); default time.Now.
	Now func() time.Time
	// PullJobs is how many layers of one image download at once;
	// default 3.
	PullJobs int
}

// Image is an image in the store.
type Image struct {
	// Ref is the canonical name ("docker.io/library/busybox:latest"), or
	// the image ID ("sha256:...") for an untagged imported image.
	Ref string `json:"ref"`
	// Digest is the registry digest of what Ref resolved to (a manifest,
	// or the index it was picked from); empty for images imported from a
	// docker-save archive, which carries none.
	Digest string `json:"digest,omitempty"`
	// ID is the digest of the image's config, as Docker shows image IDs.
	ID string `json:"id"`
	// Layers are the layers' diffIDs, the bottom layer first.
	Layers []string `json:"layers"`
	// Size is the unpacked size of all layers, in bytes.
	Size         int64       `json:"size"`
	OS           string      `json:"os,omitempty"`
	Architecture string      `json:"architecture,omitempty"`
	Created      time.Time   `json:"created,omitzero"` // from the image config
	Stored       time.Time   `json:"stored"`           // when it was pulled or imported
	LastUsed     time.Time   `json:"lastUsed"`         // last pull, Ensure hit or PrepareRootFS
	Config       ImageConfig `json:"config"`
	// Manifest is the digest of the image manifest (Digest's target, or
	// the one picked from an index); empty for docker-save imports.
	Manifest string `json:"manifest,omitempty"`
}

// ImageConfig is what a container runtime needs from an image's config.
type ImageConfig struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"` // "80/tcp", sorted
	Labels       map[string]string `json:"labels,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
}

func (img *Image) clone() *Image {
	c := *img
	c.Layers = slices.Clone(img.Layers)
	c.Config.Entrypoint = slices.Clone(img.Config.Entrypoint)
	c.Config.Cmd = slices.Clone(img.Config.Cmd)
	c.Config.Env = slices.Clone(img.Config.Env)
	c.Config.ExposedPorts = slices.Clone(img.Config.ExposedPorts)
	if img.Config.Labels != nil {
		c.Config.Labels = make(map[string]string, len(img.Config.Labels))
		for k, v := range img.Config.Labels {
			c.Config.Labels[k] = v
		}
	}
	return &c
}

// Store is a node's image store. It is safe for concurrent use, and
// several processes (the agent and the drover image CLI) may use one Dir
// at once.
type Store struct {
	dir       string
	log       *slog.Logger
	insecure  map[string]bool
	platform  v1.Platform
	now       func() time.Time
	jobs      int
	transport http.RoundTripper // wrapped per pull in httpsOnly

	ctx    context.Context // ends at Close; parent of shared pulls
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
	gomu   sync.Mutex // guards closed and wg.Add

	mu    sync.Mutex // guards the cached index
	idx   map[string]*Image
	stamp fileStamp

	pulls  group // by canonical name
	layers group // by diffID
	seq    atomic.Uint64
}

// Open opens (creating if needed) the store in cfg.Dir and removes what
// interrupted pulls and imports of dead processes left behind.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("image: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: cfg.Logger, insecure: map[string]bool{}, now: cfg.Now, jobs: cfg.PullJobs}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.jobs <= 0 {
		s.jobs = 3
	}
	if cfg.Platform != nil {
		s.platform = *cfg.Platform
	} else {
		s.platform = v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	}
	for _, r := range cfg.InsecureRegistries {
		s.insecure[registryKey(r)] = true
	}
	s.transport = remote.DefaultTransport
	for _, d := range []string{"", "blobs/sha256", "layers/sha256", "layers/tmp", "containers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.pulls.s, s.layers.s = s, s
	s.cleanTemp()
	if _, err := s.index(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close cancels pulls and imports under way and waits for them. Mounted
// root filesystems stay mounted (containers keep running).
func (s *Store) Close() error {
	s.gomu.Lock()
	s.closed = true
	s.gomu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// goFunc runs f on a goroutine the store owns and waits for at Close;
// false if the store is closed.
func (s *Store) goFunc(f func()) bool {
	s.gomu.Lock()
	defer s.gomu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// List returns every image, sorted by name.
func (s *Store) List() ([]*Image, error) {
	idx, err := s.index()
	if err != nil {
		return nil, err
	}
	out := make([]*Image, 0, len(idx))
	for _, img := range idx {
		out = append(out, img.clone())
	}
	slices.SortFunc(out, func(a, b *Image) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

// Get finds an image by name ("busybox", "docker.io/library/busybox:1.36",
// "repo@sha256:..."), by ID, or by digest. Only images whose layers are all
// present count. ErrNotFound otherwise.
func (s *Store) Get(ref string) (*Image, error) {
	idx, err := s.index()
	if err != nil {
		return nil, err
	}
	img := lookup(idx, ref)
	if img == nil || !s.complete(img) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return img.clone(), nil
}

// lookup finds ref in idx: by canonical name; a digest reference
// (repo@sha256:...) also by an image of that repository with that
// digest; then by ID or digest.
func lookup(idx map[string]*Image, ref string) *Image {
	if img, ok := idx[ref]; ok {
		return img
	}
	if key, ok := CanonicalName(ref); ok {
		if img, ok := idx[key]; ok {
			return img
		}
		if repo, digest, ok := strings.Cut(key, "@"); ok {
			var match *Image
			for _, img := range idx {
				if img.Digest == digest && repoOf(img.Ref) == repo && (match == nil || img.Ref < match.Ref) {
					match = img
				}
			}
			if match != nil {
				return match
			}
		}
	}
	if validDigest(ref) {
		var match *Image
		for _, img := range idx {
			if (img.ID == ref || img.Digest == ref) && (match == nil || img.Ref < match.Ref) {
				match = img
			}
		}
		return match
	}
	return nil
}

// repoOf is the repository of a canonical name (without tag or digest).
func repoOf(key string) string {
	if i := strings.Index(key, "@"); i >= 0 {
		return key[:i]
	}
	if i := strings.LastIndex(key, ":"); i > strings.LastIndex(key, "/") {
		return key[:i]
	}
	return key
}

// complete reports whether all of img's layers are unpacked.
func (s *Store) complete(img *Image) bool {
	for _, l := range img.Layers {
		if _, ok := s.layerInfo(l); !ok {
			return false
		}
	}
	return true
}

// Remove deletes an image from the index and frees the layers no other
// image or root filesystem uses (unless a pull or import is under way;
// GC frees them then). ErrInUse if a prepared root filesystem was made
// from it.
func (s *Store) Remove(ref string) error {
	err := s.update(func(idx map[string]*Image) error {
		img := lookup(idx, ref)
		if img == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, ref)
		}
		users, err := s.rootfsUsers(img.Ref)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%w: %s: by the root filesystem of %s", ErrInUse, img.Ref, strings.Join(users, ", "))
		}
		delete(idx, img.Ref)
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.prune(false)
	return err
}

// GCResult reports what GC removed.
type GCResult struct {
	Images []string // names of the removed images
	Layers int      // layers removed
	Bytes  int64    // unpacked bytes freed by them
	// Deferred is set when layers were left for a later GC because a pull
	// or import was under way.
	Deferred bool
}

// GC removes every image that inUse (nil: none) does not claim and no
// prepared root filesystem uses, then every layer and blob no remaining
// image or root filesystem references.
func (s *Store) GC(ctx context.Context, inUse func(ref string) bool) (*GCResult, error) {
	res := &GCResult{}
	err := s.update(func(idx map[string]*Image) error {
		fss, err := s.ListRootFS()
		if err != nil {
			return err
		}
		used := map[string]bool{}
		for _, r := range fss {
			used[r.Ref] = true
		}
		for ref := range idx {
			if err := ctx.Err(); err != nil {
				return err
			}
			if used[ref] || (inUse != nil && inUse(ref)) {
				continue
			}
			delete(idx, ref)
			res.Images = append(res.Images, ref)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(res.Images)
	p, err := s.prune(false)
	if err != nil {
		return res, err
	}
	res.Layers, res.Bytes, res.Deferred = p.layers, p.bytes, p.deferred
	if len(res.Images) > 0 || res.Layers > 0 {
		s.log.Info("image garbage collection", "images", len(res.Images), "layers", res.Layers, "bytes", res.Bytes)
	}
	return res, nil
}

type pruneResult struct {
	layers   int
	bytes    int64
	deferred bool
}

// prune removes layers and blobs that no image and no root filesystem
// references. It needs the GC lock exclusively; when a pull, import or
// PrepareRootFS holds it shared (and block is false) nothing is removed.
func (s *Store) prune(block bool) (pruneResult, error) {
	var res pruneResult
	unlock, err := s.lock(gcLock, true, !block)
	if errors.Is(err, errLocked) {
		res.deferred = true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	defer unlock()

	idx, err := s.index()
	if err != nil {
		return res, err
	}
	layers, blobs := map[string]bool{}, map[string]bool{}
	for _, img := range idx {
		for _, l := range img.Layers {
			layers[l] = true
		}
		blobs[img.ID] = true
		blobs[img.Manifest] = true
	}
	fss, err := s.ListRootFS()
	if err != nil {
		return res, err
	}
	for _, r := range fss {
		for _, l := range r.Layers {
			layers[l] = true
		}
		blobs[r.ImageID] = true
	}

	ldir := filepath.Join(s.dir, "layers", "sha256")
	ents, err := os.ReadDir(ldir)
	if err != nil {
		return res, err
	}
	for _, e := range ents {
		d := "sha256:" + e.Name()
		if layers[d] {
			continue
		}
		m, _ := s.layerInfo(d)
		if err := os.RemoveAll(filepath.Join(ldir, e.Name())); err != nil {
			return res, err
		}
		res.layers++
		res.bytes += m.Size
	}
	bdir := filepath.Join(s.dir, "blobs", "sha256")
	ents, err = os.ReadDir(bdir)
	if err != nil {
		return res, err
	}
	for _, e := range ents {
		if !blobs["sha256:"+e.Name()] {
			if err := os.Remove(filepath.Join(bdir, e.Name())); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}
