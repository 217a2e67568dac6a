package image_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/image/imagetest"
)

// pullImage pushes img to a fresh in-process registry and pulls it into s.
func pullImage(t *testing.T, s *image.Store, reg *imagetest.Registry, repo string, img v1.Image) *image.Image {
	t.Helper()
	ref := reg.Push(t, repo, img)
	got, err := s.Pull(context.Background(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// layered is busybox plus two layers that delete, hide and replace
// things of the layers below.
func layered(t *testing.T) v1.Image {
	base := imagetest.Busybox(t)
	two := imagetest.Layer(t,
		imagetest.Dir("data"),
		imagetest.File("data/a.txt", "a\n"),
		imagetest.File("data/b.txt", "b\n"),
		imagetest.Dir("data/sub"),
		imagetest.File("data/sub/c.txt", "c\n"),
		imagetest.Dir("data/gone"),
		imagetest.File("data/gone/x.txt", "x\n"),
		imagetest.Entry{Name: "data/link", Type: tar.TypeLink, Linkname: "data/b.txt"},
	)
	three := imagetest.Layer(t,
		imagetest.Whiteout("data/a.txt"),        // a file
		imagetest.Whiteout("data/gone"),         // a directory
		imagetest.Opaque("data/sub"),            // hide c.txt ...
		imagetest.File("data/sub/d.txt", "d\n"), // ... and add d.txt
		imagetest.Opaque("var/www"),             // hide busybox's index.html
		imagetest.File("var/www/new.html", "new\n"),
		imagetest.Whiteout("etc/group"),      // a file of the bottom layer
		imagetest.File("data/b.txt", "b2\n"), // replaced
	)
	return imagetest.Append(t, base, two, three)
}

func TestWhiteoutsAndOpaqueDirsInRootFS(t *testing.T) {
	imagetest.RequireRoot(t)
	reg := imagetest.InProcess(t)
	s := newStore(t, reg.Host)
	img := pullImage(t, s, reg, "test/layered:v1", layered(t))
	if len(img.Layers) != 3 {
		t.Fatalf("layers %v", img.Layers)
	}

	// The top layer is stored in overlayfs's format.
	top := filepath.Join(s.LayerDir(img.Layers[2]), "fs")
	for _, wo := range []string{"data/a.txt", "data/gone", "etc/group"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(top, wo), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0/0 character device", wo, st.Mode, st.Rdev)
		}
	}
	for _, d := range []string{"data/sub", "var/www"} {
		v := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(top, d), "trusted.overlay.opaque", v)
		if err != nil || string(v[:n]) != "y" {
			t.Errorf("%s: trusted.overlay.opaque = %q, %v", d, v[:n], err)
		}
	}
	for _, wo := range []string{".wh.a.txt", ".wh..wh..opq"} {
		assertMissing(t, filepath.Join(top, "data", wo))
	}

	rootfs, err := s.PrepareRootFS(context.Background(), img, "layered")
	if err != nil {
		t.Fatal(err)
	}
	assertMissing(t, filepath.Join(rootfs, "data/a.txt"))
	assertMissing(t, filepath.Join(rootfs, "data/gone"))
	assertMissing(t, filepath.Join(rootfs, "data/sub/c.txt"))
	assertMissing(t, filepath.Join(rootfs, "var/www/index.html"))
	assertMissing(t, filepath.Join(rootfs, "etc/group"))
	for path, want := range map[string]string{
		"data/b.txt": "b2\n", "data/link": "b\n", "data/sub/d.txt": "d\n",
		"var/www/new.html": "new\n", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
	} {
		if got := readFile(t, filepath.Join(rootfs, path)); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	ents, err := os.ReadDir(filepath.Join(rootfs, "data"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"b.txt", "link", "sub"}) {
		t.Errorf("data/ lists %v", names)
	}

	// Writes go to the container's upper directory, not the layers.
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(rootfs, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	bottom := filepath.Join(s.LayerDir(img.Layers[0]), "fs")
	if got := readFile(t, filepath.Join(bottom, "etc/passwd")); got == "changed\n" {
		t.Error("a write reached the image layer")
	}
	if _, err := os.Lstat(filepath.Join(bottom, "bin/sh")); err != nil {
		t.Error("a delete reached the image layer")
	}
	// A second container sees the image, not the first one's changes.
	rootfs2, err := s.PrepareRootFS(context.Background(), img, "layered-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(rootfs2, "bin/sh")); err != nil {
		t.Error("the second container sees the first one's delete")
	}
}

func TestRootFSMountsNeverLeak(t *testing.T) {
	imagetest.RequireRoot(t)
	reg := imagetest.InProcess(t)
	s := newStore(t, reg.Host)
	img := pullImage(t, s, reg, "test/busybox:v1", imagetest.Busybox(t))
	ctx := context.Background()
	dir := s.Dir()

	var paths []string
	for i := range 3 {
		p, err := s.PrepareRootFS(ctx, img, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if m := mountsUnder(t, dir); len(m) != 3 {
		t.Fatalf("mounts %v", m)
	}
	// Preparing again from the same image is the same mount.
	if p, err := s.PrepareRootFS(ctx, img, "c0"); err != nil || p != paths[0] || len(mountsUnder(t, dir)) != 3 {
		t.Fatalf("prepare again: %s, %v, mounts %v", p, err, mountsUnder(t, dir))
	}
	// From another image it is refused.
	other := pullImage(t, s, reg, "test/other:v1", imagetest.Append(t, imagetest.Busybox(t), imagetest.Layer(t, imagetest.File("x", "x"))))
	if _, err := s.PrepareRootFS(ctx, other, "c0"); !errors.Is(err, image.ErrRootFSExists) {
		t.Fatalf("prepare c0 from another image: %v", err)
	}

	// An agent restart: a new Store on the same directory finds them.
	s2, err := image.Open(image.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	fss, err := s2.ListRootFS()
	if err != nil {
		t.Fatal(err)
	}
	if len(fss) != 3 {
		t.Fatalf("ListRootFS after restart: %d", len(fss))
	}
	for _, r := range fss {
		if !r.Mounted || r.Ref != img.Ref || r.ImageID != img.ID || !slices.Equal(r.Layers, img.Layers) {
			t.Errorf("%+v", r)
		}
	}

	// A reboot unmounts everything; preparing again remounts with the
	// container's changes kept.
	if err := os.WriteFile(filepath.Join(paths[1], "kept"), []byte("yes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(paths[1], 0); err != nil {
		t.Fatal(err)
	}
	if r, _ := s2.ListRootFS(); r[1].Mounted {
		t.Error("an unmounted root filesystem listed as mounted")
	}
	if _, err := s2.PrepareRootFS(ctx, img, "c1"); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(paths[1], "kept")) != "yes" {
		t.Error("changes lost across a remount")
	}

	// Release unmounts and deletes; twice is fine.
	for _, r := range fss {
		if err := s2.ReleaseRootFS(r.ID); err != nil {
			t.Fatal(err)
		}
		if err := s2.ReleaseRootFS(r.ID); err != nil {
			t.Fatal(err)
		}
		assertMissing(t, filepath.Join(dir, "containers", r.ID))
	}
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Fatalf("mounts left: %v", m)
	}

	// A busy mount (a process has its cwd in it) is still released.
	p, err := s.PrepareRootFS(ctx, img, "busy")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(p, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseRootFS("busy"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Fatalf("busy mount left: %v", m)
	}

	// A crash between creating a container's directory and writing its
	// record leaves a directory ListRootFS reports and Prepare reuses.
	if err := os.MkdirAll(filepath.Join(dir, "containers", "torn", "upper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if fss, _ := s.ListRootFS(); len(fss) != 1 || fss[0].ID != "torn" || fss[0].Ref != "" || fss[0].Mounted {
		t.Fatalf("ListRootFS with a torn directory: %+v", fss)
	}
	if _, err := s.PrepareRootFS(ctx, img, "torn"); err != nil {
		t.Fatalf("prepare over a torn directory: %v", err)
	}
	if err := s.ReleaseRootFS("torn"); err != nil {
		t.Fatal(err)
	}

	// Failures leave nothing behind.
	broken := *img
	broken.Layers = append(slices.Clone(img.Layers), "sha256:"+fmt.Sprintf("%064x", 1))
	if _, err := s.PrepareRootFS(ctx, &broken, "broken"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("missing layer: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PrepareRootFS(cancelled, img, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	for _, bad := range []string{"", "..", "a/b", "x y"} {
		if _, err := s.PrepareRootFS(ctx, img, bad); err == nil {
			t.Errorf("id %q accepted", bad)
		}
	}
	if fss, _ := s.ListRootFS(); len(fss) != 0 {
		t.Errorf("failed prepares left %d root filesystems", len(fss))
	}
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Fatalf("failed prepares left mounts: %v", m)
	}
}

func TestRootFSWithManyLayers(t *testing.T) {
	imagetest.RequireRoot(t)
	reg := imagetest.InProcess(t)
	s := newStore(t, reg.Host)
	img := imagetest.Busybox(t)
	const n = 48 // more lower directories than mount(2)'s one-page option string holds
	for i := range n {
		img = imagetest.Append(t, img, imagetest.Layer(t, imagetest.File("layer", fmt.Sprint(i)), imagetest.File(fmt.Sprintf("f%02d", i), "x")))
	}
	got := pullImage(t, s, reg, "test/many:v1", img)
	optLen := 0
	for _, l := range got.Layers {
		optLen += len(filepath.Join(s.LayerDir(l), "fs")) + 1
	}
	if optLen <= 4095 {
		t.Fatalf("the lowerdir option is %d bytes: too short to need the new mount API", optLen)
	}
	rootfs, err := s.PrepareRootFS(context.Background(), got, "many")
	if err != nil {
		t.Fatal(err)
	}
	if v := readFile(t, filepath.Join(rootfs, "layer")); v != fmt.Sprint(n-1) {
		t.Errorf("top layer's file reads %q", v)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "f00")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		t.Error(err)
	}
}

func TestRemoveRefusesImagesInUse(t *testing.T) {
	reg := imagetest.InProcess(t)
	s := newStore(t, reg.Host)
	img := pullImage(t, s, reg, "test/busybox:v1", imagetest.Busybox(t))
	if err := s.Remove("test/none:v1"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("remove absent: %v", err)
	}
	if _, err := s.PrepareRootFS(context.Background(), img, "user"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(img.Ref); !errors.Is(err, image.ErrInUse) {
		t.Fatalf("remove in use: %v", err)
	}
	if _, err := s.Get(img.Ref); err != nil {
		t.Fatalf("a refused remove removed: %v", err)
	}
	if err := s.ReleaseRootFS("user"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(img.Ref); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(img.Ref); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("after remove: %v", err)
	}
	if _, err := os.Stat(s.LayerDir(img.Layers[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the removed image's layer is still there: %v", err)
	}
}

func TestGCKeepsImagesInUse(t *testing.T) {
	reg := imagetest.InProcess(t)
	s := newStore(t, reg.Host)
	ctx := context.Background()
	base := imagetest.Busybox(t)
	a := pullImage(t, s, reg, "test/a:v1", imagetest.Append(t, base, imagetest.Layer(t, imagetest.File("a", "a"))))
	b := pullImage(t, s, reg, "test/b:v1", imagetest.Append(t, base, imagetest.Layer(t, imagetest.File("b", "b"))))
	c := pullImage(t, s, reg, "test/c:v1", imagetest.Append(t, base, imagetest.Layer(t, imagetest.File("c", "c"))))
	if _, err := s.PrepareRootFS(ctx, c, "c-user"); err != nil {
		t.Fatal(err)
	}
	res, err := s.GC(ctx, func(ref string) bool { return ref == a.Ref })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Images, []string{b.Ref}) || res.Layers != 1 || res.Bytes != 1 || res.Deferred {
		t.Errorf("GC result %+v", res)
	}
	for _, img := range []*image.Image{a, c} {
		if _, err := s.Get(img.Ref); err != nil {
			t.Errorf("GC removed an image in use: %v", err)
		}
	}
	if _, err := s.Get(b.Ref); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("GC kept an unused image: %v", err)
	}
	if _, err := os.Stat(s.LayerDir(b.Layers[1])); !errors.Is(err, os.ErrNotExist) {
		t.Error("GC kept the unused image's own layer")
	}
	if _, err := os.Stat(s.LayerDir(b.Layers[0])); err != nil {
		t.Error("GC removed the shared busybox layer")
	}
	if _, err := s.Blob(b.ID); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("GC kept the unused image's config: %v", err)
	}
	if _, err := s.Blob(a.ID); err != nil {
		t.Errorf("GC removed a used image's config: %v", err)
	}
	// Nothing in use: everything goes but what a root filesystem uses.
	res, err = s.GC(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Images, []string{a.Ref}) {
		t.Errorf("second GC removed %v, want only %s (c's root filesystem uses c)", res.Images, a.Ref)
	}
	if err := s.ReleaseRootFS("c-user"); err != nil {
		t.Fatal(err)
	}
	if res, err = s.GC(ctx, nil); err != nil || !slices.Equal(res.Images, []string{c.Ref}) || res.Layers != 2 {
		t.Errorf("GC after release: %+v, %v", res, err)
	}
	ls, _ := os.ReadDir(filepath.Join(s.Dir(), "layers", "sha256"))
	if len(ls) != 0 {
		t.Errorf("%d layers left after everything was collected", len(ls))
	}
}

func TestRootFSConcurrentPrepareRelease(t *testing.T) {
	imagetest.RequireRoot(t)
	reg := imagetest.InProcess(t)
	s := newStore(t, reg.Host)
	img := pullImage(t, s, reg, "test/busybox:v1", imagetest.Busybox(t))
	ctx := context.Background()
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 5 {
				id := fmt.Sprintf("g%d-%d", g, i)
				p, err := s.PrepareRootFS(ctx, img, id)
				if err == nil {
					_, err = os.Stat(filepath.Join(p, "bin/busybox"))
				}
				if err == nil {
					err = s.ReleaseRootFS(id)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if m := mountsUnder(t, s.Dir()); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if fss, _ := s.ListRootFS(); len(fss) != 0 {
		t.Errorf("%d root filesystems left", len(fss))
	}
}
