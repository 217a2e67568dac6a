package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Annotations that name an image in an OCI image layout.
const (
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
)

// Import is ImportWithProgress without progress.
func (s *Store) Import(ctx context.Context, r io.Reader) ([]*Image, error) {
	return s.ImportWithProgress(ctx, r, nil)
}

// ImportWithProgress stores the images of an archive, for nodes without
// a registry: a docker-save archive (manifest.json; docker save, or
// go-containerregistry's tarball.Write) or an OCI image-layout archive
// (oci-layout and index.json; skopeo, buildah, docker buildx). Either may
// be gzip-compressed. Images are named by their RepoTags, or by the
// io.containerd.image.name or a full org.opencontainers.image.ref.name
// annotation; an image without a name is stored under its ID. From an
// index, the configured platform's image is taken.
func (s *Store) ImportWithProgress(ctx context.Context, r io.Reader, progress func(Progress)) ([]*Image, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	open, cleanup, err := s.spool(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("image: import: %w", err)
	}
	defer cleanup()
	names, err := tarNames(open)
	if err != nil {
		return nil, fmt.Errorf("image: import: %w: %w", ErrUnknownArchive, err)
	}
	var imgs []*Image
	switch {
	case names["manifest.json"]:
		imgs, err = s.importDockerSave(ctx, open, progress)
	case names["index.json"] && names["oci-layout"]:
		imgs, err = s.importOCILayout(ctx, open, progress)
	default:
		return nil, fmt.Errorf("image: import: %w (neither manifest.json nor oci-layout and index.json found)", ErrUnknownArchive)
	}
	if err != nil {
		return imgs, fmt.Errorf("image: import: %w", err)
	}
	return imgs, nil
}

// spool makes the archive re-readable: a regular, uncompressed file is
// read in place; anything else is copied (and decompressed) to tmp/.
func (s *Store) spool(ctx context.Context, r io.Reader) (tarball.Opener, func(), error) {
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			var magic [2]byte
			if n, _ := f.ReadAt(magic[:], 0); n < 2 || magic != [2]byte{0x1f, 0x8b} {
				size := fi.Size()
				return func() (io.ReadCloser, error) {
					return io.NopCloser(io.NewSectionReader(f, 0, size)), nil
				}, func() {}, nil
			}
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		src = zr
	}
	p := filepath.Join(s.dir, "tmp", "import."+strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(s.seq.Add(1), 10))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		f.Close()
		os.Remove(p)
	}
	if _, err := io.Copy(f, ctxReader{ctx, src}); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("reading the archive: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	size := fi.Size()
	return func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(f, 0, size)), nil
	}, cleanup, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tarNames lists the entries of the archive (cleaned, relative).
func tarNames(open tarball.Opener) (map[string]bool, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	names := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if len(names) == 0 {
				return nil, errors.New("empty archive")
			}
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		names[cleanName(hdr.Name)] = true
	}
}

func (s *Store) importDockerSave(ctx context.Context, open tarball.Opener, progress func(Progress)) ([]*Image, error) {
	m, err := tarball.LoadManifest(open)
	if err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []*Image
	for _, d := range m {
		if len(d.RepoTags) == 0 {
			if len(m) != 1 {
				return out, fmt.Errorf("an untagged image (config %s) in an archive of %d images: tag it before saving", d.Config, len(m))
			}
			img, err := tarball.Image(open, nil)
			if err != nil {
				return out, err
			}
			id, err := img.ConfigName()
			if err != nil {
				return out, err
			}
			rec, err := s.install(ctx, id.String(), "", "", img, srcUncompressed, progress)
			if err != nil {
				return out, fmt.Errorf("image %s: %w", id, err)
			}
			out = append(out, rec)
			continue
		}
		for _, t := range d.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return out, fmt.Errorf("%w: %q in manifest.json", ErrInvalidName, t)
			}
			img, err := tarball.Image(open, &tag)
			if err != nil {
				return out, fmt.Errorf("image %s: %w", t, err)
			}
			rec, err := s.install(ctx, canonicalName(tag), "", "", img, srcUncompressed, progress)
			if err != nil {
				return out, fmt.Errorf("image %s: %w", t, err)
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

func (s *Store) importOCILayout(ctx context.Context, open tarball.Opener, progress func(Progress)) ([]*Image, error) {
	dir := filepath.Join(s.dir, "tmp", "layout."+strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(s.seq.Add(1), 10))
	defer os.RemoveAll(dir)
	if err := extractPlain(ctx, open, dir); err != nil {
		return nil, err
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, desc := range im.Manifests {
		var img v1.Image
		switch {
		case desc.MediaType.IsIndex():
			child, err := ii.ImageIndex(desc.Digest)
			if err != nil {
				return out, err
			}
			img, err = s.imageForPlatform(child)
			if err != nil {
				return out, fmt.Errorf("index %s: %w", desc.Digest, err)
			}
		case desc.MediaType.IsImage():
			if desc.Platform != nil && !desc.Platform.Satisfies(s.platform) {
				continue
			}
			if img, err = ii.Image(desc.Digest); err != nil {
				return out, err
			}
		default:
			continue
		}
		manifest, err := img.Digest()
		if err != nil {
			return out, err
		}
		key := layoutName(desc.Annotations)
		if key == "" {
			cfg, err := img.ConfigName()
			if err != nil {
				return out, err
			}
			key = cfg.String()
		}
		rec, err := s.install(ctx, key, desc.Digest.String(), manifest.String(), img, srcCompressed, progress)
		if err != nil {
			return out, fmt.Errorf("image %s: %w", key, err)
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no image for %s/%s in index.json", s.platform.OS, s.platform.Architecture)
	}
	return out, nil
}

// imageForPlatform picks the store's platform's image from an index.
func (s *Store) imageForPlatform(ii v1.ImageIndex) (v1.Image, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() && (d.Platform == nil || d.Platform.Satisfies(s.platform)) {
			return ii.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s/%s", s.platform.OS, s.platform.Architecture)
}

// layoutName is an image's name from its index annotations: containerd's
// full name, or a ref.name that is a full reference (one that is only a
// tag, such as "latest", names no repository and is not used).
func layoutName(ann map[string]string) string {
	for _, k := range []string{annotationContainerdName, annotationRefName} {
		v := ann[k]
		if v == "" || !strings.ContainsAny(v, "/") {
			continue
		}
		if key, ok := CanonicalName(v); ok {
			return key
		}
	}
	return ""
}

// extractPlain unpacks the directories and regular files of an archive
// into dir (an image layout has nothing else), through an os.Root.
func extractPlain(ctx context.Context, open tarball.Opener, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n := cleanName(hdr.Name)
		if n == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(n, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := root.MkdirAll(filepath.Dir(n), 0o700); err != nil {
				return err
			}
			f, err := root.OpenFile(n, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
