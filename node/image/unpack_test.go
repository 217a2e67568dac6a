package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/image/imagetest"
)

// unpack writes a layer of the given headers (with bodies for regular
// files) and returns its unpacked tree, or the error.
func unpack(t *testing.T, s *image.Store, entries ...tarEntry) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(0, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	err := s.UnpackLayer(context.Background(), diffID, &buf)
	return filepath.Join(s.LayerDir(diffID), "fs"), err
}

type tarEntry struct {
	h    tar.Header
	body string
}

func reg(name string, mode int64, body string) tarEntry {
	return tarEntry{h: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, body: body}
}

func TestUnpackKeepsEntriesInsideTheLayer(t *testing.T) {
	s := newStore(t)
	outside := t.TempDir()
	fs, err := unpack(t, s,
		reg("../../escape.txt", 0o644, "x"),
		reg("/abs/file.txt", 0o644, "y"),
		tarEntry{h: tar.Header{Name: "etc/link-out", Typeflag: tar.TypeLink, Linkname: "../../../../etc/hostname"}},
	)
	if err == nil {
		t.Fatal("a hard link to a path outside the layer was accepted")
	}
	assertMissing(t, filepath.Join(s.Dir(), "escape.txt"))
	assertMissing(t, fs)

	fs, err = unpack(t, s,
		reg("../../escape.txt", 0o644, "x"),
		reg("/abs/file.txt", 0o644, "y"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(fs, "escape.txt")) != "x" || readFile(t, filepath.Join(fs, "abs/file.txt")) != "y" {
		t.Error("cleaned names not unpacked at the layer root")
	}

	// Writing through a symlink that points outside fails, and writes
	// nothing there.
	for _, link := range []string{outside, "../../../../../../" + outside} {
		_, err = unpack(t, s,
			tarEntry{h: tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: link}},
			reg("evil/pwned", 0o644, "pwned"),
		)
		if err == nil {
			t.Errorf("a write through symlink -> %s was accepted", link)
		}
		assertMissing(t, filepath.Join(outside, "pwned"))
	}
}

func TestUnpackFileAttributes(t *testing.T) {
	s := newStore(t)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	fs, err := unpack(t, s,
		tarEntry{h: tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 2000, ModTime: mtime}},
		tarEntry{h: tar.Header{Name: "dir/suid", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 2000, ModTime: mtime}, body: "s"},
		tarEntry{h: tar.Header{Name: "dir/caps", Typeflag: tar.TypeReg, Mode: 0o755, PAXRecords: map[string]string{
			"SCHILY.xattr.user.drover":              "yes",
			"SCHILY.xattr.trusted.overlay.redirect": "/elsewhere",
		}}, body: "c"},
		tarEntry{h: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}},
		tarEntry{h: tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}},
		tarEntry{h: tar.Header{Name: "sym", Typeflag: tar.TypeSymlink, Linkname: "/dir/suid", Uid: 7, Gid: 8, ModTime: mtime}},
		tarEntry{h: tar.Header{Name: "dir/hard", Typeflag: tar.TypeLink, Linkname: "dir/suid"}},
		// Later entries replace earlier ones of another type.
		reg("replaced", 0o644, "file"),
		tarEntry{h: tar.Header{Name: "replaced/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{h: tar.Header{Name: "was-dir/", Typeflag: tar.TypeDir, Mode: 0o755}},
		reg("was-dir/child", 0o644, "c"),
		reg("was-dir", 0o600, "now a file"),
	)
	if err != nil {
		t.Fatal(err)
	}
	stat := func(name string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(fs, name), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := stat("dir"); st.Mode&0o7777 != 0o750 || st.Uid != 1000 || st.Gid != 2000 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("dir: mode %o uid %d gid %d mtime %d", st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec)
	}
	if st := stat("dir/suid"); st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Mtim.Sec != mtime.Unix() || st.Nlink != 2 {
		t.Errorf("dir/suid: mode %o uid %d mtime %d nlink %d", st.Mode&0o7777, st.Uid, st.Mtim.Sec, st.Nlink)
	}
	if st := stat("dev/null"); st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if st := stat("run/fifo"); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("run/fifo: mode %o", st.Mode)
	}
	if st := stat("sym"); st.Uid != 7 || st.Gid != 8 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("sym: uid %d gid %d mtime %d", st.Uid, st.Gid, st.Mtim.Sec)
	}
	if l, _ := os.Readlink(filepath.Join(fs, "sym")); l != "/dir/suid" {
		t.Errorf("sym -> %q", l)
	}
	v := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(fs, "dir/caps"), "user.drover", v); err != nil || string(v[:n]) != "yes" {
		t.Errorf("user.drover xattr: %q, %v", v[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(fs, "dir/caps"), "trusted.overlay.redirect", v); err == nil {
		t.Error("an image-supplied trusted.overlay.* xattr was applied")
	}
	if fi, err := os.Stat(filepath.Join(fs, "replaced")); err != nil || !fi.IsDir() {
		t.Errorf("replaced: %v, %v", fi, err)
	}
	if got := readFile(t, filepath.Join(fs, "was-dir")); got != "now a file" {
		t.Errorf("was-dir: %q", got)
	}
}

func TestBuildBusyboxIsReproducible(t *testing.T) {
	bin := imagetest.BusyboxPath(t)
	a, err := image.BuildBusybox(bin, []string{"sh"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := image.BuildBusybox(bin, []string{"sh"})
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, a) != digestOf(t, b) {
		t.Errorf("two builds differ: %s, %s", digestOf(t, a), digestOf(t, b))
	}
	c, err := image.BuildBusybox(bin, []string{"httpd", "-f"})
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, c) == digestOf(t, a) || diffIDs(t, c)[0] != diffIDs(t, a)[0] {
		t.Error("a different Cmd should change the image but not its layer")
	}
	if _, err := image.BuildBusybox(filepath.Join(t.TempDir(), "none"), nil); err == nil {
		t.Error("a missing binary was accepted")
	}
}
