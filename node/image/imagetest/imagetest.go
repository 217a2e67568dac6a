// Package imagetest helps test code that uses images: a tiny busybox
// image built offline, layers made from a list of entries, and real
// registries on loopback — go-containerregistry's registry in process,
// and Debian's docker-registry binary — to push them to.
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/droverhq/drover/node/image"
)

// InCI reports whether the tests run in CI (CI is set), where whatever a
// test needs must be there: a missing tool fails rather than skips.
func InCI() bool { return os.Getenv("CI") != "" }

// SkipUnlessCI skips t with the reason, or fails it in CI.
func SkipUnlessCI(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI: %s", reason)
	}
	t.Skip(reason)
}

// RequireRoot skips t unless it runs as root (mounts, mknod, trusted
// xattrs); in CI, which runs as root, it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipUnlessCI(t, "needs root (overlay mounts, whiteout devices, trusted.* xattrs)")
	}
}

// BusyboxPath is Debian's busybox-static binary, skipping t if it is
// missing (failing in CI).
func BusyboxPath(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(image.DefaultBusybox); err != nil {
		SkipUnlessCI(t, "busybox-static is not installed ("+image.DefaultBusybox+"): apt-get install busybox-static")
	}
	return image.DefaultBusybox
}

// busybox memoizes the image: it is immutable, and building it gzips two
// megabytes.
var busybox = sync.OnceValues(func() (v1.Image, error) {
	return image.BuildBusybox(image.DefaultBusybox, []string{"/bin/sh", "-c", "echo hello from busybox"})
})

// Busybox is the busybox image (see image.BuildBusybox) with Cmd
// sh -c "echo hello from busybox".
func Busybox(t testing.TB) v1.Image {
	t.Helper()
	BusyboxPath(t)
	img, err := busybox()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Entry is one tar entry of a test layer.
type Entry struct {
	Name     string
	Type     byte   // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink, ...
	Body     string // regular files
	Linkname string // symlinks and hard links
	Mode     int64  // default 0644 for files, 0755 for directories
}

// File is a regular file entry.
func File(name, body string) Entry { return Entry{Name: name, Body: body} }

// Dir is a directory entry.
func Dir(name string) Entry { return Entry{Name: name, Type: tar.TypeDir} }

// Whiteout deletes path (of a lower layer) in this layer: ".wh.<base>".
func Whiteout(path string) Entry {
	dir, base := splitPath(path)
	return Entry{Name: dir + ".wh." + base}
}

// Opaque hides everything lower layers have in directory dir.
func Opaque(dir string) Entry { return Entry{Name: trimSlash(dir) + "/.wh..wh..opq"} }

func splitPath(p string) (string, string) {
	p = trimSlash(p)
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i+1], p[i+1:]
		}
	}
	return "", p
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// LayerTar is the tar of entries, each owned by root with mtime 0.
func LayerTar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Linkname, Mode: e.Mode, ModTime: time.Unix(0, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Layer is a gzip-compressed OCI layer of entries.
func Layer(t testing.TB, entries ...Entry) v1.Layer {
	t.Helper()
	data := LayerTar(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Append is base with layers on top.
func Append(t testing.TB, base v1.Image, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// WithCmd is img with its Cmd replaced.
func WithCmd(t testing.TB, img v1.Image, cmd ...string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Cmd = cmd
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Platform is img with its config's OS and architecture replaced.
func Platform(t testing.TB, img v1.Image, os, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Index is an OCI image index of images by "os/arch".
func Index(t testing.TB, byPlatform map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	keys := make([]string, 0, len(byPlatform))
	for k := range byPlatform {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var adds []mutate.IndexAddendum
	for _, k := range keys {
		os, arch, _ := strings.Cut(k, "/")
		adds = append(adds, mutate.IndexAddendum{
			Add:        byPlatform[k],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}},
		})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
}
