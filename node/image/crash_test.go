package image_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/image/imagetest"
)

// deadPID is a process id no process has (above the kernel's maximum).
const deadPID = "2147483647"

func TestHalfWrittenLayersAreIgnoredAndRedone(t *testing.T) {
	imagetest.RequireRoot(t)
	reg := imagetest.InProcess(t)
	src := imagetest.Busybox(t)
	ref := reg.Push(t, "test/busybox:v1", src)
	dir := t.TempDir()
	s, err := image.Open(image.Config{Dir: dir, InsecureRegistries: []string{reg.Host}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	img, err := s.Pull(ctx, ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A crash mid-unpack as an older layout might leave it: the layer's
	// directory, partly filled, without layer.json; a half-unpacked
	// temporary directory of a dead process; a torn index write.
	layer := filepath.Join(dir, "layers", "sha256", strings.TrimPrefix(img.Layers[0], "sha256:"))
	if err := os.Remove(filepath.Join(layer, "layer.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(layer, "fs", "bin", "busybox")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layer, "fs", "junk"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "layers", "tmp", strings.TrimPrefix(img.Layers[0], "sha256:")+"."+deadPID+".1")
	if err := os.MkdirAll(filepath.Join(tmp, "fs", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, "index.json.tmp."+deadPID+".x")
	if err := os.WriteFile(torn, []byte(`{"version":1,"ima`), 0o600); err != nil {
		t.Fatal(err)
	}

	s = newStoreAt(t, dir, reg.Host)
	assertMissing(t, tmp)
	assertMissing(t, torn)
	// The image's layer is incomplete, so the image does not count as
	// present, and Never does not hand it to a container.
	if _, err := s.Get(ref); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("Get with a half-written layer: %v", err)
	}
	if _, err := s.Ensure(ctx, ref, image.PullNever, nil); !errors.Is(err, image.ErrImageNeverPull) {
		t.Fatalf("Never with a half-written layer: %v", err)
	}
	// IfNotPresent pulls again and redoes the layer from scratch.
	img2, err := s.Ensure(ctx, ref, image.PullIfNotPresent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img2.ID != img.ID {
		t.Errorf("ID %s, want %s", img2.ID, img.ID)
	}
	assertMissing(t, filepath.Join(layer, "fs", "junk"))
	if _, err := os.Stat(filepath.Join(layer, "fs", "bin", "busybox")); err != nil {
		t.Error(err)
	}
	rootfs, err := s.PrepareRootFS(ctx, img2, "after-crash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "busybox")); err != nil {
		t.Error(err)
	}
}

func newStoreAt(t *testing.T, dir string, insecure ...string) *image.Store {
	t.Helper()
	imagetest.RequireRoot(t)
	s, err := image.Open(image.Config{Dir: dir, InsecureRegistries: insecure})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		fss, _ := s.ListRootFS()
		for _, r := range fss {
			if err := s.ReleaseRootFS(r.ID); err != nil {
				t.Error(err)
			}
		}
		if m := mountsUnder(t, dir); len(m) > 0 {
			t.Errorf("mounts left: %v", m)
		}
	})
	return s
}

func TestLayerWithWrongDiffIDIsNotStored(t *testing.T) {
	imagetest.RequireRoot(t)
	s := newStore(t)
	data := imagetest.LayerTar(t, imagetest.File("etc/hosts", "127.0.0.1 localhost\n"))
	sum := sha256.Sum256(data)
	good := "sha256:" + hex.EncodeToString(sum[:])
	sum[0] ^= 1
	bad := "sha256:" + hex.EncodeToString(sum[:])
	if err := s.UnpackLayer(context.Background(), bad, bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), "hashes to "+good) {
		t.Fatalf("wrong diffID: %v", err)
	}
	assertMissing(t, s.LayerDir(bad))
	if tmp, _ := os.ReadDir(filepath.Join(s.Dir(), "layers", "tmp")); len(tmp) != 0 {
		t.Errorf("a failed unpack left %d temporary directories", len(tmp))
	}
	// A truncated stream fails the same way.
	if err := s.UnpackLayer(context.Background(), good, bytes.NewReader(data[:len(data)/2])); err == nil {
		t.Fatal("truncated layer accepted")
	}
	assertMissing(t, s.LayerDir(good))
	if err := s.UnpackLayer(context.Background(), good, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.LayerDir(good), "fs", "etc", "hosts")); got != "127.0.0.1 localhost\n" {
		t.Errorf("hosts %q", got)
	}
}

func TestIndexSharedBetweenProcesses(t *testing.T) {
	// Two stores on one directory stand in for the agent and the CLI: an
	// import through one is seen by the other, and neither loses the
	// other's changes.
	dir := t.TempDir()
	a := newStoreAt(t, dir)
	b := newStoreAt(t, dir)
	ctx := context.Background()
	bb := imagetest.Busybox(t)
	if _, err := a.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"lab/one:v1": bb}))); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get("lab/one:v1"); err != nil {
		t.Fatalf("the other store does not see the import: %v", err)
	}
	if _, err := b.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"lab/two:v1": bb}))); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*image.Store{a, b} {
		list, err := s.List()
		if err != nil || len(list) != 2 {
			t.Errorf("List: %d images, %v", len(list), err)
		}
	}
	if err := a.Remove("lab/two:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get("lab/two:v1"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("removed through one store, still in the other: %v", err)
	}
	if _, err := b.Get("lab/one:v1"); err != nil {
		t.Errorf("the shared layer went with the removed image: %v", err)
	}
}
