package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/image/imagetest"
)

// dockerSave writes a docker-save archive of images by tag.
func dockerSave(t *testing.T, byTag map[string]v1.Image) []byte {
	t.Helper()
	m := map[name.Tag]v1.Image{}
	for tag, img := range byTag {
		nt, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		m[nt] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiWrite(m, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarDir archives a directory tree (an OCI image layout).
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func refs(imgs []*image.Image) []string {
	var out []string
	for _, img := range imgs {
		out = append(out, img.Ref)
	}
	slices.Sort(out)
	return out
}

func TestImportDockerSave(t *testing.T) {
	bb := imagetest.Busybox(t)
	web := imagetest.WithCmd(t, imagetest.Append(t, bb, imagetest.Layer(t, imagetest.File("var/www/index.html", "web\n"))), "httpd", "-f")
	archive := dockerSave(t, map[string]v1.Image{
		"busybox:demo":                  bb,
		"registry.local/lab/web:1.0":    web,
		"registry.local/lab/web:latest": web,
	})
	s := newStore(t)
	ctx := context.Background()
	var log progressLog
	imgs, err := s.ImportWithProgress(ctx, bytes.NewReader(archive), log.add)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"docker.io/library/busybox:demo", "registry.local/lab/web:1.0", "registry.local/lab/web:latest"}
	if got := refs(imgs); !slices.Equal(got, want) {
		t.Fatalf("imported %v, want %v", got, want)
	}
	if !slices.Contains(log.phases(), image.PhaseUnpacked) || !slices.Contains(log.phases(), image.PhaseExists) {
		t.Errorf("progress %v", log.phases())
	}
	list, err := s.List()
	if err != nil || !slices.Equal(refs(list), want) {
		t.Fatalf("List: %v, %v", refs(list), err)
	}
	w, err := s.Get("registry.local/lab/web:1.0")
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := web.ConfigName()
	if w.ID != wantID.String() || w.Digest != "" || !slices.Equal(w.Config.Cmd, []string{"httpd", "-f"}) || len(w.Layers) != 2 {
		t.Errorf("web image %+v", w)
	}
	// Found by its short name, and by ID.
	if got, err := s.Get("busybox:demo"); err != nil || got.Ref != "docker.io/library/busybox:demo" {
		t.Errorf("Get(busybox:demo) = %v, %v", got, err)
	}
	if got, err := s.Get(wantID.String()); err != nil || got.ID != wantID.String() {
		t.Errorf("Get(ID) = %v, %v", got, err)
	}
	// Pull policy Never is satisfied by an imported image.
	if _, err := s.Ensure(ctx, "registry.local/lab/web:1.0", image.PullNever, nil); err != nil {
		t.Error(err)
	}
	rootfs, err := s.PrepareRootFS(ctx, w, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(rootfs, "var/www/index.html")); got != "web\n" {
		t.Errorf("index.html %q", got)
	}

	// Gzipped, from a file, and untagged.
	s2 := newStore(t)
	path := filepath.Join(t.TempDir(), "bb.tar.gz")
	if err := os.WriteFile(path, gzipped(t, archive), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if imgs, err := s2.Import(ctx, f); err != nil || len(imgs) != 3 {
		t.Fatalf("gzipped import: %d images, %v", len(imgs), err)
	}
	var untagged bytes.Buffer
	if err := tarball.Write(nil, bb, &untagged); err != nil {
		t.Fatal(err)
	}
	imgs, err = s2.Import(ctx, &untagged)
	if err != nil {
		t.Fatal(err)
	}
	bbID, _ := bb.ConfigName()
	if len(imgs) != 1 || imgs[0].Ref != bbID.String() {
		t.Errorf("untagged import: %+v", imgs)
	}
}

func TestImportOCILayout(t *testing.T) {
	bb := imagetest.Busybox(t)
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	// An image named the containerd way, a multi-platform index, and one
	// whose ref.name is only a tag (stored under its ID).
	if err := lp.AppendImage(bb, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          "registry.local/lab/busybox:v1",
		"org.opencontainers.image.ref.name": "v1",
	})); err != nil {
		t.Fatal(err)
	}
	arm := imagetest.Platform(t, imagetest.Append(t, bb, imagetest.Layer(t, imagetest.File("arch", "other"))), "linux", "s390x")
	host := imagetest.Append(t, bb, imagetest.Layer(t, imagetest.File("arch", runtime.GOARCH)))
	ii := imagetest.Index(t, map[string]v1.Image{"linux/s390x": arm, "linux/" + runtime.GOARCH: host})
	if err := lp.AppendIndex(ii, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "registry.local/lab/multi:v2"})); err != nil {
		t.Fatal(err)
	}
	tagOnly := imagetest.WithCmd(t, bb, "true")
	if err := lp.AppendImage(tagOnly, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}

	s := newStore(t)
	imgs, err := s.Import(context.Background(), bytes.NewReader(tarDir(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	tagOnlyID, _ := tagOnly.ConfigName()
	want := []string{"registry.local/lab/busybox:v1", "registry.local/lab/multi:v2", tagOnlyID.String()}
	slices.Sort(want)
	if got := refs(imgs); !slices.Equal(got, want) {
		t.Fatalf("imported %v, want %v", got, want)
	}
	m, err := s.Get("registry.local/lab/multi:v2")
	if err != nil {
		t.Fatal(err)
	}
	iiDigest, _ := ii.Digest()
	if m.Digest != iiDigest.String() || m.Manifest != digestOf(t, host) || m.Architecture != runtime.GOARCH {
		t.Errorf("multi-platform import: %+v", m)
	}
	b, err := s.Get("registry.local/lab/busybox:v1")
	if err != nil || b.Digest != digestOf(t, bb) {
		t.Errorf("busybox import: %+v, %v", b, err)
	}
	// Layers are shared with what was already there: 1 busybox + 1 arch.
	ls, _ := os.ReadDir(filepath.Join(s.Dir(), "layers", "sha256"))
	if len(ls) != 2 {
		t.Errorf("%d layers stored, want 2", len(ls))
	}
	// Leftovers of the import are gone.
	if tmp, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ holds %d entries after the import", len(tmp))
	}
}

func TestImportRejectsOtherArchives(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for name, data := range map[string][]byte{
		"empty":       nil,
		"not a tar":   []byte("hello"),
		"a plain tar": imagetest.LayerTar(t, imagetest.File("etc/hosts", "x")),
	} {
		if _, err := s.Import(ctx, bytes.NewReader(data)); !errors.Is(err, image.ErrUnknownArchive) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
